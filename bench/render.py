"""Pages/s of docvlm render + words against raw PyMuPDF (get_pixmap + get_text("words")), same PDF, same run.

Usage: python -m bench.render [--pages N] [--dpi D] [--repeat R]

Prints pages/s for: raw PyMuPDF in one process; docvlm in one process; docvlm with a 2-process pool;
and the ratios against raw. Goal: >= 0.95x raw in one process, >= 1.8x raw with 2 processes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def make_pdf(path: Path, pages: int) -> None:
    """A text-heavy PDF: the sample invoice followed by pages of dense paragraphs."""
    import pymupdf

    import docvlm as dv

    words = ["document", "understanding", "with", "vision", "language", "models", "typed", "validated", "grounded", "results", "boxes", "tables", "evidence", "page", "pixel", "normalized"]
    src = pymupdf.open(stream=dv.samples.invoice_pdf(), filetype="pdf")
    doc = pymupdf.open()
    for i in range(pages):
        if i % 4 == 0:
            doc.insert_pdf(src)
            continue
        page = doc.new_page(width=595, height=842)
        for line in range(70):  # about 700 words a page
            text = " ".join(words[(i * 7 + line * 3 + k) % len(words)] for k in range(10))
            page.insert_text((50, 60 + line * 10.5), text, fontsize=9)
    doc.save(path)


def raw(path: str, indices: list[int], dpi: float) -> int:
    import pymupdf

    doc = pymupdf.open(path)
    m = pymupdf.Matrix(dpi / 72, dpi / 72)
    n = 0
    for i in indices:
        page = doc[i]
        pix = page.get_pixmap(matrix=m, alpha=False)
        words = page.get_text("words")
        n += len(pix.samples) > 0 and len(words) >= 0
    return n


def docvlm_pages(path: str, indices: list[int], dpi: float, pil: bool = False) -> int:
    import docvlm as dv

    doc = dv.open(path)
    n = 0
    for i in indices:
        page = doc[i]
        image = page.render(dpi=dpi)
        if pil:
            image.image.size  # noqa: B018 - force the PIL conversion
        page.words()
        n += 1
    return n


def pooled(path: str, count: int, dpi: float, workers: int) -> int:
    chunks = [list(range(k, count, workers)) for k in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(docvlm_pages, [path] * workers, chunks, [dpi] * workers))


def best_rate(fn: object, repeat: int, count: int, *args: object) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return count / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=120)
    ap.add_argument("--dpi", type=float, default=144)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.pdf")
        make_pdf(Path(path), args.pages)
        idx = list(range(args.pages))
        raw(path, idx[:2], args.dpi)  # warm up caches (fonts)
        docvlm_pages(path, idx[:2], args.dpi)
        r_raw = best_rate(raw, args.repeat, args.pages, path, idx, args.dpi)
        r_dv = best_rate(docvlm_pages, args.repeat, args.pages, path, idx, args.dpi)
        r_pil = best_rate(docvlm_pages, args.repeat, args.pages, path, idx, args.dpi, True)
        r_pool = best_rate(pooled, args.repeat, args.pages, path, args.pages, args.dpi, args.workers)
    print(f"PDF: {args.pages} pages, {args.dpi:g} dpi, best of {args.repeat}, {os.cpu_count()} CPUs")
    print(f"raw PyMuPDF (get_pixmap + words), 1 process : {r_raw:7.1f} pages/s")
    print(f"docvlm render + words, 1 process          : {r_dv:7.1f} pages/s  ratio {r_dv / r_raw:.2f}x  (goal >= 0.95)")
    print(f"docvlm render + PIL image + words, 1 proc : {r_pil:7.1f} pages/s  ratio {r_pil / r_raw:.2f}x")
    print(f"docvlm render + words, {args.workers} processes        : {r_pool:7.1f} pages/s  ratio {r_pool / r_raw:.2f}x  (goal >= 1.8)")


if __name__ == "__main__":
    main()
