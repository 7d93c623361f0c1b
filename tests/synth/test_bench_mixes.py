"""The generated training sets `bench.synth_mix` ablates: each invoice variant holds its part of the variation fixed."""

from __future__ import annotations

import pytest

pytest.importorskip("bench.train_ranker")


def test_invoice_variants_hold_language_and_label_runs_fixed() -> None:
    from bench.train_ranker import INVOICE_VARIANTS, synth_examples
    from docvlm.synth import generate_invoice

    english = [generate_invoice(1000 + i, **INVOICE_VARIANTS["invoice-en"]) for i in range(12)]
    assert {d.language for d in english} == {"en"}
    # values in columns of their own: no printed line holds the invoice number after its label
    for d in english:
        number = d.fields["invoice_number"].text
        lines = [ln for ln in d.open()[0].text().splitlines() if number in ln]
        assert lines and all(ln.strip() == number for ln in lines), lines
    mixed = {generate_invoice(1000 + i, **INVOICE_VARIANTS["invoice-columns"]).language for i in range(40)}
    assert "en" in mixed and len(mixed) >= 4  # every language the generator prints, values still in columns
    examples = synth_examples("invoice-en", 2, seed=1000)
    assert [e.source for e in examples] == ["invoice-en"] * 2 and examples[0].fields


def test_weighted_counts_groups_whole_then_a_share() -> None:
    from bench.synth_mix import weighted

    groups = list(range(1000))
    assert weighted(groups, 1.0, 0) == groups
    assert weighted(groups, 2.0, 0) == groups + groups
    half = weighted(groups, 0.5, 0)
    assert 400 < len(half) < 600 and set(half) <= set(groups)
    assert weighted(groups, 0.0, 0) == []
