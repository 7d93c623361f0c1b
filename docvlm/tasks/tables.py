"""Tables of born-digital pages through PyMuPDF's table finder, cell text read from the cells' rectangles.

PyMuPDF's own ``extract()`` / ``to_pandas()`` scramble some cell text (``'1875\\n.'`` for ``18.75``), so
docvlm uses only the cell geometry from the finder and takes each cell's text from the page's words
whose centre lies in the cell.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from docvlm.documents.base import Page
from docvlm.documents.pdf import PDFPage
from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table, TableCell
from docvlm.types.text import WordList

__all__ = ["find_tables"]

_TOL = 1.0  # points: grid lines closer than this are one line


def find_tables(page: Page, *, strategy: str = "lines") -> list[Table]:
    """Tables on a born-digital PDF page, with cell boxes (page space), spans and header rows.

    Args:
        page: a PDF page with a text layer.
        strategy: PyMuPDF's detection strategy: ``"lines"`` (ruled tables, default) or ``"text"``
            (borderless tables aligned by text).

    Raises:
        UsageError: the page is not a PDF page (images and scans need a vision model).
    """
    if not isinstance(page, PDFPage):
        raise UsageError(
            "find_tables reads a PDF's vector lines and text layer, and this page is an image",
            source=page.document.source, page=page.index,
            hint="use a vision model for tables in images and scans",
        )
    if strategy not in ("lines", "text"):
        raise UsageError(f"unknown table strategy {strategy!r}", hint="use 'lines' or 'text'")
    fitz_page = page.fitz_page
    rotation = page.rotation
    # the finder works in displayed coordinates; on an unrotated page these are page space
    if rotation:
        fitz_page.set_rotation(0)
    try:
        found = fitz_page.find_tables(strategy=strategy)
        tables = [_to_table(t, page.words(), page.index) for t in found.tables]
    finally:
        if rotation:
            fitz_page.set_rotation(rotation)
    return [t for t in tables if t is not None]


def _lines(values: Sequence[float]) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > _TOL:
            out.append(v)
    return out


def _index(lines: list[float], v: float) -> int:
    i = bisect_left(lines, v - _TOL)
    return min(i, len(lines) - 1)


def _to_table(found: Any, words: WordList, page_index: int) -> Table | None:
    rects = [tuple(c) for row in found.rows for c in row.cells if c is not None]
    if not rects:
        return None
    xs = _lines([r[0] for r in rects] + [r[2] for r in rects])
    ys = _lines([r[1] for r in rects] + [r[3] for r in rects])
    header_row = not found.header.external
    rows = words.rows
    cells: list[TableCell] = []
    taken: set[tuple[int, int]] = set()
    for x0, y0, x1, y1 in rects:
        r0, r1 = _index(ys, y0), _index(ys, y1)
        c0, c1 = _index(xs, x0), _index(xs, x1)
        if r1 <= r0 or c1 <= c0 or (r0, c0) in taken:
            continue
        taken.add((r0, c0))
        inside = [w for w in rows if x0 <= (w[0] + w[2]) / 2 <= x1 and y0 <= (w[1] + w[3]) / 2 <= y1]
        inside.sort(key=lambda w: (round(w[1] / 2), w[0]))  # lines top to bottom, words left to right
        cells.append(
            TableCell(
                row=r0, col=c0, row_span=r1 - r0, col_span=c1 - c0,
                text=" ".join(str(w[4]) for w in inside),
                box=BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1),
                is_header=header_row and r0 == 0,
            )
        )
    bx0, by0, bx1, by1 = found.bbox
    return Table(
        cells=cells, n_rows=len(ys) - 1, n_cols=len(xs) - 1, page=page_index,
        box=BoundingBox(x0=bx0, y0=by0, x1=bx1, y1=by1),
    )
