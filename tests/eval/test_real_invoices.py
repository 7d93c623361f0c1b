"""bench.realdata's invoices set on a folder laid out as invoice2data ships its expected output: each PDF beside a
JSON file of the same stem (the held-out set has real invoices; realdev has none)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from bench import real_fields as rf


def _folder(tmp_path: Path, truth: object, name: str = "acme") -> Path:
    import docvlm as dv

    root = tmp_path / "invoices" / "sub"
    root.mkdir(parents=True)
    (root / f"{name}.pdf").write_bytes(dv.samples.invoice_pdf())
    (root / f"{name}.json").write_text(json.dumps(truth))
    (root / "no-truth.pdf").write_bytes(dv.samples.invoice_pdf())  # no JSON beside it: not an invoice of the set
    return tmp_path


def test_invoice2data_truth_is_read_as_typed_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"issuer": "Acme", "amount": "1.234,50", "date": "2026-11-02",
                                 "invoice_number": "7", "currency": "EUR", "desc": "ignored", "lines": []}]))
    assert rf.invoice_truth(path) == {"issuer": "Acme", "amount": 1234.5, "date": dt.date(2026, 11, 2),
                                      "invoice_number": "7", "currency": "EUR"}
    path.write_text(json.dumps({"amount": 12, "date": "02.11.2026", "issuer": " "}))  # an object, a day-first date
    assert rf.invoice_truth(path) == {"amount": 12.0, "date": dt.date(2026, 11, 2)}


def test_hits_compare_by_type() -> None:
    assert rf.invoice_hit("amount", 145.78, 145.78) and not rf.invoice_hit("amount", 145.7, 145.78)
    assert rf.invoice_hit("date", dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    assert not rf.invoice_hit("date", dt.date(2026, 2, 11), dt.date(2026, 11, 2))
    assert rf.invoice_hit("issuer", "Acme  Tools gmbh", "ACME TOOLS GMBH") and not rf.invoice_hit("issuer", None, "A")


def test_real_invoices_are_read_and_scored_field_by_field(tmp_path: Path) -> None:
    truth = {"issuer": "Acme Tools GmbH", "invoice_number": "INV-2026-0042", "date": "2026-11-02",
             "amount": 145.78, "currency": "EUR"}
    data = _folder(tmp_path, [truth])
    files = rf.invoice_files(data)
    assert [p.name for p, _ in files] == ["acme.pdf"]
    out = rf.invoices(data, None, "test")
    assert out["real"] is True and out["documents"] == 1
    layout = out["layout"]
    assert layout["fields_scored"] == 5
    # every field of the demo invoice is read (the total, the number, the date typed, the currency as its code)
    assert layout["fields"] == dict.fromkeys(rf.INVOICE_FIELDS, 1.0) and layout["exact"] == 1.0


def test_a_wrong_truth_scores_zero(tmp_path: Path) -> None:
    data = _folder(tmp_path, {"amount": 999.99, "invoice_number": "NOPE"})
    out = rf.invoices(data, None, "test")
    assert out["layout"]["fields"] == {"invoice_number": 0.0, "amount": 0.0} and out["layout"]["exact"] == 0.0
