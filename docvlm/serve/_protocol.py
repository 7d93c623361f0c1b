"""OpenAI chat-completion requests -> docvlm calls, and docvlm answers -> chat-completion objects.

Pure functions over dicts: no HTTP here (see `docvlm.serve._app`). Every malformed request raises
`HTTPError` with a 4xx status and one line that names the field.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import time
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from docvlm.decoding import Regex, schema_to_type
from docvlm.errors import ConstraintError, DocumentError, PageTooLargeError, UsageError
from docvlm.models.base import GenerationSettings
from docvlm.models.messages import Message, Role

__all__ = ["Call", "HTTPError", "ImageBudget", "ToolSpec", "completion", "parse_call", "parse_json", "stream_chunks"]

_Literal: Any = typing.Literal

#: Characters of a tool's parameter schema shown to the model in the tool prompt.
_SCHEMA_PROMPT_CHARS = 2000
#: The most tools one request may offer.
MAX_TOOLS = 64


class HTTPError(Exception):
    """A request the server answers with an error status (OpenAI's error object)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}}


def bad(message: str, param: str | None = None) -> HTTPError:
    """A 400 answer."""
    return HTTPError(400, message, param=param)


# ---------------------------------------------------------------------------------------------------
# the body
# ---------------------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, *, max_depth: int) -> Any:
    """The request body as JSON: strict (no ``NaN`` / ``Infinity``), nested at most ``max_depth`` levels."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise bad(f"the request body nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request body is not JSON: {str(exc)[:200]}") from None
    depth = _depth(body)
    if depth > max_depth:
        raise bad(f"the request body nests {depth} levels deep, more than {max_depth}")
    return body


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


# ---------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------


@dataclass
class ImageBudget:
    """Pixels one request's images may have: each one, and all of them together."""

    per_image: int
    per_request: int
    used: int = 0


def decode_image(url: Any, where: str, budget: ImageBudget) -> Any:
    """A ``data:`` URL as an RGB PIL image, refused from its header when it has more pixels than the budget."""
    from docvlm.documents.image import ImageDocument, ImagePage

    if not isinstance(url, str) or not url.startswith("data:"):
        shown = url[:60] if isinstance(url, str) else type(url).__name__
        raise bad(f"{where}: only data: URLs are supported (the server fetches nothing); got {shown!r}", where)
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise bad(f"{where}: the data URL must be base64-encoded (data:image/png;base64,...)", where)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad(f"{where}: the data URL is not valid base64: {exc}", where) from None
    left = budget.per_request - budget.used
    limit = min(budget.per_image, left)
    try:
        # the documents layer reads the header first and refuses too many pixels before decoding anything
        document = ImageDocument(raw, where, max_image_pixels=max(limit, 1))
        try:
            page = typing.cast(ImagePage, document[0])
            pixels = int(page.width * page.height)
            image = page.pil_image
        finally:
            document.close()
    except PageTooLargeError as exc:
        if ", over the limit" not in exc.message:  # the decode budget (bytes) or memory, not the pixel budget
            raise HTTPError(413, f"{where}: {exc.message}", param=where) from None
        scope = "per image" if limit == budget.per_image else f"left for this request's images ({left:,})"
        raise HTTPError(413, f"{where}: {exc.message.split(', over the limit')[0]}, over the server's budget of "
                             f"{limit:,} pixels {scope}", param=where) from None
    except DocumentError as exc:
        raise bad(f"{where}: not a readable image: {exc.message}", where) from None
    budget.used += pixels
    return image if image.mode == "RGB" else image.convert("RGB")


# ---------------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """One function tool a request offers."""

    name: str
    description: str
    parameters: str  # the JSON schema as the client sent it (compact JSON), for the prompt
    args_type: type[BaseModel]


class _Reply(BaseModel):
    """With ``tool_choice: auto`` the model may answer instead of calling a tool: ``{"content": ...}``."""

    model_config = ConfigDict(extra="forbid")


@functools.lru_cache(maxsize=64)
def _reply_type(content_type: Any) -> type[BaseModel]:
    model: type[BaseModel] = create_model("Reply", __base__=_Reply, content=(content_type, ...))
    return model


@functools.lru_cache(maxsize=128)
def _empty_args() -> type[BaseModel]:
    model: type[BaseModel] = create_model("NoArguments", __config__=ConfigDict(extra="forbid"))
    return model


def _tools(body: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw = body.get("tools")
    if raw is None:
        raw = [{"type": "function", "function": f} for f in body.get("functions") or []]
    if not isinstance(raw, list):
        raise bad("tools must be a list", "tools")
    if len(raw) > MAX_TOOLS:
        raise bad(f"at most {MAX_TOOLS} tools per request, got {len(raw)}", "tools")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise bad(f"{where}: only function tools are supported", where)
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise bad(f"{where}.function must be an object", where)
        name = fn.get("name")
        if not isinstance(name, str) or not name or len(name) > 64 or not all(c.isalnum() or c in "_-" for c in name):
            raise bad(f"{where}.function.name must be 1-64 letters, digits, '_' or '-'", where)
        if any(s.name == name for s in specs):
            raise bad(f"{where}: two tools are named {name!r}", where)
        description = fn.get("description") or ""
        if not isinstance(description, str):
            raise bad(f"{where}.function.description must be a string", where)
        parameters = fn.get("parameters")
        if parameters is None or parameters == {"type": "object", "properties": {}} or parameters == {}:
            args: type[BaseModel] = _empty_args()
            parameters = {"type": "object", "properties": {}}
        else:
            if not isinstance(parameters, dict) or parameters.get("type") != "object":
                raise bad(f"{where}.function.parameters must be a JSON schema of type object", where)
            try:
                converted = schema_to_type(parameters)
            except UsageError as exc:
                raise bad(f"{where}.function.parameters: {exc}", where) from None
            if not (isinstance(converted, type) and issubclass(converted, BaseModel)):
                raise bad(f"{where}.function.parameters must describe an object with properties", where)
            args = converted
        shown = json.dumps(_strip_titles(parameters), separators=(",", ":"))
        if len(shown) > _SCHEMA_PROMPT_CHARS:
            shown = shown[:_SCHEMA_PROMPT_CHARS] + "..."
        specs.append(ToolSpec(name, description[:1000], shown, args))
    return tuple(specs)


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


ToolMode = Literal["none", "auto", "required", "named"]


def _tool_choice(body: dict[str, Any], tools: tuple[ToolSpec, ...]) -> tuple[ToolMode, tuple[ToolSpec, ...]]:
    choice = body.get("tool_choice", body.get("function_call"))
    if not tools:
        if choice not in (None, "none", "auto"):
            raise bad("tool_choice needs tools", "tool_choice")
        return "none", ()
    if choice is None or choice == "auto":
        return "auto", tools
    if choice == "none":
        return "none", ()
    if choice in ("required", "any"):
        return "required", tools
    if isinstance(choice, dict):
        fn = choice.get("function") if choice.get("type", "function") == "function" else None
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        chosen = [t for t in tools if t.name == name]
        if not chosen:
            raise bad(f"tool_choice names {str(name)[:64]!r}, which is not among the tools", "tool_choice")
        return "named", (chosen[0],)
    raise bad("tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}",
              "tool_choice")


def tool_call_output(tools: tuple[ToolSpec, ...], reply: Any | None) -> Any:
    """The output type: one ``{"tool": name, "args": {...}}`` call (a union discriminated by ``tool``), or a reply."""
    from docvlm.workflows.agent import tool_call_type

    calls = tool_call_type(tuple((t.name, t.args_type) for t in tools))
    if reply is None:
        return calls
    return typing.Union[calls, _reply_type(reply)]  # noqa: UP007 - built at run time


def _tool_prompt(mode: ToolMode, tools: tuple[ToolSpec, ...], reply_json: bool) -> str:
    lines = [f"- {t.name}: {t.description or '(no description)'} Arguments (JSON schema): {t.parameters}" for t in tools]
    text = ("You can call tools. To call one, answer with one JSON object: "
            '{"tool": <tool name>, "args": {<its arguments>}}.\nTools:\n' + "\n".join(lines))
    if mode == "auto":
        what = "as JSON" if reply_json else "as text"
        text += f'\nTo answer without calling a tool, write {{"content": <your answer {what}>}}.'
    elif mode == "named":
        text += f"\nCall {tools[0].name} now."
    else:
        text += "\nCall one of the tools now."
    return text


# ---------------------------------------------------------------------------------------------------
# messages, output type, settings
# ---------------------------------------------------------------------------------------------------


def _text_of(content: Any, where: str) -> str:
    """The text of a message whose content may only be text (tool results, assistant turns)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for j, part in enumerate(content):
            text = part.get("text", part.get("refusal")) if isinstance(part, dict) else None
            if not (isinstance(part, dict) and part.get("type") in ("text", "refusal") and isinstance(text, str)):
                raise bad(f"{where}.content[{j}]: only text parts are supported here", f"{where}.content")
            out.append(text)
        return "\n".join(out)
    raise bad(f"{where}.content must be a string or a list of parts", f"{where}.content")


def _messages(raw: Any, budget: ImageBudget) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise bad("messages must be a non-empty list", "messages")
    out: list[Message] = []
    called: dict[str, str] = {}  # tool call id -> tool name, for the tool results that follow
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise bad(f"{where} must be an object", where)
        role = item.get("role")
        content = item.get("content")
        if role in ("tool", "function"):
            call_id = item.get("tool_call_id")
            name = item.get("name") or (called.get(call_id) if isinstance(call_id, str) else None) or "the tool"
            out.append(Message("user", [f"Result of {name}: {_text_of(content, where)}"]))
            continue
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise bad(f"{where}.role {str(role)[:20]!r} is not supported (system, developer, user, assistant, tool)",
                      f"{where}.role")
        if role == "assistant":
            out.append(Message("assistant", [_assistant_text(item, where, called)]))
            continue
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
                    parts.append(decode_image(url.get("url") if isinstance(url, dict) else url, at, budget))
                else:
                    raise bad(f"{at}: unsupported content part (text and image_url are)", at)
        elif content is not None:
            raise bad(f"{where}.content must be a string or a list of parts", f"{where}.content")
        out.append(Message(typing.cast(Role, role), parts))
    return out


def _assistant_text(item: dict[str, Any], where: str, called: dict[str, str]) -> str:
    """An assistant turn as the model wrote it: its text, or its tool calls as ``{"tool": ..., "args": ...}``."""
    calls = item.get("tool_calls")
    if calls is None and isinstance(item.get("function_call"), dict):
        calls = [{"type": "function", "function": item["function_call"]}]
    if not calls:
        return _text_of(item.get("content"), where)
    if not isinstance(calls, list):
        raise bad(f"{where}.tool_calls must be a list", f"{where}.tool_calls")
    lines = []
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad(f"{at}.function needs a name", at)
        arguments = fn.get("arguments", "{}")
        try:
            args = json.loads(arguments, parse_constant=_no_constant) if isinstance(arguments, str) else arguments
        except (ValueError, RecursionError):
            raise bad(f"{at}.function.arguments is not JSON", at) from None
        if isinstance(call.get("id"), str):
            called[call["id"]] = fn["name"]
        lines.append(json.dumps({"tool": fn["name"], "args": args}, separators=(",", ":")))
    return "\n".join(lines)


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
    for name, kind in _EXTRA_FIELDS.items():
        if body.get(name) is not None:
            asked.append((name, kind, body[name]))
    structured = body.get("structured_outputs")
    if structured is not None:
        if not isinstance(structured, dict):
            raise bad("structured_outputs must be an object", "structured_outputs")
        for key, value in structured.items():
            if key not in ("json", "choice", "regex"):
                if value is not None and value is not False:
                    raise bad(f"structured_outputs.{str(key)[:40]} is not supported (json, choice, regex are)",
                              "structured_outputs")
            elif value is not None:
                asked.append((f"structured_outputs.{key}", key, value))
    if len(asked) > 1:
        raise bad(f"give one of {[a[0] for a in asked]}, not several")
    if not asked:
        return str, False
    name, kind, value = asked[0]
    try:
        if kind == "choice":
            if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
                raise bad(f"{name} must be a non-empty list of non-empty strings", name)
            return _Literal[tuple(value)], False
        if kind == "regex":
            if not isinstance(value, str):
                raise bad(f"{name} must be a string", name)
            return Regex(value), False
        if kind == "json":
            schema = json.loads(value, parse_constant=_no_constant) if isinstance(value, str) else value
            return schema_to_type(schema), True
        if not isinstance(value, dict):
            raise bad("response_format must be an object", name)
        fmt_type = value.get("type")
        if fmt_type == "json_schema":
            spec = value.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                raise bad("response_format.json_schema.schema must be a JSON schema object", name)
            return schema_to_type(spec["schema"]), True
        if fmt_type == "json_object":
            schema = value.get("schema")
            if not isinstance(schema, dict):
                raise bad("response_format json_object needs a schema here: open-ended JSON cannot be bounded "
                          "(send {'type': 'json_object', 'schema': {...}} or json_schema)", name)
            return schema_to_type(schema), True
        raise bad(f"response_format type {str(fmt_type)[:40]!r} is not supported (json_schema, json_object, text)",
                  name)
    except UsageError as exc:
        raise bad(str(exc), name) from None
    except (ValueError, RecursionError) as exc:
        raise bad(f"{name} is not valid JSON: {str(exc)[:200]}", name) from None


def _number(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise bad(f"{key} must be {'a number' if kind is float else 'an integer'}", key)
    if isinstance(value, float) and not math.isfinite(value):
        raise bad(f"{key} must be a finite number", key)
    return value


def _settings(body: dict[str, Any], max_tokens_cap: int) -> GenerationSettings:
    options: dict[str, Any] = {}
    temperature = _number(body, "temperature", float)
    if temperature is not None:
        if not 0 <= temperature <= 2:
            raise bad(f"temperature must be between 0 and 2, got {temperature}", "temperature")
        options["temperature"] = float(temperature)
    top_p = _number(body, "top_p", float)
    if top_p is not None:
        options["top_p"] = float(top_p)
    seed = _number(body, "seed", int)
    if seed is not None:
        if not -(2**63) <= seed < 2**64:
            raise bad("seed must fit in 64 bits", "seed")
        options["seed"] = seed
    cap = _number(body, "max_completion_tokens", int)
    if cap is None:
        cap = _number(body, "max_tokens", int)
    if cap is not None:
        if not 1 <= cap <= max_tokens_cap:
            raise bad(f"max_tokens must be between 1 and {max_tokens_cap}, got {cap}", "max_tokens")
        options["max_new_tokens"] = cap
    try:
        return GenerationSettings(**options)
    except UsageError as exc:
        raise bad(str(exc)) from None


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise bad("stop must be a string or a list of up to 4 non-empty strings", "stop")
    return tuple(stop)


@dataclass(frozen=True)
class Call:
    """One chat completion request, checked and ready for the model.

    Attributes:
        messages: the conversation (tool prompt included when tools are offered).
        output_type: what the model decodes under.
        json_mode: whether the content is JSON (response_format / json schema).
        settings: sampling settings.
        tool_mode: ``none``, ``auto``, ``required`` or ``named``.
        tools: the tools the output type allows calls to.
        stream: whether the answer goes back as server-sent events.
        include_usage: whether a stream ends with a usage chunk.
        stop: stop strings cut from text answers.
    """

    messages: list[Message]
    output_type: Any
    json_mode: bool
    settings: GenerationSettings
    tool_mode: ToolMode = "none"
    tools: tuple[ToolSpec, ...] = ()
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = field(default=())


def parse_call(body: Any, budget: ImageBudget, *, max_tokens_cap: int = 1 << 20) -> Call:
    """Check a chat completion body and turn it into a `Call` (raises `HTTPError`)."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise bad("stream must be true or false", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad("stream_options must be an object", "stream_options")
    include_usage = bool(stream and options and options.get("include_usage"))
    if body.get("n", 1) not in (1, None):
        raise bad("only n = 1 is supported", "n")
    if body.get("logprobs"):
        raise bad("logprobs are not supported", "logprobs")
    if "model" in body and not isinstance(body["model"], str):
        raise bad("model must be a string", "model")
    settings = _settings(body, max_tokens_cap)
    stop = _stop(body)
    output_type, json_mode = _output_type(body)
    mode, offered = _tool_choice(body, _tools(body))
    messages = _messages(body.get("messages"), budget)
    if mode != "none":
        reply: Any | None = None
        if mode == "auto":
            reply = output_type if json_mode else str
            if not json_mode and output_type is not str:
                raise bad("with tool_choice auto, a reply can be text or a json schema, not a choice or regex",
                          "tool_choice")
        prompt = _tool_prompt(mode, offered, json_mode)
        if messages[0].role == "system":
            messages[0] = Message("system", [*messages[0].content, prompt])
        else:
            messages.insert(0, Message("system", [prompt]))
        output_type = tool_call_output(offered, reply)
    return Call(messages, output_type, json_mode, settings, mode, offered, bool(stream), include_usage, stop)


# ---------------------------------------------------------------------------------------------------
# answers
# ---------------------------------------------------------------------------------------------------


def _cut(text: str, stop: tuple[str, ...]) -> str:
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(cuts)] if cuts else text


def completion(call: Call, value: Any, *, model: str, count: typing.Callable[[str], int]) -> dict[str, Any]:
    """The ``chat.completion`` object for a decoded value."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if call.tool_mode != "none" and not isinstance(value, _Reply):
        args = value.args
        arguments = TypeAdapter(type(args)).dump_json(args, by_alias=True).decode()
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": value.tool, "arguments": arguments}}]
        finish = "tool_calls"
        completion_text = json.dumps({"tool": value.tool, "args": json.loads(arguments)}, separators=(",", ":"))
    else:
        if isinstance(value, _Reply):
            reply = json.loads(TypeAdapter(type(value)).dump_json(value, by_alias=True))["content"]
            content = json.dumps(reply, separators=(",", ":"), ensure_ascii=False) if call.json_mode else str(reply)
        elif call.json_mode:
            content = TypeAdapter(call.output_type).dump_json(value, by_alias=True).decode()
        else:
            content = value if isinstance(value, str) else str(value)
        if not call.json_mode:
            content = _cut(content, call.stop)
        message["content"] = content
        completion_text = content
    prompt_tokens = sum(count(m.text) for m in call.messages)
    completion_tokens = count(completion_text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _pieces(text: str, size: int = 24) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def stream_chunks(answer: dict[str, Any], *, include_usage: bool) -> Iterator[dict[str, Any]]:
    """A finished ``chat.completion`` as the ``chat.completion.chunk`` objects of a stream."""
    base = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"]}
    choice = answer["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    if message.get("tool_calls"):
        yield chunk({"role": "assistant", "content": None})
        for i, call in enumerate(message["tool_calls"]):
            yield chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": ""}}]})
            for piece in _pieces(call["function"]["arguments"]):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    else:
        yield chunk({"role": "assistant", "content": ""})
        for piece in _pieces(message["content"] or ""):
            yield chunk({"content": piece})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        yield {**base, "choices": [], "usage": answer["usage"]}


def constraint_http_error(exc: ConstraintError) -> HTTPError:
    """A constraint the server cannot compile for a request: 400 with the reason."""
    return bad(f"the requested output cannot be constrained: {exc}")
