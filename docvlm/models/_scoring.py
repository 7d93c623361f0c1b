"""Shared pieces of [`score`][docvlm.models.base.Model.score]: where the continuation's tokens start, and the fake scores.

Pure Python: no torch here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence

__all__ = ["continuation_tokens", "seeded_score"]


def continuation_tokens(encode: Callable[[str], list[int]], decode: Callable[[Sequence[int]], str],
                        prefix_text: str, prefix_ids: Sequence[int], continuation: str) -> list[int]:
    """The tokens a model generates for ``continuation`` right after the tokens ``prefix_ids`` of ``prefix_text``.

    ``encode`` tokenizes like the prompt was tokenized (same special tokens). When the tokenizer splits
    ``prefix_text + continuation`` so that the prefix keeps its own tokens, the rest is the continuation's
    tokens (the split a model learns). When a token would straddle the boundary (a merge of the prefix's last
    characters with the continuation's first ones), the prefix's tokens are fixed (they are what the model was
    given), so the continuation is tokenized on its own: with a newline before it and the newline's tokens
    removed, so that tokenizers which add a leading space or a start token to a text do not change it.
    """
    if not continuation:
        return []
    joint = encode(prefix_text + continuation)
    n = len(prefix_ids)
    if len(joint) > n and list(joint[:n]) == list(prefix_ids):
        return list(joint[n:])
    anchor = encode("\n")
    alone = encode("\n" + continuation)
    if alone[:len(anchor)] == anchor and len(alone) > len(anchor):
        ids = alone[len(anchor):]
        if decode(ids) == continuation:
            return ids
    return [t for t in encode(continuation) if t not in set(encode(""))]


def seeded_score(seed: int, prompt_text: str, continuation: str) -> float:
    """A deterministic pseudo log-probability for the fakes: a function of (seed, prompt, continuation) only,
    negative, and lower for longer continuations (like a real sum of log-probabilities)."""
    if not continuation:
        return 0.0
    digest = hashlib.sha256(f"{seed}\x00{prompt_text}\x00{continuation}".encode()).digest()
    unit = int.from_bytes(digest[:8], "little") / 2**64  # uniform in [0, 1)
    return -(0.5 + 0.1 * len(continuation)) * (1.0 + 3.0 * unit) - math.log1p(len(continuation))
