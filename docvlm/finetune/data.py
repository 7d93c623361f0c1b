"""Training data from docvlm's own tasks: ``build_dataset(task, examples, model)``.

Each labelled example (a page and its truth) is run through the task itself with a stand-in model, the
[`Teacher`][docvlm.finetune._teacher.Teacher], that has the capabilities of ``model`` and answers every request the task
makes from the truth. What the task sent is the training prompt, exactly (the same text near the candidates, the
same page images, the same question); what the truth answers, written as the text the request's constraint
accepts and parsed back through it, is the completion. So the data cannot drift from what the task asks at
inference, for any model family.

============== ================================================ ============================================
task           labelled examples                                what is recorded
============== ================================================ ============================================
``extract``    [`FieldsSample`][docvlm.eval.datasets.FieldsSample] (SROIE, FUNSD, generated), or ``(page,
               instance)`` pairs of your own pydantic schema    text-only models that score: the field's
                                                                question and its true value among the
                                                                offered candidates; others: the JSON choice
``key_values`` [`FieldsSample`][docvlm.eval.datasets.FieldsSample] whose labels are printed keys (FUNSD) as ``extract`` (each key a field) for models
                                                                that score; others: the JSON of each key's
                                                                value (or null)
``ask``        [`QASample`][docvlm.eval.datasets.QASample] (DocVQA), or ``FieldsSample`` (one
               question per field)                              the printed answer (text-only: scored as
                                                                ``extract`` scores, or the choice), or the
                                                                answer and the ids of its segments (VLMs)
``ground``     [`FieldsSample`][docvlm.eval.datasets.FieldsSample] with boxes (each value is a phrase),
               [`DetectionSample`][docvlm.eval.datasets.DetectionSample] (each label is a phrase)    boxes in the family's own convention
``detect``     [`DetectionSample`][docvlm.eval.datasets.DetectionSample] (COCO)                   labelled boxes in the family's convention
``tables``     [`TableSample`][docvlm.eval.datasets.TableSample] (ICDAR-2013, PubTabNet, generated) the grid, then each row's cells
============== ================================================ ============================================

A labelled example whose truth the task cannot be answered with (the true value is not among the candidates
the ranker offers, a cell longer than the row constraint allows) gives no example for that request and is
listed in [`FineTuneDataset.skipped`][docvlm.finetune.data.FineTuneDataset] with the reason, never a wrong target.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from docvlm.decoding import CompiledConstraint, OutputKind
from docvlm.documents.base import Document, Page
from docvlm.errors import ConstraintError, UsageError
from docvlm.eval.datasets import (
    Dataset,
    DetectionSample,
    FieldsSample,
    QASample,
    Sample,
    SkippedRecord,
    TableSample,
)
from docvlm.finetune._teacher import NOT_ASKED, NoTarget, Recorded, Teacher
from docvlm.models.base import Model
from docvlm.models.messages import Message
from docvlm.types.geometry import BoundingBox, Space

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["TASKS", "FineTuneDataset", "TrainingExample", "build_dataset", "same_value"]

#: The tasks [`build_dataset`][docvlm.finetune.build_dataset] makes examples for.
TASKS = ("extract", "key_values", "ask", "ground", "detect", "tables")


@dataclass
class TrainingExample:
    """One request a task makes of a model, and the answer the truth gives it.

    Attributes:
        task: the task that made the request.
        source: the id of the labelled example it comes from.
        messages: the conversation the task sends (text and page images), exactly.
        completion: the model's answer: the text its constraint accepts (``scored``: the true candidate).
        scored: the task scores candidate answers ([`Model.score`][docvlm.models.base.Model.score]) instead of
            generating one; then ``continuations`` are the candidates it offered.
        constraint: the compiled constraint of a generated answer (``None`` when scored).
        continuations: the candidates a scoring request offered, the completion among them.
    """

    task: str
    source: str
    messages: list[Message]
    completion: str
    scored: bool = False
    constraint: CompiledConstraint[Any] | None = field(default=None, repr=False)
    continuations: list[str] = field(default_factory=list, repr=False)

    @property
    def prompt(self) -> str:
        """The text of the conversation (its images left out)."""
        return "\n".join(m.text for m in self.messages)

    @property
    def images(self) -> list[Image.Image]:
        return [img for m in self.messages for img in m.images]

    def check(self) -> Any:
        """Parse the completion back through the task's constraint and return the value (a scored completion
        must be one of the offered candidates).

        Raises:
            ConstraintError: the completion is not an answer the task accepts.
        """
        if self.scored:
            if self.completion not in self.continuations:
                raise ConstraintError(f"{self.completion!r} is not one of the candidates the task offered")
            return self.completion
        if self.constraint is None:
            raise ConstraintError("a generated example needs its constraint")
        return self.constraint.parse(self.completion)

    def to_trl(self) -> dict[str, Any]:
        """The example in TRL's conversational prompt-completion format (``{"prompt": [...], "completion": [...],
        "images": [...]}``), for training with TRL directly."""
        prompt = []
        for m in self.messages:
            parts = [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in m.content]
            prompt.append({"role": m.role, "content": parts if self.images else m.text})
        out: dict[str, Any] = {"prompt": prompt, "completion": [{"role": "assistant", "content": self.completion}]}
        if self.images:
            out["images"] = self.images
        return out


@dataclass
class FineTuneDataset:
    """Training examples built from labelled examples, and what was left out.

    Attributes:
        examples: the training examples, in the order the tasks made the requests.
        skipped: labelled examples (or requests of them) that gave no example, with the reason.
    """

    examples: list[TrainingExample] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[TrainingExample]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> TrainingExample:
        return self.examples[index]

    def __add__(self, other: FineTuneDataset) -> FineTuneDataset:
        return FineTuneDataset(self.examples + other.examples, self.skipped + other.skipped)

    def summary(self) -> dict[str, Any]:
        """Counts per task (scored and generated), mean prompt and completion length in characters."""
        out: dict[str, Any] = {"examples": len(self.examples), "skipped": len(self.skipped)}
        for ex in self.examples:
            key = f"{ex.task} ({'scored' if ex.scored else 'generated'})"
            out[key] = out.get(key, 0) + 1
        if self.examples:
            out["mean_prompt_chars"] = round(sum(len(e.prompt) for e in self.examples) / len(self.examples), 1)
            out["mean_completion_chars"] = round(sum(len(e.completion) for e in self.examples) / len(self.examples), 1)
        return out


# matching the truth ------------------------------------------------------------------------------------------
def _squash(text: Any) -> str:
    return re.sub(r"\s+", "", str(text)).lower()


_EDGE = re.compile(r"^[^\d\-+]+|[^\d]+$")


def same_value(text: str, truth: Any) -> bool:
    """Whether printed ``text`` spells the true value: numbers by value (a currency sign or code around them
    allowed), everything else as text without whitespace or case."""
    from docvlm.tasks.text import parse_number

    if isinstance(truth, (int, float)) and not isinstance(truth, bool):
        value = parse_number(_EDGE.sub("", text))
        return value is not None and abs(value - float(truth)) < 0.005
    return _squash(text) == _squash(truth) and bool(_squash(truth))


def _phrase(path: str) -> str:
    """A field path as extraction's question names it (``invoice_date`` -> ``invoice date``)."""
    return " ".join(path.replace("_", " ").replace(".", " ").lower().split())


def _literal_options(annotation: Any) -> list[Any]:
    """The options of ``Literal[...]`` or ``Literal[...] | None``."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [o for arg in get_args(annotation) if get_origin(arg) is Literal for o in get_args(arg)]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(value, list):  # line items come from tables, not from the model
        return {}
    return {prefix[:-1]: value}


def _tail(messages: list[Message]) -> str:
    """The last line of the prompt: the question (after any instructions)."""
    return messages[-1].text.rsplit("\n", 1)[-1] if messages else ""


def _asked(messages: list[Message]) -> str | None:
    """What extraction's field prompt asks for (``"invoice date (the date)"``), read with the prompt's own shape."""
    from docvlm.tasks.extract import field_prompt

    before, after = field_prompt("", "\x00").rsplit("\n", 1)[-1].split("\x00")
    line = _tail(messages)
    if line.startswith(before) and line.endswith(after) and len(line) > len(before) + len(after):
        return line[len(before):len(line) - len(after)]
    return None


# the tasks ---------------------------------------------------------------------------------------------------
Opener = Callable[[Sample], Page]
_LabelledPair = tuple[Page | Document, BaseModel]


def _open(sample: Sample) -> Page:
    return sample.open()[sample.page]


def _run_extract(student: Model, page: Page, truth: dict[str, Any], schema: type[BaseModel],
                 options: Mapping[str, Any]) -> Teacher:
    from docvlm.tasks.extract import FieldNotFoundError, extract

    def chooser(messages: list[Message], continuations: list[str]) -> int | None:
        # the field the question names ("What is the invoice date (...)?"), else the one field whose true value
        # is among the continuations
        asked = " ".join((_asked(messages) or "").lower().split())
        named = [p for p in truth if asked == _phrase(p) or asked.startswith(f"{_phrase(p)} (")]
        if named:
            want = truth[max(named, key=len)]
            return next((i for i, c in enumerate(continuations) if same_value(c, want)), None) \
                if want is not None else None
        fields = [p for p, v in truth.items() if v is not None and any(same_value(c, v) for c in continuations)]
        picks = {next(i for i, c in enumerate(continuations) if same_value(c, truth[p])) for p in fields}
        return picks.pop() if len(picks) == 1 else None

    def oracle(messages: list[Message], constraint: CompiledConstraint[Any]) -> Any:
        answer_model = constraint.output_type
        if not (isinstance(answer_model, type) and issubclass(answer_model, BaseModel)):
            raise NoTarget(f"extract asked for {answer_model!r}, not a choice of fields")
        by_alias = {p.replace(".", "_"): p for p in truth}
        out: dict[str, Any] = {}
        for name, info in answer_model.model_fields.items():
            path = by_alias.get(info.alias or name)
            want = truth.get(path) if path is not None else None
            options = _literal_options(info.annotation)
            if want is None:
                out[info.alias or name] = None
            elif isinstance(want, bool):
                out[info.alias or name] = want
            else:
                out[info.alias or name] = next((o for o in options if same_value(str(o), want)), None)
        return out

    teacher = Teacher(student, oracle, chooser)
    # a required field without a right candidate raises at the end: the requests made until then are still right
    with contextlib.suppress(FieldNotFoundError):
        extract(teacher, page, schema, **options)
    return teacher


def _key_truth(sample: FieldsSample) -> dict[str, str]:
    return {_squash(f.label).rstrip(":"): str(f.value) for f in sample.fields}


_LISTED_KEY = re.compile(r"^k(\d+): (.*)$", re.M)


def _run_key_values(student: Model, page: Page, links: dict[str, str], options: Mapping[str, Any]) -> Teacher:
    from docvlm.tasks.key_values import key_values

    def chooser(messages: list[Message], continuations: list[str]) -> int | None:  # a model that scores
        want = links.get(_squash(_asked(messages) or "").rstrip(":"))
        if want is None:
            return NOT_ASKED  # a printed key the labels do not have
        return next((i for i, c in enumerate(continuations) if same_value(c, want)), None)

    def oracle(messages: list[Message], constraint: CompiledConstraint[Any]) -> Any:
        keys = {int(n): text for n, text in _LISTED_KEY.findall(messages[-1].text)}
        answer_model = constraint.output_type
        out: dict[str, Any] = {}
        for name, info in answer_model.model_fields.items():
            key = keys.get(int(name[1:])) if name[1:].isdigit() else None
            want = links.get(_squash(key).rstrip(":")) if key is not None else None
            options = _literal_options(info.annotation)
            out[name] = next((o for o in options if same_value(str(o), want)), None) if want is not None else None
        return out

    teacher = Teacher(student, oracle, chooser)
    key_values(teacher, page, **options)
    return teacher


_TAGGED = re.compile(r"\[(\d+)\] (.*?)(?=   \[\d+\] |$)", re.M)


def _run_ask(student: Model, document: Document | Page, question: str, answers: Sequence[str],
             options: Mapping[str, Any]) -> Teacher:
    from docvlm.tasks.ask import ask

    def oracle(messages: list[Message], constraint: CompiledConstraint[Any]) -> Any:
        if constraint.kind is OutputKind.CHOICE:  # extractive: one of the printed spans
            assert constraint.choices is not None
            for text in constraint.choices:
                if any(same_value(text, a) for a in answers):
                    return text
            raise NoTarget("no offered span spells an accepted answer")
        answer_model = constraint.output_type
        if isinstance(answer_model, type) and issubclass(answer_model, BaseModel) and "sources" in answer_model.model_fields:
            segments = _TAGGED.findall(messages[-1].text)
            want = _squash(answers[0])
            ids = [i for i, text in segments if _squash(text) and (_squash(text) in want or want in _squash(text))]
            return {"answer": answers[0], "sources": ids[:3]}
        return answers[0]

    def chooser(messages: list[Message], continuations: list[str]) -> int | None:  # a model that scores
        return next((i for i, c in enumerate(continuations) if any(same_value(c, a) for a in answers)), None)

    teacher = Teacher(student, oracle, chooser)
    ask(teacher, document, question, **options)
    return teacher


def _box_target(teacher: Teacher, messages: list[Message], constraint: CompiledConstraint[Any],
                truth: Sequence[tuple[str, BoundingBox]]) -> Any:
    """The true boxes in the family's own output: JSON items with coordinates in its convention, or its native
    loc-token text."""
    from docvlm.models.profiles import BoxConvention

    images = [pi for m in messages for pi in m.page_images if pi is not None]
    if not images:
        raise NoTarget("the request has no page image to place boxes on")
    image = images[0]
    profile = teacher.profile
    input_size = teacher.input_image_size(image.image) if profile.box_convention is BoxConvention.INPUT_PIXELS \
        else None
    pixels = []
    for label, box in truth:
        px = box.to(Space.PIXEL, image.frame)
        clipped = BoundingBox(x0=max(0.0, px.x0), y0=max(0.0, px.y0), x1=min(image.size.width, px.x1),
                              y1=min(image.size.height, px.y1), space=Space.PIXEL, image_size=image.size)
        if clipped.x1 > clipped.x0 and clipped.y1 > clipped.y0:
            pixels.append((label, clipped))
    if constraint.kind is OutputKind.JSON:
        item_type = get_args(get_args(constraint.output_type)[0])[0] if get_args(constraint.output_type) else None
        labels = _literal_options(item_type.model_fields["label"].annotation) if item_type is not None else []
        key = profile.box_key
        return [{key: list(profile.encode_box(b, input_size=input_size)), "label": " ".join(lab.split())}
                for lab, b in pixels if " ".join(lab.split()) in labels]
    return profile.format_boxes(pixels, input_size=input_size) if pixels else ""


def _run_ground(student: Model, page: Page, phrase: str, boxes: Sequence[BoundingBox],
                options: Mapping[str, Any]) -> Teacher:
    from docvlm.tasks.text import page_words, segments_of
    from docvlm.tasks.vision import ground

    def oracle(messages: list[Message], constraint: CompiledConstraint[Any]) -> Any:
        answer_model = constraint.output_type
        if isinstance(answer_model, type) and issubclass(answer_model, BaseModel) and "ids" in answer_model.model_fields:
            # a text-only model chooses the text segments the phrase refers to
            segments = segments_of(page_words(page).rows, page.index)
            ids = [str(s.id) for s in segments
                   if any(b.x0 <= s.box.center[0] <= b.x1 and b.y0 <= s.box.center[1] <= b.y1 for b in boxes)]
            return {"ids": ids[:options.get("max_boxes", 8)]}
        return _box_target(teacher, messages, constraint, [(phrase, b) for b in boxes])

    teacher = Teacher(student, oracle)
    ground(teacher, page, phrase, **options)
    return teacher


def _run_detect(student: Model, page: Page, objects: Sequence[tuple[str, BoundingBox]],
                options: Mapping[str, Any]) -> Teacher:
    from docvlm.tasks.vision import detect

    def oracle(messages: list[Message], constraint: CompiledConstraint[Any]) -> Any:
        return _box_target(teacher, messages, constraint, objects)

    teacher = Teacher(student, oracle)
    detect(teacher, page, list(dict.fromkeys(label for label, _ in objects)), **options)
    return teacher


def _run_tables(student: Model, page: Page, sample: TableSample, options: Mapping[str, Any]) -> Teacher:
    from docvlm.models.test import FunctionInfo
    from docvlm.tasks.tables import extract_tables, table_answers

    answer = table_answers(sample.table)
    calls = [0]

    def oracle(messages: list[Message], constraint: CompiledConstraint[Any]) -> Any:
        calls[0] += 1
        from docvlm.models.base import GenerationSettings

        return answer(messages, FunctionInfo(constraint.output_type, constraint, GenerationSettings(), calls[0] - 1))

    teacher = Teacher(student, oracle)
    extract_tables(teacher, page, region=options.get("region", sample.region),
                   **{k: v for k, v in options.items() if k != "region"})
    return teacher


# the entry point ---------------------------------------------------------------------------------------------
def build_dataset(
    task: str,
    examples: Iterable[Sample | _LabelledPair] | Dataset,
    model: Model | str,
    *,
    open_page: Opener | None = None,
    schema: type[BaseModel] | Callable[[FieldsSample], type[BaseModel]] | None = None,
    **options: Any,
) -> FineTuneDataset:
    """Training examples for ``model`` on ``task``: what the task asks of ``model`` for each labelled example, and
    the answer the truth gives (see the module docs).

    Args:
        task: one of `TASKS`.
        examples: labelled examples: a loaded [`Dataset`][docvlm.eval.datasets.Dataset] or samples of the kinds
            the task takes (``load_dataset(path, "sroie")``, ``synthetic_dataset("invoice", 50)``), or for
            ``extract`` ``(page_or_document, instance)`` pairs of your own schema.
        model: the model to train (a [`Model`][docvlm.models.Model] or a spec): its family, whether it sees
            images and whether it scores shape the requests. Its weights are not used.
        open_page: how to open a sample's page (default: ``sample.open()[sample.page]``), e.g. with words you
            pass to ``dv.open(..., words=...)``.
        schema: ``extract``: the schema to fill (a class, or a function of the sample; default: the sample's
            own, [`FieldsSample.schema_type`][docvlm.eval.datasets.FieldsSample.schema_type]).
        options: passed to the task (``ranker=``, ``max_choices=``, ``max_boxes=``, ...), so the requests are
            those of the task as you will call it.

    Returns:
        The examples, each checked against its constraint, and the labelled examples that gave none, with why.

    Raises:
        UsageError: an unknown task, or examples the task cannot use.
    """
    if task not in TASKS:
        raise UsageError(f"unknown fine-tuning task {task!r}", hint="use one of " + ", ".join(TASKS))
    from docvlm.models import load_model

    student = load_model(model) if isinstance(model, str) else model
    opener = open_page or _open
    items = examples.samples if isinstance(examples, Dataset) else list(examples)
    out = FineTuneDataset()
    seen: set[tuple[str, str, str]] = set()
    for n, item in enumerate(items):
        source = getattr(item, "id", None) or f"example {n}"
        try:
            teachers = _teach(task, student, item, opener, schema, options)
        except NoTarget as exc:
            out.skipped.append(SkippedRecord(file=_document_of(item), record=source, reason=str(exc)))
            continue
        kept = 0
        for teacher in teachers:
            out.skipped += [SkippedRecord(file=_document_of(item), record=source,
                                          reason=f"the true value is not among the candidates offered: {miss}")
                            for miss in teacher.misses]
            for rec in teacher.records:
                key = (source, "\n".join(m.text for m in rec.messages), rec.completion)
                if key in seen:  # the same request made twice (key_values' second round)
                    continue
                seen.add(key)
                example = _example(task, source, rec)
                example.check()
                out.examples.append(example)
                kept += 1
        if not kept:
            out.skipped.append(SkippedRecord(file=_document_of(item), record=source,
                                             reason="no request of the task has an answer in the truth"))
    return out


def _document_of(item: Any) -> str:
    return str(getattr(item, "document", "") or "(page)")


def _example(task: str, source: str, rec: Recorded) -> TrainingExample:
    return TrainingExample(task=task, source=source, messages=rec.messages, completion=rec.completion,
                           scored=rec.scored, constraint=rec.constraint, continuations=rec.continuations)


def _teach(task: str, student: Model, item: Any, opener: Opener,
           schema: type[BaseModel] | Callable[[FieldsSample], type[BaseModel]] | None,
           options: Mapping[str, Any]) -> list[Teacher]:
    if task == "extract":
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], BaseModel):
            page_or_doc, instance = item
            page = page_or_doc if isinstance(page_or_doc, Page) else page_or_doc[0]
            return [_run_extract(student, page, _flatten(instance), type(instance), options)]
        sample = _want(item, FieldsSample, task)
        chosen = schema(sample) if callable(schema) and not isinstance(schema, type) else schema
        return [_run_extract(student, opener(sample), sample.truth(), chosen or sample.schema_type(), options)]
    if task == "key_values":
        sample = _want(item, FieldsSample, task)
        return [_run_key_values(student, opener(sample), _key_truth(sample), options)]
    if task == "ask":
        if isinstance(item, QASample):
            return [_run_ask(student, opener(item), item.question, item.answers, options)]
        sample = _want(item, FieldsSample, task)
        page = opener(sample)
        teachers = []
        for f in sample.fields:
            try:
                question = f"What is the {f.label.rstrip(': ').replace('_', ' ')}?"
                teachers.append(_run_ask(student, page, question, [str(f.value)], options))
            except NoTarget:
                continue
        return teachers
    if task == "ground":
        if isinstance(item, DetectionSample):
            page = opener(item)
            by_label: dict[str, list[BoundingBox]] = {}
            for d in item.objects:
                by_label.setdefault(d.label or "object", []).append(d.box)
            return [_run_ground(student, page, label, boxes, options) for label, boxes in by_label.items()]
        sample = _want(item, FieldsSample, task)
        page = opener(sample)
        return [_run_ground(student, page, str(f.value), [f.box], options)
                for f in sample.fields if f.box is not None and f.page == sample.page]
    if task == "detect":
        sample_d = _want(item, DetectionSample, task)
        objects = [(d.label or "object", d.box) for d in sample_d.objects]
        return [_run_detect(student, opener(sample_d), objects, options)] if objects else []
    sample_t = _want(item, TableSample, task)
    return [_run_tables(student, opener(sample_t), sample_t, options)]


def _want(item: Any, kind: type[Any], task: str) -> Any:
    if not isinstance(item, kind):
        raise UsageError(f"the {task!r} task takes {kind.__name__} examples, got {type(item).__name__}",
                         hint="load them with docvlm.eval.load_dataset(path, format)")
    return item


def save_jsonl(dataset: FineTuneDataset, path: str | Path) -> Path:
    """Write the text of each example (task, source, prompt, completion, scored) as JSON lines, for reading."""
    import json

    target = Path(path)
    with target.open("w", encoding="utf-8") as fh:
        for ex in dataset:
            fh.write(json.dumps({"task": ex.task, "source": ex.source, "prompt": ex.prompt,
                                 "completion": ex.completion, "scored": ex.scored,
                                 "images": len(ex.images)}, ensure_ascii=False) + "\n")
    return target
