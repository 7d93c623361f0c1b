"""Reading a backend's raw answer back into a validated value: exactly, or leniently.

Local backends decode under the constraint, so their text must match its regex exactly
([`CompiledConstraint.parse`][docvlm.decoding.CompiledConstraint.parse]). Text formatted elsewhere (an
OpenAI-compatible server, a test's script) may carry a code fence, whitespace, keys out of order or a choice
wrapped as ``{"choice": ...}``: [`read_lenient`][docvlm.models._answers.read_lenient] accepts those and validates with
pydantic. Both raise [`ConstraintError`][docvlm.errors.ConstraintError] with a message a model can be told.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from docvlm.decoding import CompiledConstraint, OutputKind
from docvlm.errors import ConstraintError

__all__ = ["CHOICE_KEY", "read_lenient"]

#: The key of the object a CHOICE answer is wrapped in when a server is asked for it as JSON.
CHOICE_KEY = "choice"

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)


@functools.lru_cache(maxsize=256)
def _adapter(constraint: CompiledConstraint[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(constraint.output_type)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(exc: ValidationError) -> str:
    """A pydantic validation error in one line: the first five problems with their place."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def read_lenient(constraint: CompiledConstraint[Any], text: str) -> Any:
    """The validated value of an answer formatted outside docvlm's decoder.

    JSON: a code fence is removed and the rest validated by pydantic (whitespace and key order free). Choices:
    the bare text, its stripped form, or ``{"choice": ...}``. Text and regex outputs: the text or its stripped
    form must match.

    Raises:
        ConstraintError: what is wrong with the answer, phrased for the model to correct it.
    """
    kind = constraint.kind
    if kind is OutputKind.JSON:
        fenced = _FENCE.match(text)
        try:
            return _adapter(constraint).validate_json(fenced.group(1) if fenced else text)
        except ValidationError as exc:
            raise ConstraintError(describe(exc)) from exc
    candidates = [text, text.strip()]
    if kind is OutputKind.CHOICE:
        assert constraint.choices is not None
        try:
            wrapped = json.loads(text)
        except ValueError:
            wrapped = None
        if isinstance(wrapped, dict) and isinstance(wrapped.get(CHOICE_KEY), str):
            candidates.insert(0, wrapped[CHOICE_KEY])
        for candidate in candidates:
            if candidate in constraint.choices:
                return constraint.parse(candidate)
        options = ", ".join(json.dumps(c) for c in constraint.choices)
        raise ConstraintError(f"the answer must be exactly one of {options}; got {_shorten(text)!r}")
    for candidate in candidates:
        if constraint.matches(candidate):
            try:
                return constraint.parse(candidate)
            except ConstraintError as exc:
                raise ConstraintError(exc.message) from exc
    if kind is OutputKind.TEXT:
        raise ConstraintError(f"the answer must be at most {constraint.max_chars} characters; it has {len(text)}")
    raise ConstraintError(f"the answer must match the regular expression {constraint.regex}; got {_shorten(text)!r}")
