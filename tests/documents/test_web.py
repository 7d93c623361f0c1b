"""Web pages as documents, rendered by a real headless Chromium against a local HTTP server (no internet).

The server listens on 127.0.0.1, which the default options refuse (a loopback address): every test that
loads from it passes ``allow_hosts=("127.0.0.1",)``, and ``test_the_default_refuses_loopback`` proves the
default. Documents are opened once per session; the browser is one per process.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import itertools
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

import docvlm as dv
from docvlm.documents import _web_browser
from docvlm.documents._open import sniff_format
from docvlm.documents.web import (
    BlockedURLError,
    BlockReason,
    WebDocument,
    WebOptions,
    WebPage,
    WebRendererWarning,
)
from docvlm.models import FunctionInfo, FunctionModel, Message
from docvlm.models import profiles as P
from docvlm.tasks.extract import extract
from docvlm.tasks.vision import ground
from docvlm.types import Space
from tests.conftest import make_pdf
from tests.tasks.test_extract import choices
from tests.tasks.test_vision import FamilyModel
from tests.tasks.test_vision import oracle as box_oracle

FIXTURES = Path(__file__).parent / "web_fixtures"
LOCAL = WebOptions(allow_hosts=("127.0.0.1",), js_budget_s=1.0)

# the grid of the first table in tables.html (spanning text repeated, as Table.grid() gives it)
SALES_GRID = [
    ["Region", "2023", "2023", "2024", "2024"],
    ["Region", "H1", "H2", "H1", "H2"],
    ["North", "10", "12", "14", "16"],
    ["South", "20 (year)", "20 (year)", "22", "24"],
    ["South", "5", "6", "13 (year)", "13 (year)"],
]
SALES_SPANS = {  # (row, col) -> (row_span, col_span, is_header) of the cells that span
    (0, 0): (2, 1, True), (0, 1): (1, 2, True), (0, 3): (1, 2, True),
    (3, 0): (2, 1, False), (3, 1): (1, 2, False), (4, 3): (1, 2, False),
}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The fixture folder, plus a few routes that redirect, download or send too much."""

    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {
        "/redirect-private": (302, {"Location": "http://10.0.0.1/"}, b""),
        "/redirect-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/redirect-local": (302, {"Location": "/invoice.html"}, b""),
        "/download": (200, {"Content-Type": "application/octet-stream",
                            "Content-Disposition": "attachment; filename=x.bin"}, b"x" * 100),
        "/big.png": (200, {"Content-Type": "image/png"}, b"\x89PNG" + b"\x00" * 200_000),
        "/sub-redirect.html": (200, {"Content-Type": "text/html"},
                               b"<!doctype html><p>Sub resources redirect.</p>"
                               b"<img src='/redirect-private'><img src='/redirect-file'>"
                               b"<iframe src='/download'></iframe>"),
        "/report.pdf": (200, {"Content-Type": "application/pdf"}, make_pdf(2)),
        "/big-page.html": (200, {"Content-Type": "text/html"},
                           b"<!doctype html><p>A page with a big image.</p><img src='/big.png'>"),
    }

    def do_GET(self) -> None:
        if self.path.startswith("/to-port/"):  # a redirect to another port of this host
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.path.split('/')[2]}/secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route = self.routes.get(self.path)
        if route is None:
            super().do_GET()
            return
        status, headers, body = route
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(FIXTURES)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def docs(server: str) -> Iterator[dict[str, WebDocument]]:
    """Fixture pages opened once, lazily, with loopback allowed."""
    opened: dict[str, WebDocument] = {}

    class Lazy(dict[str, WebDocument]):
        def __missing__(self, name: str) -> WebDocument:
            doc = dv.open(server + name, web=LOCAL)
            assert isinstance(doc, WebDocument)
            opened[name] = doc
            self[name] = doc
            return doc

    yield Lazy()
    for doc in opened.values():
        doc.close()


class _Secret(http.server.BaseHTTPRequestHandler):
    """Another service on the same host (another port): counts the requests that reach it."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b"<!doctype html><p>SECRET of the other service</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def other_port() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Secret)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()


def blocked(doc: WebDocument, reason: BlockReason) -> list[str]:
    return [b.url for b in doc.blocked if b.reason is reason]


def full_height(doc: WebDocument) -> float:
    return float(doc.metadata["size"].split("x")[1].split()[0])


# ---------------------------------------------------------------------------------------------------------
# safety: the default, addresses, redirects, hostile pages


def test_the_default_refuses_loopback(server: str) -> None:
    with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1, a loopback address") as info:
        dv.open(server + "article.html")
    assert "allow_hosts" in str(info.value.hint)
    # a hostname is checked after resolution: localhost is loopback too
    port = server.rsplit(":", 1)[1]
    with pytest.raises(BlockedURLError, match=r"localhost resolves to (127\.0\.0\.1|::1), a loopback address"):
        dv.open(f"http://localhost:{port}/article.html")
    # allowing an address (or a network) allows the names that resolve to it
    with dv.open(f"http://localhost:{port}/invoice.html", web=LOCAL.model_copy(update={"allow_hosts": ("127.0.0.0/8",)})) as doc:
        assert "INV-2026-0042" in doc[0].text()


@pytest.mark.parametrize(("url", "why"), [
    ("http://10.0.0.1/", "10.0.0.1, a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address"),
    ("http://0.0.0.0:8080/", "an unspecified address"),
])
def test_private_and_special_addresses_are_refused_before_connecting(url: str, why: str) -> None:
    with pytest.raises(BlockedURLError, match=why.replace(".", r"\.").replace("an ", "a[n]? ")):
        dv.open(url, web=WebOptions(timeout_s=2))


def test_redirects_are_checked_hop_by_hop(server: str) -> None:
    with pytest.raises(BlockedURLError, match=r"redirected to http://10\.0\.0\.1/.*a private address"):
        dv.open(server + "redirect-private", web=LOCAL)
    with pytest.raises(BlockedURLError, match=r"redirected to file:///etc/passwd.*may not read local files"):
        dv.open(server + "redirect-file", web=LOCAL)
    with dv.open(server + "redirect-local", web=LOCAL) as doc:  # an allowed redirect is followed
        assert isinstance(doc, WebDocument)
        assert doc.url == server + "invoice.html"
        assert "INV-2026-0042" in doc[0].text()


# allow-lists match scheme, host and port (issue 15, finding 6)


def test_allowing_a_host_does_not_open_its_other_ports(server: str, other_port: int) -> None:
    _Secret.hits.clear()
    # a redirect from the allowed page to another port of the same host is refused before connecting
    with pytest.raises(BlockedURLError, match=rf"redirected to http://127\.0\.0\.1:{other_port}/secret.*a loopback "
                                              rf"address, on http port {other_port}, which the allow_hosts entry "
                                              rf"'127\.0\.0\.1' does not cover"):
        dv.open(server + f"to-port/{other_port}", web=LOCAL)
    # so is a page's sub-resource on that port (an HTML string served as if from the allowed page)
    page = (f"<!doctype html><p>Only this.</p><iframe src='http://127.0.0.1:{other_port}/frame'></iframe>"
            f"<img src='http://127.0.0.1:{other_port}/pixel.png'>")
    with dv.open(page, format="html", web=LOCAL.model_copy(update={"base_url": server})) as doc:
        assert isinstance(doc, WebDocument)
        refused = set(blocked(doc, BlockReason.PRIVATE_ADDRESS))
        assert refused == {f"http://127.0.0.1:{other_port}/frame", f"http://127.0.0.1:{other_port}/pixel.png"}
        assert "SECRET" not in doc[0].text()
    assert _Secret.hits == []  # nothing reached the other service


@pytest.mark.parametrize("entry", ["127.0.0.1:{port}", "http://127.0.0.1:{port}", "[::ffff:127.0.0.1]:{port}"])
def test_an_entry_with_a_port_allows_that_port(other_port: int, entry: str) -> None:
    options = WebOptions(allow_hosts=(entry.format(port=other_port),), renderer="story")
    with dv.open(f"http://127.0.0.1:{other_port}/page", web=options) as doc:
        assert doc[0].text() == "SECRET of the other service"
    with pytest.raises(BlockedURLError, match="a loopback address"):  # ... and no other port
        dv.open(f"http://127.0.0.1:{other_port + 1 if other_port < 65535 else 1}/", web=options)


@pytest.mark.parametrize(("allow", "page", "url", "allowed"), [
    # a bare entry: the default ports, and the scheme and port of the page's own URL
    (("127.0.0.2",), "http://127.0.0.2:8000/", "http://127.0.0.2:8000/x", True),
    (("127.0.0.2",), "http://127.0.0.2:8000/", "http://127.0.0.2:9000/x", False),
    (("127.0.0.2",), "http://127.0.0.2:8000/", "https://127.0.0.2:8000/x", False),
    (("127.0.0.2",), "http://127.0.0.2:8000/", "http://127.0.0.2/x", True),
    (("127.0.0.2",), None, "https://127.0.0.2/x", True),
    (("127.0.0.2",), None, "http://127.0.0.2:8000/x", False),
    (("127.0.0.0/8",), "http://127.0.0.1:8000/", "http://127.0.0.9:8000/x", True),
    (("10.1.2.3",), None, "http://10.1.2.4/x", False),
    # an origin: that scheme, host and port only
    (("http://10.1.2.3:8080",), None, "http://10.1.2.3:8080/x", True),
    (("http://10.1.2.3:8080",), None, "https://10.1.2.3:8080/x", False),
    (("https://10.1.2.3",), None, "https://10.1.2.3/x", True),
    (("https://10.1.2.3",), None, "http://10.1.2.3/x", False),
    # host:port: http or https on that port
    (("10.1.2.3:8080",), None, "https://10.1.2.3:8080/x", True),
    (("10.1.2.3:8080",), "http://10.1.2.3:9090/", "http://10.1.2.3:9090/x", False),
    (("[fd00::1]:8080",), None, "http://[fd00::1]:8080/x", True),
    # public addresses are open on every port
    ((), None, "http://93.184.215.14:8443/x", True),
])
def test_allow_hosts_rules(allow: tuple[str, ...], page: str | None, url: str, allowed: bool) -> None:
    from docvlm.documents._web_net import AddressPolicy, Blocked

    policy = AddressPolicy(allow=allow, page=AddressPolicy.origin_of(page))
    if allowed:
        policy.resolve(url)
    else:
        with pytest.raises(Blocked, match="address"):
            policy.resolve(url)


@pytest.mark.parametrize("entry", ["ftp://10.0.0.1", "10.0.0.1:99999", "10.0.0.1:http", "http://10.0.0.1/path", ":80"])
def test_a_malformed_allow_hosts_entry_is_refused_when_the_options_are_made(entry: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="allow_hosts entry"):
        WebOptions(allow_hosts=(entry,))


def test_a_url_serving_a_pdf_opens_as_a_pdf(server: str) -> None:
    with dv.open(server + "report.pdf", web=LOCAL) as doc:
        assert doc.format == "pdf" and len(doc) == 2 and doc[1].text() == "Hello1"


def test_sub_resources_redirects_and_downloads_are_blocked_and_recorded(docs: dict[str, WebDocument]) -> None:
    doc = docs["sub-redirect.html"]
    assert blocked(doc, BlockReason.PRIVATE_ADDRESS) == ["http://10.0.0.1/"]
    assert blocked(doc, BlockReason.FILE_ACCESS) == ["file:///etc/passwd"]
    assert blocked(doc, BlockReason.DOWNLOAD)[0].endswith("/download")
    assert "private-address: http://10.0.0.1/ (10.0.0.1, a private address)" in doc.metadata["blocked"]
    assert doc[0].text() == "Sub resources redirect."


def test_file_iframe_is_refused_and_recorded(docs: dict[str, WebDocument]) -> None:
    doc = docs["hostile_file.html"]
    assert set(blocked(doc, BlockReason.FILE_ACCESS)) == {"file:///etc/passwd", "file:///etc/hostname"}
    assert "file-access: file:///etc/passwd" in doc.metadata["blocked"]
    assert doc[0].text() == "Before the frame.\nAfter the frame."
    assert "root:" not in doc[0].text()


def test_requests_to_private_addresses_are_refused_and_recorded(docs: dict[str, WebDocument]) -> None:
    doc = docs["hostile_private.html"]
    by_url = {b.url: b for b in doc.blocked}
    assert by_url["http://10.0.0.1/"].reason is BlockReason.PRIVATE_ADDRESS
    assert by_url["http://10.0.0.1/"].resource_type == "fetch"
    assert by_url["http://10.0.0.1/pixel.png"].resource_type == "image"
    assert by_url["http://169.254.169.254/latest/meta-data/"].detail == "169.254.169.254, a link-local address"
    # WebSockets escape request interception: they are recorded, and the browser's dead proxy stops them
    assert blocked(doc, BlockReason.WEBSOCKET) == ["ws://10.0.0.1/socket"]
    # the page's script saw its fetch fail: it never reached the address
    assert doc[0].text() == "refused"


def test_an_endless_script_is_stopped_by_the_budget(docs: dict[str, WebDocument]) -> None:
    doc = docs["hostile_loop.html"]
    assert doc.metadata["javascript"].startswith("stopped: a script was still running when the 1 s")
    # the page was read after the script was terminated, parsing went on
    assert doc[0].text() == "Text before the loop.\nText after the loop."
    assert doc[0].render().size.width == 1280


def test_popups_navigation_and_permissions_are_denied(docs: dict[str, WebDocument]) -> None:
    doc = docs["hostile_popup.html"]
    assert blocked(doc, BlockReason.POPUP)[0].endswith("/article.html")
    assert blocked(doc, BlockReason.NAVIGATION)[0].endswith("/tables.html")
    assert doc.url is not None and doc.url.endswith("/hostile_popup.html")  # still the page itself
    assert doc.title == "popups"  # geolocation was denied: the success callback never ran
    assert doc[0].text() == "Popups and navigation."


def test_byte_budget(server: str) -> None:
    with dv.open(server + "big-page.html", web=LOCAL.model_copy(update={"max_bytes": 50_000})) as doc:
        assert isinstance(doc, WebDocument)
        (big,) = [b for b in doc.blocked if b.reason is BlockReason.MAX_BYTES]
        assert big.url.endswith("/big.png") and "more than 50,000 bytes" in big.detail
        assert doc[0].text() == "A page with a big image."
    with pytest.raises(dv.DocumentError, match="more than 2,000 bytes"):
        dv.open(server + "article.html", web=LOCAL.model_copy(update={"max_bytes": 2000}))


def test_a_very_tall_page_is_cut_to_the_pixel_budget(docs: dict[str, WebDocument]) -> None:
    doc = docs["tall.html"]
    kept = 40_000_000 / 1280
    assert doc.metadata["truncated"].startswith("the page is 50100 CSS px tall; only the first 31250 px fit")
    assert len(doc) == math.ceil(kept / 800)
    assert sum(p.height for p in doc) == pytest.approx(kept)
    assert doc[-1].height == pytest.approx(kept - 800 * (len(doc) - 1))
    assert doc[0].text() == "Top of the tall page."
    assert not any("Bottom" in p.text() for p in doc)


# ---------------------------------------------------------------------------------------------------------
# tiles, words, extras


def test_tiles_cover_the_page_without_cutting_lines(docs: dict[str, WebDocument]) -> None:
    doc = docs["article.html"]
    height = full_height(doc)
    assert len(doc) == math.ceil(height / 800) or len(doc) == math.ceil(height / 800) + 1
    tops = [p.tile.y0 for p in doc]
    assert tops[0] == 0 and doc[-1].tile.y1 == pytest.approx(height)
    for a, b in itertools.pairwise(doc):
        assert a.tile.y1 == b.tile.y0  # contiguous, no overlap
        assert 600 <= a.height <= 800  # viewport-height tiles, cut a little early at a gap between lines
    for page in doc:
        assert isinstance(page, WebPage)
        assert (page.width, page.units, page.units_per_inch, page.default_dpi) == (1280, "css-px", 96, 96)
        for w in page.words():  # no word crosses a tile's edge
            assert w.box.y0 >= 0 and w.box.y1 <= page.height + 0.01
    image = doc[1].render()
    assert (image.width, image.height) == (1280, round(doc[1].height))
    sharp = doc[1].render(dpi=192)
    assert (sharp.width, sharp.height) == (2560, round(doc[1].height * 2))


def test_words_are_where_the_dom_says(docs: dict[str, WebDocument]) -> None:
    doc = docs["article.html"]
    session = doc._session
    assert session is not None
    checked = 0
    for page in doc:
        words = page.words()
        for w in list(words)[:: max(1, len(words) // 6)]:
            cx, cy = w.box.center
            y = cy + page.tile.y0
            # scroll the word into the viewport and ask the browser which element is drawn there
            found = session.evaluate(
                f"(() => {{ window.scrollTo(0, {y} - 200); const e = document.elementFromPoint({cx}, {y} - scrollY);"
                f" const t = e ? e.textContent : null; window.scrollTo(0, 0); return t; }})()")
            assert found is not None and w.text in found, (w, found)
            checked += 1
    assert checked > 30
    assert session.evaluate("window.scrollY") == 0


def test_word_boxes_land_on_their_ink(docs: dict[str, WebDocument]) -> None:
    page = docs["invoice.html"][0]
    image = page.render(dpi=192)
    pixels = np.asarray(image.image).min(axis=2)
    for w in page.words():
        x0, y0, x1, y1 = (round(v) for v in w.box.to(Space.PIXEL, image.frame).xyxy)
        inside = pixels[y0:y1, x0:x1] < 128
        assert inside.mean() > 0.05, w.text
        _ys, xs = np.nonzero(inside)
        assert xs.max() - xs.min() >= 0.8 * (x1 - x0), w.text  # the glyphs fill most of the box's width


def test_text_layer_reads_like_the_page(docs: dict[str, WebDocument]) -> None:
    doc = docs["article.html"]
    first = doc[0].text().splitlines()
    assert first[0] == "Quarterly report of the Lighthouse Company"
    # a link's text and the full stop after it are one word, as a reader sees them
    assert first[1] == "Contact: info@example.com or see the about page."
    text = "\n".join(p.text() for p in doc)
    assert "secret sentence" not in text  # display: none
    assert "Skip to content" not in text  # clipped to a 1x1 box (screen-reader only)
    assert text.rstrip().endswith("The final sentence of the article says goodbye.")
    assert doc.title == "A long article" and doc.metadata["title"] == "A long article"
    info = doc.info()
    assert info.format == "html" and info.page_count == len(doc) and info.pages[0].units == "css-px"


def test_links_and_form_fields(docs: dict[str, WebDocument], server: str) -> None:
    doc = docs["article.html"]
    page = doc[0]
    links = {link.text: link for link in page.links()}
    assert links["info@example.com"].url == "mailto:info@example.com"
    assert links["the about page"].url == server + "about.html"
    word = next(w for w in page.words() if w.text == "info@example.com")
    assert links["info@example.com"].box.iou(word.box) > 0.9
    fields = {f.name: f for f in page.form_fields()}
    assert set(fields) == {"email", "pw", "agree", "plan"}  # the hidden input is not listed
    assert (fields["email"].kind, fields["email"].label, fields["email"].value) == ("email", "Email address",
                                                                                  "ada@example.com")
    assert fields["pw"].value is None and fields["pw"].label == "Password"  # passwords are never read
    assert fields["agree"].checked is True
    assert (fields["plan"].value, fields["plan"].options) == ("Pro", ["Basic", "Pro"])
    assert all(f.box is not None and f.page == 0 for f in fields.values())


def test_dom_tables_are_typed_tables(docs: dict[str, WebDocument]) -> None:
    doc = docs["tables.html"]
    sales, plain = doc[0].tables()
    assert sales.caption == "Sales by region" and sales.shape == (5, 5) and sales.header_rows == 2
    assert sales.grid() == SALES_GRID
    spans = {(c.row, c.col): (c.row_span, c.col_span, c.is_header) for c in sales.cells
             if c.row_span > 1 or c.col_span > 1}
    assert spans == SALES_SPANS
    assert len(sales.cells) == 19
    assert sales.box is not None and all(c.box is not None and sales.box.pad(0.5).contains(c.box) for c in sales.cells)
    region = sales.cell(0, 0)
    north = sales.cell(2, 0)
    assert region is not None and north is not None and region.box is not None and north.box is not None
    assert region.box.height > 1.8 * north.box.height  # the rowspan cell covers two rows
    # each cell's box holds the words of its text
    for cell in sales.cells:
        assert cell.box is not None
        inside = [w.text for w in doc[0].words() if cell.box.contains(w.box)]
        assert " ".join(inside) == cell.text
    assert plain.grid() == [["a", "b"], ["c", "d"]] and plain.header_rows == 0 and plain.caption is None
    assert doc.tables() == [sales, plain]
    # the table tasks read a web page's tables from its DOM, as they read a PDF's from its vector lines
    assert dv.extract_tables(None, doc[0]) == [sales, plain]
    assert dv.extract_tables(None, doc[0], region=sales.box) == [sales]


# ---------------------------------------------------------------------------------------------------------
# the same API as a PDF: tasks on a web page


def test_ground_on_a_web_page(docs: dict[str, WebDocument]) -> None:
    page = docs["invoice.html"][0]
    target = next(w.box for w in page.words() if w.text == "145.78")
    model = FamilyModel(P.GENERIC, box_oracle([("the total", target)], P.GENERIC))
    (box,) = ground(model, page, "the total")
    assert box.space is Space.PAGE and box.iou(target) > 0.99
    assert ground(model, page, "the total", snap=False)[0].iou(target) > 0.95


def test_extract_on_a_web_page(docs: dict[str, WebDocument]) -> None:
    class Invoice(BaseModel):
        vendor: str
        invoice_number: str
        date: dt.date
        total: float

    truth = {"vendor": "Acme Tools GmbH", "invoice_number": "INV-2026-0042", "date": "2026-11-02", "total": "145.78"}

    def answer(messages: list[Message], info: FunctionInfo) -> dict[str, Any]:
        return {k: truth[k] if truth.get(k) in options else None for k, options in choices(info).items()}

    doc = docs["invoice.html"]
    result = extract(FunctionModel(answer), doc, Invoice)
    assert result.value == Invoice(vendor="Acme Tools GmbH", invoice_number="INV-2026-0042",
                                   date=dt.date(2026, 11, 2), total=145.78)
    total = result.evidence["total"]
    word = next(w.box for w in doc[0].words() if w.text == "145.78")
    assert total.page == 0 and total.box is not None and total.box.iou(word) > 0.99


# ---------------------------------------------------------------------------------------------------------
# sources: HTML files and strings, sniffing, options


def test_html_file_and_string(tmp_path: Path) -> None:
    html = (FIXTURES / "tables.html").read_text()
    with dv.open(html, format="html") as doc:
        assert isinstance(doc, WebDocument) and doc.url is None
        assert doc.tables()[0].grid() == SALES_GRID
    with dv.open(html.encode()) as doc:  # bytes are sniffed
        assert isinstance(doc, WebDocument) and doc.source == f"<{len(html.encode())} bytes>"
    with dv.open(FIXTURES / "invoice.html") as doc:
        assert isinstance(doc, WebDocument) and doc.source.endswith("invoice.html")
        assert doc[0].text().splitlines()[0] == "Acme Tools GmbH"
    assert sniff_format(b"\xef\xbb\xbf<!-- saved -->\n<!DOCTYPE html><html>") == "html"
    assert sniff_format(b"<html lang=en>") == "html"
    assert sniff_format(b"<?xml version='1.0'?><svg/>") is None


def test_local_resources_only_from_resource_dir() -> None:
    path = FIXTURES / "local_image.html"
    with dv.open(path) as doc:
        assert isinstance(doc, WebDocument)
        (miss,) = doc.blocked
        assert miss.reason is BlockReason.FILE_ACCESS and "resource_dir" in miss.detail
    with dv.open(path, web=WebOptions(resource_dir=FIXTURES)) as doc:
        assert isinstance(doc, WebDocument) and doc.blocked == []
        pixel = doc[0].render().image.getpixel((100, 100))
        assert pixel == (220, 0, 0)  # the red picture was loaded from the folder


def test_device_scale_and_viewport(server: str) -> None:
    opts = LOCAL.model_copy(update={"viewport_width": 600, "viewport_height": 400, "device_scale": 2.0})
    with dv.open(server + "invoice.html", web=opts) as doc:
        page = doc[0]
        assert (page.width, page.height, page.default_dpi) == (600, 400, 192)
        image = page.render()
        assert (image.width, image.height, image.dpi) == (1200, 800, 192)
        word = next(w for w in page.words() if w.text == "145.78")
        crop = page.crop(word.box.pad(4), dpi=384)
        assert crop.width == round((word.box.width + 8) * 4)
        assert (np.asarray(crop.image).min(axis=2) < 128).any()


def test_one_browser_per_process_and_a_fresh_context_per_document(docs: dict[str, WebDocument], server: str) -> None:
    doc = docs["invoice.html"]
    path = _web_browser.chromium_path()
    assert path is not None
    svc = _web_browser.service(path)
    assert svc is _web_browser.service(path)
    browser = svc._browser
    before = len(browser.contexts)
    with dv.open(server + "tables.html", web=LOCAL):
        assert len(browser.contexts) == before + 1
    assert len(browser.contexts) == before  # closing the document closed its context
    assert svc._browser is browser and browser.is_connected()  # and the browser stays for the next one
    assert doc[0].words()  # other documents are untouched


def test_closed_document_refuses_to_render(server: str) -> None:
    doc = dv.open(server + "invoice.html", web=LOCAL)
    page = doc[0]
    doc.close()
    with pytest.raises(dv.UsageError, match="the document is closed"):
        page.render()


# ---------------------------------------------------------------------------------------------------------
# without a browser: PyMuPDF's HTML Story


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_web_browser, "chromium_path", lambda: None)


@pytest.mark.usefixtures("no_browser")
def test_story_fallback_without_chromium(server: str) -> None:
    with pytest.warns(WebRendererWarning, match=r"no Chromium executable.*apt-get install chromium"):
        doc = dv.open(server + "tables.html", web=LOCAL)
    with doc:
        assert isinstance(doc, WebDocument) and doc.renderer == "story"
        assert doc.metadata["javascript"] == "not run (no browser)"
        assert doc.tables()[0].grid() == SALES_GRID  # tables from the HTML itself, without boxes
        assert doc.tables()[0].caption == "Sales by region"
        assert "Sales by region" in doc[0].text()
        image = doc[0].render()
        assert (image.width, image.height) == (1280, 800)
        # the Story's words are in CSS pixels too, and land on their ink
        word = next(w for w in doc[0].words() if w.text == "North")
        px = word.box.to(Space.PIXEL, image.frame)
        x0, y0, x1, y1 = (round(v) for v in px.xyxy)
        assert (np.asarray(image.image)[y0:y1, x0:x1].min(axis=2) < 128).mean() > 0.05


@pytest.mark.usefixtures("no_browser")
def test_story_fallback_pages_and_links() -> None:
    with pytest.warns(WebRendererWarning):
        doc = dv.open(FIXTURES / "article.html", web=WebOptions(viewport_height=600))
    with doc:
        assert len(doc) > 3 and all((p.width, p.height) == (1280, 600) for p in doc)
        assert doc[0].text().splitlines()[0] == "Quarterly report of the Lighthouse Company"
        links = {link.url: link for link in doc.links()}
        # (MuPDF's words keep the full stop: "page.")
        assert links[(FIXTURES / "about.html").resolve().as_uri()].text == "the about page."
        assert links["mailto:info@example.com"].text == "info@example.com"
        assert "The final sentence of the article says goodbye." in doc[-1].text()
    # asking for Chromium when there is none is a typed error naming the fix
    with pytest.raises(dv.MissingDependencyError, match="apt-get install chromium"):
        dv.open(FIXTURES / "article.html", web=WebOptions(renderer="chromium"))


def test_story_renderer_on_request_does_not_warn() -> None:
    with dv.open(FIXTURES / "invoice.html", web=WebOptions(renderer="story")) as doc:
        assert isinstance(doc, WebDocument) and doc.renderer == "story"
        assert "INV-2026-0042" in doc[0].text()


# ---------------------------------------------------------------------------------------------------------
# command line


def test_cli_words_info_and_render_on_urls_and_files(server: str, tmp_path: Path) -> None:
    from docvlm.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["words", str(FIXTURES / "invoice.html")])
    assert res.exit_code == 0, res.output
    assert '"text": "INV-2026-0042"' in res.output
    res = runner.invoke(app, ["info", server + "invoice.html"])
    assert res.exit_code == 1 and "a loopback address" in res.output  # a refused input, not a usage error
    res = runner.invoke(app, ["info", server + "invoice.html", "--allow-host", "127.0.0.1"])
    assert res.exit_code == 0, res.output
    assert '"format": "html"' in res.output and '"units": "css-px"' in res.output
    res = runner.invoke(app, ["render", server + "article.html", "--allow-host", "127.0.0.1", "--pages", "1-2",
                              "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page-0001.png", "page-0002.png"]


def test_bad_url_is_a_typed_error() -> None:
    with pytest.raises(dv.DocumentNotFoundError, match="cannot fetch the page: cannot resolve"):
        dv.open("http://no-such-host.invalid/", web=WebOptions(timeout_s=5))
    with pytest.raises(dv.UsageError, match="unknown format 'htmx'"):
        dv.open(b"<html></html>", format="htmx")


# ---------------------------------------------------------------------------------------------------------
# the browserless layout within bounds (issue 15: found by the fuzz run and bench/stress.py)


def test_links_are_resolved_in_linear_time_and_unclosed_tags_become_text() -> None:
    from docvlm.documents.web import _absolute_links, _unclosed_tags_as_text

    html = "<p><a class=x href='/a?b=1&amp;c=2'>one</a> <A HREF=\"rel\">two</A> <a name=n>three</a>"
    assert _absolute_links(html, "http://h.example/dir/") == (
        "<p><a class=x href='http://h.example/a?b=1&amp;c=2'>one</a> <A HREF=\"http://h.example/dir/rel\">two</A> "
        "<a name=n>three</a>")
    assert _unclosed_tags_as_text("<p>x</p><a x <b y") == "<p>x</p>&lt;a x &lt;b y"
    assert _unclosed_tags_as_text("<p>x</p>") == "<p>x</p>"
    # 20,000 tags that never close: a regex and HTMLParser each took minutes on this
    with dv.open(("<p>Kept.</p>" + "<a x " * 20_000).encode(), format="html",
                 web=WebOptions(renderer="story")) as doc:
        assert doc[0].text().startswith("Kept.")


def test_nesting_depth_counts_what_really_nests() -> None:
    from docvlm.documents.web import _nesting_depth

    assert _nesting_depth("<div><div><span>x</span></div></div>") == 3
    assert _nesting_depth("<p>a<p>b<p>c<br><img src=x><li>d<td>e") == 0  # implied end tags and void elements
    assert _nesting_depth("<b>" * 1500) == 1500
    with pytest.raises(dv.PageTooLargeError, match="nests elements about 1500 deep"):
        dv.open(("<b>" * 1500).encode(), format="html", web=WebOptions(renderer="story"))


def test_table_spans_are_cut_to_the_grid_bounds_and_left_out_of_the_layout() -> None:
    from docvlm.documents.web import _MAX_GRID_COLS, _grid_cut

    rows = [[{"col_span": 1000, "row_span": 1000}] for _ in range(60)]
    cells, cut = _grid_cut(rows)
    assert cut and max(c + cs for _r, c, _rs, cs, _cell in cells) <= _MAX_GRID_COLS + len(rows)
    assert _grid_cut([[{"col_span": 2}, {"row_span": 2}], [{}]])[1] is False  # an ordinary table is not cut
    staircase = "<table>" + "<tr><td colspan=1000 rowspan=1000>x" * 60 + "</table>"
    with dv.open(staircase.encode(), format="html", web=WebOptions(renderer="story")) as doc:
        assert "left out of the rendering" in doc.metadata["table-spans"]
        (table,) = doc.tables()
        assert table.shape[0] == 60 and table.shape[1] <= _MAX_GRID_COLS + 60
