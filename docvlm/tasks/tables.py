"""Tables: the classical path (PyMuPDF's line finder, word alignment, OCR for images), and the model path.

[`extract_tables`][docvlm.tasks.tables.extract_tables] is the entry point. Without a model (``model=None``) it reads a born-digital PDF:

1. ruled tables from the page's vector lines ([`find_tables`][docvlm.tasks.tables.find_tables] with ``strategy="lines"``): cell boxes are
   the ruling, a cell whose inner lines are missing spans rows or columns; rules drawn as thin filled
   rectangles count, and the missing outer borders of open-sided tables are implied; body rows that continue
   below a ruled (or shaded) header with horizontal rules only, or none, join it (`_continue_below`);
   the rules the words imply and the drawing lacks are added before the grid is read
   (`virtual_rules`): column lines that stop at the header continue through
   rows ruled by horizontal rules alone, a ruled band holding several record lines splits into rows, and a gap
   that splits the text of drawn cells becomes a column. Each table is read in the turn of the page that sets
   its text upright (a landscape table on a portrait page, a page whose /Rotate shows it upright), and its
   boxes are turned back into page space;
2. only when the page (or ``region``) has no ruled table: borderless tables from the alignment of the
   words (``strategy="text"``, docvlm's own), looked for inside ``region``, or else inside the table regions
   that the layout model ([`layout`][docvlm.tasks.layout.layout]) finds, so paragraphs are not taken for tables.

An image or a scanned page (no text layer) goes through `docvlm.tasks._table_image`: the ruling is read
from the pixels with OpenCV and drawn on a blank vector page for the same ruled-table finder, the cells' text
comes from OCR (RapidOCR when installed, else Tesseract) of an upscaled rendering with the rules painted out, and a table without ruling comes
from the alignment of the OCR words (full-width rules mark the header).

PyMuPDF's finder takes at least quadratic time in a page's drawing items and cannot be interrupted: a page
with more than `MAX_DRAWING_ITEMS` of them (in ``region``, when given) raises
`PageTooLargeError` instead of hanging.

With a model it asks twice per table: first for the grid (`TableGrid`: rows, columns, header rows and
merged cells, small bounded integers), then, row by row, for the text of the cells that start in that row
(a fixed-length list of bounded strings: a whole table as one JSON object would exceed any sensible
constrained-decoding budget). A vision model sees the table region rendered; a text-only model gets the
words inside the region as lines of text. When the page has a text layer, each cell's text is grounded:
its box is the union of the page words that spell it; otherwise cell boxes stay ``None``.

PyMuPDF 2.0 notes, found reading ``pymupdf/table.py``: ``Page.find_tables`` runs the layout model by default
(``use_layout=True``, about 1-2 s a page) and keeps only the line-based tables whose box has IoU >= 0.6 with a
layout ``table`` region. That region boxes the table's *text*, so a ruled table with wide margins (or one
with a spanning header) fails the test and is replaced by cells guessed from the text (cell edges at the
text's end); when the layout model finds no table at all the finder returns nothing, however ruled the
table. docvlm passes ``use_layout=False``: the line finder alone is exact and takes about 10 ms. Its own
``extract()`` also scrambles some cell text (``'1875\\n.'`` for ``18.75``), so docvlm takes only the cell
geometry from the finder and each cell's text from the page's words whose centre lies in the cell.
PyMuPDF's ``strategy="text"`` (even clipped to the layout region) puts an empty row between text lines and
merges columns whose header and body align differently: 0.10 cell-text accuracy on ``bench.tables``'
borderless pages, where docvlm's word-alignment finder scores 1.00.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from annotated_types import MaxLen, MinLen
from pydantic import BaseModel, ConfigDict, Field

from docvlm.documents.base import Page
from docvlm.documents.pdf import PDFPage, mupdf_errors
from docvlm.documents.web import WebPage
from docvlm.errors import PageTooLargeError, UsageError
from docvlm.tasks._page import PageInput, as_page, check_region, view
from docvlm.tasks._table_words import centre_in as _centre_in
from docvlm.tasks._table_words import phrases as _phrases
from docvlm.tasks._table_words import text_lines as _text_lines
from docvlm.tasks._table_words import text_table, virtual_rules
from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table, TableCell
from docvlm.types.text import WordRow

if TYPE_CHECKING:
    from docvlm.models.base import Model
    from docvlm.models.messages import Message
    from docvlm.models.test import FunctionInfo

__all__ = ["MAX_CELL_CHARS", "MAX_COLS", "MAX_DRAWING_ITEMS", "MAX_ROWS", "MergedCell", "TableGrid", "extract_tables", "find_tables",
           "table_answers"]

_TOL = 1.0  # points: grid lines closer than this are one line

#: Most drawing items (lines, curves, rectangles) on a page (or in the region asked about) that the ruled-table
#: finder reads: PyMuPDF's finder takes at least quadratic time in them and cannot be interrupted, so a page past
#: this (a map, a technical drawing) raises `PageTooLargeError` instead of hanging.
MAX_DRAWING_ITEMS = 30_000
_PAD = 6.0  # points: the most a cell's shading is inset from its rules
_REGION_PAD = 3.0  # points around a layout table region (it boxes the text only)

#: Most rows a model may report for one table.
MAX_ROWS = 60
#: Most columns a model may report for one table.
MAX_COLS = 24
#: Most characters of one cell's text from a model (fewer in wide rows, to stay in the model's budget).
MAX_CELL_CHARS = 80
_MAX_HEADER_ROWS = 4
_MAX_MERGED = 24


# the classical path --------------------------------------------------------------------------------------
def find_tables(page: PageInput, *, strategy: str = "lines", region: BoundingBox | None = None) -> list[Table]:
    """Tables on a born-digital PDF page, with cell boxes (page space), spans and header rows.

    ``"lines"`` runs PyMuPDF's line finder (``use_layout=False``); cell boxes are the ruling and a cell
    without inner lines spans rows or columns. Header rows: the first row (unless PyMuPDF finds the header
    above the table), and further rows as far as a first-row cell spans down. Body rows below a ruled header
    that have horizontal rules only (or no ruling) are added, split at the header's columns. A lone framed box
    (one cell) is not a table. ``"text"`` reads one borderless table from the alignment of the words: each text line a
    row, columns split at vertical gaps that (almost) no line crosses, a phrase crossing a gap spanning the
    columns; the first row is the header.

    Args:
        page: a PDF page with a text layer; for ``"text"`` also an image page (its words come from OCR).
        strategy: ``"lines"`` (ruled tables, the default) or ``"text"`` (a borderless table; give a
            ``region``, as running text around a table would join it).
        region: only tables in this region (page space): ruled tables mostly inside it; for ``"text"``
            the words inside it.

    Raises:
        UsageError: ``"lines"`` on an image page (no vector lines: use ``"text"`` with a region, or a vision
            model), an unknown strategy, or a region that is not in page space or misses the page.
    """
    page = as_page(page)
    if strategy not in ("lines", "text"):
        raise UsageError(f"unknown table strategy {strategy!r}", hint="use 'lines' or 'text'")
    if isinstance(page, WebPage) and strategy == "lines":  # a web page's tables are in its DOM, typed already
        region = check_region(page, region)
        return [t for t in page.tables() if region is None or t.box is None or _share_inside(t.box, region) >= 0.5]
    if not isinstance(page, PDFPage) and strategy == "lines":
        raise UsageError(
            "find_tables reads a PDF's vector lines and text layer, and this page is an image",
            source=page.document.source, page=page.index,
            hint="extract_tables(None, page) reads an image's ruling from its pixels and its cells by OCR",
        )
    region = check_region(page, region)
    if strategy == "text":
        layer = page.words() if isinstance(page, PDFPage) else page.words(ocr="auto")
        inside = [w for w in layer.rows if _centre_in(w, region or page.bbox)]
        table = text_table(inside, page.index)
        return [] if table is None else [table]
    assert isinstance(page, PDFPage)  # "lines" on an image page was refused above
    words = page.words().rows  # before the rotation changes: the text layer is cached with the right one
    fitz_page = page.fitz_page
    rotation = page.rotation
    # The finder works in displayed coordinates. The table is read in the turn of the page that sets its text
    # upright (a landscape table on a portrait page, or a page whose /Rotate shows its text upright), and its
    # boxes are turned back into page space (unrotated) afterwards.
    with mupdf_errors(page.document.source, page.index, "finding tables"):  # MuPDF's errors, typed
        try:
            fitz_page.set_rotation(0)
            drawings = fitz_page.get_drawings()
            n_items = sum(len(d["items"]) for d in drawings if region is None or _touches(d["rect"], region))
            if n_items > MAX_DRAWING_ITEMS:
                raise PageTooLargeError(
                    f"the page has {n_items:,} vector drawing items{' in the region' if region is not None else ''}, "
                    f"more than the table finder's budget of {MAX_DRAWING_ITEMS:,} (its time grows with their square)",
                    source=page.document.source, page=page.index,
                    hint="pass region=... around the table, or raise docvlm.tasks.tables.MAX_DRAWING_ITEMS",
                )
            turn = _upright_turn(fitz_page)
            if turn:
                fitz_page.set_rotation(turn)
            to_frame, back = fitz_page.rotation_matrix, fitz_page.derotation_matrix
            if turn:
                words = [(*_turned((w[0], w[1], w[2], w[3]), to_frame), *w[4:]) for w in words]
            out = ruled_tables(fitz_page, words, page.index, to_frame if turn else None, drawings=drawings)
            if turn:
                out = [_turn_table(t, back) for t in out]
        finally:  # the page keeps its own rotation, whatever happened
            if fitz_page.rotation != rotation:
                fitz_page.set_rotation(rotation)
    if region is not None:
        out = [t for t in out if t.box is not None and _share_inside(t.box, region) >= 0.5]
    return out


def ruled_tables(fitz_page: Any, words: Sequence[WordRow], page_index: int, matrix: Any = None, *,
                 drawings: list[dict[str, Any]] | None = None) -> list[Table]:
    """The ruled tables of a PyMuPDF page, read in its displayed coordinates, cell text from ``words`` (given in
    the same coordinates); ``matrix`` maps the page's drawings (unrotated) to them when the page is turned.

    Also used for images: their ruling, found in the pixels, is drawn on a blank page of the image's size.
    """
    # use_layout=False: PyMuPDF 2.0 otherwise gates ruled tables by its layout model (see the module docs)
    drawings = fitz_page.get_drawings() if drawings is None else drawings
    horizontal, vertical = _segments(drawings, matrix)
    added = _open_sides(horizontal, vertical)
    found = fitz_page.find_tables(strategy="lines", use_layout=False, add_lines=added or None)
    raw = list(found.tables) if found is not None else []
    # the rules the words imply and the drawing lacks (body rows or columns not ruled), then the grid again
    implied = [seg for t in raw for seg in _implied_rules(t, words)]
    if implied:
        found = fitz_page.find_tables(strategy="lines", use_layout=False, add_lines=added + implied)
        raw = list(found.tables) if found is not None else []
    # the drawn rules (lines, thin or stroked rectangles) and the implied ones: grid lines the finder takes from
    # the edges of shading (a cell's padded background, a band behind each text line) are not rules
    drawn = _drawn_rules(drawings, matrix, horizontal, vertical)
    for (ax, ay), (bx, by) in added + implied:
        if abs(ay - by) < 1:
            drawn[0].append((min(ax, bx), max(ax, bx), ay))
        else:
            drawn[1].append((min(ay, by), max(ay, by), ax))
    tables = [_to_table(t, words, page_index, drawn) for t in raw]
    out = [t for t in tables if t is not None]
    return [_continue_below(t, words, horizontal, [o.box for o in out if o is not t and o.box is not None])
            for t in out]


def _upright_turn(fitz_page: Any) -> int:
    """The clockwise turn (0, 90, 180 or 270) that sets most of an unrotated page's text upright."""
    weight = {0: 0, 90: 0, 180: 0, 270: 0}
    for block in fitz_page.get_text("dict", flags=0)["blocks"]:
        for line in block.get("lines", ()):
            dx, dy = line["dir"]
            turn = 0 if dx > 0.7 else 90 if dy < -0.7 else 180 if dx < -0.7 else 270 if dy > 0.7 else None
            if turn is not None:
                weight[turn] += sum(len(span["text"].strip()) for span in line["spans"])
    best = max(weight, key=lambda k: weight[k])
    return best if weight[best] > weight[0] else 0


def _turned(box: tuple[float, float, float, float], matrix: Any) -> tuple[float, float, float, float]:
    from docvlm.documents.pdf import load_pymupdf as _pymupdf

    r = _pymupdf().Rect(*box) * matrix
    return (r.x0, r.y0, r.x1, r.y1)


def _turn_table(table: Table, matrix: Any) -> Table:
    """``table`` with its and its cells' boxes mapped by ``matrix`` (a turn by a multiple of 90 degrees)."""
    def turn(box: BoundingBox | None) -> BoundingBox | None:
        return None if box is None else BoundingBox.from_corners(*_turned(box.xyxy, matrix))

    cells = [c.model_copy(update={"box": turn(c.box)}) for c in table.cells]
    return table.model_copy(update={"cells": cells, "box": turn(table.box)})


def _touches(rect: Any, region: BoundingBox) -> bool:
    return bool(rect.x0 <= region.x1 and rect.x1 >= region.x0 and rect.y0 <= region.y1 and rect.y1 >= region.y0)


def _segments(drawings: list[dict[str, Any]], matrix: Any = None,
              ) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """The page's straight rules: horizontal ``(x0, x1, y)`` and vertical ``(y0, y1, x)``, from lines and thin
    rectangles (merged where they touch), in the coordinates ``matrix`` maps the unrotated page to."""
    horizontal: list[tuple[float, float, float]] = []
    vertical: list[tuple[float, float, float]] = []
    for path in drawings:
        for item in path["items"]:
            if item[0] == "l":
                (ax, ay), (bx, by) = item[1], item[2]
            elif item[0] == "re":
                r = item[1]
                if r.height <= 2 and r.width > r.height:
                    ax, ay, bx, by = r.x0, (r.y0 + r.y1) / 2, r.x1, (r.y0 + r.y1) / 2
                elif r.width <= 2 and r.height > r.width:
                    ax, ay, bx, by = (r.x0 + r.x1) / 2, r.y0, (r.x0 + r.x1) / 2, r.y1
                else:
                    continue
            else:
                continue
            if matrix is not None:
                ax, ay, bx, by = _turned((ax, ay, bx, by), matrix)
            if abs(ay - by) < 1 and abs(ax - bx) >= 3:
                horizontal.append((min(ax, bx), max(ax, bx), (ay + by) / 2))
            elif abs(ax - bx) < 1 and abs(ay - by) >= 3:
                vertical.append((min(ay, by), max(ay, by), (ax + bx) / 2))
    return _merge_segments(horizontal), _merge_segments(vertical)


def _merge_segments(segments: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    out: list[tuple[float, float, float]] = []
    for a, b, at in sorted(segments, key=lambda s: (round(s[2]), s[0])):
        if out and abs(out[-1][2] - at) <= _TOL and a <= out[-1][1] + 3:
            out[-1] = (out[-1][0], max(out[-1][1], b), out[-1][2])
        else:
            out.append((a, b, at))
    return out


def _open_sides(horizontal: list[tuple[float, float, float]], vertical: list[tuple[float, float, float]],
                ) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The missing outer borders of open-sided ruled tables, as lines for the finder's ``add_lines``.

    Many tables draw their row rules and inner column lines but no left or right border, so the finder
    drops the outer columns. Rules (`_segments`) that end at the same x and follow each other down the
    page, each pair bridged by a column line, imply a border there from the first to the last of them.
    """
    if len(horizontal) < 2 or not vertical:
        return []
    added: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for side in (0, 1):
        ends: list[list[tuple[float, float, float]]] = []
        for rule in sorted(horizontal, key=lambda r: r[side]):
            if ends and abs(ends[-1][0][side] - rule[side]) <= 2:
                ends[-1].append(rule)
            else:
                ends.append([rule])
        for group in ends:
            x = sum(r[side] for r in group) / len(group)
            run: list[tuple[float, float, float]] = []
            for step in [*sorted(group, key=lambda r: r[2]), None]:
                if step is not None and run and _bridged(run[-1], step, vertical):
                    run.append(step)
                    continue
                if len(run) >= 2:
                    top, bottom = run[0][2], run[-1][2]
                    if not any(abs(v[2] - x) <= 3 and v[0] <= top + 3 and v[1] >= bottom - 3 for v in vertical):
                        added.append(((x, top), (x, bottom)))
                run = [] if step is None else [step]
    return added


def _bridged(upper: tuple[float, float, float], lower: tuple[float, float, float],
             vertical: list[tuple[float, float, float]]) -> bool:
    """Whether a column line runs from one rule down to the next, within their extent."""
    left, right = min(upper[0], lower[0]), max(upper[1], lower[1])
    return any(left - 3 <= v[2] <= right + 3 and v[0] <= upper[2] + 3 and v[1] >= lower[2] - 3 for v in vertical)


def _implied_rules(found: Any, words: Sequence[WordRow]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    rects = [tuple(c) for row in found.rows for c in row.cells if c is not None]
    return virtual_rules(tuple(found.bbox), rects, words, _TOL) if len(rects) >= 2 else []


def _share_inside(box: BoundingBox, region: BoundingBox) -> float:
    inter = box.intersection(region)
    return inter.area / box.area if inter is not None and box.area > 0 else 0.0


def _lines(values: Sequence[float]) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > _TOL:
            out.append(v)
    return out


def _index(lines: list[float], v: float) -> int:
    lo, hi = 0, len(lines) - 1
    return min(range(lo, hi + 1), key=lambda i: abs(lines[i] - v))


def _reading_order(words: Sequence[WordRow]) -> list[WordRow]:
    """Words as lines top to bottom, each left to right."""
    return [w for line in _text_lines(words) for w in line]


def _drawn_rules(drawings: list[dict[str, Any]], matrix: Any, straight_h: list[tuple[float, float, float]],
                 straight_v: list[tuple[float, float, float]],
                 ) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """Every drawn rule: the straight rules (`_segments`) and the sides of stroked rectangles."""
    horizontal, vertical = list(straight_h), list(straight_v)
    for path in drawings:
        if "s" not in (path.get("type") or ""):
            continue
        for item in path["items"]:
            if item[0] != "re":
                continue
            r = item[1]
            x0, y0, x1, y1 = _turned((r.x0, r.y0, r.x1, r.y1), matrix) if matrix is not None else (r.x0, r.y0, r.x1, r.y1)
            x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
            horizontal += [(x0, x1, y0), (x0, x1, y1)]
            vertical += [(y0, y1, x0), (y0, y1, x1)]
    return horizontal, vertical


def _to_table(found: Any, words: Sequence[WordRow], page_index: int,
              drawn: tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]] | None = None,
              ) -> Table | None:
    rects = [tuple(c) for row in found.rows for c in row.cells if c is not None]
    if len(rects) < 2:
        return None
    xs = _lines([r[0] for r in rects] + [r[2] for r in rects])
    ys = _lines([r[1] for r in rects] + [r[3] for r in rects])
    if drawn is not None:
        xs, ys = _ruled_lines(xs, ys, found.bbox, drawn)
    placed: list[tuple[int, int, int, int, tuple[float, ...]]] = []
    taken: set[tuple[int, int]] = set()
    for rect in rects:
        x0, y0, x1, y1 = rect
        r0, r1 = _index(ys, y0), _index(ys, y1)
        c0, c1 = _index(xs, x0), _index(xs, x1)
        if r1 <= r0 or c1 <= c0 or any((r, c) in taken for r in range(r0, r1) for c in range(c0, c1)):
            continue
        taken.update((r, c) for r in range(r0, r1) for c in range(c0, c1))
        placed.append((r0, r1, c0, c1, rect))
    # header: the first row (unless PyMuPDF found the header above the table) down to where its cells end
    header_rows = 0
    if not found.header.external:
        header_rows = max((r1 - r0 for r0, r1, *_ in placed if r0 == 0), default=0)
    cells: list[TableCell] = []
    for r0, r1, c0, c1, _ in placed:
        x0, y0, x1, y1 = xs[c0], ys[r0], xs[c1], ys[r1]
        inside = [w for w in words if x0 <= (w[0] + w[2]) / 2 <= x1 and y0 <= (w[1] + w[3]) / 2 <= y1]
        cells.append(
            TableCell(
                row=r0, col=c0, row_span=r1 - r0, col_span=c1 - c0,
                text=" ".join(str(w[4]) for w in _reading_order(inside)),
                box=BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1),
                is_header=r0 < header_rows,
            )
        )
    cells.sort(key=lambda c: (c.row, c.col))
    bx0, by0, bx1, by1 = found.bbox
    return Table(
        cells=cells, n_rows=len(ys) - 1, n_cols=len(xs) - 1, page=page_index,
        box=BoundingBox(x0=bx0, y0=by0, x1=bx1, y1=by1),
    )


def _ruled_lines(xs: list[float], ys: list[float], bbox: Any,
                 drawn: tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]],
                 ) -> tuple[list[float], list[float]]:
    """The grid lines that a drawn rule backs (and the outer ones), when the table is drawn with rules at all:
    the others come from the edges of shading and cut cells apart (or off their text)."""
    x0, y0, x1, y1 = bbox
    horizontal = [h for h in drawn[0] if h[0] < x1 - _TOL and h[1] > x0 + _TOL and y0 - 2 <= h[2] <= y1 + 2]
    vertical = [v for v in drawn[1] if v[0] < y1 - _TOL and v[1] > y0 + _TOL and x0 - 2 <= v[2] <= x1 + 2]
    bx = [x for x in xs if any(abs(v[2] - x) <= 1.5 for v in vertical)]
    by = [y for y in ys if any(abs(h[2] - y) <= 1.5 for h in horizontal)]
    if len(bx) < 3 or len(by) < 3:  # a table of shading alone (or nearly): its edges are its grid
        return xs, ys
    # an unbacked line a cell's padding away from a rule is the edge of that cell's shading
    keep_x = [x for i, x in enumerate(xs) if x in bx or i in (0, len(xs) - 1) or all(abs(x - b) > _PAD for b in bx)]
    keep_y = [y for i, y in enumerate(ys) if y in by or i in (0, len(ys) - 1) or all(abs(y - b) > _PAD for b in by)]
    return keep_x, keep_y


def _continue_below(table: Table, words: Sequence[WordRow], horizontal: list[tuple[float, float, float]],
                    others: list[BoundingBox]) -> Table:
    """``table`` with the body rows that continue below its ruling (tables ruled as "horizontal rules").

    Many tables rule (or shade) only their header and separate the body rows by horizontal rules alone, or
    by nothing: the line finder then returns the header only. Below it, a band between rules that run the
    table's full width is a row when the words in it all lie within the table's width (a phrase crossing a
    column boundary spans the columns). Past the last such rule, a text line is a row only when it follows
    at the rows' pitch, each phrase fits one ruled column, and it fills the first column and at least one
    more (so a caption, a paragraph or totals to the right are not taken in). Cells split at the ruled
    columns; their boxes are the column x-ranges and the row's y-range (between rules where there are).
    """
    if table.box is None or any(c.box is None for c in table.cells):
        return table
    xs = _lines([v for c in table.cells if c.box is not None for v in (c.box.x0, c.box.x1)])
    ys = _lines([v for c in table.cells if c.box is not None for v in (c.box.y0, c.box.y1)])
    if len(xs) != table.n_cols + 1 or len(ys) < 2:
        return table
    left, right, tol = xs[0], xs[-1], 4.0
    pitches = sorted(b - a for a, b in itertools.pairwise(ys))
    pitch = pitches[len(pitches) // 2]
    below = [w for w in words if (w[1] + w[3]) / 2 > table.box.y1 and w[2] > left and w[0] < right]
    if not below:
        return table
    heights = sorted(w[3] - w[1] for w in below)
    h = max(heights[len(heights) // 2], 1.0)
    lines = _text_lines(below)
    rules = sorted(y for x0, x1, y in horizontal if abs(x0 - left) <= tol and abs(x1 - right) <= tol)

    def fits(line: list[WordRow]) -> bool:  # within the table's width
        return all(w[0] >= left - tol and w[2] <= right + tol for w in line)

    def clear(y0: float, y1: float) -> bool:  # no other table in the way
        band = BoundingBox(x0=left, y0=y0, x1=right, y1=y1)
        return all(band.intersection(o) is None for o in others)

    def column(x: float) -> int:
        return max(0, min(len(xs) - 2, sum(b <= x for b in xs[1:-1])))

    def spans(line_words: list[WordRow]) -> list[tuple[int, int, list[WordRow]]]:
        """Phrases (words closer than half a word height) as column ranges, merged where they share a column."""
        out: list[tuple[int, int, list[WordRow]]] = []
        for line in _text_lines(line_words):
            for g in _phrases(line, h):
                c0, c1 = column(g[0][0] + _TOL), column(g[-1][2] - _TOL)
                for k, (a, b, ws) in enumerate(out):
                    if c0 <= b and a <= c1:
                        out[k] = (min(a, c0), max(b, c1), ws + g)
                        break
                else:
                    out.append((c0, c1, list(g)))
        merged = True
        while merged:  # phrases of later lines can join two earlier cells
            merged = False
            for i in range(len(out)):
                for j in range(i + 1, len(out)):
                    if out[i][0] <= out[j][1] and out[j][0] <= out[i][1]:
                        first, second = out[i], out.pop(j)
                        out[i] = (min(first[0], second[0]), max(first[1], second[1]), first[2] + second[2])
                        merged = True
                        break
                if merged:
                    break
        return out

    rows: list[tuple[float, float, bool, list[tuple[int, int, list[WordRow]]]]] = []  # y0, y1, ruled, cells
    top, i = table.box.y1, 0
    # bands between full-width rules
    for y in (r for r in rules if r > top + _TOL):
        band = [line for line in lines[i:] if (line[0][1] + line[0][3]) / 2 < y]
        if not band or y - top > 3 * pitch or not all(fits(line) for line in band) or not clear(top, y):
            break
        rows.append((top, y, True, spans([w for line in band for w in line])))
        top, i = y, i + len(band)
    else:
        # text lines past the last rule, at the rows' pitch
        last_centre = top - pitch / 2
        for line in lines[i:]:
            centre = (min(w[1] for w in line) + max(w[3] for w in line)) / 2
            cells = spans(line)
            if (centre - last_centre > 1.25 * pitch or not fits(line) or any(a != b for a, b, _ in cells)
                    or len(cells) < 2 or min(a for a, _, _ in cells) != 0
                    or not clear(top, max(w[3] for w in line))):
                break
            bottom = max(w[3] for w in line)
            rows.append((top, bottom, False, cells))
            top, last_centre = bottom, centre
    if not rows:
        return table
    # text-only rows: edges midway between lines, the last as far below its text as the row's top is above
    fixed: list[tuple[float, float, list[tuple[int, int, list[WordRow]]]]] = []
    for k, (y0, y1, ruled, cells) in enumerate(rows):
        if not ruled:
            text_top = min(w[1] for _, _, ws in cells for w in ws)
            text_bottom = max(w[3] for _, _, ws in cells for w in ws)
            nxt = rows[k + 1] if k + 1 < len(rows) else None
            if nxt is not None:
                y1 = (text_bottom + min(w[1] for _, _, ws in nxt[3] for w in ws)) / 2
            else:
                y1 = text_bottom + max(0.0, text_top - y0)
            if fixed:
                y0 = fixed[-1][1]
        fixed.append((y0, y1, cells))
    new_cells = list(table.cells)
    for k, (y0, y1, cells) in enumerate(fixed):
        r = table.n_rows + k
        filled = {c for a, b, _ in cells for c in range(a, b + 1)}
        for a, b, ws in [*cells, *((c, c, []) for c in range(table.n_cols) if c not in filled)]:
            new_cells.append(TableCell(
                row=r, col=a, col_span=b - a + 1, text=" ".join(str(w[4]) for w in _reading_order(ws)),
                box=BoundingBox(x0=xs[a], y0=y0, x1=xs[b + 1], y1=y1),
            ))
    new_cells.sort(key=lambda c: (c.row, c.col))
    box = table.box
    return table.model_copy(update={
        "cells": new_cells, "n_rows": table.n_rows + len(fixed),
        "box": BoundingBox(x0=box.x0, y0=box.y0, x1=box.x1, y1=max(box.y1, fixed[-1][1])),
    })


def _classical(page: Page, region: BoundingBox | None) -> list[Table]:
    if not isinstance(page, PDFPage | WebPage) or not page.has_text_layer:  # an image or a scan: pixels and OCR
        from docvlm.tasks._table_image import image_tables

        return image_tables(page, region)
    ruled = find_tables(page, strategy="lines", region=region)
    if ruled or isinstance(page, WebPage):  # a web page's tables are all in its DOM
        return ruled
    if region is not None:
        return find_tables(page, strategy="text", region=region)
    assert isinstance(page, PDFPage)
    fitz_page = page.fitz_page
    rotation = fitz_page.rotation
    with mupdf_errors(page.document.source, page.index, "finding tables"):  # MuPDF's errors, typed
        try:
            fitz_page.set_rotation(0)
            turn = _upright_turn(fitz_page)
            if turn:
                fitz_page.set_rotation(turn)
                back = fitz_page.derotation_matrix
        finally:
            fitz_page.set_rotation(rotation)
    if turn:  # text that runs up or down the page: the layout model and the alignment read it set upright
        return [_turn_table(t, back).model_copy(update={"page": page.index}) for t in _upright_text_tables(page, turn)]
    return [t for r in _layout_regions(page) for t in find_tables(page, strategy="text", region=r)]


def _upright_text_tables(page: PDFPage, turn: int) -> list[Table]:
    """The borderless tables of a page whose text is turned, read on a copy of the page turned upright (in the
    displayed coordinates of the page at that turn)."""
    from docvlm.documents import open_document
    from docvlm.documents.pdf import load_pymupdf as _pymupdf

    pymupdf = _pymupdf()
    with mupdf_errors(page.document.source, page.index, "turning the page upright"), pymupdf.open() as copy:
        copy.insert_pdf(page.fitz_page.parent, from_page=page.index, to_page=page.index)
        copy[0].set_rotation(turn)
        copy[0].remove_rotation()  # the content itself turned: the copy's page space is the upright view
        upright = open_document(copy.tobytes())[0]
    return [t for r in _layout_regions(upright) for t in find_tables(upright, strategy="text", region=r)]


def _layout_regions(page: Page) -> list[BoundingBox]:
    from docvlm.tasks.layout import layout

    return [d.box.pad(_REGION_PAD).clip(page.bbox) for d in layout(page) if d.label == "table"]


# the model path ------------------------------------------------------------------------------------------
class MergedCell(BaseModel):
    """A cell covering more than one grid position, as a model reports it (0-based top-left position).

    Attributes:
        row: the row of the cell's top edge.
        col: the column of the cell's left edge.
        row_span: how many rows it covers.
        col_span: how many columns it covers.
    """

    model_config = ConfigDict(extra="forbid")

    row: int = Field(ge=0, le=MAX_ROWS - 1)
    col: int = Field(ge=0, le=MAX_COLS - 1)
    row_span: int = Field(ge=1, le=MAX_ROWS)
    col_span: int = Field(ge=1, le=MAX_COLS)


class TableGrid(BaseModel):
    """The shape of a table, the first thing [`extract_tables`][docvlm.tasks.tables.extract_tables] asks a model (no text yet).

    Attributes:
        n_rows: rows of the finest grid (0: there is no table).
        n_cols: columns of the finest grid.
        header_rows: how many leading rows are column headers.
        merged: every cell that spans more than one row or column.
    """

    model_config = ConfigDict(extra="forbid")

    n_rows: int = Field(ge=0, le=MAX_ROWS)
    n_cols: int = Field(ge=1, le=MAX_COLS)
    header_rows: int = Field(ge=0, le=_MAX_HEADER_ROWS)
    merged: list[MergedCell] = Field(max_length=_MAX_MERGED)

    def anchors(self) -> list[tuple[int, int, int, int]]:
        """``(row, col, row_span, col_span)`` of every cell, row by row, left to right.

        Merged cells are clipped to the grid; one that overlaps an earlier merged cell is dropped (its
        positions become single cells).
        """
        owner: dict[tuple[int, int], tuple[int, int]] = {}
        spans: dict[tuple[int, int], tuple[int, int]] = {}
        for m in sorted(self.merged, key=lambda m: (m.row, m.col)):
            if m.row >= self.n_rows or m.col >= self.n_cols:
                continue
            rs, cs = min(m.row_span, self.n_rows - m.row), min(m.col_span, self.n_cols - m.col)
            covered = [(r, c) for r in range(m.row, m.row + rs) for c in range(m.col, m.col + cs)]
            if any(p in owner for p in covered):
                continue
            for p in covered:
                owner[p] = (m.row, m.col)
            spans[m.row, m.col] = (rs, cs)
        out = []
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                if owner.get((r, c), (r, c)) == (r, c):
                    rs, cs = spans.get((r, c), (1, 1))
                    out.append((r, c, rs, cs))
        return out


@functools.lru_cache(maxsize=256)
def _row_type(n_cells: int, max_chars: int) -> Any:
    """``list[str]`` of exactly ``n_cells`` strings of at most ``max_chars`` characters (cached: one object per
    shape, so compiled constraints are reused)."""
    return Annotated[list[Annotated[str, MaxLen(max_chars)]], MinLen(n_cells), MaxLen(n_cells)]


_GRID_PROMPT = (
    "Read the table {where}. Report its grid only, no text: n_rows and n_cols count the rows and columns of the "
    "finest grid (a merged cell covers several); header_rows is how many leading rows are column headers; "
    "merged lists every cell spanning more than one row or column, by its top-left row and col (0-based) and "
    "its row_span and col_span. If there is no table, answer n_rows 0."
)
_ROW_PROMPT = (
    "Row {row} of {n_rows} of the table {where} ({kind} row; the grid has {n_cols} columns). "
    "It has {n} cells that start in this row, in columns {cols} (1-based; a merged cell counts once, in the row "
    "and column where it starts). Give the text of each, left to right, exactly as written; \"\" for an empty cell."
)
_ROW_RE = re.compile(r"^Row (\d+) of (\d+) of the table")


def extract_tables(model: Model | None, page: PageInput, *, region: BoundingBox | None = None) -> list[Table]:
    """The tables on a page (or in ``region``), cells with spans, header rows and boxes in page space.

    Args:
        model: ``None`` for the classical path (born-digital PDFs: vector lines, then text alignment; images
            and scans: ruling from the pixels, cells by OCR; see the module docs); a vision-language model to
            read the table from the rendered region; or a text-only model to read it from the words of the
            region.
        page: the page (a `Page`, a one-page document, a PIL image or a path).
        region: where the table is (page space). Without it the classical path searches the whole page, and
            a model is asked about each table region the layout model finds on a PDF page with a text layer,
            or about the whole page otherwise.

    Returns:
        The tables in reading order; empty when there is none. With a model, a cell's box is the union of the
        page words that spell its text (``None`` without a text layer or without a match), and a table's
        box is its region.

    Raises:
        UsageError: a text-only model on a page without a text layer, or a region that is not in page space or
            misses the page.
        PageTooLargeError: ``model=None`` on a page with more than `MAX_DRAWING_ITEMS` drawing items.
        MissingDependencyError: ``model=None`` on an image or scan without an OCR engine installed.
    """
    page = as_page(page)
    region = check_region(page, region)
    if model is None:
        return _classical(page, region)
    if not model.supports_images and not page.has_text_layer:
        raise UsageError(
            f"{model.spec or type(model).__name__} is a text-only model and this page has no text layer",
            source=page.document.source, page=page.index,
            hint="use a vision-language model, or OCR the page first",
        )
    if region is not None:
        regions = [region]
    elif isinstance(page, PDFPage) and page.has_text_layer:
        regions = _layout_regions(page)
    else:
        regions = [page.bbox]
    tables = [_ask_table(model, page, r, whole_page=region is None and r == page.bbox) for r in regions]
    return [t for t in tables if t is not None]


def _ask_table(model: Model, page: Page, region: BoundingBox, *, whole_page: bool) -> Table | None:
    words = [w for w in page.words().rows if _centre_in(w, region)]
    where = "on the page" if whole_page else "in the region"
    if model.supports_images:
        parts: list[Any] = [view(page, None if whole_page else region)]
        where = "in the image"
    else:
        if not words:
            return None
        parts = [f"The words {where}, line by line (wide gaps shown as tabs):\n{_serialize(words)}\n"]
        where = "in these words"
    grid: TableGrid = model.generate([*parts, _GRID_PROMPT.format(where=where)], TableGrid)
    if grid.n_rows == 0:
        return None
    anchors = grid.anchors()
    header_rows = min(grid.header_rows, grid.n_rows)
    while any(r < header_rows < r + rs for r, _, rs, _ in anchors):  # the header ends below a spanning cell
        header_rows += 1
    by_row: dict[int, list[tuple[int, int, int, int]]] = {}
    for a in anchors:
        by_row.setdefault(a[0], []).append(a)
    # one request per row, batched by the row's shape (rows of the same width share a compiled constraint)
    budget = max(4, model.limits.max_free_chars)
    groups: dict[int, list[int]] = {}
    for row, row_anchors in by_row.items():
        groups.setdefault(len(row_anchors), []).append(row)
    texts: dict[int, list[str]] = {}
    for n, rows in groups.items():
        prompts = [
            [*parts, _ROW_PROMPT.format(
                row=row + 1, n_rows=grid.n_rows, where=where, kind="header" if row < header_rows else "body",
                n_cols=grid.n_cols, n=n, cols=", ".join(str(c + 1) for _, c, _, _ in by_row[row]),
            )]
            for row in rows
        ]
        answers = model.generate_batch(prompts, _row_type(n, max(1, min(MAX_CELL_CHARS, budget // n))))
        for row, answer in zip(rows, answers, strict=True):
            texts[row] = [" ".join(str(t).split()) for t in answer]
    cells = [
        TableCell(row=r, col=c, row_span=rs, col_span=cs, text=texts[r][i], is_header=r < header_rows)
        for r, row_anchors in by_row.items() for i, (_, c, rs, cs) in enumerate(row_anchors)
    ]
    if page.has_text_layer:
        cells = _ground(cells, words)
    return Table(cells=cells, n_rows=grid.n_rows, n_cols=grid.n_cols, page=page.index, box=region)


def _serialize(words: Sequence[WordRow]) -> str:
    """Words as text lines; a gap wider than about two characters becomes a tab."""
    out: list[str] = []
    last: WordRow | None = None
    for w in _reading_order(words):
        if last is None:
            out.append(str(w[4]))
        elif (w[1] + w[3]) / 2 > last[3] or w[0] < last[0]:  # a new line
            out.append("\n" + str(w[4]))
        else:
            height = max(w[3] - w[1], 1.0)
            out.append(("\t" if w[0] - last[2] > height else " ") + str(w[4]))
        last = w
    return "".join(out)


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _ground(cells: list[TableCell], words: Sequence[WordRow]) -> list[TableCell]:
    """Give each cell the box of the page words that spell its text.

    Cells are matched row by row, left to right, each to the first unused words (in reading order) that
    spell it: a word matching its first token, then for every further token the nearest unused word with
    that text. A cell whose words are not all found keeps no box.
    """
    pool = _reading_order(words)
    norms = [_norm(str(w[4])) for w in pool]
    used: set[int] = set()
    out = []
    for cell in sorted(cells, key=lambda c: (c.row, c.col)):
        tokens = _norm(cell.text).split()
        chosen = _spell(tokens, pool, norms, used) if tokens else None
        if chosen:
            used.update(chosen)
            x0, y0, x1, y1 = (f(pool[i][k] for i in chosen) for f, k in ((min, 0), (min, 1), (max, 2), (max, 3)))
            cell = cell.model_copy(update={"box": BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1)})
        out.append(cell)
    return out


def _spell(tokens: list[str], pool: list[WordRow], norms: list[str], used: set[int]) -> list[int] | None:
    def gap(i: int, j: int) -> float:
        a, b = pool[i], pool[j]
        dx = max(0.0, b[0] - a[2], a[0] - b[2])
        dy = max(0.0, b[1] - a[3], a[1] - b[3])
        return dx + 2 * dy  # prefer the same line

    for start, text in enumerate(norms):
        if text != tokens[0] or start in used:
            continue
        chosen = [start]
        for token in tokens[1:]:
            options = [j for j, t in enumerate(norms) if t == token and j not in used and j not in chosen]
            if not options:
                break
            chosen.append(min(options, key=lambda j: gap(chosen[-1], j)))
        else:
            return chosen
    return None


def table_answers(table: Table) -> Callable[[list[Message], FunctionInfo], Any]:
    """A [`FunctionModel`][docvlm.models.test.FunctionModel] function that answers [`extract_tables`][docvlm.tasks.tables.extract_tables]' questions with ``table``.

    For tests: ``extract_tables(FunctionModel(table_answers(expected)), page, region=...)`` returns
    ``expected``'s grid, spans, header rows and text (boxes come from the page's words, as for any model).
    """
    grid = TableGrid(
        n_rows=table.n_rows, n_cols=table.n_cols, header_rows=table.header_rows,
        merged=[MergedCell(row=c.row, col=c.col, row_span=c.row_span, col_span=c.col_span)
                for c in table.cells if c.row_span > 1 or c.col_span > 1],
    )
    rows: dict[int, list[str]] = {}
    for r, c, _, _ in grid.anchors():
        cell = table.cell(r, c)
        rows.setdefault(r, []).append(cell.text if cell is not None else "")

    def answer(messages: list[Message], info: FunctionInfo) -> Any:
        if info.output_type is TableGrid:
            return grid
        match = _ROW_RE.search(messages[-1].text.split("\n")[-1])
        if match is None:
            raise UsageError("table_answers only answers extract_tables' questions")
        return rows[int(match.group(1)) - 1]

    return answer
