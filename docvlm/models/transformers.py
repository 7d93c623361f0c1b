"""Local models through Hugging Face transformers, constrained by docvlm's own compiled regexes.

Any ``AutoModelForImageTextToText`` vision-language model and any ``AutoModelForCausalLM`` language model,
from a local folder (or a hub id where a hub is reachable). torch and transformers are imported when a model
is loaded, never when docvlm is imported.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm import _deadline
from docvlm._threads import apply_torch_threads, check_threads, threads_for
from docvlm.decoding import Limits, logits_processor
from docvlm.errors import ModelError, UsageError
from docvlm.models._scoring import continuation_tokens
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


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own progress bars ("Loading weights") and info logs while loading; docvlm shows its
    own progress. The user's settings are restored afterwards."""
    import importlib

    tf_logging: Any = importlib.import_module("transformers.utils.logging")  # partly untyped
    bars = tf_logging.is_progress_bar_enabled()
    verbosity = tf_logging.get_verbosity()
    tf_logging.disable_progress_bar()
    tf_logging.set_verbosity_error()
    try:
        yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if bars:
            tf_logging.enable_progress_bar()


@dataclass
class _Prefix:
    """The KV cache of one token prefix, and the logits that follow it."""

    ids: tuple[int, ...]
    cache: Any
    last_logits: Any


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


#: Continuation tokens scored in one forward pass (longer lists of continuations are split).
SCORE_CHUNK_TOKENS = 512


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
        threads: torch intra-op threads for this model's calls; ``None`` (default): docvlm's thread policy
            ([`docvlm._threads`][docvlm._threads]: the CPUs free now, or ``OMP_NUM_THREADS``) decides at every call.
    """

    def __init__(self, model: Any, processor: Any, *, spec: str = "", profile: FamilyProfile | None = None,
                 limits: Limits | None = None, threads: int | None = None) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.spec = spec or f"transformers:{getattr(model, 'name_or_path', type(model).__name__)}"
        self.supports_images = getattr(processor, "image_processor", None) is not None
        self._profile = profile or profile_for(str(getattr(model.config, "model_type", "")))
        if limits is not None:
            self.limits = limits
        self._lock = threading.Lock()
        self.threads = check_threads(threads)
        self._prefix: _Prefix | None = None  # the last scored prefix's KV cache (see score())
        self._forward_args: tuple[str, bool] | None = None
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
        threads: int | None = None,
    ) -> TransformersModel:
        """Load a model and its processor from a local folder (or a hub id when ``local_files_only=False``).

        Args:
            path: a folder written by ``save_pretrained`` (or a hub id).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
            dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``None`` for the checkpoint's own.
            gguf_file: a GGUF file name inside ``path`` to load (dequantized) instead of safetensors.
            local_files_only: never contact a model hub (default).
            trust_remote_code: allow the checkpoint's own Python code (off by default).
            threads: torch intra-op threads (default: docvlm's thread policy, see [`docvlm._threads`][docvlm._threads]).

        Raises:
            ModelError: the folder is missing or holds no loadable model / processor.
        """
        from docvlm._optional import require

        torch = require("torch", "local", purpose="local transformers models")
        tf = require("transformers", "local", purpose="local transformers models")

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
        check_threads(threads)
        apply_torch_threads(threads_for(threads=threads))
        model: Any
        try:
            with quiet_transformers():
                model, processor = cls._load(tf, config, where, torch_dtype, common)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load the model in {where}: {exc}") from exc
        _no_center_crop(processor)
        loaded: Any = model
        loaded.to(device)
        loaded.eval()
        return cls(model, processor, spec=spec or f"transformers:{where}", limits=limits, threads=threads)

    @staticmethod
    def _load(tf: Any, config: Any, where: str, torch_dtype: Any, common: dict[str, Any]) -> tuple[Any, Any]:
        from docvlm.models._processors import load_processor

        if _is_vlm_config(config):
            model = tf.AutoModelForImageTextToText.from_pretrained(where, dtype=torch_dtype, **common)
            return model, load_processor(where, **common)
        model = tf.AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype, **common)
        return model, tf.AutoTokenizer.from_pretrained(where, **common)

    @property
    def profile(self) -> FamilyProfile:
        return self._profile

    def reset_cache(self) -> None:
        """Forget the cached scoring prefix (after the weights changed, e.g. an adapter was put on)."""
        self._prefix = None
        self._forward_args = None

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
    def render_prompt(self, messages: list[Message]) -> tuple[str, list[Image.Image]]:
        """The prompt text this model reads for ``messages`` (chat template or the family's raw prompt, the
        assistant's turn opened) and its images: what generation and scoring encode, and fine-tuning too."""
        return self._prompt(messages)

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
            self._apply_threads()
            for indices in groups.values():
                _deadline.check("generate")
                texts = self._generate([requests[i] for i in indices])
                for i, t in zip(indices, texts, strict=True):
                    out[i] = t
        return out

    def _generate(self, batch: list[Request]) -> list[str]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

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
        if _deadline.remaining() is not None:
            gen["stopping_criteria"] = StoppingCriteriaList([_deadline_criterion()])
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, **gen)
        except RuntimeError as exc:
            raise ModelError(f"generation failed in {self.spec}: {exc}") from exc
        _deadline.check("generate")  # a generation cut short by the deadline is not an answer
        return [str(t) for t in self.tokenizer.batch_decode(output[:, start:], skip_special_tokens=True)]

    # threads ---------------------------------------------------------------------------------------
    def _apply_threads(self) -> None:
        if str(self.model.device).startswith("cpu"):
            apply_torch_threads(threads_for(threads=self.threads))

    # scoring ---------------------------------------------------------------------------------------
    @property
    def supports_scoring(self) -> bool:
        """Decoder-only models score text prompts. Not encoder-decoder models, nor PaliGemma (its prompt attends
        both ways: the cached prefix would not be what it reads); image prompts are refused by ``score``."""
        return not self.is_encoder_decoder and self._profile.name != "paligemma"

    def _encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer(text)["input_ids"]]

    def split_tokens(self, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
        """The token ids of a rendered ``prompt`` and of ``continuation`` after it, split exactly as
        [`score`][docvlm.models.base.Model.score] splits them (what fine-tuning trains the continuation on)."""
        prefix = self._encode(prompt)
        return prefix, continuation_tokens(self._encode, self._decode, prompt, prefix, continuation)

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def _score(self, messages: list[Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        if any(m.images for m in messages):
            raise UsageError("score() takes text prompts; images in a scoring prompt are not supported yet",
                             hint="score with the page's text, or generate under a Literal choice for images")
        prompt, _ = self._prompt(messages)
        text = prompt + assistant_prefix
        prefix = self._encode(text)
        if not prefix:
            raise UsageError("score() needs a non-empty prompt or assistant_prefix")
        conts = [continuation_tokens(self._encode, self._decode, text, prefix, c) for c in continuations]
        with self._lock:
            self._apply_threads()
            return self._score_tokens(prefix, conts)

    def _forward_kwargs(self) -> tuple[str, bool]:
        """(name of the cache argument, whether ``logits_to_keep`` is accepted) of this model's forward."""
        if self._forward_args is None:
            params = inspect.signature(self.model.forward).parameters
            self._forward_args = ("cache" if "cache" in params else "past_key_values", "logits_to_keep" in params)
        return self._forward_args

    def _prefill(self, prefix: list[int]) -> _Prefix:
        """The KV cache of ``prefix``, reusing the longest token prefix it shares with the last one scored."""
        import torch
        from transformers import DynamicCache

        old = self._prefix
        if old is not None and old.ids == tuple(prefix):
            return old
        cache_arg, keep_arg = self._forward_kwargs()
        keep = 0
        cache: Any = None
        if old is not None:
            # at least the prefix's last token is run again: its logits are the first continuation token's
            keep = min(_common_prefix(old.ids, prefix), len(prefix) - 1)
            if keep > 0:
                try:
                    cache = old.cache
                    cache.crop(keep - cache.get_seq_length())
                except (AttributeError, ValueError, TypeError, NotImplementedError):
                    cache, keep = None, 0
        self._prefix = None  # the old entry's cache is being modified in place
        if cache is None:
            try:
                cache = DynamicCache(config=self.model.config)
            except TypeError:  # older transformers
                cache = DynamicCache()
        device = self.model.device
        ids = torch.tensor([prefix[keep:]], device=device)
        positions = torch.arange(keep, len(prefix), device=device)[None]
        kwargs: dict[str, Any] = {cache_arg: cache, "use_cache": True, "position_ids": positions}
        if keep_arg:
            kwargs["logits_to_keep"] = 1
        _deadline.check("score")
        try:
            out = self.model(input_ids=ids, **kwargs)
        except RuntimeError as exc:
            raise ModelError(f"scoring failed in {self.spec}: {exc}") from exc
        entry = _Prefix(tuple(prefix), cache, out.logits[0, -1].float())
        self._prefix = entry
        return entry

    def _score_tokens(self, prefix: list[int], conts: list[list[int]]) -> list[float]:
        """Sum of log-probabilities of each token list after ``prefix``: one prefill, then the continuations packed
        into one sequence whose attention mask lets each see the prefix and its own earlier tokens only."""
        import torch

        with torch.inference_mode():
            entry = self._prefill(prefix)
            first = torch.log_softmax(entry.last_logits, dim=-1)
            scores = [0.0] * len(conts)
            todo = [i for i, c in enumerate(conts) if c]
            for i in todo:
                scores[i] = float(first[conts[i][0]])
            rest = [i for i in todo if len(conts[i]) > 1]
            chunk: list[int] = []
            size = 0
            for i in rest:
                n = len(conts[i]) - 1  # the last token is only predicted, never fed
                if chunk and size + n > SCORE_CHUNK_TOKENS:
                    self._score_chunk(entry, chunk, conts, scores)
                    chunk, size = [], 0
                chunk.append(i)
                size += n
            if chunk:
                self._score_chunk(entry, chunk, conts, scores)
        return scores

    def _score_chunk(self, entry: _Prefix, chunk: list[int], conts: list[list[int]], scores: list[float]) -> None:
        import torch

        _deadline.check("score")
        p = len(entry.ids)
        fed: list[int] = []
        positions: list[int] = []
        spans: list[tuple[int, int]] = []
        for i in chunk:
            start = len(fed)
            fed += conts[i][:-1]
            positions += range(p, p + len(conts[i]) - 1)
            spans.append((start, len(fed)))
        t = len(fed)
        device = self.model.device
        dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
        allowed = torch.zeros((t, p + t), dtype=torch.bool)
        allowed[:, :p] = True
        for start, end in spans:
            allowed[start:end, p + start:p + end] = torch.ones((end - start, end - start), dtype=torch.bool).tril()
        mask = torch.zeros((1, 1, t, p + t), dtype=dtype)
        mask.masked_fill_(~allowed[None, None], torch.finfo(dtype).min)
        cache_arg, _ = self._forward_kwargs()
        try:
            out = self.model(input_ids=torch.tensor([fed], device=device),
                             position_ids=torch.tensor([positions], device=device),
                             attention_mask=mask.to(device), use_cache=True, **{cache_arg: entry.cache})
        except RuntimeError as exc:
            raise ModelError(f"scoring failed in {self.spec}: {exc}") from exc
        finally:
            try:
                entry.cache.crop(p - entry.cache.get_seq_length())  # back to the prefix alone
                intact = entry.cache.get_seq_length() == p
            except Exception:
                intact = False
            if not intact:
                self._prefix = None
        logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
        for i, (start, end) in zip(chunk, spans, strict=True):
            targets = torch.tensor(conts[i][1:], device=logprobs.device)
            scores[i] += float(logprobs[start:end].gather(1, targets[:, None]).sum())


def _deadline_criterion() -> Any:
    """A transformers stopping criterion that ends generation at the current deadline (docvlm._deadline)."""
    import torch
    from transformers import StoppingCriteria

    class DeadlineCriterion(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), _deadline.expired(), dtype=torch.bool, device=input_ids.device)

    return DeadlineCriterion()
