"""String distances shared by tasks (matching a model's value to printed text) and eval (character error rates)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

__all__ = ["levenshtein"]

T = TypeVar("T", bound=Hashable)


def levenshtein(a: Sequence[T] | str, b: Sequence[T] | str) -> int:
    """The edit distance (insertions, deletions, substitutions, each costing 1) between two sequences.

    Works on strings (characters) and on any sequences of hashable items (e.g. lists of words). Bit-parallel:
    one pass over the longer sequence with the shorter one as a bit vector, so ``O(n * ceil(m / w))``.

    >>> levenshtein("kitten", "sitting"), levenshtein(["a", "b"], ["b"])
    (3, 1)
    """
    # common prefix and suffix cost nothing
    start, end_a, end_b = 0, len(a), len(b)
    while start < end_a and start < end_b and a[start] == b[start]:
        start += 1
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    x, y = a[start:end_a], b[start:end_b]
    if len(x) < len(y):
        x, y = y, x
    m = len(y)
    if m == 0:
        return len(x)
    peq: dict[Any, int] = {}
    for i, item in enumerate(y):
        peq[item] = peq.get(item, 0) | (1 << i)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = full, 0, m
    for item in x:
        eq = peq.get(item, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score
