"""A stand-in model that answers a task's requests from the truth and records each one as a training example.

A task run with a [`Teacher`][docvlm.finetune._teacher.Teacher] instead of the model being trained sends exactly the requests it
would send that model (same prompts, same text near the candidates, same images, same output types: the teacher
reports the student's capabilities, limits and family profile), and the teacher answers each from the labelled
truth (an *oracle*). The answer is written as the text the request's constraint accepts and parsed back through
that constraint before it is kept, so a training target can never be something the task would reject. Because
the task goes on with the true answers, later requests (a table's rows after its grid) are the ones a model that
answered correctly would get.

Scoring requests ([`Model.score`][docvlm.models.base.Model.score], how text-only models choose among candidate
values) become examples whose completion is the true candidate; the teacher scores it 0 and the others far below,
so the task picks it and continues.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from docvlm.decoding import CompiledConstraint, OutputKind
from docvlm.errors import ConstraintError, DocVLMError
from docvlm.models.base import Model, Request
from docvlm.models.messages import Message

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.profiles import FamilyProfile
    from docvlm.types.geometry import Size

__all__ = ["NOT_ASKED", "NoTarget", "Recorded", "Teacher", "render"]

#: What the teacher scores every continuation but the true one (a log-probability no ranker score outweighs).
FAR_BELOW = -1.0e6
#: What a chooser returns for a scoring request the truth says nothing about (not a miss: e.g. a printed key that
#: is not in the labels).
NOT_ASKED = -1


class NoTarget(DocVLMError):
    """The truth has no answer this request allows (the true value is not among the offered candidates)."""


@dataclass
class Recorded:
    """One request the task made, and the answer the truth gives it."""

    messages: list[Message]
    completion: str
    scored: bool
    constraint: CompiledConstraint[Any] | None = None
    continuations: list[str] = field(default_factory=list)


def render(value: Any, constraint: CompiledConstraint[Any]) -> str:
    """The output text of ``value`` under ``constraint``: what a model decoding under it writes for that value.

    JSON kinds are written compactly (``{"a":1,"b":[2,3]}``, keys in field order, by alias), as docvlm's
    compiler lays out its regexes; choices are the choice's text; text and regex outputs are the text itself.

    Raises:
        ConstraintError: ``value`` is not a valid value of the output type, or its text does not match the
            constraint (then no model decoding under it could write it).
    """
    if constraint.kind is OutputKind.CHOICE:
        assert constraint.choices is not None
        for text in constraint.choices:
            if _same_choice(constraint.parse(text), value):
                return text
        raise ConstraintError(f"{value!r} is not one of the choices {list(constraint.choices)[:8]!r}")
    if constraint.kind is OutputKind.JSON:
        adapter: TypeAdapter[Any] = TypeAdapter(constraint.output_type)
        try:
            valid = adapter.validate_python(value)
        except ValidationError as exc:
            raise ConstraintError(f"not a valid {constraint.output_type!r}: {exc.errors()[0]['msg']}") from exc
        plain = adapter.dump_python(valid, mode="json", by_alias=True)
        text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if not constraint.matches(text):
        raise ConstraintError(f"the target {text[:80]!r} does not match the task's constraint")
    return text


def _same_choice(a: Any, b: Any) -> bool:
    return bool(a == b or getattr(a, "value", a) == getattr(b, "value", b))


Oracle = Callable[[list[Message], CompiledConstraint[Any]], Any]
Chooser = Callable[[list[Message], list[str]], int | None]


class Teacher(Model):
    """A model with the student's capabilities whose answers come from the truth (see the module docs).

    Args:
        student: the model the examples are for: its images / scoring support, limits, profile and input sizes
            shape the requests the task sends.
        oracle: ``(messages, constraint) -> value`` of the output type (or raw text), the true answer; raises
            [`NoTarget`][docvlm.finetune._teacher.NoTarget] when the truth has no allowed answer.
        chooser: ``(messages, continuations) -> index`` of the true continuation of a scoring request; ``None``
            when none is (a miss, listed in ``misses``) or ``NOT_ASKED`` when the truth says nothing about it;
            either way nothing is recorded and the continuations keep their order.

    Attributes:
        records: every answered request, in order.
        misses: the question (last line) of each scoring request whose candidates hold no true value.
    """

    def __init__(self, student: Model, oracle: Oracle, chooser: Chooser | None = None) -> None:
        self.student = student
        self.spec = student.spec
        self.supports_images = student.supports_images
        self.limits = student.limits
        self.oracle = oracle
        self.chooser = chooser
        self.records: list[Recorded] = []
        self.misses: list[str] = []  # the last line of each scoring request without a true continuation

    @property
    def supports_scoring(self) -> bool:
        return self.student.supports_scoring

    @property
    def profile(self) -> FamilyProfile:
        return self.student.profile

    def input_image_size(self, image: Image.Image) -> Size:
        return self.student.input_image_size(image)

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        out = []
        for r in requests:
            text = render(self.oracle(r.messages, r.constraint), r.constraint)
            r.constraint.parse(text)  # the target goes through the task's own parser (validators included)
            self.records.append(Recorded(r.messages, text, scored=False, constraint=r.constraint))
            out.append(text)
        return out

    def _score(self, messages: list[Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        index = self.chooser(messages, continuations) if self.chooser is not None else NOT_ASKED
        if index is None or index == NOT_ASKED:
            if index is None:
                self.misses.append(messages[-1].text.rsplit("\n", 1)[-1] if messages else "")
            return [FAR_BELOW * (i + 1) for i in range(len(continuations))]
        self.records.append(Recorded(messages, assistant_prefix + continuations[index], scored=True,
                                     continuations=[assistant_prefix + c for c in continuations]))
        return [0.0 if i == index else FAR_BELOW for i in range(len(continuations))]
