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
    for bounds, longest_float in [((0, 1), "1.0000"), ((-2.5, 1e6), "1000000.0000"), ((-1234.5, 0.5), "-1234.0000")]:
        f = compile_output_type(Annotated[float, Field(ge=bounds[0], le=bounds[1])])
        assert f.matches(longest_float) and f.max_chars == len(longest_float), (bounds, f.max_chars)


def test_limits_budget_open_sizes_and_bound_numbers() -> None:
    small = Limits(max_string_chars=3, max_list_items=2, max_int_digits=2, float_decimals=1, max_float_int_digits=1)
    c = compile_output_type(list[str], limits=small)
    # open sizes are not bounded in the regex ...
    long = "[" + ",".join(['"' + "x" * 500 + '"'] * 100) + "]"
    assert c.matches('["abc","x"]') and c.matches(long) and c.matches("[]")
    assert c.parse(long) == ["x" * 500] * 100
    assert not c.exact and c.budgeted == ("output[] (str, 3 chars)", "output (list, 2 items)")
    # ... they are budgeted: max_chars counts 2 strings of 3 characters (escapes are 2 characters, 4 bytes)
    assert (c.max_chars, c.max_bytes) == (2 + 2 * (2 + 3 * 2) + 1, 2 + 2 * (2 + 3 * 4) + 1)
    # numbers stay exact with the digit limits
    i = compile_output_type(int, limits=small)
    assert i.exact and i.matches("-99") and not i.matches("100")
    f = compile_output_type(float, limits=small)
    assert f.exact and f.matches("-9.9") and not f.matches("10") and not f.matches("0.25")
    explicit = compile_output_type(Annotated[list[int], Field(max_length=5)], limits=small)
    assert explicit.exact and explicit.matches("[1,2,3,4,5]") and not explicit.matches("[1,2,3,4,5,6]")
    ints = compile_output_type(list[int])  # default budget: 64 items of at most 19 characters
    assert ints.matches("[" + ",".join(["1"] * 1000) + "]")
    assert ints.max_chars == 2 + 64 * 19 + 63
    text = compile_output_type(tuple[str])
    assert text.matches('["' + "x" * 5000 + '"]') and text.max_chars == 4 + 2 * 256
    with pytest.raises(ConstraintError):
        Limits(max_list_items=0)


def test_min_length_is_kept_when_the_size_is_open() -> None:
    c = compile_output_type(Annotated[list[Annotated[str, Field(min_length=2)]], Field(min_length=3)])
    assert c.regex.endswith("){2,}\\]")
    assert c.matches('["ab","cd","ef"]') and c.matches('["ab","cd","ef","' + "g" * 300 + '"]')
    assert not c.matches('["ab","cd"]') and not c.matches('["ab","c","ef"]')
    assert c.budgeted == ("output[] (str, 256 chars)", "output (list, 64 items)")


def test_exact_means_max_chars_is_a_true_bound() -> None:
    assert compile_output_type(Box).exact and compile_output_type(Region).exact
    assert compile_output_type(str).exact  # top-level free text keeps its bound
    assert compile_output_type(Annotated[list[Word], Field(max_length=2)]).exact
    open_word_list = compile_output_type(list[Word])
    assert not open_word_list.exact and open_word_list.budgeted == ("output (list, 64 items)",)
    assert open_word_list.regex.endswith(")*)?\\]")  # [item(?:,item)*]: no counted repeat of items


class Item(BaseModel):
    description: str
    amount: float = Field(ge=0, le=1e6)


class Invoice(BaseModel):
    vendor: str
    items: list[Item]


INVOICE = '{"vendor":"ACME","items":[{"description":"Widget","amount":12.5},{"description":"Bolt","amount":0}]}'


def test_an_ordinary_extraction_schema_compiles_small() -> None:
    c = compile_output_type(Invoice)
    assert c.parse(INVOICE) == Invoice.model_validate_json(INVOICE)
    assert c.free_chars == 3  # vendor, and the item's description twice (first item, then ",item" loop)
    assert not c.exact
    assert c.budgeted == (
        "output.vendor (str, 256 chars)",
        "output.items[].description (str, 256 chars)",
        "output.items (list, 64 items)",
    )
    item = len('{"description":"","amount":1000000.0000}') + 2 * 256  # 256 characters of up to 2 (an escape)
    assert compile_output_type(Item).max_chars == item
    assert c.max_chars == len('{"vendor":"","items":[]}') + 2 * 256 + 64 * item + 63
    long = INVOICE.replace("Widget", "w" * 2000)
    assert c.parse(long).items[0].description == "w" * 2000  # open in the regex


def test_a_runaway_string_is_reported_as_cut_off() -> None:
    c = compile_output_type(Invoice)
    runaway = '{"vendor":"ACME","items":[{"description":"' + "la " * (c.max_bytes // 3 + 1)
    with pytest.raises(ConstraintError, match=r"cut off at the budget of max_new_tokens=\d+") as info:
        c.parse(runaway)
    assert "output.items[].description (str, 256 chars)" in str(info.value)
    assert "max_string_chars" in (info.value.hint or "")
    # cut off early (a max_new_tokens below the budget): the hint is to raise max_new_tokens
    with pytest.raises(ConstraintError, match="cut off before it was complete") as early:
        c.parse(INVOICE[:40])
    assert f"max_new_tokens >= CompiledConstraint.max_new_tokens ({c.max_new_tokens})" in (early.value.hint or "")
    # not a prefix of any match: not called a cut-off
    with pytest.raises(ConstraintError, match="does not match") as wrong:
        c.parse(INVOICE.replace("vendor", "seller"))
    assert "cut off" not in str(wrong.value)


def test_explicit_bounds_stay_exact_and_huge_ones_are_refused() -> None:
    class Note(BaseModel):
        title: str = Field(max_length=40)
        lines: list[Annotated[str, Field(max_length=100)]]

    c = compile_output_type(Note)
    assert c.matches('{"title":"' + "t" * 40 + '","lines":[]}')
    assert not c.matches('{"title":"' + "t" * 41 + '","lines":[]}')
    assert not c.matches('{"title":"t","lines":["' + "x" * 101 + '"]}')
    assert c.free_chars == 40 + 2 * 100  # the open list holds two copies of its item
    assert c.budgeted == ("output.lines (list, 64 items)",)

    class Essay(BaseModel):
        paragraphs: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=4)]

    with pytest.raises(ConstraintError, match=r"800 free-text.*max_free_chars=512") as info:
        compile_output_type(Essay)
    assert "drop a max_length" in (info.value.hint or "")
    assert compile_output_type(Essay, limits=Limits(max_free_chars=800)).exact


def test_a_counted_string_at_the_start_cannot_contain_a_quote() -> None:
    c = compile_output_type(Annotated[str, Field(max_length=40)] | None)
    assert c.exact and c.matches('"a \\\\ b"') and c.matches("null")
    assert not c.matches('"say \\"hi\\""')  # \" at the start would blow up outlines-core's automaton
    short = compile_output_type(Annotated[str, Field(max_length=8)] | None)
    assert short.matches('"\\"hi\\""')
    assert compile_output_type(str | None).matches('"say \\"hi\\""')  # an open string keeps \"
    nested = compile_output_type(tuple[Annotated[str, Field(max_length=40)]])
    assert nested.matches('["say \\"hi\\""]')


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
