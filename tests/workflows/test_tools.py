from __future__ import annotations

import pytest

import docvlm as dv
from docvlm.documents import PageImage
from docvlm.workflows import Toolbox, ToolError
from docvlm.workflows.tools import GroundResult, ImageArtifact, TablesResult, TextResult

TOTAL = {"x0": 300, "y0": 380, "x1": 560, "y1": 420}
TABLE = """| Description | Qty | Unit price | Amount |
| --- | --- | --- | --- |
| Torque wrench | 2 | 18.75 | 37.50 |
| Socket set, 40 pieces | 1 | 64.00 | 64.00 |
| Safety gloves | 5 | 4.20 | 21.00 |"""


@pytest.fixture
def box() -> Toolbox:
    return Toolbox(dv.open(dv.samples.invoice_pdf()))


def test_tools_offered_without_a_model(box: Toolbox) -> None:
    assert [t.name for t in box.tools()] == ["list_pages", "render_page", "zoom", "read_text", "find_tables", "answer"]
    schema = box.tool("read_text").json_schema()
    assert schema["properties"]["page"]["minimum"] == 0
    assert schema["required"] == ["page"]


def test_list_pages(box: Toolbox) -> None:
    r = box.call("list_pages")
    assert r.text == "page 0: 595 x 842 pt"
    assert r.payload.pages[0].has_text_layer


def test_read_text_region(box: Toolbox) -> None:
    r = box.call("read_text", {"page": 0, "box": TOTAL})
    assert not r.is_error
    assert r.text == "Total:   EUR 145.78"
    assert isinstance(r.payload, TextResult)
    assert r.payload.box is not None and r.payload.box.x0 == 300


def test_read_text_whole_page(box: Toolbox) -> None:
    r = box.call("read_text", {"page": 0})
    lines = r.text.splitlines()
    assert lines[0] == "Acme Tools GmbH   INVOICE"
    assert "Total:   EUR 145.78" in lines


def test_find_tables(box: Toolbox) -> None:
    r = box.call("find_tables", {"page": 0})
    assert r.artifacts == ["table-0-0"]
    assert isinstance(r.payload, TablesResult)
    (t,) = r.payload.tables
    assert (t.rows, t.cols) == (4, 4)
    assert t.markdown == TABLE
    assert t.box is not None and (t.box.x0, t.box.y0, t.box.x1, t.box.y1) == (56, 240, 539, 328)
    assert isinstance(box.artifacts["table-0-0"], dv.Table)
    assert TABLE in r.text


def test_render_and_zoom_keep_images_aside(box: Toolbox) -> None:
    r = box.call("render_page", {"page": 0, "dpi": 72})
    assert isinstance(r.payload, ImageArtifact)
    assert (r.payload.width, r.payload.height) == (595, 842)
    assert r.artifacts == [r.payload.id] == ["page-1"]
    z = box.call("zoom", {"page": 0, "box": {"x0": 360, "y0": 340, "x1": 540, "y1": 400}, "dpi": 288})
    assert isinstance(z.payload, ImageArtifact)
    assert (z.payload.width, z.payload.height) == (720, 240)
    image = box.image(z.payload.id)
    assert isinstance(image, PageImage) and image.image.size == (720, 240)
    # the same call again gives the same artifact
    assert box.call("zoom", {"page": 0, "box": {"x0": 360, "y0": 340, "x1": 540, "y1": 400}}).artifacts == ["crop-1"]
    assert len(box.artifacts) == 2


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("read_text", {"page": 1}, "page 1 is out of range: the document has 1 page (0..0)"),
        ("read_text", {"page": -1}, "invalid arguments: page: Input should be greater than or equal to 0"),
        ("zoom", {"page": 0, "box": {"x0": 700, "y0": 0, "x1": 800, "y1": 10}},
         "box [700, 0, 800, 10] is outside page 0 (0, 0, 595, 842)"),
        ("read_text", {"page": 0, "box": {"x0": 0, "y0": 900, "x1": 10, "y1": 950}},
         "box [0, 900, 10, 950] is outside page 0 (0, 0, 595, 842)"),
        ("zoom", {"page": 0}, "invalid arguments: box: Field required"),
        ("read_text", {"page": "first"}, "invalid arguments: page: Input should be a valid integer, unable to parse string as an integer"),
        ("render_page", {"page": 0, "dpi": 10_000}, "invalid arguments: dpi: Input should be less than or equal to 600"),
        ("find_tables", {"page": 0, "path": "/etc/passwd"}, "invalid arguments: path: Extra inputs are not permitted"),
        ("answer", {"text": "x", "citations": [{"page": 2, "box": TOTAL}]},
         "page 2 is out of range: the document has 1 page (0..0)"),
    ],
)
def test_bad_arguments_give_an_error_observation(box: Toolbox, name: str, args: dict[str, object], message: str) -> None:
    r = box.call(name, args)
    assert r.is_error
    assert isinstance(r.payload, ToolError)
    assert r.payload.message == message
    assert r.text == f"error: {message}"
    assert r.artifacts == []


def test_ground_needs_a_model(box: Toolbox) -> None:
    r = box.call("ground", {"page": 0, "phrase": "total"})
    assert r.is_error and r.payload.hint == "ground needs a model: Toolbox(document, model)"


def test_ground_with_a_model() -> None:
    box = Toolbox(dv.open(dv.samples.invoice_pdf()), dv.TestModel())
    assert "ground" in [t.name for t in box.tools()]
    r = box.call("ground", {"page": 0, "phrase": "the invoice total"})
    assert not r.is_error, r.text
    assert isinstance(r.payload, GroundResult)
    assert r.payload.phrase == "the invoice total"
    for b in r.payload.boxes:
        assert 0 <= b.x0 <= b.x1 <= 595 and 0 <= b.y0 <= b.y1 <= 842
    if not r.payload.boxes:
        assert r.text == "'the invoice total' not found on page 0"
    assert box.call("ground", {"page": 0, "phrase": ""}).payload.message.startswith("invalid arguments: phrase:")


def test_answer_records_the_final_answer(box: Toolbox) -> None:
    r = box.call("answer", {"text": "EUR 145.78", "citations": [
        {"page": 0, "box": {"x0": 486.28, "y0": 382.17, "x1": 519.92, "y1": 397.29}, "quote": "145.78"}]})
    assert not r.is_error
    assert r.text == "answer recorded: EUR 145.78 [page 0 [486.3, 382.2, 519.9, 397.3]]"
    assert box.final is not None and box.final.text == "EUR 145.78"
    (c,) = box.final.citations
    assert (c.page, c.quote) == (0, "145.78")
    assert c.box.xyxy == pytest.approx((486.28, 382.17, 519.92, 397.29))


def test_unknown_tool(box: Toolbox) -> None:
    r = box.call("delete_file", {})
    assert r.is_error and r.payload.message.startswith("unknown tool 'delete_file'")


def test_toolbox_opens_a_path() -> None:
    box = Toolbox(dv.samples.invoice_pdf())
    assert box.call("read_text", {"page": 0, "box": TOTAL}).text == "Total:   EUR 145.78"
