"""Constrained decoding on runtimes that step one token at a time (onnxruntime-genai, llama.cpp).

The mask is exactly the transformers path's: the same compiled regex, the same outlines-core index over the
same vocabulary ([`docvlm.decoding.get_index`][docvlm.decoding.get_index]), the same rule that EOS is allowed only in accepting
states. Only where the logits come from differs. numpy only; the runtime objects are duck-typed.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from docvlm import _deadline
from docvlm.decoding import get_index, vocabulary_from_tokenizer
from docvlm.errors import ConstraintError, UsageError
from docvlm.models.base import Model, Request

if TYPE_CHECKING:
    from docvlm.models.messages import Message
    from docvlm.models.transformers import TransformersModel

__all__ = ["StepModel", "allowed_tokens"]


def allowed_tokens(guide: Any, words: int, width: int) -> np.ndarray:
    """The boolean mask of tokens ``guide`` allows now, over a vocabulary of ``width`` logits."""
    bits = np.zeros(words, dtype=np.int32)
    guide.write_mask_into(bits.ctypes.data, words, 4)
    return np.unpackbits(bits.view(np.uint8), bitorder="little")[:width].astype(bool)


class StepModel(Model):
    """A text-only model whose runtime feeds tokens and returns the next token's logits.

    Subclasses implement `_feed` (append tokens to the runtime's sequence after keeping its first
    ``keep`` tokens, return the logits after the last one). Prompts are formatted and
    tokenized by the model's Hugging Face tokenizer, so token ids and the constraint's vocabulary are those of
    the transformers backend. Scoring is delegated to a transformers twin loaded on first use (``scorer``).
    """

    def __init__(self, tokenizer: Any, *, spec: str, eos_token_ids: Sequence[int], scorer: Any = None) -> None:
        self.tokenizer = tokenizer
        self.spec = spec
        self.supports_images = False
        self._eos = {int(t) for t in eos_token_ids}
        self._tokens: list[int] = []  # what the runtime holds now
        self._lock = threading.Lock()
        self._scorer_factory = scorer
        self._scorer: TransformersModel | None = None

    # runtime -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _feed(self, keep: int, tokens: list[int]) -> np.ndarray:
        """Keep the first ``keep`` tokens of the runtime's sequence, append ``tokens``, return the last logits."""

    def _advance(self, tokens: list[int]) -> np.ndarray:
        """Set the runtime's sequence to ``tokens``, reusing the prefix it already holds."""
        common = 0
        limit = min(len(self._tokens), len(tokens) - 1)
        while common < limit and self._tokens[common] == tokens[common]:
            common += 1
        logits = self._feed(common, tokens[common:])
        self._tokens = list(tokens)
        return logits

    # prompts -----------------------------------------------------------------------------------------
    def _prompt_ids(self, messages: list[Message]) -> list[int]:
        if any(m.images for m in messages):
            raise UsageError(f"{self.spec} is a text-only model and the prompt contains images")
        if getattr(self.tokenizer, "chat_template", None):
            chat = [{"role": m.role, "content": m.text} for m in messages]
            text = str(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
        else:
            text = "\n".join(m.text for m in messages if m.text)
        return [int(t) for t in self.tokenizer(text)["input_ids"]]

    # the seam ----------------------------------------------------------------------------------------
    def _complete(self, requests: Sequence[Request]) -> list[str]:
        with self._lock:
            return [self._decode_one(r) for r in requests]

    def _decode_one(self, request: Request) -> str:
        prompt = self._prompt_ids(request.messages)
        constraint = request.constraint
        guide = None
        words = width = 0
        if not constraint.free_text:
            from outlines_core import Guide

            vocabulary = vocabulary_from_tokenizer(self.tokenizer)
            guide = Guide(get_index(constraint, vocabulary))
            vocab_eos = vocabulary.eos_token_id
        settings = request.settings
        rng = np.random.default_rng(settings.seed)
        limit = request.max_new_tokens()
        out: list[int] = []
        logits = self._advance(prompt)
        stops = set(self._eos) | ({vocab_eos} if guide is not None else set())
        known: np.ndarray | None = None  # the mask of the next step, when already computed
        while len(out) < limit:
            _deadline.check("generate")
            scores = np.asarray(logits, dtype=np.float32).reshape(-1)
            if guide is not None:
                width = scores.shape[0]
                words = (max(width, vocabulary.size) + 31) // 32
                allowed = known if known is not None else allowed_tokens(guide, words, width)
                if not allowed.any():
                    raise ConstraintError(f"the constraint allows no token after {len(out)} tokens")
                scores = np.where(allowed, scores, -np.inf)
            token = self._pick(scores, settings.temperature, settings.top_p, rng)
            if token in stops:
                break
            out.append(token)
            run = [token]
            known = None
            if guide is not None:
                guide.advance(token, return_tokens=False)
                # tokens the mask leaves no choice about (probability 1 under the constraint) are fed together
                # with the chosen one: one forward pass for the run instead of one per token, same output
                while len(out) < limit:
                    known = allowed_tokens(guide, words, width)
                    only = np.flatnonzero(known)
                    if len(only) != 1 or int(only[0]) in stops:
                        break
                    forced = int(only[0])
                    guide.advance(forced, return_tokens=False)
                    out.append(forced)
                    run.append(forced)
                    known = None
            logits = self._feed(len(self._tokens), run)
            self._tokens += run
        return str(self.tokenizer.decode(out, skip_special_tokens=True))

    @staticmethod
    def _pick(scores: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
        if temperature == 0:
            return int(np.argmax(scores))
        z = (scores - scores.max()) / temperature
        p = np.exp(z)
        p /= p.sum()
        if top_p < 1:
            order = np.argsort(-p)
            cum = np.cumsum(p[order])
            cut = order[: int(np.searchsorted(cum, top_p)) + 1]
            q = np.zeros_like(p)
            q[cut] = p[cut]
            p = q / q.sum()
        return int(rng.choice(len(p), p=p))

    # scoring ------------------------------------------------------------------------------------------
    @property
    def supports_scoring(self) -> bool:
        return self._scorer_factory is not None

    def scorer(self) -> TransformersModel:
        """The transformers twin that scores for this model (loaded on first use)."""
        if self._scorer is None:
            if self._scorer_factory is None:
                raise self._cannot_score()
            self._scorer = self._scorer_factory()
        return self._scorer

    def _score(self, messages: list[Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        return self.scorer()._score(messages, continuations, assistant_prefix)
