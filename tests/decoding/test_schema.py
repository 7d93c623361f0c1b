"""JSON schema -> type (``docvlm.decoding.schema_to_type``): what a server turns clients' schemas into."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
import uuid
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from docvlm.decoding import FORMAT_PATTERNS, Limits, compile_budget, compile_output_type, schema_to_type
from docvlm.errors import ConstraintError, UsageError
from docvlm.models.test import sample_regex


class Word(BaseModel):
    text: str = Field(min_length=1, max_length=12)
    conf: float = Field(ge=0, le=1)
    kind: Literal["word", "number"] = "word"


class Region(BaseModel):
    words: list[Word] = Field(max_length=3)
    box: tuple[int, int, int, int]
    note: str | None = Field(default=None, max_length=8, description="free")
    code: str = Field(alias="Code", pattern=r"^[A-Z]{2}-[0-9]{1,3}$")
    page: Annotated[int, Field(gt=-1, lt=10)]
    flag: bool
    nothing: None


@pytest.mark.parametrize("tp", [
    Word, Region, Annotated[list[Region], Field(max_length=2)], Annotated[list[Word], Field(min_length=1, max_length=2)],
    Literal["a", 1, None], Annotated[float, Field(ge=0, le=1)], bool, Word | Region | None,
], ids=repr)
def test_pydantic_schemas_round_trip_to_the_same_constraint(tp: Any) -> None:
    schema = TypeAdapter(tp).json_schema(by_alias=True)
    assert compile_output_type(schema_to_type(schema)).regex == compile_output_type(tp).regex


OBJECT = {
    "type": "object", "title": "Box",
    "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 10}, "class": {"type": "string", "maxLength": 3},
                   "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
    "required": ["x", "class"], "additionalProperties": False,
}


@pytest.mark.parametrize(("schema", "good", "bad"), [
    ({"type": "integer", "exclusiveMinimum": 0, "maximum": 5}, [1, 5], [0, 6]),
    ({"type": "number", "minimum": -1.5}, [-1.5, 3], [-2]),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc"], ["a", "abcd"]),
    ({"type": "string", "pattern": "^[0-9]{2}$"}, ["12"], ["1a"]),
    ({"type": ["string", "null"]}, ["x", None], [1]),
    ({"const": "only"}, ["only"], ["other"]),
    ({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, [1, True], ["1x"]),
    ({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False}, [[1, "a"]], [["a", 1]]),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}, [[1], [1, 2]], [[], [1, 2, 3]]),
    ({"type": "string", "nullable": True}, ["a", None], [3]),
    (OBJECT, [{"x": 0, "class": "abc"}, {"x": 10, "class": "", "tags": ["b"]}],
     [{"x": 11, "class": "a"}, {"x": 1}, {"x": 1, "class": "a", "tags": ["c"]}]),
    ({"$defs": {"P": {"type": "object", "properties": {"v": {"$ref": "#/$defs/V"}}, "required": ["v"]},
                "V": {"type": "integer", "maximum": 3}},
      "type": "array", "items": {"$ref": "#/$defs/P"}}, [[{"v": 3}]], [[{"v": 4}]]),
])
def test_converter_table(schema: dict[str, Any], good: list[Any], bad: list[Any]) -> None:
    adapter = TypeAdapter(schema_to_type(schema))
    for value in good:
        adapter.validate_python(value)
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
    compile_output_type(schema_to_type(schema))  # and docvlm can constrain it


def test_converted_objects_keep_names_and_order() -> None:
    tp = schema_to_type(OBJECT)
    assert tp.__name__ == "Box"
    assert list(tp.model_json_schema(by_alias=True)["properties"]) == ["x", "class", "tags"]
    value = tp.model_validate({"x": 1, "class": "c"})
    assert TypeAdapter(tp).dump_json(value, by_alias=True) == b'{"x":1,"class":"c","tags":null}'
    assert compile_output_type(tp).regex.startswith(r'\{"x":')
    assert schema_to_type(dict(OBJECT)) is tp  # equal schemas give the same type (cache, batching)


@pytest.mark.parametrize(("schema", "message"), [
    ({}, "empty schema"),
    ({"type": "object"}, "open-ended objects"),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
     "additionalProperties with a schema"),
    ({"type": "object", "properties": {}, "required": ["a"]}, "not among the properties"),
    ({"type": "string", "format": "uri"}, "format \"uri\" is not supported"),
    ({"type": "string", "format": "date", "maxLength": 10}, "together with minLength, maxLength or pattern"),
    ({"type": "integer", "multipleOf": 5}, "unsupported keyword 'multipleOf'"),
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "unsupported keyword 'uniqueItems'"),
    ({"type": "array"}, "needs an items schema"),
    ({"$ref": "https://example.com/s.json"}, "only local references"),
    ({"$ref": "#/$defs/Missing"}, "points nowhere"),
    ({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"},
     "recursive"),
    ({"allOf": [{"type": "integer"}, {"minimum": 1}]}, "exactly one"),
    ({"not": {"type": "integer"}}, "missing type"),
    ({"enum": [1.5]}, "not a string, integer, boolean or null"),
    ({"type": "integer", "maximum": "9"}, "finite number"),
    ({"type": "date"}, "unsupported or missing type"),
])
def test_converter_refuses(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match="JSON schema at #") as info:
        schema_to_type(schema)
    assert message in info.value.message


# ---------------------------------------------------------------------------------------------------
# formats: exact regexes, so every decoded value validates
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "good", "bad"), [
    ("date", ["2024-02-29", "2000-02-29", "1999-12-31", "2023-04-30"],
     ["2023-02-29", "1900-02-29", "2023-04-31", "2023-13-01", "2023-00-10", "0999-01-01", "2023-1-01"]),
    ("date-time", ["2024-02-29T23:59:59Z", "2024-01-01T00:00:00.123456+05:30"],
     ["2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00.1234567Z"]),
    ("time", ["00:00:00Z", "23:59:59.5-08:00"], ["24:00:00Z", "12:60:00Z", "12:00:00"]),
    ("uuid", ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000", "123E4567-E89B-12D3-A456-426614174000"]),
    ("email", ["a.b@example.com", "x_1+tag@mail.co.uk"], ["a..b@example.com", "a@b", "a@localhost", "a@host.test", "@x.com"]),
    ("ipv4", ["0.0.0.0", "255.255.255.255", "10.0.12.1"], ["256.1.1.1", "1.2.3", "01.2.3.4"]),
])
def test_format_patterns_are_exact(fmt: str, good: list[str], bad: list[str]) -> None:
    pattern = re.compile(FORMAT_PATTERNS[fmt])
    assert [g for g in good if not pattern.fullmatch(g)] == []
    assert [b for b in bad if pattern.fullmatch(b)] == []


@pytest.mark.parametrize(("fmt", "tp"), [("date", dt.date), ("date-time", dt.datetime), ("time", dt.time), ("uuid", uuid.UUID)])
def test_sampled_format_values_always_validate_as_their_python_type(fmt: str, tp: Any) -> None:
    converted = schema_to_type({"type": "string", "format": fmt})
    assert converted is tp
    constraint = compile_output_type(converted)
    reference = uuid.UUID if tp is uuid.UUID else tp.fromisoformat  # Python's own reader, not pydantic's
    rng = random.Random(0)
    for _ in range(300):
        text = sample_regex(constraint.regex, rng, extra_repeats=3)
        value = constraint.parse(text)  # pydantic validation: raises if the regex let an invalid value through
        assert type(value) is tp and value == reference(text.strip('"'))


def test_sampled_emails_pass_email_validator() -> None:
    validator = pytest.importorskip("email_validator")
    constraint = compile_output_type(schema_to_type({"type": "string", "format": "email"}))
    rng = random.Random(1)
    for _ in range(300):
        address = constraint.parse(sample_regex(constraint.regex, rng, extra_repeats=4))
        validator.validate_email(address, check_deliverability=False)


def test_pydantic_models_with_dates_uuids_and_emails_round_trip() -> None:
    pytest.importorskip("email_validator")
    from pydantic import EmailStr

    class Person(BaseModel):
        born: dt.date
        seen: dt.datetime | None
        id: uuid.UUID
        mail: EmailStr

    tp = schema_to_type(TypeAdapter(Person).json_schema())
    constraint = compile_output_type(tp)
    value = constraint.parse(sample_regex(constraint.regex, random.Random(2)))
    person = Person.model_validate(TypeAdapter(tp).dump_python(value, by_alias=True))
    assert isinstance(person.born, dt.date) and isinstance(person.id, uuid.UUID) and "@" in person.mail


def test_the_compiler_writes_dates_and_refuses_bounds_on_them() -> None:
    assert compile_output_type(dt.date).parse('"2024-02-29"') == dt.date(2024, 2, 29)
    assert not compile_output_type(dt.date).matches('"2023-02-29"')
    with pytest.raises(ConstraintError, match="bounds on a date value"):
        compile_output_type(Annotated[dt.date, Field(ge=dt.date(2020, 1, 1))])


# ---------------------------------------------------------------------------------------------------
# bounds: size, nesting, time (issue 15, finding 1)
# ---------------------------------------------------------------------------------------------------


def _nested_arrays(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema, "maxItems": 2}
    return schema


def test_arrays_nested_60_deep_are_refused_by_the_converter() -> None:
    schema = _nested_arrays(60)
    assert len(json.dumps(schema, separators=(",", ":"))) < 2600  # a small request body
    with pytest.raises(UsageError, match="nests more than 32 levels"):
        schema_to_type(schema)


def test_sized_arrays_nested_under_the_depth_limit_stop_at_the_state_bound() -> None:
    # each level doubles the automaton: depth 16 would be ~3.6M states; compiling stops at the bound, near depth 13
    tp = schema_to_type(_nested_arrays(16))
    with pytest.raises(ConstraintError, match=r"Limits.max_states=200,000") as info:
        compile_output_type(tp)
    assert "output[][][]" in info.value.message  # stopped on the way up, levels below the top
    assert compile_output_type(schema_to_type(_nested_arrays(10))).kind.value == "json"  # 56k states: fine


def test_depth_of_python_types_is_bounded_too() -> None:
    tp: Any = int
    for _ in range(40):
        tp = list[tp]
    with pytest.raises(ConstraintError, match=r"Limits\.max_depth=32"):
        compile_output_type(tp)
    with pytest.raises(ConstraintError, match=r"Limits\.max_states"):  # budgeted lists write their item twice
        compile_output_type(tp, limits=Limits(max_depth=64))
    single: Any = int
    for _ in range(40):
        single = tuple[single]
    assert compile_output_type(single, limits=Limits(max_depth=64)).matches("[" * 40 + "7" + "]" * 40)


def test_pattern_repeats_count_as_states() -> None:
    from docvlm.decoding import Regex

    with pytest.raises(ConstraintError, match="about 1,000,000 states"):
        compile_output_type(Regex("(x{1000}){1000}"))
    with pytest.raises(UsageError, match="pydantic cannot build a validator"):  # over pydantic-core's regex size
        schema_to_type({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(x{1000}){1000}$"}}})
    with pytest.raises(ConstraintError, match="nested too deeply"):
        compile_output_type(Regex("(" * 3000 + "x" + ")" * 3000))


def test_compile_budget_stops_compiling_and_can_be_cancelled() -> None:
    import threading

    tp = schema_to_type(_nested_arrays(13))  # about 0.3 s of regex building
    start = time.monotonic()
    with pytest.raises(ConstraintError, match=r"longer than its budget of 0\.01 s"), compile_budget(0.01):
        compile_output_type(tp, limits=Limits(max_states=10**9))
    assert time.monotonic() - start < 5
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ConstraintError, match="cancelled"), compile_budget(cancel=cancel):
        compile_output_type(list[tuple[int, str]], limits=Limits(max_states=10**8))
    with pytest.raises(UsageError, match="positive number of seconds"), compile_budget(0):
        pass


def test_schema_size_is_bounded() -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(6000)}}
    with pytest.raises(UsageError, match="more than 5000 sub-schemas"):
        schema_to_type(wide)
