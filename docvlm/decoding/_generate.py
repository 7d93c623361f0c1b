"""The light front of the transformers logits processor (torch is imported on first call)."""

from __future__ import annotations

from typing import Any

from docvlm.errors import UsageError

from ._compile import CompiledConstraint
from .cache import get_index, vocabulary_from_tokenizer

__all__ = ["logits_processor"]


def logits_processor(constraint: CompiledConstraint[Any] | str, tokenizer: Any, *, disk: bool = True) -> Any:
    """A logits processor for ``model.generate`` that enforces a constraint.

    Use it with ``max_new_tokens=constraint.max_new_tokens`` and decode the new tokens with
    ``skip_special_tokens=True`` before [`CompiledConstraint.parse`][docvlm.decoding.CompiledConstraint.parse]::

        c = compile_output_type(list[Box])
        out = model.generate(**inputs, logits_processor=[logits_processor(c, tok)],
                             max_new_tokens=c.max_new_tokens)
        boxes = c.parse(tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))

    The index is taken from [`docvlm.decoding.get_index`][docvlm.decoding.get_index] (memory, then disk cache).

    Args:
        constraint: a compiled constraint or a bare regex.
        tokenizer: the model's transformers tokenizer (its EOS ends generation).
        disk: use the disk cache for the index.

    Returns:
        A ``transformers.LogitsProcessor``; one instance can serve several ``generate`` calls,
        but not concurrent ones.

    Raises:
        UsageError: for free text (``constraint.free_text``): it needs no mask, only
            ``max_new_tokens``, and its index would be needlessly huge.
        ConstraintError: if outlines-core cannot build an index for the regex.
    """
    try:
        from ._processor import RegexLogitsProcessor
    except ImportError as exc:
        from docvlm._optional import missing

        raise missing(exc, purpose="constrained decoding with a local model", default="torch", extra="local") from exc

    if isinstance(constraint, CompiledConstraint) and constraint.free_text:
        raise UsageError(
            "free text needs no logits processor",
            hint="generate with max_new_tokens=constraint.max_new_tokens and call constraint.parse()",
        )

    vocabulary = vocabulary_from_tokenizer(tokenizer)
    index = get_index(constraint, vocabulary, disk=disk)
    return RegexLogitsProcessor(index, vocabulary.size)
