"""build_dataset: the requests docvlm's tasks make, paired with the truth's answer, every target checked."""

from __future__ import annotations

import pymupdf
import pytest

import docvlm as dv
from docvlm.eval import FieldsSample, TableSample, TrueField, synthetic_dataset
from docvlm.finetune import TASKS, build_dataset, same_value
from docvlm.finetune._teacher import render
from docvlm.models import TestModel
from docvlm.synth import generate_invoice
from docvlm.tasks.extract import field_prompt
from docvlm.types import Detection, Detections


def text_only() -> TestModel:
    return TestModel(supports_images=False)  # scores: extraction chooses by scoring, as with the default model


def test_extract_examples_are_the_scoring_requests_with_the_true_value() -> None:
    data = synthetic_dataset("invoice", 2)
    dataset = build_dataset("extract", data, text_only())
    assert dataset.examples
    # a field whose true value the ranker does not offer among its choices is reported, not trained on: the shipped
    # ranker offers a date for invoice 0's due date, which it does not print (its truth: not printed)
    assert [(s.record, s.reason.split(": ", 1)[0]) for s in dataset.skipped] in (
        [], [("0", "the true value is not among the candidates offered")])
    truth = {s.id: s.truth() for s in data.samples}
    fields = 0
    for ex in dataset:
        assert ex.task == "extract" and ex.scored and ex.completion in ex.continuations
        assert ex.check() == ex.completion
        assert len(ex.messages) == 1 and ex.messages[0].role == "user"
        # the prompt is extraction's own field prompt: the text near the candidates, then the question
        text, question = ex.prompt.split("\n\nWhat is the ", 1)
        assert ex.prompt == field_prompt(text.removeprefix("Document:\n"), question.split("? Copy", 1)[0])
        assert ex.completion in text  # a value printed in the text the model reads
        matching = [name for name, value in truth[ex.source].items() if same_value(ex.completion, value)]
        assert matching, ex.completion  # the completion spells one of the document's true values
        fields += 1
    assert fields >= 12  # about 8 scored fields per invoice (those with more than one candidate)


def test_extract_for_a_vision_model_is_the_json_choice_and_parses_to_the_truth() -> None:
    sample = synthetic_dataset("invoice", 1).samples[0]
    dataset = build_dataset("extract", [sample], TestModel(supports_images=True))
    (ex,) = dataset.examples
    assert not ex.scored and len(ex.images) == 1 and ex.completion.startswith("{")
    answer = ex.check()  # parsed by the constraint extraction decodes under
    truth = sample.truth()
    assert answer.f0_vendor_name == truth["vendor_name"]
    assert same_value(answer.f9_total, truth["total"])


def test_your_own_schema_instances_are_examples_too() -> None:
    from pydantic import BaseModel

    class Bill(BaseModel):
        issuer: str
        amount_due: float

    synthetic = generate_invoice(5)
    truth = Bill(issuer=synthetic.fields["vendor_name"].text, amount_due=float(synthetic.fields["total"].value))
    dataset = build_dataset("extract", [(synthetic.open(), truth)], text_only())
    by_question = {ex.prompt.rsplit("What is the ", 1)[1].split("?")[0]: ex.completion for ex in dataset}
    assert by_question == {"issuer": "Blue River Hardware", "amount due": "2.733,45"} and not dataset.skipped
    # a true value that is not printed can never be offered: no example, and the dataset says why
    wrong = truth.model_copy(update={"issuer": "Nobody Printed GmbH"})
    missed = build_dataset("extract", [(synthetic.open(), wrong)], text_only())
    assert [ex.completion for ex in missed] == ["2.733,45"]
    assert [s.reason for s in missed.skipped] == [
        "the true value is not among the candidates offered: What is the issuer? Copy it exactly as printed in the "
        "document."]


def form_sample() -> FieldsSample:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for x, y, text in [(50, 120, "Name:"), (160, 120, "Maria Rossi"), (330, 120, "Member No.:"), (430, 120, "M-48213"),
                       (50, 150, "Date of birth:"), (160, 150, "04/11/1987"), (50, 180, "Phone:"),
                       (160, 180, "+39 06 5551 2034")]:
        page.insert_text((x, y), text, fontsize=11)
    fields = [TrueField(name="name", label="Name:", value="Maria Rossi"),
              TrueField(name="member", label="Member No.:", value="M-48213"),
              TrueField(name="dob", label="Date of birth:", value="04/11/1987")]
    return FieldsSample(id="form", document="form.pdf", content=doc.tobytes(), fields=fields)


def test_key_values_targets_give_each_printed_key_its_true_value() -> None:
    sample = form_sample()
    scored = build_dataset("key_values", [sample], text_only())  # each key asked as extraction asks a field
    answers = {ex.prompt.rsplit("What is the ", 1)[1].split("?")[0]: ex.check() for ex in scored}
    truth = {"Name": "Maria Rossi", "Member No.": "M-48213", "Date of birth": "04/11/1987"}
    assert len(answers) >= 2 and all(truth[key] == value for key, value in answers.items())
    assert not scored.skipped  # "Phone:" is printed but not labelled: not a miss
    dataset = build_dataset("key_values", [sample], TestModel(supports_images=True))  # one JSON answer
    assert len(dataset.examples) == 1
    ex = dataset.examples[0]
    answer = ex.check().model_dump()
    listing = dict(line.split(": ", 1) for line in ex.prompt.splitlines() if line[:1] == "k" and ": " in line)
    by_key = {listing[k]: v for k, v in answer.items()}
    assert by_key["Name:"] == "Maria Rossi" and by_key["Member No.:"] == "M-48213"
    assert by_key["Date of birth:"] == "04/11/1987"
    assert by_key.get("Phone:") is None  # not in the truth: taught as no value, never guessed


def test_ask_targets_are_printed_answers_and_unanswerable_questions_are_skipped() -> None:
    from docvlm.models import FunctionModel

    sample = form_sample()
    scored = build_dataset("ask", [sample], text_only())  # extractive, scored as extraction scores
    answers = {ex.prompt.rsplit("What is the ", 1)[1].split("?")[0]: ex.check() for ex in scored}
    truth = {"Name": "Maria Rossi", "Member No": "M-48213", "Date of birth": "04/11/1987"}  # as question_field reads
    assert len(answers) >= 2 and all(truth[key] == value for key, value in answers.items())
    chooser = FunctionModel(lambda m, i: None, supports_images=False)  # no scorer: a Literal choice
    chosen = build_dataset("ask", [sample], chooser)
    answers = {ex.prompt.split("Question: ", 1)[1].split("\n", 1)[0]: ex.check() for ex in chosen}
    assert answers["What is the Name?"] == "Maria Rossi" and answers["What is the Member No.?"] == "M-48213"
    qa = dv.eval.QASample(id="q", document="form.pdf", content=sample.content, question="Who signed?",
                          answers=["Nobody at all"])
    none = build_dataset("ask", [qa], chooser)
    assert not none.examples and none.skipped[0].reason.startswith("no offered span")


def test_tables_targets_are_the_grid_then_each_row() -> None:
    sample = next(s for s in synthetic_dataset("table", 1).samples if isinstance(s, TableSample))
    dataset = build_dataset("tables", [sample], TestModel(supports_images=True))
    grid = dataset.examples[0].check()
    assert (grid.n_rows, grid.n_cols) == (sample.table.n_rows, sample.table.n_cols)
    rows = [ex.check() for ex in dataset.examples[1:]]
    assert len(rows) == sample.table.n_rows
    first = [c.text for c in sample.table.cells if c.row == sample.table.header_rows]
    assert any(row == first for row in rows)


def test_ground_and_detect_targets_map_back_onto_the_true_boxes() -> None:
    from docvlm.tasks._page import model_box_to_page

    sample = synthetic_dataset("invoice", 1).samples[0]
    model = TestModel(supports_images=True)  # the generic profile: JSON boxes, normalized 0..1
    dataset = build_dataset("ground", [sample], model)
    truth = {str(f.value): f.box for f in sample.fields}
    checked = 0
    for ex in dataset:
        (item,) = ex.check()
        image = next(pi for pi in ex.messages[0].page_images if pi is not None)
        box = model_box_to_page(model, item.bbox, image)
        want = truth[item.label]
        assert box.iou(want) > 0.9, (item.label, box, want)
        checked += 1
    assert checked >= 8
    page = sample.open()[0]
    objects = Detections(detections=[Detection(label="total", box=sample.fields[-1].box)])
    det = dv.eval.DetectionSample(id="d", document="x.pdf", content=sample.content, objects=objects)
    (ex,) = build_dataset("detect", [det], model)
    (item,) = ex.check()
    assert item.label == "total" and page is not None


def test_a_target_the_constraint_refuses_is_an_error_not_an_example() -> None:
    from typing import Literal

    from docvlm.errors import ConstraintError

    constraint = TestModel().compile(Literal["12.50", "3.00"])
    assert render("3.00", constraint) == "3.00"
    with pytest.raises(ConstraintError, match="not one of the choices"):
        render("7.00", constraint)


def test_unknown_task_and_wrong_samples_are_usage_errors() -> None:
    assert TASKS == ("extract", "key_values", "ask", "ground", "detect", "tables")
    with pytest.raises(dv.UsageError, match="unknown fine-tuning task"):
        build_dataset("summarize", [], text_only())
    with pytest.raises(dv.UsageError, match="takes TableSample examples"):
        build_dataset("tables", synthetic_dataset("invoice", 1), text_only())


def test_options_reach_the_task_and_the_truth_still_finds_its_field() -> None:
    sample = synthetic_dataset("invoice", 1).samples[0]
    dataset = build_dataset("extract", [sample], text_only(), instructions="Amounts are printed with two decimals.",
                            max_choices=3)
    assert dataset.examples and all(len(ex.continuations) <= 3 for ex in dataset)
    truth = sample.truth()
    for ex in dataset:
        question = ex.prompt.rsplit("\n", 1)[1]
        assert ex.prompt.rsplit("\n", 2)[1] == "Amounts are printed with two decimals."
        name = next(n for n in truth if question.startswith(f"What is the {n.replace('_', ' ')} ("))
        assert same_value(ex.completion, truth[name])
