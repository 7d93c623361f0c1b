"""A backend for any OpenAI-compatible chat server: vLLM, SGLang, Ollama, llama.cpp, ``docvlm serve``, OpenAI.

The server does the decoding; docvlm asks for structured output in the server's own dialect and then validates
every answer itself. The dialect is named with ``server=...`` or, by default, probed once (``GET /models``: the
``owned_by`` of the served models; then Ollama's ``GET /api/version``) before the first structured request:

| server | how a pydantic model, list, `Literal` choice or [`Regex`][docvlm.decoding.Regex] is asked for |
|---|---|
| `openai` | `response_format={"type": "json_schema", "json_schema": {"schema": ..., "strict": true}}`; a `Regex` is not sent (OpenAI has no regex constraint) |
| `vllm` | docvlm's own bounded regex, `{"structured_outputs": {"regex": ...}}` (`guided_regex` before vLLM 0.10.2: `vllm-guided`), so answers obey exactly the bounds a local model obeys (integer and float ranges, string and list lengths, which JSON-schema engines drop) |
| `sglang` | the same regex in SGLang's `regex` field |
| `llamacpp` | the same regex as a GBNF `grammar` (llama.cpp's `llama-server` and llama-cpp-python) |
| `llamacpp-json` | `response_format={"type": "json_object", "schema": ...}`, llama.cpp's JSON-schema path (these servers answer HTTP 500 to the `json_schema` form); it allows whitespace, and llama-cpp-python 0.3.36 let `{"number": 250}` through for `maximum: 100` |
| `ollama` | Ollama's native `POST /api/chat` with `format` set to the JSON schema |
| `docvlm` | as `openai`, plus `structured_outputs` for a `Regex` (`docvlm serve` decodes either exactly) |

A ``Literal`` / enum choice is sent as the schema ``{"choice": {"enum": [...]}}`` (the bare answer is accepted
too), or as its own regex to vLLM and SGLang; free text (``str``) is sent with no constraint and needs no probe.

Servers add whitespace, reorder keys or ignore ``response_format`` altogether, so the reply is read
leniently (``validation = "lenient"``: pydantic validates it rather than the constraint's compact regex). Like
every backend, [`OpenAIModel`][docvlm.models.openai.OpenAIModel] implements only the request methods (``_complete``
and its async twin ``_acomplete``, the server's raw answers); [`Model`][docvlm.models.base.Model] reads them, and
sends an answer that fails validation back with the error (the assistant's answer, then a user message naming
the error) up to ``max_retries`` times, then [`ModelError`][docvlm.errors.ModelError] says what was wrong.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextvars
import io
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import httpx

from docvlm import _deadline
from docvlm.decoding import CompiledConstraint, Limits, OutputKind, regex_to_gbnf
from docvlm.errors import ConstraintError, DocVLMError, ModelError, ScoringNotSupportedError, UsageError
from docvlm.models._answers import CHOICE_KEY
from docvlm.models.base import Answer, Completion, Model, Request
from docvlm.models.messages import Message

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.profiles import FamilyProfile

__all__ = ["DIALECTS", "OpenAIModel", "ServerDialect"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MAX_SHOWN = 300  # characters of a server's error message kept in a ModelError
_MAX_BACKOFF_S = 8.0


@dataclass
class _Reply:
    text: str
    finish_reason: str | None


RegexField = Literal["structured_outputs", "guided_regex", "regex"]


@dataclass(frozen=True)
class ServerDialect:
    """How one kind of server is asked for structured output.

    Attributes:
        name: the ``server=`` name (``"vllm"``, ``"ollama"``, ...).
        structured: how JSON and choice outputs are constrained: ``"json_schema"`` / ``"json_object"``
            (``response_format``), ``"regex"`` (docvlm's compiled regex in ``regex_field``), ``"grammar"``
            (that regex as a GBNF grammar, for every output but free text) or ``"format"`` (Ollama's native
            ``format``).
        regex_field: the request field that carries a regex (``None``: the server has none; a ``Regex``
            output is then validated and corrected, not constrained).
        api: ``"openai"`` (``POST {base_url}/chat/completions``) or ``"ollama"`` (``POST /api/chat`` at the
            server's root).
    """

    name: str
    structured: Literal["json_schema", "json_object", "regex", "grammar", "format"]
    regex_field: RegexField | None
    api: Literal["openai", "ollama"] = "openai"


#: The dialects ``OpenAIModel(server=...)`` knows; ``"auto"`` probes the server for one of them.
DIALECTS: dict[str, ServerDialect] = {d.name: d for d in (
    ServerDialect("openai", "json_schema", None),
    ServerDialect("vllm", "regex", "structured_outputs"),
    ServerDialect("vllm-guided", "regex", "guided_regex"),  # vLLM before 0.10.2
    ServerDialect("sglang", "regex", "regex"),
    ServerDialect("llamacpp", "grammar", None),
    ServerDialect("llamacpp-json", "json_object", None),
    ServerDialect("ollama", "format", None, api="ollama"),
    ServerDialect("docvlm", "json_schema", "structured_outputs"),
)}
ServerName = Literal["auto", "openai", "vllm", "vllm-guided", "sglang", "llamacpp", "llamacpp-json", "ollama", "docvlm"]
#: ``owned_by`` of ``GET /models`` entries -> dialect ("me" is llama-cpp-python's, "library" Ollama's).
_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llamacpp", "me": "llamacpp", "docvlm": "docvlm",
           "library": "ollama"}


class OpenAIModel(Model):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint, called with httpx.

    Args:
        model: the model name the server knows (``"Qwen/Qwen2.5-VL-7B-Instruct"``, ``"qwen2.5vl:7b"``, ...).
        base_url: the API root, ending in ``/v1`` for every common server
            (vLLM/SGLang ``http://localhost:8000/v1``, Ollama ``http://localhost:11434/v1``).
        api_key: sent as a bearer token; defaults to ``$OPENAI_API_KEY``; local servers need none.
        supports_images: whether the model takes image parts (sent as PNG ``data:`` URLs).
        timeout: seconds for one HTTP request.
        max_retries: how many times an answer that fails validation is sent back with the error.
        concurrency: requests in flight at once in a batch.
        server: the server's dialect (see ``DIALECTS``): ``"openai"``, ``"vllm"``,
            ``"vllm-guided"`` (before 0.10.2), ``"sglang"``, ``"llamacpp"``, ``"ollama"``, ``"docvlm"``, or
            ``"auto"`` (default) to probe the server once, before the first structured request.
        response_format: overrides the dialect's way of asking for JSON: ``"json_schema"`` or ``"json_object"``
            (with ``"schema"``, as llama.cpp's server wants it).
        client: an httpx client to use (and not close) instead of docvlm's own.
        async_client: the same for ``agenerate_batch``; by default each call opens its own.
        http_retries: how many times a 429 or 5xx answer is retried, with exponential backoff.
        regex_field: overrides the dialect's field for a [`Regex`][docvlm.decoding.Regex] output:
            ``"structured_outputs"`` (vLLM), ``"guided_regex"`` (vLLM before 0.10.2), ``"regex"`` (SGLang) or
            ``None`` (nothing is sent; answers are still validated and corrected).
        extra_body: extra fields merged into every request body (``{"top_k": 20}``, ...).
        profile: the model family's profile (prompt quirks, box convention); generic by default.

    Attributes:
        retry_backoff: seconds before the first HTTP retry; doubled on each later one (at most 8 s).
        limits: as for every model, except that the token-index budget (``max_free_chars``) is lifted:
            the server decodes, so no index is built here.
    """

    retry_backoff: float = 0.5
    limits: Limits = Limits(max_free_chars=1_000_000)
    validation = "lenient"

    def __init__(
        self,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        supports_images: bool = True,
        timeout: float = 60,
        max_retries: int = 2,
        concurrency: int = 8,
        server: ServerName = "auto",
        response_format: Literal["json_schema", "json_object"] | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        http_retries: int = 2,
        regex_field: RegexField | Literal["default"] | None = "default",
        extra_body: dict[str, Any] | None = None,
        profile: FamilyProfile | None = None,
    ) -> None:
        if not model:
            raise UsageError("OpenAIModel needs a model name", hint="e.g. OpenAIModel('Qwen/Qwen2.5-VL-7B-Instruct', ...)")
        if server != "auto" and server not in DIALECTS:
            raise UsageError(f"server must be 'auto' or one of {', '.join(map(repr, DIALECTS))}, got {server!r}")
        if response_format not in ("json_schema", "json_object", None):
            raise UsageError(f"response_format must be 'json_schema' or 'json_object', got {response_format!r}")
        if regex_field not in ("structured_outputs", "guided_regex", "regex", None, "default"):
            raise UsageError(f"regex_field must be 'structured_outputs', 'guided_regex', 'regex' or None, got {regex_field!r}")
        if max_retries < 0 or http_retries < 0:
            raise UsageError("max_retries and http_retries must be >= 0")
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency}")
        if timeout <= 0:
            raise UsageError(f"timeout must be positive, got {timeout}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.supports_images = supports_images
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.server = server
        self.response_format = response_format
        self.http_retries = http_retries
        self.regex_field = regex_field
        self._dialect: ServerDialect | None = None if server == "auto" else self._with_overrides(DIALECTS[server])
        self.extra_body = dict(extra_body or {})
        self._profile = profile
        self.spec = f"openai:{model}@{self.base_url}"
        self._client = client
        self._owns_client = client is None
        self._async_client = async_client
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, rest: str, **kwargs: Any) -> OpenAIModel:
        """Build from the part of a spec after ``openai:``: ``<model>`` or ``<model>@<base_url>``.

        The model name may contain ``/`` and ``:`` (``qwen2.5vl:7b``); the base URL starts at the ``@``
        before ``http://`` / ``https://``, or at the last ``@``, in which case ``http://`` is assumed::

            OpenAIModel.from_spec("Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1")
            OpenAIModel.from_spec("qwen2.5vl:7b@localhost:11434/v1")
            OpenAIModel.from_spec("gpt-4o")     # api.openai.com

        Args:
            rest: the spec without its ``openai:`` prefix.
            **kwargs: further constructor arguments.

        Raises:
            UsageError: no model name.
        """
        match = re.search(r"@(?=https?://)", rest)
        if match:
            model, base_url = rest[: match.start()], rest[match.end():]
        elif "@" in rest:
            model, base_url = rest.rsplit("@", 1)
            base_url = f"http://{base_url}"
        else:
            model, base_url = rest, DEFAULT_BASE_URL
        if not model or base_url in ("http://", "https://"):
            raise UsageError(
                f"cannot read the model spec 'openai:{rest}'",
                hint="write openai:<model>@<base_url>, e.g. openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1",
            )
        return cls(model, base_url, **kwargs)

    @property
    def profile(self) -> FamilyProfile:
        """The family profile given to the constructor, else the generic one."""
        if self._profile is not None:
            return self._profile
        return super().profile

    # the server's dialect ------------------------------------------------------------------------------
    def _with_overrides(self, dialect: ServerDialect) -> ServerDialect:
        structured = dialect.structured
        if self.response_format is not None and dialect.api == "openai":
            structured = self.response_format
        regex_field = dialect.regex_field if self.regex_field == "default" else self.regex_field
        return replace(dialect, structured=structured, regex_field=regex_field)

    @property
    def dialect(self) -> ServerDialect:
        """The server's dialect: the one named with ``server=``, else probed once (``GET /models``, then
        Ollama's ``GET /api/version``); a server that answers neither is taken for OpenAI's API."""
        with self._lock:
            dialect = self._dialect
        if dialect is None:
            dialect = self._with_overrides(DIALECTS[self._probe()])
            with self._lock:
                self._dialect = dialect
        return dialect

    def _probe(self) -> str:
        client = self._sync_client()
        timeout = min(self.timeout, 10.0)

        def get_json(url: str) -> Any:
            try:
                response = client.get(url, headers=self._headers, timeout=timeout)
                return response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                return None

        listing = get_json(f"{self.base_url}/models")
        entries = listing.get("data") if isinstance(listing, dict) else None
        owners = {str(e.get("owned_by", "")).lower() for e in entries or [] if isinstance(e, dict)}
        found = next((_OWNERS[o] for o in sorted(owners) if o in _OWNERS), None)
        root = re.sub(r"/v1$", "", self.base_url)
        if found == "vllm":
            version = get_json(f"{root}/version")
            if isinstance(version, dict) and _version_tuple(str(version.get("version", ""))) < (0, 10, 2):
                return "vllm-guided"
            return found
        if found is not None:
            return found
        version = get_json(f"{root}/api/version")
        if isinstance(version, dict) and "version" in version:
            return "ollama"
        return "openai"

    # lifecycle ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP client docvlm opened (a client passed in is left open)."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout,
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                )
            return self._client

    # the seam -----------------------------------------------------------------------------------------
    def _complete(self, requests: Sequence[Request]) -> list[Answer]:
        """The server's raw answers, ``concurrency`` requests in flight at once (the base class reads, validates
        and corrects them).

        Raises:
            ModelError: the server failed (unreachable, timeout, HTTP error).
            TimeLimitError: a deadline passed; each HTTP request waits at most the time left.
        """
        if not requests:
            return []
        dialect = self._dialect_for(requests)
        if len(requests) == 1:
            return [self._ask_sync(requests[0], dialect)]
        with concurrent.futures.ThreadPoolExecutor(min(self.concurrency, len(requests))) as pool:
            # each thread runs in a copy of this context, so the caller's deadline holds there too
            futures = [pool.submit(contextvars.copy_context().run, self._ask_sync, r, dialect) for r in requests]
            return [f.result() for f in futures]

    async def _acomplete(self, requests: Sequence[Request]) -> list[Answer]:
        """Async twin of `_complete`: native httpx async calls, ``concurrency`` at once."""
        if not requests:
            return []
        dialect = await asyncio.to_thread(self._dialect_for, requests)
        semaphore = asyncio.Semaphore(self.concurrency)
        client = self._async_client or httpx.AsyncClient(timeout=self.timeout)

        async def one(request: Request) -> Answer:
            async with semaphore:
                reply = await self._post_async(client, self._payload(request, dialect), dialect)
                return Completion(reply.text, cut_off=reply.finish_reason == "length")

        try:
            results = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
        finally:
            if self._async_client is None:
                await client.aclose()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    def _invalid_answer(self, request: Request, answer: Completion, error: ConstraintError, answers: int) -> DocVLMError:
        cut = " (the server stopped at max_tokens)" if answer.cut_off else ""
        return ModelError(
            f"{self.model} at {self.base_url} gave {answers} invalid answers; the last{cut}: {error.message}",
            hint="raise max_retries, simplify the output type, or serve the model with guided decoding (vLLM, SGLang)",
        )

    def _cannot_score(self) -> ScoringNotSupportedError:
        return ScoringNotSupportedError(
            f"{self.spec} cannot score continuations: the OpenAI chat API returns log-probabilities of the tokens "
            "the server generates, not of text the caller gives",
            hint="check model.supports_scoring; generate under a Literal choice instead, or score with a local model",
        )

    # drivers ------------------------------------------------------------------------------------------
    def _dialect_for(self, requests: Sequence[Request]) -> ServerDialect:
        """The dialect to use: free text needs none, so a server is probed only for a structured request."""
        if self._dialect is None and all(r.constraint.kind is OutputKind.TEXT for r in requests):
            return DIALECTS["openai"]
        return self.dialect

    def _ask_sync(self, request: Request, dialect: ServerDialect) -> Answer:
        reply = self._post_sync(self._payload(request, dialect), dialect)
        return Completion(reply.text, cut_off=reply.finish_reason == "length")

    def _payload(self, request: Request, dialect: ServerDialect) -> dict[str, Any]:
        """The request body: the messages in the server's wire form, the sampling settings and the constraint."""
        to_wire = _message_to_ollama if dialect.api == "ollama" else _message_to_openai
        return {**self._body(request, dialect), "messages": [to_wire(m) for m in request.messages]}

    def _post_sync(self, payload: dict[str, Any], dialect: ServerDialect) -> _Reply:
        client = self._sync_client()
        url = self._url_for(dialect)
        for attempt in range(self.http_retries + 1):
            try:
                response = client.post(url, json=payload, headers=self._headers, timeout=self._http_timeout())
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from exc
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._reply(response, payload, dialect)
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_async(self, client: httpx.AsyncClient, payload: dict[str, Any], dialect: ServerDialect) -> _Reply:
        url = self._url_for(dialect)
        for attempt in range(self.http_retries + 1):
            try:
                response = await client.post(url, json=payload, headers=self._headers, timeout=self._http_timeout())
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from exc
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._reply(response, payload, dialect)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _body(self, request: Request, dialect: ServerDialect) -> dict[str, Any]:
        settings = request.settings
        sampling: dict[str, Any] = {"temperature": settings.temperature}
        if settings.top_p != 1:
            sampling["top_p"] = settings.top_p
        if settings.seed is not None:
            sampling["seed"] = settings.seed
        if settings.max_new_tokens is not None:
            # only an explicit cap: the constraint's own bound can exceed a server's context window
            sampling["num_predict" if dialect.api == "ollama" else "max_tokens"] = settings.max_new_tokens
        body: dict[str, Any] = {"model": self.model}
        if dialect.api == "ollama":
            body.update(stream=False, options=sampling)
        else:
            body.update(sampling)
        constraint = request.constraint
        schema = _request_schema(constraint)
        regex = constraint.regex if constraint.kind is OutputKind.REGEX else None
        if dialect.structured == "grammar" and constraint.kind is not OutputKind.TEXT:
            body["grammar"] = regex_to_gbnf(constraint.regex)  # docvlm's exact constraint, in llama.cpp's language
            regex = None
        elif schema is not None and dialect.structured == "regex" and dialect.regex_field is not None:
            regex = constraint.regex  # docvlm's own bounded regex: the exact constraint a local model decodes under
        elif schema is not None and dialect.structured == "format":
            body["format"] = schema
        elif schema is not None and dialect.structured == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(schema), "schema": schema, "strict": True},
            }
        if regex is not None and dialect.regex_field == "structured_outputs":
            body["structured_outputs"] = {"regex": regex}
        elif regex is not None and dialect.regex_field is not None:
            body[dialect.regex_field] = regex
        return {**body, **self.extra_body}

    # HTTP details -------------------------------------------------------------------------------------
    def _url_for(self, dialect: ServerDialect) -> str:
        if dialect.api == "ollama":
            return f"{re.sub(r'/v1$', '', self.base_url)}/api/chat"
        return f"{self.base_url}/chat/completions"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``response`` (429 / 5xx), or ``None`` to take it as it is."""
        if not (response.status_code == 429 or response.status_code >= 500) or attempt >= self.http_retries:
            return None
        delay: float = self.retry_backoff * 2.0**attempt
        after: str = response.headers.get("retry-after", "")
        if after.replace(".", "", 1).isdigit():
            delay = max(delay, float(after))
        return min(delay, _MAX_BACKOFF_S)

    def _http_timeout(self) -> float:
        """The HTTP timeout of the next request: ``timeout``, or less when a deadline is nearer."""
        _deadline.check("generate")
        left = _deadline.remaining()
        return self.timeout if left is None else max(0.001, min(self.timeout, left))

    def _transport_error(self, exc: httpx.HTTPError) -> ModelError:
        if isinstance(exc, httpx.TimeoutException):
            _deadline.check("generate")  # the deadline, not the server's slowness, cut it
            return ModelError(
                f"no answer from {self.base_url} within {self.timeout:g} s ({type(exc).__name__})",
                hint="raise timeout=..., lower concurrency=..., or ask for less output",
            )
        if isinstance(exc, httpx.ConnectError):
            return ModelError(f"cannot connect to {self.base_url}: {exc}",
                              hint=f"is the server running at {self.base_url}?")
        return ModelError(f"request to {self.base_url} failed: {type(exc).__name__}: {exc}",
                          hint=f"is an OpenAI-compatible server running at {self.base_url}?")

    def _reply(self, response: httpx.Response, payload: dict[str, Any], dialect: ServerDialect) -> _Reply:
        if response.status_code >= 400:
            raise self._http_error(response, payload, dialect)
        try:
            data = response.json()
            if dialect.api == "ollama":  # {"message": {...}, "done_reason": "stop"}
                choice = {"message": data["message"], "finish_reason": data.get("done_reason")}
            else:
                choice = data["choices"][0]
            message = choice["message"]
        except (ValueError, LookupError, TypeError) as exc:
            raise ModelError(
                f"{self.base_url} answered HTTP {response.status_code} with no chat completion: "
                f"{_shorten(response.text)!r}",
                hint="base_url must be the API root of an OpenAI-compatible server (usually ending in /v1)",
            ) from exc
        content = message.get("content")
        if content is None:
            refusal = message.get("refusal")
            raise ModelError(f"{self.model} gave no answer" + (f": it refused ({_shorten(str(refusal))})" if refusal else ""),
                             hint="rephrase the prompt")
        if isinstance(content, list):  # a few servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return _Reply(str(content), choice.get("finish_reason"))

    def _http_error(self, response: httpx.Response, payload: dict[str, Any], dialect: ServerDialect) -> ModelError:
        status = response.status_code
        message = _server_message(response)
        if status in (401, 403):
            hint = "check the API key (api_key=... or $OPENAI_API_KEY)"
        elif status == 404:
            hint = (f"check the model name ({self.base_url}/models lists the served ones) "
                    "and that base_url is the API root (usually ending in /v1)")
        elif status == 429 or status >= 500:
            hint = f"the server kept failing after {self.http_retries} retries; lower concurrency=..."
            if status == 500 and "json_schema" in json.dumps(payload.get("response_format", "")):
                hint += "; llama.cpp servers answer 500 to json_schema: use server='llamacpp'"
            if status == 500 and "grammar" in payload:
                hint += "; a server that cannot parse the grammar can take server='llamacpp-json'"
        else:
            hint = "the server rejected the request: check that it supports this model, images and structured output"
            if dialect.regex_field is not None and dialect.regex_field in payload:
                hint += (f"; a server that does not know the field {dialect.regex_field!r} or cannot compile the regex "
                         "needs another server=... (e.g. 'openai' for JSON schemas) or regex_field=None")
        return ModelError(f"HTTP {status} from {self._url_for(dialect)}: {message}", hint=hint)


# ---------------------------------------------------------------------------------------------------
# messages, schemas, validation
# ---------------------------------------------------------------------------------------------------


def _image_url(image: Image.Image) -> dict[str, Any]:
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def _message_to_openai(message: Message) -> dict[str, Any]:
    """A docvlm message as an OpenAI chat message: plain text content, or text and ``image_url`` parts."""
    from docvlm.types.image import PageImage

    if all(isinstance(p, str) for p in message.content):
        return {"role": message.role, "content": message.text}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        else:
            parts.append(_image_url(part.image if isinstance(part, PageImage) else part))
    return {"role": message.role, "content": parts}


def _message_to_ollama(message: Message) -> dict[str, Any]:
    """A docvlm message in Ollama's native form: the text, and the images as bare base64 PNGs."""
    from docvlm.types.image import PageImage

    out: dict[str, Any] = {"role": message.role, "content": message.text}
    images = [p.image if isinstance(p, PageImage) else p for p in message.content if not isinstance(p, str)]
    if images:
        out["images"] = [_image_url(image)["image_url"]["url"].split(",", 1)[1] for image in images]
    return out


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"0.10.1rc1"`` -> ``(0, 10, 1)``; unparsable parts end the tuple (an unknown version sorts as newest)."""
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts) if parts else (1_000_000,)


def _request_schema(constraint: CompiledConstraint[Any]) -> dict[str, Any] | None:
    """The JSON schema to ask for, or ``None`` (text, regex)."""
    if constraint.kind is OutputKind.JSON:
        assert constraint.json_schema is not None
        strict: dict[str, Any] = _strict_schema(constraint.json_schema)
        return strict
    if constraint.kind is OutputKind.CHOICE:
        assert constraint.choices is not None
        return {
            "title": "Choice",
            "type": "object",
            "properties": {CHOICE_KEY: {"type": "string", "enum": list(constraint.choices)}},
            "required": [CHOICE_KEY],
            "additionalProperties": False,
        }
    return None


def _strict_schema(schema: Any) -> Any:
    """A copy of a pydantic schema where objects forbid extra keys and list every key as required.

    This is what OpenAI's ``strict`` mode demands, and it matches what docvlm's own constrained decoding
    emits (every key, in order, nothing else). Servers that do guided decoding (vLLM, SGLang) then give the
    same shape of output as a local model.
    """
    if isinstance(schema, list):
        return [_strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _strict_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "oneOf", "allOf", "prefixItems"):
            out[key] = _strict_schema(value)
        else:
            out[key] = value
    if isinstance(out.get("properties"), dict):
        out["required"] = list(out["properties"])
        out.setdefault("additionalProperties", False)
    return out


def _schema_name(schema: dict[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
    return name or "output"


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return _shorten(response.text.strip() or response.reason_phrase)
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return _shorten(str(error))
    return _shorten(json.dumps(data))


def _shorten(text: str, limit: int = _MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
