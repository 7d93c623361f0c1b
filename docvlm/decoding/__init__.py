"""Constrained decoding: turn an output type into a bounded regex, and that into a token mask.

The pieces, lightest first::

    compile_output_type(tp) -> CompiledConstraint       pure Python: regex, max length, parse()
    get_index(regex, vocabulary) -> outlines_core.Index  cached in memory and on disk
    logits_processor(constraint, tokenizer)              for transformers' model.generate

docvlm compiles its own regex instead of using outlines-core's JSON-schema path, which drops
integer/number bounds and leaves whitespace, strings and lists unbounded. The regex is built so
that every full match validates and no match is longer than ``max_chars`` characters
(``max_bytes`` UTF-8 bytes; generate with ``max_new_tokens=constraint.max_new_tokens``).

What the output looks like:

* JSON is compact: no whitespace, separators ``,`` and ``:``, every key present in declaration
  order (aliases used), ``null`` only where the type allows ``None``.
* ``int``: canonical decimals (no leading zeros, no ``-0``) inside the bounds, exactly.
  ``float``: ``123`` or ``123.4567``, at most ``Limits.float_decimals`` decimals, no exponent,
  inside the bounds exactly as Python floats compare.
* strings: any character but ``"``, ``\\`` and control characters, plus the escapes
  ``\\" \\\\ \\/ \\b \\f \\n \\r \\t`` (no ``\\uXXXX``); ``pattern`` constraints are kept
  when they use the portable subset (see :class:`Regex`).
* open sizes get :class:`Limits` defaults (strings 128 characters, lists 32 items, ints 18
  digits); a budget (``Limits.max_free_chars``) refuses types whose token index would be huge.
* top level: ``Literal`` / ``Enum`` are bare choices (``yes``, not ``"yes"``), ``str`` is free
  text (no mask needed), :class:`Regex` is its pattern; everything else is JSON.
  :meth:`CompiledConstraint.parse` turns the text back into the value.

Not expressible as a regex, so checked only by ``parse`` (which raises
:class:`~docvlm.errors.ConstraintError`): cross-field rules (``x0 <= x1``; write them as model
validators, or check after decoding) and custom validators. Not supported at all: ``dict``,
``set``, ``Any``, recursive models, ``multiple_of``.

Importing this package imports neither torch, transformers nor outlines.
"""

from __future__ import annotations

from ._compile import CompiledConstraint, Limits, OutputKind, Regex, compile_output_type
from ._generate import logits_processor
from ._regex import float_range_regex, int_range_regex
from .cache import TokenizerVocabulary, cache_dir, clear_memory_cache, get_index, vocabulary_from_tokenizer

__all__ = [
    "CompiledConstraint",
    "Limits",
    "OutputKind",
    "Regex",
    "TokenizerVocabulary",
    "cache_dir",
    "clear_memory_cache",
    "compile_output_type",
    "float_range_regex",
    "get_index",
    "int_range_regex",
    "logits_processor",
    "vocabulary_from_tokenizer",
]
