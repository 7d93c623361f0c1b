"""Sample documents generated on the fly (deterministic), for the demo, the docs and tests."""

from __future__ import annotations

from typing import Any

__all__ = ["INVOICE", "invoice_pdf"]

#: The ground truth of `invoice_pdf`.
INVOICE: dict[str, Any] = {
    "vendor": "Acme Tools GmbH",
    "invoice_number": "INV-2026-0042",
    "date": "2026-11-02",
    "customer": "Blue River Labs",
    "items": [
        {"description": "Torque wrench", "quantity": 2, "unit_price": "18.75", "amount": "37.50"},
        {"description": "Socket set, 40 pieces", "quantity": 1, "unit_price": "64.00", "amount": "64.00"},
        {"description": "Safety gloves", "quantity": 5, "unit_price": "4.20", "amount": "21.00"},
    ],
    "subtotal": "122.50",
    "tax": "23.28",
    "total": "145.78",
}


def invoice_pdf(rotation: int = 0) -> bytes:
    """A one-page invoice PDF (A4) with key-value fields and a ruled line-item table (see `INVOICE`)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    inv = INVOICE
    page.insert_text((56, 80), inv["vendor"], fontsize=20, fontname="hebo")
    page.insert_text((56, 100), "Werkstrasse 7, 10115 Berlin", fontsize=10)
    page.insert_text((400, 80), "INVOICE", fontsize=18, fontname="hebo")
    fields = [("Invoice number:", inv["invoice_number"]), ("Date:", inv["date"]), ("Bill to:", inv["customer"])]
    y = 150.0
    for key, value in fields:
        page.insert_text((56, y), key, fontsize=11, fontname="hebo")
        page.insert_text((170, y), value, fontsize=11)
        y += 18
    # ruled table: header + items
    cols = [56.0, 300.0, 370.0, 450.0, 539.0]
    headers = ["Description", "Qty", "Unit price", "Amount"]
    top, row_h = 240.0, 22.0
    rows = [headers] + [[it["description"], str(it["quantity"]), it["unit_price"], it["amount"]] for it in inv["items"]]
    for r, row in enumerate(rows):
        y0 = top + r * row_h
        for c, text in enumerate(row):
            font = "hebo" if r == 0 else "helv"
            page.insert_text((cols[c] + 5, y0 + 15), text, fontsize=10, fontname=font)
    bottom = top + len(rows) * row_h
    shape = page.new_shape()
    for r in range(len(rows) + 1):
        shape.draw_line((cols[0], top + r * row_h), (cols[-1], top + r * row_h))
    for x in cols:
        shape.draw_line((x, top), (x, bottom))
    shape.finish(color=(0, 0, 0), width=0.8)
    shape.commit()
    y = bottom + 30
    for key, value in (("Subtotal:", inv["subtotal"]), ("Tax (19%):", inv["tax"]), ("Total:", inv["total"])):
        page.insert_text((370, y), key, fontsize=11, fontname="hebo")
        page.insert_text((460, y), f"EUR {value}", fontsize=11)
        y += 18
    page.insert_text((56, 780), "Payment within 14 days. Thank you for your business.", fontsize=9)
    if rotation:
        page.set_rotation(rotation)
    doc.set_metadata({"title": f"Invoice {inv['invoice_number']}", "creator": "docvlm.samples"})
    data: bytes = doc.tobytes()
    doc.close()
    return data
