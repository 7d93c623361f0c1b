"""Tables: cells on a grid with row and column spans, and their exports (pandas, Markdown, HTML, CSV)."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Self

from docvlm.errors import MissingDependencyError, UsageError
from docvlm.types.geometry import BoundingBox, Frame, Size, Space

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Table", "TableCell"]


def _pandas(purpose: str) -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise MissingDependencyError("pandas", "pandas", purpose=purpose) from exc
    return pandas


class TableCell(BaseModel):
    """One cell of a [`Table`][docvlm.types.table.Table], anchored at its top-left grid position.

    Attributes:
        row: 0-based row of the cell's top edge.
        col: 0-based column of the cell's left edge.
        row_span: number of rows the cell covers (>= 1).
        col_span: number of columns the cell covers (>= 1).
        text: the cell's text (may be empty).
        box: where the cell is, if known.
        is_header: whether this is a header cell (``<th>``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int = Field(ge=0)
    col: int = Field(ge=0)
    row_span: int = Field(default=1, ge=1)
    col_span: int = Field(default=1, ge=1)
    text: str = ""
    box: BoundingBox | None = None
    is_header: bool = False

    @property
    def name(self) -> str:
        """A short description for messages, e.g. ``cell (1, 0) 'Total' spanning 2 columns``."""
        text = self.text if len(self.text) <= 20 else self.text[:19] + "…"
        spans = []
        if self.row_span > 1:
            spans.append(f"{self.row_span} rows")
        if self.col_span > 1:
            spans.append(f"{self.col_span} columns")
        span = f" spanning {' and '.join(spans)}" if spans else ""
        return f"cell ({self.row}, {self.col}) {text!r}{span}"


class Table(BaseModel):
    """A table as cells on an ``n_rows x n_cols`` grid.

    Cells may span several rows and columns; grid positions no cell covers are empty. Leading rows
    made only of header cells are the header ([`header_rows`][docvlm.types.table.Table.header_rows]), which the exports treat as column
    names. ``n_rows`` and ``n_cols`` default to the extent of the cells.

    >>> t = Table(cells=[TableCell(row=0, col=0, text="Item", is_header=True),
    ...                  TableCell(row=0, col=1, text="Price", is_header=True),
    ...                  TableCell(row=1, col=0, text="Tea"), TableCell(row=1, col=1, text="3.50")])
    >>> print(t.to_markdown())
    | Item | Price |
    | --- | --- |
    | Tea | 3.50 |

    Attributes:
        cells: the cells, each anchored at its top-left grid position.
        n_rows: number of grid rows; when omitted, the extent of the cells.
        n_cols: number of grid columns; when omitted, the extent of the cells.
        box: where the whole table is, if known.
        page: 0-based index of the page the table is on, if known.
        caption: the table's caption, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cells: list[TableCell] = Field(default_factory=list)
    n_rows: int = Field(default=0, ge=0, description="number of grid rows; omitted, the extent of the cells")
    n_cols: int = Field(default=0, ge=0, description="number of grid columns; omitted, the extent of the cells")
    box: BoundingBox | None = None
    page: int | None = Field(default=None, ge=0)
    caption: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        missing = [k for k in ("n_rows", "n_cols") if data.get(k) is None]
        if not missing:
            return data
        rows, cols = 0, 0
        for cell in data.get("cells") or []:
            if isinstance(cell, TableCell):
                r, c, rs, cs = cell.row, cell.col, cell.row_span, cell.col_span
            elif isinstance(cell, dict):
                r, c = cell.get("row", 0), cell.get("col", 0)
                rs, cs = cell.get("row_span", 1), cell.get("col_span", 1)
            else:
                continue  # field validation reports it
            if all(isinstance(v, int) for v in (r, c, rs, cs)):
                rows, cols = max(rows, r + rs), max(cols, c + cs)
        return {**data, **{k: v for k, v in (("n_rows", rows), ("n_cols", cols)) if k in missing}}

    @model_validator(mode="after")
    def _cells_fit(self) -> Self:
        owner: dict[tuple[int, int], TableCell] = {}
        for cell in self.cells:
            if cell.row + cell.row_span > self.n_rows or cell.col + cell.col_span > self.n_cols:
                raise ValueError(f"{cell.name} does not fit in a {self.n_rows}x{self.n_cols} table")
            for r in range(cell.row, cell.row + cell.row_span):
                for c in range(cell.col, cell.col + cell.col_span):
                    other = owner.setdefault((r, c), cell)
                    if other is not cell:
                        raise ValueError(f"{cell.name} overlaps {other.name} at row {r}, column {c}")
        spaces = {b.space for b in self._boxes()}
        if len(spaces) > 1:
            found = ", ".join(sorted(s.value for s in spaces))
            raise ValueError(f"the table's boxes must share one space, found {found}")
        return self

    def _boxes(self) -> list[BoundingBox]:
        boxes = [c.box for c in self.cells if c.box is not None]
        return boxes if self.box is None else [self.box, *boxes]

    # views
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_cols)``."""
        return (self.n_rows, self.n_cols)

    def cell(self, row: int, col: int) -> TableCell | None:
        """The cell covering grid position ``(row, col)`` (possibly through a span), or ``None``."""
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            raise UsageError(f"({row}, {col}) is outside a {self.n_rows}x{self.n_cols} table")
        for c in self.cells:
            if c.row <= row < c.row + c.row_span and c.col <= col < c.col + c.col_span:
                return c
        return None

    def _covering(self) -> list[list[TableCell | None]]:
        slots: list[list[TableCell | None]] = [[None] * self.n_cols for _ in range(self.n_rows)]
        for cell in self.cells:
            for r in range(cell.row, cell.row + cell.row_span):
                for c in range(cell.col, cell.col + cell.col_span):
                    slots[r][c] = cell
        return slots

    @property
    def header_rows(self) -> int:
        """How many leading rows form the header.

        A row belongs to the header when every position in it is covered by a header cell; the header
        ends early rather than cut through a cell spanning rows (so the HTML ``<thead>`` stays whole).
        """
        slots = self._covering()
        n = 0
        while self.n_cols and n < self.n_rows and all(cell is not None and cell.is_header for cell in slots[n]):
            n += 1
        while any(c.row < n < c.row + c.row_span for c in self.cells):
            n = min(c.row for c in self.cells if c.row < n < c.row + c.row_span)
        return n

    def grid(self, repeat_spans: bool = True) -> list[list[str]]:
        """The text at every grid position, row by row.

        Args:
            repeat_spans: a spanning cell's text appears at every position it covers (the default,
                which keeps every column readable on its own); when false, only at its top-left
                position and the rest of the span is ``""``. Positions no cell covers are ``""``.
        """
        out = [[""] * self.n_cols for _ in range(self.n_rows)]
        for cell in self.cells:
            for r in range(cell.row, cell.row + cell.row_span):
                for c in range(cell.col, cell.col + cell.col_span):
                    if repeat_spans or (r, c) == (cell.row, cell.col):
                        out[r][c] = cell.text
        return out

    def to(self, space: Space | str, frame: Frame | Size | None = None) -> Table:
        """The table with its own and all cell boxes converted to ``space`` (see [`BoundingBox.to`][docvlm.types.geometry.BoundingBox.to])."""
        cells = [c if c.box is None else c.model_copy(update={"box": c.box.to(space, frame)}) for c in self.cells]
        box = None if self.box is None else self.box.to(space, frame)
        return self.model_copy(update={"cells": cells, "box": box})

    # exporters
    def _column_titles(self) -> list[str]:
        """One title per column: the distinct header texts above it, top to bottom, joined by spaces."""
        header = self.grid()[: self.header_rows]
        titles = []
        for c in range(self.n_cols):
            parts: list[str] = []
            for row in header:
                if row[c] and (not parts or parts[-1] != row[c]):
                    parts.append(row[c])
            titles.append(" ".join(parts))
        return titles

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table.

        Markdown has no spans, so spanning text is repeated in every position it covers. Several
        header rows merge into one (texts joined by spaces); a table without header rows gets an
        empty one, since Markdown requires it. ``|`` is escaped and line breaks become spaces.
        """
        if self.n_cols == 0:
            return ""

        def esc(text: str) -> str:
            return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("|", "\\|")

        def line(texts: Sequence[str]) -> str:
            return "| " + " | ".join(esc(t) for t in texts) + " |"

        lines = [line(self._column_titles()), "| " + " | ".join(["---"] * self.n_cols) + " |"]
        lines.extend(line(row) for row in self.grid()[self.header_rows :])
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML ``<table>`` with ``rowspan`` / ``colspan``, header rows in ``<thead>``, text escaped.

        Header cells are ``<th>``, others ``<td>``; a position no cell covers becomes an empty ``<td>``.
        One ``<tr>`` per line.
        """
        anchors = {(c.row, c.col): c for c in self.cells}
        slots = self._covering()

        def row_html(r: int) -> str:
            parts = []
            for c in range(self.n_cols):
                cell = anchors.get((r, c))
                if cell is None:
                    if slots[r][c] is None:
                        parts.append("<td></td>")
                    continue
                tag = "th" if cell.is_header else "td"
                attrs = ""
                if cell.row_span > 1:
                    attrs += f' rowspan="{cell.row_span}"'
                if cell.col_span > 1:
                    attrs += f' colspan="{cell.col_span}"'
                parts.append(f"<{tag}{attrs}>{html.escape(cell.text)}</{tag}>")
            return "<tr>" + "".join(parts) + "</tr>"

        h = self.header_rows
        lines = ["<table>"]
        if self.caption is not None:
            lines.append(f"<caption>{html.escape(self.caption)}</caption>")
        if h:
            lines += ["<thead>", *(row_html(r) for r in range(h)), "</thead>"]
        if h < self.n_rows:
            lines += ["<tbody>", *(row_html(r) for r in range(h, self.n_rows)), "</tbody>"]
        lines.append("</table>")
        return "\n".join(lines)

    def to_csv(self) -> str:
        """CSV text (``csv`` module quoting, ``\\n`` line ends), header rows included, spanning text repeated."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(self.grid())
        return buf.getvalue()

    def to_pandas(self) -> pd.DataFrame:
        """A `pandas.DataFrame` of the body rows, the header rows becoming its columns.

        One header row gives plain column names, several give a ``MultiIndex``; without header rows
        the columns are numbered. Spanning text is repeated, as in [`grid`][docvlm.types.table.Table.grid]; all values are strings.
        """
        pd = _pandas("Table.to_pandas")
        grid = self.grid()
        h = self.header_rows
        columns: Any
        if h == 0:
            columns = pd.RangeIndex(self.n_cols)
        elif h == 1:
            columns = pd.Index(grid[0], dtype=object)
        else:
            columns = pd.MultiIndex.from_arrays(grid[:h])
        return pd.DataFrame(grid[h:], columns=columns, dtype=object)

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, *, index: bool = False, caption: str | None = None) -> Table:
        """A table from a `pandas.DataFrame`; the inverse of [`to_pandas`][docvlm.types.table.Table.to_pandas].

        Column names become header rows, one per level of a ``MultiIndex``, unless the columns are a
        default ``RangeIndex``. Equal adjacent names of an upper level under the same parents merge into
        one cell spanning columns, and a name repeated down a single column into one cell spanning rows,
        which undoes the repetition of [`to_pandas`][docvlm.types.table.Table.to_pandas]. Values become text with ``str``; missing values become ``""``.

        Args:
            df: the data frame.
            index: also write the index as a first column (its name, if any, in the header).
            caption: the table's caption.
        """
        pd = _pandas("Table.from_pandas")
        if not isinstance(df, pd.DataFrame):
            raise UsageError(f"from_pandas needs a pandas DataFrame, got {type(df).__name__}")

        def text(v: Any) -> str:
            if v is None or (not isinstance(v, str) and bool(pd.api.types.is_scalar(v)) and bool(pd.isna(v))):
                return ""
            return str(v)

        cols = df.columns
        default_cols = isinstance(cols, pd.RangeIndex) and cols.start == 0 and cols.step == 1
        levels = 0 if default_cols else cols.nlevels
        labels: list[tuple[Any, ...]] = [c if isinstance(c, tuple) else (c,) for c in cols]
        offset = 1 if index else 0
        header: list[dict[str, Any]] = []
        above: dict[int, dict[str, Any]] = {}  # column -> the one-column header cell ending just above
        for level in range(levels):
            c, below = 0, {}
            while c < len(labels):
                end = c + 1
                if level < levels - 1:  # merge equal adjacent names under the same parents
                    while end < len(labels) and labels[end][: level + 1] == labels[c][: level + 1]:
                        end += 1
                name = text(labels[c][level])
                spec = above.get(c)
                if end == c + 1 and spec is not None and spec["text"] == name:
                    spec["row_span"] += 1  # the same name repeated down a column is one tall cell
                else:
                    spec = {"row": level, "col": c + offset, "col_span": end - c, "row_span": 1, "text": name}
                    header.append(spec)
                if end == c + 1:
                    below[c] = spec
                c = end
            above = below
        cells = [TableCell(**spec, is_header=True) for spec in header]
        if index and levels:
            index_name = df.index.name if df.index.nlevels == 1 else None
            cells.append(TableCell(row=0, col=0, row_span=levels, text=text(index_name), is_header=True))
        for r, (key, values) in enumerate(zip(df.index, df.itertuples(index=False, name=None), strict=True)):
            if index:
                cells.append(TableCell(row=levels + r, col=0, text=text(key)))
            cells.extend(
                TableCell(row=levels + r, col=c + offset, text=text(v)) for c, v in enumerate(values)
            )
        return cls(cells=cells, n_rows=levels + len(df), n_cols=len(labels) + offset, caption=caption)
