"""Run one table peer over a list of pages and write what it found as JSON (used by `bench.real_tables`).

Usage: python bench/_table_peers.py PEER JOBS.json OUT.json [--budget SECONDS]

Runs in the bench's own environment (``.venv-bench``, from ``bench/requirements-peers.txt``), not docvlm's:
it imports no docvlm code. ``JOBS.json`` is a list of ``{"pdf": path, "page": 0-based}`` or ``{"image": path}``.
``OUT.json`` gets ``{"peer", "version", "results": [...]}`` with, per job, ``{"tables": [[[text, key], ...] per
row], "seconds", "error"}``: each table a grid of rows of cells, ``key`` equal for the positions of one spanning
cell (``null`` when the peer does not say). A job that runs past the budget is ended and recorded with an
error. Exit code 3 with ``{"missing": module}`` when the peer is not installed.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

Grid = list[list[list[Any]]]


class _Budget(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Budget


def _camelot(flavor: str) -> Any:
    import camelot

    def run(job: dict[str, Any]) -> list[Grid]:
        tables = camelot.read_pdf(job["pdf"], pages=str(job["page"] + 1), flavor=flavor)
        return [[[[str(v), None] for v in row] for row in t.df.values.tolist()] for t in tables]

    return run, camelot.__version__


def _pdfplumber() -> Any:
    import pdfplumber

    def run(job: dict[str, Any]) -> list[Grid]:
        with pdfplumber.open(job["pdf"]) as pdf:
            tables = pdf.pages[job["page"]].extract_tables()
        return [[[["" if v is None else str(v), None] for v in row] for row in t] for t in tables]

    return run, pdfplumber.__version__


def _pymupdf() -> Any:
    import pymupdf

    def run(job: dict[str, Any]) -> list[Grid]:
        with pymupdf.open(job["pdf"]) as doc:
            page = doc[job["page"]]
            out = []
            for t in page.find_tables().tables:
                rows = []
                for row in t.rows:
                    rows.append([["", None] if c is None else [page.get_textbox(c), list(c)] for c in row.cells])
                out.append(rows)
            return out

    return run, pymupdf.VersionBind


def _img2table() -> Any:
    import img2table
    from img2table.document import PDF, Image
    from img2table.ocr import TesseractOCR

    ocr = TesseractOCR(n_threads=1, lang="eng")

    def run(job: dict[str, Any]) -> list[Grid]:
        if "image" in job:
            tables = Image(job["image"]).extract_tables(ocr=ocr, implicit_rows=True, borderless_tables=True)
        else:
            found = PDF(job["pdf"], pages=[job["page"]]).extract_tables(implicit_rows=True, borderless_tables=True)
            tables = found.get(job["page"], [])
        out = []
        for t in tables:
            out.append([[["" if c.value is None else str(c.value), [int(c.bbox.x1), int(c.bbox.y1), int(c.bbox.x2), int(c.bbox.y2)]]
                         for c in row] for row in t.content.values()])
        return out

    return run, getattr(img2table, "__version__", "?")


PEERS = {
    "camelot-stream": lambda: _camelot("stream"),
    "camelot-lattice": lambda: _camelot("lattice"),
    "pdfplumber": _pdfplumber,
    "img2table": _img2table,
    "pymupdf": _pymupdf,
}


def main(argv: list[str]) -> int:
    peer, jobs_file, out_file = argv[:3]
    budget = float(argv[argv.index("--budget") + 1]) if "--budget" in argv else 60.0
    try:
        run, version = PEERS[peer]()
    except ImportError as exc:
        with open(out_file, "w") as fh:
            json.dump({"peer": peer, "missing": exc.name or str(exc)}, fh)
        return 3
    with open(jobs_file) as fh:
        jobs = json.load(fh)
    signal.signal(signal.SIGALRM, _alarm)
    results = []
    for job in jobs:
        start = time.perf_counter()
        tables: list[Grid] = []
        error = None
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            tables = run(job)
        except _Budget:
            error = f"ran past the {budget:.0f} s budget"
        except Exception as exc:  # a peer failing on one page is recorded, not fatal
            error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        results.append({"tables": tables, "seconds": time.perf_counter() - start, "error": error})
    with open(out_file, "w") as fh:
        json.dump({"peer": peer, "version": str(version), "results": results}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
