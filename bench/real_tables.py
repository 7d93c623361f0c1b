"""Tables on real documents: docvlm's classical path beside the table tools people use, measured in one run.

Usage: python -m bench.real_tables --data ../shared/realdev [--sets tables,table-images] [--limit N]
                                   [--peers camelot-stream,...] [--per-doc] [--json out.json]
(or through ``python -m bench.realdata --data ... --sets tables,table-images``).

Set up the peers once (they are not docvlm dependencies; they live in the bench's own environment)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -r bench/requirements-peers.txt

The bench runs each peer in that environment (``bench/_table_peers.py`` in a subprocess, JSON out), found at
``$BENCH_PEERS_PYTHON`` or ``<repo>/.venv-bench/bin/python``; a peer that is not installed prints
"not installed". Every peer page runs under a time budget (``--budget``, 60 s): past it the page counts as
found nothing, and its time is the budget.

Sets (each a folder of ``--data``, laid out as ``realdev`` is; the same command scores a held-out set):

``tables``
    ``icdar2013*/``: ICDAR-2013 competition PDFs and ``*-str.xml`` truth. ``extract_tables(None, page)`` on each
    page that holds a true table, no region given (tables are found, then read), against camelot (stream and
    lattice), pdfplumber, img2table and PyMuPDF's ``find_tables``. Score: the competition's adjacency relations
    (`docvlm.eval.metrics.adjacency_scores`), the predicted tables of a document's pages against its true
    tables; ``F1`` pools the relation counts of all documents, ``doc F1`` is the mean of per-document F1.
    ``tables-camelot/``: camelot's own test PDFs and expected tables, a second, tolerant check: per expected
    table, the adjacency F1 of the best-matching found table on its page, averaged.
``table-images``
    ``pubtabnet*/``: PubTabNet table crops (PNG) and HTML truth. ``extract_tables(None, image_page)`` (OCR words,
    ruling from the image) with docvlm's default OCR engine (RapidOCR when installed), again with each other
    installed engine (``docvlm-tesseract``), against img2table with tesseract. Score: TEDS of the best-scoring
    found table (0 when none), and TEDS-S (structure only).

Seconds per page are wall-clock inside each tool's own process (imports and start-up left out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

PDF_PEERS = ("camelot-stream", "camelot-lattice", "pdfplumber", "img2table", "pymupdf")
IMAGE_PEERS = ("img2table",)
_ROOT = Path(__file__).resolve().parent.parent


# peers -----------------------------------------------------------------------------------------------------
def peer_python() -> Path | None:
    """The bench environment's interpreter, or ``None`` when there is none."""
    given = os.environ.get("BENCH_PEERS_PYTHON")
    path = Path(given) if given else _ROOT / ".venv-bench" / "bin" / "python"
    return path if path.exists() else None


def run_peer(peer: str, jobs: list[dict[str, Any]], *, budget: float = 60.0) -> dict[str, Any]:
    """Run one peer over ``jobs`` in the bench environment: ``{"results": [...]}`` or ``{"missing": why}``."""
    python = peer_python()
    if python is None:
        return {"missing": "no bench environment (.venv-bench)"}
    with tempfile.TemporaryDirectory() as tmp:
        jobs_file, out_file = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        jobs_file.write_text(json.dumps(jobs))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_THREAD_LIMIT": "1"}
        env.pop("PYTHONPATH", None)
        proc = subprocess.run([str(python), str(_ROOT / "bench" / "_table_peers.py"), peer, str(jobs_file),
                               str(out_file), "--budget", str(budget)],
                              capture_output=True, text=True, env=env, timeout=budget * len(jobs) + 300)
        if not out_file.exists():
            return {"missing": f"the peer runner failed: {proc.stderr.strip().splitlines()[-1:]}"}
        out: dict[str, Any] = json.loads(out_file.read_text())
        return out


def grid_table(rows: list[list[list[Any]]], page: int | None = None) -> Any:
    """A docvlm Table from a peer's grid: positions sharing a key (the same cell) become one spanning cell
    when they form a rectangle."""
    from docvlm.types.table import Table, TableCell

    n_rows, n_cols = len(rows), max((len(r) for r in rows), default=0)
    groups: dict[Any, list[tuple[int, int, str]]] = {}
    for r, row in enumerate(rows):
        for c, (text, key) in enumerate(row):
            k = (r, c) if key is None else json.dumps(key)
            groups.setdefault(k, []).append((r, c, " ".join(str(text).split())))
    cells = []
    for members in groups.values():
        rs, cs = {m[0] for m in members}, {m[1] for m in members}
        r0, c0 = min(rs), min(cs)
        if len(members) == len(rs) * len(cs) and max(rs) - r0 + 1 == len(rs) and max(cs) - c0 + 1 == len(cs):
            cells.append(TableCell(row=r0, col=c0, row_span=len(rs), col_span=len(cs), text=members[0][2]))
        else:
            cells += [TableCell(row=r, col=c, text=t if (r, c) == (r0, c0) else "") for r, c, t in members]
    return Table(cells=cells, n_rows=n_rows, n_cols=n_cols, page=page)


# docvlm ----------------------------------------------------------------------------------------------------
def run_docvlm(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """docvlm's classical path over the same jobs, in this process."""
    import docvlm as dv
    from docvlm.errors import DocVLMError

    results = []
    for job in jobs:
        doc = dv.open(job.get("pdf") or job["image"])
        page = doc[job.get("page", 0)]
        start = time.perf_counter()
        error, tables = None, []
        try:
            tables = dv.extract_tables(None, page)
        except DocVLMError as exc:
            error = str(exc).splitlines()[0]
        results.append({"tables": tables, "seconds": time.perf_counter() - start, "error": error})
        doc.close()
    return {"peer": "docvlm", "results": results}


def _run_tool(tool: str, jobs: list[dict[str, Any]], budget: float, rows: dict[str, Any]) -> dict[str, Any] | None:
    """One tool over the jobs (docvlm here, a peer in its environment); ``None`` (and a line) when the peer is
    not installed."""
    out = run_docvlm(jobs) if tool == "docvlm" else run_peer(tool, jobs, budget=budget)
    if "missing" in out:
        rows[tool] = {"missing": out["missing"]}
        print(f"  {tool:<16} not installed ({out['missing']})", flush=True)
        return None
    return out


def _tables_of(result: dict[str, Any], page: int | None = None) -> list[Any]:
    from docvlm.types.table import Table

    return [t if isinstance(t, Table) else grid_table(t, page) for t in result["tables"]]


# ICDAR-2013 ------------------------------------------------------------------------------------------------
def icdar(folder: Path, tools: list[str], *, limit: int | None, budget: float, per_doc: bool) -> dict[str, Any]:
    from docvlm.eval import load_dataset
    from docvlm.eval.metrics import AdjacencyScores, adjacency_scores

    ds = load_dataset(folder, "icdar2013")
    truth: dict[str, list[Any]] = defaultdict(list)
    for s in ds.samples:
        truth[s.document].append(s)
    docs = sorted(truth)[:limit]
    jobs = [{"pdf": d, "page": p} for d in docs for p in sorted({s.page for s in truth[d]})]
    print(f"\nICDAR-2013 {folder.name}: {len(docs)} documents, {len(jobs)} pages, "
          f"{sum(len(truth[d]) for d in docs)} tables ({len(ds.skipped)} records skipped)", flush=True)
    rows: dict[str, Any] = {}
    per: dict[str, Any] = {}
    for tool in tools:
        started = time.perf_counter()
        out = _run_tool(tool, jobs, budget, rows)
        if out is None:
            continue
        found: dict[str, list[Any]] = defaultdict(list)
        seconds, errors = [], 0
        for job, res in zip(jobs, out["results"], strict=True):
            found[job["pdf"]] += _tables_of(res, job["page"])
            seconds.append(min(res["seconds"], budget))
            errors += res["error"] is not None
        scores = {d: adjacency_scores(found[d], [s.table for s in truth[d]]) for d in docs}
        total = sum(scores.values(), AdjacencyScores())
        rows[tool] = {"f1": total.f1, "precision": total.precision, "recall": total.recall,
                      "doc_f1": statistics.fmean(s.f1 for s in scores.values()),
                      "s_per_page": statistics.fmean(seconds), "max_s": max(seconds), "errors": errors,
                      "version": out.get("version"), "wall": time.perf_counter() - started}
        per[tool] = {Path(d).stem: scores[d].f1 for d in docs}
        print(f"  {tool:<16} F1 {total.f1:.3f} (P {total.precision:.3f} R {total.recall:.3f})  "
              f"doc F1 {rows[tool]['doc_f1']:.3f}  {rows[tool]['s_per_page']:.2f} s/page "
              f"(max {rows[tool]['max_s']:.1f})  errors {errors}", flush=True)
    if per_doc:
        names = list(per)
        print("  per document: " + "  ".join(f"{n[:10]:>10}" for n in names))
        for d in docs:
            stem = Path(d).stem
            print(f"  {stem:<13} " + "  ".join(f"{per[n][stem]:>10.3f}" for n in names))
    return {"set": folder.name, "documents": len(docs), "pages": len(jobs), "tools": rows, "per_document": per}


# camelot's expected tables ---------------------------------------------------------------------------------
def camelot_set(folder: Path, tools: list[str], *, limit: int | None, budget: float, per_doc: bool) -> dict[str, Any]:
    from docvlm.eval import load_dataset
    from docvlm.eval.metrics import adjacency_scores

    ds = load_dataset(folder, "camelot")
    samples = ds.samples[:limit]
    keys = sorted({(s.document, s.page) for s in samples})
    jobs = [{"pdf": d, "page": p} for d, p in keys]
    print(f"\ncamelot test PDFs {folder.name}: {len(samples)} expected tables on {len(jobs)} pages "
          f"({len(ds.skipped)} records skipped); tolerant: best-matching table's adjacency F1", flush=True)
    rows, per = {}, {}
    for tool in tools:
        out = _run_tool(tool, jobs, budget, rows)
        if out is None:
            continue
        found = {k: _tables_of(res, k[1]) for k, res in zip(keys, out["results"], strict=True)}
        f1s = {s.id: max((adjacency_scores(t, s.table).f1 for t in found[(s.document, s.page)]), default=0.0)
               for s in samples}
        seconds = [min(r["seconds"], budget) for r in out["results"]]
        rows[tool] = {"f1": statistics.fmean(f1s.values()), "s_per_page": statistics.fmean(seconds)}
        per[tool] = f1s
        print(f"  {tool:<16} F1 {rows[tool]['f1']:.3f}  {rows[tool]['s_per_page']:.2f} s/page", flush=True)
    if per_doc:
        names = list(per)
        for s in samples:
            print(f"  {s.id[:40]:<40} " + "  ".join(f"{per[n][s.id]:>8.3f}" for n in names))
    return {"set": folder.name, "samples": len(samples), "tools": rows, "per_sample": per}


# table images ----------------------------------------------------------------------------------------------
def _with_engines(tools: list[str]) -> list[str]:
    """docvlm once with its default OCR engine and once with each other engine installed (``docvlm-tesseract``)."""
    from docvlm.documents.ocr import available_engines

    engines = [e.value for e in available_engines()]
    extra = [f"docvlm-{e}" for e in engines[1:]] if "docvlm" in tools else []
    return [*tools[:1], *extra, *tools[1:]] if tools[:1] == ["docvlm"] else tools


def _run_image_tool(tool: str, jobs: list[dict[str, Any]], budget: float, rows: dict[str, Any]) -> dict[str, Any] | None:
    if not tool.startswith("docvlm-"):
        return _run_tool(tool, jobs, budget, rows)
    from docvlm.tasks import _table_image

    _table_image._ENGINE = tool.removeprefix("docvlm-")  # the bench's own switch: extract_tables has no engine knob
    try:
        return run_docvlm(jobs)
    finally:
        _table_image._ENGINE = "auto"


def pubtabnet(folder: Path, tools: list[str], *, limit: int | None, budget: float, per_doc: bool) -> dict[str, Any]:
    from docvlm.eval import load_dataset
    from docvlm.eval.metrics import teds

    jsonl = sorted(folder.glob("*.jsonl"))
    samples = [s for f in jsonl for s in load_dataset(f, "pubtabnet").samples][:limit]
    jobs = [{"image": s.document} for s in samples]
    print(f"\nPubTabNet {folder.name}: {len(samples)} table images; TEDS of the best found table", flush=True)
    rows, per = {}, {}
    for tool in _with_engines(tools):
        out = _run_image_tool(tool, jobs, budget, rows)
        if out is None:
            continue
        scores, structs = {}, {}
        for s, res in zip(samples, out["results"], strict=True):
            tables = [t for t in _tables_of(res) if t.cells]
            scores[s.id] = max((teds(t, s.table) for t in tables), default=0.0)
            structs[s.id] = max((teds(t, s.table, structure_only=True) for t in tables), default=0.0)
        seconds = [min(r["seconds"], budget) for r in out["results"]]
        errors = sum(r["error"] is not None for r in out["results"])
        rows[tool] = {"teds": statistics.fmean(scores.values()), "teds_struct": statistics.fmean(structs.values()),
                      "s_per_page": statistics.fmean(seconds), "errors": errors}
        per[tool] = scores
        print(f"  {tool:<16} TEDS {rows[tool]['teds']:.3f}  TEDS-S {rows[tool]['teds_struct']:.3f}  "
              f"{rows[tool]['s_per_page']:.2f} s/page  errors {errors}", flush=True)
    if per_doc:
        names = list(per)
        for s in samples:
            print(f"  {Path(s.document).stem:<24} " + "  ".join(f"{per[n][s.id]:>8.3f}" for n in names))
    return {"set": folder.name, "samples": len(samples), "tools": rows, "per_sample": per}


# entry points ----------------------------------------------------------------------------------------------
def run(name: str, data: Path, *, limit: int | None, model_spec: str, peers: list[str] | None = None,
        budget: float = 60.0, per_doc: bool = False) -> dict[str, Any]:
    """One set of `bench.realdata`: ``"tables"`` (ICDAR-2013 and camelot's PDFs) or ``"table-images"``
    (PubTabNet). ``model_spec`` is unused: the classical path needs no model."""
    del model_spec
    report: dict[str, Any] = {}
    if name == "tables":
        tools = ["docvlm", *(PDF_PEERS if peers is None else [p for p in peers if p in PDF_PEERS])]
        for folder in sorted(p for p in data.glob("icdar2013*") if p.is_dir()):
            report[folder.name] = icdar(folder, tools, limit=limit, budget=budget, per_doc=per_doc)
        if (data / "tables-camelot").is_dir():
            report["tables-camelot"] = camelot_set(data / "tables-camelot", tools, limit=limit, budget=budget,
                                                   per_doc=per_doc)
    elif name == "table-images":
        tools = ["docvlm", *(IMAGE_PEERS if peers is None else [p for p in peers if p in IMAGE_PEERS])]
        for folder in sorted(p for p in data.glob("pubtabnet*") if p.is_dir()):
            report[folder.name] = pubtabnet(folder, tools, limit=limit, budget=budget, per_doc=per_doc)
    else:
        raise ValueError(f"bench.real_tables has no set {name!r}")
    if not report:
        print(f"  {name}: no data for this set in {data}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--sets", default="tables,table-images")
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents per set")
    ap.add_argument("--peers", default=None, help="comma-separated peers (default: all); 'none' for docvlm only")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per page for a peer")
    ap.add_argument("--per-doc", action="store_true", help="print every document's score")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    peers = None if args.peers is None else [p.strip() for p in args.peers.split(",") if p.strip()]
    report = {name: run(name, args.data, limit=args.limit, model_spec="none", peers=peers, budget=args.budget,
                        per_doc=args.per_doc)
              for name in args.sets.split(",") if name}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
