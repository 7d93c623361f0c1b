"""Words a caller already has (SROIE's line boxes, Textract, Azure, an earlier OCR run), used instead of the text
layer and OCR: ``dv.open(path, words={0: [(text, (x0, y0, x1, y1)), ...]})``.

Each item is one printed run of text, a word or a whole line, with its box in page units (pixels for an image,
PDF points from the top-left of the unrotated page for a PDF). An item whose text has several words is split
into words along its box in proportion to their lengths, so spans of it (a total after its label) get their own
boxes. Items side by side at the same height form one text line (word-level OCR output reads as lines too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox
from docvlm.types.text import Word, WordList, WordRow

__all__ = ["GivenWords", "given_words"]

#: What ``dv.open(..., words=...)`` takes: page index -> items, each ``(text, box)`` (box: ``(x0, y0, x1, y1)``, a
#: quadrilateral of 8 numbers or 4 points, or a BoundingBox), a [`Word`][docvlm.types.text.Word], or
#: ``{"text": ..., "box": ...}``.
GivenWords = Mapping[int, Sequence[Any]]

_HINT = 'give each item as (text, (x0, y0, x1, y1)) in page units, e.g. ("TOTAL 9.00", (120, 610, 260, 628))'


def _box(value: Any, where: str, source: str | None) -> tuple[float, float, float, float]:
    if isinstance(value, BoundingBox):
        return value.xyxy
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        try:  # four (x, y) points
            numbers = [float(c) for point in value for c in point]
        except (TypeError, ValueError):
            raise UsageError(f"{where}: the box {value!r} is not numbers", source=source, hint=_HINT) from None
    if len(numbers) == 8:  # a quadrilateral: its enclosing box
        xs, ys = numbers[0::2], numbers[1::2]
        numbers = [min(xs), min(ys), max(xs), max(ys)]
    if len(numbers) != 4:
        raise UsageError(f"{where}: a box has 4 numbers (x0, y0, x1, y1) or 8 (a quadrilateral), got {len(numbers)}",
                         source=source, hint=_HINT)
    if not all(math.isfinite(v) for v in numbers):
        raise UsageError(f"{where}: the box {tuple(numbers)} is not finite", source=source, hint=_HINT)
    x0, y0, x1, y1 = numbers
    if x1 < x0 or y1 < y0:
        raise UsageError(f"{where}: the box {tuple(numbers)} has x1 < x0 or y1 < y0", source=source, hint=_HINT)
    return x0, y0, x1, y1


def _item(item: Any, where: str, source: str | None) -> tuple[str, tuple[float, float, float, float]]:
    if isinstance(item, Word):
        return item.text, item.box.xyxy
    if isinstance(item, Mapping):
        if "text" not in item or "box" not in item:
            raise UsageError(f"{where}: a word given as a mapping needs 'text' and 'box'", source=source, hint=_HINT)
        text, box = item["text"], item["box"]
    else:
        try:
            text, box = item
        except (TypeError, ValueError):
            raise UsageError(f"{where}: expected (text, box), got {item!r:.60}", source=source, hint=_HINT) from None
    if not isinstance(text, str):
        raise UsageError(f"{where}: the text must be a string, got {type(text).__name__}", source=source, hint=_HINT)
    return text, _box(box, where, source)


def given_words(items: Sequence[Any], page: int, *, source: str | None = None) -> WordList:
    """The words of one page from caller-given items (see the module docs), in the given order.

    Raises:
        UsageError: an item is not ``(text, box)``-shaped, or its box is not 4 finite, ordered numbers.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise UsageError(f"words for page {page} must be a list of (text, box) items, got {type(items).__name__}",
                         source=source, hint=_HINT)
    parsed = [_item(raw, f"words[{page}][{n}]", source) for n, raw in enumerate(items)]
    parsed = [(text, box) for text, box in parsed if text.split()]
    # text lines: items whose vertical extents overlap by more than half the smaller height
    lines: list[list[tuple[str, tuple[float, float, float, float]]]] = []
    extents: list[tuple[float, float]] = []
    for text, box in sorted(parsed, key=lambda p: (p[1][1] + p[1][3]) / 2):
        for k, (top, bottom) in enumerate(extents):
            if min(bottom, box[3]) - max(top, box[1]) > 0.5 * min(bottom - top, box[3] - box[1]):
                lines[k].append((text, box))
                extents[k] = (min(top, box[1]), max(bottom, box[3]))
                break
        else:
            lines.append([(text, box)])
            extents.append((box[1], box[3]))
    rows: list[WordRow] = []
    for n, line in enumerate(sorted(lines, key=lambda ln: min(b[1] for _, b in ln))):
        k = 0
        for text, (x0, y0, x1, y1) in sorted(line, key=lambda p: p[1][0]):
            tokens = text.split()
            total = len(" ".join(tokens))
            start = 0
            for token in tokens:
                a, b = start / total, (start + len(token)) / total
                rows.append((x0 + (x1 - x0) * a, y0, x0 + (x1 - x0) * b, y1, token, 0, n, k))
                start += len(token) + 1
                k += 1
    return WordList(rows, page)
