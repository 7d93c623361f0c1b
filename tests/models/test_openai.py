"""OpenAIModel against a real HTTP server: ``docvlm.serve`` over a scripted model, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Literal

import httpx
import pytest
from PIL import Image
from pydantic import BaseModel, Field, model_validator

from docvlm.decoding import Regex, compile_output_type
from docvlm.errors import ModelError, UsageError
from docvlm.models.base import Model, Request
from docvlm.models.openai import OpenAIModel
from docvlm.serve import DocVLMServer, make_server

# ---------------------------------------------------------------------------------------------------
# the backing model and the server
# ---------------------------------------------------------------------------------------------------

Script = Callable[[Request, int], str]


class ScriptModel(Model):
    """Answers each request with ``script(request, index)``; records requests and batch sizes."""

    def __init__(self) -> None:
        self.spec = "script"
        self.supports_images = True
        self.reset()

    def reset(self, script: Script | None = None, delay: float = 0.0) -> None:
        self.script: Script = script or (lambda r, i: "ok")
        self.delay = delay
        self.requests: list[Request] = []
        self.batches: list[int] = []

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        self.batches.append(len(requests))
        if self.delay:
            time.sleep(self.delay)  # one model call, whatever the batch size: like a GPU batch
        out = []
        for r in requests:
            self.requests.append(r)
            out.append(self.script(r, len(self.requests) - 1))
        return out


class Live:
    def __init__(self, server: DocVLMServer, url: str, backend: ScriptModel) -> None:
        self.server, self.url, self.backend = server, url, backend
        self.bodies: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def live_server() -> Iterator[Live]:
    backend = ScriptModel()
    server, url = make_server(backend, model_name="scripted")
    live = Live(server, url, backend)
    answer = server.answer

    def recording(body: Any) -> dict[str, Any]:
        live.bodies.append(body)
        return answer(body)

    server.answer = recording  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield live
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def live(live_server: Live) -> Live:
    live_server.backend.reset()
    live_server.bodies.clear()
    return live_server


@pytest.fixture
def client(live: Live) -> Iterator[OpenAIModel]:
    model = OpenAIModel("scripted", base_url=live.url, api_key="")
    model.retry_backoff = 0.01
    yield model
    model.close()


class Invoice(BaseModel):
    number: str = Field(max_length=20)
    total: float = Field(ge=0)


class Span(BaseModel):
    start: int = Field(ge=0, le=100)
    end: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def ordered(self) -> Span:
        if self.start > self.end:
            raise ValueError("start must be <= end")
        return self


# ---------------------------------------------------------------------------------------------------
# typed outputs over HTTP
# ---------------------------------------------------------------------------------------------------


def test_pydantic_output(live: Live, client: OpenAIModel) -> None:
    live.backend.reset(lambda r, i: '{"number":"A-17","total":12.5}')
    assert client.generate("What is on the invoice?", Invoice) == Invoice(number="A-17", total=12.5)
    (body,) = live.bodies
    assert body["model"] == "scripted" and body["temperature"] == 0
    assert body["messages"] == [{"role": "user", "content": "What is on the invoice?"}]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Invoice"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and schema["required"] == ["number", "total"]
    assert schema["properties"]["number"]["maxLength"] == 20
    # the server decoded under a constraint compiled from that schema
    served = live.backend.requests[0].constraint
    assert served.matches('{"number":"x","total":1}') and not served.matches('{"number":"x","total":-1}')


def test_list_output_and_settings(live: Live, client: OpenAIModel) -> None:
    live.backend.reset(lambda r, i: '[{"number":"a","total":1},{"number":"b","total":2.25}]')
    invoices = Annotated[list[Invoice], Field(max_length=4)]
    out = client.generate("all invoices", invoices, temperature=0.5, seed=7, max_new_tokens=300)
    assert out == [Invoice(number="a", total=1), Invoice(number="b", total=2.25)]
    body = live.bodies[0]
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.5, 7, 300)
    assert body["response_format"]["json_schema"]["schema"]["type"] == "array"
    settings = live.backend.requests[0].settings
    assert (settings.temperature, settings.seed, settings.max_new_tokens) == (0.5, 7, 300)


def test_server_refuses_what_its_model_cannot_bound(live: Live, client: OpenAIModel) -> None:
    # the client lifts the token-index budget (the server decodes); a local model behind docvlm serve cannot
    class Notes(BaseModel):  # 40 explicitly bounded strings of 100 characters: 4,000 counted index positions
        lines: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=40)]

    assert client.compile(Notes).json_schema is not None
    with pytest.raises(ModelError, match=r"HTTP 400 .*cannot be constrained"):
        client.generate("notes", Notes)
    assert live.backend.requests == []


def test_choice_output(live: Live, client: OpenAIModel) -> None:
    live.backend.reset(lambda r, i: '{"choice":"no"}')
    assert client.generate("Is it paid?", Literal["yes", "no"]) == "no"
    schema = live.bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["choice"]["enum"] == ["yes", "no"]


@pytest.mark.parametrize("field", ["structured_outputs", "guided_regex", "regex", None])
def test_regex_output(live: Live, field: Any) -> None:
    live.backend.reset(lambda r, i: "INV-042")
    with OpenAIModel("scripted", base_url=live.url, regex_field=field) as model:
        assert model.generate("number?", Regex(r"INV-[0-9]{3}")) == "INV-042"
    regex = compile_output_type(Regex(r"INV-[0-9]{3}")).regex
    sent = {k: v for k, v in live.bodies[0].items() if k in ("structured_outputs", "guided_regex", "regex")}
    if field is None:
        assert sent == {}
        assert live.backend.requests[0].constraint.kind.value == "text"  # the server was not told
    else:
        assert sent == ({field: {"regex": regex}} if field == "structured_outputs" else {field: regex})
        assert live.backend.requests[0].constraint.regex == compile_output_type(Regex(regex)).regex
    assert "response_format" not in live.bodies[0]


def test_text_output(live: Live, client: OpenAIModel) -> None:
    live.backend.reset(lambda r, i: "free text, anything")
    assert client.generate("say something") == "free text, anything"
    assert "response_format" not in live.bodies[0] and "structured_outputs" not in live.bodies[0]


def test_json_object_mode_for_llama_cpp(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"number":"Z","total":0}')
    with OpenAIModel("scripted", base_url=live.url, response_format="json_object") as model:
        assert model.generate("x", Invoice) == Invoice(number="Z", total=0)
    fmt = live.bodies[0]["response_format"]
    assert fmt["type"] == "json_object" and fmt["schema"]["title"] == "Invoice"


def test_images_sent_as_data_urls(live: Live, client: OpenAIModel) -> None:
    import docvlm as dv

    live.backend.reset(lambda r, i: "seen")
    image = Image.new("RGB", (123, 45), (10, 200, 30))
    page = dv.open(dv.samples.invoice_pdf())[0].render(dpi=30)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You read documents."},
                {"role": "user", "content": ["Describe", image, "and", page]}]
    assert client.generate(messages) == "seen"
    content = live.bodies[0]["messages"][1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "text", "image_url"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    received = live.backend.requests[0]
    assert [m.role for m in received.messages] == ["system", "user"]
    assert received.messages[1].text == "Describe\nand"
    first, second = received.images
    assert first.size == (123, 45) and first.getpixel((5, 5)) == (10, 200, 30)
    assert second.size == (page.width, page.height)


def test_text_only_model_refuses_images() -> None:
    model = OpenAIModel("m", base_url="http://127.0.0.1:9/v1", supports_images=False)
    with pytest.raises(UsageError, match="text-only"):
        model.generate(["look", Image.new("RGB", (4, 4))])


# ---------------------------------------------------------------------------------------------------
# validation retries
# ---------------------------------------------------------------------------------------------------


def _fixes_when_told(request: Request, index: int) -> str:
    told = any("start must be <= end" in m.text for m in request.messages)
    return '{"start":3,"end":7}' if told else '{"start":7,"end":3}'


def test_invalid_answer_is_sent_back_with_the_error(live: Live, client: OpenAIModel) -> None:
    live.backend.reset(_fixes_when_told)
    assert client.generate("Find the span", Span) == Span(start=3, end=7)
    first, second = live.bodies
    assert len(first["messages"]) == 1
    assert second["messages"][1] == {"role": "assistant", "content": '{"start":7,"end":3}'}
    assert second["messages"][2]["role"] == "user"
    assert "start must be <= end" in second["messages"][2]["content"]


def test_retries_exhausted_raise_model_error(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"start":9,"end":1}')
    with OpenAIModel("scripted", base_url=live.url, max_retries=1) as model, \
            pytest.raises(ModelError, match=r"2 invalid answers.*start must be <= end"):
        model.generate("Find the span", Span)
    assert len(live.bodies) == 2


def test_unexpected_server_formatting_is_validated_not_regex_matched(live: Live, client: OpenAIModel) -> None:
    # a server that ignores response_format: extra whitespace, a code fence, a bare choice
    assert client.generate_batch([], Invoice) == []
    constraint = client.compile(Invoice)
    assert client.read_answer(constraint, '```json\n{ "number": "A", "total": 1.50 }\n```') == Invoice(number="A", total=1.5)
    assert client.read_answer(client.compile(Literal["yes", "no"]), " yes\n") == "yes"
    assert [a.text for a in client._complete(client.prepare(["x"], str))] == ["ok"]


# ---------------------------------------------------------------------------------------------------
# HTTP errors
# ---------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with OpenAIModel("m", base_url=url) as model, pytest.raises(ModelError) as info:
        model.generate("hello")
    assert info.value.hint == f"is the server running at {url}?"
    assert "cannot connect" in info.value.message


def test_server_error_is_retried_then_raised(live: Live, client: OpenAIModel) -> None:
    def broken(r: Request, i: int) -> str:
        raise ModelError("the GPU caught fire")

    live.backend.reset(broken)
    with pytest.raises(ModelError, match=r"HTTP 500 .*the GPU caught fire"):
        client.generate("hello")
    assert len(live.bodies) == 3  # http_retries=2


def test_timeout() -> None:
    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        with OpenAIModel("m", base_url=url, timeout=0.2) as model, pytest.raises(ModelError, match=r"within 0\.2 s"):
            model.generate("hello")


@pytest.mark.parametrize(("status", "body", "pattern", "hint"), [
    (401, {"error": {"message": "Incorrect API key"}}, "HTTP 401 .*Incorrect API key", "API key"),
    (404, {"detail": "model 'x' not found"}, "HTTP 404 .*model 'x' not found", "/models lists"),
    (429, "slow down", "HTTP 429 .*slow down", "lower concurrency"),
    (400, {"error": "bad schema"}, "HTTP 400 .*bad schema", "rejected the request"),
])
def test_http_error_messages(status: int, body: Any, pattern: str, hint: str) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        model = OpenAIModel("x", base_url="http://server/v1", api_key="sk-test", client=http)
        model.retry_backoff = 0.001
        with pytest.raises(ModelError, match=pattern) as info:
            model.generate("hi")
    assert info.value.hint is not None and hint in info.value.hint
    assert calls[0].headers["authorization"] == "Bearer sk-test"
    assert len(calls) == (3 if status == 429 else 1)


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        assert OpenAIModel("x", client=http).generate("hello") == "hi"
        assert OpenAIModel("x", api_key="", client=http).generate("hello") == "hi"
    assert seen == ["Bearer sk-env", None]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": ""}, "needs a model name"),
    ({"response_format": "xml"}, "response_format must be"),
    ({"regex_field": "pattern"}, "regex_field must be"),
    ({"max_retries": -1}, "must be >= 0"),
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"timeout": 0}, "timeout must be positive"),
])
def test_constructor_checks(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        OpenAIModel(**{"model": "m", **kwargs})


# ---------------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------------


def _invoice_number(r: Request, i: int) -> str:
    return f'{{"number":"{r.messages[0].text}","total":1}}'


def test_batch_runs_concurrently(live: Live, client: OpenAIModel) -> None:
    live.backend.reset(_invoice_number, delay=0.2)
    client.generate("single", Invoice)
    prompts = [f"n{i}" for i in range(8)]
    out = client.generate_batch(prompts, Invoice)
    assert [o.number for o in out] == prompts
    # requests were in flight together (the server saw them at once and batched them); sequential
    # requests would each arrive alone while the previous one sleeps
    assert max(live.backend.batches[1:]) > 1, live.backend.batches


def test_agenerate_batch_is_native_async(live: Live, client: OpenAIModel) -> None:
    assert OpenAIModel._acomplete is not Model._acomplete
    live.backend.reset(_invoice_number, delay=0.2)
    prompts = [f"a{i}" for i in range(8)]

    async def main() -> tuple[list[Any], Any]:
        out = await client.agenerate_batch(prompts, Invoice)
        one = await client.agenerate("solo", Invoice)
        return out, one

    out, one = asyncio.run(main())
    assert [o.number for o in out] == prompts and one.number == "solo"
    assert max(live.backend.batches) > 1  # concurrent requests met at the server


def test_async_errors_are_typed() -> None:
    model = OpenAIModel("m", base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(ModelError, match="cannot connect"):
        asyncio.run(model.agenerate_batch(["a", "b"]))


# ---------------------------------------------------------------------------------------------------
# from_spec
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rest", "model", "base_url"), [
    ("Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct", "http://localhost:8000/v1"),
    ("qwen2.5vl:7b@localhost:11434/v1", "qwen2.5vl:7b", "http://localhost:11434/v1"),
    ("org/m@x@https://h.example/v1/", "org/m@x", "https://h.example/v1"),
    ("gpt-4o", "gpt-4o", "https://api.openai.com/v1"),
])
def test_from_spec(rest: str, model: str, base_url: str) -> None:
    parsed = OpenAIModel.from_spec(rest)
    assert (parsed.model, parsed.base_url, parsed.spec) == (model, base_url, f"openai:{model}@{base_url}")


@pytest.mark.parametrize("rest", ["", "@http://h/v1", "m@"])
def test_from_spec_rejects(rest: str) -> None:
    with pytest.raises(UsageError, match="openai:<model>@<base_url>"):
        OpenAIModel.from_spec(rest)
