"""Accuracy of the classical table path (`extract_tables(None, page)`) on generated born-digital pages.

Usage: python -m bench.tables [--n 50] [--seed 0]

Each page carries a title, paragraphs and one table whose truth is exact: the generator draws every cell
itself, so the cell boxes are the drawing coordinates. Styles: ruled with one line per grid segment
(``lines``; on some pages the rules are thin filled rectangles, on some the outer vertical lines are
missing, line ends jitter by up to 0.4 pt), ruled with one rectangle per cell (``rects``, header shaded), and borderless (``borderless``,
with booktabs-style horizontal rules on some pages). Ruled tables get spans (a two-level header, a
category cell spanning rows, a "Total" label spanning columns), some two-line and some empty cells; a
fifth of the pages are rotated by 90 or 270 degrees.

Prints, separately for ruled and borderless tables: the share of truth cells found with the same grid
position, spans and text (cell-text accuracy), the share whose box overlaps the truth box with IoU >= 0.5,
and the mean IoU. Target: >= 0.95 on ruled pages.

A third family, ``synth``, is ``docvlm.synth.generate_dataset("table", n)``: full grids, "horizontal rules"
tables (a ruled or shaded header, body rows separated by rules alone) and borderless tables, scored the same
way plus the mean TEDS (``docvlm.eval.metrics.teds``, captions left out) of the best-overlapping table.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table, TableCell

__all__ = ["STYLES", "Score", "TablePage", "evaluate", "evaluate_synth", "main", "score", "table_page"]

#: The table styles the generator draws.
STYLES = ("lines", "rects", "borderless")

_WORDS = ["alpha", "beta", "gamma", "delta", "north", "south", "east", "west", "widget", "gadget", "sprocket", "bracket", "valve", "pump", "motor", "sensor", "cable", "panel", "frame", "board", "steel", "copper", "brass", "nickel", "oak", "pine", "maple", "amber", "coral", "indigo", "olive", "plum", "total", "region", "branch", "office", "store", "depot", "unit", "batch", "lot", "grade", "class"]
_HEADS = ["Item", "Name", "Region", "Product", "Code", "Category", "Supplier", "Quantity", "Qty", "Price", "Amount", "Share", "Growth", "Date", "Rate", "Units", "Weight", "Count", "Cost", "Margin", "Score", "Status", "Owner", "Level"]
_SENTENCE = ["Document", "understanding", "with", "vision", "language", "models", "turns", "pages", "into", "typed", "results", "with", "boxes", "in", "page", "space", "so", "that", "every", "answer", "can", "be", "traced", "back", "to", "the", "words", "that", "support", "it"]
_FONT_SIZE = 9.0
_PAD = 5.0
_LEFT, _RIGHT = 56.0, 539.0


@dataclass
class TablePage:
    """A generated page and the exact truth of its one table.

    Attributes:
        pdf: the one-page PDF.
        truth: the table as drawn: cells with spans, text and boxes (page space: PDF points).
        style: one of :data:`STYLES`.
    """

    pdf: bytes
    truth: Table
    style: str

    @property
    def ruled(self) -> bool:
        return self.style != "borderless"


def _number(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return str(rng.randrange(1, 999))
    if kind == 1:
        return f"{rng.uniform(0, 999):.2f}"
    if kind == 2:
        return f"{rng.randrange(1, 99)},{rng.randrange(1000):03d}"
    if kind == 3:
        return f"{rng.uniform(-50, 50):.1f}%"
    if kind == 4:
        return f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    return f"-{rng.uniform(0, 99):.2f}"


def _label(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS).capitalize() if i == 0 else rng.choice(_WORDS) for i in range(words))


def _paragraph(page: object, rng: random.Random, y: float, lines: int) -> float:
    for i in range(lines):
        start = rng.randrange(len(_SENTENCE) - 12)
        text = " ".join(_SENTENCE[start : start + rng.randrange(10, 13)])
        page.insert_text((_LEFT, y + i * 13), text.capitalize() + ".", fontsize=10)  # type: ignore[attr-defined]
    return y + lines * 13


@dataclass
class _Spec:
    """A cell as the generator plans it: grid position, spans, lines of text, header flag."""

    row: int
    col: int
    row_span: int = 1
    col_span: int = 1
    lines: list[str] = field(default_factory=list)
    header: bool = False
    right: bool = False  # right-aligned (numbers)


def _plan(rng: random.Random, ruled: bool) -> tuple[list[_Spec], int, int, int]:
    """The cells of a random table: ``(cells, n_rows, n_cols, header_rows)``."""
    n_cols = rng.randint(2, 6)
    n_body = rng.randint(3, 9)
    two_level = ruled and n_cols >= 3 and rng.random() < 0.35
    header_rows = 2 if two_level else 1
    cells: list[_Spec] = []
    heads = rng.sample(_HEADS, n_cols)
    if two_level:
        cells.append(_Spec(0, 0, row_span=2, lines=[heads[0]], header=True))
        group = rng.randint(2, n_cols - 1)
        cells.append(_Spec(0, 1, col_span=group, lines=[f"Year {rng.randrange(2019, 2027)}"], header=True))
        for c in range(1 + group, n_cols):
            cells.append(_Spec(0, c, row_span=2, lines=[heads[c]], header=True))
        cells.extend(_Spec(1, c, lines=[heads[c]], header=True) for c in range(1, 1 + group))
    else:
        cells.extend(_Spec(0, c, lines=[heads[c]], header=True) for c in range(n_cols))
    n_rows = header_rows + n_body
    taken: set[tuple[int, int]] = set()
    # a category cell spanning rows in the first column
    if ruled and n_cols >= 3 and n_body >= 4 and rng.random() < 0.35:
        r0 = header_rows + rng.randrange(n_body - 2)
        span = rng.randint(2, min(3, n_rows - r0))
        cells.append(_Spec(r0, 0, row_span=span, lines=[_label(rng, 1)]))
        taken.update((r, 0) for r in range(r0, r0 + span))
    total = ruled and n_cols >= 3 and rng.random() < 0.3
    for r in range(header_rows, n_rows):
        if total and r == n_rows - 1 and (r, 0) not in taken:
            cells.append(_Spec(r, 0, col_span=2, lines=["Total"]))
            cells.append(_Spec(r, 2, lines=[_number(rng)], right=True))
            cells.extend(_Spec(r, c, lines=[_number(rng)], right=True) for c in range(3, n_cols))
            continue
        for c in range(n_cols):
            if (r, c) in taken:
                continue
            if c == 0:
                lines = [_label(rng, rng.randint(1, 3))]
                if ruled and rng.random() < 0.12:
                    lines.append(_label(rng, rng.randint(1, 2)).lower())  # a two-line cell
                cells.append(_Spec(r, c, lines=lines))
            elif rng.random() < 0.06:
                cells.append(_Spec(r, c, lines=[]))  # an empty cell
            elif rng.random() < 0.2:
                cells.append(_Spec(r, c, lines=[_label(rng, 1)]))
            else:
                cells.append(_Spec(r, c, lines=[_number(rng)], right=rng.random() < 0.5))
    return cells, n_rows, n_cols, header_rows


def table_page(seed: int, style: str = "lines") -> TablePage:
    """A one-page PDF (A4) with a title, paragraphs and one table of the given style, and its exact truth.

    Args:
        seed: the same seed and style give the same page.
        style: one of :data:`STYLES`.
    """
    import pymupdf

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; use one of {STYLES}")
    rng = random.Random(f"{style}:{seed}")
    ruled = style != "borderless"
    cells, n_rows, n_cols, header_rows = _plan(rng, ruled)

    def font(spec: _Spec) -> str:
        return "hebo" if spec.header else "helv"

    def text_width(spec: _Spec) -> float:
        return max((pymupdf.get_text_length(line, fontname=font(spec), fontsize=_FONT_SIZE) for line in spec.lines),
                   default=0.0)

    # column widths from the single-column cells, then widened so spanning cells fit
    gap = 2 * _PAD if ruled else 3 * _PAD
    widths = [30.0] * n_cols
    for spec in cells:
        if spec.col_span == 1:
            widths[spec.col] = max(widths[spec.col], text_width(spec) + gap)
    for spec in cells:
        if spec.col_span > 1:
            need = text_width(spec) + gap - sum(widths[spec.col : spec.col + spec.col_span])
            if need > 0:
                widths[spec.col + spec.col_span - 1] += need
    if ruled:
        widths = [w + rng.uniform(0, 30) for w in widths]
    scale = min(1.0, (_RIGHT - _LEFT) / sum(widths))
    widths = [w * scale for w in widths]
    heights = [rng.choice((18.0, 20.0, 22.0)) if ruled else 15.0] * n_rows
    for spec in cells:
        if len(spec.lines) > 1 and spec.row_span == 1:
            heights[spec.row] = max(heights[spec.row], 11.0 * len(spec.lines) + 9)

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((_LEFT, 72), _label(rng, rng.randint(2, 4)), fontsize=18, fontname="hebo")
    y = _paragraph(page, rng, 100, rng.randint(2, 5)) + 20
    x_left = _LEFT + rng.uniform(0, max(0.0, _RIGHT - _LEFT - sum(widths)))
    xs = [x_left]
    for w in widths:
        xs.append(xs[-1] + w)
    ys = [y]
    for h in heights:
        ys.append(ys[-1] + h)

    truth: list[TableCell] = []
    shape = page.new_shape()
    for spec in cells:
        x0, x1 = xs[spec.col], xs[spec.col + spec.col_span]
        y0, y1 = ys[spec.row], ys[spec.row + spec.row_span]
        if style == "rects" and spec.header:
            page.draw_rect(pymupdf.Rect(x0, y0, x1, y1), color=None, fill=(0.85, 0.85, 0.85))
        n = len(spec.lines)
        top = (y0 + y1) / 2 - (n * 11.0) / 2 + 8.0  # baseline of the first line, lines centred vertically
        for i, line in enumerate(spec.lines):
            width = pymupdf.get_text_length(line, fontname=font(spec), fontsize=_FONT_SIZE)
            tx = x1 - gap / 2 - width if spec.right else x0 + gap / 2
            page.insert_text((tx, top + 11.0 * i), line, fontsize=_FONT_SIZE, fontname=font(spec))
        if style == "rects":
            shape.draw_rect(pymupdf.Rect(x0, y0, x1, y1))
        truth.append(
            TableCell(
                row=spec.row, col=spec.col, row_span=spec.row_span, col_span=spec.col_span,
                text=" ".join(" ".join(spec.lines).split()), box=BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1),
                is_header=spec.header,
            )
        )
    if style == "lines":
        open_sides = rng.random() < 0.2  # no outer vertical lines
        as_rects = rng.random() < 0.3  # rules drawn as thin filled rectangles, as many PDF producers do
        _draw_ruling(page, shape, cells, xs, ys, n_rows, n_cols, rng, open_sides=open_sides, as_rects=as_rects)
    elif style == "borderless" and rng.random() < 0.5:  # booktabs: rules above and below the header and at the end
        for yy in (ys[0], ys[header_rows], ys[-1]):
            shape.draw_line((xs[0], yy), (xs[-1], yy))
    shape.finish(color=(0, 0, 0), width=rng.choice((0.5, 0.8, 1.0)))
    shape.commit()
    _paragraph(page, rng, ys[-1] + 30, rng.randint(2, 4))
    if rng.random() < 0.2:
        page.set_rotation(rng.choice((90, 270)))  # truth stays in page space: the unrotated page
    data: bytes = doc.tobytes()
    doc.close()
    table = Table(cells=truth, n_rows=n_rows, n_cols=n_cols, page=0,
                  box=BoundingBox(x0=xs[0], y0=ys[0], x1=xs[-1], y1=ys[-1]))
    return TablePage(pdf=data, truth=table, style=style)


def _draw_ruling(page: Any, shape: Any, cells: Sequence[_Spec], xs: list[float], ys: list[float], n_rows: int,
                 n_cols: int, rng: random.Random, *, open_sides: bool, as_rects: bool) -> None:
    """One line per grid segment, leaving out the segments inside spanning cells; ends jitter a little."""
    import pymupdf

    owner = {}
    for i, spec in enumerate(cells):
        for r in range(spec.row, spec.row + spec.row_span):
            for c in range(spec.col, spec.col + spec.col_span):
                owner[r, c] = i

    def jitter() -> float:
        return rng.uniform(-0.4, 0.4)

    def draw(a: tuple[float, float], b: tuple[float, float]) -> None:
        if as_rects:
            w = 0.3
            page.draw_rect(pymupdf.Rect(a[0] - w, a[1] - w, b[0] + w, b[1] + w), color=None, fill=(0, 0, 0))
        else:
            shape.draw_line(a, b)

    for r in range(n_rows + 1):  # horizontal segments: above row r, column by column
        for c in range(n_cols):
            if 0 < r < n_rows and owner.get((r - 1, c)) == owner.get((r, c)):
                continue
            draw((xs[c] + jitter(), ys[r]), (xs[c + 1] + jitter(), ys[r]))
    for c in range(n_cols + 1):  # vertical segments: left of column c, row by row
        if open_sides and c in (0, n_cols):
            continue
        for r in range(n_rows):
            if 0 < c < n_cols and owner.get((r, c - 1)) == owner.get((r, c)):
                continue
            draw((xs[c], ys[r] + jitter()), (xs[c], ys[r + 1] + jitter()))


@dataclass
class Score:
    """How well the found tables match one truth table.

    Attributes:
        cells: truth cells.
        text_ok: truth cells found at the same grid position with the same spans and text.
        box_ok: truth cells whose found cell (same grid position) has box IoU >= 0.5.
        iou_sum: sum over truth cells of that IoU (0 where no cell was found).
        found: whether a table overlapping the truth table was found.
    """

    cells: int = 0
    text_ok: int = 0
    box_ok: int = 0
    iou_sum: float = 0.0
    found: bool = False

    def add(self, other: Score) -> Score:
        return Score(self.cells + other.cells, self.text_ok + other.text_ok, self.box_ok + other.box_ok,
                     self.iou_sum + other.iou_sum, self.found and other.found)

    @property
    def text_accuracy(self) -> float:
        return self.text_ok / self.cells if self.cells else 0.0

    @property
    def box_rate(self) -> float:
        return self.box_ok / self.cells if self.cells else 0.0

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.cells if self.cells else 0.0


def score(found: Sequence[Table], truth: Table) -> Score:
    """Compare the tables found on a page with the truth: the found table that overlaps it most is scored."""
    assert truth.box is not None
    best = max(found, key=lambda t: t.box.iou(truth.box) if t.box is not None else 0.0, default=None)
    out = Score(cells=len(truth.cells))
    if best is None or best.box is None or best.box.iou(truth.box) == 0:
        return out
    out.found = True
    at = {(c.row, c.col): c for c in best.cells}
    for cell in truth.cells:
        got = at.get((cell.row, cell.col))
        if got is None:
            continue
        if (got.row_span, got.col_span, got.text) == (cell.row_span, cell.col_span, cell.text):
            out.text_ok += 1
        iou = got.box.iou(cell.box) if got.box is not None and cell.box is not None else 0.0
        out.iou_sum += iou
        out.box_ok += iou >= 0.5
    return out


def evaluate(n: int, styles: Sequence[str] = STYLES, seed: int = 0) -> dict[str, Score]:
    """Score ``extract_tables(None, page)`` on ``n`` pages spread over ``styles``; one :class:`Score` per style."""
    import docvlm as dv
    from docvlm.tasks.tables import extract_tables

    totals = {s: Score(found=True) for s in styles}
    for i in range(n):
        style = styles[i % len(styles)]
        sample = table_page(seed + i, style)
        with dv.open(sample.pdf) as doc:
            totals[style] = totals[style].add(score(extract_tables(None, doc[0]), sample.truth))
    return totals


def evaluate_synth(n: int, seed: int = 0) -> tuple[Score, float]:
    """Score ``extract_tables(None, page)`` on ``generate_dataset("table", n, seed)``: a :class:`Score` and the
    mean TEDS."""
    from docvlm.eval.metrics import teds
    from docvlm.synth import generate_dataset
    from docvlm.tasks.tables import extract_tables

    total, teds_sum = Score(found=True), 0.0
    for doc in generate_dataset("table", n, seed):
        truth = doc.tables[0]
        assert truth.box is not None
        found = extract_tables(None, doc.open()[0])
        total = total.add(score(found, truth))
        best = max(found, key=lambda t: t.box.iou(truth.box) if t.box is not None else 0.0, default=None)
        teds_sum += teds(best, truth.model_copy(update={"caption": None})) if best is not None else 0.0
    return total, teds_sum / max(n, 1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="number of pages (spread over the styles)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first page")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    totals = evaluate(args.n, seed=args.seed)
    took = time.perf_counter() - start
    groups = {"ruled": [totals[s] for s in ("lines", "rects") if s in totals],
              "borderless": [totals[s] for s in ("borderless",) if s in totals]}
    print(f"{args.n} pages in {took:.1f} s ({took / max(args.n, 1) * 1000:.0f} ms/page)")
    print(f"{'':12} {'cells':>6} {'text acc':>9} {'IoU>=0.5':>9} {'mean IoU':>9}")
    rows = [(s, [totals[s]]) for s in totals] + list(groups.items())
    for name, parts in rows:
        total = Score(found=True)
        for part in parts:
            total = total.add(part)
        print(f"{name:12} {total.cells:6d} {total.text_accuracy:9.3f} {total.box_rate:9.3f} {total.mean_iou:9.3f}")
    start = time.perf_counter()
    synth, mean_teds = evaluate_synth(args.n, seed=args.seed)
    took = time.perf_counter() - start
    print(f"synth: {args.n} generate_dataset('table') pages in {took:.1f} s; mean TEDS {mean_teds:.3f}")
    print(f"{'synth':12} {synth.cells:6d} {synth.text_accuracy:9.3f} {synth.box_rate:9.3f} {synth.mean_iou:9.3f}")


if __name__ == "__main__":
    main()
