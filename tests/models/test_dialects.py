"""Server dialects: what OpenAIModel sends to each kind of server, checked against recorded exchanges.

``tests/models/recorded/<server>.json`` holds the requests one ``generate`` makes (the probe, then the chat call)
and the server's answers. ``llamacpp.json`` was captured from a real llama-cpp-python server (also run live in
``test_llamacpp_server.py``); the others are written from each server's documented API, as their ``source``
says. Placeholders stand for what docvlm compiles from the output type (its regex, its GBNF grammar, its strict
JSON schema), so a change to the compiler does not need new recordings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from docvlm.decoding import compile_output_type
from docvlm.decoding._gbnf import regex_to_gbnf
from docvlm.errors import UsageError
from docvlm.models.openai import DIALECTS, OpenAIModel, _request_schema

RECORDED = Path(__file__).parent / "recorded"
PROMPT = "The gas meter reads 0412. Give the meter and its value."


class Reading(BaseModel):
    meter: Literal["gas", "water"]
    value: int = Field(ge=0, le=9999)


def _fill(obj: Any) -> Any:
    constraint = compile_output_type(Reading)
    if isinstance(obj, dict) and set(obj) == {"$docvlm"}:
        return {"regex": constraint.regex, "grammar": regex_to_gbnf(constraint.regex),
                "schema": _request_schema(constraint)}[obj["$docvlm"]]
    if isinstance(obj, dict):
        return {k: _fill(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v) for v in obj]
    return obj


class Replay:
    """An httpx transport that expects the recorded requests in order and answers the recorded responses."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.exchanges = [_fill(e) for e in exchanges]
        self.done = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert self.done < len(self.exchanges), f"unexpected {request.method} {request.url}"
        expected = self.exchanges[self.done]
        self.done += 1
        assert (request.method, request.url.path) == (expected["method"], expected["path"])
        if request.method == "POST":
            assert json.loads(request.content) == expected["request"]
        return httpx.Response(expected["status"], json=expected["response"])


@pytest.mark.parametrize("name", ["openai", "vllm", "vllm-guided", "sglang", "llamacpp", "ollama"])
def test_each_server_is_probed_and_asked_in_its_dialect(name: str) -> None:
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    assert recorded["server"] == name and recorded["source"]
    replay = Replay(recorded["exchanges"])
    base_url = "https://api.openai.com/v1" if name == "openai" else "http://gpu-box:8000/v1"
    with httpx.Client(transport=httpx.MockTransport(replay)) as http:
        model = OpenAIModel(recorded["model"], base_url=base_url, api_key="", supports_images=False, client=http)
        assert model.generate(PROMPT, Reading) == Reading(**recorded["answer"])
        assert model.dialect == DIALECTS[name]
        probes = sum(e["method"] == "GET" for e in recorded["exchanges"])
        assert replay.done == probes + 1
        # probed once: a second structured request goes straight to the chat endpoint
        replay.exchanges.append(replay.exchanges[-1])
        assert model.generate(PROMPT, Reading) == Reading(**recorded["answer"])
        assert replay.done == probes + 2


@pytest.mark.parametrize("name", ["openai", "vllm", "sglang", "llamacpp", "ollama"])
def test_a_named_server_is_not_probed(name: str) -> None:
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    chat = [e for e in recorded["exchanges"] if e["method"] == "POST"]
    replay = Replay(chat)
    with httpx.Client(transport=httpx.MockTransport(replay)) as http:
        model = OpenAIModel(recorded["model"], base_url="http://gpu-box:8000/v1", api_key="", supports_images=False,
                            client=http, server=name)  # type: ignore[arg-type]
        assert model.generate(PROMPT, Reading) == Reading(**recorded["answer"])
    assert replay.done == 1


def test_free_text_needs_no_probe() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}]})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        model = OpenAIModel("m", base_url="http://x/v1", client=http)
        assert model.generate("say hello") == "hello"
    assert seen == ["POST /v1/chat/completions"]


def test_an_unreachable_probe_falls_back_to_openai_and_the_request_reports_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        model = OpenAIModel("m", base_url="http://x/v1", client=http)
        with pytest.raises(Exception, match="cannot connect to http://x/v1"):
            model.generate("q", Reading)
        assert model.dialect.name == "openai"


def test_regex_outputs_per_dialect() -> None:
    """A Regex output: the regex field of vLLM / SGLang, a grammar for llama.cpp, nothing for OpenAI / Ollama."""
    from docvlm.decoding import Regex

    bodies: dict[str, dict[str, Any]] = {}
    for name in ("openai", "vllm", "vllm-guided", "sglang", "llamacpp", "ollama", "docvlm"):
        def handler(request: httpx.Request, name: str = name) -> httpx.Response:
            bodies[name] = json.loads(request.content)
            if name == "ollama":
                return httpx.Response(200, json={"message": {"role": "assistant", "content": "INV-042"}, "done": True})
            return httpx.Response(200, json={"choices": [{"message": {"content": "INV-042"}, "finish_reason": "stop"}]})

        with httpx.Client(transport=httpx.MockTransport(handler)) as http:
            model = OpenAIModel("m", base_url="http://x/v1", client=http, server=name)  # type: ignore[arg-type]
            assert model.generate("number?", Regex(r"INV-[0-9]{3}")) == "INV-042"
    regex = compile_output_type(Regex(r"INV-[0-9]{3}")).regex
    constrained = {name: {k: v for k, v in body.items() if k in ("structured_outputs", "guided_regex", "regex",
                                                                  "grammar", "response_format", "format")}
                   for name, body in bodies.items()}
    assert constrained == {
        "openai": {}, "ollama": {},
        "vllm": {"structured_outputs": {"regex": regex}}, "docvlm": {"structured_outputs": {"regex": regex}},
        "vllm-guided": {"guided_regex": regex}, "sglang": {"regex": regex},
        "llamacpp": {"grammar": 'root ::= "INV-" [0-9]{3}\n'},
    }


def test_ollama_messages_carry_images_as_base64_and_settings_as_options() -> None:
    import base64

    from PIL import Image

    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"message": {"role": "assistant", "content": '{"choice":"yes"}'},
                                         "done_reason": "length", "done": True})

    image = Image.new("RGB", (3, 2), (255, 0, 0))
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        model = OpenAIModel("llava", base_url="http://localhost:11434/v1", client=http, server="ollama")
        assert model.generate(["Is it red?", image], Literal["yes", "no"], seed=3, max_new_tokens=5,
                              temperature=0.2) == "yes"
    (body,) = bodies
    assert body["options"] == {"temperature": 0.2, "seed": 3, "num_predict": 5} and body["stream"] is False
    assert body["format"]["properties"]["choice"]["enum"] == ["yes", "no"]
    (message,) = body["messages"]
    assert message["content"] == "Is it red?"
    (png,) = message["images"]
    decoded = Image.open(__import__("io").BytesIO(base64.b64decode(png)))
    assert decoded.size == (3, 2) and decoded.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_overrides_and_bad_server_names() -> None:
    model = OpenAIModel("m", base_url="http://x/v1", server="llamacpp", response_format="json_object")
    assert model.dialect.structured == "json_object"
    model = OpenAIModel("m", base_url="http://x/v1", server="vllm", regex_field="guided_regex")
    assert model.dialect.regex_field == "guided_regex" and model.dialect.structured == "regex"
    with pytest.raises(UsageError, match="server must be 'auto' or one of 'openai', 'vllm'"):
        OpenAIModel("m", server="tgi")  # type: ignore[arg-type]
