"""A seeded, time-boxed property-based fuzz of ``docvlm serve`` requests (issue 15): every request, however
malformed, gets a 2xx or a 4xx with a JSON error, never a 500 and never a hang.

Bodies mix valid and junk values for every field the server reads (messages and their parts, response formats
with JSON schemas built from the schema vocabulary, tools, tool choices, sampling settings, streams), and raw
bodies with flipped bytes. The backing model is a :class:`~docvlm.models.TestModel`, so requests the server
accepts are answered with sampled valid outputs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from docvlm.models import TestModel
from docvlm.serve import DocVLMServer, ServeLimits

from .conftest import start, stop

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALLOWED = {200, 400, 413, 415, 422}
PNG_1X1 = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAA"
           "AABJRU5ErkJggg==")

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)

KEYWORD_VALUES: dict[str, Any] = {
    "type": st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null", "date"])
    | st.lists(st.sampled_from(["string", "null", "integer"]), max_size=3),
    "minLength": st.integers(-2, 40), "maxLength": st.integers(-2, 40), "minItems": st.integers(-1, 6),
    "maxItems": st.integers(-1, 6), "minimum": st.integers(-1000, 1000) | st.floats(-1e6, 1e6),
    "maximum": st.integers(-1000, 1000) | st.floats(-1e6, 1e6),
    "pattern": st.sampled_from(["^[A-Z]{2}$", "^(x{1000}){1000}$", "a(?=b)", "[", "^\\d+$", "(a|b)*c", "((((x))))"]),
    "format": st.sampled_from(["date", "date-time", "time", "uuid", "email", "ipv4", "uri", ""]),
    "enum": st.lists(scalars, max_size=4), "const": scalars, "required": st.lists(st.text(max_size=3), max_size=3),
    "additionalProperties": st.booleans() | json_values, "$ref": st.sampled_from(["#/$defs/A", "#/x", "http://x"]),
    "items": st.booleans(), "title": st.text(max_size=8), "multipleOf": st.integers(1, 5),
}


def _schemas() -> Any:
    leaf = st.fixed_dictionaries({}, optional={k: v for k, v in KEYWORD_VALUES.items()})

    def extend(inner: Any) -> Any:
        return st.one_of(
            st.fixed_dictionaries({"type": st.just("object"),
                                   "properties": st.dictionaries(st.text(min_size=1, max_size=4), inner, max_size=3)},
                                  optional={"required": st.lists(st.text(max_size=3), max_size=2),
                                            "additionalProperties": st.booleans()}),
            st.fixed_dictionaries({"type": st.just("array"), "items": inner},
                                  optional={"maxItems": st.integers(-1, 5), "minItems": st.integers(0, 3)}),
            st.fixed_dictionaries({"anyOf": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"$defs": st.fixed_dictionaries({"A": inner}), "$ref": st.just("#/$defs/A")}),
        )

    return st.recursive(leaf, extend, max_leaves=8)


schemas = _schemas()
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=30)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries(
        {"url": st.sampled_from([PNG_1X1, "data:image/png;base64,AAAA", "data:,x", "https://example.com/a.png",
                                 PNG_1X1[:60], "data:image/png;base64,!!!!"])})}),
    json_values,
)
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "developer", "tool", "function", "robot"]),
     "content": st.text(max_size=40) | st.lists(parts, max_size=3) | st.none() | json_values},
    optional={"tool_call_id": st.text(max_size=5), "name": st.text(max_size=5),
              "tool_calls": st.lists(st.fixed_dictionaries({"id": st.text(max_size=4), "type": st.just("function"),
                                                            "function": st.fixed_dictionaries(
                                                                {"name": st.text(max_size=6),
                                                                 "arguments": st.text(max_size=12) | json_values})}),
                                     max_size=2)}), max_size=3)
tools = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["function", "function", "code"]),
                                        "function": st.fixed_dictionaries(
                                            {"name": st.sampled_from(["f", "g", "get_x", "", "bad name"])},
                                            optional={"parameters": schemas | json_values,
                                                      "description": st.text(max_size=10)})}), max_size=3)
response_formats = st.one_of(
    st.fixed_dictionaries({"type": st.just("json_schema"), "json_schema": st.fixed_dictionaries(
        {"name": st.text(max_size=5), "schema": schemas}, optional={"strict": st.booleans()})}),
    st.fixed_dictionaries({"type": st.sampled_from(["json_object", "text", "xml"])}, optional={"schema": schemas}),
    json_values,
)
FIELDS: dict[str, Any] = {
    "model": st.text(max_size=8) | json_values,
    "temperature": st.floats(-1, 3) | json_values, "top_p": st.floats(-0.5, 1.5) | json_values,
    "max_tokens": st.integers(-5, 100) | json_values, "seed": st.integers(-(2**70), 2**70) | json_values,
    "stream": st.booleans() | json_values, "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "n": st.sampled_from([1, None, 0, 2]), "stop": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=6),
    "response_format": response_formats, "guided_choice": st.lists(st.text(max_size=4), max_size=3) | json_values,
    "guided_regex": st.sampled_from(["[a-c]{1,3}", "a(?=b)", "(x{1000}){1000}", "("]) | json_values,
    "guided_json": schemas | st.text(max_size=10),
    "tools": tools | json_values,
    "tool_choice": st.sampled_from(["auto", "none", "required", "any", "sometimes"])
    | st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.sampled_from(["f", "g", "h"])})}) | json_values,
    "logprobs": st.booleans(),
}
plain_messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]),
                                                 "content": st.text(max_size=20)}), min_size=1, max_size=2)
# mostly well-formed conversations, so that the fields after them are reached
bodies = st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({"messages": st.one_of(plain_messages, plain_messages, plain_messages,
                                                              messages, json_values),
                                        **{k: FIELDS[k] for k in keys}}))


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[DocVLMServer, httpx.Client]]:
    server, thread = start(TestModel(seed=0), model_name="fuzz", limits=ServeLimits(request_timeout_s=30))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield server, client
    stop(server, thread)


def _check(response: httpx.Response) -> None:
    assert response.status_code in ALLOWED, response.text[:500]
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            assert response.text.endswith("data: [DONE]\n\n")
        else:
            assert response.json()["object"] == "chat.completion"
    else:
        error = response.json()["error"]
        assert error["code"] == response.status_code and "\n" not in error["message"]


FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


@FUZZ
@given(body=bodies)
def test_fuzzed_requests_get_2xx_or_4xx(fuzzed: tuple[DocVLMServer, httpx.Client], body: dict[str, Any]) -> None:
    _check(fuzzed[1].post("/chat/completions", json=body))


@settings(FUZZ, max_examples=60)
@given(body=bodies, flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]))
def test_fuzzed_raw_bodies_get_4xx_not_500(fuzzed: tuple[DocVLMServer, httpx.Client], body: dict[str, Any],
                                           flips: list[tuple[int, int]], content_type: str) -> None:
    raw = bytearray(json.dumps(body).encode())
    for at, byte in flips:
        raw[at % len(raw)] = byte
    _check(fuzzed[1].post("/chat/completions", content=bytes(raw), headers={"Content-Type": content_type}))


def test_the_fuzzed_server_still_answers_and_holds_no_extra_threads(fuzzed: tuple[DocVLMServer, httpx.Client]) -> None:
    response = fuzzed[1].post("/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                         "guided_choice": ["yes", "no"]})
    assert response.json()["choices"][0]["message"]["content"] in ("yes", "no")
    workers = [t for t in threading.enumerate() if t.name.startswith("AnyIO worker")]
    assert len(workers) <= 2 * ServeLimits().max_concurrency  # this server's and the shared session server's
