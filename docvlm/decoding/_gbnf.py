"""docvlm's compiled regexes as GBNF grammars, the constraint language of llama.cpp servers.

>>> print(regex_to_gbnf(r'\\{"n":(?:0|[1-9][0-9]{0,2})\\}'), end="")
root ::= "{\\"n\\":" ("0" | [1-9] [0-9]{0,2}) "}"

llama.cpp's ``llama-server`` and llama-cpp-python take a ``grammar`` field in a chat completion request. Sent
the grammar of a constraint's regex, such a server decodes under exactly the bounds a local model decodes
under (integer and float ranges, string and list lengths), which its JSON-schema path does not keep. The
regex subset is the one docvlm compiles: literals, classes (ranges, negation, ``\\d``, ``\\w``, ``\\s``),
groups, ``|`` and repeats; anchors are dropped (a grammar always matches the whole output).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from docvlm.errors import ConstraintError

__all__ = ["regex_to_gbnf"]

_sre: Any
try:
    _sre = importlib.import_module("re._parser")  # Python >= 3.11
except ImportError:  # pragma: no cover - Python 3.10
    _sre = importlib.import_module("sre_parse")

_CATEGORIES = {
    "CATEGORY_DIGIT": "0-9",
    "CATEGORY_WORD": "a-zA-Z0-9_",
    "CATEGORY_SPACE": " \\t\\n\\r\\x0b\\x0c",
}
_NEGATED = {"CATEGORY_NOT_DIGIT": "CATEGORY_DIGIT", "CATEGORY_NOT_WORD": "CATEGORY_WORD",
            "CATEGORY_NOT_SPACE": "CATEGORY_SPACE"}


def _escape(code: int, specials: str) -> str:
    char = chr(code)
    if char in specials or char == "\\":
        return "\\" + char
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    if code < 0x20 or 0x7F <= code <= 0xA0:
        return f"\\x{code:02x}"
    return char


def _literal(codes: list[int]) -> str:
    return '"' + "".join(_escape(c, '"') for c in codes) + '"'


def _class(items: Any) -> str:
    negate = False
    parts: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            parts.append(_escape(arg, "]-^["))
        elif name == "RANGE":
            parts.append(f"{_escape(arg[0], ']-^[')}-{_escape(arg[1], ']-^[')}")
        elif name == "CATEGORY" and str(arg) in _CATEGORIES:
            parts.append(_CATEGORIES[str(arg)])
        elif name == "CATEGORY" and str(arg) in _NEGATED and len(items) == 1:
            return f"[^{_CATEGORIES[_NEGATED[str(arg)]]}]"
        else:
            raise ConstraintError(f"cannot write the regex class item {name} {arg!r} as a grammar")
    return f"[{'^' if negate else ''}{''.join(parts)}]"


def _sequence(items: Any) -> str:
    out: list[str] = []
    literal: list[int] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            literal.append(arg)
            continue
        if literal:
            out.append(_literal(literal))
            literal = []
        if name == "AT":
            continue  # ^, $, \A, \Z: a grammar matches the whole output anyway
        out.append(_item(name, arg))
    if literal:
        out.append(_literal(literal))
    return " ".join(out) if out else '""'


def _item(name: str, arg: Any) -> str:
    if name == "NOT_LITERAL":
        return f"[^{_escape(arg, ']-^[')}]"
    if name == "ANY":
        return "[^\\n]"
    if name == "IN":
        return _class(arg)
    if name == "BRANCH":
        return "(" + " | ".join(_sequence(branch) for branch in arg[1]) + ")"
    if name == "SUBPATTERN":
        return f"({_sequence(arg[-1])})"
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, sub = arg
        inner = _sequence(sub)
        if not (len(sub) == 1 and str(sub[0][0]) in ("IN", "SUBPATTERN", "BRANCH", "ANY", "NOT_LITERAL")):
            inner = f"({inner})"
        if high == _sre.MAXREPEAT:
            return inner + ("*" if low == 0 else "+" if low == 1 else f"{{{low},}}")
        if (low, high) == (0, 1):
            return inner + "?"
        return inner + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")
    raise ConstraintError(f"cannot write the regex construct {name} as a grammar")


@functools.lru_cache(maxsize=256)
def regex_to_gbnf(regex: str) -> str:
    """The GBNF grammar (one ``root`` rule) that matches exactly the strings ``regex`` fully matches.

    Raises:
        ConstraintError: the regex uses a construct outside docvlm's subset (lookarounds, backreferences,
            a negated category inside a class).
    """
    try:
        tree = _sre.parse(regex)
    except Exception as exc:  # re.error
        raise ConstraintError(f"not a valid regex: {exc}") from exc
    return f"root ::= {_sequence(list(tree))}\n"
