"""Fakes shipped for users' own tests: [`TestModel`][docvlm.models.test.TestModel] and [`FunctionModel`][docvlm.models.test.FunctionModel].

Both go through the same seam as real backends: they implement only the one request method (``_complete``,
raw answer texts) and [`Model`][docvlm.models.base.Model] counts, reads and validates their answers as it does a
server's (``validation="lenient"``: scripted JSON may be pretty-printed or fenced), so code under test runs
unchanged::

    model = TestModel(seed=1)
    boxes = model.generate("find the total", list[Box])   # valid list[Box], seeded
    model.last_request.messages                           # what the code under test asked
"""

from __future__ import annotations

import importlib
import json
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core

from docvlm.decoding import CompiledConstraint, OutputKind
from docvlm.errors import ConstraintError, DocVLMError, ModelError, UsageError
from docvlm.models._scoring import seeded_score
from docvlm.models.base import Completion, GenerationSettings, Model, Request
from docvlm.models.messages import Message

__all__ = ["FunctionInfo", "FunctionModel", "ScoreRequest", "TestModel", "sample_regex"]


@dataclass
class ScoreRequest:
    """One [`score`][docvlm.models.base.Model.score] call as a fake saw it."""

    messages: list[Message]
    continuations: list[str]
    assistant_prefix: str


def _prompt_text(messages: list[Message]) -> str:
    return "\n".join(f"{m.role}: {m.text}" for m in messages)

_ALPHABET = string.ascii_lowercase + string.digits + " "


def sample_regex(regex: str, rng: random.Random, *, extra_repeats: int = 2) -> str:
    """A random string that fully matches ``regex`` (literals, classes, groups, ``|`` and bounded repeats).

    Repeats are drawn between their minimum and ``extra_repeats`` more (capped at their maximum), so
    outputs stay small. Lookarounds and backreferences are not supported.
    """
    sre_parse: Any
    try:
        sre_parse = importlib.import_module("re._parser")  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        sre_parse = importlib.import_module("sre_parse")

    out: list[str] = []

    def chars_of(items: Any) -> list[str]:
        negate = False
        allowed: set[str] = set()
        for op, arg in items:
            name = str(op)
            if name == "NEGATE":
                negate = True
            elif name == "LITERAL":
                allowed.add(chr(arg))
            elif name == "RANGE":
                lo, hi = arg
                allowed.update(chr(c) for c in range(lo, min(hi, lo + 255) + 1))
            elif name == "CATEGORY":
                cat = str(arg)
                allowed.update(string.digits if "DIGIT" in cat else string.ascii_letters if "WORD" in cat else " ")
            else:
                raise ConstraintError(f"cannot sample regex class item {name}")
        if negate:
            return [c for c in _ALPHABET if c not in allowed]
        return sorted(allowed)

    def walk(items: Any) -> None:
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "NOT_LITERAL":
                out.append(rng.choice([c for c in _ALPHABET if c != chr(arg)]))
            elif name == "IN":
                out.append(rng.choice(chars_of(arg)))
            elif name == "ANY":
                out.append(rng.choice(_ALPHABET))
            elif name == "BRANCH":
                options = arg[1]
                # prefer alternatives that are not escape sequences, so sampled strings read as text
                plain = [o for o in options if not (o and str(o[0][0]) == "LITERAL" and o[0][1] == 92)]
                walk(rng.choice(plain or options))
            elif name == "SUBPATTERN":
                walk(arg[-1])
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                lo, hi, sub = arg
                hi = lo + extra_repeats if hi == sre_parse.MAXREPEAT else min(hi, lo + extra_repeats)
                for _ in range(rng.randint(lo, hi)):
                    walk(sub)
            elif name == "ATOMIC_GROUP":
                walk(arg)
            elif name in ("AT",):
                continue
            else:
                raise ConstraintError(f"cannot sample regex construct {name}")

    walk(sre_parse.parse(regex))
    return "".join(out)


class TestModel(Model):
    """A model that answers every request with valid data for its output type, without any weights.

    Args:
        seed: seeds the sampler; the same seed and requests give the same outputs.
        outputs: fixed answers, consumed in order before sampling starts: raw texts (parsed like a real
            model's output) or values (validated against the output type).
        supports_images: whether to accept image parts (default ``True``).
        extra_repeats: how far above their minimum list lengths and repeats may go (0: minimal data).
        scores: fixed scores for [`score`][docvlm.models.base.Model.score] by continuation text (log-probabilities, <= 0); every other
            continuation gets a deterministic pseudo-random score from the seed, the prompt and its own text.

    Attributes:
        requests: every request received, in order.
        last_request: the most recent request.
        score_requests: every [`score`][docvlm.models.base.Model.score] call received, in order.
    """

    __test__ = False  # not a pytest test class
    validation = "lenient"

    def __init__(self, seed: int = 0, outputs: Sequence[Any] | None = None, *, supports_images: bool = True,
                 extra_repeats: int = 2, scores: dict[str, float] | None = None) -> None:
        self.spec = "test"
        self.supports_images = supports_images
        self._seed = seed
        self._rng = random.Random(seed)
        self._outputs = list(outputs or [])
        self._extra = extra_repeats
        bad = {k: v for k, v in (scores or {}).items() if not (isinstance(v, (int, float)) and v <= 0)}
        if bad:
            raise UsageError(f"TestModel scores are log-probabilities (<= 0), got {bad!r}")
        self._scores = dict(scores or {})
        self.requests: list[Request] = []
        self.score_requests: list[ScoreRequest] = []

    @property
    def supports_scoring(self) -> bool:
        return True

    def _score(self, messages: list[Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        self.score_requests.append(ScoreRequest(messages, continuations, assistant_prefix))
        text = _prompt_text(messages) + "\x00" + assistant_prefix
        return [float(self._scores[c]) if c in self._scores else seeded_score(self._seed, text, c)
                for c in continuations]

    @property
    def last_request(self) -> Request | None:
        return self.requests[-1] if self.requests else None

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        self.requests.extend(requests)
        return [_scripted_text(self._outputs.pop(0), r.constraint) if self._outputs else self._sample(r.constraint)
                for r in requests]

    def _invalid_answer(self, request: Request, answer: Completion, error: ConstraintError, answers: int) -> DocVLMError:
        if answers > 1:
            return super()._invalid_answer(request, answer, error, answers)
        return _scripted_error(request, answer, error)

    def _sample(self, constraint: CompiledConstraint[Any]) -> str:
        for _ in range(50):
            text = sample_regex(constraint.regex, self._rng, extra_repeats=self._extra)
            try:
                constraint.parse(text)  # cross-field validators can still reject a sample
            except ConstraintError:
                continue
            return text
        raise ModelError(
            f"TestModel found no valid sample for {constraint.output_type!r} in 50 tries",
            hint="its validators reject most values the constraint allows; give TestModel(outputs=[...])",
        )


@dataclass
class FunctionInfo:
    """What a [`FunctionModel`][docvlm.models.test.FunctionModel]'s function learns about a call besides the messages."""

    output_type: Any
    constraint: CompiledConstraint[Any]
    settings: GenerationSettings
    call_index: int


class FunctionModel(Model):
    """A model whose answers come from a function: script multi-step conversations and tool calls in tests.

    The function gets ``(messages, info)`` and returns either a value of the output type (validated) or
    raw text (parsed like a real model's output: JSON for structured types).

    Args:
        function: ``(list[Message], FunctionInfo) -> value or str``.
        supports_images: whether to accept image parts (default ``True``).
        scorer: ``(list[Message], continuations, assistant_prefix) -> list of scores`` for [`score`][docvlm.models.base.Model.score]; without
            one the model does not support scoring.
    """

    validation = "lenient"

    def __init__(self, function: Callable[[list[Message], FunctionInfo], Any], *, supports_images: bool = True,
                 scorer: Callable[[list[Message], list[str], str], Sequence[float]] | None = None) -> None:
        self.spec = f"function:{getattr(function, '__name__', 'fn')}"
        self.function = function
        self.scorer = scorer
        self.supports_images = supports_images
        self.calls = 0
        self.requests: list[Request] = []
        self.score_requests: list[ScoreRequest] = []

    @property
    def supports_scoring(self) -> bool:
        return self.scorer is not None

    def _score(self, messages: list[Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        if self.scorer is None:
            raise self._cannot_score()
        self.score_requests.append(ScoreRequest(messages, continuations, assistant_prefix))
        return list(self.scorer(messages, continuations, assistant_prefix))

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        self.requests.extend(requests)
        texts = []
        for r in requests:
            info = FunctionInfo(r.constraint.output_type, r.constraint, r.settings, self.calls)
            self.calls += 1
            texts.append(_scripted_text(self.function(r.messages, info), r.constraint))
        return texts

    def _invalid_answer(self, request: Request, answer: Completion, error: ConstraintError, answers: int) -> DocVLMError:
        if answers > 1:
            return super()._invalid_answer(request, answer, error, answers)
        return _scripted_error(request, answer, error)


def _scripted_text(answer: Any, constraint: CompiledConstraint[Any]) -> str:
    """A scripted answer as the text a model would send: text as it is, values written as JSON (a choice as its bare
    text), so that they are read and validated like any backend's answer."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, bytes):
        return answer.decode()
    try:
        data = pydantic_core.to_json(answer, by_alias=True).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise ModelError(f"scripted answer is not a valid {constraint.output_type!r}: {exc}",
                         hint="fix the test's scripted output") from exc
    if constraint.kind is OutputKind.JSON:
        return data
    raw = json.loads(data)
    return raw if isinstance(raw, str) else data


def _scripted_error(request: Request, answer: Completion, error: ConstraintError) -> DocVLMError:
    """What a fake raises for a scripted answer that is not valid: a ModelError naming the type for JSON outputs,
    the constraint's own error for text, choices and patterns."""
    constraint = request.constraint
    if constraint.kind is OutputKind.JSON:
        return ModelError(f"scripted answer is not a valid {constraint.output_type!r}: {error.message}",
                          hint="fix the test's scripted output")
    try:
        constraint.parse(answer.text)
    except ConstraintError as strict:
        return strict
    return error
