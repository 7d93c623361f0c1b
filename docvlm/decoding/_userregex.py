"""Translate a user's regular expression into the portable, bounded subset docvlm emits.

A user pattern (a ``Regex`` output type, or ``Field(pattern=...)`` on a string) is parsed with
Python's own regex parser and printed back using only syntax that Python, Rust (outlines-core)
and hypothesis agree on. On the way:

* unbounded repeats (``*``, ``+``, ``{n,}``) are capped at a caller-given number of repetitions;
* anchors ``^`` / ``$`` at the very ends are dropped (the whole output must match anyway); any
  other anchor, lookaround, backreference, conditional, possessive or atomic group is refused;
* flags other than ``DOTALL`` / ``VERBOSE`` / ``UNICODE`` are refused;
* inside a JSON string (``json_safe=True``) the pattern must not be able to produce ``"``, ``\\``
  or a control character, because those are written differently in JSON.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from docvlm.errors import ConstraintError

from ._budget import check_budget
from ._regex import Pattern

__all__ = ["translate_user_regex"]

try:  # Python >= 3.11; "sre_parse" still exists there but warns on import
    _sre: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - Python 3.10
    _sre = importlib.import_module("sre_parse")

_MAXREPEAT: int = int(_sre.MAXREPEAT)
_ALLOWED_FLAGS = re.DOTALL | re.VERBOSE | re.UNICODE
_JSON_BAD = frozenset(['"', "\\"] + [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)])
#: ASCII whitespace: ``\s`` to both Python and Rust.
_ASCII_SPACE = r"\t\n\x0b\x0c\r "
#: Every character either Python or Rust counts as ``\s``.
_ANY_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_CLASS_META = frozenset("\\]^-[&~|")
_META = frozenset("\\.+*?()|[]{}^$")


def _char(code: int, meta: frozenset[str]) -> str:
    ch = chr(code)
    if code < 0x20 or 0x7F <= code < 0xA0:
        return f"\\x{code:02x}"
    if ch in meta:
        return "\\" + ch
    return ch


class _Translator:
    def __init__(self, source: str, *, json_safe: bool, cap: int) -> None:
        self.source = source
        self.json_safe = json_safe
        self.cap = cap

    def fail(self, why: str) -> ConstraintError:
        return ConstraintError(
            f"the pattern {self.source!r} cannot be used as a constraint: {why}",
            hint="use literals, [...] classes, groups, | and bounded {m,n} repeats",
        )

    def check_json_char(self, ch: str) -> None:
        if self.json_safe and ch in _JSON_BAD:
            raise self.fail(f"it can produce {ch!r}, which a JSON string must escape")

    def seq(self, items: Any, dotall: bool) -> Pattern:
        parts = [self.node(op, av, dotall) for op, av in items]
        regex = "".join(p.regex for p in parts)
        atomic = len(parts) == 1 and parts[0].atomic
        return Pattern(
            regex,
            sum(p.max_chars for p in parts),
            sum(p.max_bytes for p in parts),
            atomic=atomic,
            free_chars=sum(p.free_chars for p in parts),
            states=sum(p.states for p in parts),
        )

    def node(self, op: Any, av: Any, dotall: bool) -> Pattern:
        check_budget()
        name = str(op)
        if name == "LITERAL":
            self.check_json_char(chr(av))
            return Pattern(_char(av, _META), 1, len(chr(av).encode("utf-8", "surrogatepass")), atomic=True)
        if name == "NOT_LITERAL":
            if self.json_safe:
                raise self.fail("a negated character can produce '\"' or '\\\\'")
            return Pattern(f"[^{_char(av, _CLASS_META)}]", 1, 4, atomic=True, free_chars=1)
        if name == "ANY":
            if self.json_safe:
                raise self.fail("'.' can produce '\"' or '\\\\'")
            return Pattern(r"[\s\S]" if dotall else ".", 1, 4, atomic=True, free_chars=1)
        if name == "IN":
            return self.char_class(av)
        if name == "BRANCH":
            options = [self.seq(b, dotall) for b in av[1]]
            return Pattern(
                "(?:" + "|".join(o.regex for o in options) + ")",
                max(o.max_chars for o in options),
                max(o.max_bytes for o in options),
                atomic=True,
                free_chars=sum(o.free_chars for o in options),
                states=sum(o.states for o in options),
            )
        if name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = av
            if (add_flags | del_flags) & ~_ALLOWED_FLAGS:
                raise self.fail("inline flags other than (?s) are not supported")
            inner_dotall = (dotall or bool(add_flags & re.DOTALL)) and not del_flags & re.DOTALL
            inner = self.seq(sub, inner_dotall)
            return Pattern(inner.group(), inner.max_chars, inner.max_bytes, atomic=True, free_chars=inner.free_chars,
                           states=inner.states)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = av
            if high >= _MAXREPEAT:
                high = max(low, self.cap)
            inner = self.seq(sub, dotall)
            if high == 0:
                return Pattern("", 0, 0)
            quant = "?" if (low, high) == (0, 1) else f"{{{low}}}" if low == high else f"{{{low},{high}}}"
            return Pattern(
                inner.group() + quant,
                inner.max_chars * high,
                inner.max_bytes * high,
                free_chars=inner.free_chars * high,
                states=inner.states * high,
            )
        if name == "AT":
            raise self.fail("anchors are only allowed at the very start (^) and end ($)")
        raise self.fail(f"{name.lower().replace('_', ' ')} is not supported")

    def char_class(self, items: Any) -> Pattern:
        negate = bool(items) and str(items[0][0]) == "NEGATE"
        members = list(items[1:] if negate else items)
        if len(members) == 1 and str(members[0][0]) == "CATEGORY" and str(members[0][1]) == "CATEGORY_NOT_SPACE":
            # \S alone (or [^\S]): Python's and Rust's whitespace differ, so write both explicitly
            regex = f"[{_ASCII_SPACE}]" if negate else f"[^{_ANY_SPACE}]"
            return self.finish_class(regex, ascii_only=negate)
        body: list[str] = []
        ascii_only = not negate
        for op, av in members:
            name = str(op)
            if name == "LITERAL":
                body.append(_char(av, _CLASS_META))
                ascii_only = ascii_only and av < 0x80
            elif name == "RANGE":
                lo, hi = av
                body.append(f"{_char(lo, _CLASS_META)}-{_char(hi, _CLASS_META)}")
                ascii_only = ascii_only and hi < 0x80
            elif name == "CATEGORY":
                body.append(self.category(str(av), negate))
                ascii_only = ascii_only and str(av) != "CATEGORY_NOT_DIGIT"
            else:
                raise self.fail(f"{name.lower()} inside [...] is not supported")
        return self.finish_class("[" + ("^" if negate else "") + "".join(body) + "]", ascii_only=ascii_only)

    def category(self, name: str, negated_class: bool) -> str:
        """A class member for ``\\d \\s \\w ...`` that Python and Rust read alike.

        Python and Rust disagree on which Unicode characters are ``\\s`` and ``\\w``; inside a
        positive class we use an ASCII subset (accepted by both), inside a negated class a
        superset, so that the class never lets through a character either engine would refuse.
        """
        if name == "CATEGORY_DIGIT":
            return "\\d" if negated_class else "0-9"
        if name == "CATEGORY_NOT_DIGIT":
            return "\\D"
        if name == "CATEGORY_SPACE":
            return _ANY_SPACE if negated_class else _ASCII_SPACE
        if name == "CATEGORY_WORD" and not negated_class:
            return "0-9A-Za-z_"
        escape = {"CATEGORY_WORD": "\\w", "CATEGORY_NOT_WORD": "\\W", "CATEGORY_NOT_SPACE": "\\S"}.get(name, name)
        raise self.fail(f"{escape} here means different characters to Python and to Rust; write the class out")

    def finish_class(self, regex: str, *, ascii_only: bool) -> Pattern:
        if self.json_safe:
            compiled = re.compile(regex)
            for ch in sorted(_JSON_BAD):
                if compiled.fullmatch(ch):
                    raise self.fail(f"the class {regex} can produce {ch!r}, which a JSON string must escape")
        return Pattern(regex, 1, 1 if ascii_only else 4, atomic=True, free_chars=1)


def translate_user_regex(pattern: str, *, json_safe: bool, cap: int) -> Pattern:
    """Parse ``pattern`` and print it back in docvlm's portable, bounded regex subset.

    Args:
        pattern: a Python-syntax regular expression; a leading ``^`` and trailing ``$`` are dropped.
        json_safe: refuse patterns that can produce characters JSON strings must escape.
        cap: the repetition count that replaces an unbounded repeat's missing maximum.

    Returns:
        The translated pattern with its length bounds.

    Raises:
        ConstraintError: if the pattern uses syntax outside the subset, or cannot be parsed.
    """
    body = pattern
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    translator = _Translator(pattern, json_safe=json_safe, cap=cap)
    try:
        parsed = _sre.parse(body)
        flags = int(parsed.state.flags)
        if flags & ~_ALLOWED_FLAGS:
            raise translator.fail("flags other than (?s) are not supported")
        return translator.seq(parsed, bool(flags & re.DOTALL))
    except re.error as exc:
        raise translator.fail(str(exc)) from exc
    except (RecursionError, OverflowError) as exc:  # groups nested thousands deep; repeat counts past C limits
        raise translator.fail(f"it is nested too deeply or counts too high ({type(exc).__name__})") from exc
