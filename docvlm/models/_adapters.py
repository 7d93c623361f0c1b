"""LoRA adapters on local models: ``dv.load_model(spec, adapter=folder)``.

An adapter is a folder written by [`docvlm.finetune.train`][docvlm.finetune.train] (or by peft's ``save_pretrained``):
``adapter_config.json`` and ``adapter_model.safetensors``. It is merged into the model's weights where it can be
(the merged model runs at the base model's speed); a model peft cannot merge keeps the adapter as extra layers.
For the default model the merged weights are written once into docvlm's cache, so that every runtime (the
onnxruntime export included) runs the adapted model; a plain LoRA adapter (what docvlm trains) is merged there
without peft, so the default model needs only the ``local`` extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.errors import ModelError

if TYPE_CHECKING:
    from docvlm.models.transformers import TransformersModel

__all__ = ["adapter_choice_weight", "adapter_key", "apply_adapter", "check_adapter", "merge_lora", "merged_folder"]

_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def check_adapter(adapter: str | os.PathLike[str]) -> Path:
    """The adapter's folder, checked to hold an adapter.

    Raises:
        ModelError: no such folder, or no ``adapter_config.json`` and weights in it.
    """
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ModelError(f"no adapter folder at {path}",
                         hint="pass the folder docvlm.finetune.train (or `docvlm finetune -o`) wrote")
    if not (path / "adapter_config.json").is_file() or not any((path / f).is_file() for f in _FILES[1:]):
        raise ModelError(f"{path} holds no LoRA adapter (adapter_config.json and adapter_model.safetensors)",
                         hint="pass the folder docvlm.finetune.train (or `docvlm finetune -o`) wrote")
    return path


def adapter_choice_weight(adapter: Path) -> float | None:
    """The `Model.choice_weight` measured for a model with this adapter (``choice_weight`` in its
    ``docvlm_adapter.json``), or ``None`` when it was not measured (extraction then uses its default weight)."""
    import json

    info = adapter / "docvlm_adapter.json"
    try:
        value = json.loads(info.read_text()).get("choice_weight") if info.is_file() else None
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def adapter_key(adapter: Path) -> str:
    """A short hash of the adapter's files (its identity in cache folder names)."""
    digest = hashlib.sha256()
    for name in _FILES:
        file = adapter / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _peft() -> Any:
    from docvlm._optional import require

    return require("peft", "finetune", purpose="LoRA adapters")


def _wrap(model: Any, adapter: Path) -> Any:
    peft = _peft()
    try:
        with warnings.catch_warnings():  # peft reads a renamed transformers attribute
            warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*", category=FutureWarning)
            return peft.PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise ModelError(f"the adapter in {adapter} does not fit this model: {exc}",
                         hint="load the base model the adapter was trained on (see its adapter_config.json)") from exc


def apply_adapter(model: TransformersModel, adapter: str | os.PathLike[str], *, merge: bool = True) -> TransformersModel:
    """Put a LoRA adapter on a loaded model (merged into its weights when ``merge`` and peft can), in place.

    Raises:
        ModelError: not an adapter folder, or an adapter for another architecture.
        MissingDependencyError: peft is not installed (``pip install 'docvlm[finetune]'``).
    """
    path = check_adapter(adapter)
    wrapped = _wrap(model.model, path)
    if merge:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # quantized layers stay unmerged
            wrapped = wrapped.merge_and_unload()
    wrapped.eval()
    model.model = wrapped
    model.reset_cache()
    return model


def _plain_lora(adapter: Path) -> dict[str, Any] | None:
    """The adapter's config when it is a plain LoRA (no DoRA, no extra trained modules, no biases): then its merge
    is ``W + (alpha / r) * B @ A`` per adapted linear layer and needs no peft."""
    import json

    config = json.loads((adapter / "adapter_config.json").read_text())
    plain = (config.get("peft_type") == "LORA" and not config.get("use_dora") and not config.get("modules_to_save")
             and config.get("bias", "none") == "none" and not config.get("fan_in_fan_out")
             and not config.get("rank_pattern") and not config.get("alpha_pattern")
             and (adapter / "adapter_model.safetensors").is_file())
    return config if plain else None


def merge_lora(state: dict[str, Any], adapter: Path, config: dict[str, Any]) -> int:
    """Merge a plain LoRA adapter's weights into a model state dict in place; returns how many layers changed.

    Raises:
        ModelError: an adapted layer the state dict does not have (an adapter for another model).
    """
    import math

    from safetensors.torch import load_file

    lora = load_file(str(adapter / "adapter_model.safetensors"))
    r = float(config["r"])
    scale = float(config["lora_alpha"]) / (math.sqrt(r) if config.get("use_rslora") else r)
    merged = 0
    for key, a in lora.items():
        if ".lora_A." not in key:
            continue
        module = key.split(".lora_A.")[0]
        b = lora[key.replace(".lora_A.", ".lora_B.")]
        name = module.removeprefix("base_model.model.") + ".weight"
        if name not in state:
            raise ModelError(f"the adapter in {adapter} adapts {name}, which this model does not have",
                             hint="load the base model the adapter was trained on (see its adapter_config.json)")
        weight = state[name]
        state[name] = (weight.float() + scale * (b.float() @ a.float())).to(weight.dtype)
        merged += 1
    return merged


def merged_folder(base: Path, adapter: str | os.PathLike[str], cache: Path) -> Path:
    """A ``save_pretrained`` folder of ``base``'s weights with ``adapter`` merged in, written once into ``cache``
    (keyed by the base folder's name and the adapter's files; atomic, so concurrent loads never see half a folder).

    Raises:
        ModelError: not an adapter folder, or one for another architecture.
    """
    path = check_adapter(adapter)
    target = cache / f"{base.name}-lora-{adapter_key(path)}"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = _plain_lora(path)
    if config is not None:  # no peft needed (the default model's shipped adapter)
        state = model.state_dict()
        merge_lora(state, path, config)
        model.load_state_dict(state)
        merged = model
    else:
        merged = _wrap(model, path).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target
