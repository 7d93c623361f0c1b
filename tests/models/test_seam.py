"""The model seam through the shipped fakes: prompts, output types, validation, async, load_model."""

from __future__ import annotations

import asyncio
import enum
import random
import re
from typing import Annotated, Literal

import pytest
from PIL import Image
from pydantic import BaseModel, Field, model_validator

import docvlm as dv
from docvlm.decoding import Regex, compile_output_type
from docvlm.models import FunctionModel, GenerationSettings, Message, TestModel, load_model, to_messages
from docvlm.models.test import sample_regex


class Box(BaseModel):
    x0: int = Field(ge=0, le=1000)
    y0: int = Field(ge=0, le=1000)
    x1: int = Field(ge=0, le=1000)
    y1: int = Field(ge=0, le=1000)
    label: Literal["total", "date"]


class OrderedBox(Box):
    @model_validator(mode="after")
    def _ordered(self) -> OrderedBox:
        if self.x0 > self.x1 or self.y0 > self.y1:
            raise ValueError("corners out of order")
        return self


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


OUTPUT_TYPES = [
    Box,
    list[Box],
    Annotated[list[Box], Field(min_length=1, max_length=3)],
    Literal["yes", "no"],
    Color,
    int,
    Annotated[float, Field(ge=0, le=1)],
    bool,
    str,
    Regex(r"INV-[0-9]{4}-[0-9]{4}"),
]


@pytest.mark.parametrize("output_type", OUTPUT_TYPES, ids=repr)
def test_test_model_answers_every_output_type_validly(output_type: object) -> None:
    model = TestModel(seed=7)
    constraint = compile_output_type(output_type)
    for _ in range(25):
        value = model.generate("anything", output_type)
        assert model.last_request is not None
        assert model.last_request.constraint.regex == constraint.regex
        if isinstance(output_type, Regex):
            assert re.fullmatch(output_type.pattern, value)
        elif output_type is Color:
            assert isinstance(value, Color)
        elif output_type is bool:
            assert isinstance(value, bool)


def test_sampler_matches_its_regex() -> None:
    rng = random.Random(0)
    for tp in OUTPUT_TYPES:
        c = compile_output_type(tp)
        for _ in range(20):
            text = sample_regex(c.regex, rng)
            assert c.matches(text), (tp, text)
            assert len(text) <= c.max_chars


def test_test_model_is_seeded_and_respects_cross_field_validators() -> None:
    a = [TestModel(seed=3).generate("x", list[Box]) for _ in range(3)]
    b = [TestModel(seed=3).generate("x", list[Box]) for _ in range(3)]
    assert a == b
    model = TestModel(seed=1, extra_repeats=0)
    assert model.generate("x", list[Box]) == []  # minimal data: an empty list
    boxes = [TestModel(seed=s).generate("x", OrderedBox) for s in range(20)]
    assert all(b.x0 <= b.x1 and b.y0 <= b.y1 for b in boxes)


def test_test_model_fixed_outputs_then_sampling() -> None:
    model = TestModel(outputs=['{"x0":1,"y0":2,"x1":3,"y1":4,"label":"date"}', {"x0": 5, "y0": 5, "x1": 6, "y1": 6, "label": "total"}])
    assert model.generate("a", Box) == Box(x0=1, y0=2, x1=3, y1=4, label="date")
    assert model.generate("b", Box).x0 == 5
    assert isinstance(model.generate("c", Box), Box)  # sampled
    with pytest.raises(dv.ModelError, match="scripted answer is not a valid"):
        TestModel(outputs=[{"x0": 5000}]).generate("x", Box)


def test_function_model_scripts_answers_and_sees_messages() -> None:
    seen: list[str] = []

    def script(messages: list[Message], info: object) -> object:
        seen.append(messages[-1].text)
        return "yes" if "total" in messages[-1].text else "no"

    model = FunctionModel(script)
    assert model.generate_batch(["is there a total?", "a date?"], Literal["yes", "no"]) == ["yes", "no"]
    assert seen == ["is there a total?", "a date?"] and model.calls == 2
    with pytest.raises(dv.ConstraintError, match="does not match"):
        model.generate("total", Literal["ok"])


def test_messages_mix_text_and_images() -> None:
    img = Image.new("RGB", (20, 10))
    page_image = dv.open(dv.samples.invoice_pdf())[0].render(dpi=20)
    (msg,) = to_messages(["look at", img, "and", page_image])
    assert msg.role == "user" and msg.text == "look at\nand"
    assert [i.size for i in msg.images] == [(20, 10), (page_image.width, page_image.height)]
    assert msg.page_images[0] is None and msg.page_images[1] is page_image
    msgs = to_messages([{"role": "system", "content": "be brief"}, Message("user", ["hi", img])])
    assert [m.role for m in msgs] == ["system", "user"]
    with pytest.raises(dv.UsageError, match="must be text or an image"):
        to_messages([Message("user", [3])])  # type: ignore[list-item]
    with pytest.raises(dv.UsageError, match="unknown message role"):
        Message("robot", ["x"])  # type: ignore[arg-type]


def test_text_only_model_refuses_images() -> None:
    model = TestModel(supports_images=False)
    with pytest.raises(dv.UsageError, match="text-only model and prompt 0 contains images"):
        model.generate(["what is this?", Image.new("RGB", (4, 4))], str)


def test_settings_are_validated() -> None:
    with pytest.raises(dv.UsageError, match="temperature"):
        GenerationSettings(temperature=-1)
    with pytest.raises(dv.UsageError, match="unknown generation option"):
        TestModel().generate("x", str, temprature=0.5)
    req = TestModel().prepare(["x"], Box, max_new_tokens=5)[0]
    assert req.max_new_tokens() == 5
    assert TestModel().prepare(["x"], Box)[0].max_new_tokens() == compile_output_type(Box).max_new_tokens


def test_async_twins() -> None:
    model = TestModel(seed=2)

    async def run() -> list[object]:
        one = await model.agenerate("x", Box)
        many = await model.agenerate_batch(["a", "b", "c"], Literal["yes", "no"])
        return [one, *many]

    out = asyncio.run(run())
    assert isinstance(out[0], Box) and all(v in ("yes", "no") for v in out[1:])


def test_load_model_specs(tmp_path: object) -> None:
    assert isinstance(load_model("test"), TestModel)
    m = load_model("test:5")
    assert m.generate("x", int) == TestModel(seed=5).generate("x", int)
    assert load_model(m) is m
    with pytest.raises(dv.UsageError, match="unknown model spec"):
        load_model("nonsense:thing")
    with pytest.raises(dv.UsageError, match="non-empty"):
        load_model("")
    with pytest.raises(dv.ModelError, match="no model folder"):
        load_model("transformers:/definitely/not/here")


# ---------------------------------------------------------------------------------------------------------------
# one seam: every backend implements _complete only; counting, reading and corrections live in Model
# ---------------------------------------------------------------------------------------------------------------
def test_every_backend_implements_only_the_request_method() -> None:
    import importlib

    from docvlm.models.base import Model

    public = ("generate", "generate_batch", "agenerate", "agenerate_batch", "score", "ascore", "prepare")
    names = {
        "docvlm.models.test": ("TestModel", "FunctionModel"),
        "docvlm.models.openai": ("OpenAIModel",),
        "docvlm.models.transformers": ("TransformersModel",),
        "docvlm.models.outlines": ("OutlinesModel",),
        "docvlm.models._stepwise": ("StepModel",),
        "docvlm.models.runtimes": ("OnnxGenAIModel", "LlamaCppModel"),
    }
    seen = 0
    for module, classes in names.items():
        for name in classes:
            cls = getattr(importlib.import_module(module), name)
            assert issubclass(cls, Model)
            overridden = [m for m in public if getattr(cls, m) is not getattr(Model, m)]
            assert overridden == [], f"{name} overrides {overridden}"
            assert cls._complete is not Model._complete, name
            seen += 1
    assert seen == 8


def test_fakes_are_counted_and_read_like_any_backend() -> None:
    class Short(FunctionModel):
        def _complete(self, requests: object) -> list[str]:
            return []  # a backend bug: no answer

    with pytest.raises(dv.ModelError, match="returned 0 answers for 2 requests"):
        Short(lambda m, i: "x").generate_batch(["a", "b"], str)
    # scripted text is read leniently, as a server's answer is: a code fence and whitespace are fine
    fenced = FunctionModel(lambda m, i: '```json\n{ "x0": 1, "y0": 2, "x1": 3, "y1": 4, "label": "total" }\n```')
    assert fenced.generate("x", Box) == Box(x0=1, y0=2, x1=3, y1=4, label="total")
    assert FunctionModel(lambda m, i: " yes\n").generate("x", Literal["yes", "no"]) == "yes"
    # a scorer that miscounts is caught by the same base class
    with pytest.raises(dv.ModelError, match="returned 1 scores for 2 continuations"):
        FunctionModel(lambda m, i: "x", scorer=lambda m, c, p: [-1.0]).score("q", ["a", "b"])


def test_corrections_are_the_base_classes_for_fakes_too() -> None:
    told: list[str] = []

    def script(messages: list[Message], info: object) -> str:
        told.append(messages[-1].text)
        return '{"x0":9,"y0":9,"x1":1,"y1":1,"label":"date"}' if len(messages) == 1 else \
            '{"x0":1,"y0":1,"x1":9,"y1":9,"label":"date"}'

    model = FunctionModel(script)
    model.max_retries = 1
    assert model.generate("find the date", OrderedBox) == OrderedBox(x0=1, y0=1, x1=9, y1=9, label="date")
    assert told[1].startswith("Your answer is not valid: ") and "corners out of order" in told[1]
    assert [len(r.messages) for r in model.requests] == [1, 3]  # the answer and the correction were appended
    async_model = FunctionModel(script)
    async_model.max_retries = 1
    assert asyncio.run(async_model.agenerate("find the date", OrderedBox)).x1 == 9
    stubborn = FunctionModel(lambda m, i: '{"x0":9,"y0":9,"x1":1,"y1":1,"label":"date"}')
    stubborn.max_retries = 2
    with pytest.raises(dv.ModelError, match=r"gave 3 invalid answers; the last: .*corners out of order"):
        stubborn.generate("x", OrderedBox)
    assert stubborn.calls == 3


def test_one_constraint_cache() -> None:
    model = TestModel()
    assert model.compile(Box) is compile_output_type(Box, limits=model.limits)
    assert model.prepare(["a"], list[Box])[0].constraint is compile_output_type(list[Box])
