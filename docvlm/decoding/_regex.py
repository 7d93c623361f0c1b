"""Regular-expression building blocks with known length bounds.

Every pattern produced here uses only the syntax that Python's `re`, Rust's ``regex`` crate
(used by outlines-core) and ``hypothesis.strategies.from_regex`` read the same way: literals,
``[...]`` classes, ``(?:...)`` groups, ``|``, ``?``, ``{m,n}``, and (for sizes the user left open,
see `repeat_open`) ``*``, ``+`` and ``{m,}``. No ``\\d`` (Unicode digits in Rust), no anchors,
no lookaround.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "Pattern",
    "alternation",
    "concat",
    "escape",
    "float_range_regex",
    "int_range_regex",
    "literal",
    "repeat",
    "repeat_open",
]

_META = frozenset("\\.+*?()|[]{}^$")


def escape(text: str) -> str:
    """Escape the regex metacharacters in ``text`` (and nothing else, for Rust's sake)."""
    return "".join("\\" + ch if ch in _META else ch for ch in text)


@dataclass(frozen=True)
class Pattern:
    """A regex with upper bounds on the length of anything it matches.

    Attributes:
        regex: the pattern (one atom or a sequence; see `group`).
        max_chars: the most characters a match can have; when not `exact`, a budget: the most
            characters a match has if every open repeat stays within its budgeted count.
        max_bytes: the same in UTF-8 bytes.
        atomic: whether ``regex`` can take a quantifier or join an alternation without a group.
        free_chars: how many free-text character positions the pattern has (a string character,
            a character class): each is an automaton state in which most of a vocabulary stays
            allowed, which is what makes a token index big and slow to build. The body of an open
            repeat (`repeat_open`) is one set of states however often it repeats.
        exact: whether the pattern has no open repeat, so that no match is longer than
            `max_chars`.
        states: an estimate of the automaton's size: the regex's length with every counted repeat
            ``{m,n}`` written out ``n`` times (default: the length of `regex`). Compiling and indexing
            a constraint take time and memory in proportion to it (see `Limits.max_states`).
    """

    regex: str
    max_chars: int
    max_bytes: int
    atomic: bool = False
    free_chars: int = 0
    exact: bool = True
    states: int = -1

    def __post_init__(self) -> None:
        if self.states < 0:
            object.__setattr__(self, "states", len(self.regex))

    def group(self) -> str:
        """The regex wrapped in a non-capturing group unless it is already one atom."""
        return self.regex if self.atomic else f"(?:{self.regex})"


def literal(text: str) -> Pattern:
    """A pattern matching exactly ``text``."""
    regex = escape(text)
    single = len(text) == 1
    return Pattern(regex, len(text), len(text.encode()), atomic=single)


def concat(parts: Iterable[Pattern]) -> Pattern:
    """The patterns one after another."""
    items = list(parts)
    if len(items) == 1:
        return items[0]
    regex = "".join(p.regex if _sequence_safe(p) else p.group() for p in items)
    return Pattern(
        regex,
        sum(p.max_chars for p in items),
        sum(p.max_bytes for p in items),
        free_chars=sum(p.free_chars for p in items),
        exact=all(p.exact for p in items),
        states=sum(p.states for p in items),
    )


def _sequence_safe(p: Pattern) -> bool:
    """A pattern can be concatenated as-is unless it has a top-level ``|``."""
    return p.atomic or not _has_top_level_bar(p.regex)


def _has_top_level_bar(regex: str) -> bool:
    depth = 0
    in_class = False
    i = 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            # a "]" right after "[" or "[^" is a literal
            if regex[i + 1 : i + 2] == "^":
                i += 1
            if regex[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


def alternation(options: Sequence[Pattern]) -> Pattern:
    """Any one of ``options`` (duplicates removed, order kept)."""
    seen: dict[str, Pattern] = {}
    for p in options:
        seen.setdefault(p.regex, p)
    items = list(seen.values())
    if not items:
        raise ValueError("an alternation needs at least one option")
    if len(items) == 1:
        return items[0]
    regex = "(?:" + "|".join(p.regex for p in items) + ")"
    return Pattern(
        regex,
        max(p.max_chars for p in items),
        max(p.max_bytes for p in items),
        atomic=True,
        free_chars=sum(p.free_chars for p in items),
        exact=all(p.exact for p in items),
        states=sum(p.states for p in items),
    )


def repeat(p: Pattern, low: int, high: int) -> Pattern:
    """``p`` repeated between ``low`` and ``high`` times (both inclusive).

    The automaton holds ``high`` copies of ``p``'s states (a counted repeat cannot share them).
    """
    if low < 0 or high < low:
        raise ValueError(f"bad repetition {{{low},{high}}}")
    if high == 0:
        return Pattern("", 0, 0)
    if low == high == 1:
        return p
    quant = "?" if (low, high) == (0, 1) else f"{{{low}}}" if low == high else f"{{{low},{high}}}"
    return Pattern(
        p.group() + quant, p.max_chars * high, p.max_bytes * high, free_chars=p.free_chars * high, exact=p.exact,
        states=p.states * high,
    )


def repeat_open(p: Pattern, low: int, budget: int) -> Pattern:
    """``p`` repeated ``low`` or more times, with no upper bound in the regex.

    The automaton stays small (one loop over ``p``'s states, plus ``low`` copies for the
    minimum), but the length is no longer bounded: `Pattern.max_chars` counts ``budget``
    repetitions and the result is not `Pattern.exact`.

    Args:
        p: the pattern to repeat.
        low: the fewest repetitions.
        budget: the repetitions counted into ``max_chars`` / ``max_bytes`` (at least ``low``).
    """
    if low < 0 or budget < low:
        raise ValueError(f"bad open repetition {{{low},}} with budget {budget}")
    quant = "*" if low == 0 else "+" if low == 1 else f"{{{low},}}"
    return Pattern(
        p.group() + quant,
        p.max_chars * budget,
        p.max_bytes * budget,
        free_chars=p.free_chars * max(low, 1),
        exact=False,
        states=p.states * max(low, 1),
    )


def optional(p: Pattern) -> Pattern:
    """``p`` or nothing."""
    return repeat(p, 0, 1)


# ---------------------------------------------------------------------------------------------
# Integer ranges
# ---------------------------------------------------------------------------------------------

_DIGIT = "[0-9]"


def _digits(n: int) -> str:
    if n == 0:
        return ""
    return _DIGIT if n == 1 else f"{_DIGIT}{{{n}}}"


def _digit_class(a: int, b: int) -> str:
    if a == b:
        return str(a)
    return f"[{a}-{b}]"


def _join(alts: list[str]) -> str:
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _same_length(lo: str, hi: str) -> list[str]:
    """Alternatives matching every digit string ``s`` with ``len(s) == len(lo)`` and ``lo <= s <= hi``.

    Leading zeros are ordinary digits here (the caller decides whether they are allowed).
    """
    n = len(lo)
    if lo == hi:
        return [lo]
    if n == 1:
        return [_digit_class(int(lo), int(hi))]
    rest = n - 1
    if lo[0] == hi[0]:
        return [lo[0] + _join(_same_length(lo[1:], hi[1:]))]
    a, b = int(lo[0]), int(hi[0])
    lo_tail_min = lo[1:] == "0" * rest
    hi_tail_max = hi[1:] == "9" * rest
    alts: list[str] = []
    if not lo_tail_min:
        alts.append(lo[0] + _join(_same_length(lo[1:], "9" * rest)))
    first = a if lo_tail_min else a + 1
    last = b if hi_tail_max else b - 1
    if first <= last:
        alts.append(_digit_class(first, last) + _digits(rest))
    if not hi_tail_max:
        alts.append(hi[0] + _join(_same_length("0" * rest, hi[1:])))
    return alts


def _nonnegative(lo: int, hi: int) -> list[str]:
    """Alternatives for the canonical decimals (no leading zeros) of ``lo..hi``, ``0 <= lo <= hi``."""
    alts: list[str] = []
    if lo == 0 and hi <= 9:
        return [_digit_class(0, hi)]
    if lo == 0:
        alts.append("0")
        if hi == 0:
            return alts
        lo = 1
    full_from: int | None = None  # first digit count of a run of complete digit-count blocks
    full_to = 0
    for length in range(len(str(lo)), len(str(hi)) + 1):
        block_lo, block_hi = 10 ** (length - 1), 10**length - 1
        seg_lo, seg_hi = max(lo, block_lo), min(hi, block_hi)
        if (seg_lo, seg_hi) == (block_lo, block_hi):
            if full_from is None:
                full_from = length
            full_to = length
            continue
        if full_from is not None:
            alts.append(_full_blocks(full_from, full_to))
            full_from = None
        alts.extend(_same_length(str(seg_lo), str(seg_hi)))
    if full_from is not None:
        alts.append(_full_blocks(full_from, full_to))
    return alts


def _full_blocks(first_len: int, last_len: int) -> str:
    """Every number with ``first_len`` .. ``last_len`` digits (no leading zero)."""
    a, b = first_len - 1, last_len - 1
    if b == 0:
        return "[1-9]"
    tail = _digits(a) if a == b else f"{_DIGIT}{{{a},{b}}}"
    return "[1-9]" + tail


def int_range_regex(lo: int, hi: int) -> str:
    """A regex matching exactly the canonical decimal forms of the integers ``lo..hi``.

    Canonical means: no leading zeros, no ``+``, no ``-0``. Works for any integers, negative
    or huge.

    Args:
        lo: the smallest integer (inclusive).
        hi: the largest integer (inclusive).

    Returns:
        The regex, for example ``(?:0|[1-9][0-9]{0,2}|1000)`` for ``0..1000``.

    Raises:
        ValueError: if ``lo > hi``.
    """
    return _int_range_alts_regex(lo, hi)


def _int_range_alts(lo: int, hi: int) -> list[str]:
    if lo > hi:
        raise ValueError(f"empty integer range {lo}..{hi}")
    alts: list[str] = []
    if lo < 0:
        neg_hi = -lo
        neg_lo = max(1, -hi)
        alts.append("-" + _join(_nonnegative(neg_lo, neg_hi)))
    if hi >= 0:
        alts.extend(_nonnegative(max(lo, 0), hi))
    return alts


def _int_range_alts_regex(lo: int, hi: int) -> str:
    alts = _int_range_alts(lo, hi)
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def int_range_pattern(lo: int, hi: int) -> Pattern:
    """[`int_range_regex`][docvlm.decoding.int_range_regex] with its length bounds."""
    width = max(len(str(lo)), len(str(hi)))
    alts = _int_range_alts(lo, hi)
    return Pattern(_int_range_alts_regex(lo, hi), width, width, atomic=len(alts) > 1 or _is_atom(alts[0]))


def _is_atom(regex: str) -> bool:
    return len(regex) == 1 or (regex.startswith("[") and regex.endswith("]") and regex.count("[") == 1)


# ---------------------------------------------------------------------------------------------
# Fixed-point decimal ranges
# ---------------------------------------------------------------------------------------------


def _fraction(a: int, b: int, decimals: int) -> str | None:
    """A regex for fraction digit strings ``F`` (1..decimals digits) whose value, padded with
    zeros to ``decimals`` digits, lies in ``a..b``. ``None`` if there is none."""
    if decimals == 0:
        return None
    if (a, b) == (0, 10**decimals - 1):
        return f"{_DIGIT}{{1,{decimals}}}" if decimals > 1 else _DIGIT
    if (a, b) == (0, 0):
        return f"0{{1,{decimals}}}" if decimals > 1 else "0"
    alts: list[str] = []
    for length in range(1, decimals + 1):
        scale = 10 ** (decimals - length)
        f_lo = -(-a // scale)
        f_hi = b // scale
        if f_lo > f_hi:
            continue
        alts.extend(_same_length(str(f_lo).zfill(length), str(f_hi).zfill(length)))
    if not alts:
        return None
    return _join(alts)


def _fixed_nonnegative(lo: int, hi: int, decimals: int) -> list[str]:
    """Alternatives for decimals ``I`` or ``I.F`` (``F`` of 1..decimals digits) whose value
    times ``10**decimals`` is in ``lo..hi`` (``0 <= lo <= hi``)."""
    unit = 10**decimals
    i_lo, f_lo = divmod(lo, unit)
    i_hi, f_hi = divmod(hi, unit)
    alts: list[str] = []

    def with_fraction(int_regex: str, a: int, b: int) -> None:
        frac = _fraction(a, b, decimals)
        if frac is None:
            if a == 0:
                alts.append(int_regex)
            return
        if a == 0:
            alts.append(f"{int_regex}(?:\\.{frac})?")
        else:
            alts.append(f"{int_regex}\\.{frac}")

    if i_lo == i_hi:
        with_fraction(str(i_lo), f_lo, f_hi)
        return alts
    with_fraction(str(i_lo), f_lo, unit - 1)
    if i_lo + 1 <= i_hi - 1:
        with_fraction(_int_range_alts_regex(i_lo + 1, i_hi - 1), 0, unit - 1)
    with_fraction(str(i_hi), 0, f_hi)
    return alts


def _fixed_str(k: int, decimals: int) -> str:
    sign = "-" if k < 0 else ""
    i, f = divmod(abs(k), 10**decimals)
    return f"{sign}{i}.{str(f).zfill(decimals)}" if decimals else f"{sign}{i}"


def _bound_to_fixed(value: float | Decimal, decimals: int, *, lower: bool, exclusive: bool) -> int:
    """The tightest fixed-point integer ``k`` such that every decimal with value ``k/10**decimals``
    (or beyond, towards the inside of the range) satisfies the bound as a Python float."""
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    scaled = exact.scaleb(decimals)
    if lower:
        k = math.ceil(scaled)
        if exclusive and k == scaled:
            k += 1
    else:
        k = math.floor(scaled)
        if exclusive and k == scaled:
            k -= 1
    # parsing decimal text rounds to the nearest float; nudge inward until that float obeys the bound
    fvalue = float(value)
    for _ in range(1000):
        parsed = float(_fixed_str(k, decimals))
        ok = (
            (parsed > fvalue if exclusive else parsed >= fvalue)
            if lower
            else (parsed < fvalue if exclusive else parsed <= fvalue)
        )
        if ok:
            return k
        k = k + 1 if lower else k - 1
    raise ValueError(f"cannot represent the bound {value} with {decimals} decimals")


def float_range_regex(
    lo: float | Decimal,
    hi: float | Decimal,
    *,
    decimals: int,
    lo_exclusive: bool = False,
    hi_exclusive: bool = False,
) -> str:
    """A regex for decimal numbers in a range, with at most ``decimals`` fraction digits.

    Matches ``I`` and ``I.F`` where ``I`` is a canonical integer (optionally ``-``, never ``-0``)
    and ``F`` has 1..``decimals`` digits; no exponent. Every match, parsed as a Python float,
    satisfies the bounds.

    Args:
        lo: the lower bound.
        hi: the upper bound.
        decimals: the most fraction digits.
        lo_exclusive: whether ``lo`` itself is excluded.
        hi_exclusive: whether ``hi`` itself is excluded.

    Returns:
        The regex, e.g. ``(?:0(?:\\.[0-9]{1,4})?|1(?:\\.0{1,4})?)`` for ``0..1`` with 4 decimals.

    Raises:
        ValueError: if no number with that many decimals lies in the range.
    """
    return float_range_pattern(lo, hi, decimals=decimals, lo_exclusive=lo_exclusive, hi_exclusive=hi_exclusive).regex


def float_range_pattern(
    lo: float | Decimal,
    hi: float | Decimal,
    *,
    decimals: int,
    lo_exclusive: bool = False,
    hi_exclusive: bool = False,
) -> Pattern:
    """[`float_range_regex`][docvlm.decoding.float_range_regex] with its length bounds."""
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    k_lo = _bound_to_fixed(lo, decimals, lower=True, exclusive=lo_exclusive)
    k_hi = _bound_to_fixed(hi, decimals, lower=False, exclusive=hi_exclusive)
    if k_lo > k_hi:
        raise ValueError(f"no number with {decimals} decimals lies between {lo} and {hi}")
    alts: list[str] = []
    if k_lo < 0:
        neg = _fixed_nonnegative(max(1, -k_hi), -k_lo, decimals)
        alts.append("-" + _join(neg))
    if k_hi >= 0:
        alts.extend(_fixed_nonnegative(max(k_lo, 0), k_hi, decimals))
    unit = 10**decimals
    widths = []  # the widest integer part on each side (a sign on the negative one); every one can take all decimals
    if k_lo < 0:
        widths.append(1 + len(str(-k_lo // unit)))
    if k_hi >= 0:
        widths.append(len(str(k_hi // unit)))
    width = max(widths) + (decimals + 1 if decimals else 0)
    regex = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return Pattern(regex, width, width, atomic=len(alts) > 1 or _is_atom(regex))
