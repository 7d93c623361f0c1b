"""Any outlines model behind docvlm's model seam: every runtime outlines supports is a docvlm runtime.

>>> import outlines, llama_cpp                                          # doctest: +SKIP
>>> model = dv.load_model(outlines.from_llamacpp(llama_cpp.Llama("model.gguf")))  # doctest: +SKIP
>>> dv.extract(model, dv.open("invoice.pdf"), Invoice)                  # doctest: +SKIP

``dv.load_model`` accepts an outlines model object (``outlines.from_transformers``, ``from_llamacpp``,
``from_vllm_offline``, ``from_mlxlm``, or a server model such as ``from_vllm`` / ``from_sglang`` / ``from_tgi``)
and wraps it in [`OutlinesModel`][docvlm.models.outlines.OutlinesModel]. Each request's constraint goes to outlines
as an ``outlines.types.Regex`` of docvlm's own compiled regex, not as a JSON schema: outlines' JSON-schema path
drops integer and number bounds, the regex keeps them (see the constrained-decoding page). One
``outlines.Generator`` is built per constraint and reused (building its index is the expensive part).

Prompts follow the model's family profile as with docvlm's own transformers backend: a chat template where the
model has one (text, or text and images for ``TransformersMultiModal``), the family's raw prompt otherwise.
outlines is imported only when such a model is wrapped.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from docvlm.decoding import Limits
from docvlm.errors import ModelError, UsageError
from docvlm.models.base import Model, Request
from docvlm.models.profiles import FamilyProfile, profile_for

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.messages import Message
    from docvlm.types.geometry import Size

__all__ = ["OutlinesModel", "is_outlines_model"]

_MULTIMODAL = {"TransformersMultiModal"}


def is_outlines_model(obj: object) -> bool:
    """Whether ``obj`` is an outlines model (checked without importing outlines when it is not loaded)."""
    import sys

    if "outlines" not in sys.modules:
        return False
    from outlines.models.base import AsyncModel
    from outlines.models.base import Model as OutlinesBase

    return isinstance(obj, (OutlinesBase, AsyncModel))


class OutlinesModel(Model):
    """An outlines model (any runtime) answering docvlm's typed requests under docvlm's compiled regexes.

    Prefer ``dv.load_model(outlines_model)``.

    Args:
        model: an outlines model, e.g. ``outlines.from_transformers(hf_model, tokenizer_or_processor)``.
        spec: how it was made, for messages and records (default ``outlines:<class name>``).
        profile: the family profile; by default from the wrapped transformers model's ``model_type``.
        supports_images: whether prompts may hold images (default: only for ``TransformersMultiModal``).
        limits: default bounds for open-ended output types.
        backend: outlines' constrained-decoding backend for the regex (``None``: outlines' default).
        max_generators: how many built generators (one per output type) are kept.

    Raises:
        UsageError: ``model`` is an async outlines model or not an outlines model.
    """

    def __init__(self, model: Any, *, spec: str = "", profile: FamilyProfile | None = None,
                 supports_images: bool | None = None, limits: Limits | None = None, backend: str | None = None,
                 max_generators: int = 32) -> None:
        from docvlm._optional import require

        require("outlines", "local", purpose="outlines models")
        from outlines.models.base import AsyncModel
        from outlines.models.base import Model as OutlinesBase

        if isinstance(model, AsyncModel):
            raise UsageError(f"{type(model).__name__} is an async outlines model",
                             hint="wrap the synchronous twin (e.g. outlines.from_vllm(OpenAI(...)))")
        if not isinstance(model, OutlinesBase):
            raise UsageError(f"not an outlines model: {type(model).__name__}")
        if getattr(model, "tensor_library_name", "") == "numpy":
            # outlines masks numpy logits (llama.cpp) with numba kernels; without numba, llama-cpp-python's chat path
            # drops the failing logits processor and the output is not constrained at all
            require("numba", "llamacpp", purpose=f"constrained decoding with outlines' {type(model).__name__}")
        self.model: Any = model
        self.kind = type(model).__name__
        self.spec = spec or f"outlines:{self.kind}"
        hf_model = getattr(model, "model", None)
        config = getattr(hf_model, "config", None)
        self._profile = profile or profile_for(str(getattr(config, "model_type", "")))
        self.supports_images = self.kind in _MULTIMODAL if supports_images is None else supports_images
        if limits is not None:
            self.limits = limits
        self.backend = backend
        self.max_generators = max_generators
        self._generators: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # the generator cache
        self._busy = threading.Lock()  # one generation at a time: outlines' logits processors keep state

    @property
    def profile(self) -> FamilyProfile:
        return self._profile

    def input_image_size(self, image: Image.Image) -> Size:
        """The size the wrapped processor resizes ``image`` to (unchanged when there is no processor)."""
        processor = getattr(self.model, "processor", None)
        if processor is None:
            return super().input_image_size(image)
        from docvlm.models.transformers import TransformersModel

        return TransformersModel.input_image_size(self, image)  # type: ignore[arg-type]

    @property
    def processor(self) -> Any:
        """The wrapped transformers processor (what ``input_image_size`` reads)."""
        return getattr(self.model, "processor", None)

    # generators ---------------------------------------------------------------------------------------
    def _generator(self, request: Request) -> Any:
        import outlines
        from outlines.types import Regex

        constraint = request.constraint
        key = "" if constraint.free_text else constraint.regex
        with self._lock:
            generator = self._generators.get(key)
            if generator is not None:
                self._generators.move_to_end(key)
                return generator
        output_type = None if constraint.free_text else Regex(constraint.regex)
        try:
            generator = outlines.Generator(self.model, output_type, self.backend)
        except (TypeError, NotImplementedError, ValueError) as exc:
            raise ModelError(f"{self.spec} cannot decode under a regex: {exc}",
                             hint="use an outlines model that supports regex output types (local models, vLLM, SGLang, TGI)") from exc
        with self._lock:
            self._generators[key] = generator
            while len(self._generators) > self.max_generators:
                self._generators.popitem(last=False)
        return generator

    # prompts ------------------------------------------------------------------------------------------
    def _input(self, messages: list[Message]) -> Any:
        from outlines.inputs import Chat

        images = [_outlines_image(img) for m in messages for img in m.images]
        if self.kind in _MULTIMODAL:
            template = getattr(self.model.processor, "chat_template", None) or getattr(
                self.model.hf_tokenizer, "chat_template", None)
            if not (self._profile.uses_chat_template and template):
                text = "\n".join(m.text for m in messages if m.text)
                if images:
                    text = self._profile.raw_prompt(text, num_images=len(images))
                return [text, *images] if images else [text]
            chat: list[dict[str, Any]] = []
            queue = iter(images)
            for m in messages:
                parts = [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image", "image": next(queue)}
                         for p in m.content]
                chat.append({"role": m.role, "content": parts})
            return Chat(chat)
        if images:
            raise UsageError(f"{self.spec} takes no images", hint="give the page's text layer instead")
        has_template = getattr(getattr(self.model, "type_adapter", None), "has_chat_template", True)
        if not (self._profile.uses_chat_template and has_template):
            return "\n".join(m.text for m in messages if m.text)
        return Chat([{"role": m.role, "content": m.text} for m in messages])

    def _inference_kwargs(self, request: Request) -> dict[str, Any]:
        settings = request.settings
        limit = request.max_new_tokens()
        if self.kind in ("Transformers", "TransformersMultiModal"):
            kwargs: dict[str, Any] = {"max_new_tokens": limit, "do_sample": not settings.greedy,
                                      "repetition_penalty": 1.0}
            if settings.greedy:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            return kwargs
        if self.kind == "VLLMOffline":
            from vllm import SamplingParams  # type: ignore[import-not-found]

            return {"sampling_params": SamplingParams(max_tokens=limit, temperature=settings.temperature,
                                                      top_p=settings.top_p, seed=settings.seed)}
        if self.kind == "MLXLM":
            return {"max_tokens": limit}
        kwargs = {"max_tokens": limit, "temperature": settings.temperature}
        if settings.top_p != 1:
            kwargs["top_p"] = settings.top_p
        if settings.seed is not None:
            kwargs["seed"] = settings.seed
        return kwargs

    # the seam -----------------------------------------------------------------------------------------
    def _complete(self, requests: Sequence[Request]) -> list[str]:
        out: list[str] = []
        for request in requests:
            generator = self._generator(request)
            prompt = self._input(request.messages)
            if request.settings.seed is not None and self.kind in ("Transformers", "TransformersMultiModal"):
                import torch

                torch.manual_seed(request.settings.seed)
            try:
                with self._busy:
                    text = generator(prompt, **self._inference_kwargs(request))
            except (RuntimeError, ValueError, TypeError) as exc:
                raise ModelError(f"generation failed in {self.spec}: {exc}") from exc
            if isinstance(text, list):  # some runtimes answer a list for one prompt
                text = text[0]
            out.append(str(text))
        return out


def _outlines_image(image: Image.Image) -> Any:
    """An ``outlines.inputs.Image``; it needs a PIL image with a ``format``, so rendered images are re-opened as PNG."""
    from outlines.inputs import Image as OutlinesImage
    from PIL import Image as PILImage

    if image.format is None:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        buffer.seek(0)
        image = PILImage.open(buffer)
    return OutlinesImage(image)
