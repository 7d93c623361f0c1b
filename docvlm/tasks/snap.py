"""Snapping: tighten a model's rough box around text to the exact glyph boxes of the text layer.

A vision model writes boxes in a coarse convention (0..1000 of the image, loc tokens, two-decimal
fractions) and rarely hugs the glyphs. When the page has a text layer (or OCR words), the words the box
mostly covers say where the text really is: [`snap_to_words`][docvlm.tasks.snap.snap_to_words] replaces the box by the union of those
words' boxes.

Snapping is for text targets. A box around a picture, a stamp or a signature that happens to contain a
few words would shrink onto those words; ask with ``snap=False`` for such targets.
"""

from __future__ import annotations

import numpy as np

from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox, Space
from docvlm.types.text import WordList

__all__ = ["snap_to_words"]


def snap_to_words(box: BoundingBox, words: WordList, *, min_overlap: float = 0.5) -> BoundingBox:
    """``box`` tightened to the union of the words it covers, in page space.

    A word counts when at least ``min_overlap`` of its area lies inside ``box`` (a word of zero area
    counts when it lies inside). The result is the smallest box around the counted words, so it may
    reach a little outside ``box`` (the rest of a word that is mostly inside) and drop the empty margin
    a model leaves around text. When no word counts, ``box`` comes back unchanged.

    >>> words = WordList([(10, 10, 30, 20, "145.78", 0, 0, 0), (40, 10, 60, 20, "EUR", 0, 0, 1)], page=0)
    >>> snap_to_words(BoundingBox(x0=5, y0=6, x1=33, y1=25), words).xyxy
    (10.0, 10.0, 30.0, 20.0)

    Args:
        box: a box in page space (where words are).
        words: the page's words (``page.words()``).
        min_overlap: the fraction of a word's area that must lie inside ``box``, in ``(0, 1]``.

    Returns:
        The snapped box in page space (a copy of ``box`` when nothing is snapped).

    Raises:
        UsageError: ``box`` is not in page space, or ``min_overlap`` is outside ``(0, 1]``.
    """
    if box.space is not Space.PAGE:
        raise UsageError(
            f"snapping needs a box in page space (where the words are), got {box.space.value}",
            hint="convert it with box.to('page', page_image.frame)",
        )
    if not 0 < min_overlap <= 1:
        raise UsageError(f"min_overlap must be in (0, 1], got {min_overlap}")
    if len(words) == 0:
        return box
    xyxy = words.xyxy
    iw = np.clip(np.minimum(xyxy[:, 2], box.x1) - np.maximum(xyxy[:, 0], box.x0), 0, None)
    ih = np.clip(np.minimum(xyxy[:, 3], box.y1) - np.maximum(xyxy[:, 1], box.y0), 0, None)
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    inside = (
        (xyxy[:, 0] >= box.x0) & (xyxy[:, 1] >= box.y0) & (xyxy[:, 2] <= box.x1) & (xyxy[:, 3] <= box.y1)
    )
    positive = area > 0
    # a tiny tolerance so that a word exactly at the threshold counts despite float rounding
    share = np.divide(iw * ih, area, out=np.zeros_like(area), where=positive)
    keep = np.where(positive, share >= min_overlap - 1e-9, inside)
    if not keep.any():
        return box
    chosen = xyxy[keep]
    return box.model_copy(
        update={
            "x0": float(chosen[:, 0].min()),
            "y0": float(chosen[:, 1].min()),
            "x1": float(chosen[:, 2].max()),
            "y1": float(chosen[:, 3].max()),
        }
    )
