"""Representative output types shared by the decoding tests."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, RootModel

from docvlm.decoding import Regex


class Box(BaseModel):
    x0: int = Field(ge=0, le=1000)
    y0: int = Field(ge=0, le=1000)
    x1: int = Field(ge=0, le=1000)
    y1: int = Field(ge=0, le=1000)
    label: Literal["a", "b"]


class Kind(str, enum.Enum):
    TEXT = "text"
    TABLE = "table"
    QUOTE = 'say "hi"'


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Word(BaseModel):
    text: str = Field(min_length=1, max_length=12)
    conf: float = Field(ge=0, le=1)
    kind: Kind


class Region(BaseModel):
    """Nested models, optionals with defaults, floats with open and exclusive bounds."""

    page: int = Field(ge=0)
    box: Box
    words: list[Word] = Field(default_factory=list, max_length=3)
    angle: float = Field(gt=-90, lt=90)
    score: float | None = None
    level: Level = Level.LOW
    note: str | None = Field(default=None, max_length=8)
    flag: bool = False
    nothing: None = None


class Zoom(BaseModel):
    tool: Literal["zoom"] = "zoom"
    box: Box
    factor: float = Field(ge=1, le=8)


class Read(BaseModel):
    tool: Literal["read"]
    region: Annotated[list[int], Field(min_length=4, max_length=4)]


class Answer(BaseModel):
    tool: Literal["answer"]
    text: str = Field(max_length=40)
    sources: tuple[int, ...] = Field(default=(), max_length=2)


ToolCall = Annotated[Zoom | Read | Answer, Field(discriminator="tool")]


class Coded(BaseModel):
    """Aliases, patterns, tuples, config-wide string bounds."""

    model_config = ConfigDict(str_max_length=6, populate_by_name=True)

    code: str = Field(alias="Code", pattern=r"^[A-Z]{2}-[0-9]{1,3}$")
    pair: tuple[int, bool]
    other: str = Field(validation_alias=AliasChoices("o", "other"))
    tags: Annotated[list[Annotated[int, Field(gt=-5, lt=5)]], Field(min_length=1, max_length=3)]


class Strict(BaseModel):
    """Strict mode: floats still take JSON integers, enums their values, tuples arrays."""

    model_config = ConfigDict(strict=True, extra="forbid")

    f: float = Field(ge=0, le=2)
    kind: Kind
    level: Level
    t: tuple[int, ...] = Field(max_length=2)


class Labels(RootModel[Annotated[list[Literal["x", "y"]], Field(max_length=2)]]):
    pass


Boxes = Annotated[list[Box], Field(max_length=3)]


class Item(BaseModel):
    description: str
    amount: float = Field(ge=0, le=1e6)


class Invoice(BaseModel):
    """An ordinary extraction schema: strings and a list without max_length (budgeted, not bounded)."""

    vendor: str
    items: list[Item]


#: JSON output types, each small enough that hypothesis finds matches quickly.
JSON_TYPES: dict[str, Any] = {
    "box": Box,
    "boxes": Boxes,
    "region": Region,
    "tool_call": ToolCall,
    "tool_calls": Annotated[list[ToolCall], Field(max_length=2)],
    "coded": Coded,
    "labels": Labels,
    "strict": Strict,
    "int": int,
    "bounded_int": Annotated[int, Field(ge=-1234, lt=77)],
    "float": float,
    "unit_float": Annotated[float, Field(ge=0, le=1)],
    "bool": bool,
    "none": None,
    "optional_list": Optional[Annotated[list[int], Field(max_length=3)]],  # noqa: UP045 - typing.Optional on purpose
    "union": Union[int, Literal["n/a"], Box],  # noqa: UP007 - typing.Union on purpose
    "short_str_list": Annotated[list[Annotated[str, Field(max_length=5)]], Field(max_length=4)],
    "enum_list": Annotated[list[Kind], Field(max_length=3)],
    "int_enums": Annotated[list[Level], Field(max_length=2)],
    # budgeted sizes: open repeats in the regex
    "invoice": Invoice,
    "open_strs": Annotated[list[Annotated[str, Field(min_length=2)]], Field(min_length=3)],
    "open_str_or_none": str | None,  # an open string at the very start of the output keeps \"
    "top_bounded_str": Annotated[str, Field(max_length=40)] | None,  # counted string at the start: no \"
}

#: Output types that are not JSON at the top level.
OTHER_TYPES: dict[str, Any] = {
    "choice": Literal["yes", "no", "n/a"],
    "enum_choice": Kind,
    "text": Annotated[str, Field(max_length=30)],
    "regex": Regex(r"[A-Z]{3}-\d{2,4}(?:/[a-z]+)?"),
    "regex_classes": Regex(r"\S{1,3}[^\s,]\s[\D]x*"),
    "str_pattern": Annotated[str, Field(pattern=r"^(?:page|p)\s?[0-9]{1,3}$")],
}
