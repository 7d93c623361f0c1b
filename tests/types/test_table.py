"""Table: grid validation with spans, header detection, and exact exports."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from docvlm.errors import UsageError
from docvlm.types import BoundingBox, Frame, Size, Space, Table, TableCell


def cell(row: int, col: int, text: str = "", *, rs: int = 1, cs: int = 1, th: bool = False) -> TableCell:
    return TableCell(row=row, col=col, row_span=rs, col_span=cs, text=text, is_header=th)


@pytest.fixture
def simple() -> Table:
    return Table(
        cells=[
            cell(0, 0, "Item", th=True),
            cell(0, 1, "Price", th=True),
            cell(1, 0, "Tea"),
            cell(1, 1, "3.50"),
            cell(2, 0, "Cake"),
            cell(2, 1, "4.00"),
        ]
    )


@pytest.fixture
def sales() -> Table:
    """Two header rows with a row span and a column span, a gap, and text that needs escaping."""
    return Table(
        cells=[
            cell(0, 0, "Item", rs=2, th=True),
            cell(0, 1, "2023", cs=2, th=True),
            cell(1, 1, "Q1", th=True),
            cell(1, 2, "Q2", th=True),
            cell(2, 0, "Tea & <b>"),
            cell(2, 1, "1|2"),
            cell(3, 0, "Total", cs=2),
            cell(3, 2, 'a,"b"\nc'),
        ],
        caption="Sales <2023>",
        page=3,
    )


# --------------------------------------------------------------------------- validation


def test_cell_spans_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        TableCell(row=0, col=0, row_span=0)
    with pytest.raises(ValidationError):
        TableCell(row=-1, col=0)


def test_shape_defaults_to_the_cells_extent(sales: Table) -> None:
    assert sales.shape == (4, 3)
    assert Table().shape == (0, 0)
    assert Table(cells=[cell(0, 0, "a")], n_rows=3, n_cols=2).shape == (3, 2)


def test_cells_must_fit_the_grid() -> None:
    with pytest.raises(ValidationError, match=r"cell \(0, 1\) 'B' spanning 2 columns does not fit in a 2x2 table"):
        Table(cells=[cell(0, 0, "A"), cell(0, 1, "B", cs=2)], n_rows=2, n_cols=2)
    with pytest.raises(ValidationError, match=r"cell \(2, 0\) 'C' does not fit in a 2x1 table"):
        Table(cells=[cell(2, 0, "C")], n_rows=2, n_cols=1)


def test_overlaps_name_both_cells() -> None:
    with pytest.raises(ValidationError, match=r"cell \(1, 1\) 'B' overlaps cell \(0, 0\) 'A' spanning 2 rows and 2 columns at row 1, column 1"):
        Table(cells=[cell(0, 0, "A", rs=2, cs=2), cell(1, 1, "B")])
    with pytest.raises(ValidationError, match=r"cell \(0, 0\) 'again' overlaps cell \(0, 0\) 'first'"):
        Table(cells=[cell(0, 0, "first"), cell(0, 0, "again")])


def test_long_cell_text_is_shortened_in_messages() -> None:
    c = cell(0, 0, "a very long cell text that goes on")
    assert c.name == "cell (0, 0) 'a very long cell te…'"


def test_boxes_share_one_space() -> None:
    page_box = BoundingBox(x0=0, y0=0, x1=1, y1=1)
    pixel_box = BoundingBox(x0=0, y0=0, x1=1, y1=1, space=Space.PIXEL)
    with pytest.raises(ValidationError, match="share one space, found page, pixel"):
        Table(cells=[TableCell(row=0, col=0, box=pixel_box)], box=page_box)


def test_page_is_non_negative() -> None:
    with pytest.raises(ValidationError):
        Table(page=-1)


# --------------------------------------------------------------------------- views


def test_header_rows(simple: Table, sales: Table) -> None:
    assert simple.header_rows == 1
    assert sales.header_rows == 2
    assert Table(cells=[cell(0, 0, "a"), cell(1, 0, "b")]).header_rows == 0
    # a row with an uncovered position is not a header row
    assert Table(cells=[cell(0, 0, "a", th=True)], n_rows=2, n_cols=2).header_rows == 0


def test_header_never_cuts_a_row_span() -> None:
    t = Table(cells=[cell(0, 0, "Name", th=True, rs=2), cell(0, 1, "Q", th=True), cell(1, 1, "x"), cell(2, 0, "a"), cell(2, 1, "b")])
    assert t.header_rows == 0


def test_cell_lookup(sales: Table) -> None:
    assert sales.cell(1, 0) is sales.cells[0]  # covered through the row span
    assert sales.cell(2, 2) is None  # a gap
    with pytest.raises(UsageError, match=r"\(4, 0\) is outside a 4x3 table"):
        sales.cell(4, 0)


def test_grid(sales: Table) -> None:
    assert sales.grid() == [
        ["Item", "2023", "2023"],
        ["Item", "Q1", "Q2"],
        ["Tea & <b>", "1|2", ""],
        ["Total", "Total", 'a,"b"\nc'],
    ]
    assert sales.grid(repeat_spans=False) == [
        ["Item", "2023", ""],
        ["", "Q1", "Q2"],
        ["Tea & <b>", "1|2", ""],
        ["Total", "", 'a,"b"\nc'],
    ]


def test_to_converts_all_boxes() -> None:
    frame = Frame.for_page(Size(width=100, height=100), scale=2)
    t = Table(
        cells=[TableCell(row=0, col=0, text="a", box=BoundingBox(x0=1, y0=1, x1=5, y1=5)), cell(0, 1, "b")],
        box=BoundingBox(x0=0, y0=0, x1=10, y1=10),
    )
    px = t.to(Space.PIXEL, frame)
    assert px.box is not None
    assert px.box.xyxy == (0, 0, 20, 20)
    assert px.cells[0].box is not None
    assert px.cells[0].box.xyxy == (2, 2, 10, 10)
    assert px.cells[1].box is None


def test_json_round_trip(sales: Table) -> None:
    assert Table.model_validate_json(sales.model_dump_json()) == sales


# --------------------------------------------------------------------------- exports


def test_markdown_simple(simple: Table) -> None:
    assert simple.to_markdown() == "| Item | Price |\n| --- | --- |\n| Tea | 3.50 |\n| Cake | 4.00 |"


def test_markdown_merges_header_rows_and_escapes(sales: Table) -> None:
    assert sales.to_markdown() == (
        "| Item | 2023 Q1 | 2023 Q2 |\n"
        "| --- | --- | --- |\n"
        "| Tea & <b> | 1\\|2 |  |\n"
        '| Total | Total | a,"b" c |'
    )


def test_markdown_without_header_gets_an_empty_one() -> None:
    t = Table(cells=[cell(0, 0, "a"), cell(0, 1, "b")])
    assert t.to_markdown() == "|  |  |\n| --- | --- |\n| a | b |"
    assert Table().to_markdown() == ""


def test_html(sales: Table) -> None:
    assert sales.to_html() == (
        "<table>\n"
        "<caption>Sales &lt;2023&gt;</caption>\n"
        "<thead>\n"
        '<tr><th rowspan="2">Item</th><th colspan="2">2023</th></tr>\n'
        "<tr><th>Q1</th><th>Q2</th></tr>\n"
        "</thead>\n"
        "<tbody>\n"
        "<tr><td>Tea &amp; &lt;b&gt;</td><td>1|2</td><td></td></tr>\n"
        '<tr><td colspan="2">Total</td><td>a,&quot;b&quot;\nc</td></tr>\n'
        "</tbody>\n"
        "</table>"
    )


def test_html_without_header(simple: Table) -> None:
    body_only = Table(cells=[c.model_copy(update={"is_header": False}) for c in simple.cells])
    html = body_only.to_html()
    assert "<thead>" not in html
    assert html.startswith("<table>\n<tbody>\n<tr><td>Item</td><td>Price</td></tr>")


def test_csv(sales: Table) -> None:
    assert sales.to_csv() == 'Item,2023,2023\nItem,Q1,Q2\nTea & <b>,1|2,\nTotal,Total,"a,""b""\nc"\n'


def test_to_pandas_single_header(simple: Table) -> None:
    df = simple.to_pandas()
    assert list(df.columns) == ["Item", "Price"]
    assert df.values.tolist() == [["Tea", "3.50"], ["Cake", "4.00"]]


def test_to_pandas_multi_header(sales: Table) -> None:
    df = sales.to_pandas()
    assert isinstance(df.columns, pd.MultiIndex)
    assert list(df.columns) == [("Item", "Item"), ("2023", "Q1"), ("2023", "Q2")]
    assert df.values.tolist() == [["Tea & <b>", "1|2", ""], ["Total", "Total", 'a,"b"\nc']]


def test_to_pandas_without_header() -> None:
    df = Table(cells=[cell(0, 0, "a"), cell(0, 1, "b")]).to_pandas()
    assert list(df.columns) == [0, 1]
    assert df.values.tolist() == [["a", "b"]]


def test_from_pandas() -> None:
    df = pd.DataFrame({"name": ["Tea", None], "price": [3.5, float("nan")], "qty": [1, 2]})
    t = Table.from_pandas(df, caption="Order")
    assert t.shape == (3, 3)
    assert t.header_rows == 1
    assert t.caption == "Order"
    assert t.grid() == [["name", "price", "qty"], ["Tea", "3.5", "1"], ["", "", "2"]]


def test_from_pandas_with_index() -> None:
    df = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"], name="key"))
    t = Table.from_pandas(df, index=True)
    assert t.grid() == [["key", "v"], ["a", "1"], ["b", "2"]]
    assert t.header_rows == 1


def test_from_pandas_default_columns_give_no_header() -> None:
    t = Table.from_pandas(pd.DataFrame([[1, 2], [3, 4]]))
    assert t.header_rows == 0
    assert t.grid() == [["1", "2"], ["3", "4"]]


def test_pandas_round_trip_restores_spans(sales: Table, simple: Table) -> None:
    back = Table.from_pandas(sales.to_pandas(), caption=sales.caption)
    assert back.to_html() == sales.to_html().replace('<td colspan="2">Total</td>', "<td>Total</td><td>Total</td>")
    assert [c.model_dump() for c in back.cells[:4]] == [c.model_dump() for c in sales.cells[:4]]
    assert Table.from_pandas(simple.to_pandas()) == simple


def test_from_pandas_rejects_other_objects() -> None:
    with pytest.raises(UsageError, match="DataFrame"):
        Table.from_pandas([[1, 2]])  # type: ignore[arg-type]
