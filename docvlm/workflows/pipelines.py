"""Pipelines: fixed compositions of the same tools an agent calls, with no model choosing the steps.

Examples:
    >>> import docvlm as dv
    >>> from docvlm.workflows import read_tables
    >>> result = read_tables(dv.samples.invoice_pdf())
    >>> [t.shape for t in result.value]  # the line items, and the totals block the layout model calls a table
    [(4, 4), (3, 2)]
    >>> [s.tool for s in result.trace.steps]
    ['layout', 'zoom', 'extract_table', 'zoom', 'extract_table']

Two are built in:

* [`read_tables`][docvlm.workflows.pipelines.read_tables]: ``layout`` -> for each table region: ``zoom`` -> ``extract_table``;
* [`read_field`][docvlm.workflows.pipelines.read_field]: ``ground`` a field's label -> ``read_text`` of the region to its right (or below it).

Build your own the same way: a function that calls tools on a
[`TracedToolbox`][docvlm.workflows.trace.TracedToolbox] and returns a [`PipelineResult`][docvlm.workflows.pipelines.PipelineResult] (the value and the
trace of every call). [`toolbox`][docvlm.workflows.pipelines.toolbox] gives a traced toolbox with the extra tools of this module
(``layout``, ``extract_table``) added::

    def first_words(document):
        box = toolbox(document)
        text = box.call("read_text", {"page": 0}).text
        return PipelineResult(value=text.split()[:3], trace=box.trace)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from docvlm.documents import Document, Source
from docvlm.errors import UsageError
from docvlm.models import Model
from docvlm.types import BoundingBox, Table
from docvlm.workflows.tools import Box, GroundResult, PageArgs, TableSummary, TextResult, Tool, Toolbox, ToolResult
from docvlm.workflows.trace import Region, Trace, TracedToolbox

__all__ = [
    "EXTRA_TOOLS",
    "ExtractTableArgs",
    "FieldValue",
    "LayoutRegion",
    "LayoutResult",
    "PipelineResult",
    "extract_table_tool",
    "layout_tool",
    "read_field",
    "read_tables",
    "toolbox",
]

T = TypeVar("T")


# extra tools -----------------------------------------------------------------------------------------


class LayoutArgs(PageArgs):
    pass


class ExtractTableArgs(PageArgs):
    box: Box = Field(description="the table's region in page space")


class LayoutRegion(BaseModel):
    label: str
    box: Box


class LayoutResult(BaseModel):
    page: int
    regions: list[LayoutRegion]

    def trace_regions(self) -> list[Region]:
        return [Region(page=self.page, box=r.box.to_bbox(), label=r.label) for r in self.regions]


def layout_tool(box: Toolbox) -> Tool:
    """A ``layout`` tool on ``box``: the labelled regions of a born-digital PDF page in reading order
    ([`docvlm.tasks.layout`][docvlm.tasks.layout])."""

    def run(args: LayoutArgs) -> ToolResult[LayoutResult]:
        from docvlm.tasks import layout

        page = box.page(args.page)
        regions = [LayoutRegion(label=d.label, box=Box.from_bbox(d.box)) for d in layout(page)]
        text = "\n".join(f"{r.label} {r.box}" for r in regions) or f"no regions on page {page.index}"
        return ToolResult[LayoutResult](tool="layout", text=text,
                                        payload=LayoutResult(page=page.index, regions=regions))

    n = len(box.document)
    return Tool("layout", f"List the labelled regions of a page (title, text, table, picture, ...) in reading order. "
                f"The document has {n} page{'s' if n != 1 else ''} (0..{n - 1}).", LayoutArgs, run)


def extract_table_tool(box: Toolbox) -> Tool:
    """An ``extract_table`` tool on ``box``: the table in a region ([`docvlm.tasks.extract_tables`][docvlm.tasks.tables.extract_tables]), read
    with the toolbox's model when it has one, else from the PDF's ruling and text layer."""

    def run(args: ExtractTableArgs) -> ToolResult[TableSummary]:
        from docvlm.tasks import extract_tables

        page = box.page(args.page)
        region = box._region(page, args.box)
        found = extract_tables(box.model, page, region=region)
        if not found:
            raise UsageError(f"no table in {args.box} on page {page.index}",
                             hint="check the region with zoom, or find tables with layout / find_tables")
        table = found[0]
        tid = f"table-{page.index}-{sum(1 for k in box.artifacts if k.startswith(f'table-{page.index}-'))}"
        box.artifacts[tid] = table
        rows, cols = table.shape
        summary = TableSummary(id=tid, page=page.index, box=Box.from_bbox(table.box or region), rows=rows,
                               cols=cols, markdown=table.to_markdown())
        return ToolResult[TableSummary](tool="extract_table", text=f"{tid} ({rows}x{cols}):\n{summary.markdown}",
                                        artifacts=[tid], payload=summary)

    return Tool("extract_table", "Read the table in a region of a page, as markdown with a table id.",
                ExtractTableArgs, run)


#: The extra tools by name, for ``Agent(tools=[...])`` and [`toolbox`][docvlm.workflows.pipelines.toolbox].
EXTRA_TOOLS: dict[str, Callable[[Toolbox], Tool]] = {"layout": layout_tool, "extract_table": extract_table_tool}


def toolbox(document: Document | Source | Toolbox, model: Model | None = None) -> TracedToolbox:
    """A traced toolbox over ``document`` with the extra tools (``layout``, ``extract_table``) added.

    A [`TracedToolbox`][docvlm.workflows.trace.TracedToolbox] is used as it is (its trace goes on); a plain toolbox gives a traced one over the
    same document and model.
    """
    if isinstance(document, TracedToolbox):
        box = document
    elif isinstance(document, Toolbox):
        box = TracedToolbox(document.document, model or document.model)
    else:
        box = TracedToolbox(document, model)
    for name, make in EXTRA_TOOLS.items():
        if name not in {t.name for t in box.tools()}:
            box.add(make(box))
    return box


class PipelineResult(BaseModel, Generic[T]):
    """What a pipeline gives back: its value and the trace of the tool calls that made it."""

    value: T
    trace: Trace


# built-in pipelines ----------------------------------------------------------------------------------


def _pages(box: Toolbox, pages: Sequence[int] | None) -> list[int]:
    n = len(box.document)
    chosen = list(range(n)) if pages is None else list(pages)
    bad = [p for p in chosen if not 0 <= p < n]
    if bad:
        raise UsageError(f"page {bad[0]} is out of range: the document has {n} page{'s' if n != 1 else ''}")
    return chosen


def _payload(result: ToolResult[Any]) -> Any:
    """The typed result of a call, ``None`` when it failed."""
    return None if result.is_error else result.payload


def _ok(result: ToolResult[Any]) -> Any:
    if result.is_error:
        raise UsageError(f"{result.tool}: {result.text.removeprefix('error: ')}")
    return result.payload


def read_tables(document: Document | Source | Toolbox, *, model: Model | None = None,
                pages: Sequence[int] | None = None) -> PipelineResult[list[Table]]:
    """Every table of a born-digital PDF: ``layout`` finds the table regions, each is zoomed into (an image in
    the trace) and read with ``extract_table``.

    Args:
        document: a document, a source to open, or a toolbox (whose trace it extends).
        model: a model to read the tables with (default: the PDF's ruling and text layer).
        pages: 0-based pages (default: all).

    Raises:
        UsageError: a page out of range, or an image page (the layout model reads a PDF's text layer).
    """
    box = toolbox(document, model)
    tables: list[Table] = []
    for p in _pages(box, pages):
        found: LayoutResult = _ok(box.call("layout", {"page": p}))
        for region in found.regions:
            if region.label != "table":
                continue
            box.call("zoom", {"page": p, "box": region.box, "dpi": 144})
            read: TableSummary | None = _payload(box.call("extract_table", {"page": p, "box": region.box}))
            if read is not None:
                table = box.artifacts[read.id]
                assert isinstance(table, Table)
                tables.append(table)
    return PipelineResult[list[Table]](value=tables, trace=box.trace)


class FieldValue(BaseModel):
    """A value read next to its label.

    Attributes:
        label: the label asked for.
        text: the value as printed.
        page: 0-based page.
        box: the value's words (page space).
        label_box: where the label was found.
    """

    label: str
    text: str
    page: int
    box: BoundingBox
    label_box: BoundingBox


#: A value to the right of its label starts within this share of the page width from the label's end; farther
#: words belong to the next column, and the value is looked for below the label.
_MAX_RIGHT_GAP = 0.25


def _center_in(box: BoundingBox, region: BoundingBox) -> bool:
    x, y = box.center
    return region.x0 <= x <= region.x1 and region.y0 <= y <= region.y1


def _token(word: str) -> str:
    return word.lower().rstrip(":")


def read_field(document: Document | Source | Toolbox, label: str, *, model: Model | None = None,
               pages: Sequence[int] | None = None) -> PipelineResult[FieldValue | None]:
    """The value printed next to a label (``"Policy number"``, ``"Total"``): ``ground`` the label, then
    ``read_text`` the rest of its line to the right, or the line below it when nothing is next to it.

    The value is the text up to the next column gap; ``None`` when the label is not found on any page.

    Args:
        document: a document, a source to open, or a toolbox (whose trace it extends; its model grounds).
        label: the field's label as printed.
        model: the model that grounds the label (any model: a text-only one chooses among the text lines).
        pages: 0-based pages to look at, in order (default: all).

    Raises:
        UsageError: no model, an empty label or a page out of range.
    """
    if not label.strip():
        raise UsageError("the label is empty")
    box = toolbox(document, model)
    if box.model is None:
        raise UsageError("read_field needs a model to ground the label", hint="read_field(doc, label, model=...)")
    wanted = {_token(w) for w in label.split()}
    for p in _pages(box, pages):
        found: GroundResult | None = _payload(box.call("ground", {"page": p, "phrase": label}))
        if found is None or not found.boxes:
            continue
        page = box.document[p]
        label_box = found.boxes[0].to_bbox()
        inside = sorted((w for w in page.words() if _center_in(w.box, label_box)), key=lambda w: (round(w.box.y0), w.box.x0))
        last = None  # the label's last word: where the value starts
        for w in inside:
            if _token(w.text) in wanted:
                last = w
        end = last.box if last is not None else label_box
        right = BoundingBox.from_corners(end.x1 + 0.5, end.y0 - 1, page.width, end.y1 + 1)
        below = BoundingBox.from_corners(label_box.x0 - 1, label_box.y1 + 0.5, page.width,
                                         label_box.y1 + 2.2 * (label_box.y1 - label_box.y0))
        for region in ([right] if right.width > 1 else []) + [below]:
            words = sorted((w for w in page.words() if _center_in(w.box, region)), key=lambda w: w.box.x0)
            if region is right and (not words or words[0].box.x0 - end.x1 > _MAX_RIGHT_GAP * page.width):
                continue  # nothing next to the label: the value is below it (or that is the next column)
            text: TextResult | None = _payload(box.call("read_text", {"page": p, "box": Box.from_bbox(region).model_dump()}))
            if text is None:
                continue
            line = text.text.strip().splitlines()[0] if text.text.strip() else ""
            value = re.split(r"\s{3,}", line.lstrip(":").strip())[0] if line else ""
            if not value:
                continue
            count = len(value.split())
            chosen = [w for w in words if w.text != ":"][:count] or words
            value_box = chosen[0].box
            for w in chosen[1:]:
                value_box = value_box.union(w.box)
            return PipelineResult[FieldValue | None](
                value=FieldValue(label=label, text=value, page=p, box=value_box, label_box=label_box), trace=box.trace)
    return PipelineResult[FieldValue | None](value=None, trace=box.trace)
