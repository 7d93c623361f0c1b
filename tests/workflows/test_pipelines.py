"""Pipelines: fixed tool compositions checked against the synthetic generators' truth."""

from __future__ import annotations

import re
from typing import Any

import pytest

import docvlm as dv
from docvlm import synth
from docvlm.models import FunctionInfo, Message
from docvlm.synth.documents import _FORM_LABELS
from docvlm.workflows import PipelineResult, TracedToolbox, read_field, read_tables, toolbox

from .conftest import Bundle


def choose_segments(messages: list[Message], info: FunctionInfo) -> Any:
    """A text-only model answering docvlm's ground-on-text prompt: the first segment that starts with the phrase."""
    text = messages[-1].text
    match = re.search(r"Which segments contain: (.*)\?\n", text)
    assert match is not None, text
    phrase = match.group(1).lower()
    ids = [m.group(1) for m in re.finditer(r"\[(\w+)\] ([^\[\n]*)", text)
           if m.group(2).strip().lower().rstrip(":").startswith(phrase)]
    return {"ids": ids[:1]}


def test_read_tables_matches_the_generator(bundle: Bundle) -> None:
    result = read_tables(bundle.pdf, pages=[1])
    assert isinstance(result, PipelineResult)
    (table,) = result.value
    (truth,) = bundle.parts[1].tables
    assert table.to_markdown() == truth.to_markdown()
    assert table.box is not None and truth.box is not None and table.box.iou(truth.box) > 0.99
    assert [s.tool for s in result.trace.steps] == ["layout", "zoom", "extract_table"]
    layout_step, zoom_step, _ = result.trace.steps
    assert "table" in [r.label for r in layout_step.regions]
    assert zoom_step.images == ["crop-1"] and zoom_step.arguments["dpi"] == 144


@pytest.mark.parametrize("seed", [1, 3, 4, 7])  # inline, stacked and two-column layouts, labels ending in '#' or '.'
def test_read_field_reads_the_value_next_to_the_label(seed: int) -> None:
    form = synth.generate_form(seed)
    doc = form.open()
    text = doc[0].text()
    model = dv.FunctionModel(choose_segments, supports_images=False)
    for key in ("policy_number", "full_name", "amount"):
        label = next(lb for lb in sorted(_FORM_LABELS[key], key=len, reverse=True) if lb in text)
        result = read_field(doc, label, model=model)
        truth = form.fields[key]
        assert result.value is not None, (key, label)
        # an amount is printed with its currency; the truth's text is the number
        assert result.value.text == truth.text if key != "amount" else result.value.text.endswith(truth.text)
        if key != "amount":
            assert result.value.box.iou(truth.box) > 0.99
        assert result.trace.steps[0].tool == "ground" and result.trace.steps[-1].tool == "read_text"


def test_read_field_not_found_and_needs_a_model() -> None:
    doc = dv.open(dv.samples.invoice_pdf())
    result = read_field(doc, "Shipping method", model=dv.FunctionModel(lambda m, i: {"ids": []}, supports_images=False))
    assert result.value is None and [s.tool for s in result.trace.steps] == ["ground"]
    with pytest.raises(dv.UsageError, match="needs a model"):
        read_field(doc, "Total")


def test_a_user_pipeline_shares_the_trace() -> None:
    box = toolbox(dv.samples.invoice_pdf())
    assert isinstance(box, TracedToolbox)
    assert {"layout", "extract_table"} <= {t.name for t in box.tools()}
    first = box.call("read_text", {"page": 0}).text.split()[:2]
    tables = read_tables(box)  # continues the same trace
    assert first == ["Acme", "Tools"]
    assert [s.tool for s in tables.trace.steps][:2] == ["read_text", "layout"] and tables.trace is box.trace
    bad = box.call("extract_table", {"page": 0, "box": {"x0": 10, "y0": 10, "x1": 40, "y1": 30}})
    assert bad.is_error and bad.text.startswith("error: no table in [10, 10, 40, 30] on page 0")
