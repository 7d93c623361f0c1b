"""``dv.evaluate`` end to end with scripted models, whose metrics are known exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import docvlm as dv
from docvlm.errors import ModelError, UsageError
from docvlm.eval import load_dataset
from docvlm.eval.runner import svg_histogram
from docvlm.models import FunctionInfo
from tests.eval.conftest import Files


def last_text(messages: list[dv.Message]) -> str:
    content = messages[-1].content
    return str(content[-1] if isinstance(content, list) else content)


PRINTED = {"name": "John Smith", "date": "2024-03-01"}  # the form prints these; its "company" (Acme) is not printed


def oracle(messages: list[dv.Message], info: FunctionInfo) -> Any:
    """Answers extraction requests with the printed true values (extract's answer fields are aliased by path)."""
    fields = info.output_type.model_fields
    return {f.alias: PRINTED.get(f.alias or "") for f in fields.values()}


def test_extract_with_an_oracle_gives_exact_field_scores(eval_files: Files, tmp_path: Path) -> None:
    model = dv.FunctionModel(oracle, supports_images=False)
    report = dv.evaluate(model, eval_files.funsd, task="extract", format="funsd", out=tmp_path)
    m = report.metrics
    # 2 predicted, both right; 3 expected (Acme cannot be copied from the page)
    assert (m["fields_correct"], m["fields_predicted"], m["fields_expected"]) == (2, 2, 3)
    assert m["precision"] == 1.0 and m["recall"] == pytest.approx(2 / 3) and m["f1"] == pytest.approx(0.8)
    # the evidence boxes are the printed words, which is where the FUNSD boxes are
    assert m["evidence_f1"] == pytest.approx(0.8)
    (row,) = report.results
    assert row.prediction == {"name": "John Smith", "date": "2024-03-01", "company": None}
    assert row.ious == pytest.approx([1.0, 1.0], abs=1e-6)
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["f1"] == pytest.approx(0.8)
    assert report.files == {"results": str(tmp_path / "results.jsonl"), "metrics": str(tmp_path / "metrics.json"),
                            "report": str(tmp_path / "report.html")}


def test_qa_anls_and_exact_match(eval_files: Files) -> None:
    def answer(messages: list[dv.Message], info: FunctionInfo) -> str:
        text = last_text(messages)
        return "John Smith" if "Whose registration" in text else "2024-03-01"

    report = dv.evaluate(dv.FunctionModel(answer, supports_images=False), eval_files.docvqa, task="qa", format="docvqa")
    # question 1: exact (case-insensitive); question 2: "2024-03-01" vs "2024-03-02", NL 1/10 -> 0.9
    assert report.metrics["anls"] == pytest.approx(0.95)
    assert report.metrics["exact"] == 0.5
    assert [r.scores["anls"] for r in report.results] == pytest.approx([1.0, 0.9])
    assert len(report.skipped) == 2


def test_mcq_circular_eval(eval_files: Files) -> None:
    always_a = dv.FunctionModel(lambda messages, info: "A", supports_images=False)
    report = dv.evaluate(always_a, eval_files.mcq, task="mcq", format="mcq")
    # q1 (right answer first of 4): right only in the unrotated order; q2 (right answer second of 2): right only rotated
    assert report.metrics["circular"] == 0.0 and report.metrics["accuracy"] == 0.5
    assert [r.prediction["right"] for r in report.results] == [[True, False, False, False], [False, True]]

    answers = {"Whose form is it?": "John Smith", "What date?": "2024-03-01"}

    def knows(messages: list[dv.Message], info: FunctionInfo) -> str:
        text = last_text(messages)
        question = re.search(r"Question: (.*)\n", text)
        assert question is not None
        return next(m[1] for m in re.finditer(r"^([A-Z])\. (.*)$", text, re.M) if m[2] == answers[question[1]])

    report = dv.evaluate(dv.FunctionModel(knows, supports_images=False), eval_files.mcq, task="mcq", format="mcq")
    assert report.metrics["circular"] == 1.0 and report.metrics["accuracy"] == 1.0


def test_ground_runs_every_field_and_pools_boxes(eval_files: Files, tmp_path: Path) -> None:
    report = dv.evaluate("test", eval_files.funsd, task="ground", format="funsd", out=tmp_path)
    m = report.metrics
    assert m["objects"] == 3 and 0 <= m["map"] <= m["map50"] <= 1
    (row,) = report.results
    assert len(row.ious) == 3 and len(row.true_boxes) == 3
    assert m["accuracy50"] == sum(i >= 0.5 for i in row.ious) / 3


def test_a_failing_sample_is_recorded_and_scored_empty(eval_files: Files) -> None:
    def broken(messages: list[dv.Message], info: FunctionInfo) -> Any:
        raise ModelError("the server is down")

    report = dv.evaluate(dv.FunctionModel(broken, supports_images=False), eval_files.funsd, task="extract",
                         format="funsd")
    (row,) = report.results
    assert row.error is not None and "the server is down" in row.error
    assert report.n_failed == 1 and report.metrics["recall"] == 0.0 and report.metrics["fields_expected"] == 3


def test_usage_errors(eval_files: Files) -> None:
    with pytest.raises(UsageError, match="unknown evaluation task"):
        dv.evaluate(None, eval_files.icdar, task="classify", format="icdar2013")
    with pytest.raises(UsageError, match="needs its format"):
        dv.evaluate(None, eval_files.icdar, task="tables")
    with pytest.raises(UsageError, match="'ground' task needs a model"):
        dv.evaluate(None, eval_files.funsd, task="ground", format="funsd")
    with pytest.raises(UsageError, match="'mcq' task needs a model"):
        dv.evaluate(None, eval_files.mcq, task="mcq", format="mcq")
    with pytest.raises(UsageError, match="cannot use QASample"):
        dv.evaluate("test", load_dataset(eval_files.docvqa, "docvqa"), task="tables")


def test_limit_and_progress(eval_files: Files) -> None:
    calls: list[tuple[int, int]] = []
    report = dv.evaluate(None, eval_files.icdar, task="tables", format="icdar2013", limit=1,
                         progress=lambda done, total: calls.append((done, total)))
    assert len(report.results) == 1 and calls == [(1, 1)]


def test_svg_histogram_counts_values_into_bins() -> None:
    svg = svg_histogram([0.0, 0.05, 0.5, 1.0, 1.0], title="IoU <x>", bins=4)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "IoU &lt;x&gt;" in svg
    counts = [int(c) for c in re.findall(r": (\d+)</title>", svg)]
    assert counts == [2, 0, 1, 2]  # [0, .25) [.25, .5) [.5, .75) [.75, 1]
