"""Word alignment for tables: text lines, phrases, column gaps, and the virtual rules a partly ruled table lacks.

A ruled table often rules less than its grid: a shaded or ruled header over body rows separated by horizontal
rules alone (every body row then comes out of a line finder as one cell spanning all columns), or a frame
with one band of text lines inside (the whole body as one row). `virtual_rules` reads the grid the
words imply inside such a table and returns the rules that are missing, for the line finder to use as if they
were drawn:

- a column boundary is a vertical gap inside the table that (almost) no text line of the body crosses; it is
  ruled in every row band that no phrase crosses it in, so a phrase across it (a group header) spans;
- a ruled row band that holds several text lines each reading as a record (phrases in two or more columns, one
  of them a number) is split above each record line after the first; a word across the cut keeps its cell
  whole (it spans the new rows).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table, TableCell
from docvlm.types.text import WordRow

Segment = tuple[tuple[float, float], tuple[float, float]]

_NUMBER = re.compile(r"^[(\[]?[-+−–]?[$€£¥]?\d[\d.,' ]*%?[)\]]?[*a-z]?$|^[-–—]$")


def text_lines(words: Sequence[WordRow]) -> list[list[WordRow]]:
    """Words grouped into lines top to bottom (a word joins a line its vertical centre falls in), each left to
    right."""
    lines: list[list[WordRow]] = []
    for w in sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0])):
        centre = (w[1] + w[3]) / 2
        if lines and min(x[1] for x in lines[-1]) <= centre <= max(x[3] for x in lines[-1]):
            lines[-1].append(w)
        else:
            lines.append([w])
    return [sorted(line, key=lambda w: w[0]) for line in lines]


def phrases(line: Sequence[WordRow], h: float) -> list[list[WordRow]]:
    """The words of one text line (left to right) grouped into phrases: words closer than half a word height."""
    groups: list[list[WordRow]] = [[line[0]]]
    for w in line[1:]:
        if w[0] - groups[-1][-1][2] <= 0.5 * h:
            groups[-1].append(w)
        else:
            groups.append([w])
    return groups


def centre_in(w: WordRow, box: BoundingBox) -> bool:
    """Whether a word's centre lies in ``box``."""
    return box.x0 <= (w[0] + w[2]) / 2 <= box.x1 and box.y0 <= (w[1] + w[3]) / 2 <= box.y1


def word_height(words: Sequence[WordRow]) -> float:
    """The median word height (at least 1)."""
    heights = sorted(w[3] - w[1] for w in words)
    return max(heights[len(heights) // 2], 1.0) if heights else 1.0


def is_number(text: str) -> bool:
    """Whether a phrase reads as a number, an amount, a percentage or a dash for none."""
    return bool(_NUMBER.match(text.strip()))


def column_gaps(lines: Sequence[Sequence[Sequence[WordRow]]], left: float, right: float, h: float,
                *, body_from: int = 0, slack: float = 0.0) -> list[float]:
    """x positions of the column boundaries that the phrases of ``lines`` (per line, its phrases) imply.

    A boundary is a run of x, at least half a word height wide and inside ``[left, right]``, that no phrase of
    the lines from ``body_from`` on crosses (or at most a ``slack`` share of them); it is placed where the fewest
    lines cross it, in the middle of the widest such stretch.
    """
    step = 0.25
    n = int((right - left) / step) + 1
    if n <= 2:
        return []
    cover = [0] * n
    body = [0] * n
    n_body = 0
    for index, groups in enumerate(lines):
        hit = [False] * n
        for g in groups:
            for i in range(max(0, int((g[0][0] - left) / step)), min(n, int((g[-1][2] - left) / step) + 1)):
                hit[i] = True
        n_body += index >= body_from
        for i in range(n):
            cover[i] += hit[i]
            body[i] += hit[i] and index >= body_from
    allowed = int(slack * n_body)
    bounds: list[float] = []
    i = 0
    while i < n:
        if body[i] > allowed:
            i += 1
            continue
        j = i
        while j < n and body[j] <= allowed:
            j += 1
        if i > 0 and j < n and (j - i) * step >= 0.5 * h:
            low = min(cover[i:j])
            runs: list[list[int]] = []
            for k in range(i, j):
                if cover[k] != low:
                    continue
                if runs and k == runs[-1][-1] + 1:
                    runs[-1].append(k)
                else:
                    runs.append([k])
            run = max(runs, key=len)
            bounds.append(left + (run[0] + run[-1] + 1) / 2 * step)
        i = j
    return bounds


def virtual_rules(box: tuple[float, float, float, float], cells: Sequence[tuple[float, float, float, float]],
                  words: Sequence[WordRow], tol: float = 1.0) -> list[Segment]:
    """The rules missing from a ruled table (its box and its cells' boxes, as a line finder reads the drawing),
    read from the words.

    Returns segments ``((x0, y0), (x1, y1))`` for the line finder's ``add_lines``: column boundaries where the
    body's text leaves a gap (ruled in each row band no phrase crosses), and row boundaries inside row bands
    that hold several record lines. Nothing when the words imply no more than the ruling.
    """
    x0, y0, x1, y1 = box
    xs, ys = _grid([c[0] for c in cells] + [c[2] for c in cells], tol), _grid([c[1] for c in cells] + [c[3] for c in cells], tol)
    inside = [w for w in words if x0 <= (w[0] + w[2]) / 2 <= x1 and y0 <= (w[1] + w[3]) / 2 <= y1]
    if len(inside) < 4 or len(ys) < 2:
        return []
    h = word_height(inside)
    bands = list(itertools.pairwise(ys))

    def band_of(line: Sequence[WordRow]) -> int:
        c = (min(w[1] for w in line) + max(w[3] for w in line)) / 2
        return next((k for k, (a, b) in enumerate(bands) if a <= c <= b), len(bands) - 1)

    # phrases split at the ruled columns too: a phrase never runs across a drawn line
    def split(line: Sequence[WordRow]) -> list[list[WordRow]]:
        out: list[list[WordRow]] = []
        for g in phrases(line, h):
            part: list[WordRow] = [g[0]]
            for w in g[1:]:
                if any(part[-1][2] <= x <= w[0] for x in xs):
                    out.append(part)
                    part = [w]
                else:
                    part.append(w)
            out.append(part)
        return out

    lines = text_lines(inside)
    groups = [split(line) for line in lines]
    line_band = [band_of(line) for line in lines]
    # column boundaries from the body (lines below the first row band, when there are such lines)
    body_from = next((k for k, b in enumerate(line_band) if b > 0), 0)
    gaps = [g for g in column_gaps(groups, x0, x1, h, body_from=body_from, slack=0.1)
            if not any(abs(g - x) <= 2 * h for x in xs)]
    # a gap boundary must split the text of drawn cells (two at least), not just fall between values that are
    # aligned differently from row to row inside their ruled column
    all_phrases = [p for ph in groups for p in ph]

    def splits(g: float, c: tuple[float, float, float, float]) -> bool:
        held = [p for p in all_phrases if c[0] <= (p[0][0] + p[-1][2]) / 2 <= c[2]
                and c[1] <= (p[0][1] + p[0][3]) / 2 <= c[3]]
        return any(p[-1][2] < g for p in held) and any(p[0][0] > g for p in held)

    gaps = [g for g in gaps if sum(splits(g, c) for c in cells if c[0] < g < c[2]) >= 2]
    # a boundary must leave body text on both sides before the next boundary (no empty columns)
    body_centres = [(g[0][0] + g[-1][2]) / 2 for ph in groups[body_from:] for g in ph]
    while gaps:
        bounds = sorted([*xs, *gaps])

        def holds_text(a: float, b: float) -> bool:
            return any(a < c < b for c in body_centres)

        empty = [g for g in gaps if not (holds_text(max(b for b in bounds if b < g), g)
                                         and holds_text(g, min(b for b in bounds if b > g)))]
        if not empty:
            break
        gaps.remove(empty[0])
    segments: list[Segment] = []
    cols = sorted([*xs, *gaps])

    def column(x: float) -> int:
        return sum(c <= x for c in cols)

    # row boundaries inside bands that hold several record lines
    cuts: list[float] = []
    for band in range(len(bands)):
        members = [k for k, b in enumerate(line_band) if b == band]
        if band == 0 or len(members) < 2:
            continue
        records = [k for k in members
                   if len({column((g[0][0] + g[-1][2]) / 2) for g in groups[k]}) >= 2
                   and any(is_number(" ".join(str(w[4]) for w in g)) for g in groups[k])]
        if len(records) < 2:
            continue
        for k in records[1:]:
            if k - 1 in members:
                above = max(w[3] for w in lines[k - 1])
                top = min(w[1] for w in lines[k])
                cuts.append((above + top) / 2 if top > above else top)
    for y in cuts:
        crossing = sorted((w[0], w[2]) for w in inside if w[1] < y < w[3])
        start = x0
        for a, b in crossing:
            if a - start > 1:
                segments.append(((start, y), (a, y)))
            start = max(start, b)
        if x1 - start > 1:
            segments.append(((start, y), (x1, y)))
    # the column boundaries, per row band (bands split at the cuts), where no phrase crosses them; a drawn column
    # line that stops short (at the header) is continued through bands with no column line of their own whose
    # text sits in two or more columns
    edges = sorted([*ys, *cuts])
    # bands that the drawing leaves as one cell across the whole table (rows ruled by horizontal rules alone)
    whole = [(c[1], c[3]) for c in cells if c[0] <= xs[0] + 2 * tol and c[2] >= xs[-1] - 2 * tol]
    for a, b in itertools.pairwise(edges):
        in_band = [p for ph in groups for p in ph if a <= (p[0][1] + p[0][3]) / 2 <= b]
        crossed = [(p[0][0], p[-1][2]) for p in in_band]
        open_band = any(c0 <= a + tol and c1 >= b - tol for c0, c1 in whole)
        spread = len({column((p[0][0] + p[-1][2]) / 2) for p in in_band}) >= 2
        for x in sorted([*gaps, *(xs[1:-1] if open_band and spread else [])]):
            if not any(p0 < x < p1 for p0, p1 in crossed):
                segments.append(((x, a), (x, b)))
    return segments


def _grid(values: Sequence[float], tol: float) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > tol:
            out.append(v)
    return out


# borderless tables -----------------------------------------------------------------------------------------
_Span = tuple[int, int, list[WordRow]]  # first column, last column, words


def text_table(words: Sequence[WordRow], page_index: int, *,
               rules: Sequence[tuple[float, float, float]] = ()) -> Table | None:
    """A borderless table from the alignment of words.

    Words closer than half a word height are one phrase. A column boundary is a vertical gap, at least half a
    word height wide, that no phrase of the body crosses, placed where the header does not cross it either if
    it can; a header phrase that crosses it spans the columns (a group header). The header is the first text
    line, or, when full-width ``rules`` (``(x0, x1, y)``, e.g. a booktabs table's) separate lines, the lines
    above the first rule with text on both sides; in it, lines whose phrases each sit in one column are one
    row (wrapped column titles), and a line with a phrase across columns is a row of its own. In the body each
    text line is a row, except a line that only continues the text of the row above: words in columns where
    that row has text, none of them a number, and fewer columns than it. Cell boxes tile the table: column
    edges midway in the gaps, row edges midway between rows.
    """
    lines = text_lines(words)
    if len(lines) < 2:
        return None
    h = word_height(words)
    groups = [phrases(line, h) for line in lines]
    tops = [min(w[1] for w in line) for line in lines]
    bottoms = [max(w[3] for w in line) for line in lines]
    n_head = 1
    for _, _, y in sorted(rules, key=lambda r: r[2]):
        above = sum(b <= y for b in bottoms)
        if 0 < above < len(lines) and any(t >= y for t in tops):
            n_head = above if above <= max(1, len(lines) // 2) else 1
            break
    left, right = min(w[0] for w in words), max(w[2] for w in words)
    bounds = column_gaps(groups, left, right, h, body_from=n_head, slack=0.1)
    if not bounds:
        return None
    col_edges = [left, *bounds, right]

    def column(x: float) -> int:
        return sum(b < x for b in bounds)

    def spans_of(k: int) -> list[_Span]:
        out: list[_Span] = []
        for g in groups[k]:
            c0, c1 = column(g[0][0]), column(g[-1][2])
            if out and c0 <= out[-1][1]:  # shares a column with the phrase before it: one cell
                out[-1] = (out[-1][0], max(c1, out[-1][1]), out[-1][2] + g)
            else:
                out.append((c0, c1, list(g)))
        return out

    line_spans = [spans_of(k) for k in range(len(lines))]
    # how far the text of each column reaches: a line wraps when its text has run (nearly) that far
    reach: dict[int, tuple[float, float]] = {}
    for spans in line_spans[n_head:]:
        for c0, c1, ws in spans:
            if c0 == c1:
                a, b = reach.get(c0, (ws[0][0], ws[-1][2]))
                reach[c0] = (min(a, ws[0][0]), max(b, ws[-1][2]))
    rows: list[list[int]] = []  # line indices per row
    for k in range(len(lines)):
        spread = any(c0 != c1 for c0, c1, _ in line_spans[k])
        if k < n_head:
            prev = rows[-1] if rows and rows[-1][-1] == k - 1 else None
            joins = prev is not None and not spread and not any(
                c0 != c1 for j in prev for c0, c1, _ in line_spans[j])
        else:
            joins = k > n_head and _continues(line_spans[k], line_spans[rows[-1][-1]],
                                              _merge([s for j in rows[-1] for s in line_spans[j]]), reach, h)
        if joins:
            rows[-1].append(k)
        else:
            rows.append([k])
    row_tops = [min(tops[k] for k in r) for r in rows]
    row_bottoms = [max(bottoms[k] for k in r) for r in rows]
    row_edges = [row_tops[0], *((row_bottoms[i] + row_tops[i + 1]) / 2 for i in range(len(rows) - 1)), row_bottoms[-1]]
    header_rows = sum(r[0] < n_head for r in rows)
    cells: list[TableCell] = []
    for r, members in enumerate(rows):
        spans = _merge([s for k in members for s in line_spans[k]])
        filled = {c for c0, c1, _ in spans for c in range(c0, c1 + 1)}
        spans += [(c, c, []) for c in range(len(col_edges) - 1) if c not in filled]
        for c0, c1, ws in spans:
            cells.append(TableCell(
                row=r, col=c0, col_span=c1 - c0 + 1, text=" ".join(str(w[4]) for w in _in_order(ws)),
                is_header=r < header_rows,
                box=BoundingBox(x0=col_edges[c0], y0=row_edges[r], x1=col_edges[c1 + 1], y1=row_edges[r + 1]),
            ))
    cells.sort(key=lambda c: (c.row, c.col))
    return Table(cells=cells, n_rows=len(rows), n_cols=len(col_edges) - 1, page=page_index,
                 box=BoundingBox(x0=left, y0=row_edges[0], x1=right, y1=row_edges[-1]))


def _merge(spans: Sequence[_Span]) -> list[_Span]:
    """Column ranges merged where they overlap (the words of one cell over several lines)."""
    out: list[_Span] = []
    for c0, c1, ws in sorted(spans, key=lambda s: s[0]):
        if out and c0 <= out[-1][1]:
            out[-1] = (out[-1][0], max(c1, out[-1][1]), out[-1][2] + ws)
        else:
            out.append((c0, c1, list(ws)))
    return out


def _continues(line: Sequence[_Span], last: Sequence[_Span], row: Sequence[_Span],
               reach: dict[int, tuple[float, float]], h: float) -> bool:
    """Whether a text line only continues the cells of the row above (wrapped text): it does not start with a
    capital letter, its words sit in columns where that row has text, none a number, in fewer columns, and the
    row's last line ran nearly as far right
    as any text in each of those columns, a column at least three word heights wide (it had to wrap)."""
    texts = {c: " ".join(str(w[4]) for w in ws) for c0, c1, ws in row for c in range(c0, c1 + 1) if ws}
    ends = {c0: ws[-1][2] for c0, c1, ws in last if c0 == c1 and ws}
    used = {c for c0, c1, _ in line for c in range(c0, c1 + 1)}

    def wrapped(c: int) -> bool:  # a column of long text, whose line above ran nearly as far as any
        a, b = reach.get(c, (0.0, 0.0))
        return c in ends and b - a >= 3 * h and ends[c] >= a + 0.7 * (b - a)

    first = str(min((w for _, _, ws in line for w in ws), key=lambda w: w[0])[4])
    return (not first[:1].isupper()  # a capital starts a new entry ("Class B"), not the rest of a sentence
            and len({c0 for c0, _, _ in line}) < len({c0 for c0, _, ws in row if ws})
            and all(c in texts and not is_number(texts[c]) and wrapped(c) for c in used)
            and not any(is_number(" ".join(str(w[4]) for w in ws)) for _, _, ws in line))


def _in_order(words: Sequence[WordRow]) -> list[WordRow]:
    return [w for line in text_lines(words) for w in line]
