"""``docvlm serve`` spoken to directly over HTTP: the OpenAI chat-completions surface, tools, streams, keys."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from docvlm.models.base import Request
from docvlm.serve import DocVLMServer, ServeLimits, make_server, serve

from .conftest import Live, ScriptModel, start, stop

USER = [{"role": "user", "content": "x"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                                    "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                   "required": ["city", "days"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "now", "description": "The time.", "parameters": None}}


def _post(live: Live, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{live.url}/chat/completions", json=body, timeout=10, **kwargs)


def _events(response: httpx.Response) -> list[Any]:
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines), lines
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


# ---------------------------------------------------------------------------------------------------
# completions
# ---------------------------------------------------------------------------------------------------


def test_models_endpoints(live: Live) -> None:
    response = httpx.get(f"{live.url}/models", timeout=10)
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["scripted"]
    assert httpx.get(f"{live.url}/models/scripted", timeout=10).json()["id"] == "scripted"
    assert httpx.get(f"{live.url}/models/other", timeout=10).status_code == 404
    assert httpx.get(f"{live.root}/health", timeout=10).json() == {"status": "ok"}


def test_completion_shape_and_usage(live: Live) -> None:
    live.backend.reset(lambda r, i: "b")
    response = _post(live, {"model": "m", "messages": [{"role": "user", "content": "12345678"}],
                            "guided_choice": ["a", "b"]})
    data = response.json()
    assert response.status_code == 200 and data["object"] == "chat.completion" and data["model"] == "m"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "b"}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    assert live.backend.requests[0].constraint.choices == ("a", "b")


@pytest.mark.parametrize("extra", [
    {"structured_outputs": {"json": {"type": "integer", "maximum": 9}}},
    {"guided_json": '{"type": "integer", "maximum": 9}'},
])
def test_vllm_json_fields(live: Live, extra: dict[str, Any]) -> None:
    live.backend.reset(lambda r, i: "7")
    response = _post(live, {"messages": [{"role": "user", "content": "?"}], **extra})
    assert response.json()["choices"][0]["message"]["content"] == "7"
    constraint = live.backend.requests[0].constraint
    assert constraint.matches("9") and not constraint.matches("10")


def test_json_answers_are_json_even_for_scalar_schemas(live: Live) -> None:
    live.backend.reset(lambda r, i: "yes")
    schema = {"enum": ["yes", "no"]}
    data = _post(live, {"messages": [{"role": "user", "content": "?"}],
                        "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}})
    assert data.json()["choices"][0]["message"]["content"] == '"yes"'


def test_formats_are_decoded_under_exact_patterns(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"day":"2024-02-29","at":"2024-02-29T10:00:00Z","id":"123e4567-e89b-12d3-a456-426614174000","mail":"a@b.de"}')
    schema = {"type": "object", "properties": {
        "day": {"type": "string", "format": "date"}, "at": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"}, "mail": {"type": "string", "format": "email"}},
        "required": ["day", "at", "id", "mail"], "additionalProperties": False}
    data = _post(live, {"messages": USER,
                        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}})
    assert data.status_code == 200, data.text
    assert json.loads(data.json()["choices"][0]["message"]["content"])["day"] == "2024-02-29"
    constraint = live.backend.requests[0].constraint
    assert not constraint.matches(constraint_text := '{"day":"2023-02-29","at":"2024-02-29T10:00:00Z",'
                                  '"id":"123e4567-e89b-12d3-a456-426614174000","mail":"a@b.de"}'), constraint_text


def test_stop_strings_cut_text_answers(live: Live) -> None:
    live.backend.reset(lambda r, i: "first line\nsecond line")
    data = _post(live, {"messages": USER, "stop": ["\n"]}).json()
    assert data["choices"][0]["message"]["content"] == "first line"


# ---------------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------------


def test_required_tool_call_is_decoded_under_the_tool_union(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"tool":"get_weather","args":{"city":"Paris","days":3}}')
    data = _post(live, {"messages": USER, "tools": [WEATHER, TIME], "tool_choice": "required"}).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris","days":3}'}
    request = live.backend.requests[0]
    constraint = request.constraint
    assert constraint.matches('{"tool":"now","args":{}}')
    assert not constraint.matches('{"tool":"get_weather","args":{"city":"Paris","days":8}}')  # maximum 7
    assert not constraint.matches('{"tool":"other","args":{}}')
    assert not constraint.matches('{"content":"hi"}')  # required: no plain reply
    system = request.messages[0]
    assert system.role == "system" and "get_weather: The weather in a city." in system.text
    assert data["usage"]["completion_tokens"] > 0


def test_named_tool_choice_allows_that_tool_only(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"tool":"now","args":{}}')
    data = _post(live, {"messages": USER, "tools": [WEATHER, TIME],
                        "tool_choice": {"type": "function", "function": {"name": "now"}}}).json()
    assert data["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "now", "arguments": "{}"}
    constraint = live.backend.requests[0].constraint
    assert not constraint.matches('{"tool":"get_weather","args":{"city":"Paris","days":3}}')


def test_auto_tool_choice_may_answer_in_text(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"content":"It is sunny."}')
    data = _post(live, {"messages": USER, "tools": [WEATHER]}).json()
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "It is sunny."}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert live.backend.requests[0].constraint.matches('{"tool":"get_weather","args":{"city":"x","days":1}}')


def test_tool_choice_none_ignores_the_tools(live: Live) -> None:
    live.backend.reset(lambda r, i: "plain")
    data = _post(live, {"messages": USER, "tools": [WEATHER], "tool_choice": "none"}).json()
    assert data["choices"][0]["message"]["content"] == "plain"
    assert live.backend.requests[0].constraint.kind.value == "text"


def test_tool_results_in_the_conversation(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"content":"Sunny, 21 C."}')
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":1}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    data = _post(live, {"messages": messages, "tools": [WEATHER]}).json()
    assert data["choices"][0]["message"]["content"] == "Sunny, 21 C."
    seen = live.backend.requests[0].messages
    assert [m.role for m in seen] == ["system", "user", "assistant", "user"]
    assert seen[2].text == '{"tool":"get_weather","args":{"city":"Paris","days":1}}'
    assert seen[3].text == "Result of get_weather: sunny, 21 C"


def test_streamed_tool_call_arguments_add_up(live: Live) -> None:
    live.backend.reset(lambda r, i: '{"tool":"get_weather","args":{"city":"San Francisco","days":7}}')
    response = _post(live, {"messages": USER, "tools": [WEATHER], "tool_choice": "required", "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response)
    assert events[-1] == "[DONE]"
    deltas = [e["choices"][0]["delta"] for e in events[:-1]]
    arguments = "".join(d["tool_calls"][0]["function"].get("arguments", "") for d in deltas if d.get("tool_calls"))
    assert json.loads(arguments) == {"city": "San Francisco", "days": 7}
    assert deltas[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_streamed_text_with_usage(live: Live) -> None:
    text = "A longer answer that takes several chunks to send over the wire."
    live.backend.reset(lambda r, i: text)
    response = _post(live, {"messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    events = _events(response)
    chunks = [e for e in events[:-1] if e["choices"]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == text
    assert len(chunks) > 3 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 16
    assert len({e["id"] for e in events[:-1]}) == 1


# ---------------------------------------------------------------------------------------------------
# refusals: 4xx with one line, and the model never called
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"messages": []}, 400, "messages must be a non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}]}, 400, "role 'robot'"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     400, "only data: URLs"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png;base64,AAAA"}]}]},
     400, "not a readable image"),
    ({"messages": USER,
      "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "string", "format": "uri"}}}},
     400, 'format "uri" is not supported'),
    ({"messages": USER, "response_format": {"type": "json_object"}}, 400, "needs a schema"),
    ({"messages": USER, "guided_choice": ["a"], "guided_regex": "a"}, 400, "not several"),
    ({"messages": USER, "structured_outputs": {"grammar": "root ::= x"}}, 400,
     "structured_outputs.grammar is not supported"),
    ({"messages": USER, "temperature": -1}, 400, "temperature"),
    ({"messages": USER, "temperature": 1e308}, 400, "temperature must be between 0 and 2"),
    ({"messages": USER, "max_tokens": 0}, 400, "max_tokens must be between 1"),
    ({"messages": USER, "n": 2}, 400, "only n = 1"),
    ({"messages": USER, "stream": "yes"}, 400, "stream must be true or false"),
    ({"messages": USER, "tools": [{"type": "function"}]}, 400, "tools[0].function must be an object"),
    ({"messages": USER, "tools": [{"type": "retrieval"}]}, 400, "only function tools"),
    ({"messages": USER, "tools": [WEATHER, WEATHER]}, 400, "two tools are named 'get_weather'"),
    ({"messages": USER, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}}, 400,
     "not among the tools"),
    ({"messages": USER, "tool_choice": "required"}, 400, "tool_choice needs tools"),
    ({"messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
     400, "parameters must be a JSON schema of type object"),
    ({"messages": USER, "tools": [WEATHER], "guided_choice": ["a", "b"]}, 400, "not a choice or regex"),
    ({"messages": USER, "guided_regex": "a(?=b)"}, 400, "cannot be constrained"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]}]}, 400,
     "arguments is not JSON"),
    ([1, 2], 400, "must be a JSON object"),
])
def test_bad_requests(live: Live, body: Any, status: int, message: str) -> None:
    response = _post(live, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error" and error["code"] == status
    assert "\n" not in error["message"]
    assert live.backend.requests == []


def test_bad_routes_methods_and_bodies(live: Live) -> None:
    missing = httpx.get(f"{live.url}/nothing", timeout=10)
    assert missing.status_code == 404 and "no route GET /v1/nothing" in missing.json()["error"]["message"]
    assert httpx.post(f"{live.url}/completions", json={}, timeout=10).status_code == 404
    wrong = httpx.get(f"{live.url}/chat/completions", timeout=10)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == 405
    response = httpx.post(f"{live.url}/chat/completions", content=b"{not json",
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400 and "not JSON" in response.json()["error"]["message"]


def test_model_errors_are_answered_not_crashed(live: Live) -> None:
    def broken(request: Request, index: int) -> str:
        raise RuntimeError("the GPU caught fire")

    live.backend.reset(broken)
    response = _post(live, {"messages": USER})
    assert response.status_code == 500 and "RuntimeError: the GPU caught fire" in response.json()["error"]["message"]
    live.backend.reset(lambda r, i: '{"a":')  # cut off: not a valid answer of the constraint
    response = _post(live, {"messages": USER, "guided_json": {"type": "object", "properties": {"a": {"type": "integer"}}}})
    assert response.status_code == 422 and response.json()["error"]["type"] == "constraint_error"


# ---------------------------------------------------------------------------------------------------
# access: API key, Host, lifecycle
# ---------------------------------------------------------------------------------------------------


def test_api_key_is_required_when_set() -> None:
    server, thread = start(ScriptModel(), api_key="s3cret")
    try:
        url = server.url
        body = {"messages": USER}
        missing = httpx.post(f"{url}/chat/completions", json=body, timeout=10)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"]["type"] == "authentication_error"
        wrong = httpx.post(f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        assert httpx.get(f"{url}/models", timeout=10).status_code == 401
        good = httpx.post(f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer s3cret"}, timeout=10)
        assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"] == "ok"
        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=10).status_code == 200  # probes need no key
    finally:
        stop(server, thread)


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}

    def interrupted(self: DocVLMServer) -> None:
        seen["key"] = self.api_key
        raise KeyboardInterrupt

    monkeypatch.setenv("DOCVLM_API_KEY", "from-env")
    monkeypatch.setattr(DocVLMServer, "serve_forever", interrupted)
    serve(ScriptModel(), port=0)
    assert seen["key"] == "from-env"
    out = capsys.readouterr().out
    assert "docvlm: serving script at http://127.0.0.1:" in out and "API key required" in out


def test_a_foreign_host_header_is_refused_on_loopback(live: Live) -> None:
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends its own name as Host."""
    response = _post(live, {"messages": USER}, headers={"Host": "evil.example:8000"})
    assert response.status_code == 403 and "not a loopback name" in response.json()["error"]["message"]
    assert _post(live, {"messages": USER}, headers={"Host": "localhost"}).status_code == 200


def test_closed_server_refuses_new_work() -> None:
    server, _ = make_server(ScriptModel())
    server.server_close()
    server.server_close()  # twice is fine
    with pytest.raises(Exception, match="shutting down"):
        server.answer({"messages": USER})


def test_a_shutdown_before_serving_started_is_not_lost() -> None:
    """A thread that reaches serve_forever after shutdown() was called stops at once instead of serving on."""
    server, _ = make_server(ScriptModel())
    server.shutdown()  # nothing serves yet
    server.server_close()  # as the tests' stop() does, before the thread got to serve_forever
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.serve_forever()
        except BaseException as exc:  # an error in the thread would be lost: keep it for the assert
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and errors == []


def test_limits_are_checked() -> None:
    from docvlm.errors import UsageError

    with pytest.raises(UsageError, match=r"ServeLimits\.request_timeout_s must be a positive number"):
        ServeLimits(request_timeout_s=0)
    with pytest.raises(UsageError, match="the API key is empty"):
        make_server(ScriptModel(), api_key=" ")


def test_the_address_in_use_is_one_line() -> None:
    from docvlm.errors import UsageError

    first, _ = make_server(ScriptModel())
    try:
        with pytest.raises(UsageError, match=r"cannot listen on 127\.0\.0\.1:"):
            make_server(ScriptModel(), port=first.server_address[1])
    finally:
        first.server_close()


def test_requests_arriving_together_are_batched(live: Live) -> None:
    live.backend.reset(lambda r, i: "ok", delay=0.3)
    results: list[int] = []

    def one() -> None:
        results.append(_post(live, {"messages": USER}).status_code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200] * 4
    assert max(live.backend.batches) > 1 and sum(live.backend.batches) == 4
