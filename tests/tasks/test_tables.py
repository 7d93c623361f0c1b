from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest

import docvlm as dv
from bench.tables import Score, score, table_page
from docvlm.eval.metrics import teds
from docvlm.models.messages import Message
from docvlm.models.test import FunctionInfo, FunctionModel, TestModel
from docvlm.samples import INVOICE
from docvlm.synth import generate
from docvlm.tasks.tables import (
    MergedCell,
    TableGrid,
    extract_tables,
    find_tables,
    table_answers,
)
from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table, TableCell
from tests.conftest import finish_pdf

XS = [100.0, 200.0, 300.0, 400.0]
YS = [200.0, 222.0, 244.0, 266.0]
# a 3x3 table whose first row has one cell spanning columns 1-2 ("Scores") and whose first column has a
# cell spanning rows 1-2 ("Team A")
SPANS = [((0, 0, 1, 1), "Name"), ((0, 1, 1, 3), "Scores"), ((1, 0, 3, 1), "Team A"), ((1, 1, 2, 2), "12"),
         ((1, 2, 2, 3), "7.5"), ((2, 1, 3, 2), "30"), ((2, 2, 3, 3), "8.25")]


def span_pdf(style: str = "lines", rotation: int = 0, *, cropbox: tuple[float, ...] | None = None) -> bytes:
    """The `SPANS` table, ruled with one line per grid segment ("lines") or one rectangle per cell ("rects")."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((56, 60), "Quarterly scores", fontsize=20)
    shape = page.new_shape()
    for (r0, c0, r1, c1), text in SPANS:
        page.insert_text((XS[c0] + 4, YS[r0] + 15), text, fontsize=10)
        if style == "rects":
            shape.draw_rect(pymupdf.Rect(XS[c0], YS[r0], XS[c1], YS[r1]))
    if style == "lines":
        for i, y in enumerate(YS):
            shape.draw_line((XS[1] if i == 2 else XS[0], y), (XS[-1], y))  # no line inside "Team A"
        for i, x in enumerate(XS):
            shape.draw_line((x, YS[1] if i == 2 else YS[0]), (x, YS[-1]))  # no line inside "Scores"
    shape.finish(color=(0, 0, 0), width=0.8)
    shape.commit()
    return finish_pdf(doc, page, cropbox=cropbox, rotation=rotation)


def expected_spans(dx: float = 0, dy: float = 0) -> list[tuple[int, int, int, int, str, tuple[float, ...]]]:
    return [
        (r0, c0, r1 - r0, c1 - c0, text, pytest.approx((XS[c0] - dx, YS[r0] - dy, XS[c1] - dx, YS[r1] - dy)))
        for (r0, c0, r1, c1), text in SPANS
    ]


def cells_of(table: Table) -> list[tuple[int, int, int, int, str, tuple[float, ...] | None]]:
    return [(c.row, c.col, c.row_span, c.col_span, c.text, c.box.xyxy if c.box else None) for c in table.cells]


# the classical path ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_invoice_line_items(rotation: int) -> None:
    page = dv.open(dv.samples.invoice_pdf(rotation=rotation))[0]
    page.render(dpi=36)  # the text layer then comes from the rendering's display list, in its rotation
    tables = find_tables(page)
    items = tables[0]
    assert items.shape == (4, 4) and items.page == 0
    expected = [["Description", "Qty", "Unit price", "Amount"]] + [
        [it["description"], str(it["quantity"]), it["unit_price"], it["amount"]] for it in INVOICE["items"]
    ]
    assert items.grid() == expected
    assert [c.is_header for c in items.cells if c.row == 0] == [True] * 4
    # cell boxes are the generator's ruling, in page space whatever the rotation
    cell = next(c for c in items.cells if (c.row, c.col) == (2, 3))
    assert cell.box is not None and cell.box.xyxy == pytest.approx((450, 284, 539, 306))
    assert page.rotation == rotation  # the finder left the page as it was
    assert extract_tables(None, page) == tables


@pytest.mark.parametrize(("style", "rotation"), [("lines", 0), ("rects", 0), ("lines", 90), ("rects", 270)])
def test_spanning_cells_come_out_with_the_ruling(style: str, rotation: int) -> None:
    # PyMuPDF 2.0's default (use_layout=True) gave cells ending where the text ends here, and found no table
    # at all when its layout model saw none; the line finder alone is exact
    (table,) = extract_tables(None, span_pdf(style, rotation))
    assert table.shape == (3, 3)
    assert cells_of(table) == expected_spans()
    assert table.box is not None and table.box.xyxy == pytest.approx((100, 200, 400, 266))
    assert table.header_rows == 1
    assert table.grid(repeat_spans=False) == [["Name", "Scores", ""], ["Team A", "12", "7.5"], ["", "30", "8.25"]]


def test_boxes_are_in_page_space_on_a_cropped_page() -> None:
    (table,) = find_tables(dv.open(span_pdf(cropbox=(20, 30, 580, 800)))[0])
    assert cells_of(table) == expected_spans(dx=20, dy=30)


def test_header_rows_follow_a_spanning_header_cell() -> None:
    sample = table_page(4, "lines")  # a two-level header: the first column's head spans both header rows
    assert sample.truth.header_rows == 2
    (table,) = extract_tables(None, sample.pdf)
    assert table.header_rows == 2
    truth = sorted(sample.truth.cells, key=lambda c: (c.row, c.col))
    assert [(c.row, c.col, c.row_span, c.col_span, c.text, c.is_header) for c in table.cells] == [
        (c.row, c.col, c.row_span, c.col_span, c.text, c.is_header) for c in truth
    ]
    for got, true in zip(table.cells, truth, strict=True):  # the ruling, its ends jittered
        assert got.box is not None and true.box is not None
        assert got.box.xyxy == pytest.approx(true.box.xyxy, abs=0.5)


def test_open_sided_table_keeps_its_outer_columns() -> None:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    xs, ys = [60.0, 200.0, 300.0, 420.0], [100.0, 120.0, 140.0, 160.0]
    rows = [["Item", "Qty", "Price"], ["Pump", "2", "18.75"], ["Valve", "10", "4.20"]]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            page.insert_text((xs[c] + 4, ys[r] + 14), text, fontsize=10)
    for y in ys:
        page.draw_line((xs[0], y), (xs[-1], y))
    for x in xs[1:-1]:  # inner column lines only: no left or right border
        page.draw_line((x, ys[0]), (x, ys[-1]))
    (table,) = extract_tables(None, doc.tobytes())
    assert table.grid() == rows
    assert table.box is not None and table.box.xyxy == pytest.approx((60, 100, 420, 160))


def test_lone_framed_box_is_not_a_table() -> None:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.draw_rect(pymupdf.Rect(50, 50, 300, 120))
    page.insert_text((60, 80), "Note: a framed paragraph, not a table.", fontsize=10)
    assert find_tables(doc.tobytes()) == []


def test_region_picks_a_table() -> None:
    import pymupdf

    doc = pymupdf.open(stream=span_pdf(), filetype="pdf")
    src = pymupdf.open(stream=span_pdf(), filetype="pdf")
    doc[0].show_pdf_page(pymupdf.Rect(0, 400, 595, 1242), src, 0)  # the same table again, 400 pt lower
    page = dv.open(doc.tobytes())[0]
    assert len(extract_tables(None, page)) == 2
    (low,) = extract_tables(None, page, region=BoundingBox(x0=50, y0=550, x1=450, y1=700))
    assert cells_of(low) == expected_spans(dy=-400)
    with pytest.raises(dv.UsageError, match="page space"):
        extract_tables(None, page, region=BoundingBox(x0=0, y0=0, x1=0.5, y1=0.5, space="normalized"))


def test_borderless_table_in_a_region() -> None:
    sample = table_page(0, "borderless")
    assert sample.truth.box is not None
    (table,) = find_tables(sample.pdf, strategy="text", region=sample.truth.box.pad(4))
    assert table.grid() == sample.truth.grid()
    assert table.header_rows == 1
    result = score([table], sample.truth)
    assert result.text_accuracy == 1 and result.box_rate == 1 and result.mean_iou > 0.75
    assert extract_tables(None, sample.pdf, region=sample.truth.box.pad(4)) == [table]


def test_borderless_table_spanning_a_crossing_header() -> None:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((100, 100), "Measured in the year 2025 ........", fontsize=10)  # crosses columns 1-2
    body = [["North", "12.5", "7"], ["South", "3.25", "41"], ["East", "8.0", "19"], ["West", "1.75", "3"]]
    for r, row in enumerate(body):
        for c, text in enumerate(row):
            page.insert_text((100 + 90 * c, 115 + 15 * r), text, fontsize=10)
    (table,) = find_tables(doc.tobytes(), strategy="text")
    assert table.shape == (5, 3)
    head = table.cell(0, 0)
    assert head is not None and head.col_span >= 2 and head.text.startswith("Measured")
    assert table.grid()[1:] == body


def test_text_strategy_finds_no_table_in_a_paragraph() -> None:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(50, 50, 400, 200), "Plain running text that wraps. " * 12, fontsize=10)
    assert find_tables(doc.tobytes(), strategy="text") == []


def test_line_finder_refuses_images_and_extract_tables_reads_them(files: dict[str, object]) -> None:
    page = dv.open(files["square.png"])[0]  # type: ignore[arg-type]
    with pytest.raises(dv.UsageError, match="this page is an image"):
        find_tables(page)
    assert extract_tables(None, page) == []  # the image path (pixels + OCR): a square with no text is no table


def test_unknown_strategy() -> None:
    with pytest.raises(dv.UsageError, match="unknown table strategy"):
        find_tables(span_pdf(), strategy="lattice")


# accuracy on generated pages: regressions fail CI --------------------------------------------------------------
def total(pages: Sequence[tuple[str, int]]) -> Score:
    out = Score(found=True)
    for style, seed in pages:
        sample = table_page(seed, style)
        out = out.add(score(extract_tables(None, sample.pdf), sample.truth))
    return out


def test_accuracy_on_ruled_tables() -> None:
    # 8 ruled pages: spans, two-level headers, open sides, rules drawn as thin rectangles, rotated pages
    result = total([(style, seed) for seed in range(100, 104) for style in ("lines", "rects")])
    assert result.cells > 150 and result.found
    assert result.text_accuracy >= 0.95
    assert result.box_rate >= 0.95 and result.mean_iou >= 0.95


def test_accuracy_on_borderless_tables() -> None:
    # the layout model finds the table region (about 1 s a page), the words' alignment gives the grid
    result = total([("borderless", 100), ("borderless", 101)])
    assert result.found and result.cells > 20
    assert result.text_accuracy >= 0.9 and result.box_rate >= 0.9


# the model path ---------------------------------------------------------------------------------------------
def test_vision_model_reads_the_table_and_grounds_its_cells() -> None:
    sample = table_page(5, "lines")  # a two-level header and a "Total" label spanning two columns
    region = sample.truth.box
    assert region is not None
    truth = sample.truth.model_copy(update={"cells": sorted(sample.truth.cells, key=lambda c: (c.row, c.col))})
    model = FunctionModel(table_answers(truth))
    page = dv.open(sample.pdf)[0]
    (table,) = extract_tables(model, page, region=region)
    assert table.grid() == truth.grid() and table.shape == truth.shape
    assert [(c.row, c.col, c.row_span, c.col_span, c.is_header) for c in table.cells] == [
        (c.row, c.col, c.row_span, c.col_span, c.is_header) for c in truth.cells
    ]
    assert table.box == region and table.page == 0
    # every cell's box is the union of the words that spell it, inside the drawn cell
    words = page.words()
    for cell, true in zip(table.cells, truth.cells, strict=True):
        if not cell.text:
            assert cell.box is None
            continue
        assert cell.box is not None and true.box is not None and true.box.contains(cell.box)
        spelled = [w for w in words if cell.box.contains(w.box)]
        assert " ".join(w.text for w in spelled) == cell.text
    # the grid first, then one request per row, each showing the rendered region
    first = model.requests[0]
    assert first.constraint.output_type is TableGrid and len(model.requests) == 1 + truth.n_rows
    assert all(len(r.images) == 1 for r in model.requests)
    # the same table as the classical finder reads it
    (classical,) = extract_tables(None, page)
    assert classical.grid() == table.grid() and classical.header_rows == table.header_rows


def test_text_only_model_gets_the_words() -> None:
    sample = table_page(1, "rects")
    model = FunctionModel(table_answers(sample.truth), supports_images=False)
    (table,) = extract_tables(model, sample.pdf, region=sample.truth.box)
    assert table.grid() == sample.truth.grid()
    prompt = model.requests[0].messages[-1].text
    assert not model.requests[0].images
    first_row = [c.text for c in sample.truth.cells if c.row == 1]
    assert "\t".join(first_row) in prompt  # one text line per row, wide gaps as tabs


def test_exact_scripted_answer_gives_the_exact_table() -> None:
    def answer(messages: list[Message], info: FunctionInfo) -> Any:
        if info.output_type is TableGrid:
            return {"n_rows": 3, "n_cols": 3, "header_rows": 1,
                    "merged": [{"row": 0, "col": 1, "row_span": 1, "col_span": 2},
                               {"row": 1, "col": 0, "row_span": 2, "col_span": 1}]}
        row = messages[-1].text.split("Row ")[-1].split(" ")[0]
        return {"1": ["Name", "Scores"], "2": ["Team A", "12", "7.5"], "3": ["30", "8.25"]}[row]

    page = dv.open(span_pdf())[0]
    region = BoundingBox(x0=95, y0=195, x1=405, y1=270)
    (table,) = extract_tables(FunctionModel(answer), page, region=region)
    assert [c[:5] for c in cells_of(table)] == [c[:5] for c in expected_spans()]
    assert [c.is_header for c in table.cells] == [True, True, False, False, False, False, False]
    team = table.cell(2, 0)
    assert team is not None and team.box is not None
    assert team.box.xyxy == pytest.approx(BoundingBox.enclosing(
        [p for w in page.words() if w.text in ("Team", "A") for p in w.box.corners]).xyxy)


def test_no_table_answer() -> None:
    model = FunctionModel(lambda m, i: {"n_rows": 0, "n_cols": 1, "header_rows": 0, "merged": []})
    assert extract_tables(model, span_pdf(), region=BoundingBox(x0=0, y0=0, x1=300, y1=100)) == []
    assert model.calls == 1


def test_test_model_gives_valid_tables() -> None:
    for seed in range(3):
        model = TestModel(seed=seed)
        tables = extract_tables(model, span_pdf(), region=BoundingBox(x0=95, y0=195, x1=405, y1=270))
        assert all(isinstance(t, Table) and t.n_rows <= 60 and t.n_cols <= 24 for t in tables)
        assert len(model.requests) == 1 + sum(t.n_rows for t in tables)


def test_image_page_with_a_vision_model(files: dict[str, object]) -> None:
    from PIL import Image

    rendered = dv.open(span_pdf())[0].render(dpi=72)
    buf = io.BytesIO()
    rendered.image.save(buf, format="PNG")
    truth = extract_tables(None, span_pdf())[0]
    model = FunctionModel(table_answers(truth))
    (table,) = extract_tables(model, Image.open(buf))  # no region: the whole image
    assert table.grid() == truth.grid()
    assert all(c.box is None for c in table.cells)  # no text layer to ground the cells in
    assert table.box is not None and table.box.xyxy == (0, 0, 595, 842)
    with pytest.raises(dv.UsageError, match="text-only model and this page has no text layer"):
        extract_tables(TestModel(supports_images=False), dv.open(files["square.png"])[0])  # type: ignore[arg-type]


def test_model_without_region_asks_about_each_layout_table() -> None:
    sample = table_page(2, "borderless")
    page = dv.open(sample.pdf)[0]
    model = FunctionModel(table_answers(sample.truth))
    (table,) = extract_tables(model, page)  # the layout model finds the table's region
    assert table.grid() == sample.truth.grid()
    assert table.box is not None and sample.truth.box is not None and table.box.iou(sample.truth.box) > 0.8


def test_grid_anchors_clip_and_drop_bad_merges() -> None:
    grid = TableGrid(n_rows=2, n_cols=3, header_rows=0, merged=[
        MergedCell(row=0, col=1, row_span=5, col_span=5),  # clipped to the grid: rows 0-1, columns 1-2
        MergedCell(row=1, col=2, row_span=1, col_span=1),  # inside the first: dropped
        MergedCell(row=9, col=0, row_span=1, col_span=2),  # off the grid: dropped
    ])
    assert grid.anchors() == [(0, 0, 1, 1), (0, 1, 2, 2), (1, 0, 1, 1)]


def test_table_answers_round_trip() -> None:
    truth = Table(cells=[TableCell(row=0, col=0, col_span=2, text="Both", is_header=True),
                         TableCell(row=1, col=0, text="a"), TableCell(row=1, col=1, text="b")])
    answer = table_answers(truth)
    grid = answer([Message("user", ["x"])], FunctionInfo(TableGrid, None, None, 0))  # type: ignore[arg-type]
    assert grid.header_rows == 1 and grid.merged == [MergedCell(row=0, col=0, row_span=1, col_span=2)]
    with pytest.raises(dv.UsageError, match="only answers extract_tables"):
        answer([Message("user", ["What is this?"])], FunctionInfo(list, None, None, 1))  # type: ignore[arg-type]


# tables ruled as "horizontal rules": a ruled or shaded header, body rows below it --------------------------------
@pytest.mark.parametrize("seed", [0, 3, 8, 19])
def test_body_below_a_ruled_header_joins_the_table(seed: int) -> None:
    # generate("table", seed) draws these with a shaded header (fill rectangles: the finder sees a ruled header
    # only) and body rows separated by horizontal rules alone; seeds 0 and 19 have a two-level header
    doc = generate("table", seed)
    truth = doc.tables[0]
    (table,) = extract_tables(None, doc.open()[0])
    assert table.shape == truth.shape and table.header_rows == truth.header_rows
    cells = sorted(truth.cells, key=lambda c: (c.row, c.col))
    assert [(c.row, c.col, c.row_span, c.col_span, c.text, c.is_header) for c in table.cells] == [
        (c.row, c.col, c.row_span, c.col_span, c.text, c.is_header) for c in cells
    ]
    for got, true in zip(table.cells, cells, strict=True):  # columns from the header, rows between the rules
        assert got.box is not None and true.box is not None
        assert got.box.xyxy == pytest.approx(true.box.xyxy, abs=0.01)
    assert table.box is not None and truth.box is not None
    assert table.box.xyxy == pytest.approx(truth.box.xyxy, abs=0.01)
    assert teds(table, truth.model_copy(update={"caption": None})) == 1.0


HEAD_XS = [60.0, 200.0, 300.0, 420.0]
HEAD = ["Item", "Qty", "Price"]


def ruled_header_pdf(below: list[tuple[float, float, str]], *, body_rules: int = 0) -> bytes:
    """A one-row ruled and shaded header from y 100 to 120 over `HEAD_XS`, text ``(x, baseline, text)``
    below it, and ``body_rules`` full-width rules at y 140, 160, ..."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.draw_rect(pymupdf.Rect(HEAD_XS[0], 100, HEAD_XS[-1], 120), color=None, fill=(0.85, 0.85, 0.85))
    for x0, x1, text in zip(HEAD_XS, HEAD_XS[1:], HEAD, strict=False):
        page.draw_rect(pymupdf.Rect(x0, 100, x1, 120), width=0.6)
        page.insert_text((x0 + 4, 114), text, fontsize=10)
    for x, y, text in below:
        page.insert_text((x, y), text, fontsize=10)
    for r in range(body_rules):
        page.draw_line((HEAD_XS[0], 140 + 20 * r), (HEAD_XS[-1], 140 + 20 * r), width=0.4)
    return doc.tobytes()


BODY = [["Pump", "2", "18.75"], ["Valve", "10", "4.20"], ["Hose clamp", "40", "0.35"]]


def body_text(rows: Sequence[Sequence[str]], first_baseline: float = 134) -> list[tuple[float, float, str]]:
    return [(HEAD_XS[c] + 4, first_baseline + 20 * r, text) for r, row in enumerate(rows) for c, text in enumerate(row)]


@pytest.mark.parametrize("body_ruled", [True, False])
def test_body_rows_below_a_ruled_header(body_ruled: bool) -> None:
    # the body rows follow with horizontal rules under each, or with no ruling at all (text lines at the rows'
    # pitch whose words fit the header's columns); a footnote two rows further down stays out
    pdf = ruled_header_pdf([*body_text(BODY), (64, 214, "Source: internal.")], body_rules=len(BODY) if body_ruled else 0)
    (table,) = extract_tables(None, pdf)
    assert table.grid() == [HEAD, *BODY]
    assert table.header_rows == 1 and [c.is_header for c in table.cells if c.row == 1] == [False] * 3
    row = [c for c in table.cells if c.row == 2]
    assert [c.box.xyxy[0::2] if c.box else None for c in row] == [(60, 200), (200, 300), (300, 420)]
    assert all(c.box is not None and c.box.y0 < 144 + 3 < c.box.y1 for c in row)  # the text line of row 2
    if body_ruled:  # rows end at the rules
        assert [c.box.xyxy[1::2] if c.box else None for c in row] == [(140, 160)] * 3
        assert table.box is not None and table.box.xyxy == pytest.approx((60, 100, 420, 180))


@pytest.mark.parametrize(("case", "below"), [
    # a paragraph right under the table, at the rows' pitch and within its width: its phrases cross the columns
    ("paragraph", [(64, 134, "Plain running text follows the table here,"),
                   (64, 148, "and it is not a row of the table above it.")]),
    # totals to the right, in the table's columns: no first-column cell
    ("totals", [(204, 134, "Subtotal"), (304, 134, "23.10"), (204, 154, "Tax"), (304, 154, "4.62")]),
    # one line in the first column only: a caption or note
    ("note", [(64, 134, "Note 1")]),
])
def test_text_under_a_ruled_table_is_not_joined(case: str, below: list[tuple[float, float, str]]) -> None:
    rows = [HEAD, *BODY]
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    ys = [40.0 + 20 * r for r in range(len(rows) + 1)]  # fully ruled, ending at y 120 like the header above
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            page.insert_text((HEAD_XS[c] + 4, ys[r] + 14), text, fontsize=10)
    for y in ys:
        page.draw_line((HEAD_XS[0], y), (HEAD_XS[-1], y))
    for x in HEAD_XS:
        page.draw_line((x, ys[0]), (x, ys[-1]))
    for x, y, text in below:
        page.insert_text((x, y), text, fontsize=10)
    (table,) = extract_tables(None, doc.tobytes())
    assert table.grid() == rows, case
    assert table.box is not None and table.box.xyxy == pytest.approx((60, 40, 420, 120))
