"""Peak RSS of extraction and batch jobs over a 100-page and a 1,000-page PDF: memory must not grow with pages.

Usage: python -m bench.memory [--small 100] [--large 1000] [--modes extract,batch-page,batch-document]

Each measurement runs in a fresh subprocess (so one cannot inherit another's heap) and reports the peak
resident set size (``ru_maxrss``) of the process that holds the pages: the process itself for ``extract``
(``dv.extract`` over the whole document, TestModel; ``extract-all`` with a field no page has, so that every
page is read), the worker for ``batch-*`` (``dv.batch`` with one worker,
one record per page or one per document). Prints peak RSS at both sizes and the ratio large / small.
Goal: ratio <= 1.2 and peak < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEMA = '''
from typing import Literal

from pydantic import BaseModel


class Loose(BaseModel):
    invoice_number: str | None = None
    total: float | None = None


class Unfound(BaseModel):
    invoice_number: str | None = None
    swift_code: Literal["NEVER-PRINTED"] | None = None  # never on a page: extraction reads every page
'''

MODES = ("extract", "extract-all", "batch-page", "batch-document")


def make_pdf(path: Path, pages: int) -> None:
    """``pages`` pages: generated invoices, each repeated to fill the count (fast: page copies)."""
    import pymupdf

    from docvlm.synth import generate_dataset

    sources = [pymupdf.open(stream=d.pdf, filetype="pdf") for d in generate_dataset("invoice", 10, 7)]
    out = pymupdf.open()
    for i in range(pages):
        out.insert_pdf(sources[i % len(sources)], to_page=0)
    out.save(path, garbage=3, deflate=True)  # repeated pages share their resources: a small file
    out.close()


def child(mode: str, pdf: str, schema: str, output: str) -> None:
    import resource

    start = time.perf_counter()
    if mode.startswith("extract"):
        import docvlm as dv
        from docvlm.cli import load_schema

        model = dv.load_model("test")
        if mode == "extract-all":
            schema = schema.replace(":Loose", ":Unfound")
        with dv.open(pdf) as doc:
            dv.extract(model, doc, load_schema(schema))
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    else:
        from docvlm.batch import run_batch

        per = mode.split("-", 1)[1]
        summary = run_batch([pdf], schema=schema, model="test", output=output, per=per, workers=1)  # type: ignore[arg-type]
        assert summary.written, summary
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the worker
    print(json.dumps({"peak_mb": peak_kb / 1024, "seconds": time.perf_counter() - start}))


def measure(mode: str, pdf: Path, schema: str, tmp: Path) -> dict[str, float]:
    out = tmp / f"{mode}-{pdf.stem}.jsonl"
    out.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-m", "bench.memory", "--child", mode, str(pdf), schema, str(out)],
                          capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", nargs=4, metavar=("MODE", "PDF", "SCHEMA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "bench_schema.py").write_text(SCHEMA)
        schema = f"{tmp / 'bench_schema.py'}:Loose"
        pdfs = {}
        for n in (args.small, args.large):
            pdfs[n] = tmp / f"pages-{n}.pdf"
            make_pdf(pdfs[n], n)
        print(f"{'mode':<16} {'pages':>6} {'peak RSS MB':>12} {'seconds':>8}")
        for mode in args.modes.split(","):
            peaks = {}
            for n, pdf in pdfs.items():
                r = measure(mode, pdf, schema, tmp)
                peaks[n] = r["peak_mb"]
                print(f"{mode:<16} {n:>6} {r['peak_mb']:>12.0f} {r['seconds']:>8.1f}", flush=True)
            print(f"{mode:<16} ratio {args.large}/{args.small}: {peaks[args.large] / peaks[args.small]:.2f}", flush=True)


if __name__ == "__main__":
    main()
