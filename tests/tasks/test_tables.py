from __future__ import annotations

import pytest

import docvlm as dv
from docvlm.samples import INVOICE
from docvlm.tasks import find_tables


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_invoice_line_items(rotation: int) -> None:
    page = dv.open(dv.samples.invoice_pdf(rotation=rotation))[0]
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


def test_images_need_a_vision_model(files: dict[str, object]) -> None:
    page = dv.open(files["square.png"])[0]  # type: ignore[arg-type]
    with pytest.raises(dv.UsageError, match="this page is an image"):
        find_tables(page)
