"""``docvlm serve``: any docvlm [`Model`][docvlm.models.base.Model] behind an OpenAI-compatible HTTP API.

The server is the standard library's threaded HTTP server (no new dependency) with two endpoints:

- ``GET /v1/models``: the one model served;
- ``POST /v1/chat/completions``: non-streaming chat completions with text and ``image_url`` (``data:`` URL)
  parts, and structured output from ``response_format`` (``json_schema``, or llama.cpp's ``json_object``
  with a ``schema``), vLLM's ``structured_outputs`` (``json`` / ``choice`` / ``regex``) or older ``guided_json`` /
  ``guided_choice`` / ``guided_regex`` extra fields, or SGLang's ``regex``.

A JSON schema is turned into a Python type (`schema_to_type`) and decoded under docvlm's constraint,
so a local model's JSON answers always validate against the schema the client sent. Requests that arrive
together with the same output type and settings are answered in one [`Model.generate_batch`][docvlm.models.base.Model.generate_batch] call, and
the model is only ever called from one thread.

``usage`` counts tokens with the model's tokenizer when it has one (a ``tokenizer`` attribute, or a
``processor`` with one); otherwise it estimates one token per four characters of text. Images are not
counted.

Example::

    server, url = make_server(model, port=8000)   # url == "http://127.0.0.1:8000/v1"
    server.serve_forever()
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import keyword
import math
import queue
import re
import threading
import time
import typing
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from docvlm.decoding import Regex
from docvlm.errors import ConstraintError, DocVLMError, UsageError
from docvlm.models.base import GenerationSettings, Model
from docvlm.models.messages import Message, Role

__all__ = ["DocVLMServer", "make_server", "schema_to_type", "serve"]

#: The largest request body accepted (bytes); images travel base64-encoded inside it.
MAX_BODY_BYTES = 64 * 1024 * 1024

# typing constructs built at run time: typed Any so that mypy accepts the dynamic subscriptions
_Annotated: Any = typing.Annotated
_Literal: Any = typing.Literal
_Union: Any = typing.Union
_List: Any = list
_Tuple: Any = tuple

# ---------------------------------------------------------------------------------------------------
# JSON schema -> Python type
# ---------------------------------------------------------------------------------------------------

_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "readOnly", "writeOnly",
    "deprecated", "discriminator", "$defs", "definitions",
})
_KEYWORDS: dict[str, frozenset[str]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "prefixItems", "minItems", "maxItems"}),
    "string": frozenset({"type", "minLength", "maxLength", "pattern"}),
    "integer": frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset({"type"}),
    "null": frozenset({"type"}),
}
_HINT = (
    "supported: object (properties, required), array (items, prefixItems, minItems, maxItems), "
    "string (minLength, maxLength, pattern), integer/number (minimum, maximum, exclusive bounds), "
    "boolean, null, enum, const, anyOf/oneOf, local $ref"
)


def schema_to_type(schema: Mapping[str, Any]) -> Any:
    """A Python type whose docvlm constraint produces only JSON valid under ``schema``.

    The supported subset is what docvlm's constraint compiler can bound:

    ======================  ==========================================================================
    schema                  type
    ======================  ==========================================================================
    object + properties     a pydantic model (fields keep the property names as aliases; every key is
                            emitted, ``required`` only decides which fields have a default)
    array + items           ``list[...]`` with ``minItems`` / ``maxItems``
    array + prefixItems     ``tuple[...]``
    string                  ``str`` with ``minLength`` / ``maxLength`` / ``pattern``
    integer / number        ``int`` / ``float`` with ``minimum`` / ``maximum`` / exclusive bounds
    boolean / null          ``bool`` / ``None``
    enum / const            ``Literal[...]`` (strings, integers, booleans, null)
    anyOf / oneOf, type []  ``Union[...]``
    $ref (``#/$defs/...``)  the referenced schema (not recursive ones)
    ======================  ==========================================================================

    Annotations (``title``, ``description``, ``default``, ``examples``, ...) are ignored. Anything else
    (``format``, ``multipleOf``, ``uniqueItems``, open-ended objects, recursion, ...) is refused rather than
    ignored, because ignoring it could produce JSON the schema rejects.

    Args:
        schema: a JSON schema (a dict).

    Returns:
        A type for [`Model.generate`][docvlm.models.base.Model.generate] (a pydantic model, ``list[...]``, ``Literal``, ...).

    Raises:
        UsageError: the schema uses something outside the subset; the message names the place and keyword.
    """
    if not isinstance(schema, Mapping):
        raise UsageError(f"a JSON schema must be an object, got {type(schema).__name__}")
    try:
        canonical = json.dumps(schema)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the JSON schema is not JSON: {exc}") from exc
    return _schema_to_type_cached(canonical)


@functools.lru_cache(maxsize=128)
def _schema_to_type_cached(canonical: str) -> Any:
    # cached by the schema's text (key order kept: it is the field order): equal schemas give the same
    # type object, so docvlm's constraint cache hits and the server can batch requests sharing a schema
    return _Converter(json.loads(canonical)).convert(json.loads(canonical), "#")


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Any] = {}
        self.resolving: list[str] = []

    def fail(self, path: str, message: str) -> UsageError:
        return UsageError(f"JSON schema at {path}: {message}", hint=_HINT)

    def convert(self, schema: Any, path: str) -> Any:
        if schema is True or schema == {}:
            raise self.fail(path, "an empty schema allows any value; give a type")
        if not isinstance(schema, dict):
            raise self.fail(path, f"a schema must be an object, got {json.dumps(schema)}")
        if "$ref" in schema:
            self.check_keys(schema, {"$ref"}, path)
            return self.ref(schema["$ref"], path)
        if "allOf" in schema:
            self.check_keys(schema, {"allOf"}, path)
            parts = schema["allOf"]
            if not isinstance(parts, list) or len(parts) != 1:
                raise self.fail(path, "allOf is supported with exactly one schema")
            return self.convert(parts[0], f"{path}/allOf/0")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                self.check_keys(schema, {key}, path)
                options = schema[key]
                if not isinstance(options, list) or not options:
                    raise self.fail(path, f"{key} needs a non-empty list of schemas")
                return self.union([self.convert(s, f"{path}/{key}/{i}") for i, s in enumerate(options)])
        if "const" in schema or "enum" in schema:
            return self.literal(schema, path)
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise self.fail(path, "type is an empty list")
            return self.union([self.convert({**schema, "type": k}, path) for k in kind])
        nullable = schema.get("nullable") is True
        if nullable:
            schema = {k: v for k, v in schema.items() if k != "nullable"}
        if kind not in _KEYWORDS:
            raise self.fail(path, f"unsupported or missing type {json.dumps(kind)}")
        self.check_keys(schema, _KEYWORDS[kind], path)
        tp = getattr(self, f"type_{kind}")(schema, path)
        return self.union([tp, type(None)]) if nullable else tp

    def check_keys(self, schema: dict[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
        extra = sorted(set(schema) - allowed - _ANNOTATIONS)
        if extra:
            raise self.fail(path, f"unsupported keyword {extra[0]!r}" + (f" (and {extra[1:]})" if extra[1:] else ""))

    def union(self, members: list[Any]) -> Any:
        unique: list[Any] = []
        for m in members:
            if m not in unique:
                unique.append(m)
        return unique[0] if len(unique) == 1 else _Union[tuple(unique)]

    def ref(self, ref: Any, path: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise self.fail(path, f"only local references (#/$defs/...) are supported, got {ref!r}")
        if ref in self.refs:
            return self.refs[ref]
        if ref in self.resolving:
            raise self.fail(path, f"the reference {ref} is recursive: its JSON has no bounded length")
        target: Any = self.root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                raise self.fail(path, f"the reference {ref} points nowhere")
            target = target[token]
        self.resolving.append(ref)
        try:
            self.refs[ref] = self.convert(target, ref)
        finally:
            self.resolving.pop()
        return self.refs[ref]

    def literal(self, schema: dict[str, Any], path: str) -> Any:
        self.check_keys(schema, {"const", "enum", "type"}, path)
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list) or not values:
            raise self.fail(path, "enum needs a non-empty list")
        for value in values:
            if not (value is None or isinstance(value, (str, int, bool))):
                raise self.fail(path, f"the enum value {json.dumps(value)} is not a string, integer, boolean or null")
        if "enum" in schema and "const" in schema:
            raise self.fail(path, "give enum or const, not both")
        return _Literal[tuple(values)]

    # types ----------------------------------------------------------------------------------------
    def type_object(self, schema: dict[str, Any], path: str) -> Any:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            raise self.fail(path, "an object needs properties (open-ended objects / dicts are not supported)")
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, bool):
            raise self.fail(path, "additionalProperties with a schema is not supported (only true or false)")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail(path, "required must be a list of property names")
        unknown = sorted(set(required) - set(properties))
        if unknown:
            raise self.fail(path, f"required names {unknown} that are not among the properties")
        fields: dict[str, Any] = {}
        for i, (name, sub) in enumerate(properties.items()):
            tp = self.convert(sub, f"{path}/properties/{_pointer(name)}")
            info: Any
            if name in required:
                info = Field(alias=name)
            else:
                default = sub.get("default") if isinstance(sub, dict) else None
                info = Field(default=default, alias=name)
            fields[f"f{i}"] = (tp, info)
        title = schema.get("title")
        model: type[BaseModel] = create_model(
            _model_name(title if isinstance(title, str) else "Output"),
            __config__=ConfigDict(extra="ignore" if extra else "forbid"),
            **fields,
        )
        return model

    def type_array(self, schema: dict[str, Any], path: str) -> Any:
        min_items, max_items = self.bound(schema, "minItems", path), self.bound(schema, "maxItems", path)
        if "prefixItems" in schema:
            prefix = schema["prefixItems"]
            if not isinstance(prefix, list) or not prefix:
                raise self.fail(path, "prefixItems needs a non-empty list of schemas")
            if schema.get("items", False) is not False:
                raise self.fail(path, "prefixItems followed by more items is not supported (set items to false)")
            n = len(prefix)
            if (min_items not in (None, n)) or (max_items not in (None, n)):
                raise self.fail(path, f"minItems/maxItems must equal the {n} prefixItems")
            return _Tuple[tuple(self.convert(s, f"{path}/prefixItems/{i}") for i, s in enumerate(prefix))]
        if "items" not in schema or schema["items"] is True:
            raise self.fail(path, "an array needs an items schema")
        item = self.convert(schema["items"], f"{path}/items")
        tp = _List[item]
        if min_items is None and max_items is None:
            return tp
        return _Annotated[tp, Field(min_length=min_items, max_length=max_items)]

    def type_string(self, schema: dict[str, Any], path: str) -> Any:
        min_length, max_length = self.bound(schema, "minLength", path), self.bound(schema, "maxLength", path)
        pattern = schema.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise self.fail(path, "pattern must be a string")
        if min_length is None and max_length is None and pattern is None:
            return str
        return _Annotated[str, Field(min_length=min_length, max_length=max_length, pattern=pattern)]

    def type_integer(self, schema: dict[str, Any], path: str) -> Any:
        return self.numeric(int, schema, path)

    def type_number(self, schema: dict[str, Any], path: str) -> Any:
        return self.numeric(float, schema, path)

    def type_boolean(self, schema: dict[str, Any], path: str) -> Any:
        return bool

    def type_null(self, schema: dict[str, Any], path: str) -> Any:
        return type(None)

    def numeric(self, tp: type, schema: dict[str, Any], path: str) -> Any:
        bounds: dict[str, Any] = {}
        for key, name in (("minimum", "ge"), ("maximum", "le"), ("exclusiveMinimum", "gt"), ("exclusiveMaximum", "lt")):
            if key in schema:
                value = schema[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise self.fail(path, f"{key} must be a finite number, got {json.dumps(value)}")
                bounds[name] = value
        return _Annotated[tp, Field(**bounds)] if bounds else tp

    def bound(self, schema: dict[str, Any], key: str, path: str) -> int | None:
        value = schema.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, f"{key} must be a non-negative integer, got {json.dumps(value)}")
        return value


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _model_name(title: str) -> str:
    name = re.sub(r"\W", "_", title) or "Output"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name


# ---------------------------------------------------------------------------------------------------
# OpenAI request -> docvlm call
# ---------------------------------------------------------------------------------------------------


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind


@dataclass(frozen=True)
class _Call:
    messages: list[Message]
    output_type: Any
    json_mode: bool
    settings: GenerationSettings


def _bad(message: str, param: str | None = None) -> _HTTPError:
    return _HTTPError(400, message, param=param)


def _decode_image(url: Any, where: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(url, str) or not url.startswith("data:"):
        shown = url[:60] if isinstance(url, str) else type(url).__name__
        raise _bad(f"{where}: only data: URLs are supported (the server fetches nothing); got {shown!r}", where)
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise _bad(f"{where}: the data URL must be base64-encoded (data:image/png;base64,...)", where)
    try:
        raw = base64.b64decode(data, validate=True)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"{where}: the data URL is not valid base64: {exc}", where) from exc
    except Image.DecompressionBombError as exc:
        raise _HTTPError(413, f"{where}: the image is too large: {exc}", param=where) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise _bad(f"{where}: not a readable image: {exc}", where) from exc
    return image if image.mode == "RGB" else image.convert("RGB")


def _messages(raw: Any) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise _bad("messages must be a non-empty list", "messages")
    out = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object", where)
        role = item.get("role")
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant"):
            raise _bad(f"{where}.role {role!r} is not supported (system, user, assistant)", f"{where}.role")
        role = typing.cast(Role, role)
        content = item.get("content")
        parts: list[Any] = []
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                at = f"{where}.content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif kind == "image_url":
                    url = part.get("image_url")
                    parts.append(_decode_image(url.get("url") if isinstance(url, dict) else url, at))
                else:
                    raise _bad(f"{at}: unsupported content part (text and image_url are)", at)
        elif content is not None:
            raise _bad(f"{where}.content must be a string or a list of parts", f"{where}.content")
        out.append(Message(role, parts))
    return out


_EXTRA_FIELDS = {"guided_json": "json", "guided_choice": "choice", "guided_regex": "regex", "regex": "regex"}


def _output_type(body: dict[str, Any]) -> tuple[Any, bool]:
    """The output type a request asks for, and whether the answer is JSON.

    Read from ``response_format``, vLLM's ``structured_outputs`` (``json`` / ``choice`` / ``regex``) or its
    older ``guided_json`` / ``guided_choice`` / ``guided_regex``, or SGLang's ``regex``; at most one.
    """
    asked: list[tuple[str, str, Any]] = []
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        asked.append(("response_format", "response_format", fmt))
    for field, kind in _EXTRA_FIELDS.items():
        if body.get(field) is not None:
            asked.append((field, kind, body[field]))
    structured = body.get("structured_outputs")
    if structured is not None:
        if not isinstance(structured, dict):
            raise _bad("structured_outputs must be an object", "structured_outputs")
        for key, value in structured.items():
            if key not in ("json", "choice", "regex"):
                if value is not None and value is not False:
                    raise _bad(f"structured_outputs.{key} is not supported (json, choice, regex are)",
                               "structured_outputs")
            elif value is not None:
                asked.append((f"structured_outputs.{key}", key, value))
    if len(asked) > 1:
        raise _bad(f"give one of {[a[0] for a in asked]}, not several")
    if not asked:
        return str, False
    name, kind, value = asked[0]
    try:
        if kind == "choice":
            if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
                raise _bad(f"{name} must be a non-empty list of non-empty strings", name)
            return _Literal[tuple(value)], False
        if kind == "regex":
            if not isinstance(value, str):
                raise _bad(f"{name} must be a string", name)
            return Regex(value), False
        if kind == "json":
            schema = json.loads(value) if isinstance(value, str) else value
            return schema_to_type(schema), True
        if not isinstance(value, dict):
            raise _bad("response_format must be an object", name)
        fmt_type = value.get("type")
        if fmt_type == "json_schema":
            spec = value.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                raise _bad("response_format.json_schema.schema must be a JSON schema object", name)
            return schema_to_type(spec["schema"]), True
        if fmt_type == "json_object":
            schema = value.get("schema")
            if not isinstance(schema, dict):
                raise _bad("response_format json_object needs a schema here: open-ended JSON cannot be bounded "
                           "(send {'type': 'json_object', 'schema': {...}} or json_schema)", name)
            return schema_to_type(schema), True
        raise _bad(f"response_format type {fmt_type!r} is not supported (json_schema, json_object, text)", name)
    except UsageError as exc:
        raise _bad(str(exc), name) from exc
    except ValueError as exc:
        raise _bad(f"{name} is not valid JSON: {exc}", name) from exc


def _number(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise _bad(f"{key} must be {'a number' if kind is float else 'an integer'}", key)
    return value


def _settings(body: dict[str, Any]) -> GenerationSettings:
    options: dict[str, Any] = {}
    temperature = _number(body, "temperature", float)
    if temperature is not None:
        options["temperature"] = float(temperature)
    top_p = _number(body, "top_p", float)
    if top_p is not None:
        options["top_p"] = float(top_p)
    seed = _number(body, "seed", int)
    if seed is not None:
        options["seed"] = seed
    cap = _number(body, "max_completion_tokens", int) or _number(body, "max_tokens", int)
    if cap is not None:
        options["max_new_tokens"] = cap
    try:
        return GenerationSettings(**options)
    except UsageError as exc:
        raise _bad(str(exc)) from exc


def _parse_call(body: Any) -> _Call:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    if body.get("stream"):
        raise _bad("stream: true is not supported: docvlm serve answers whole completions (send stream: false)",
                   "stream")
    if body.get("n", 1) != 1:
        raise _bad("only n = 1 is supported", "n")
    if body.get("tools") or body.get("functions"):
        raise _bad("tool calling is not supported: ask for the call as JSON with response_format json_schema",
                   "tools")
    if body.get("logprobs"):
        raise _bad("logprobs are not supported", "logprobs")
    output_type, json_mode = _output_type(body)
    return _Call(_messages(body.get("messages")), output_type, json_mode, _settings(body))


# ---------------------------------------------------------------------------------------------------
# batching: one thread calls the model, with requests that arrived together
# ---------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    call: _Call
    future: Future[Any]

    def same_batch(self, other: _Job) -> bool:
        a, b = self.call, other.call
        try:
            same_type = a.output_type is b.output_type or bool(a.output_type == b.output_type)
        except Exception:  # an exotic __eq__
            same_type = False
        return same_type and a.settings == b.settings


class _Batcher:
    def __init__(self, model: Model, max_batch_size: int, window_s: float) -> None:
        self.model = model
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.queue: queue.Queue[_Job | None] = queue.Queue()
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="docvlm-serve-batcher", daemon=True)
        self.thread.start()

    def submit(self, call: _Call) -> Any:
        job = _Job(call, Future())
        with self.lock:
            if self.closed:
                raise _HTTPError(503, "the server is shutting down", kind="server_error")
            self.queue.put(job)
        return job.future.result()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.queue.put(None)
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        pending: list[_Job] = []
        stopping = False
        while True:
            if not pending:
                if stopping:
                    return
                first = self.queue.get()
                if first is None:
                    return
                pending.append(first)
            deadline = time.monotonic() + self.window_s
            while not stopping and len(pending) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    job = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                else:
                    pending.append(job)
            group = [j for j in pending if j.same_batch(pending[0])][: self.max_batch_size]
            pending = [j for j in pending if j not in group]
            self._run(group)

    def _run(self, group: list[_Job]) -> None:
        call = group[0].call
        try:
            values = self.model.generate_batch([j.call.messages for j in group], call.output_type,
                                               settings=call.settings)
        except Exception as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            for job in group:  # isolate the request that failed from the others
                self._run([job])
            return
        for job, value in zip(group, values, strict=True):
            job.future.set_result(value)


# ---------------------------------------------------------------------------------------------------
# the HTTP server
# ---------------------------------------------------------------------------------------------------


class DocVLMServer(ThreadingHTTPServer):
    """A threaded HTTP server answering OpenAI chat completions with a docvlm model.

    Build it with `make_server`; ``serve_forever()`` runs it, ``shutdown()`` stops the loop
    and ``server_close()`` frees the socket and the batching thread.

    Attributes:
        model: the model served.
        model_name: the id ``GET /v1/models`` lists.
        url: the API root clients use as ``base_url`` (``http://host:port/v1``).
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib's 5 drops bursts of connections (the client waits 1 s to retry)

    def __init__(self, model: Model, address: tuple[str, int], *, model_name: str | None = None,
                 max_batch_size: int = 8, batch_window_s: float = 0.01, verbose: bool = False) -> None:
        if max_batch_size < 1:
            raise UsageError(f"max_batch_size must be at least 1, got {max_batch_size}")
        super().__init__(address, _Handler)
        self.model = model
        self.model_name = model_name or model.spec or type(model).__name__
        self.verbose = verbose
        self.batcher = _Batcher(model, max_batch_size, batch_window_s)
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/v1"

    def server_close(self) -> None:
        """Close the listening socket and stop the batching thread."""
        super().server_close()
        self.batcher.close()

    def answer(self, body: Any) -> dict[str, Any]:
        """The chat.completion object for a request body (raises ``_HTTPError`` for bad requests)."""
        call = _parse_call(body)
        try:
            self.model.compile(call.output_type)
        except ConstraintError as exc:
            raise _bad(f"the requested output cannot be constrained: {exc}") from exc
        try:
            value = self.batcher.submit(call)
        except ConstraintError as exc:  # e.g. cut off by max_tokens
            raise _HTTPError(422, str(exc), kind="constraint_error") from exc
        except UsageError as exc:
            raise _bad(str(exc)) from exc
        except DocVLMError as exc:
            raise _HTTPError(500, str(exc), kind="model_error") from exc
        if call.json_mode:
            content = TypeAdapter(call.output_type).dump_json(value, by_alias=True).decode()
        else:
            content = value if isinstance(value, str) else str(value)
        prompt_tokens = sum(self.count_tokens(m.text) for m in call.messages)
        completion_tokens = self.count_tokens(content)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model_name),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's tokenizer if it exposes one, else ``ceil(len(text) / 4)``."""
        tokenizer = getattr(self.model, "tokenizer", None) or getattr(getattr(self.model, "processor", None),
                                                                      "tokenizer", None)
        encode = getattr(tokenizer, "encode", None)
        if callable(encode):
            try:
                return len(encode(text, add_special_tokens=False))
            except Exception:  # a tokenizer with another signature: fall back to the estimate
                pass
        return math.ceil(len(text) / 4)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "docvlm"

    @property
    def app(self) -> DocVLMServer:
        return typing.cast(DocVLMServer, self.server)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self.send_json(200, {"object": "list", "data": [
                {"id": self.app.model_name, "object": "model", "created": 0, "owned_by": "docvlm"},
            ]})
        elif path in ("/health", "/v1/health"):
            self.send_json(200, {"status": "ok"})
        else:
            self.send_error_json(_HTTPError(404, f"no route GET {path} (try /v1/models)", kind="not_found_error"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self.send_error_json(_HTTPError(411, "a Content-Length header is required"))
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self.send_error_json(_HTTPError(413, f"the request body is over {MAX_BODY_BYTES} bytes"))
            return
        raw = self.rfile.read(length)
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self.send_error_json(_HTTPError(404, f"no route POST {path} (try /v1/chat/completions)",
                                            kind="not_found_error"))
            return
        try:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise _bad(f"the request body is not JSON: {exc}") from exc
            self.send_json(200, self.app.answer(body))
        except _HTTPError as exc:
            self.send_error_json(exc)
        except Exception as exc:  # the server must answer, whatever the model did
            self.send_error_json(_HTTPError(500, f"{type(exc).__name__}: {exc}", kind="server_error"))

    def send_json(self, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def send_error_json(self, error: _HTTPError) -> None:
        self.send_json(error.status, {"error": {
            "message": error.message, "type": error.kind, "param": error.param, "code": error.status,
        }})

    def log_message(self, format: str, *args: Any) -> None:
        if self.app.verbose:
            super().log_message(format, *args)


def make_server(model: Model, host: str = "127.0.0.1", port: int = 0, *, model_name: str | None = None,
                max_batch_size: int = 8, batch_window_s: float = 0.01,
                verbose: bool = False) -> tuple[DocVLMServer, str]:
    """An OpenAI-compatible server for ``model``, bound but not yet serving.

    Args:
        model: any docvlm model (local transformers, a test model, even an [`OpenAIModel`][docvlm.models.openai.OpenAIModel]).
        host: the interface to listen on (``"0.0.0.0"`` for every one).
        port: the port; 0 picks a free one.
        model_name: the id listed by ``GET /v1/models`` (default: the model's spec).
        max_batch_size: most requests answered by one ``generate_batch`` call.
        batch_window_s: how long the first request waits for others to batch with.
        verbose: log every request on stderr.

    Returns:
        The server (call ``serve_forever()``, later ``shutdown()`` and ``server_close()``) and its API
        root URL, ``http://host:port/v1``, to use as a client's ``base_url``.
    """
    server = DocVLMServer(model, (host, port), model_name=model_name, max_batch_size=max_batch_size,
                          batch_window_s=batch_window_s, verbose=verbose)
    return server, server.url


def serve(model: Model, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``model`` until interrupted (Ctrl-C), printing the URL to use as ``base_url``.

    Args:
        model: the model to serve.
        host: the interface to listen on.
        port: the port.
        **options: further `make_server` options.
    """
    server, url = make_server(model, host, port, **options)
    print(f"docvlm: serving {server.model_name} at {url} (OpenAI-compatible; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
