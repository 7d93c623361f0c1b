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

from docvlm.decoding import CompiledConstraint, Limits, compile_output_type
from docvlm.errors import UsageError
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

    # public API --------------------------------------------------------------------------------------
    @overload
    def generate(self, prompt: MessagesInput, output_type: type[T], *, settings: GenerationSettings | None = None,
                 **options: Any) -> T: ...
    @overload
    def generate(self, prompt: MessagesInput, output_type: Any = str, *, settings: GenerationSettings | None = None,
                 **options: Any) -> Any: ...
    def generate(self, prompt: MessagesInput, output_type: Any = str, *, settings: GenerationSettings | None = None,
                 **options: Any) -> Any:
        """Answer one prompt with a validated value of ``output_type``.

        Args:
            prompt: a string, a list of text / image parts, or a list of messages.
            output_type: what to return (see the class docstring).
            settings: sampling settings; keyword ``options`` (``temperature=...``, ``seed=...``)
                override single fields.

        Raises:
            UsageError: images given to a text-only model, or bad settings.
            ConstraintError: the output type cannot be compiled, or the output was cut off.
            ModelError: the backend failed.
        """
        return self.generate_batch([prompt], output_type, settings=settings, **options)[0]

    def generate_batch(self, prompts: Sequence[MessagesInput], output_type: Any = str, *,
                       settings: GenerationSettings | None = None, **options: Any) -> list[Any]:
        """Answer several prompts with the same output type (batched by the backend where it can)."""
        requests = self.prepare(prompts, output_type, settings=settings, **options)
        if not requests:
            return []
        texts = self._complete(requests)
        if len(texts) != len(requests):
            raise AssertionError(f"{type(self).__name__}._complete returned {len(texts)} outputs for {len(requests)}")
        return [r.constraint.parse(t) for r, t in zip(requests, texts, strict=True)]

    async def agenerate(self, prompt: MessagesInput, output_type: Any = str, *,
                        settings: GenerationSettings | None = None, **options: Any) -> Any:
        """Async twin of [`generate`][docvlm.models.base.Model.generate]."""
        return (await self.agenerate_batch([prompt], output_type, settings=settings, **options))[0]

    async def agenerate_batch(self, prompts: Sequence[MessagesInput], output_type: Any = str, *,
                              settings: GenerationSettings | None = None, **options: Any) -> list[Any]:
        """Async twin of [`generate_batch`][docvlm.models.base.Model.generate_batch]; local backends run in a worker thread."""
        return await asyncio.to_thread(self.generate_batch, prompts, output_type, settings=settings, **options)

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
