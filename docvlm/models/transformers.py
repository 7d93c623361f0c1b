"""Local models through Hugging Face transformers, constrained by docvlm's own compiled regexes.

Any ``AutoModelForImageTextToText`` vision-language model and any ``AutoModelForCausalLM`` language model,
from a local folder (or a hub id where a hub is reachable). torch and transformers are imported when a model
is loaded, never when docvlm is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.decoding import Limits, logits_processor
from docvlm.errors import ModelError, UsageError
from docvlm.models.base import Model, Request
from docvlm.models.profiles import FamilyProfile, profile_for

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.messages import Message
    from docvlm.types.geometry import Size

__all__ = ["TransformersModel"]


def _is_vlm_config(config: Any) -> bool:
    from transformers import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

    return type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING


def _no_center_crop(processor: Any) -> None:
    """Squash instead of centre-cropping (CLIP-style processors, e.g. LLaVA's): a crop would cut off the sides of
    a page, and a squash keeps every normalized coordinate where it was."""
    improc = getattr(processor, "image_processor", None)
    if improc is None or not getattr(improc, "do_center_crop", False):
        return
    crop = getattr(improc, "crop_size", None) or {}
    height = crop.get("height") if isinstance(crop, dict) else getattr(crop, "height", None)
    width = crop.get("width") if isinstance(crop, dict) else getattr(crop, "width", None)
    if height and width:
        improc.do_center_crop = False
        improc.size = {"height": int(height), "width": int(width)}


class TransformersModel(Model):
    """A transformers model behind docvlm's model seam.

    Prefer [`from_pretrained`][docvlm.models.transformers.TransformersModel.from_pretrained] (or ``dv.load_model("transformers:<folder>")``); the constructor takes an
    already loaded model and its processor (a tokenizer for text-only models).

    Args:
        model: a loaded transformers model.
        processor: its processor (vision-language) or tokenizer (text-only).
        spec: how it was loaded, for messages and records.
        profile: the family profile; by default chosen from ``model.config.model_type``.
        limits: default bounds for open-ended output types.
    """

    def __init__(self, model: Any, processor: Any, *, spec: str = "", profile: FamilyProfile | None = None,
                 limits: Limits | None = None) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.spec = spec or f"transformers:{getattr(model, 'name_or_path', type(model).__name__)}"
        self.supports_images = getattr(processor, "image_processor", None) is not None
        self._profile = profile or profile_for(str(getattr(model.config, "model_type", "")))
        if limits is not None:
            self.limits = limits
        self._lock = threading.Lock()
        self.is_encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.is_encoder_decoder:
            self.tokenizer.padding_side = "left"  # decoder-only batches generate from the right edge

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        dtype: str | None = None,
        gguf_file: str | None = None,
        local_files_only: bool = True,
        trust_remote_code: bool = False,
        spec: str | None = None,
        limits: Limits | None = None,
    ) -> TransformersModel:
        """Load a model and its processor from a local folder (or a hub id when ``local_files_only=False``).

        Args:
            path: a folder written by ``save_pretrained`` (or a hub id).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
            dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``None`` for the checkpoint's own.
            gguf_file: a GGUF file name inside ``path`` to load (dequantized) instead of safetensors.
            local_files_only: never contact a model hub (default).
            trust_remote_code: allow the checkpoint's own Python code (off by default).

        Raises:
            ModelError: the folder is missing or holds no loadable model / processor.
        """
        from docvlm._optional import require

        torch = require("torch", "local", purpose="local transformers models")
        tf = require("transformers", "local", purpose="local transformers models")
        from docvlm.models._processors import load_processor

        where = str(path)
        if local_files_only and not Path(where).is_dir():
            raise ModelError(f"no model folder at {where}",
                             hint="pass a folder written by save_pretrained, or local_files_only=False for a hub id")
        common: dict[str, Any] = {"local_files_only": local_files_only, "trust_remote_code": trust_remote_code}
        if gguf_file:
            common["gguf_file"] = gguf_file
        try:
            config = tf.AutoConfig.from_pretrained(where, **common)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read a model config in {where}: {exc}", hint="is this a transformers model folder?") from exc
        torch_dtype = getattr(torch, dtype) if dtype else None
        model: Any
        try:
            if _is_vlm_config(config):
                model = tf.AutoModelForImageTextToText.from_pretrained(where, dtype=torch_dtype, **common)
                processor = load_processor(where, **common)
            else:
                model = tf.AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype, **common)
                processor = tf.AutoTokenizer.from_pretrained(where, **common)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load the model in {where}: {exc}") from exc
        _no_center_crop(processor)
        loaded: Any = model
        loaded.to(device)
        loaded.eval()
        return cls(model, processor, spec=spec or f"transformers:{where}", limits=limits)

    @property
    def profile(self) -> FamilyProfile:
        return self._profile

    @property
    def device(self) -> Any:
        return self.model.device

    def input_image_size(self, image: Image.Image) -> Size:
        """The size the processor resizes ``image`` to (what the model's own pixel coordinates refer to)."""
        from docvlm.types.geometry import Size

        improc = getattr(self.processor, "image_processor", None)
        if improc is None:
            return Size(width=image.width, height=image.height)
        out = improc(images=[image.convert("RGB")], return_tensors="pt")
        if "image_grid_thw" in out:  # Qwen-VL: patches of patch_size pixels
            _, gh, gw = (int(v) for v in out["image_grid_thw"][0])
            patch = int(getattr(improc, "patch_size", 14))
            return Size(width=gw * patch, height=gh * patch)
        h, w = out["pixel_values"].shape[-2:]
        return Size(width=int(w), height=int(h))

    # prompts -------------------------------------------------------------------------------------
    def _prompt(self, messages: list[Message]) -> tuple[str, list[Image.Image]]:
        images = [img.convert("RGB") for m in messages for img in m.images]
        template_owner = self.processor if self.supports_images else self.tokenizer
        use_template = self._profile.uses_chat_template and getattr(template_owner, "chat_template", None)
        if not use_template:
            prompt = "\n".join(m.text for m in messages if m.text)
            if images:
                prompt = self._profile.raw_prompt(prompt, num_images=len(images))
            return prompt, images
        chat: list[dict[str, Any]] = []
        for m in messages:
            if self.supports_images:
                parts: list[dict[str, Any]] = [
                    {"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in m.content
                ]
                chat.append({"role": m.role, "content": parts})
            else:
                chat.append({"role": m.role, "content": m.text})
        text = template_owner.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return str(text), images

    # the seam ------------------------------------------------------------------------------------
    def _complete(self, requests: Sequence[Request]) -> list[str]:
        out: list[str] = [""] * len(requests)
        groups: dict[tuple[str, Any], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.constraint.key, r.settings), []).append(i)
        with self._lock:
            for indices in groups.values():
                texts = self._generate([requests[i] for i in indices])
                for i, t in zip(indices, texts, strict=True):
                    out[i] = t
        return out

    def _generate(self, batch: list[Request]) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        first = batch[0]
        prompts, images = zip(*(self._prompt(r.messages) for r in batch), strict=True)
        kwargs: dict[str, Any] = {"text": list(prompts), "padding": True}
        if any(images):
            if not all(images):
                raise UsageError("in one batch, every prompt must have images or none may",
                                 hint="split the batch into prompts with and without images")
            kwargs["images"] = [list(imgs) for imgs in images]
        family = self._profile.name
        try:
            if family == "paligemma":
                # its processor's labels code warns under return_tensors="pt"; numpy then torch is equivalent
                raw = self.processor(**kwargs, return_tensors="np")
                inputs = {k: torch.from_numpy(v) for k, v in raw.items() if k != "labels"}
            else:
                inputs = dict(self.processor(**kwargs, return_tensors="pt"))
        except (ValueError, TypeError) as exc:
            raise ModelError(f"the processor of {self.spec} rejected the prompt: {exc}") from exc
        inputs = {k: v.to(self.model.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        settings = first.settings
        gen: dict[str, Any] = {
            "max_new_tokens": first.max_new_tokens(),
            "do_sample": not settings.greedy,
            "pad_token_id": self.tokenizer.pad_token_id,
            # checkpoints ship their own sampling defaults; the request's settings are the only ones that apply
            "repetition_penalty": 1.0,
            "top_k": 0 if not settings.greedy else None,
            "temperature": settings.temperature if not settings.greedy else None,
            "top_p": settings.top_p if not settings.greedy else None,
        }
        start = 0 if self.is_encoder_decoder else inputs["input_ids"].shape[1]
        if self.is_encoder_decoder:
            # open the decoder as the checkpoint was trained (</s><s>), and let no built-in processor force
            # a token: built-in processors run before ours, and a forced token the mask forbids leaves none
            config = self.model.generation_config
            opening = [config.decoder_start_token_id, self.tokenizer.bos_token_id]
            opening = [t for t in opening if t is not None]
            inputs["decoder_input_ids"] = torch.tensor([opening] * len(batch), device=self.model.device)
            gen["forced_bos_token_id"] = None
            gen["forced_eos_token_id"] = None
            start = len(opening)
        if not first.constraint.free_text:
            gen["logits_processor"] = LogitsProcessorList([logits_processor(first.constraint, self.tokenizer)])
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, **gen)
        except RuntimeError as exc:
            raise ModelError(f"generation failed in {self.spec}: {exc}") from exc
        return [str(t) for t in self.tokenizer.batch_decode(output[:, start:], skip_special_tokens=True)]
