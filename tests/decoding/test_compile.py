"""Type -> regex behaviour as tables: what each compiled constraint accepts and refuses."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field, TypeAdapter, model_validator

from docvlm.decoding import CompiledConstraint, Limits, OutputKind, Regex, compile_output_type
from docvlm.errors import ConstraintError

from .schemas import Box, Boxes, Coded, Kind, Labels, Level, Region, ToolCall, Word

BOX = '{"x0":0,"y0":1000,"x1":5,"y1":999,"label":"a"}'

CASES: list[tuple[str, Any, list[str], list[str]]] = [
    (
        "box",
        Box,
        [BOX, '{"x0":1000,"y0":1000,"x1":1000,"y1":1000,"label":"b"}'],
        [
            '{"x0": 0,"y0":1000,"x1":5,"y1":999,"label":"a"}',  # whitespace
            '{"x0":1001,"y0":1000,"x1":5,"y1":999,"label":"a"}',  # above le
            '{"x0":229012345678786,"y0":0,"x1":0,"y1":0,"label":"a"}',  # the bug this module exists for
            '{"x0":-1,"y0":1000,"x1":5,"y1":999,"label":"a"}',
            '{"x0":01,"y0":1000,"x1":5,"y1":999,"label":"a"}',  # leading zero
            '{"y0":1000,"x0":0,"x1":5,"y1":999,"label":"a"}',  # key order
            '{"x0":0,"y0":1000,"x1":5,"y1":999,"label":"c"}',
            '{"x0":0,"y0":1000,"x1":5,"y1":999}',  # missing key
            BOX[:-1],  # truncated
        ],
    ),
    ("boxes", Boxes, ["[]", f"[{BOX}]", f"[{BOX},{BOX},{BOX}]"], [f"[{BOX},{BOX},{BOX},{BOX}]", f"[{BOX},]", "[,]"]),
    (
        "unit_float",
        Annotated[float, Field(ge=0, le=1)],
        ["0", "1", "0.5", "0.0001", "1.0000"],
        ["1.00001", "1.5", ".5", "-0", "1e0", "0.12345"],
    ),
    (
        "neg_float",
        Annotated[float, Field(gt=-1, lt=0)],
        ["-0.5", "-0.9999", "-0.0001"],
        ["-1", "0", "-0", "-0.0", "-1.0"],
    ),
    ("int_gt", Annotated[int, Field(gt=-3, le=2)], ["-2", "-1", "0", "2"], ["-3", "3", "-0", "+1"]),
    ("int_open", int, ["0", "-5", "999999999999999999"], ["1000000000000000000", "-0", "1.0"]),
    ("optional_int", Optional[Annotated[int, Field(ge=1, le=3)]], ["null", "2"], ["0", "None", '"2"']),  # noqa: UP045
    ("bool", bool, ["true", "false"], ["True", "1", '"true"']),
    ("none", None, ["null"], ["", "None"]),
    (
        "short_str",  # inside JSON (a top-level str is free text)
        tuple[Annotated[str, Field(min_length=1, max_length=3)]],
        ['["a"]', '["abc"]', r'["\"\\\n"]', '["é☃x"]', r'["a\/"]'],
        ['[""]', '["abcd"]', '["a"b"]', r'["\u0041"]', '["a\nb"]', "['a']", r'["\x"]', '["\x85"]'],
    ),
    (
        "str_enum_list",
        Annotated[list[Kind], Field(max_length=2)],
        ['["text"]', r'["say \"hi\""]'],
        ['["TEXT"]', "[text]"],
    ),
    ("int_enum_list", Annotated[list[Level], Field(max_length=2)], ["[1,2]"], ["[3]", '["1"]']),
    (
        "tool_call",
        ToolCall,
        ['{"tool":"read","region":[1,2,3,4]}', '{"tool":"answer","text":"hi","sources":[3]}'],
        ['{"tool":"read","region":[1,2,3]}', '{"tool":"jump","region":[1,2,3,4]}', '{"tool":"answer","text":"hi"}'],
    ),
    (
        "coded",
        Coded,
        ['{"Code":"AB-12","pair":[1,true],"o":"x","tags":[4,-4]}'],
        [
            '{"code":"AB-12","pair":[1,true],"o":"x","tags":[4]}',  # alias, not name
            '{"Code":"ab-12","pair":[1,true],"o":"x","tags":[4]}',
            '{"Code":"AB-12","pair":[1,true],"o":"1234567","tags":[4]}',  # config str_max_length=6
            '{"Code":"AB-12","pair":[1,true],"o":"x","tags":[]}',
            '{"Code":"AB-12","pair":[1,true],"o":"x","tags":[5]}',
        ],
    ),
    ("root_model", Labels, ["[]", '["x","y"]'], ['["x","y","x"]', '["z"]']),
]


@pytest.mark.parametrize(("name", "tp", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_regex_accepts_and_refuses(name: str, tp: Any, good: list[str], bad: list[str]) -> None:
    c = compile_output_type(tp)
    adapter = TypeAdapter(tp)
    for text in good:
        assert c.matches(text), (name, text, c.regex)
        assert c.parse(text) == adapter.validate_json(text)
    for text in bad:
        assert not c.matches(text), (name, text, c.regex)
        with pytest.raises(ConstraintError):
            c.parse(text)


def test_the_documented_regexes() -> None:
    class P(BaseModel):
        x: int = Field(ge=0, le=1000)
        y: float = Field(ge=0, le=1)

    c = compile_output_type(P)
    assert c.regex == r'\{"x":(?:0|[1-9][0-9]{0,2}|1000),"y":(?:0(?:\.[0-9]{1,4})?|1(?:\.0{1,4})?)\}'
    assert c.key == hashlib.sha256(c.regex.encode()).hexdigest()
    assert len(c.key) == 64


def test_max_chars_is_the_longest_match() -> None:
    c = compile_output_type(Box)
    longest = '{"x0":1000,"y0":1000,"x1":1000,"y1":1000,"label":"a"}'
    assert c.matches(longest)
    assert c.max_chars == c.max_bytes == len(longest)
    assert c.max_new_tokens == len(longest) + 1
    boxes = compile_output_type(Boxes)
    assert boxes.max_chars == 2 + 3 * len(longest) + 2
    s = compile_output_type(tuple[Annotated[str, Field(max_length=10)]])
    # ["..."]: an escape is 2 characters, a character up to 4 UTF-8 bytes
    assert (s.max_chars, s.max_bytes) == (4 + 2 * 10, 4 + 4 * 10)
    assert s.matches('["' + "\\n" * 10 + '"]') and s.matches('["' + "😀" * 10 + '"]')


def test_limits_fill_open_bounds() -> None:
    small = Limits(max_string_chars=3, max_list_items=2, max_int_digits=2, float_decimals=1, max_float_int_digits=1)
    c = compile_output_type(list[str], limits=small)
    assert c.matches('["abc","x"]') and not c.matches('["abcd"]') and not c.matches('["a","b","c"]')
    i = compile_output_type(int, limits=small)
    assert i.matches("-99") and not i.matches("100")
    f = compile_output_type(float, limits=small)
    assert f.matches("-9.9") and not f.matches("10") and not f.matches("0.25")
    explicit = compile_output_type(Annotated[list[int], Field(max_length=5)], limits=small)
    assert explicit.matches("[1,2,3,4,5]")  # an explicit bound wins over the default
    ints = compile_output_type(list[int])  # defaults: 32 items, 128 characters per string
    assert ints.matches("[" + ",".join(["1"] * 32) + "]") and not ints.matches("[" + ",".join(["1"] * 33) + "]")
    text = compile_output_type(tuple[str])
    assert text.matches('["' + "x" * 128 + '"]') and not text.matches('["' + "x" * 129 + '"]')
    with pytest.raises(ConstraintError):
        Limits(max_list_items=0)


def test_free_text_budget_names_the_defaulted_fields() -> None:
    class Item(BaseModel):
        desc: str
        qty: int = Field(ge=0, le=99)

    class Invoice(BaseModel):
        vendor: str = Field(max_length=40)
        items: list[Item]

    with pytest.raises(
        ConstraintError,
        match=r"4136 free-text.*output\.items\[\]\.desc \(str, 128 chars\); output\.items \(list, 32 items\)",
    ):
        compile_output_type(Invoice)
    assert compile_output_type(Invoice, limits=Limits(max_free_chars=5000)).free_chars == 40 + 32 * 128
    bounded = compile_output_type(Annotated[list[Item], Field(max_length=4)])
    assert bounded.free_chars == 4 * 128
    assert compile_output_type(str).free_text  # free text needs no index, so no budget


def test_compile_is_cached_per_type_and_limits() -> None:
    assert compile_output_type(Region) is compile_output_type(Region)
    assert compile_output_type(Region) is not compile_output_type(Region, limits=Limits(float_decimals=2))


def test_json_schema_is_pydantics() -> None:
    c = compile_output_type(Word)
    assert c.json_schema == TypeAdapter(Word).json_schema()
    assert c.output_type is Word


def test_top_level_choice_is_bare_and_parses_to_the_value() -> None:
    c = compile_output_type(Literal["yes", "no"])
    assert (c.kind, c.choices) == (OutputKind.CHOICE, ("yes", "no"))
    assert c.parse("no") == "no"
    with pytest.raises(ConstraintError):
        c.parse('"no"')
    e = compile_output_type(Kind)
    assert e.parse('say "hi"') is Kind.QUOTE
    assert compile_output_type(Level).parse("2") is Level.HIGH


def test_top_level_text_and_regex() -> None:
    text = compile_output_type(str)
    assert text.kind is OutputKind.TEXT and text.free_text
    assert text.max_chars == 2048
    assert text.parse('any "thing"\n') == 'any "thing"\n'
    short = compile_output_type(Annotated[str, Field(max_length=4)])
    with pytest.raises(ConstraintError):
        short.parse("12345")
    r = compile_output_type(Regex(r"^[A-Z]{2}\d+$"))
    assert r.kind is OutputKind.REGEX and not r.free_text
    assert r.regex == "[A-Z]{2}[0-9]{1,256}"
    assert r.parse("AB12") == "AB12"
    with pytest.raises(ConstraintError, match="does not match"):
        r.parse("AB")


def test_parse_reports_truncation() -> None:
    c = compile_output_type(Boxes)
    with pytest.raises(ConstraintError, match="cut off"):
        c.parse(f"[{BOX},{BOX[:20]}")


def test_validators_run_at_parse() -> None:
    class Span(BaseModel):
        x0: int = Field(ge=0, le=10)
        x1: int = Field(ge=0, le=10)

        @model_validator(mode="after")
        def ordered(self) -> Span:
            if self.x0 > self.x1:
                raise ValueError("x0 > x1")
            return self

    c = compile_output_type(Span)
    assert c.parse('{"x0":1,"x1":2}') == Span(x0=1, x1=2)
    assert c.matches('{"x0":3,"x1":2}')  # a cross-field rule cannot be a regex
    with pytest.raises(ConstraintError, match="fails validation"):
        c.parse('{"x0":3,"x1":2}')


class Node(BaseModel):
    children: list[Node] = Field(default_factory=list, max_length=2)


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (dict[str, int], "dict is not supported"),
        (set[int], "uniqueness"),
        (Any, "Any"),
        (Node, "recursive"),
        (Annotated[int, Field(multiple_of=5)], "cannot be enforced"),
        (Annotated[int, Field(ge=5, le=4)], "no integer"),
        (Annotated[float, Field(gt=0.5, lt=0.50001)], "no number"),
        (Annotated[list[int], Field(min_length=3, max_length=2)], "min_length"),
        (list[Annotated[str, Field(pattern=r"^.+$")]], "'.'"),  # '.' can write '"' into JSON
        (list[Annotated[str, Field(pattern=r"^[^,]+$")]], "negated character"),
        (list[Annotated[str, Field(pattern=r"^[^,;]+$")]], "must escape"),
        (list[Annotated[str, Field(pattern=r"^(?=a)b$")]], "not supported"),
        (list[Annotated[str, Field(pattern=r"^[\W]+$")]], "Python and to Rust"),
        (list[Annotated[str, Field(pattern=r"^a+b$", max_length=3)]], "more than max_length"),
        (Regex(r"a\bb"), "anchors"),
        (Regex(r"(?i)abc"), "flags"),
        (Regex(r"(a)\1"), "not supported"),
        (Regex(r"[a-"), "cannot be used"),
        (bytes, "cannot be compiled"),
    ],
)
def test_unsupported_types_raise(tp: Any, message: str) -> None:
    with pytest.raises(ConstraintError, match=message):
        compile_output_type(tp)


def test_user_pattern_is_bounded_and_kept() -> None:
    c = compile_output_type(list[Annotated[str, Field(pattern=r"^[a-z]+$", max_length=4)]])
    assert c.matches('["abcd"]') and not c.matches('["abcde"]') and not c.matches('["A"]')
    assert c.matches('[""]') is False


def test_constraint_is_immutable_and_generic() -> None:
    c: CompiledConstraint[Box] = compile_output_type(Box)
    box = c.parse(BOX)
    assert isinstance(box, Box) and box.y0 == 1000
    with pytest.raises(AttributeError):
        c.regex = "x"  # type: ignore[misc]
    assert json.loads(BOX)["label"] == box.label


def test_import_is_light() -> None:
    code = textwrap.dedent(
        """
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "outlines", "outlines_core"):
                    raise ImportError(name)
        sys.meta_path.insert(0, Blocker())
        from typing import Literal
        from pydantic import BaseModel, Field
        from docvlm.decoding import compile_output_type
        class B(BaseModel):
            x: int = Field(ge=0, le=9)
            k: Literal["a"]
        print(compile_output_type(B).parse('{"x":3,"k":"a"}'))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "x=3 k='a'"
