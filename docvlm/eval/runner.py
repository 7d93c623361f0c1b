"""Run a task over a dataset and score it: ``dv.evaluate(model, dataset, task=...)`` and ``docvlm eval``.

==========  =====================================  =================================================================
task        samples                                per sample, then pooled over the dataset
==========  =====================================  =================================================================
``extract`` [`FieldsSample`][docvlm.eval.datasets.FieldsSample]     [`extract`][docvlm.tasks.extract] of the sample's schema; field precision,
                                                   recall and F1 on values, and again requiring evidence IoU >= 0.5
                                                   (micro-averaged over all fields)
``tables``  [`TableSample`][docvlm.eval.datasets.TableSample]      [`extract_tables`][docvlm.tasks.tables.extract_tables] in the truth region (``model`` may
                                                   be ``None``: the classical path); TEDS, TEDS-S (structure only),
                                                   the share of truth cells whose box a predicted cell hits (IoU
                                                   >= 0.5), averaged over tables. When the truth marks no header
                                                   cells (ICDAR 2013), the prediction's header rows are not scored.
                                                   ICDAR-2013 adjacency-relation precision, recall and F1, pooled
                                                   over the tables (``adjacency_*``)
``ground``  [`DetectionSample`][docvlm.eval.datasets.DetectionSample]  [`ground`][docvlm.tasks.vision.ground] each label (COCO) or each field's value
            or ``FieldsSample``                    (FUNSD, SROIE); COCO mAP@[.5:.95] and mAP@.5 (no scores: the
                                                   model's order), accuracy@0.5 and mean of the best IoU per truth
                                                   box, point accuracy of the first box's centre
``qa``      [`QASample`][docvlm.eval.datasets.QASample]         [`ask`][docvlm.tasks.ask]; ANLS and exact match
``mcq``     [`ChoiceSample`][docvlm.eval.datasets.ChoiceSample]     the model picks a letter under every rotation of the choices;
                                                   CircularEval accuracy and plain (first-rotation) accuracy
==========  =====================================  =================================================================

A sample whose task raises a docvlm error (say a page without words for a text-only model) is recorded with
the error and scored as an empty prediction, so failures lower the metrics instead of vanishing; any other
exception is a bug and propagates. With ``out``, three files are written: ``results.jsonl`` (one line per
sample: scores, prediction, truth, error, seconds), ``metrics.json`` (the pooled metrics and the run's
settings) and ``report.html`` (self-contained: metrics, histograms as inline SVG, and per-sample views with
the predicted and true boxes drawn on the page, as data URIs).
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from docvlm._deadline import check, deadline
from docvlm.documents.base import Page
from docvlm.errors import DocVLMError, TimeLimitError, UsageError
from docvlm.eval.datasets import (
    ChoiceSample,
    Dataset,
    DetectionSample,
    FieldsSample,
    QASample,
    Sample,
    SkippedRecord,
    TableSample,
    load_dataset,
)
from docvlm.eval.metrics import (
    AdjacencyScores,
    FieldScores,
    adjacency_scores,
    anls_score,
    box_iou_matrix,
    circular_variants,
    detection_map,
    field_scores,
    normalize_text,
    teds,
)
from docvlm.models.base import Model
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import BoundingBox, Point
from docvlm.types.table import Table

__all__ = ["TASKS", "EvalReport", "SampleResult", "evaluate", "svg_histogram"]

#: The tasks [`evaluate`][docvlm.eval.runner.evaluate] runs, and the sample kinds each accepts.
TASKS: dict[str, tuple[type[BaseModel], ...]] = {
    "extract": (FieldsSample,),
    "key_values": (FieldsSample,),
    "tables": (TableSample,),
    "ground": (DetectionSample, FieldsSample),
    "qa": (QASample,),
    "mcq": (ChoiceSample,),
}
_PRIMARY = {"extract": "f1", "key_values": "f1", "tables": "teds", "ground": "accuracy50", "qa": "anls", "mcq": "circular"}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class SampleResult(BaseModel):
    """What one sample gave.

    Attributes:
        id: the sample's id.
        document: its document.
        page: the 0-based page.
        scores: the sample's own scores (e.g. ``f1``, ``teds``, ``anls``).
        prediction: what the task answered, as JSON.
        truth: the truth, as JSON.
        predicted_boxes: page-space boxes of the prediction (evidence, cells, grounded boxes, citations).
        true_boxes: page-space boxes of the truth.
        ious: the IoUs behind the box scores (for the histogram).
        error: the docvlm error the task raised, if any.
        seconds: time the task took.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    document: str
    page: int = 0
    scores: dict[str, float] = Field(default_factory=dict)
    prediction: Any = None
    truth: Any = None
    predicted_boxes: list[BoundingBox] = Field(default_factory=list)
    true_boxes: list[BoundingBox] = Field(default_factory=list)
    ious: list[float] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    # pooled-metric inputs, kept out of results.jsonl
    fields: FieldScores | None = Field(default=None, exclude=True)
    fields_evidence: FieldScores | None = Field(default=None, exclude=True)
    adjacency: AdjacencyScores | None = Field(default=None, exclude=True)
    detections: tuple[Detections, Detections] | None = Field(default=None, exclude=True)
    rotations: list[bool] | None = Field(default=None, exclude=True)


class EvalReport(BaseModel):
    """The outcome of [`evaluate`][docvlm.eval.runner.evaluate].

    Attributes:
        task: the task run.
        format: the dataset's format.
        data: where the dataset came from.
        model: the model's spec (``"none"`` for the classical table path).
        metrics: the pooled metrics (see the module docs for each task's).
        results: one result per sample, in dataset order.
        skipped: the dataset records the loader left out.
        files: the files written, by name, when ``out`` was given.
    """

    task: str
    format: str
    data: str
    model: str
    metrics: dict[str, float] = Field(default_factory=dict)
    results: list[SampleResult] = Field(default_factory=list)
    skipped: list[SkippedRecord] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return sum(r.error is not None for r in self.results)

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` holds: the settings, the counts and the metrics."""
        return {"task": self.task, "format": self.format, "data": self.data, "model": self.model,
                "samples": len(self.results), "failed": self.n_failed, "skipped": len(self.skipped),
                "metrics": {k: (round(v, 6) if math.isfinite(v) else None) for k, v in self.metrics.items()},
                "seconds": round(sum(r.seconds for r in self.results), 3)}


# the tasks -------------------------------------------------------------------------------------------------
def _page(sample: Sample) -> Page:
    doc = sample.open()
    return doc[sample.page]


def _run_extract(model: Model | None, sample: FieldsSample) -> SampleResult:
    from docvlm.tasks.extract import FieldNotFoundError, extract

    target = sample.open() if sample.whole_document else _page(sample)
    values: dict[str, Any] = {}
    boxes: dict[str, BoundingBox | None] = {}
    error = None
    try:
        result = extract(model, target, sample.schema_type())
        values = result.value.model_dump(mode="json")
        pages = {f.name: f.page for f in sample.fields}
        # evidence on another page than the truth's cannot overlap it
        boxes = {p: e.box if e.page == pages.get(p, sample.page) else None for p, e in result.evidence.items()}
    except FieldNotFoundError as exc:  # some required fields are absent: the others were not returned either
        error = str(exc)
    truth = sample.truth()
    true_boxes = {f.name: f.box for f in sample.fields}
    plain = field_scores(values, truth, predicted_boxes=boxes, true_boxes=true_boxes)
    grounded = field_scores(values, truth, predicted_boxes=boxes, true_boxes=true_boxes, min_iou=0.5)
    return SampleResult(
        id=sample.id, document=sample.document, page=sample.page, error=error,
        scores={"precision": plain.precision, "recall": plain.recall, "f1": plain.f1, "evidence_f1": grounded.f1},
        prediction=values, truth=truth,
        predicted_boxes=[b for b in boxes.values() if b is not None],
        true_boxes=[f.box for f in sample.fields if f.box is not None],
        ious=[iou for _, iou in plain.ious], fields=plain, fields_evidence=grounded,
    )


def _squash(text: str) -> str:
    return "".join(text.split())


def _run_key_values(model: Model | None, sample: FieldsSample) -> SampleResult:
    """`docvlm.key_values` on the page; each true field is a key (its label) -> value link, and a predicted pair
    is right when both texts match the truth's without whitespace (FUNSD keeps its tokenizer's spaces)."""
    from docvlm.tasks.key_values import key_values

    pairs = [kv for kv in key_values(model, _page(sample)) if kv.value is not None]
    predicted = {(_squash(kv.key.quote), _squash(kv.value.quote)) for kv in pairs if kv.value is not None}
    truth = {(_squash(f.label), _squash(str(f.value))) for f in sample.fields}
    hit = len(predicted & truth)
    scores = FieldScores(expected=len(truth), predicted=len(predicted), correct=hit)
    return SampleResult(
        id=sample.id, document=sample.document, page=sample.page,
        scores={"precision": scores.precision, "recall": scores.recall, "f1": scores.f1},
        prediction=[{"key": kv.key.quote, "value": kv.value.quote} for kv in pairs if kv.value is not None],
        truth=[{"key": f.label, "value": f.value} for f in sample.fields],
        predicted_boxes=[kv.value.box for kv in pairs if kv.value is not None],
        true_boxes=[f.box for f in sample.fields if f.box is not None], fields=scores,
    )


def _best_table(found: Sequence[Table], truth: Table) -> Table | None:
    if not found:
        return None
    if truth.box is not None and all(t.box is not None for t in found):
        ious = box_iou_matrix([t.box for t in found if t.box is not None], [truth.box])[:, 0]
        return found[int(np.argmax(ious))]
    return found[0]


def _run_tables(model: Model | None, sample: TableSample) -> SampleResult:
    from docvlm.tasks.tables import extract_tables

    page = _page(sample)
    best = _best_table(extract_tables(model, page, region=sample.region), sample.table)
    truth = sample.table
    if best is not None and not any(c.is_header for c in truth.cells):
        # data without header annotations (ICDAR 2013): header-ness is not scored, as the truth cannot say it
        best = best.model_copy(update={"cells": [c.model_copy(update={"is_header": False}) for c in best.cells]})
    true_cells = [c.box for c in truth.cells if c.box is not None]
    pred_cells = [c.box for c in best.cells if c.box is not None] if best is not None else []
    ious = box_iou_matrix(true_cells, pred_cells).max(axis=1).tolist() if pred_cells else [0.0] * len(true_cells)
    scores = {
        "teds": teds(best, truth) if best is not None else 0.0,
        "teds_struct": teds(best, truth, structure_only=True) if best is not None else 0.0,
        "found": float(best is not None),
    }
    if true_cells:
        scores["cells_iou50"] = sum(i >= 0.5 for i in ious) / len(true_cells)
    adjacency = adjacency_scores([] if best is None else [best], truth)
    scores["adjacency_f1"] = adjacency.f1
    return SampleResult(
        id=sample.id, document=sample.document, page=sample.page, scores=scores, adjacency=adjacency,
        prediction=None if best is None else {"shape": list(best.shape), "html": best.to_html()},
        truth={"shape": list(truth.shape), "html": truth.to_html()},
        predicted_boxes=pred_cells, true_boxes=true_cells, ious=ious,
    )


def _run_ground(model: Model, sample: DetectionSample | FieldsSample) -> SampleResult:
    from docvlm.tasks.vision import ground

    page = _page(sample)
    if isinstance(sample, DetectionSample):
        truth = sample.objects
        queries = [(label, label, False) for label in dict.fromkeys(truth.labels)]
    else:
        truth = Detections(detections=[Detection(label=f.name, box=f.box) for f in sample.fields
                                       if f.box is not None and f.page == sample.page])
        queries = [(f.name, str(f.value), True) for f in sample.fields if f.box is not None and f.page == sample.page]
    predicted: list[Detection] = []
    for label, phrase, snap in queries:
        predicted += [Detection(label=label, box=b) for b in ground(model, page, phrase, snap=snap)]
    preds = Detections(detections=predicted)
    best: list[float] = []
    points: list[bool] = []
    for label in dict.fromkeys(truth.labels):
        ts = [d.box for d in truth if d.label == label]
        ps = [d.box for d in preds if d.label == label]
        matrix = box_iou_matrix(ts, ps)
        best += matrix.max(axis=1).tolist() if ps else [0.0] * len(ts)
        centre = Point(x=ps[0].center[0], y=ps[0].center[1]) if ps else None
        points += [centre is not None and centre.within(t) for t in ts]
    n = max(1, len(best))
    return SampleResult(
        id=sample.id, document=sample.document, page=sample.page,
        scores={"accuracy50": sum(i >= 0.5 for i in best) / n, "mean_iou": sum(best) / n,
                "point_accuracy": sum(points) / n},
        prediction=[{"label": d.label, "box": list(d.box.xyxy)} for d in preds],
        truth=[{"label": d.label, "box": list(d.box.xyxy)} for d in truth],
        predicted_boxes=[d.box for d in preds], true_boxes=[d.box for d in truth], ious=best,
        detections=(preds, truth),
    )


def _run_qa(model: Model | None, sample: QASample) -> SampleResult:
    from docvlm.tasks.ask import ask

    doc = sample.open()
    answer = ask(model, doc, sample.question, pages=[sample.page])
    gold = {normalize_text(a, ignore_case=True) for a in sample.answers}
    return SampleResult(
        id=sample.id, document=sample.document, page=sample.page,
        scores={"anls": anls_score(answer.text, sample.answers),
                "exact": float(normalize_text(answer.text, ignore_case=True) in gold)},
        prediction={"answer": answer.text, "citations": [c.model_dump(mode="json") for c in answer.citations]},
        truth={"question": sample.question, "answers": sample.answers},
        predicted_boxes=[c.box for c in answer.citations if c.page == sample.page],
    )


def _run_mcq(model: Model, sample: ChoiceSample) -> SampleResult:
    from docvlm.tasks import view
    from docvlm.tasks.text import read_text

    page = _page(sample)
    context: list[Any] = [view(page)] if model.supports_images else [f"Document:\n{read_text(page)}\n"]
    right: list[bool] = []
    chosen: list[str] = []
    for choices, answer in circular_variants(sample.choices, sample.answer):
        letters = _LETTERS[: len(choices)]
        options = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, choices, strict=True))
        prompt = [*context, f"Question: {sample.question}\n{options}\nAnswer with the letter of the right option."]
        letter = str(model.generate(prompt, Literal[tuple(letters)]))
        chosen.append(letter)
        right.append(letter == letters[answer])
    return SampleResult(
        id=sample.id, document=sample.document, page=sample.page,
        scores={"circular": float(all(right)), "accuracy": float(right[0])},
        prediction={"letters": chosen, "right": right},
        truth={"question": sample.question, "choices": sample.choices, "answer": sample.answer},
        rotations=right,
    )


def _failed(task: str, sample: Sample, exc: DocVLMError) -> SampleResult:
    """A sample whose task raised: scored as an empty prediction."""
    base = SampleResult(id=sample.id, document=sample.document, page=sample.page, error=str(exc))
    if isinstance(sample, FieldsSample) and task == "extract":
        truth = sample.truth()
        empty = field_scores({}, truth)
        return base.model_copy(update={"scores": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "evidence_f1": 0.0},
                                       "truth": truth, "fields": empty, "fields_evidence": empty})
    if isinstance(sample, TableSample):
        n = sum(c.box is not None for c in sample.table.cells)
        scores = {"teds": 0.0, "teds_struct": 0.0, "found": 0.0, **({"cells_iou50": 0.0} if n else {}),
                  "adjacency_f1": 0.0}
        return base.model_copy(update={"scores": scores, "ious": [0.0] * n,
                                       "adjacency": adjacency_scores([], sample.table)})
    if task == "ground" and isinstance(sample, DetectionSample | FieldsSample):
        truth_dets = sample.objects if isinstance(sample, DetectionSample) else Detections(detections=[
            Detection(label=f.name, box=f.box) for f in sample.fields if f.box is not None and f.page == sample.page])
        return base.model_copy(update={"scores": {"accuracy50": 0.0, "mean_iou": 0.0, "point_accuracy": 0.0},
                                       "detections": (Detections(), truth_dets), "ious": [0.0] * len(truth_dets)})
    if isinstance(sample, QASample):
        return base.model_copy(update={"scores": {"anls": 0.0, "exact": 0.0}})
    if isinstance(sample, ChoiceSample):
        return base.model_copy(update={"scores": {"circular": 0.0, "accuracy": 0.0}, "rotations": [False]})
    return base


def _run(task: str, model: Model | None, sample: Sample) -> SampleResult:
    if task == "tables":
        assert isinstance(sample, TableSample)
        return _run_tables(model, sample)
    if task == "extract":
        assert isinstance(sample, FieldsSample)
        return _run_extract(model, sample)
    if task == "key_values":
        assert isinstance(sample, FieldsSample)
        return _run_key_values(model, sample)
    if task == "qa" and model is None:
        assert isinstance(sample, QASample)
        return _run_qa(model, sample)
    assert model is not None
    if task == "ground":
        assert isinstance(sample, DetectionSample | FieldsSample)
        return _run_ground(model, sample)
    if task == "qa":
        assert isinstance(sample, QASample)
        return _run_qa(model, sample)
    assert isinstance(sample, ChoiceSample)
    return _run_mcq(model, sample)


# pooling ---------------------------------------------------------------------------------------------------
def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _pool(task: str, results: Sequence[SampleResult]) -> dict[str, float]:
    out: dict[str, float] = {}
    if task == "key_values":
        links = FieldScores.total(r.fields for r in results if r.fields is not None)
        out = {"precision": links.precision, "recall": links.recall, "f1": links.f1,
               "links_expected": float(links.expected), "links_predicted": float(links.predicted),
               "links_correct": float(links.correct)}
    elif task == "extract":
        plain = FieldScores.total(r.fields for r in results if r.fields is not None)
        grounded = FieldScores.total(r.fields_evidence for r in results if r.fields_evidence is not None)
        out = {"precision": plain.precision, "recall": plain.recall, "f1": plain.f1,
               "fields_expected": float(plain.expected), "fields_predicted": float(plain.predicted),
               "fields_correct": float(plain.correct)}
        if any(r.true_boxes for r in results):
            out |= {"evidence_precision": grounded.precision, "evidence_recall": grounded.recall,
                    "evidence_f1": grounded.f1}
    elif task == "tables":
        out = {"teds": _mean([r.scores["teds"] for r in results]),
               "teds_struct": _mean([r.scores["teds_struct"] for r in results]),
               "tables_found": _mean([r.scores["found"] for r in results])}
        cells = [i for r in results for i in r.ious]
        if cells:
            out["cells_iou50"] = sum(i >= 0.5 for i in cells) / len(cells)
        relations = sum((r.adjacency for r in results if r.adjacency is not None), AdjacencyScores())
        out |= {"adjacency_precision": relations.precision, "adjacency_recall": relations.recall,
                "adjacency_f1": relations.f1}
    elif task == "ground":
        pairs = [r.detections for r in results if r.detections is not None]
        scores = detection_map([p for p, _ in pairs], [t for _, t in pairs])
        ious = [i for r in results for i in r.ious]
        n_points = [r.scores.get("point_accuracy", 0.0) * len(r.ious) for r in results]
        out = {"map": scores.map, "map50": scores.map50, "accuracy50": sum(i >= 0.5 for i in ious) / max(1, len(ious)),
               "mean_iou": _mean(ious), "point_accuracy": sum(n_points) / max(1, len(ious)),
               "objects": float(len(ious))}
    elif task == "qa":
        out = {"anls": _mean([r.scores["anls"] for r in results]), "exact": _mean([r.scores["exact"] for r in results])}
    elif task == "mcq":
        out = {"circular": _mean([r.scores["circular"] for r in results]),
               "accuracy": _mean([r.scores["accuracy"] for r in results])}
    out["samples"] = float(len(results))
    return out


# the entry point -------------------------------------------------------------------------------------------
def evaluate(
    model: Model | str | None,
    dataset: Dataset | str | Path,
    task: str,
    *,
    format: str | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    views: int = 24,
    timeout: float | None = None,
) -> EvalReport:
    """Run ``task`` with ``model`` over ``dataset`` and score it (see the module docs for the tasks and metrics).

    Args:
        model: a model, a model spec (``"default"``, ``"test"``, ``"transformers:..."``), or ``None`` for docvlm's
            model-free paths: the classical tables, and the learned layout ranking for ``extract``, ``key_values``
            and ``qa`` (extractive answers).
        dataset: a loaded [`Dataset`][docvlm.eval.datasets.Dataset], or a path to load with ``format``.
        task: ``"extract"``, ``"key_values"``, ``"tables"``, ``"ground"``, ``"qa"`` or ``"mcq"``.
        format: the dataset format when ``dataset`` is a path (see [`load_dataset`][docvlm.eval.datasets.load_dataset]).
        limit: evaluate only the first ``limit`` samples.
        out: a folder for ``results.jsonl``, ``metrics.json`` and ``report.html`` (created if needed).
        progress: called as ``progress(done, total)`` after each sample.
        views: how many samples get a drawn page in ``report.html``.
        timeout: seconds for the whole evaluation (model calls included); past it the run stops with
            [`TimeLimitError`][docvlm.errors.TimeLimitError] and nothing is written.

    Raises:
        UsageError: an unknown task, a dataset whose samples the task cannot use, or no model for a task that
            needs one.
        DatasetError: the dataset cannot be loaded.
        TimeLimitError: ``timeout`` passed.

    >>> import docvlm as dv
    >>> report = dv.evaluate(None, "table:1", task="tables", format="synthetic")
    >>> sorted(report.metrics)
    ['adjacency_f1', 'adjacency_precision', 'adjacency_recall', 'cells_iou50', 'samples', 'tables_found', 'teds', 'teds_struct']
    """
    if task not in TASKS:
        raise UsageError(f"unknown evaluation task {task!r}", hint="use one of " + ", ".join(TASKS))
    if not isinstance(dataset, Dataset):
        if format is None:
            raise UsageError("a dataset path needs its format", hint="pass format='funsd', 'icdar2013', ...")
        dataset = load_dataset(dataset, format)
    dataset = dataset.head(limit)
    wrong = sorted({type(s).__name__ for s in dataset.samples if not isinstance(s, TASKS[task])})
    if wrong:
        raise UsageError(f"the {task!r} task cannot use {', '.join(wrong)} samples ({dataset.format} data)",
                         hint="tasks per format: " + "; ".join(f"{t}: {', '.join(c.__name__ for c in cs)}"
                                                                for t, cs in TASKS.items()))
    if isinstance(model, str):
        from docvlm.models import load_model

        model = load_model(model)
    if model is None and task not in ("tables", "extract", "key_values", "qa"):
        raise UsageError(f"the {task!r} task needs a model", hint="pass a model or a spec such as 'default'")
    results: list[SampleResult] = []
    total = len(dataset.samples)
    with deadline(timeout, "evaluate"):
        for i, sample in enumerate(dataset.samples):
            check(f"sample {sample.id}")
            started = time.perf_counter()
            try:
                result = _run(task, model, sample)
            except TimeLimitError:
                raise
            except DocVLMError as exc:
                result = _failed(task, sample, exc)
            results.append(result.model_copy(update={"seconds": time.perf_counter() - started}))
            if progress is not None:
                progress(i + 1, total)
    report = EvalReport(task=task, format=dataset.format, data=dataset.path,
                        model="none" if model is None else (model.spec or type(model).__name__),
                        metrics=_pool(task, results), results=results, skipped=list(dataset.skipped))
    if out is not None:
        report = _write(report, dataset, Path(out), views)
    return report


# the report ------------------------------------------------------------------------------------------------
def _write(report: EvalReport, dataset: Dataset, out: Path, views: int) -> EvalReport:
    try:
        out.mkdir(parents=True, exist_ok=True)
        results_path, metrics_path, html_path = out / "results.jsonl", out / "metrics.json", out / "report.html"
        with results_path.open("w", encoding="utf-8") as fh:
            for r in report.results:
                fh.write(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) + "\n")
        metrics_path.write_text(json.dumps(report.summary(), indent=2) + "\n", encoding="utf-8")
        html_path.write_text(_html(report, dataset, views), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out}: {exc}") from exc
    files = {"results": str(results_path), "metrics": str(metrics_path), "report": str(html_path)}
    return report.model_copy(update={"files": files})


def svg_histogram(values: Sequence[float], *, title: str, lo: float = 0.0, hi: float = 1.0, bins: int = 10,
                  width: int = 360, height: int = 190) -> str:
    """A small bar chart of ``values`` over ``[lo, hi]`` as an inline SVG element (no plotting library)."""
    counts = [0] * bins
    for v in values:
        if math.isfinite(v):
            k = min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))
            counts[k] += 1
    top = max(counts) or 1
    left, bottom, plot_w, plot_h = 34, height - 28, width - 44, height - 58
    bar_w = plot_w / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}" style="font:11px sans-serif">',
             f'<text x="{width / 2}" y="14" text-anchor="middle" font-weight="bold">{html.escape(title)} '
             f'(n={len(values)})</text>',
             f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#333"/>',
             f'<line x1="{left}" y1="{bottom}" x2="{left}" y2="{bottom - plot_h}" stroke="#333"/>',
             f'<text x="{left - 4}" y="{bottom - plot_h + 4}" text-anchor="end">{top}</text>',
             f'<text x="{left - 4}" y="{bottom + 4}" text-anchor="end">0</text>']
    for k, c in enumerate(counts):
        h = plot_h * c / top
        x = left + k * bar_w
        parts.append(f'<rect x="{x + 1:.1f}" y="{bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                     f'fill="#3c78d8"><title>{lo + (hi - lo) * k / bins:.2f}–{lo + (hi - lo) * (k + 1) / bins:.2f}: '
                     f'{c}</title></rect>')
    for k in range(0, bins + 1, max(1, bins // 5)):
        x = left + k * bar_w
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{lo + (hi - lo) * k / bins:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _view(sample: Sample, result: SampleResult) -> str:
    """The page with the predicted ('pred') and true ('true') boxes drawn, as an <img> with a PNG data URI."""
    from docvlm.draw import draw

    if not (result.predicted_boxes or result.true_boxes):
        return ""
    try:
        page = _page(sample)
        dpi = min(100.0, 760 / max(page.width, page.height) * page.units_per_inch)
        drawn = draw(page, Detections(detections=[*(Detection(label="pred", box=b) for b in result.predicted_boxes),
                                                  *(Detection(label="true", box=b) for b in result.true_boxes)]),
                     dpi=dpi)
    except DocVLMError as exc:
        return f"<p class='err'>cannot draw the page: {html.escape(str(exc))}</p>"
    data = base64.b64encode(drawn.to_png()).decode()
    return f"<img alt='page {sample.page} of {html.escape(sample.id)}' src='data:image/png;base64,{data}'>"


def _json(value: Any, limit: int = 1500) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=1, default=str)
    return html.escape(text if len(text) <= limit else text[:limit] + " …")


def _html(report: EvalReport, dataset: Dataset, views: int) -> str:
    primary = _PRIMARY[report.task]
    summary = report.summary()
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{'' if v is None else f'{v:.4g}'}</td></tr>"
                   for k, v in summary["metrics"].items())
    plots = [svg_histogram([r.scores.get(primary, 0.0) for r in report.results], title=f"per-sample {primary}")]
    ious = [i for r in report.results for i in r.ious]
    if ious:
        plots.append(svg_histogram(ious, title="box IoU"))
    skipped = "".join(f"<tr><td>{html.escape(s.file)}</td><td>{html.escape(str(s.record))}</td>"
                      f"<td>{html.escape(s.reason)}</td></tr>" for s in report.skipped)
    sections = []
    for sample, result in list(zip(dataset.samples, report.results, strict=True))[:views]:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in result.scores.items())
        error = f"<p class='err'>error: {html.escape(result.error)}</p>" if result.error else ""
        sections.append(
            f"<section><h3>{html.escape(result.id)} <small>{html.escape(result.document)}, page {result.page}"
            f"</small></h3><p>{html.escape(scores)} — {result.seconds:.2f} s</p>{error}<div class='row'>"
            f"{_view(sample, result)}<div><h4>prediction</h4><pre>{_json(result.prediction)}</pre><h4>truth</h4>"
            f"<pre>{_json(result.truth)}</pre></div></div></section>")
    more = len(report.results) - len(sections)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>docvlm eval: "
        f"{html.escape(report.task)}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}"
        ".row{display:flex;gap:1.5em;align-items:flex-start}img{border:1px solid #ccc;max-width:60%}"
        "td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;font-size:13px}"
        "pre{background:#f6f6f6;padding:.6em;font-size:12px;white-space:pre-wrap;max-width:600px}"
        ".err{color:#b00}.plots{display:flex;gap:2em}</style></head><body>"
        f"<h1>docvlm eval: {html.escape(report.task)}</h1><p>model <code>{html.escape(report.model)}</code> on "
        f"<code>{html.escape(report.data)}</code> ({html.escape(report.format)}): {summary['samples']} samples, "
        f"{summary['failed']} failed, {summary['skipped']} records skipped, {summary['seconds']:.1f} s.</p>"
        f"<h2>Metrics</h2><table>{rows}</table><h2>Distributions</h2><div class='plots'>{''.join(plots)}</div>"
        + (f"<h2>Skipped records</h2><table><tr><th>file</th><th>record</th><th>reason</th></tr>{skipped}</table>"
           if skipped else "")
        + "<h2>Samples</h2><p>Boxes labelled <b>pred</b> are the prediction, <b>true</b> the truth (page space "
        "drawn on the page).</p>" + "".join(sections)
        + (f"<p>… and {more} more samples in results.jsonl.</p>" if more > 0 else "") + "</body></html>"
    )
