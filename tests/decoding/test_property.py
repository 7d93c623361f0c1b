"""The central promise: every string that fully matches a compiled regex parses and validates,
and, when the constraint is exact, is no longer than ``max_chars`` (``max_bytes`` in UTF-8)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from docvlm.decoding import OutputKind, compile_output_type

from .schemas import JSON_TYPES, OTHER_TYPES

# Models never emit lone surrogates (they decode bytes), and pydantic cannot take them.
ALPHABET = st.characters(exclude_categories=["Cs"])
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("name", sorted(JSON_TYPES))
def test_every_json_match_validates(name: str) -> None:
    tp = JSON_TYPES[name]
    c = compile_output_type(tp)
    assert c.kind is OutputKind.JSON
    adapter = TypeAdapter(tp)

    @SETTINGS
    @given(st.from_regex(c.regex, fullmatch=True, alphabet=ALPHABET))
    def check(text: str) -> None:
        value = c.parse(text)
        assert adapter.validate_json(text) == value
        if c.exact:  # budgeted sizes are open in the regex: only exact constraints bound every match
            assert len(text) <= c.max_chars
            assert len(text.encode()) <= c.max_bytes < c.max_new_tokens
        json.loads(text)  # plain JSON too
        outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
        assert not re.search(r"\s", outside_strings), text  # compact: no whitespace outside string literals

    check()


@pytest.mark.parametrize("name", sorted(OTHER_TYPES))
def test_every_plain_match_parses(name: str) -> None:
    tp = OTHER_TYPES[name]
    c = compile_output_type(tp)
    assert c.kind is not OutputKind.JSON
    assert c.json_schema is None
    assert c.exact  # top-level text, choices and user patterns are always bounded

    @SETTINGS
    @given(st.from_regex(c.regex, fullmatch=True, alphabet=ALPHABET))
    def check(text: str) -> None:
        value: Any = c.parse(text)
        if c.kind is OutputKind.CHOICE:
            assert c.choices is not None and text in c.choices
            assert getattr(value, "value", value) == text
        else:
            assert value == text
        assert len(text) <= c.max_chars
        assert len(text.encode()) <= c.max_bytes

    check()
