"""Compile an output type (pydantic model, list, literal, ...) into a regular expression with a length bound."""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib
import json
import re
import threading
import types
import typing
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar, overload

import annotated_types as at
from pydantic import BaseModel, RootModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from docvlm.errors import ConstraintError

from . import _regex as rx
from ._budget import check_budget
from ._formats import FORMAT_PATTERNS, FORMAT_TYPES
from ._regex import Pattern
from ._userregex import translate_user_regex

__all__ = ["CompiledConstraint", "Limits", "OutputKind", "Regex", "compile_output_type"]

T = TypeVar("T")

#: One character of a JSON string body: anything but ``"``, ``\\`` and control characters
#: (C0 and C1), or one of the short escapes ``\\" \\\\ \\/ \\b \\f \\n \\r \\t``. No ``\\uXXXX``.
STRING_CHAR = Pattern(r'(?:[^"\\\x00-\x1f\x7f-\x9f]|\\["\\/bfnrt])', 2, 4, atomic=True, free_chars=1)
#: `STRING_CHAR` without the ``\\"`` escape, for a counted string at the very start of the output.
#: outlines-core's automaton tracks every ``"`` that could start a new match, and with ``\\"`` allowed
#: inside a counted ``"(?:...){0,n}"`` that grows exponentially (``n=16``: 10 s; ``n=20``: 3 minutes).
_STRING_CHAR_NO_QUOTE = Pattern(r'(?:[^"\\\x00-\x1f\x7f-\x9f]|\\[\\/bfnrt])', 2, 4, atomic=True, free_chars=1)
#: The longest counted string allowed to keep ``\\"`` at the start of the output (about 0.1 s to index).
_TOP_STRING_QUOTE_MAX = 8
_QUOTE = rx.literal('"')


@dataclass(frozen=True)
class Limits:
    """Defaults for the sizes an output type leaves open, and the guard on index size.

    There are two kinds of bound:

    * **explicit** bounds, written in the type (``Field(max_length=...)``, ``annotated_types.MaxLen``,
      ``conlist``, ``le`` / ``ge``, ``Literal``, ...), are exact: they are part of the regex, so no
      output can break them;
    * **budgeted** sizes, for a ``str`` or ``list`` / variadic ``tuple`` with no ``max_length``,
      are not part of the regex (``"(?:char)*"``, ``[item(?:,item)*]``), because a counted repeat
      costs one copy of its automaton states per count: ``max_string_chars`` / ``max_list_items``
      are only counted into `CompiledConstraint.max_chars` / ``max_bytes`` /
      ``max_new_tokens``. Typical outputs fit; an output that runs on (a model repeating itself
      inside a string) is cut at ``max_new_tokens`` and [`CompiledConstraint.parse`][docvlm.decoding.CompiledConstraint.parse] raises
      [`ConstraintError`][docvlm.errors.ConstraintError] saying so.

    Numbers are always exact: an ``int`` / ``float`` with an open side gets the digit limits below,
    in the regex (digits cost few automaton transitions).

    Attributes:
        max_string_chars: the budget of characters for each JSON string without ``max_length``
            (default 256).
        max_list_items: the budget of items for each list / variadic tuple without ``max_length``
            (default 64).
        max_int_digits: digits of an ``int`` without a bound on that side (default 18, so
            ``|x| < 10**18``).
        max_float_int_digits: digits before the point of a ``float`` without a bound on that
            side (default 15).
        float_decimals: digits after the point of every ``float`` (default 4). Floats are written
            ``123`` or ``123.4567``: never an exponent, never more decimals than this.
        max_text_chars: characters of free text for a top-level ``str`` output (default 2048).
        max_pattern_repeats: repetitions an unbounded repeat (``+``, ``*``) in a user pattern may
            make (default 256).
        max_free_chars: a guard on explicit bounds: the most free-text character positions
            (characters of strings with ``max_length``, counted through list lengths; character
            classes of patterns) a JSON or regex constraint may have (default 512). Each is a copy
            of the automaton states in which nearly the whole vocabulary is allowed: on a 49k-token
            vocabulary about 30 ms of index build, 0.4 MB of index and 7 MB of peak memory (512
            took 16 s and 3.9 GB). Budgeted strings count once however long they may run. Over
            the guard, compiling raises [`ConstraintError`][docvlm.errors.ConstraintError]. Top-level free
            text (``str``) is exempt: it needs no token index.
        max_states: a guard on the automaton's size (`Pattern.states`: the regex with every
            counted repeat written out; default 200,000, ten times docvlm's own largest constraint, an
            agent's tool-call union). A list of lists of ... with ``max_length=2`` doubles it at every
            level; compiling stops as soon as it is over the guard, before the regex is written out.
        max_depth: the most nested levels (fields, list items) a JSON output may have (default 32).
    """

    max_string_chars: int = 256
    max_list_items: int = 64
    max_int_digits: int = 18
    max_float_int_digits: int = 15
    float_decimals: int = 4
    max_text_chars: int = 2048
    max_pattern_repeats: int = 256
    max_free_chars: int = 512
    max_states: int = 200_000
    max_depth: int = 32

    def __post_init__(self) -> None:
        for name in (
            "max_string_chars",
            "max_list_items",
            "max_int_digits",
            "max_float_int_digits",
            "max_text_chars",
            "max_pattern_repeats",
            "max_free_chars",
            "max_states",
            "max_depth",
        ):
            if getattr(self, name) < 1:
                raise ConstraintError(f"Limits.{name} must be at least 1")
        if self.float_decimals < 0:
            raise ConstraintError("Limits.float_decimals must be at least 0")


@dataclass(frozen=True)
class Regex:
    """A top-level output type: text matching a regular expression (not JSON).

    The pattern uses Python syntax restricted to literals, ``[...]`` classes, groups, ``|`` and
    repeats; ``*`` / ``+`` are capped at ``Limits.max_pattern_repeats``. Parsing returns the text.

    Attributes:
        pattern: the regular expression the whole output must match.
    """

    pattern: str


class OutputKind(str, enum.Enum):
    """How a constrained output is written and read back.

    Attributes:
        JSON: compact JSON validated by pydantic (models, lists, numbers, unions, ...).
        CHOICE: exactly one of a few strings, unquoted (top-level ``Literal`` / ``Enum``).
        TEXT: free text (top-level ``str``), bounded in length.
        REGEX: text matching a [`Regex`][docvlm.decoding.Regex] (or a top-level ``str`` with a ``pattern``).
    """

    JSON = "json"
    CHOICE = "choice"
    TEXT = "text"
    REGEX = "regex"


@dataclass(frozen=True, eq=False)
class CompiledConstraint(Generic[T]):
    """An output type compiled to a regular expression with a known length bound.

    Every string that fully matches `regex` parses to a valid value of
    `output_type` with [`parse`][docvlm.decoding.CompiledConstraint.parse] (for JSON kinds: pydantic validation succeeds), with
    two documented exceptions that no regex can express: cross-field rules (``x0 <= x1``,
    model validators) and custom validator functions. Those are checked by [`parse`][docvlm.decoding.CompiledConstraint.parse].

    Attributes:
        output_type: the type it was compiled from.
        regex: the regular expression (Python / Rust / outlines-core compatible, unanchored
            syntax, meant to match the whole output).
        kind: how the output is written: JSON, a bare choice, free text or a user regex.
        max_chars: when `exact`, the most characters any match can have; otherwise a
            budget: the most characters a match has while every string / list without
            ``max_length`` stays within its [`Limits`][docvlm.decoding.Limits] default (see `budgeted`).
        max_bytes: the same in UTF-8 bytes.
        free_chars: free-text character positions in the regex: a measure of how big and slow
            its token index is (see `Limits.max_free_chars`).
        json_schema: pydantic's JSON schema of the type for server backends' ``response_format``
            (JSON kind only, else ``None``).
        choices: the exact strings a CHOICE output can be (else ``None``).
        limits: the defaults used for open bounds.
        exact: whether every size bound is in the regex, so that no match is longer than
            `max_chars` and ``max_new_tokens`` can never cut a valid output short. ``False``
            when the type has a ``str`` or ``list`` without ``max_length``: those sizes are a
            budget, not a bound.
        budgeted: where the type left a size open, with the budget counted for it, e.g.
            ``("output.vendor (str, 256 chars)", "output.items (list, 64 items)")``; empty when
            `exact`.
    """

    output_type: Any
    regex: str
    kind: OutputKind
    max_chars: int
    max_bytes: int
    free_chars: int
    json_schema: dict[str, Any] | None
    choices: tuple[str, ...] | None
    limits: Limits
    exact: bool = True
    budgeted: tuple[str, ...] = ()
    _values: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """A stable cache key: the hex sha256 of `regex`."""
        return _sha256(self.regex)

    @property
    def max_new_tokens(self) -> int:
        """The ``max_new_tokens`` to generate with: ``max_bytes + 1`` (for EOS).

        When `exact`, it can never cut a match short, for any tokenizer whose tokens each
        decode to at least one byte (byte-level BPE and SentencePiece byte fallback both can split
        one character into several tokens, so `max_chars` alone is not enough). Otherwise it
        is the budget: outputs whose open strings and lists stay within their defaults fit, and a
        runaway output is cut here (and [`parse`][docvlm.decoding.CompiledConstraint.parse] says so).
        """
        return self.max_bytes + 1

    @property
    def free_text(self) -> bool:
        """Whether the constraint is only a length bound (plain top-level ``str``): no token mask needed."""
        return self.kind is OutputKind.TEXT

    @functools.cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)

    @functools.cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.output_type)

    def matches(self, text: str) -> bool:
        """Whether ``text`` fully matches `regex`."""
        return self._compiled.fullmatch(text) is not None

    def is_prefix(self, text: str) -> bool | None:
        """Whether ``text`` is the start of some match (a cut-off output), or ``None`` if unknown.

        Needs the ``regex`` package (a dependency of transformers); ``None`` without it.
        """
        try:
            engine: Any = importlib.import_module("regex")
        except ImportError:  # pragma: no cover - transformers installs it
            return None
        try:
            return engine.fullmatch(self.regex, text, partial=True) is not None
        except Exception:  # pragma: no cover - a pattern the regex package reads differently
            return None

    def parse(self, text: str) -> T:
        """Turn a constrained model output back into a validated value.

        JSON: the validated object (model instance, list, int, ...). CHOICE: the ``Literal`` value
        or ``Enum`` member. TEXT / REGEX: the text itself (validated against the ``str``
        constraints when it came from an annotated ``str``). Never a partial value.

        Args:
            text: the decoded model output, without special tokens.

        Returns:
            The value.

        Raises:
            ConstraintError: if ``text`` does not fully match the regex (typically cut off by
                ``max_new_tokens`` before EOS: the message says so, and for a budgeted
                constraint names the open sizes and the [`Limits`][docvlm.decoding.Limits] to raise), or fails
                validation rules a regex cannot express.
        """
        if not self.matches(text):
            raise self._mismatch(text)
        try:
            if self.kind is OutputKind.JSON:
                return typing.cast(T, self._adapter.validate_json(text))
            if self.kind is OutputKind.CHOICE:
                assert self._values is not None
                return typing.cast(T, self._values[text])
            if isinstance(self.output_type, Regex):
                return typing.cast(T, text)
            return typing.cast(T, self._adapter.validate_python(text))
        except ValidationError as exc:
            raise ConstraintError(
                f"output matches the constraint but fails validation: {exc.errors()[0]['msg']}",
                hint="cross-field rules and custom validators cannot be enforced while decoding",
            ) from exc

    def _mismatch(self, text: str) -> ConstraintError:
        shown = text if len(text) <= 80 else text[:60] + "..." + text[-17:]
        n_bytes = len(text.encode())
        size = f"{len(text)} chars, {n_bytes} bytes"
        prefix = self.is_prefix(text)
        if prefix is False:
            return ConstraintError(
                f"output does not match the constraint ({size}): {shown!r}",
                hint="it was not generated under this constraint, or another logits processor overrode the mask",
            )
        cut = "was cut off" if prefix else "was probably cut off"
        if self.exact or n_bytes <= self.max_bytes:
            # a budgeted output shorter than max_bytes was cut by a smaller max_new_tokens, not by the budget
            return ConstraintError(
                f"output does not match the constraint: it {cut} before it was complete ({size}): {shown!r}",
                hint=f"generate with max_new_tokens >= CompiledConstraint.max_new_tokens ({self.max_new_tokens})",
            )
        opens = "; ".join(self.budgeted[:6]) + ("; ..." if len(self.budgeted) > 6 else "")
        return ConstraintError(
            f"output does not match the constraint: it {cut} at the budget of max_new_tokens={self.max_new_tokens} "
            f"({size}). Sizes without max_length are budgeted, not bounded, and one of them ran on: {opens}. "
            f"Output: {shown!r}",
            hint="if outputs are legitimately that long, raise Limits(max_string_chars=..., max_list_items=...) "
            "(which raises max_new_tokens); if the model repeats itself, give those fields an explicit max_length",
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_states(pattern: Pattern, limits: Limits, where: str) -> None:
    if pattern.states > limits.max_states:
        raise ConstraintError(
            f"the output type's automaton would have about {pattern.states:,} states (at {where[:120]}), more than "
            f"Limits.max_states={limits.max_states:,}: compiling and indexing it would take too long",
            hint="lower max_length / maxItems values or nest fewer sized lists, or pass a larger Limits(max_states=...)",
        )


# ---------------------------------------------------------------------------------------------
# metadata (Field(...), annotated_types, conint/constr) -> constraints
# ---------------------------------------------------------------------------------------------

_HARMLESS_GENERAL = frozenset({"strict", "allow_inf_nan", "coerce_numbers_to_str", "union_mode", "fail_fast"})
_STRING_TRANSFORMS = frozenset({"strip_whitespace", "to_lower", "to_upper"})


@dataclass
class _Constraints:
    ge: Any = None
    gt: Any = None
    le: Any = None
    lt: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    transforms: set[str] = field(default_factory=set)

    def add(self, item: Any) -> None:
        if item is None:
            return
        if isinstance(item, FieldInfo):
            for sub in item.metadata:
                self.add(sub)
            return
        if isinstance(item, at.Ge):
            self.ge = item.ge if self.ge is None else max(self.ge, item.ge)
        elif isinstance(item, at.Gt):
            self.gt = item.gt if self.gt is None else max(self.gt, item.gt)
        elif isinstance(item, at.Le):
            self.le = item.le if self.le is None else min(self.le, item.le)
        elif isinstance(item, at.Lt):
            self.lt = item.lt if self.lt is None else min(self.lt, item.lt)
        elif isinstance(item, at.MinLen):
            self.min_length = item.min_length if self.min_length is None else max(self.min_length, item.min_length)
        elif isinstance(item, at.MaxLen):
            self.max_length = item.max_length if self.max_length is None else min(self.max_length, item.max_length)
        elif isinstance(item, (at.MultipleOf, at.Predicate)):
            raise ConstraintError(
                f"{item!r} cannot be enforced while decoding",
                hint="drop it from the output type and check it after parsing",
            )
        elif isinstance(item, at.GroupedMetadata):
            for sub in item:
                self.add(sub)
        elif type(item).__name__ == "_PydanticGeneralMetadata":
            for key, value in vars(item).items():
                if value is None or value is False or key in _HARMLESS_GENERAL:
                    continue
                if key == "pattern":
                    self.pattern = value if isinstance(value, str) else value.pattern
                elif key in _STRING_TRANSFORMS:
                    self.transforms.add(key)
                else:
                    raise ConstraintError(f"the constraint {key}={value!r} cannot be enforced while decoding")
        # anything else (validators, docs, json-schema extras, Strict) does not restrict the JSON text


def _unwrap(tp: Any, meta: Sequence[Any] = ()) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers and type aliases, collecting their metadata."""
    collected = list(meta)
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            collected = [*tp.__metadata__, *collected]
            tp = tp.__origin__
        elif hasattr(typing, "TypeAliasType") and isinstance(tp, typing.TypeAliasType):
            tp = tp.__value__
        else:
            return tp, collected


def _constraints(meta: Sequence[Any]) -> _Constraints:
    c = _Constraints()
    for item in meta:
        c.add(item)
    return c


def _json_literal(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (bool, int, str)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return json.dumps(value)
    raise ConstraintError(f"the literal value {value!r} has no JSON form docvlm can emit")


_UNSUPPORTED_HINTS: dict[Any, str] = {
    dict: "dict is not supported: keys are open-ended; use a model with fixed fields, or a list of key/value models",
    set: "set is not supported: uniqueness cannot be enforced while decoding; use a list and deduplicate",
    frozenset: "frozenset is not supported: uniqueness cannot be enforced while decoding; use a list",
}


@dataclass(frozen=True)
class _StrDefaults:
    min_length: int | None = None
    max_length: int | None = None
    transforms: frozenset[str] = frozenset()


class _Compiler:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.models: list[type[BaseModel]] = []
        self.path: list[str] = []
        self.defaulted: list[str] = []

    def where(self) -> str:
        return "output" + "".join(self.path)

    def at(self, step: str, tp: Any, strs: _StrDefaults, meta: Sequence[Any] = ()) -> Pattern:
        self.path.append(step)
        try:
            if len(self.path) > self.limits.max_depth:
                raise ConstraintError(
                    f"the output type nests more than Limits.max_depth={self.limits.max_depth} levels "
                    f"(at {self.where()[:120]})",
                    hint="flatten the type, or pass a larger Limits(max_depth=...)",
                )
            check_budget()
            pattern = self.json(tp, meta, strs)
            check_budget()  # the work is done on the way back up, where patterns are joined
            _check_states(pattern, self.limits, self.where())
            return pattern
        finally:
            self.path.pop()

    # -- JSON values -------------------------------------------------------------------------

    def json(self, tp: Any, meta: Sequence[Any] = (), strs: _StrDefaults = _StrDefaults()) -> Pattern:
        tp, meta = _unwrap(tp, meta)
        origin = typing.get_origin(tp)
        if tp is None or tp is type(None):
            return rx.literal("null")
        if tp is Any or tp is object:
            raise ConstraintError("Any cannot be compiled to a constraint: give a concrete type")
        if origin is Literal:
            return rx.alternation([rx.literal(_json_literal(v)) for v in _literal_values(tp)])
        if origin in (typing.Union, types.UnionType):
            return rx.alternation([self.json(arg, meta, strs) for arg in typing.get_args(tp)])
        if tp in (list, tuple) or origin in (list, tuple, Sequence):
            return self.array(tp, _constraints(meta), strs)
        if isinstance(tp, type) and tp in FORMAT_TYPES:
            return self.formatted(FORMAT_TYPES[tp], _constraints(meta))
        if isinstance(tp, type) and origin is None:
            if issubclass(tp, enum.Enum):
                return rx.alternation([rx.literal(_json_literal(m)) for m in tp])
            if tp is bool:
                return rx.alternation([rx.literal("true"), rx.literal("false")])
            if tp is int:
                return self.integer(_constraints(meta))
            if tp is float:
                return self.number(_constraints(meta))
            if tp is str:
                return self.string(_constraints(meta), strs)
            if issubclass(tp, BaseModel):
                return self.model(tp)
        hint = _UNSUPPORTED_HINTS.get(origin or tp)
        if hint is not None:
            raise ConstraintError(hint)
        raise ConstraintError(
            f"the type {tp!r} cannot be compiled to a constraint",
            hint="supported: BaseModel, list, tuple, Literal, Enum, Union/Optional, str, int, float, bool, None, "
            "date, datetime, time, UUID",
        )

    def formatted(self, name: str, c: _Constraints) -> Pattern:
        """A JSON string in one of `FORMAT_PATTERNS` (dates, times, UUIDs): exact, so it always validates."""
        if c != _Constraints():
            raise ConstraintError(
                f"bounds on a {name} value ({self.where()}) cannot be enforced while decoding",
                hint="drop them from the output type and check them after parsing",
            )
        return format_pattern(name)

    def integer(self, c: _Constraints) -> Pattern:
        bound = 10**self.limits.max_int_digits - 1
        try:
            lows = [_ceil(c.ge)] if c.ge is not None else []
            if c.gt is not None:
                lows.append(_floor(c.gt) + 1)
            highs = [_floor(c.le)] if c.le is not None else []
            if c.lt is not None:
                highs.append(_ceil(c.lt) - 1)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ConstraintError(f"integer bounds {c.ge, c.gt, c.le, c.lt} are not numbers") from exc
        lo = max(lows) if lows else -bound
        hi = min(highs) if highs else bound
        if lo > hi:
            raise ConstraintError(f"no integer satisfies the bounds (from {lo} to {hi})")
        return rx.int_range_pattern(lo, hi)

    def number(self, c: _Constraints) -> Pattern:
        decimals = self.limits.float_decimals
        top = Decimal("9" * self.limits.max_float_int_digits + ("." + "9" * decimals if decimals else ""))
        lo: Any = -top
        hi: Any = top
        lo_ex = hi_ex = False
        if c.ge is not None:
            lo = c.ge
        if c.gt is not None and (c.ge is None or c.gt >= c.ge):
            lo, lo_ex = c.gt, True
        if c.le is not None:
            hi = c.le
        if c.lt is not None and (c.le is None or c.lt <= c.le):
            hi, hi_ex = c.lt, True
        try:
            return rx.float_range_pattern(
                _as_decimal(lo), _as_decimal(hi), decimals=decimals, lo_exclusive=lo_ex, hi_exclusive=hi_ex
            )
        except ValueError as exc:
            raise ConstraintError(str(exc), hint="raise Limits.float_decimals or widen the bounds") from exc

    def string(self, c: _Constraints, strs: _StrDefaults) -> Pattern:
        min_len = c.min_length if c.min_length is not None else strs.min_length or 0
        max_len = c.max_length if c.max_length is not None else strs.max_length
        transforms = c.transforms | strs.transforms
        if transforms and (min_len > 0 or c.pattern is not None):
            raise ConstraintError(
                f"string transforms {sorted(transforms)} combined with min_length or pattern cannot be enforced",
                hint="drop strip_whitespace/to_lower/to_upper from the output type and apply them after parsing",
            )
        if c.pattern is not None:
            cap = max_len if max_len is not None else self.limits.max_pattern_repeats
            body = translate_user_regex(c.pattern, json_safe=True, cap=cap)
            if max_len is not None and body.max_chars > max_len:
                raise ConstraintError(
                    f"the pattern {c.pattern!r} can match up to {body.max_chars} characters, more than max_length={max_len}",
                    hint="give the pattern explicit {m,n} bounds that fit max_length",
                )
            if min_len > 0:
                raise ConstraintError(
                    f"min_length together with pattern {c.pattern!r} cannot be enforced",
                    hint="express the minimum in the pattern ({m,n}) instead",
                )
            body = Pattern(body.group(), body.max_chars, body.max_bytes, atomic=True, free_chars=body.free_chars,
                           states=body.states)
            return rx.concat([_QUOTE, body, _QUOTE])
        counted = max_len if max_len is not None else min_len
        # at the very start of the output a counted string must not contain \" (see _STRING_CHAR_NO_QUOTE)
        char = _STRING_CHAR_NO_QUOTE if not self.path and counted > _TOP_STRING_QUOTE_MAX else STRING_CHAR
        if max_len is None:
            budget = max(self.limits.max_string_chars, min_len)
            self.defaulted.append(f"{self.where()} (str, {budget} chars)")
            return rx.concat([_QUOTE, rx.repeat_open(char, min_len, budget), _QUOTE])
        if min_len > max_len:
            raise ConstraintError(f"string min_length {min_len} is above max_length {max_len}")
        return rx.concat([_QUOTE, rx.repeat(char, min_len, max_len), _QUOTE])

    def array(self, tp: Any, c: _Constraints, strs: _StrDefaults) -> Pattern:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = [self.at(f"[{i}]", a, strs) for i, a in enumerate(args)]
            parts: list[Pattern] = [rx.literal("[")]
            for i, item in enumerate(items):
                if i:
                    parts.append(rx.literal(","))
                parts.append(item)
            parts.append(rx.literal("]"))
            return rx.concat(parts)
        item_type = args[0] if args else Any
        item = self.at("[]", item_type, strs)
        low = c.min_length or 0
        next_item = rx.concat([rx.literal(","), item])
        if c.max_length is None:
            # budgeted: item(?:,item)* holds two copies of the item's states, whatever the length
            budget = max(self.limits.max_list_items, low, 1)
            self.defaulted.append(f"{self.where()} (list, {budget} items)")
            more = rx.repeat_open(next_item, max(low - 1, 0), budget - 1)
        else:
            high = c.max_length
            if low > high:
                raise ConstraintError(f"list min_length {low} is above max_length {high}")
            if high == 0:
                return rx.literal("[]")
            more = rx.repeat(next_item, max(low - 1, 0), high - 1)
        body = rx.concat([item, more])
        if low == 0:
            body = rx.optional(body)
        return rx.concat([rx.literal("["), body, rx.literal("]")])

    def model(self, model: type[BaseModel]) -> Pattern:
        if model in self.models:
            chain = " -> ".join(m.__name__ for m in [*self.models, model])
            raise ConstraintError(
                f"the model {model.__name__} is recursive ({chain}): its JSON has no bounded length",
                hint="unroll the recursion to a fixed depth with separate models",
            )
        self.models.append(model)
        try:
            config = model.model_config
            strs = _StrDefaults(
                min_length=config.get("str_min_length"),
                max_length=config.get("str_max_length"),
                transforms=frozenset(
                    name
                    for name, key in (
                        ("strip_whitespace", "str_strip_whitespace"),
                        ("to_lower", "str_to_lower"),
                        ("to_upper", "str_to_upper"),
                    )
                    if config.get(key)
                ),
            )
            if issubclass(model, RootModel):
                root = model.model_fields["root"]
                return self.json(root.annotation, root.metadata, strs)
            by_alias = config.get("validate_by_alias", True)
            parts: list[Pattern] = [rx.literal("{")]
            for i, (name, info) in enumerate(model.model_fields.items()):
                key = _field_key(model, name, info) if by_alias else name
                if i:
                    parts.append(rx.literal(","))
                parts.append(rx.literal(_json_literal(key) + ":"))
                parts.append(self.at("." + name, info.annotation, strs, info.metadata))
            parts.append(rx.literal("}"))
            return rx.concat(parts)
        finally:
            self.models.pop()


@functools.cache
def format_pattern(name: str) -> Pattern:
    """The JSON string (quotes included) of a `FORMAT_PATTERNS` format, as a pattern."""
    body = translate_user_regex(FORMAT_PATTERNS[name], json_safe=True, cap=1)
    body = Pattern(body.group(), body.max_chars, body.max_bytes, atomic=True, free_chars=body.free_chars,
                   states=body.states)
    return rx.concat([_QUOTE, body, _QUOTE])


def _field_key(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if alias is not None:
        choices = getattr(alias, "choices", None)
        if choices and isinstance(choices[0], str):
            return str(choices[0])
        raise ConstraintError(f"{model.__name__}.{name}: alias paths are not supported in output types")
    return info.alias or name


def _literal_values(tp: Any) -> list[Any]:
    values: list[Any] = []
    for arg in typing.get_args(tp):
        if typing.get_origin(arg) is Literal:
            values.extend(_literal_values(arg))
        else:
            values.append(arg)
    return values


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    raise ConstraintError(f"the bound {value!r} is not a number")


def _ceil(value: Any) -> int:
    d = _as_decimal(value)
    return int(d.to_integral_value(rounding="ROUND_CEILING"))


def _floor(value: Any) -> int:
    d = _as_decimal(value)
    return int(d.to_integral_value(rounding="ROUND_FLOOR"))


# ---------------------------------------------------------------------------------------------
# top level
# ---------------------------------------------------------------------------------------------

_CACHE: OrderedDict[tuple[Any, Limits], CompiledConstraint[Any]] = OrderedDict()
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()


@overload
def compile_output_type(output_type: Regex, *, limits: Limits | None = None) -> CompiledConstraint[str]: ...
@overload
def compile_output_type(output_type: type[T], *, limits: Limits | None = None) -> CompiledConstraint[T]: ...
@overload
def compile_output_type(output_type: Any, *, limits: Limits | None = None) -> CompiledConstraint[Any]: ...
def compile_output_type(output_type: Any, *, limits: Limits | None = None) -> CompiledConstraint[Any]:
    """Compile an output type into a regular expression with a known length bound.

    JSON is compact (no whitespace, separators ``,`` and ``:``), keys are always all present and
    in declaration order (aliases used), ``None`` only where the type allows it. Explicit bounds
    (``max_length``, ``le``, ...) are exact, in the regex; a ``str`` or ``list`` without
    ``max_length`` is open in the regex and budgeted at its [`Limits`][docvlm.decoding.Limits] default in
    ``max_chars`` / ``max_new_tokens`` (then `CompiledConstraint.exact` is ``False``). Top-level ``Literal`` / ``Enum`` become bare
    choices (``a`` rather than ``"a"``), top-level ``str`` free text and [`Regex`][docvlm.decoding.Regex] its
    pattern; everything else is JSON.

    Results are cached per ``(output_type, limits)`` when the type is hashable.

    Args:
        output_type: a pydantic model, ``list[...]``, ``tuple[...]``, ``Literal[...]``, an Enum,
            ``Union`` / ``Optional`` (including discriminated unions), ``int``, ``float``,
            ``bool``, ``None``, ``str`` (each optionally ``Annotated`` with ``Field`` /
            annotated-types constraints), or a [`Regex`][docvlm.decoding.Regex].
        limits: defaults for open bounds; ``Limits()`` if not given.

    Returns:
        The compiled constraint.

    Raises:
        ConstraintError: for unsupported types (``dict``, ``set``, ``Any``, recursive models,
            ``multiple_of``, ...), contradictory bounds, or explicit bounds over
            `Limits.max_free_chars`.
    """
    limits = limits or Limits()
    try:
        cache_key = (output_type, limits)
        hash(cache_key)
    except TypeError:
        return _compile(output_type, limits)
    with _CACHE_LOCK:
        hit = _CACHE.get(cache_key)
        if hit is not None:
            _CACHE.move_to_end(cache_key)
            return hit
    compiled = _compile(output_type, limits)
    with _CACHE_LOCK:
        _CACHE[cache_key] = compiled
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


def _make(
    output_type: Any,
    pattern: Pattern,
    kind: OutputKind,
    limits: Limits,
    *,
    schema: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    defaulted: Sequence[str] = (),
) -> CompiledConstraint[Any]:
    if kind is not OutputKind.TEXT:
        _check_states(pattern, limits, "output")
    if kind is not OutputKind.TEXT and pattern.free_chars > limits.max_free_chars:
        seconds = max(1, round(pattern.free_chars * 0.03))
        raise ConstraintError(
            f"the output type's explicit bounds make {pattern.free_chars} free-text character positions (characters "
            f"of strings with max_length, counted through list lengths), more than "
            f"Limits.max_free_chars={limits.max_free_chars}: on a 49k-token vocabulary its token index would take "
            f"about {seconds} s and {pattern.free_chars * 7} MB of memory to build",
            hint="lower those max_length values, or drop a max_length (the size is then budgeted: the regex stays "
            "small and the length is capped only by max_new_tokens), or pass a larger Limits(max_free_chars=...)",
        )
    return CompiledConstraint(
        output_type,
        pattern.regex,
        kind,
        pattern.max_chars,
        pattern.max_bytes,
        pattern.free_chars,
        schema,
        tuple(values) if values is not None else None,
        limits,
        pattern.exact,
        tuple(defaulted) if not pattern.exact else (),
        values,
    )


def _compile(output_type: Any, limits: Limits) -> CompiledConstraint[Any]:
    if isinstance(output_type, Regex):
        body = translate_user_regex(output_type.pattern, json_safe=False, cap=limits.max_pattern_repeats)
        return _make(output_type, body, OutputKind.REGEX, limits)
    base, meta = _unwrap(output_type)
    if typing.get_origin(base) is Literal or (isinstance(base, type) and issubclass(base, enum.Enum)):
        values = _literal_values(base) if typing.get_origin(base) is Literal else list(base)
        table: dict[str, Any] = {}
        for value in values:
            raw = value.value if isinstance(value, enum.Enum) else value
            text = raw if isinstance(raw, str) else _json_literal(raw)
            if text in table and table[text] is not value:
                raise ConstraintError(f"two choices are both written {text!r}")
            table[text] = value
        if not table:
            raise ConstraintError("a choice needs at least one value")
        choice = rx.alternation([rx.literal(t) for t in table])
        return _make(output_type, choice, OutputKind.CHOICE, limits, values=table)
    if base is str:
        c = _constraints(meta)
        if c.pattern is not None:
            cap = c.max_length if c.max_length is not None else limits.max_pattern_repeats
            body = translate_user_regex(c.pattern, json_safe=False, cap=cap)
            if (c.max_length is not None and body.max_chars > c.max_length) or c.min_length:
                raise ConstraintError(
                    f"the pattern {c.pattern!r} together with min/max_length cannot be enforced exactly",
                    hint="express the length in the pattern with {m,n}",
                )
            return _make(output_type, body, OutputKind.REGEX, limits)
        low = c.min_length or 0
        high = c.max_length if c.max_length is not None else max(limits.max_text_chars, low)
        if low > high:
            raise ConstraintError(f"text min_length {low} is above max_length {high}")
        free = rx.repeat(Pattern(r"[\s\S]", 1, 4, atomic=True, free_chars=1), low, high)
        return _make(output_type, free, OutputKind.TEXT, limits)
    compiler = _Compiler(limits)
    pattern = compiler.json(output_type)
    try:
        schema: dict[str, Any] | None = TypeAdapter(output_type).json_schema()
    except Exception as exc:  # pydantic raises several error types for types it cannot describe
        raise ConstraintError(f"pydantic cannot describe {output_type!r} as JSON schema: {exc}") from exc
    return _make(output_type, pattern, OutputKind.JSON, limits, schema=schema, defaulted=compiler.defaulted)
