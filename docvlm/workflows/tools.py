"""A document's operations as tools a model can call: list, render, zoom, read, find tables, ground, answer.

>>> import docvlm as dv
>>> from docvlm.workflows import Toolbox
>>> box = Toolbox(dv.open(dv.samples.invoice_pdf()))
>>> print(box.call("read_text", {"page": 0, "box": {"x0": 300, "y0": 380, "x1": 560, "y1": 420}}).text)
Total:   EUR 145.78
>>> print(box.call("read_text", {"page": 3}).text)
error: page 3 is out of range: the document has 1 page (0..0)

Every tool takes a pydantic argument model (its JSON schema is what a model is shown) and returns a
[`ToolResult`][docvlm.workflows.tools.ToolResult]: short ``text`` for the model to read, the ids of heavy artifacts (page images,
crops, tables) kept aside in `Toolbox.artifacts`, and a typed ``payload``. Boxes are in page
space (PDF points for a PDF), rounded to 0.1. Bad arguments (a page out of range, a box off the page,
a malformed call) give a [`ToolError`][docvlm.workflows.tools.ToolError] result, never an exception, so a tool-calling loop can show
the model its mistake and go on. The tools only reach the one document the toolbox was given.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docvlm.documents import Document, Page, PageImage, Source, open_document
from docvlm.errors import DocVLMError
from docvlm.models import Model
from docvlm.types import Answer, BoundingBox, Citation, Table

__all__ = [
    "AnswerArgs",
    "ArtifactStore",
    "Box",
    "CitationArgs",
    "FindTablesArgs",
    "GroundArgs",
    "GroundResult",
    "ImageArtifact",
    "ListPagesArgs",
    "PageArgs",
    "PageList",
    "PageSummary",
    "ReadTextArgs",
    "RenderPageArgs",
    "TableSummary",
    "TablesResult",
    "TextResult",
    "Tool",
    "ToolError",
    "ToolResult",
    "Toolbox",
    "ZoomArgs",
]

_PAGE = Field(ge=0, description="0-based page index")


def _r(v: float) -> float:
    return round(v, 1)


# arguments -----------------------------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Box(_Args):
    """A region in page space (PDF points from the top-left of the page, y pointing down)."""

    x0: float = Field(description="left edge")
    y0: float = Field(description="top edge")
    x1: float = Field(description="right edge")
    y1: float = Field(description="bottom edge")

    @classmethod
    def from_bbox(cls, box: BoundingBox) -> Box:
        return cls(x0=_r(box.x0), y0=_r(box.y0), x1=_r(box.x1), y1=_r(box.y1))

    def to_bbox(self) -> BoundingBox:
        """The page-space box; corners given in any order are accepted."""
        return BoundingBox.from_corners(self.x0, self.y0, self.x1, self.y1)

    def __str__(self) -> str:
        return f"[{self.x0:g}, {self.y0:g}, {self.x1:g}, {self.y1:g}]"


class ListPagesArgs(_Args):
    """No arguments."""


class PageArgs(_Args):
    page: int = _PAGE


class RenderPageArgs(PageArgs):
    dpi: float | None = Field(default=None, gt=0, le=600, description="resolution; default: the page's default")


class ZoomArgs(PageArgs):
    box: Box = Field(description="the region to zoom into, in page space")
    dpi: float = Field(default=288, gt=0, le=1200, description="resolution of the crop")


class ReadTextArgs(PageArgs):
    box: Box | None = Field(default=None, description="only the text in this region (page space); default: the whole page")


class FindTablesArgs(PageArgs):
    pass


class GroundArgs(PageArgs):
    # 80 characters: a local model's token index for a 200-character string took 5x as long to build (7-9 s vs
    # 1.7 s on SmolLM2's vocabulary), and it is rebuilt with every tool-call union of an extractive agent
    phrase: str = Field(min_length=1, max_length=80, description="what to find, e.g. 'the invoice total'")


class CitationArgs(_Args):
    page: int = _PAGE
    box: Box = Field(description="the cited region in page space")
    quote: str = Field(default="", description="the cited text exactly as it appears in the document")


class AnswerArgs(_Args):
    text: str = Field(min_length=1, description="the final answer")
    citations: list[CitationArgs] = Field(default_factory=list, description="where the answer comes from")


# results -------------------------------------------------------------------------------------------


class ToolError(BaseModel):
    """A tool call that could not run: the message tells the caller what to change."""

    message: str
    hint: str | None = None


class PageSummary(BaseModel):
    page: int
    width: float
    height: float
    units: str
    has_text_layer: bool


class PageList(BaseModel):
    pages: list[PageSummary]


class ImageArtifact(BaseModel):
    """A rendered page or crop, kept in `Toolbox.artifacts` under ``id``."""

    id: str
    page: int
    box: Box = Field(description="the page-space region the image shows")
    width: int = Field(description="pixels")
    height: int = Field(description="pixels")
    dpi: float


class TextResult(BaseModel):
    page: int
    box: Box | None
    text: str


class TableSummary(BaseModel):
    id: str
    page: int
    box: Box | None
    rows: int
    cols: int
    markdown: str


class TablesResult(BaseModel):
    tables: list[TableSummary]


class GroundResult(BaseModel):
    page: int
    phrase: str
    boxes: list[Box]


P = TypeVar("P", bound=BaseModel)


class ToolResult(BaseModel, Generic[P]):
    """What a tool call gives back.

    Attributes:
        tool: the tool's name.
        text: a short observation for the model to read.
        artifacts: ids of heavy results kept in `Toolbox.artifacts` (images, tables).
        payload: the typed result (a [`ToolError`][docvlm.workflows.tools.ToolError] when the call failed).
    """

    tool: str
    text: str
    artifacts: list[str] = Field(default_factory=list)
    payload: P | ToolError

    @property
    def is_error(self) -> bool:
        return isinstance(self.payload, ToolError)


@dataclass(frozen=True)
class Tool:
    """One tool: its name, a description for the model, its argument model and the function that runs it.

    ``function`` takes validated arguments; call [`Toolbox.call`][docvlm.workflows.tools.Toolbox.call] (or [`run`][docvlm.workflows.tools.Tool.run]) with a plain dict.
    """

    name: str
    description: str
    args_model: type[BaseModel]
    function: Callable[[Any], ToolResult[Any]]

    def json_schema(self) -> dict[str, Any]:
        """The argument schema a model is shown."""
        return self.args_model.model_json_schema()

    def run(self, args: dict[str, Any] | BaseModel | None = None) -> ToolResult[Any]:
        """Validate ``args`` and run; a validation failure or a document error becomes a [`ToolError`][docvlm.workflows.tools.ToolError] result."""
        try:
            parsed = self.args_model.model_validate(args if args is not None else {})
        except ValidationError as e:
            return _error(self.name, format_validation_error(e))
        try:
            return self.function(parsed)
        except _Fail as e:
            return _error(self.name, e.message, e.hint)
        except DocVLMError as e:
            return _error(self.name, e.message, e.hint)


class _Fail(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _error(tool: str, message: str, hint: str | None = None) -> ToolResult[Any]:
    text = f"error: {message}" + (f" (hint: {hint})" if hint else "")
    return ToolResult[Any](tool=tool, text=text, payload=ToolError(message=message, hint=hint))


def format_validation_error(e: ValidationError) -> str:
    """A validation error as one short line: ``page: Input should be greater than or equal to 0; ...``."""
    parts = []
    for err in e.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "invalid arguments: " + "; ".join(parts)


# the toolbox ---------------------------------------------------------------------------------------


def artifact_bytes(value: PageImage | Table) -> int:
    """Memory an artifact holds: a page image's pixels (Pillow keeps RGB at 4 bytes a pixel); a table's cells."""
    if isinstance(value, PageImage):
        return value.width * value.height * 4
    return 512 + 128 * len(value.cells)


class ArtifactStore(MutableMapping[str, "PageImage | Table"]):
    """A toolbox's artifacts by id; with ``max_bytes``, the least recently used go once they hold more than that.

    Reading an artifact (``store[id]``, ``store.get(id)``) makes it the most recently used. The newest artifact
    stays even when it alone is over the budget. Thread-safe.

    Args:
        max_bytes: the budget ([`artifact_bytes`][docvlm.workflows.tools.artifact_bytes] of what is kept); ``None`` keeps everything.
        on_evict: called with the id of every artifact pushed out.
    """

    def __init__(self, max_bytes: int | None = None, on_evict: Callable[[str], Any] | None = None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._on_evict = on_evict
        self._items: OrderedDict[str, tuple[PageImage | Table, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __getitem__(self, key: str) -> PageImage | Table:
        with self._lock:
            value, _ = self._items[key]
            self._items.move_to_end(key)
            return value

    def __setitem__(self, key: str, value: PageImage | Table) -> None:
        size = artifact_bytes(value)
        evicted: list[str] = []
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self.max_bytes is not None and self._bytes > self.max_bytes and len(self._items) > 1:
                old, (_, old_size) = self._items.popitem(last=False)
                self._bytes -= old_size
                evicted.append(old)
        if self._on_evict is not None:
            for old in evicted:
                self._on_evict(old)

    def __delitem__(self, key: str) -> None:
        with self._lock:
            self._bytes -= self._items.pop(key)[1]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)



class Toolbox:
    """The operations on one document as [`Tool`][docvlm.workflows.tools.Tool] objects.

    Args:
        document: the document, or a source to open (path, bytes, file object); the tools reach nothing else.
        model: a model for the tools that need one (``ground``); without it those tools are not offered.
        max_artifact_bytes: keep at most this many bytes of artifacts, least recently used out first (a
            long-lived session, e.g. an MCP server); ``None`` keeps all of them (an agent run, which
            ``max_images`` bounds). A render or zoom whose image was dropped is made again when asked again.

    Attributes:
        artifacts: heavy results by id (an [`ArtifactStore`][docvlm.workflows.tools.ArtifactStore]): [`PageImage`][docvlm.types.image.PageImage] for
            renders and crops, [`Table`][docvlm.types.table.Table] for tables.
        final: the [`Answer`][docvlm.types.answer.Answer] once the ``answer`` tool has been called.
    """

    def __init__(self, document: Document | Source, model: Model | None = None, *,
                 max_artifact_bytes: int | None = None) -> None:
        self.document = document if isinstance(document, Document) else open_document(document)
        self.model = model
        self.artifacts: ArtifactStore = ArtifactStore(max_artifact_bytes, on_evict=self._forget)
        self.final: Answer | None = None
        self._keys: dict[tuple[Any, ...], str] = {}
        self._key_of: dict[str, tuple[Any, ...]] = {}
        self._made: dict[str, int] = {}
        n = len(self.document)
        pages = f"The document has {n} page{'s' if n != 1 else ''} (0..{n - 1}); boxes are [x0, y0, x1, y1] in page points."
        self._tools: dict[str, Tool] = {t.name: t for t in [
            Tool("list_pages", f"List the pages with their sizes. {pages}", ListPagesArgs, self.list_pages),
            Tool("render_page", f"Render a whole page as an image. {pages}", RenderPageArgs, self.render_page),
            Tool("zoom", f"Render a region of a page at a higher resolution. {pages}", ZoomArgs, self.zoom),
            Tool("read_text", f"Read the text of a page or of a region, line by line. {pages}", ReadTextArgs,
                 self.read_text),
            Tool("find_tables", f"Find the ruled tables on a page, as markdown with table ids. {pages}",
                 FindTablesArgs, self.find_tables),
            Tool("ground", f"Find the boxes of what a phrase refers to on a page. {pages}", GroundArgs, self.ground),
            Tool("answer", "Give the final answer with citations (page, box, quote) that support it.", AnswerArgs,
                 self.answer),
        ]}

    def tools(self) -> list[Tool]:
        """The tools on offer (``ground`` only with a model)."""
        return [t for t in self._tools.values() if t.name != "ground" or self.model is not None]

    def tool(self, name: str) -> Tool:
        return self._tools[name]

    def add(self, tool: Tool) -> Tool:
        """Offer one more tool, e.g. [`docvlm.workflows.pipelines.layout_tool`][docvlm.workflows.pipelines.layout_tool]; adding the same name again
        replaces the tool. Returns it."""
        self._tools[tool.name] = tool
        return tool

    def call(self, name: str, args: dict[str, Any] | BaseModel | None = None) -> ToolResult[Any]:
        """Run tool ``name`` with ``args`` (validated); an unknown tool or bad arguments give a [`ToolError`][docvlm.workflows.tools.ToolError] result."""
        offered = {t.name: t for t in self.tools()}
        if name not in offered:
            hint = "ground needs a model: Toolbox(document, model)" if name == "ground" else None
            return _error(name, f"unknown tool {name!r}; tools: {', '.join(offered)}", hint)
        return offered[name].run(args)

    # helpers ----------------------------------------------------------------------------------

    def page(self, index: int) -> Page:
        """The document's page ``index``; a tool given an index out of range answers with an error observation."""
        n = len(self.document)
        if not 0 <= index < n:
            raise _Fail(f"page {index} is out of range: the document has {n} page{'s' if n != 1 else ''} (0..{n - 1})")
        return self.document[index]

    def _region(self, page: Page, box: Box) -> BoundingBox:
        region = box.to_bbox()
        clipped = region.clip(page.bbox)
        if clipped.width <= 0 or clipped.height <= 0:
            raise _Fail(f"box {box} is outside page {page.index} (0, 0, {page.width:g}, {page.height:g})")
        return clipped

    def _keep(self, key: tuple[Any, ...], prefix: str, make: Callable[[], PageImage]) -> tuple[str, PageImage]:
        aid = self._keys.get(key)
        if aid is not None:
            found = self.artifacts.get(aid)
            if isinstance(found, PageImage):
                return aid, found
        image = make()
        self._made[prefix] = self._made.get(prefix, 0) + 1
        aid = f"{prefix}-{self._made[prefix]}"  # never reused, even after older artifacts were dropped
        self._keys[key] = aid
        self._key_of[aid] = key
        self.artifacts[aid] = image
        return aid, image

    def _forget(self, artifact_id: str) -> None:
        key = self._key_of.pop(artifact_id, None)
        if key is not None and self._keys.get(key) == artifact_id:
            del self._keys[key]

    def image(self, artifact_id: str) -> PageImage:
        """The page image kept under ``artifact_id``."""
        found = self.artifacts[artifact_id]
        if not isinstance(found, PageImage):
            raise KeyError(f"{artifact_id} is not an image")
        return found

    @staticmethod
    def _image_result(tool: str, aid: str, image: PageImage, region: BoundingBox) -> ToolResult[ImageArtifact]:
        art = ImageArtifact(id=aid, page=image.page_index, box=Box.from_bbox(region), width=image.width,
                            height=image.height, dpi=_r(image.dpi))
        text = (f"image {aid}: page {art.page} region {art.box}, {art.width}x{art.height} px at {art.dpi:g} dpi")
        return ToolResult[ImageArtifact](tool=tool, text=text, artifacts=[aid], payload=art)

    # tools ------------------------------------------------------------------------------------

    def list_pages(self, args: ListPagesArgs | None = None) -> ToolResult[PageList]:
        pages = [PageSummary(page=p.index, width=_r(p.width), height=_r(p.height), units=p.units,
                             has_text_layer=p.has_text_layer) for p in self.document]
        text = "\n".join(f"page {p.page}: {p.width:g} x {p.height:g} {p.units}"
                         + ("" if p.has_text_layer else ", no text layer") for p in pages)
        return ToolResult[PageList](tool="list_pages", text=text, payload=PageList(pages=pages))

    def render_page(self, args: RenderPageArgs) -> ToolResult[ImageArtifact]:
        page = self.page(args.page)
        aid, image = self._keep(("render", args.page, args.dpi), "page", lambda: page.render(args.dpi))
        return self._image_result("render_page", aid, image, page.bbox)

    def zoom(self, args: ZoomArgs) -> ToolResult[ImageArtifact]:
        page = self.page(args.page)
        region = self._region(page, args.box)
        aid, image = self._keep(("zoom", args.page, region.xyxy, args.dpi), "crop", lambda: page.crop(region, args.dpi))
        return self._image_result("zoom", aid, image, region)

    def read_text(self, args: ReadTextArgs) -> ToolResult[TextResult]:
        from docvlm.tasks import read

        page = self.page(args.page)
        region = None if args.box is None else self._region(page, args.box)
        text = read(None, page, region)
        result = TextResult(page=page.index, box=None if region is None else Box.from_bbox(region), text=text)
        return ToolResult[TextResult](tool="read_text", text=text or "(no text)", payload=result)

    def find_tables(self, args: FindTablesArgs) -> ToolResult[TablesResult]:
        from docvlm.tasks import find_tables

        page = self.page(args.page)
        found: Sequence[Table] = find_tables(page)
        summaries = []
        for i, table in enumerate(found):
            tid = f"table-{page.index}-{i}"
            self.artifacts[tid] = table
            rows, cols = table.shape
            summaries.append(TableSummary(id=tid, page=page.index, box=None if table.box is None else Box.from_bbox(table.box),
                                          rows=rows, cols=cols, markdown=table.to_markdown()))
        if not summaries:
            text = f"no ruled tables on page {page.index}"
        else:
            text = "\n\n".join(f"{s.id} ({s.rows}x{s.cols}" + (f", box {s.box}" if s.box else "") + f"):\n{s.markdown}"
                               for s in summaries)
        return ToolResult[TablesResult](tool="find_tables", text=text, artifacts=[s.id for s in summaries],
                                        payload=TablesResult(tables=summaries))

    def ground(self, args: GroundArgs) -> ToolResult[GroundResult]:
        from docvlm.tasks import ground

        if self.model is None:
            raise _Fail("ground needs a model", hint="Toolbox(document, model)")
        page = self.page(args.page)
        boxes = [Box.from_bbox(b) for b in ground(self.model, page, args.phrase)]
        text = (f"{args.phrase!r} on page {page.index}: " + ", ".join(str(b) for b in boxes) if boxes
                else f"{args.phrase!r} not found on page {page.index}")
        return ToolResult[GroundResult](tool="ground", text=text,
                                        payload=GroundResult(page=page.index, phrase=args.phrase, boxes=boxes))

    def answer(self, args: AnswerArgs) -> ToolResult[Answer]:
        citations = []
        for c in args.citations:
            page = self.page(c.page)
            citations.append(Citation(page=page.index, box=self._region(page, c.box), quote=c.quote))
        self.final = Answer(text=args.text, citations=citations)
        cited = "; ".join(f"page {c.page} {Box.from_bbox(c.box)}" for c in citations)
        text = f"answer recorded: {args.text}" + (f" [{cited}]" if cited else "")
        return ToolResult[Answer](tool="answer", text=text, payload=self.final)
