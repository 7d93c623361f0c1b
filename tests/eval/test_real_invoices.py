"""Real invoices as invoice2data ships its expected output (each invoice beside a JSON file of the same stem):
``dv.load_dataset(..., "invoice2data")``, ``docvlm eval`` on them, and bench.realdata's invoices set (the held-out
set has real invoices; realdev has none)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from bench import real_fields as rf
from docvlm.errors import DatasetError
from docvlm.eval.datasets import Invoice2DataFields, load_dataset

DEMO_TRUTH = {"issuer": "Acme Tools GmbH", "invoice_number": "INV-2026-0042", "date": "2026-11-02",
              "amount": 145.78, "currency": "EUR", "desc": "Invoice from Acme", "lines": []}


def _folder(tmp_path: Path, truth: object, name: str = "acme") -> Path:
    import docvlm as dv

    root = tmp_path / "invoices"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / f"{name}.pdf").write_bytes(dv.samples.invoice_pdf())
    (root / "sub" / f"{name}.json").write_text(json.dumps(truth))
    (root / "no-truth.pdf").write_bytes(dv.samples.invoice_pdf())  # no JSON beside it: not an invoice of the set
    return root


def test_the_loader_types_the_truth_and_leaves_out_the_other_keys(tmp_path: Path) -> None:
    root = _folder(tmp_path, [DEMO_TRUTH | {"amount": "1.234,50", "date": "02.11.2026"}])
    dataset = load_dataset(root, "invoice2data")
    [sample] = dataset.samples
    assert sample.id == "sub_acme" and sample.document.endswith("sub/acme.pdf") and dataset.skipped == []
    assert sample.truth() == {"issuer": "Acme Tools GmbH", "invoice_number": "INV-2026-0042", "date": "2026-11-02",
                              "amount": 1234.5, "currency": "EUR"}
    schema = sample.schema_type()  # every field given: all of Invoice2DataFields, with its types
    assert {n: f.annotation for n, f in schema.model_fields.items()} == \
        {n: f.annotation for n, f in Invoice2DataFields.model_fields.items()}
    assert rf.invoice_truth(sample)["date"] == dt.date(2026, 11, 2)


def test_unreadable_fields_and_records_are_reported_not_lost(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"amount": "about ten", "date": "someday", "issuer": "Acme"})
    (root / "broken.pdf").write_bytes(b"%PDF-1.4")
    (root / "broken.json").write_text("[{")
    dataset = load_dataset(root, "invoice2data")
    assert [s.truth() for s in dataset.samples] == [{"issuer": "Acme"}]
    reasons = {(Path(s.file).name, s.record): s.reason for s in dataset.skipped}
    assert set(reasons) == {("broken.json", "broken"), ("acme.json", "amount"), ("acme.json", "date")}
    assert "not valid JSON" in reasons["broken.json", "broken"]
    with pytest.raises(DatasetError, match=r"broken\.json, record broken: not valid JSON"):
        load_dataset(root, "invoice2data", strict=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no invoice"):
        load_dataset(tmp_path / "empty", "invoice2data")


def test_truth_values_are_normalised_or_reported(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"currency": " eur ", "issuer": ["a", "b"], "amount": "nan", "invoice_number": 42})
    (root / "sub" / "acme.pdf").rename(root / "sub" / "acme.PDF")  # capitals as some scanners write them
    dataset = load_dataset(root, "invoice2data")
    [sample] = dataset.samples
    assert sample.truth() == {"currency": "EUR", "invoice_number": "42"} and sample.whole_document
    assert {s.record for s in dataset.skipped} == {"issuer", "amount"}
    # only the fields the truth gives are asked for, typed as Invoice2DataFields types them
    assert list(sample.schema_type().model_fields) == ["invoice_number", "currency"]


def test_eval_scores_only_the_fields_the_truth_gives(tmp_path: Path) -> None:
    import docvlm as dv

    report = dv.evaluate(None, _folder(tmp_path, {"amount": 145.78, "date": "someday"}), "extract",
                         format="invoice2data")
    assert report.metrics["precision"] == 1.0 and report.metrics["fields_predicted"] == 1.0


def test_eval_reads_the_demo_invoice_right(tmp_path: Path) -> None:
    import docvlm as dv

    report = dv.evaluate(None, _folder(tmp_path, DEMO_TRUTH), "extract", format="invoice2data")
    assert report.metrics["f1"] == 1.0 and report.metrics["precision"] == 1.0


def test_hits_compare_by_type() -> None:
    assert rf.invoice_hit("amount", 145.78, 145.78) and not rf.invoice_hit("amount", 145.7, 145.78)
    assert rf.invoice_hit("date", dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    assert not rf.invoice_hit("date", dt.date(2026, 2, 11), dt.date(2026, 11, 2))
    assert rf.invoice_hit("issuer", "Acme  Tools gmbh", "ACME TOOLS GMBH") and not rf.invoice_hit("issuer", None, "A")


def test_the_bench_reads_real_invoices_field_by_field(tmp_path: Path) -> None:
    _folder(tmp_path, [DEMO_TRUTH])
    out = rf.invoices(tmp_path, None, "test")
    assert out["real"] is True and out["documents"] == 1
    layout = out["layout"]
    # every field of the demo invoice is read (the total, the number, the date typed, the currency as its code)
    assert layout["fields_scored"] == 5 and layout["fields"] == dict.fromkeys(rf.INVOICE_FIELDS, 1.0)


def test_a_wrong_truth_scores_zero(tmp_path: Path) -> None:
    _folder(tmp_path, {"amount": 999.99, "invoice_number": "NOPE"})
    out = rf.invoices(tmp_path, None, "test")
    assert out["layout"]["fields"] == {"invoice_number": 0.0, "amount": 0.0} and out["layout"]["exact"] == 0.0
