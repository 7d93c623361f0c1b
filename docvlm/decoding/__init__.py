"""Constrained decoding: turn an output type into a regex with a length bound, and that into a token mask.

The pieces, lightest first::

    compile_output_type(tp) -> CompiledConstraint       pure Python: regex, max length, parse()
    schema_to_type(json_schema) -> tp                   a client's JSON schema as a type to compile
    get_index(regex, vocabulary) -> outlines_core.Index  cached in memory and on disk
    logits_processor(constraint, tokenizer)              for transformers' model.generate

docvlm compiles its own regex instead of using outlines-core's JSON-schema path, which drops
integer/number bounds and allows free whitespace. The regex is built so that every full match
validates. When the constraint is ``exact`` no match is longer than ``max_chars`` characters
(``max_bytes`` UTF-8 bytes); otherwise those are a budget (see below). Generate with
``max_new_tokens=constraint.max_new_tokens``.

What the output looks like:

* JSON is compact: no whitespace, separators ``,`` and ``:``, every key present in declaration
  order (aliases used), ``null`` only where the type allows ``None``.
* ``int``: canonical decimals (no leading zeros, no ``-0``) inside the bounds, exactly.
  ``float``: ``123`` or ``123.4567``, at most ``Limits.float_decimals`` decimals, no exponent,
  inside the bounds exactly as Python floats compare.
* strings: any character but ``"``, ``\\`` and control characters, plus the escapes
  ``\\" \\\\ \\/ \\b \\f \\n \\r \\t`` (no ``\\uXXXX``); ``pattern`` constraints are kept
  when they use the portable subset (see [`Regex`][docvlm.decoding.Regex]). One exception: a string with a
  ``max_length`` over 8 at the very start of the output (a top-level
  ``Annotated[str, Field(max_length=40)] | None``) has no ``\\"``, because outlines-core's
  automaton for it would grow exponentially.
* ``date``, ``datetime``, ``time`` and ``UUID``: JSON strings under exact regexes (the days of each
  month and leap years; times always with an offset; lower-case UUIDs), so they always validate.
* explicit bounds (``max_length``, ``le``, ``conlist``, ...) are exact: part of the regex.
  A ``str`` or ``list`` without ``max_length`` is open in the regex (``"(?:char)*"``,
  ``[item(?:,item)*]``, so the token index stays small) and *budgeted* at its [`Limits`][docvlm.decoding.Limits]
  default (strings 256 characters, lists 64 items) in ``max_chars`` / ``max_new_tokens``; such a
  constraint has ``exact == False``, and an output that runs past the budget is cut off and
  refused by ``parse`` with a [`ConstraintError`][docvlm.errors.ConstraintError] that says so. Numbers are
  always exact (open ints get 18 digits). ``Limits.max_free_chars`` refuses explicit bounds whose
  token index would be huge; ``Limits.max_states`` and ``Limits.max_depth`` refuse types whose
  automaton would be huge (lists of lists of ... with sizes) and stop compiling them early;
  [`compile_budget`][docvlm.decoding.compile_budget] bounds the time of compiling and lets another thread cancel it.
* top level: ``Literal`` / ``Enum`` are bare choices (``yes``, not ``"yes"``), ``str`` is free
  text (no mask needed), [`Regex`][docvlm.decoding.Regex] is its pattern; everything else is JSON.
  [`CompiledConstraint.parse`][docvlm.decoding.CompiledConstraint.parse] turns the text back into the value.

Not expressible as a regex, so checked only by ``parse`` (which raises
[`ConstraintError`][docvlm.errors.ConstraintError]): cross-field rules (``x0 <= x1``; write them as model
validators, or check after decoding) and custom validators. Not supported at all: ``dict``,
``set``, ``Any``, recursive models, ``multiple_of``.

Importing this package imports neither torch, transformers nor outlines.
"""

from __future__ import annotations

from ._budget import check_budget, compile_budget
from ._compile import CompiledConstraint, Limits, OutputKind, Regex, compile_output_type
from ._formats import FORMAT_PATTERNS
from ._gbnf import regex_to_gbnf
from ._generate import logits_processor
from ._regex import float_range_regex, int_range_regex
from ._schema import schema_to_type
from .cache import TokenizerVocabulary, cache_dir, clear_memory_cache, get_index, vocabulary_from_tokenizer

__all__ = [
    "FORMAT_PATTERNS",
    "CompiledConstraint",
    "Limits",
    "OutputKind",
    "Regex",
    "TokenizerVocabulary",
    "cache_dir",
    "check_budget",
    "clear_memory_cache",
    "compile_budget",
    "compile_output_type",
    "float_range_regex",
    "get_index",
    "int_range_regex",
    "logits_processor",
    "regex_to_gbnf",
    "schema_to_type",
    "vocabulary_from_tokenizer",
]
