"""The model seam: messages and an output type in, a validated value out.

A backend implements one method, `Model._complete`, which turns a batch of requests into raw
output texts that follow each request's compiled constraint. Everything else (normalizing messages,
compiling and caching the constraint, parsing and validating, the async twins) is shared here.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

from docvlm._deadline import check, deadline
from docvlm.decoding import CompiledConstraint, Limits, compile_output_type
from docvlm.errors import ScoringNotSupportedError, UsageError
from docvlm.models.messages import Message, MessagesInput, to_messages

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.profiles import FamilyProfile
    from docvlm.types.geometry import Size

__all__ = ["GenerationSettings", "Model", "Request"]

T = TypeVar("T")

#: The most new tokens a budgeted constraint (strings or lists without ``max_length``) may take: a model that
#: loops inside an open string is cut here, and the parse then raises a ConstraintError, instead of running
#: for tens of thousands of tokens. Give fields an explicit ``max_length`` or pass ``max_new_tokens=`` to change it.
BUDGET_CAP_TOKENS = 2048


@dataclass(frozen=True)
class GenerationSettings:
    """How to sample.

    Attributes:
        max_new_tokens: a cap on new tokens. By default the constraint's own bound, which can never cut
            a valid output short; a smaller cap can, and then a [`ConstraintError`][docvlm.errors.ConstraintError]
            says so (never half an object).
        temperature: 0 for greedy decoding (the default), > 0 to sample.
        top_p: nucleus sampling mass when sampling.
        seed: seed for sampling, for reproducible outputs.
    """

    max_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UsageError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Request:
    """One generation request as a backend sees it."""

    messages: list[Message]
    constraint: CompiledConstraint[Any]
    settings: GenerationSettings = field(default_factory=GenerationSettings)

    @property
    def images(self) -> list[Image.Image]:
        return [img for m in self.messages for img in m.images]

    def max_new_tokens(self) -> int:
        """The token cap of this request: the constraint's bound, never more than `BUDGET_CAP_TOKENS` for a
        budgeted constraint (open strings / lists), and never more than the settings' own cap."""
        bound = self.constraint.max_new_tokens
        if not self.constraint.exact:
            bound = min(bound, BUDGET_CAP_TOKENS)
        cap = self.settings.max_new_tokens
        return bound if cap is None else min(bound, cap)


@functools.lru_cache(maxsize=512)
def _compile_cached(output_type: Any, limits: Limits) -> CompiledConstraint[Any]:
    return compile_output_type(output_type, limits=limits)


def compile_cached(output_type: Any, limits: Limits) -> CompiledConstraint[Any]:
    """``compile_output_type`` with an in-memory cache keyed by (type, limits); unhashable types compile anew."""
    try:
        return _compile_cached(output_type, limits)
    except TypeError:  # an unhashable output type (e.g. a list of options)
        return compile_output_type(output_type, limits=limits)


class Model(abc.ABC):
    """A language or vision-language model that answers typed questions.

    Subclasses implement `_complete`. Users call [`generate`][docvlm.models.base.Model.generate] / [`generate_batch`][docvlm.models.base.Model.generate_batch] (or the
    async twins) with a prompt and an output type: a pydantic model, ``list[...]``, a ``Literal`` / enum
    choice, a [`Regex`][docvlm.decoding.Regex], ``int`` / ``float`` / ``bool``, or ``str``.

    Attributes:
        spec: the spec the model was loaded from (``"transformers:..."``, ``"test"``, ...).
        supports_images: whether image parts may appear in messages.
        limits: default bounds for open-ended output types (see [`Limits`][docvlm.decoding.Limits]).
    """

    spec: str = ""
    supports_images: bool = False
    limits: Limits = Limits()
    #: intra-op threads fixed by ``load_model(..., threads=n)``; ``None``: docvlm's thread policy decides per call
    threads: int | None = None
    #: how much the model's log-probability of a candidate value counts beside the learned ranker's score when
    #: [`docvlm.extract`][docvlm.extract] chooses by scoring (``None``: ``docvlm.tasks.extract.LM_WEIGHT``; ``0``: the
    #: ranking alone decides and the model is not asked). Measured per model: ``python -m bench.lm_weight``.
    choice_weight: float | None = None

    @property
    def supports_scoring(self) -> bool:
        """Whether [`score`][docvlm.models.base.Model.score] works on this backend (local transformers models and the fakes: yes)."""
        return False

    @property
    def profile(self) -> FamilyProfile:
        """How this model's family speaks: prompt quirks and its box convention."""
        from docvlm.models.profiles import GENERIC

        return GENERIC

    def input_image_size(self, image: Image.Image) -> Size:
        """The size of ``image`` as the model sees it after its processor (default: unchanged)."""
        from docvlm.types.geometry import Size

        return Size(width=image.width, height=image.height)

    # the seam ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _complete(self, requests: Sequence[Request]) -> list[str]:
        """Raw output texts, one per request, each following its request's constraint."""

    def _score(self, messages: list[Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        """Summed log-probabilities of each continuation (backends with ``supports_scoring`` implement it)."""
        raise self._cannot_score()

    def _cannot_score(self) -> ScoringNotSupportedError:
        """The error [`score`][docvlm.models.base.Model.score] raises when ``supports_scoring`` is false."""
        return ScoringNotSupportedError(
            f"{self.spec or type(self).__name__} cannot score continuations",
            hint="check model.supports_scoring; a local decoder-only transformers model (or 'default') can",
        )

    # public API --------------------------------------------------------------------------------------
    @overload
    def generate(self, prompt: MessagesInput, output_type: type[T], *, settings: GenerationSettings | None = None,
                 timeout: float | None = None, **options: Any) -> T: ...
    @overload
    def generate(self, prompt: MessagesInput, output_type: Any = str, *, settings: GenerationSettings | None = None,
                 timeout: float | None = None, **options: Any) -> Any: ...
    def generate(self, prompt: MessagesInput, output_type: Any = str, *, settings: GenerationSettings | None = None,
                 timeout: float | None = None, **options: Any) -> Any:
        """Answer one prompt with a validated value of ``output_type``.

        Args:
            prompt: a string, a list of text / image parts, or a list of messages.
            output_type: what to return (see the class docstring).
            settings: sampling settings; keyword ``options`` (``temperature=...``, ``seed=...``)
                override single fields.
            timeout: seconds before the call stops with [`TimeLimitError`][docvlm.errors.TimeLimitError] (local models stop
                at the next token; server calls at the HTTP timeout); ``None``: no limit of its own.

        Raises:
            UsageError: images given to a text-only model, or bad settings.
            ConstraintError: the output type cannot be compiled, or the output was cut off.
            ModelError: the backend failed.
            TimeLimitError: ``timeout`` passed.
        """
        return self.generate_batch([prompt], output_type, settings=settings, timeout=timeout, **options)[0]

    def generate_batch(self, prompts: Sequence[MessagesInput], output_type: Any = str, *,
                       settings: GenerationSettings | None = None, timeout: float | None = None,
                       **options: Any) -> list[Any]:
        """Answer several prompts with the same output type (batched by the backend where it can)."""
        with deadline(timeout, "generate"):
            requests = self.prepare(prompts, output_type, settings=settings, **options)
            if not requests:
                return []
            check("generate")
            texts = self._complete(requests)
            check("generate")
        if len(texts) != len(requests):
            raise AssertionError(f"{type(self).__name__}._complete returned {len(texts)} outputs for {len(requests)}")
        return [r.constraint.parse(t) for r, t in zip(requests, texts, strict=True)]

    async def agenerate(self, prompt: MessagesInput, output_type: Any = str, *,
                        settings: GenerationSettings | None = None, timeout: float | None = None,
                        **options: Any) -> Any:
        """Async twin of [`generate`][docvlm.models.base.Model.generate]."""
        return (await self.agenerate_batch([prompt], output_type, settings=settings, timeout=timeout, **options))[0]

    async def agenerate_batch(self, prompts: Sequence[MessagesInput], output_type: Any = str, *,
                              settings: GenerationSettings | None = None, timeout: float | None = None,
                              **options: Any) -> list[Any]:
        """Async twin of [`generate_batch`][docvlm.models.base.Model.generate_batch]; local backends run in a worker thread."""
        return await asyncio.to_thread(self.generate_batch, prompts, output_type, settings=settings,
                                       timeout=timeout, **options)

    def score(self, prompt: MessagesInput, continuations: Sequence[str], *, assistant_prefix: str = "",
              timeout: float | None = None) -> list[float]:
        """How likely the model finds each continuation as the start of its answer to ``prompt``.

        Each score is the summed log-probability (natural log, <= 0) of the continuation's tokens when they follow
        the chat-templated prompt, the opening of the assistant's turn and ``assistant_prefix``. Choose among
        candidate values with one call::

            scores = model.score(page_text + "\n\nWhat is the total?", ["12.50", "3.00"],
                                 assistant_prefix='{"total": "')
            best = max(zip(scores, candidates))[1]

        The continuation is scored as the model would generate it after the prefix: its own tokens, as the
        tokenizer splits the prefix and continuation together where that split keeps the prefix's tokens, else
        the continuation's tokens on their own. An empty continuation scores 0. Sums favour short
        continuations; divide by a length if that is not what you want. Local models prefill the shared prefix
        once for all continuations, and keep it for the next call that shares it (same page, another field).

        Raises:
            ScoringNotSupportedError: the backend cannot score (``supports_scoring`` is false).
            UsageError: images given to a text-only model, or continuations that are not a list of strings.
            TimeLimitError: ``timeout`` passed.
        """
        if isinstance(continuations, str) or not all(isinstance(c, str) for c in continuations):
            raise UsageError("continuations must be a list of strings", hint="wrap a single continuation in a list")
        if not isinstance(assistant_prefix, str):
            raise UsageError(f"assistant_prefix must be a string, got {type(assistant_prefix).__name__}")
        if not self.supports_scoring:
            raise self._cannot_score()
        messages = to_messages(prompt)
        if not self.supports_images and any(m.images for m in messages):
            raise UsageError(f"{self.spec or type(self).__name__} is a text-only model and the prompt contains images",
                             hint="give the page's text layer instead of its image")
        if not continuations:
            return []
        with deadline(timeout, "score"):
            check("score")
            scores = self._score(messages, list(continuations), assistant_prefix)
        if len(scores) != len(continuations):
            raise AssertionError(f"{type(self).__name__}._score returned {len(scores)} scores for {len(continuations)}")
        return [float(x) for x in scores]

    async def ascore(self, prompt: MessagesInput, continuations: Sequence[str], *, assistant_prefix: str = "",
                     timeout: float | None = None) -> list[float]:
        """Async twin of [`score`][docvlm.models.base.Model.score]."""
        return await asyncio.to_thread(self.score, prompt, continuations, assistant_prefix=assistant_prefix,
                                       timeout=timeout)

    # shared helpers ----------------------------------------------------------------------------------
    def compile(self, output_type: Any) -> CompiledConstraint[Any]:
        """The compiled constraint of ``output_type`` under this model's limits (cached)."""
        return compile_cached(output_type, self.limits)

    def prepare(self, prompts: Sequence[MessagesInput], output_type: Any, *,
                settings: GenerationSettings | None = None, **options: Any) -> list[Request]:
        """Normalize prompts, check capabilities and compile the constraint: the requests a backend gets."""
        if isinstance(prompts, (str, Message)):
            raise UsageError("generate_batch takes a list of prompts", hint="use generate() for one prompt")
        base = settings or GenerationSettings()
        if options:
            try:
                base = replace(base, **options)
            except TypeError as exc:
                raise UsageError(f"unknown generation option: {exc}",
                                 hint="use max_new_tokens, temperature, top_p or seed") from None
        constraint = self.compile(output_type)
        requests = []
        for i, prompt in enumerate(prompts):
            messages = to_messages(prompt)
            if not self.supports_images and any(m.images for m in messages):
                raise UsageError(
                    f"{self.spec or type(self).__name__} is a text-only model and prompt {i} contains images",
                    hint="use a vision-language model, or give the page's text layer instead of its image",
                )
            requests.append(Request(messages, constraint, base))
        return requests

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r}>"
