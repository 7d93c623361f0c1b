"""Batch extraction: one record per document, resumable after SIGKILL, errors recorded, inputs expanded."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from docvlm.batch import expand_inputs, read_records, run_batch
from docvlm.errors import UsageError
from docvlm.synth import generate_dataset

SCHEMA = "docvlm.synth:InvoiceFields"

OPTIONAL_SCHEMA = '''
from pydantic import BaseModel


class Loose(BaseModel):
    invoice_number: str | None = None
    total: float | None = None
'''


def _write_invoices(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(generate_dataset("invoice", n, seed)):
        p = folder / f"invoice-{i:03d}.pdf"
        p.write_bytes(doc.pdf)
        paths.append(p)
    return paths


def _lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]  # every line valid JSON


def test_sigkill_and_resume_gives_each_document_exactly_once(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_invoices(docs, 40)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "docvlm", "batch", str(docs), "--schema", SCHEMA, "--model", "test",
           "-o", str(out), "--workers", "2"]
    env = {**os.environ, "DOCVLM_BATCH_TEST_DELAY": "0.05"}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-job
    proc.wait()
    first = out.read_bytes().count(b"\n")
    assert 5 <= first < 40
    with out.open("ab") as fh:  # what a kill in the middle of a write would leave
        fh.write(b'{"source": "half a rec')

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    records = _lines(out)
    assert len(records) == 40
    shas = [r["sha256"] for r in records]
    assert len(set(shas)) == 40
    statuses = [r["status"] for r in records]
    assert statuses.count("ok") + statuses.count("error") == 40
    m = re.search(r"(\d+) ok, (\d+) failed, (\d+) skipped", done.stderr)
    assert m is not None, done.stderr
    assert int(m[1]) + int(m[2]) == 40 - first and int(m[3]) == first
    assert done.returncode == (1 if "error" in statuses else 0)
    for r in records:
        assert r["task"] == "extract" and r["model"] == "test"
        assert r["schema"] == "docvlm.synth.documents.InvoiceFields"
        if r["status"] == "error":
            assert isinstance(r["error"], dict) and r["error"]["type"] == "FieldNotFoundError"
            assert r["value"] is None


def test_corrupt_file_globs_folders_and_rerun_skips(tmp_path: Path) -> None:
    a, b = _write_invoices(tmp_path / "a", 2, seed=1), _write_invoices(tmp_path / "b" / "deep", 2, seed=2)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\nthis is not a pdf at all")
    (tmp_path / "b" / "notes.txt").write_text("not a document")
    schema_file = tmp_path / "loose_schema.py"
    schema_file.write_text(OPTIONAL_SCHEMA)
    schema = f"{schema_file}:Loose"

    # folders recurse, globs expand (``**`` too), only document suffixes, duplicates once
    found = expand_inputs([tmp_path / "a", str(tmp_path / "b" / "**" / "*.pdf"), bad, a[0]])
    assert sorted(found) == sorted([*a, *b, bad])
    with pytest.raises(UsageError):
        expand_inputs([str(tmp_path / "nothing-*.pdf")])

    out = tmp_path / "out" / "records.jsonl"
    summary = run_batch([tmp_path / "a", str(tmp_path / "b" / "**" / "*.pdf"), bad], schema=schema, model="test",
                        output=out, workers=2)
    assert (summary.done, summary.failed, summary.skipped) == (4, 1, 0)
    records = _lines(out)
    assert len(records) == 5
    by_source = {r["source"]: r for r in records}
    err = by_source[str(bad)]
    assert err["status"] == "error" and err["error"]["type"] == "CorruptDocumentError"
    ok = by_source[str(a[0])]
    assert ok["status"] == "ok" and set(ok["value"]) == {"invoice_number", "total"}
    assert ok["schema"] == "loose_schema.Loose" and isinstance(ok["seconds"], float)

    again = run_batch([tmp_path], schema=schema, model="test", output=out, workers=2)
    assert (again.done, again.failed, again.skipped) == (0, 0, 5)
    assert len(list(read_records(out))) == 5

    # another model spec is other work: the same documents are done again, for that spec
    other = run_batch([bad], schema=schema, model="test:1", output=out, workers=1)
    assert (other.done, other.failed, other.skipped) == (0, 1, 0)
    assert len(_lines(out)) == 6


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        run_batch([tmp_path], schema=SCHEMA, model="test", output=tmp_path / "o.jsonl", task="read")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        run_batch([tmp_path / "missing.pdf"], schema=SCHEMA, model="test", output=tmp_path / "o.jsonl")
    with pytest.raises(UsageError):
        run_batch([tmp_path], schema="docvlm.synth:Nope", model="test", output=tmp_path / "o.jsonl")


def _merged_pdf(path: Path, n_pages: int, seed: int = 0) -> Path:
    import pymupdf

    merged = pymupdf.open()
    for doc in generate_dataset("invoice", n_pages, seed):
        with pymupdf.open(stream=doc.pdf, filetype="pdf") as one:
            merged.insert_pdf(one, to_page=0)
    merged.save(path)
    merged.close()
    return path


def test_per_page_records_split_between_workers_and_resume_by_page(tmp_path: Path) -> None:
    schema_file = tmp_path / "loose_schema.py"
    schema_file.write_text(OPTIONAL_SCHEMA)
    schema = f"{schema_file}:Loose"
    long_pdf = _merged_pdf(tmp_path / "long.pdf", 11)  # two tasks of pages (8 + 3)
    short_pdf = _write_invoices(tmp_path / "short", 1, seed=5)[0]
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\nnot a pdf")
    out = tmp_path / "pages.jsonl"

    summary = run_batch([long_pdf, short_pdf, bad], schema=schema, model="test", output=out, per="page", workers=2)
    assert (summary.done, summary.failed, summary.skipped) == (12, 1, 0)
    records = _lines(out)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_source.setdefault(r["source"], []).append(r)
    assert sorted(r["page"] for r in by_source[str(long_pdf)]) == list(range(11))
    assert [r["page"] for r in by_source[str(short_pdf)]] == [0]
    (err,) = by_source[str(bad)]
    assert err["page"] is None and err["error"]["type"] == "CorruptDocumentError"
    assert len({r["sha256"] for r in by_source[str(long_pdf)]}) == 1
    for r in by_source[str(long_pdf)]:
        assert r["status"] == "ok" and set(r["value"]) == {"invoice_number", "total"}
        for ev in r["evidence"].values():  # a page's record only holds evidence from that page
            assert ev["page"] == r["page"]

    # lose the records of pages 3 and 9 (as if killed before they were written): only they are done again
    kept = [r for r in records if not (r["source"] == str(long_pdf) and r["page"] in (3, 9))]
    out.write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = run_batch([long_pdf, short_pdf, bad], schema=schema, model="test", output=out, per="page", workers=2)
    assert (again.done, again.failed, again.skipped) == (2, 0, 11)
    redone = _lines(out)[len(kept):]
    assert sorted(r["page"] for r in redone) == [3, 9]
    assert len({(r["source"], r["page"]) for r in _lines(out)}) == 13


def test_pages_and_images_are_not_retained_after_a_document(tmp_path: Path) -> None:
    """Memory stays flat over a long batch: nothing that holds a page outlives the document's records."""
    import gc

    from docvlm.batch import process_document
    from docvlm.documents.base import Page, PageImage
    from docvlm.models import TestModel
    from docvlm.schemas import load_schema

    schema_file = tmp_path / "kept_schema.py"
    schema_file.write_text(OPTIONAL_SCHEMA)
    schema = load_schema(f"{schema_file}:Loose")
    pdf = _merged_pdf(tmp_path / "three.pdf", 3)
    model = TestModel()  # the same model object serves every document of a worker
    base = {"source": str(pdf), "sha256": "x", "task": "extract", "model": "test", "schema": "Loose"}

    def alive() -> set[int]:  # pages and page images alive now (other tests' fixtures may hold some)
        gc.collect()
        # type(o), not isinstance: some objects (torch.distributed.reduce_op) warn when asked for __class__
        return {id(o) for o in gc.get_objects() if issubclass(type(o), (Page, PageImage))}

    before = alive()
    records = process_document(model, schema, str(pdf), base, per="page")
    assert [r["page"] for r in records] == [0, 1, 2] and all(r["status"] == "ok" for r in records)
    assert alive() - before == set()  # pages, rendered images: all freed, though the model lives on
    records = process_document(model, schema, str(pdf), base, per="document")
    assert len(records) == 1 and alive() - before == set()


# ---------------------------------------------------------------- workers die with their parent (issue 15, finding 9)


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is dead)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: set[int], bound_s: float) -> set[int]:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if _alive(p)}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_die_when_the_parent_is_killed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_invoices(docs, 6)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "docvlm", "batch", str(docs), "--schema", SCHEMA, "--model", "test",
           "-o", str(out), "--workers", "2"]
    # each worker sleeps 60 s before its first document: without the parent-death signal it would outlive
    # the parent by that long
    env = {**os.environ, "DOCVLM_BATCH_TEST_DELAY": "60"}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            workers = {p for p in _children(proc.pid) if "resource_tracker" not in
                       (Path("/proc") / str(p) / "cmdline").read_bytes().decode(errors="replace")}
            time.sleep(0.05)
        assert len(workers) == 2, "the workers did not start"
        time.sleep(0.5)  # let them run their initializer (where the signal is armed)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        proc.wait()
        # a generous bound on waiting (not a timing claim): far below the workers' 60 s of sleep
        assert _wait_gone(workers, 20) == set()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not out.exists() or out.read_bytes() == b""


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/stat").exists(), reason="forks, reads /proc")
def test_the_watchdog_ends_a_worker_without_the_parent_death_signal() -> None:
    import docvlm.batch as batch

    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:  # the worker's parent: starts the worker, reports its pid, then waits to be killed
        try:
            worker = os.fork()
            if worker == 0:
                sys.platform = "darwin"  # no prctl here: the watchdog thread must notice the parent's death
                batch._die_with_parent(os.getppid())
                time.sleep(60)
                os._exit(0)
            os.write(write, str(worker).encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(write)
    worker = int(os.read(read, 32))
    os.close(read)
    time.sleep(0.3)
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    try:
        assert _wait_gone({worker}, 20) == set()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
