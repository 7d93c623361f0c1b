"""Key-value layout analysis: which printed label each value belongs to.

A value's *key* is the label printed just left of it on the same visual line (``Invoice No.:  A-167182``,
``Birth date   01/04/1983``) or above it in the same column (``Bill to:`` over a name and address block, a small
label over a form box). The key is one of the features the learned ranker (`docvlm.tasks._rank`) scores a
candidate value by: how similar the key is to a field's name, and which words it prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from docvlm.tasks.text import Line, Segment

__all__ = ["Key", "link_keys", "tokens"]

_STOP = {"of", "the", "a", "an", "to", "for", "and", "or", "in", "on", "at", "by"}


def tokens(text: str) -> list[str]:
    """Lower-case word tokens of a label, without digits-only tokens (``Tax (10%):`` -> ``["tax"]``)."""
    out = []
    for t in re.findall(r"[a-z0-9#]+", text.lower().replace("_", " ")):
        if not t.isdigit():
            out.append(t)
    return out


@dataclass(frozen=True)
class Key:
    """The label a value was printed with: its text and how far it is (0: left on the same line, n: n lines
    above in the same column)."""

    text: str
    distance: int


def _label_like(label: Segment, value: Segment, vocabulary: set[str] | None) -> bool:
    """``Invoice No.:``, or ``Birth date``: short, no digits, not in a bigger font than the value, and (given a
    vocabulary) naming something the caller looks for."""
    text = label.text.strip()
    if text.endswith(":"):
        return True
    return (not any(ch.isdigit() for ch in text) and 0 < len(text.split()) <= 4
            and label.box.height <= 1.25 * value.box.height
            and (vocabulary is None or bool(set(tokens(text)) & vocabulary)))


def link_keys(lines: Sequence[Line], page_widths: Mapping[int, float],
              vocabulary: set[str] | None = None) -> dict[int, Key]:
    """For every segment id, the key (label) it was printed with, when the layout shows one.

    First the labels left of values on the same line (``Policy #:  768-421820``); then, top to bottom, values
    under a label (``Bill to:`` over a name, a form's label over its box) or under a labelled value that heads
    a tight block (an address under a name). A label is never a value, and a label that labels its own line
    does not label the line below.

    Args:
        lines: the visual lines of one or more pages.
        page_widths: page index -> width, to tell a label from a far-away title on the same line.
        vocabulary: label words the caller looks for; a label without a colon must contain one (with ``None``
            any short, digit-free segment can be a label).
    """
    keys: dict[int, Key] = {}
    row_labels: set[int] = set()
    by_page: dict[int, list[Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    for page, page_lines in by_page.items():
        width = page_widths.get(page, 612.0)
        for line in page_lines:
            pairs = list(zip(line.segments, line.segments[1:], strict=False))
            for left, seg in reversed(pairs):  # right to left: in "Bill to:  Invoice No.  A-1" the middle is a label
                if _is_colon_label(seg) or seg.id in row_labels:
                    continue
                gap = seg.box.x0 - left.box.x1
                if gap <= (0.4 if _is_colon_label(left) else 0.25) * width and _label_like(left, seg, vocabulary):
                    keys[seg.id] = Key(left.text.strip(), 0)
                    row_labels.add(left.id)
        for li, line in enumerate(page_lines):
            for seg in line.segments:
                if seg.id in keys or seg.id in row_labels or _is_colon_label(seg):
                    continue
                key = _key_above(page_lines, li, seg, keys, row_labels, vocabulary)
                if key is not None:
                    keys[seg.id] = key
    return keys


def _is_colon_label(seg: Segment) -> bool:
    return seg.text.rstrip().endswith(":")


def _key_above(page_lines: Sequence[Line], li: int, seg: Segment, keys: Mapping[int, Key], row_labels: set[int],
               vocabulary: set[str] | None) -> Key | None:
    """The label above a value in the same column. Walks up through a tightly set block (a name over an
    address) to the label that heads it, or to a labelled value (``Customer:  Acme`` over ``1 Main St``), at
    most four lines up; a label directly above may sit a little further (a form's label over its box)."""
    current = seg
    steps = 0
    for above_line in reversed(page_lines[:li]):
        overlapping = [s for s in above_line.segments
                       if min(s.box.x1, current.box.x1) - max(s.box.x0, current.box.x0) > 0
                       and abs(s.box.x0 - current.box.x0) < 0.5 * max(current.box.width, 1.0)]
        height = max(current.box.height, 1.0)
        if not overlapping:  # a line of another column (a slightly rotated scan splits rows): look higher
            if current.box.y0 - above_line.box.y1 > 1.5 * height:
                return None
            continue
        above = overlapping[0]
        steps += 1
        gap = current.box.y0 - above.box.y1
        tight = gap <= 0.6 * height
        if gap > 1.5 * height or steps > 4:
            return None
        if above.id in row_labels:
            return None
        if above.id in keys:  # a labelled value: it heads this block, or it is another field's value
            return Key(keys[above.id].text, keys[above.id].distance + steps) if tight else None
        if _label_like(above, seg, vocabulary):
            return Key(above.text.strip(), steps)
        if not tight:
            return None
        current = above
    return None
