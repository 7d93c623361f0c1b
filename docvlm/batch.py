"""Batch extraction at scale that loses nothing: ``run_batch(inputs, schema=..., model=..., output=...)``.

Every document becomes exactly one JSON line in the output (one per page with ``per="page"``)::

    {"source", "sha256", "task", "model", "schema", "status": "ok" | "error",
     "value", "evidence", "error": {"type", "message", "page", "hint"} | null, "seconds"}

Guarantees:

- **Nothing lost.** A document that fails (corrupt file, a required field not found, a model error, any
  exception) gets an ``"error"`` record and the job goes on.
- **Nothing twice.** Each record is appended with a single ``write`` of the whole line, then flushed and
  fsynced, under an exclusive ``fcntl.flock`` on the output. On start the output is read: a document whose
  ``(sha256, task, model, schema)`` already has a complete record (ok or error) is skipped, and a partial last
  line left by a killed run is truncated away. So a job killed at any moment and started again with the
  same arguments ends with one record per document. Files with the same content (same sha256) are one
  document: the first path found is processed, the others are counted as skipped.
- **Parallel.** Documents are opened, rendered and extracted in a process pool (``spawn`` start method, so
  a GPU model is never forked); each worker loads the model once, from its spec string. The parent hashes the
  files, writes the records as they complete and is the only writer.

Two jobs writing the same output at once do not corrupt it (the lock) but may both process a document;
run one job per output file. To retry the documents that failed, filter their lines out of the output
(``status == "error"``) and run again.

Test hook: the environment variable ``DOCVLM_BATCH_TEST_DELAY`` (seconds) makes each worker sleep that long
per document, so tests can kill a job in the middle.
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import glob
import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from docvlm.errors import DocVLMError, UsageError

__all__ = ["DOCUMENT_SUFFIXES", "BatchSummary", "expand_inputs", "read_records", "run_batch"]

#: File name endings a folder or glob expands to (files named explicitly are taken whatever their name).
DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"})

_TASKS = ("extract",)
_PER = ("document", "page")
_DELAY_ENV = "DOCVLM_BATCH_TEST_DELAY"


@dataclass
class BatchSummary:
    """What a batch run did.

    Attributes:
        done: records written with status ``"ok"`` in this run.
        failed: records written with status ``"error"`` in this run.
        skipped: documents (pages, with ``per="page"``) that already had a record, or repeated the content
            of another input.
        output: the JSON-lines file.
        seconds: wall time of the run.
    """

    done: int = 0
    failed: int = 0
    skipped: int = 0
    output: Path = field(default_factory=Path)
    seconds: float = 0.0

    @property
    def written(self) -> int:
        """Records written in this run."""
        return self.done + self.failed

    def __str__(self) -> str:
        return (f"{self.done} ok, {self.failed} failed, {self.skipped} skipped in {self.seconds:.1f}s "
                f"-> {self.output}")


# ---------------------------------------------------------------- inputs


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files, folders (recursive) and globs (``**`` recursive) to a sorted-per-input, de-duplicated list of files.

    Folders and globs keep only :data:`DOCUMENT_SUFFIXES`; a file named explicitly is always kept (a wrong or
    damaged one then gets an error record).

    Raises:
        UsageError: an input that is no file or folder and matches nothing.
    """
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            found += _folder_files(p)
        elif p.is_file():
            found.append(p)
        elif _is_glob(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files: list[Path] = []
            for m in matches:
                if m.is_dir():
                    files += _folder_files(m)
                elif m.is_file() and m.suffix.lower() in DOCUMENT_SUFFIXES:
                    files.append(m)
            if not files:
                raise UsageError(f"no documents match {text!r}")
            found += files
        else:
            raise UsageError(f"no such file or folder: {text!r}", hint="check the path")
    seen: set[Path] = set()
    unique: list[Path] = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- output


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("sha256"), record.get("task"), record.get("model"), record.get("schema"),
            record.get("page"))


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The complete records of a batch output (a partial last line and lines that are not JSON objects are skipped)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is partial (or empty)
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


class _Output:
    """An append-only JSON-lines file, one atomic ``write`` per record under ``flock``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def recover(self) -> set[tuple[Any, ...]]:
        """Truncate a partial last line and return the keys of the complete records."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self.fd).st_size
            data = os.pread(self.fd, size, 0) if size else b""
            end = data.rfind(b"\n") + 1
            if end < len(data):
                os.ftruncate(self.fd, end)
                os.fsync(self.fd)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        keys: set[tuple[Any, ...]] = set()
        for line in data[:end].split(b"\n"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("status") in ("ok", "error"):
                keys.add(_key(record))
        return keys

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n").encode()
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            view = memoryview(line)
            while view:  # a regular file takes the whole line in one write; loop only for safety
                n = os.write(self.fd, view)
                view = view[n:]
            os.fsync(self.fd)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


# ---------------------------------------------------------------- workers

_worker: dict[str, Any] = {}


def _init_worker(model_spec: str, schema_spec: str) -> None:
    """Load the model and the schema once per worker; a failure is kept and raised by the first task."""
    try:
        from docvlm.cli import load_schema
        from docvlm.models import load_model

        _worker["schema"] = load_schema(schema_spec)
        _worker["model"] = load_model(model_spec)
    except BaseException as exc:  # re-raised in _work, where the parent sees it
        _worker["error"] = exc


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, DocVLMError):
        return {"type": type(exc).__name__, "message": exc.message, "page": exc.page, "hint": exc.hint}
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc), "page": None, "hint": None}


def _work(source: str, base: dict[str, Any], per: str, done_pages: frozenset[int]) -> list[dict[str, Any]]:
    """Process one document in a worker; per-document failures become error records."""
    if "error" in _worker:
        raise _worker["error"]
    from docvlm.documents import open_document
    from docvlm.tasks.extract import extract

    model, schema = _worker["model"], _worker["schema"]
    delay = float(os.environ.get(_DELAY_ENV) or 0)
    records: list[dict[str, Any]] = []

    def run(doc: Any, pages: list[int] | None, extra: dict[str, Any]) -> None:
        start = time.perf_counter()
        record = {**base, **extra, "status": "ok", "value": None, "evidence": {}, "error": None}
        try:
            result = extract(model, doc, schema, pages=pages)
            record["value"] = result.value.model_dump(mode="json")
            record["evidence"] = {k: v.model_dump(mode="json") for k, v in result.evidence.items()}
        except Exception as exc:  # any failure of one document is its error record
            record["status"], record["error"] = "error", _error(exc)
        record["seconds"] = round(time.perf_counter() - start, 4)
        records.append(record)

    start = time.perf_counter()
    if delay:
        time.sleep(delay)
    try:
        doc = open_document(source)
    except Exception as exc:
        extra = {"page": None} if per == "page" else {}
        records.append({**base, **extra, "status": "error", "value": None, "evidence": {}, "error": _error(exc),
                        "seconds": round(time.perf_counter() - start, 4)})
        return records
    with doc:
        if per == "document":
            run(doc, None, {})
        else:
            for i in range(len(doc)):
                if i not in done_pages:
                    run(doc, [i], {"page": i})
    return records


# ---------------------------------------------------------------- the job


def _schema_spec(schema: str | type[BaseModel]) -> tuple[str, str]:
    """(spec a worker can load, qualified name for the records)."""
    from docvlm.cli import load_schema

    if isinstance(schema, str):
        cls = load_schema(schema)
        spec = schema
    elif isinstance(schema, type) and issubclass(schema, BaseModel):
        cls = schema
        spec = f"{schema.__module__}:{schema.__qualname__}"
        if schema.__module__ == "__main__" or "<locals>" in schema.__qualname__:
            raise UsageError(f"the schema {schema.__qualname__} cannot be imported by the worker processes",
                             hint="define it in an importable module, or pass 'path/to/file.py:Class'")
    else:
        raise UsageError(f"schema must be a pydantic model class or 'module:Class', got {schema!r}")
    return spec, f"{cls.__module__}.{cls.__qualname__}"


def run_batch(
    inputs: Sequence[str | Path],
    *,
    task: Literal["extract"] = "extract",
    schema: str | type[BaseModel],
    model: str = "default",
    output: str | Path,
    per: Literal["document", "page"] = "document",
    workers: int | None = None,
    progress: bool = False,
) -> BatchSummary:
    """Run ``task`` on every input document in a process pool, appending one JSON line per document to ``output``.

    Args:
        inputs: files, folders (searched recursively) and globs (``**`` recursive) of PDFs and images.
        task: ``"extract"``: fill ``schema`` with per-field evidence (:func:`docvlm.extract`).
        schema: a pydantic model class (importable by module name) or ``"module:Class"`` /
            ``"path/to/file.py:Class"``.
        model: a model spec (:func:`docvlm.load_model`); each worker loads it once.
        output: the JSON-lines file, created or resumed.
        per: ``"document"`` (one record per file) or ``"page"`` (one record per page, with a ``"page"`` key).
        workers: worker processes (default: ``os.cpu_count()``, at most one per document to do).
        progress: show a progress bar on stderr.

    Returns:
        How many records were written ok / with an error, and how many documents were skipped.

    Raises:
        UsageError: a bad task, schema, ``per`` or input that matches nothing.
        DocVLMError: the model cannot be loaded (raised by the first worker task; the job stops).
    """
    t0 = time.perf_counter()
    if task not in _TASKS:
        raise UsageError(f"unknown batch task {task!r}", hint=f"use one of {', '.join(_TASKS)}")
    if per not in _PER:
        raise UsageError(f"per must be 'document' or 'page', got {per!r}")
    if not isinstance(model, str):
        raise UsageError("a batch model is a spec string (it is loaded again in each worker process)")
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    schema_spec, schema_name = _schema_spec(schema)
    files = expand_inputs(inputs)
    out = _Output(Path(output))
    summary = BatchSummary(output=Path(output))
    try:
        done_keys = out.recover()
        base_of = {"task": task, "model": model, "schema": schema_name}
        todo: list[tuple[str, dict[str, Any], frozenset[int]]] = []
        seen: set[str] = set()
        done_pages: dict[str, set[int]] = {}
        if per == "page":
            for sha, t, m, s, page in done_keys:
                if (t, m, s) == (task, model, schema_name) and isinstance(page, int):
                    done_pages.setdefault(sha, set()).add(page)
        for f in files:
            try:
                sha = _sha256(f)
            except OSError as exc:
                summary.failed += 1
                out.append({"source": str(f), "sha256": None, **base_of, "status": "error", "value": None,
                            "evidence": {}, "error": _error(exc), "seconds": 0.0})
                continue
            if sha in seen:
                summary.skipped += 1
                continue
            seen.add(sha)
            base = {"source": str(f), "sha256": sha, **base_of}
            if per == "document":
                if _key(base) in done_keys:
                    summary.skipped += 1
                    continue
                todo.append((str(f), base, frozenset()))
            else:
                if (sha, task, model, schema_name, None) in done_keys:  # the file could not be opened
                    summary.skipped += 1
                    continue
                pages = frozenset(done_pages.get(sha, ()))
                summary.skipped += len(pages)
                todo.append((str(f), base, pages))
        if todo:
            _run_pool(todo, per, model, schema_spec, workers, progress, out, summary)
    finally:
        out.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_pool(todo: list[tuple[str, dict[str, Any], frozenset[int]]], per: str, model: str, schema_spec: str,
              workers: int | None, progress: bool, out: _Output, summary: BatchSummary) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True, disable=not progress)
    pending = iter(todo)
    in_flight: set[cf.Future[list[dict[str, Any]]]] = set()
    with bar, cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_init_worker, initargs=(model, schema_spec)) as pool:
        task_id = bar.add_task("batch", total=len(todo))

        def submit(k: int) -> None:
            for source, base, pages in pending:
                in_flight.add(pool.submit(_work, source, base, per, pages))
                k -= 1
                if k <= 0:
                    return

        submit(n_workers * 4)  # bounded look-ahead: a million inputs are not a million futures
        try:
            while in_flight:
                finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    in_flight.discard(fut)
                    for record in fut.result():  # raises: model load failure, or a worker that died
                        out.append(record)
                        if record["status"] == "ok":
                            summary.done += 1
                        else:
                            summary.failed += 1
                    bar.advance(task_id)
                submit(len(finished))
        except cf.process.BrokenProcessPool as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            raise DocVLMError("a worker process died (out of memory, or a crash in a native library); "
                              "the records written so far are kept",
                              hint="run the same command again to resume") from exc
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
