"""A transformers logits processor that masks every token the constraint's automaton forbids.

Imports torch and transformers at module level: import this module lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from outlines_core import Guide
from transformers import LogitsProcessor

from docvlm.errors import ConstraintError

__all__ = ["RegexLogitsProcessor"]


class RegexLogitsProcessor(LogitsProcessor):
    """Mask logits so that generation follows an ``outlines_core.Index``.

    One automaton (``Guide``) per batch row, advanced by the token each row sampled last. A new
    ``generate`` call is detected by the input length not growing by one, so one processor can be
    reused for several calls. After a row reaches an accepting state it may end with EOS.

    Args:
        index: the ``outlines_core.Index`` (from [`docvlm.decoding.get_index`][docvlm.decoding.get_index]).
        vocab_size: one more than the largest token id of the vocabulary behind ``index``.
    """

    def __init__(self, index: Any, vocab_size: int) -> None:
        self.index = index
        self.vocab_size = vocab_size
        self._guides: list[Any] = []
        self._last_len = -1

    def reset(self) -> None:
        """Forget the state of the current generation."""
        self._guides = []
        self._last_len = -1

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, width = scores.shape
        length = int(input_ids.shape[1])
        if len(self._guides) != batch or length != self._last_len + 1:
            self._guides = [Guide(self.index) for _ in range(batch)]
        else:
            last = input_ids[:, -1].tolist()
            for row, (guide, token) in enumerate(zip(self._guides, last, strict=True)):
                if guide.accepts_tokens([token]):
                    guide.advance(token, return_tokens=False)
                elif not guide.is_finished():
                    raise ConstraintError(
                        f"batch row {row} produced token {token}, which the constraint forbids",
                        hint="another logits processor or a forced token overrode the mask",
                    )
        self._last_len = length
        words = (max(width, self.vocab_size) + 31) // 32
        bits = torch.zeros((batch, words), dtype=torch.int32)
        for row, guide in enumerate(self._guides):
            guide.write_mask_into(bits[row].data_ptr(), words, 4)
        # unpack the bitmask with numpy: one vectorized pass, no torch intra-op threads to wake up (with 2 busy
        # cores torch's threaded unpack took tens of ms a step; numpy's unpackbits takes well under 1 ms)
        flat = np.unpackbits(bits.numpy().view(np.uint8), axis=1, bitorder="little")[:, :width]
        forbidden = torch.from_numpy(flat == 0)
        masked = scores.masked_fill(forbidden.to(scores.device), float("-inf"))
        return masked  # type: ignore[return-value]
