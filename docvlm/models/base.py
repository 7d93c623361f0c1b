"""The model seam: messages and an output type in, a validated value out.

Every backend, the shipped fakes included, implements one request method, `Model._complete`, which turns a batch
of requests into raw answers (texts), one per request. A backend with a native async client also implements its
twin `Model._acomplete`. Everything else lives here, once: normalizing messages, compiling the constraint (cached
by ``compile_output_type``), counting the answers, reading each back into a validated value (exactly for
backends that decode under the constraint, leniently for text formatted elsewhere: `Model.validation`), sending
an invalid answer back with the error up to `Model.max_retries` times, time limits, and the async twins.
Scoring follows the same pattern: backends implement `Model._score`; arguments, capability, counting and time
limits are checked here.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from docvlm._deadline import check, deadline
from docvlm.decoding import CompiledConstraint, Limits, compile_output_type
from docvlm.errors import ConstraintError, DocVLMError, ModelError, ScoringNotSupportedError, UsageError
from docvlm.models._answers import read_lenient
from docvlm.models.messages import Message, MessagesInput, to_messages

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.profiles import FamilyProfile
    from docvlm.types.geometry import Size

__all__ = ["Answer", "Completion", "GenerationSettings", "Model", "Request"]

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


@dataclass(frozen=True)
class Completion:
    """A backend's raw answer to one request, when it has more to say than the text.

    Attributes:
        text: the answer as the model wrote it.
        cut_off: the backend stopped at its token cap (a server's ``finish_reason="length"``).
    """

    text: str
    cut_off: bool = False


#: What a backend's `Model._complete` returns for each request: the text, or a `Completion`.
Answer = str | Completion

_CORRECTION = "Your answer is not valid: {error}\nAnswer again, following the required format exactly."


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
    #: How answers are read: ``"exact"`` (decoded here under the constraint, so they must match its regex) or
    #: ``"lenient"`` (formatted elsewhere, by a server or a test's script: code fences, whitespace and key order are
    #: tolerated and pydantic validates).
    validation: Literal["exact", "lenient"] = "exact"
    #: How many times an answer that fails validation is sent back to the model with the error (the answer, then a
    #: user message naming the error) before the call fails; 0: the first invalid answer raises.
    max_retries: int = 0

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
    def _complete(self, requests: Sequence[Request]) -> Sequence[Answer]:
        """The one request method: raw answers (texts, or `Completion`), one per request, in order."""

    async def _acomplete(self, requests: Sequence[Request]) -> Sequence[Answer]:
        """Async twin of `_complete`: by default `_complete` in a worker thread (a native async client overrides it)."""
        return await asyncio.to_thread(self._complete, requests)

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
            rounds = self._rounds(requests)
            batch = next(rounds)
            while True:
                check("generate")
                answers = self._complete(batch)
                check("generate")
                try:
                    batch = rounds.send(answers)
                except StopIteration as done:
                    results: list[Any] = done.value
                    return results

    async def agenerate(self, prompt: MessagesInput, output_type: Any = str, *,
                        settings: GenerationSettings | None = None, timeout: float | None = None,
                        **options: Any) -> Any:
        """Async twin of [`generate`][docvlm.models.base.Model.generate]."""
        return (await self.agenerate_batch([prompt], output_type, settings=settings, timeout=timeout, **options))[0]

    async def agenerate_batch(self, prompts: Sequence[MessagesInput], output_type: Any = str, *,
                              settings: GenerationSettings | None = None, timeout: float | None = None,
                              **options: Any) -> list[Any]:
        """Async twin of [`generate_batch`][docvlm.models.base.Model.generate_batch]: the same answers, read and
        corrected the same way; local backends run in a worker thread, server backends use their async client."""
        with deadline(timeout, "generate"):
            requests = await asyncio.to_thread(self.prepare, prompts, output_type, settings=settings, **options)
            if not requests:
                return []
            rounds = self._rounds(requests)
            batch = next(rounds)
            while True:
                check("generate")
                answers = await self._acomplete(batch)
                check("generate")
                try:
                    batch = rounds.send(answers)
                except StopIteration as done:
                    results: list[Any] = done.value
                    return results

    # answers back to values: counting, validation and corrections, once for every backend --------------
    def _rounds(self, requests: Sequence[Request]) -> Generator[list[Request], Sequence[Answer], list[Any]]:
        """The exchange with the backend, free of I/O: yields the requests to answer, receives their answers.

        Each answer is counted and read into a value ([`read_answer`][docvlm.models.base.Model.read_answer]); one
        that fails is sent back with the error, up to `max_retries` times, and then `_invalid_answer` says what is
        raised.
        """
        current = list(requests)
        results: list[Any] = [None] * len(current)
        pending = list(range(len(current)))
        for attempt in range(self.max_retries + 1):
            answers = yield [current[i] for i in pending]
            single = isinstance(answers, (str, Completion))
            if single or len(answers) != len(pending):
                raise ModelError(
                    f"{self.spec or type(self).__name__} returned {1 if single else len(answers)} answers for "
                    f"{len(pending)} requests", hint="a backend's _complete returns one answer per request, in order")
            failed = []
            for i, answer in zip(pending, answers, strict=True):
                completion = answer if isinstance(answer, Completion) else Completion(answer)
                try:
                    results[i] = self.read_answer(current[i].constraint, completion.text)
                except ConstraintError as error:
                    if attempt == self.max_retries:
                        raise self._invalid_answer(current[i], completion, error, attempt + 1) from error
                    current[i] = replace(current[i], messages=[
                        *current[i].messages,
                        Message("assistant", [completion.text]),
                        Message("user", [_CORRECTION.format(error=error.message)]),
                    ])
                    failed.append(i)
            pending = failed
            if not pending:
                break
        return results

    def read_answer(self, constraint: CompiledConstraint[Any], text: str) -> Any:
        """One raw answer as a validated value, read as `validation` says: exactly, or leniently.

        Raises:
            ConstraintError: what is wrong with the answer (the text a model is told when it is sent back).
        """
        if self.validation == "lenient":
            return read_lenient(constraint, text)
        return constraint.parse(text)

    def _invalid_answer(self, request: Request, answer: Completion, error: ConstraintError,
                        answers: int) -> DocVLMError:
        """The error raised when the last of ``answers`` answers to ``request`` still failed with ``error``:
        ``error`` itself when no correction was asked for, else a [`ModelError`][docvlm.errors.ModelError]; backends may
        phrase their own."""
        if answers == 1:
            return error
        cut = " (the model stopped at its token cap)" if answer.cut_off else ""
        return ModelError(
            f"{self.spec or type(self).__name__} gave {answers} invalid answers; the last{cut}: {error.message}",
            hint="raise max_retries, or simplify the output type",
        )

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
        if isinstance(scores, (str, bytes)) or len(scores) != len(continuations):
            got = 1 if isinstance(scores, (str, bytes)) else len(scores)
            raise ModelError(f"{self.spec or type(self).__name__} returned {got} scores for {len(continuations)} "
                             "continuations", hint="a backend's _score returns one score per continuation, in order")
        return [float(x) for x in scores]

    async def ascore(self, prompt: MessagesInput, continuations: Sequence[str], *, assistant_prefix: str = "",
                     timeout: float | None = None) -> list[float]:
        """Async twin of [`score`][docvlm.models.base.Model.score]."""
        return await asyncio.to_thread(self.score, prompt, continuations, assistant_prefix=assistant_prefix,
                                       timeout=timeout)

    # shared helpers ----------------------------------------------------------------------------------
    def compile(self, output_type: Any) -> CompiledConstraint[Any]:
        """The compiled constraint of ``output_type`` under this model's limits (cached by ``compile_output_type``)."""
        return compile_output_type(output_type, limits=self.limits)

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
