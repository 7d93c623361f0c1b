"""Web pages as documents: headless Chromium renders the page, the DOM gives the text layer.

``dv.open("https://…")``, ``dv.open("page.html")`` and ``dv.open(html, format="html")`` return a
`WebDocument`. The whole page (scrolled to its full height) is cut into viewport-height tiles, each a
`WebPage`; a tile's page space is CSS pixels, origin at the tile's top-left, so a tile is a page like any
other (``page.tile`` says where it lies on the whole page). Cuts between tiles are moved up to the gap between
two lines of text when there is one nearby, so no line is cut in half. Words come from the DOM (a ``Range``
per word, its client rects), and links, form fields and ``<table>`` elements come as structured extras.

Safe by default (see `WebOptions`): no local files, no loopback / private / link-local addresses (checked
after DNS resolution, on every redirect hop and for every sub-resource), a JavaScript time budget, a total
timeout, a byte budget; downloads, pop-ups and permissions are denied. What was refused is listed in
`WebDocument.blocked` and in the document's metadata.

Without Chromium (or without playwright) the page is laid out by PyMuPDF's HTML ``Story`` instead: no
JavaScript, no sub-resources, with a `WebRendererWarning` saying how to install the real renderer.
"""

from __future__ import annotations

import bisect
import html as html_lib
import io
import re
import warnings
import weakref
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docvlm.documents._mupdf import mupdf_errors
from docvlm.documents._web_net import AddressPolicy, Blocked, BlockReason, FetchBudget, Response, fetch
from docvlm.documents.base import Document, Page, PageImage, scale_frame
from docvlm.errors import (
    BlockedURLError,
    CorruptDocumentError,
    DocumentError,
    DocumentNotFoundError,
    DocVLMWarning,
    MissingDependencyError,
    PageTooLargeError,
    UsageError,
)
from docvlm.types.geometry import BoundingBox, Size
from docvlm.types.table import Table, TableCell
from docvlm.types.text import WordList, WordRow

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.documents._web_browser import Session

__all__ = [
    "BlockReason",
    "BlockedRequest",
    "BlockedURLError",
    "FormField",
    "WebDocument",
    "WebLink",
    "WebOptions",
    "WebPage",
    "WebRendererWarning",
    "open_web",
]

#: CSS pixels per inch (CSS fixes it at 96).
CSS_PX_PER_INCH = 96.0
_INSTALL_HINT = "pip install 'docvlm[web]' and install Chromium (Debian/Ubuntu: apt-get install chromium)"


class WebRendererWarning(DocVLMWarning):
    """A web page was laid out without a browser (PyMuPDF's HTML Story): no JavaScript, no images or styles."""


class WebOptions(BaseModel):
    """How a web page is rendered, and what it may do. The defaults are safe for untrusted URLs.

    Attributes:
        viewport_width: CSS pixels; the width the page is laid out at, and the width of every tile.
        viewport_height: CSS pixels; the height of a tile.
        device_scale: device pixels per CSS pixel (2 for a "retina" rendering); the default rendering is
            ``96 * device_scale`` dpi, and media queries / ``srcset`` see this ratio.
        javascript: run the page's scripts (within ``js_budget_s``).
        js_budget_s: seconds the page's scripts may run after navigation; then they are stopped (a script
            still running, such as an endless loop, is terminated) and the page is read as it is.
        timeout_s: the most seconds opening the page may take in all.
        max_bytes: the most bytes the page may download in all (document and sub-resources).
        max_requests: the most requests the page may make.
        max_pixels: pixel budget of the whole page at the default resolution: a longer page is cut off
            (and the cut is noted in the metadata).
        allow_hosts: hosts the page may reach even though they are loopback, private or link-local. An entry is
            an origin (``"http://127.0.0.1:8000"``: that scheme, host and port), a host and port
            (``"127.0.0.1:8000"``), or a bare hostname (exact), IP address or CIDR network, which covers the
            default ports (80, 443) and the port of the URL opened, no other: ``("127.0.0.1",)`` for a test
            server at ``http://127.0.0.1:8000/`` does not let the page reach ``127.0.0.1:9000``.
        allow_private_network: allow every loopback, private and link-local address (trusted pages only).
        renderer: ``"auto"`` (Chromium when installed, else PyMuPDF's HTML Story with a warning),
            ``"chromium"`` (error when missing) or ``"story"`` (no browser: no JavaScript, no sub-resources).
        resource_dir: for an HTML file or string, the folder its relative images and styles are served from
            (nothing outside it); without it they are not loaded.
        base_url: for an HTML string, the URL it is treated as coming from (relative links resolve against it
            and sub-resources are fetched from there, under the same rules).
        snap_tiles: move each cut between tiles up to the gap between two lines of text when one lies in the
            tile's last quarter, so that no line is cut in half.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    viewport_width: int = Field(default=1280, ge=200, le=8192)
    viewport_height: int = Field(default=800, ge=200, le=8192)
    device_scale: float = Field(default=1.0, gt=0, le=4)
    javascript: bool = True
    js_budget_s: float = Field(default=5.0, ge=0, le=600)
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    max_bytes: int = Field(default=50_000_000, ge=1024)
    max_requests: int = Field(default=1000, ge=1)
    max_pixels: int = Field(default=40_000_000, ge=40_000)
    allow_hosts: tuple[str, ...] = ()
    allow_private_network: bool = False
    renderer: Literal["auto", "chromium", "story"] = "auto"
    resource_dir: Path | None = None
    base_url: str | None = None
    snap_tiles: bool = True

    @field_validator("allow_hosts")
    @classmethod
    def _check_allow_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        AddressPolicy(allow=value)  # raises ValueError naming a malformed entry
        return value

    def _policy(self, page_url: str | None = None) -> AddressPolicy:
        """The address policy of a page opened at ``page_url`` (bare ``allow_hosts`` entries cover its port)."""
        return AddressPolicy(allow=self.allow_hosts, allow_private_network=self.allow_private_network,
                             page=AddressPolicy.origin_of(page_url))


class BlockedRequest(BaseModel):
    """A request of the page that was refused (or failed), and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    reason: BlockReason
    detail: str = ""
    resource_type: str = ""


class WebLink(BaseModel):
    """A link on a page: where it points, its text and where it is (page space of its tile)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    text: str
    box: BoundingBox
    page: int = Field(ge=0)


class FormField(BaseModel):
    """A form control on a page (``input``, ``select``, ``textarea``, ``button``); password values are never read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="the input type ('text', 'checkbox', ...) or 'select', 'textarea', 'button'")
    name: str | None = None
    label: str | None = None
    value: str | None = None
    checked: bool | None = None
    options: list[str] = Field(default_factory=list)
    required: bool = False
    disabled: bool = False
    box: BoundingBox | None = None
    page: int = Field(default=0, ge=0)


# ---------------------------------------------------------------------------------------------------------
# what a renderer hands over: the whole page read once


class _Snapshot:
    """The page as read: size (CSS px), words / links / fields / tables in whole-page coordinates, tiles."""

    def __init__(self, *, width: float, height: float, words: list[tuple[float, float, float, float, str, int]],
                 links: list[dict[str, Any]], fields: list[dict[str, Any]], tables: list[dict[str, Any]],
                 title: str, url: str | None) -> None:
        self.width = width
        self.height = height
        self.words = words
        self.links = links
        self.fields = fields
        self.tables = tables
        self.title = title
        self.url = url
        self.tiles: list[tuple[float, float]] = []


def _tile_bounds(height: float, tile: float, spans: list[tuple[float, float]], snap: bool) -> list[tuple[float, float]]:
    """Cut ``[0, height]`` into tiles at most ``tile`` tall, moving cuts up to a gap between lines of text."""
    spans = sorted(spans)
    tops = [a for a, _ in spans]
    tallest = max((b - a for a, b in spans), default=0.0)
    out: list[tuple[float, float]] = []
    top = 0.0
    while height - top > 0.5 or not out:
        bottom = min(top + tile, height)
        if snap and bottom < height:
            floor = top + 0.75 * tile
            for _ in range(100):
                lo = bisect.bisect_left(tops, bottom - tallest)
                hi = bisect.bisect_left(tops, bottom - 0.5)
                crossing = [a for a, b in spans[lo:hi] if b > bottom + 0.5]
                if not crossing:
                    break
                cut = min(crossing)
                if cut <= floor:  # a line of text taller than a quarter tile: cut where the tile ends
                    bottom = min(top + tile, height)
                    break
                bottom = cut
        out.append((top, bottom))
        top = bottom
    return out


def _number_lines(words: list[tuple[float, float, float, float, str, int]]) -> list[tuple[int, int]]:
    """``(line, index)`` of each word (in DOM order): a new line where a word does not continue its block's last line."""
    last: dict[int, tuple[float, float, float, int, int]] = {}  # block -> (x0, y0, y1, line, index)
    out = []
    for x0, y0, _x1, y1, _text, block in words:
        prev = last.get(block)
        if prev is None:
            line, index = 0, 0
        else:
            px0, py0, py1, pline, pindex = prev
            overlap = min(y1, py1) - max(y0, py0)
            same = overlap > 0.5 * min(y1 - y0, py1 - py0) and x0 >= px0 - 1
            line, index = (pline, pindex + 1) if same else (pline + 1, 0)
        last[block] = (x0, y0, y1, line, index)
        out.append((line, index))
    return out


#: a table's grid is kept within these: spans that would reach past column 1000 or take more than 250,000 grid
#: positions are cut (the HTML limits one colspan to 1,000, but rows of rowspans stack them into a staircase of
#: 1,000 columns a row; MuPDF's layout of ten such rows took 500 MB)
_MAX_GRID_COLS = 1000
_MAX_GRID_POSITIONS = 250_000


def _grid(rows: list[list[dict[str, Any]]]) -> list[tuple[int, int, int, int, dict[str, Any]]]:
    """``(row, col, row_span, col_span, cell)`` per cell with the HTML table algorithm; spans that would overlap
    another cell are cut short (malformed tables), ``rowspan=0`` reaches the last row, and spans past the grid's
    bounds (`_MAX_GRID_COLS`, `_MAX_GRID_POSITIONS`) are cut."""
    return _grid_cut(rows)[0]


def _grid_cut(rows: list[list[dict[str, Any]]]) -> tuple[list[tuple[int, int, int, int, dict[str, Any]]], bool]:
    """`_grid`, and whether a span had to be cut to keep the grid within its bounds."""
    n_rows = len(rows)
    taken: set[tuple[int, int]] = set()
    out = []
    cut = False
    for r, row in enumerate(rows):
        c = 0
        for cell in row:
            while (r, c) in taken:
                c += 1
            want_rows = int(cell.get("row_span") or 0)
            want_rows = n_rows - r if want_rows <= 0 else min(want_rows, n_rows - r)
            want_cols = max(1, min(int(cell.get("col_span") or 1), 1000))
            if c + want_cols > _MAX_GRID_COLS and want_cols > 1:
                want_cols, cut = max(1, _MAX_GRID_COLS - c), True
            if len(taken) + want_rows * want_cols > _MAX_GRID_POSITIONS and want_rows * want_cols > 1:
                want_rows, want_cols, cut = 1, 1, True
            cols = 1
            while cols < want_cols and (r, c + cols) not in taken:
                cols += 1
            span_rows = 1
            while span_rows < want_rows and all((r + span_rows, c + k) not in taken for k in range(cols)):
                span_rows += 1
            for rr in range(r, r + span_rows):
                for cc in range(c, c + cols):
                    taken.add((rr, cc))
            out.append((r, c, span_rows, cols, cell))
            c += cols
    return out, cut


def _box(values: Any, dy: float) -> BoundingBox | None:
    if not values:
        return None
    x0, y0, x1, y1 = (float(v) for v in values)
    if not (x0 <= x1 and y0 <= y1):
        return None
    return BoundingBox(x0=x0, y0=y0 - dy, x1=x1, y1=y1 - dy)


# ---------------------------------------------------------------------------------------------------------
# the document


class WebPage(Page):
    """One tile of a web page; page space is CSS pixels, origin at the tile's top-left corner.

    ``tile`` is where the tile lies on the whole page (CSS pixels of the full page):
    a box ``b`` on this page is at ``b.y0 + page.tile.y0`` on the full page.
    """

    units = "css-px"

    def __init__(self, document: WebDocument, index: int) -> None:
        super().__init__(document, index)
        self.web_document = document
        top, bottom = document._snapshot.tiles[index]
        self.tile = BoundingBox(x0=0, y0=top, x1=document._snapshot.width, y1=bottom)
        self._size = Size(width=document._snapshot.width, height=bottom - top)
        self.default_dpi = CSS_PX_PER_INCH * document.options.device_scale

    @property
    def size(self) -> Size:
        return self._size

    @property
    def units_per_inch(self) -> float:
        """96: CSS pixels per inch."""
        return CSS_PX_PER_INCH

    def _rasterize(self, clip: BoundingBox | None, dpi: float) -> PageImage:
        region = clip if clip is not None else self.bbox
        image = self.web_document._render(self.index, self.tile, region, dpi)
        frame = scale_frame(self._size, clip, Size(width=image.width, height=image.height))
        return PageImage(self.index, frame, dpi, image=image)

    def _text_words(self) -> WordList:
        return self.web_document._page_words(self.index)

    @property
    def has_text_layer(self) -> bool:
        return bool(self._text_words())

    def links(self) -> list[WebLink]:
        """The links whose centre lies on this tile."""
        return [link for link in self.web_document.links() if link.page == self.index]

    def form_fields(self) -> list[FormField]:
        """The form controls whose centre lies on this tile."""
        return [f for f in self.web_document.form_fields() if f.page == self.index]

    def tables(self) -> list[Table]:
        """The ``<table>`` elements that start on this tile, as typed tables (a long table may reach past the tile)."""
        return [t for t in self.web_document.tables() if t.page == self.index]


class WebDocument(Document):
    """A web page (URL, HTML file or HTML string) as a sequence of viewport-height tiles.

    Attributes:
        url: the page's final URL after redirects (``None`` for an HTML file or string without ``base_url``).
        title: the page's ``<title>``.
        renderer: ``"chromium"`` or ``"story"`` (the fallback without a browser).
        blocked: the requests that were refused or failed, with the reason.
        notes: what else the safety rules did (scripts stopped, page cut off), by topic.
        options: the options it was opened with.
    """

    format = "html"

    def __init__(self, source: str, snapshot: _Snapshot, options: WebOptions, renderer: str, *,
                 session: Session | None = None, story_pdf: Any = None, status: int | None = None,
                 blocked: list[BlockedRequest] | None = None, notes: dict[str, str] | None = None,
                 browser_version: str = "") -> None:
        self.source = source
        self.options = options
        self.renderer = renderer
        self.url = snapshot.url
        self.title = snapshot.title
        self.status = status
        self.blocked = list(blocked or [])
        self.notes = dict(notes or {})
        self.browser_version = browser_version
        self._snapshot = snapshot
        self._local_dir: Path | None = None
        self._session = session
        self._story_pdf = story_pdf
        self._words: list[WordList] | None = None
        self._links: list[WebLink] | None = None
        self._fields: list[FormField] | None = None
        self._tables: list[Table] | None = None
        self._finalizer = weakref.finalize(self, _release, session, story_pdf)

    @property
    def page_count(self) -> int:
        return len(self._snapshot.tiles)

    def _load_page(self, index: int) -> WebPage:
        return WebPage(self, index)

    @property
    def metadata(self) -> dict[str, str]:
        out = {"renderer": self.renderer + (f" {self.browser_version}" if self.browser_version else "")}
        if self.url:
            out["url"] = self.url
        if self.title:
            out["title"] = self.title
        if self.status is not None:
            out["status"] = str(self.status)
        out["size"] = f"{self._snapshot.width:g}x{self._snapshot.height:g} css-px"
        if self.blocked:
            lines = [f"{b.reason.value}: {b.url} ({b.detail})" for b in self.blocked[:50]]
            if len(self.blocked) > 50:
                lines.append(f"... and {len(self.blocked) - 50} more")
            out["blocked"] = "\n".join(lines)
        out.update(self.notes)
        return out

    # whole-document extras -----------------------------------------------------------------------------
    def _tile_of(self, y0: float, y1: float) -> int | None:
        """The tile holding vertical centre ``(y0 + y1) / 2``, or ``None`` below the last tile."""
        centre = (y0 + y1) / 2
        tiles = self._snapshot.tiles
        i = bisect.bisect_right([t[0] for t in tiles], centre) - 1
        if i < 0:
            return 0 if tiles else None
        return i if centre <= tiles[i][1] else None

    def _page_words(self, index: int) -> WordList:
        if self._words is None:
            snap = self._snapshot
            rows: list[list[WordRow]] = [[] for _ in snap.tiles]
            for (x0, y0, x1, y1, text, block), (line, idx) in zip(snap.words, _number_lines(snap.words), strict=True):
                tile = self._tile_of(y0, y1)
                if tile is None:
                    continue
                top = snap.tiles[tile][0]
                rows[tile].append((x0, y0 - top, x1, y1 - top, text, block, line, idx))
            self._words = [WordList(r, i) for i, r in enumerate(rows)]
        return self._words[index]

    def links(self) -> list[WebLink]:
        """Every visible link of the page, each on the tile holding its centre."""
        if self._links is None:
            out = []
            for raw in self._snapshot.links:
                box = raw["box"]
                tile = self._tile_of(box[1], box[3])
                if tile is None:
                    continue
                b = _box(box, self._snapshot.tiles[tile][0])
                if b is not None and b.width > 0:
                    url = self._public_url(str(raw["href"]))
                    out.append(WebLink(url=url, text=str(raw.get("text") or ""), box=b, page=tile))
            self._links = out
        return list(self._links)

    def _public_url(self, url: str) -> str:
        """A link of an HTML file or string as the reader knows it: a ``file:`` URL next to the file, or the path."""
        from docvlm.documents._web_browser import LOCAL_ORIGIN

        if not url.startswith(LOCAL_ORIGIN):
            return url
        rest = url[len(LOCAL_ORIGIN):]
        return (self._local_dir / rest).as_uri() if self._local_dir is not None and rest else "/" + rest

    def form_fields(self) -> list[FormField]:
        """Every visible form control of the page, each on the tile holding its centre."""
        if self._fields is None:
            out = []
            for raw in self._snapshot.fields:
                box = raw.get("box")
                tile = self._tile_of(box[1], box[3]) if box else 0
                if tile is None:
                    continue
                value = raw.get("value")
                out.append(FormField(
                    kind=str(raw["kind"]), name=raw.get("name"), label=raw.get("label"),
                    value=None if value is None else str(value), checked=raw.get("checked"),
                    options=[str(o) for o in raw.get("options") or []], required=bool(raw.get("required")),
                    disabled=bool(raw.get("disabled")), box=_box(box, self._snapshot.tiles[tile][0]), page=tile,
                ))
            self._fields = out
        return list(self._fields)

    def tables(self) -> list[Table]:
        """Every visible ``<table>`` as a [`Table`][docvlm.types.table.Table] (spans, header cells, text, boxes).

        A table belongs to the tile where it starts; its boxes are in that tile's page space, so a long table's
        lower cells lie below the tile's bottom edge. Nested tables are listed on their own as well.
        """
        if self._tables is None:
            out = []
            for raw in self._snapshot.tables:
                box = raw.get("box")
                tile = 0 if not box else self._tile_of(box[1], box[1])
                if tile is None:
                    continue
                top = self._snapshot.tiles[tile][0]
                cells = [
                    TableCell(row=r, col=c, row_span=rs, col_span=cs, text=str(cell.get("text") or ""),
                              box=_box(cell.get("box"), top), is_header=bool(cell.get("header")))
                    for r, c, rs, cs, cell in _grid(raw["rows"])
                ]
                if not cells:
                    continue
                out.append(Table(cells=cells, box=_box(box, top), page=tile, caption=raw.get("caption") or None))
            self._tables = out
        return list(self._tables)

    # rendering ---------------------------------------------------------------------------------------------
    def _render(self, index: int, tile: BoundingBox, region: BoundingBox, dpi: float) -> Image.Image:
        from PIL import Image

        scale = dpi / CSS_PX_PER_INCH
        if self._session is not None:
            if self._session.closed:
                raise UsageError("the document is closed", source=self.source, page=index)
            try:
                png = self._session.capture(region.x0, tile.y0 + region.y0, region.width, region.height, scale)
            except Exception as exc:
                raise DocumentError(f"the browser could not render the page ({exc})", source=self.source,
                                    page=index) from exc
            image = Image.open(io.BytesIO(png))
            return image.convert("RGB")
        assert self._story_pdf is not None
        import pymupdf

        pt = 72.0 / CSS_PX_PER_INCH
        with mupdf_errors(self.source, index, "rendering the page"):
            pdf_page = self._story_pdf[index]
            clip = pymupdf.Rect(region.x0 * pt, region.y0 * pt, region.x1 * pt, region.y1 * pt)
            pix = pdf_page.get_pixmap(matrix=pymupdf.Matrix(dpi / 72.0, dpi / 72.0), clip=clip, alpha=False)
            return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"<WebDocument {self.source!r}: {self.page_count} tile(s), {self.renderer}>"


def _release(session: Session | None, story_pdf: Any) -> None:
    if session is not None:
        session.close()
    if story_pdf is not None:
        story_pdf.close()


# ---------------------------------------------------------------------------------------------------------
# opening


def open_web(source: str | bytes, kind: Literal["url", "file", "html"], options: WebOptions | None = None,
             *, label: str | None = None) -> Document:
    """Open a web page as a document (``dv.open`` calls this for URLs, ``.html`` files and ``format="html"``).

    Args:
        source: the URL, the path of an HTML file, or the HTML itself (text or bytes).
        kind: which of the three ``source`` is.
        options: rendering and safety options; the defaults are safe for untrusted pages.
        label: how the document names its source in messages.

    Returns:
        a `WebDocument`; a URL that serves a PDF or an image opens as that document instead.

    Raises:
        BlockedURLError: the URL is refused by the safety rules (local file, private address, scheme).
        DocumentNotFoundError: the URL cannot be fetched, or there is no file at the path.
        MissingDependencyError: ``renderer="chromium"`` and playwright or Chromium is not installed.
        DocumentError: the browser failed to load or render the page.
    """
    opts = options or WebOptions()
    # bare allow_hosts entries cover the port of the URL the caller opened (or of base_url), not others
    policy = opts._policy(source.strip() if kind == "url" and isinstance(source, str)
                          else opts.base_url if kind == "html" else None)
    budget = FetchBudget(max_bytes=opts.max_bytes, max_requests=opts.max_requests, timeout_s=opts.timeout_s)
    status: int | None = None
    from docvlm.documents._web_browser import LOCAL_ORIGIN

    if kind == "url":
        assert isinstance(source, str)
        url = source.strip()
        shown = label or url
        try:
            main = fetch(url, policy=policy, budget=budget)
        except Blocked as exc:
            if exc.reason in (BlockReason.NETWORK_ERROR, BlockReason.TIMEOUT):
                raise DocumentNotFoundError(f"cannot fetch the page: {exc.detail}", source=shown,
                                            hint="check the URL and the network") from None
            if exc.reason is BlockReason.MAX_BYTES:
                raise DocumentError(exc.detail, source=shown, hint="raise WebOptions(max_bytes=...)") from None
            where = "" if exc.url == url else f" (redirected to {exc.url})"
            raise BlockedURLError(f"the URL is refused{where}: {exc.detail}", source=shown,
                                  hint="pass WebOptions(allow_hosts=[...]) for a host you trust") from None
        status = main.status
        other = _non_html(main, shown)
        if other is not None:
            return other
        main_url = main.url
    else:
        if kind == "file":
            path = Path(source if isinstance(source, str) else source.decode())
            shown = label or str(path)
            if not path.is_file():
                raise DocumentNotFoundError("no such file", source=shown, hint="check the path")
            if path.stat().st_size > opts.max_bytes:
                raise DocumentError(f"the HTML file is {path.stat().st_size:,} bytes, over max_bytes={opts.max_bytes:,}",
                                    source=shown, hint="raise WebOptions(max_bytes=...)")
            body = path.read_bytes()
            main_url = LOCAL_ORIGIN + (path.name if path.suffix else "index.html")
        else:
            body = source.encode() if isinstance(source, str) else bytes(source)
            shown = label or f"<html, {len(body)} bytes>"
            main_url = opts.base_url or LOCAL_ORIGIN
            if opts.base_url is not None:
                try:
                    policy.resolve(opts.base_url)
                except Blocked as exc:
                    if exc.reason is not BlockReason.NETWORK_ERROR:
                        raise BlockedURLError(f"base_url is refused: {exc.detail}", source=shown) from None
        if len(body) > opts.max_bytes:
            raise DocumentError(f"the HTML is {len(body):,} bytes, over max_bytes={opts.max_bytes:,}", source=shown,
                                hint="raise WebOptions(max_bytes=...)")
        main = Response(main_url, 200, "OK", [("content-type", "text/html")], body)

    executable, why = _find_renderer(opts)
    if executable is None:
        if opts.renderer == "auto":
            warnings.warn(
                f"{shown}: {why}; laying the page out with PyMuPDF's HTML Story instead (no JavaScript, no images, "
                f"styles or other sub-resources). For the real renderer: {_INSTALL_HINT}",
                WebRendererWarning, stacklevel=3,
            )
        doc = _open_story(shown, main, opts, status, main.url if kind == "url" else opts.base_url if kind == "html"
                          else None)
    else:
        doc = _open_chromium(shown, main_url, main, opts, executable, status, kind, policy)
    if kind == "file":
        doc._local_dir = Path(source if isinstance(source, str) else source.decode()).resolve().parent
    return doc


def _find_renderer(opts: WebOptions) -> tuple[str | None, str]:
    """The Chromium executable to use, or ``None`` and why not."""
    if opts.renderer == "story":
        return None, "the Story renderer was asked for"
    import importlib.util

    from docvlm.documents._web_browser import chromium_path

    if importlib.util.find_spec("playwright") is None:
        if opts.renderer == "chromium":
            raise MissingDependencyError("playwright", "web", purpose="rendering web pages with Chromium",
                                         hint=_INSTALL_HINT)
        return None, "the package 'playwright' is not installed"
    executable = chromium_path()
    if executable is None:
        if opts.renderer == "chromium":
            raise MissingDependencyError("chromium", "web", purpose="rendering web pages",
                                         hint="install Chromium (Debian/Ubuntu: apt-get install chromium) "
                                              "or set DOCVLM_CHROMIUM to its executable")
        return None, "no Chromium executable was found (looked for chromium on PATH and $DOCVLM_CHROMIUM)"
    return executable, ""


def _non_html(main: Response, label: str) -> Document | None:
    """A URL that serves a PDF or an image opens as that document."""
    from docvlm.documents._sniff import sniff_format

    ctype = (main.header("content-type") or "").split(";", 1)[0].strip().lower()
    sniffed = sniff_format(main.body[:1024])
    if sniffed is None or "html" in ctype:
        return None
    if sniffed == "pdf":
        from docvlm.documents.pdf import PDFDocument

        return PDFDocument(main.body, None, label)
    from docvlm.documents.image import ImageDocument

    return ImageDocument(main.body, label)


def _blocked(events: list[Any]) -> list[BlockedRequest]:
    return [BlockedRequest(url=e.url, reason=e.reason, detail=e.detail, resource_type=e.resource_type) for e in events]


def _cap(width: float, height: float, opts: WebOptions, notes: dict[str, str]) -> tuple[float, float]:
    """The part of the page that is kept: at most 8 viewports wide and within ``max_pixels``."""
    max_width = 8.0 * opts.viewport_width
    if width > max_width:
        notes["truncated-width"] = f"the page is {width:g} CSS px wide; only the first {max_width:g} px are kept"
        width = max_width
    max_height = opts.max_pixels / (width * opts.device_scale**2)
    if height > max_height:
        kept = max(float(opts.viewport_height), float(int(max_height)))
        notes["truncated"] = (
            f"the page is {height:g} CSS px tall; only the first {kept:g} px fit the pixel budget "
            f"(max_pixels={opts.max_pixels:,})")
        height = kept
    return width, height


def _open_chromium(label: str, main_url: str, main: Response, opts: WebOptions, executable: str,
                   status: int | None, kind: str, policy: AddressPolicy) -> WebDocument:
    from docvlm.documents._web_browser import LoadSettings, service

    settings = LoadSettings(
        viewport=(opts.viewport_width, opts.viewport_height), device_scale=opts.device_scale,
        javascript=opts.javascript, js_budget_s=opts.js_budget_s, timeout_s=opts.timeout_s, policy=policy,
        max_bytes=opts.max_bytes, max_requests=opts.max_requests, resource_dir=opts.resource_dir,
    )
    browser = service(executable)
    try:
        session = browser.load(main_url, main, settings)
    except TimeoutError as exc:
        raise DocumentError(f"the page did not load within {opts.timeout_s:g} s ({exc})", source=label,
                            hint="raise WebOptions(timeout_s=...)") from exc
    except Exception as exc:
        raise DocumentError(f"the browser could not load the page ({type(exc).__name__}: {exc})".replace("\n", " "),
                            source=label, hint="check the page; --debug shows the browser's error") from exc
    dom = session.dom
    notes = dict(session.state.notes)
    width, height = _cap(float(dom["width"]), float(dom["height"]), opts, notes)
    words = [(float(w[0]), float(w[1]), float(w[2]), float(w[3]), str(w[4]), int(w[5])) for w in dom["words"]]
    snapshot = _Snapshot(
        width=width, height=height, words=words, links=dom["links"], fields=dom["fields"], tables=dom["tables"],
        title=str(dom.get("title") or ""), url=None if kind != "url" and main_url.startswith("http://docvlm.invalid/")
        else str(dom.get("url") or main_url),
    )
    snapshot.tiles = _tile_bounds(height, float(opts.viewport_height), [(w[1], w[3]) for w in words], opts.snap_tiles)
    return WebDocument(label, snapshot, opts, "chromium", session=session, status=status,
                       blocked=_blocked(session.state.blocked), notes=notes, browser_version=browser.version)


# ---------------------------------------------------------------------------------------------------------
# the fallback: PyMuPDF's HTML Story


def _decode(main: Response) -> str:
    header = re.search(r"charset=([\w-]+)", main.header("content-type") or "", re.I)
    meta = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", main.body[:4096], re.I)
    charset = header.group(1) if header else meta.group(1).decode("ascii") if meta else "utf-8"
    try:
        return main.body.decode(charset, errors="replace")
    except LookupError:
        return main.body.decode("utf-8", errors="replace")


class _TableParser(HTMLParser):
    """``<table>`` elements of an HTML text as rows of cells (text and spans; no boxes without a browser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict[str, Any]] = []
        self._stack: list[dict[str, Any]] = []
        self._cell: list[dict[str, Any]] = []
        self._caption: list[list[str]] = []
        self._skip = 0
        self.title: list[str] = []  # the text of the first <title>
        self._in_title = 0  # 1 inside the first <title>, 2 after it

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "title" and self._in_title == 0:
            self._in_title = 1
        if tag in ("script", "style", "template"):
            self._skip += 1
        elif tag == "table":
            self._stack.append({"box": None, "caption": None, "rows": []})
        elif not self._stack:
            return
        elif tag == "tr":
            self._stack[-1]["rows"].append([])
        elif tag in ("td", "th"):
            table = self._stack[-1]
            if not table["rows"]:
                table["rows"].append([])

            def span(name: str) -> int:
                try:
                    return int(a.get(name) or 1)
                except ValueError:
                    return 1

            cell = {"text": "", "row_span": span("rowspan"), "col_span": span("colspan"), "header": tag == "th",
                    "box": None, "depth": len(self._stack)}
            table["rows"][-1].append(cell)
            self._cell.append(cell)
        elif tag == "caption":
            self._caption.append([])
        elif tag == "br" and self._cell:
            self._cell[-1]["text"] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title == 1:
            self._in_title = 2
        if tag in ("script", "style", "template"):
            self._skip = max(0, self._skip - 1)
        elif tag == "table" and self._stack:
            table = self._stack.pop()
            while self._cell and self._cell[-1]["depth"] > len(self._stack):
                self._cell.pop()
            self.tables.append(table)
        elif tag in ("td", "th") and self._cell and self._cell[-1]["depth"] == len(self._stack):
            self._cell.pop()
        elif tag == "caption" and self._caption and self._stack:
            self._stack[-1]["caption"] = " ".join("".join(self._caption.pop()).split())

    def handle_data(self, data: str) -> None:
        if self._in_title == 1:
            self.title.append(data)
        if self._skip:
            return
        if self._caption:
            self._caption[-1].append(data)
        for cell in self._cell:  # an outer cell's text includes its nested tables, as innerText does
            cell["text"] += data

    def result(self) -> list[dict[str, Any]]:
        for table in self.tables:
            for row in table["rows"]:
                for cell in row:
                    cell["text"] = " ".join(cell["text"].split())
        return self.tables


def _unclosed_tags_as_text(text: str) -> str:
    """``text`` with every ``<`` after the last ``>`` escaped: such a tag can never close, and each one made
    HTMLParser rescan the rest of the document."""
    last = text.rfind(">")
    tail = text[last + 1:]
    return text if "<" not in tail else text[:last + 1] + tail.replace("<", "&lt;")


_STORY_MAX_DEPTH = 1000
_SPAN_ATTRIBUTE = re.compile(r"\b(rowspan|colspan)\s*=", re.I)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
# elements that never nest (void), or that a sibling of the same kind closes (HTML's implied end tags)
_FLAT = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    "frame", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rtc", "rp",
    "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head", "body",
})


def _nesting_depth(text: str) -> int:
    """An upper bound of how deep the elements of ``text`` nest (one linear pass over its tags; every ``<`` has
    a ``>`` after it by `_unclosed_tags_as_text`)."""
    depth = deepest = 0
    for m in _TAG.finditer(text):
        if m.group(3) or m.group(2).lower() in _FLAT:
            continue
        if m.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


_A_TAG = re.compile(r"<a\b", re.I)
_HREF = re.compile(r"(\bhref\s*=\s*)([\"'])(.*?)\2", re.I | re.S)


def _absolute_links(text: str, base: str) -> str:
    """Every ``<a href>`` of ``text`` resolved against ``base``, as a browser would (MuPDF keeps only absolute
    links). Linear: each tag is cut at its own ``>`` before its ``href`` is looked for."""
    def absolute(m: re.Match[str]) -> str:
        return m.group(1) + m.group(2) + html_lib.escape(urljoin(base, html_lib.unescape(m.group(3)))) + m.group(2)

    out: list[str] = []
    pos = 0
    for m in _A_TAG.finditer(text):
        if m.start() < pos:
            continue
        end = text.find(">", m.end())
        if end < 0:
            break
        out.append(text[pos:m.start()])
        out.append(_HREF.sub(absolute, text[m.start():end], count=1))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _open_story(label: str, main: Response, opts: WebOptions, status: int | None, url: str | None) -> WebDocument:
    import pymupdf

    from docvlm.documents._web_browser import LOCAL_ORIGIN

    # tags that never close become text first: Python's HTMLParser (tables, title) rescans the rest of the
    # document for each of them, quadratic time (a 100 KB page of "<a x " took minutes)
    text = _absolute_links(_unclosed_tags_as_text(_decode(main)), url or LOCAL_ORIGIN)
    parser = _TableParser()
    parser.feed(text)
    parser.close()
    tables = parser.result()
    notes: dict[str, str] = {"javascript": "not run (no browser)", "sub-resources": "not loaded (no browser)"}
    layout_text = text
    if any(_grid_cut(t["rows"])[1] for t in tables):
        # MuPDF would lay out the uncut spans: its grid (and memory) grows with them, so it gets none
        layout_text = _SPAN_ATTRIBUTE.sub(r"data-docvlm-\1=", text)
        notes["table-spans"] = (f"a table's spans reach past {_MAX_GRID_COLS} columns or {_MAX_GRID_POSITIONS:,} cells; "
                                "they are cut in doc.tables() and left out of the rendering")
    depth = _nesting_depth(text)
    if depth > _STORY_MAX_DEPTH:
        # MuPDF's HTML parser takes memory that grows faster than the depth (12,000 nested <b><i><u>: 1.2 GB)
        raise PageTooLargeError(
            f"the HTML nests elements about {depth} deep; without a browser docvlm lays out at most "
            f"{_STORY_MAX_DEPTH} levels", source=label, hint="render it with Chromium (WebOptions(renderer='chromium'))")
    pt = 72.0 / CSS_PX_PER_INCH
    page_rect = pymupdf.Rect(0, 0, opts.viewport_width * pt, opts.viewport_height * pt)
    width = float(opts.viewport_width)
    tile_h = float(opts.viewport_height)
    # the pixel budget bounds the tiles laid out, so a page that never ends (MuPDF keeps placing an inline <svg>
    # on page after page) or a very long one stops there
    max_tiles = max(1, int(opts.max_pixels / (width * opts.device_scale**2) // tile_h))
    try:
        with mupdf_errors(label, None, "laying out the HTML"):
            # an empty archive: the layout may not read any file, and there is no network
            story = pymupdf.Story(html=layout_text, archive=pymupdf.Archive())
            pdf, link_spots, more = _lay_out(story, page_rect, max_tiles)
    except CorruptDocumentError as exc:
        raise CorruptDocumentError(f"the HTML could not be laid out ({exc.message})", source=label) from exc
    if more:
        notes["truncated"] = (f"the page is longer than {max_tiles * tile_h:g} CSS px; only the first "
                              f"{max_tiles * tile_h:g} px fit the pixel budget (max_pixels={opts.max_pixels:,})")
    n = pdf.page_count
    scale = CSS_PX_PER_INCH / 72.0
    words: list[tuple[float, float, float, float, str, int]] = []
    links: list[dict[str, Any]] = []
    block_base = 0
    spots_by_page: dict[int, list[tuple[tuple[float, float, float, float], str]]] = {}
    for page_index, rect, href in link_spots:
        spots_by_page.setdefault(page_index, []).append((rect, href))
    for i in range(n):
        top = i * tile_h
        with mupdf_errors(label, i, "reading the laid-out HTML"):
            found = pdf[i].get_text("words", flags=pymupdf.TEXTFLAGS_WORDS & ~pymupdf.TEXT_PRESERVE_LIGATURES)
        first = len(words)
        for x0, y0, x1, y1, word, block, _line, _wno in found:
            if word == "[image]":  # MuPDF's stand-in for an image it did not load
                continue
            words.append((x0 * scale, y0 * scale + top, x1 * scale, y1 * scale + top, str(word), block_base + int(block)))
        block_base += 1 + max((int(w[5]) for w in found), default=0)
        merged: list[dict[str, Any]] = []
        for (rx0, ry0, rx1, ry1), uri in spots_by_page.get(i, []):
            b = [rx0 * scale, ry0 * scale + top, rx1 * scale, ry1 * scale + top]
            last = merged[-1] if merged else None
            if last is not None and last["href"] == uri and abs(last["box"][1] - b[1]) < 1 and b[0] - last["box"][2] < 2:
                last["box"][2] = max(last["box"][2], b[2])
                last["box"][3] = max(last["box"][3], b[3])
            else:
                merged.append({"href": uri, "box": b})
        # each link's text: the words whose centre is inside it, found by their centre's y (not a scan per link)
        by_y = sorted(range(first, len(words)), key=lambda k: (words[k][1] + words[k][3]) / 2)
        centres = [(words[k][1] + words[k][3]) / 2 for k in by_y]
        for link in merged:
            x0, y0, x1, y1 = link["box"]
            inside = sorted(k for k in by_y[bisect.bisect_left(centres, y0):bisect.bisect_right(centres, y1)]
                            if x0 <= (words[k][0] + words[k][2]) / 2 <= x1)
            link["text"] = " ".join(words[k][4] for k in inside)
        links.extend(merged)
    snapshot = _Snapshot(
        width=width, height=n * tile_h, words=words, links=links, fields=[], tables=tables,
        title=" ".join("".join(parser.title).split()), url=url,
    )
    snapshot.tiles = [(i * tile_h, (i + 1) * tile_h) for i in range(n)]
    return WebDocument(label, snapshot, opts, "story", story_pdf=pdf, status=status, notes=notes)


def _lay_out(story: Any, page_rect: Any, max_pages: int
             ) -> tuple[Any, list[tuple[int, tuple[float, float, float, float], str]], bool]:
    """The Story laid out on at most ``max_pages`` pages: the PDF, its links ``(page, rect, href)`` and whether
    content was left over.

    Like ``Story.write_with_links`` without writing the links into the PDF: PyMuPDF's ``insert_link`` rescans
    the page's links for each one (1,500 links took 15 s), and docvlm reads links from the positions anyway.
    """
    import pymupdf

    stream = io.BytesIO()
    writer = pymupdf.DocumentWriter(stream)
    links: list[tuple[int, tuple[float, float, float, float], str]] = []
    more, pages = True, 0

    def keep(position: Any) -> None:  # PyMuPDF wants a callable of exactly one argument
        if position.open_close & 1 and position.href:
            x0, y0, x1, y1 = position.rect
            links.append((pages - 1, (float(x0), float(y0), float(x1), float(y1)), str(position.href)))

    while more and pages < max_pages:
        pages += 1
        more, _filled = story.place(page_rect)
        story.element_positions(keep)
        device = writer.begin_page(page_rect)
        story.draw(device, None)
        writer.end_page()
    writer.close()
    return pymupdf.open("pdf", stream.getvalue()), links, bool(more)
