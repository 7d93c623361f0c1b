"""``docvlm serve`` over a real transformers model (a tiny random Llama, built offline): the constrained
decoding path itself, token masks over the tool-call union and a date schema, not a scripted answer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from .conftest import start, stop

openai = pytest.importorskip("openai")
pytest.importorskip("transformers")


class Shipment(BaseModel):
    sent: dt.date
    parcels: int = Field(ge=1, le=9)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from docvlm.models import load_model
    from tests.models.conftest import _build_cached, cache_key, cache_root

    folder = _build_cached("llama", cache_root() / cache_key())
    server, thread = start(load_model(f"transformers:{folder}"), model_name="tiny")
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c
    stop(server, thread)


@pytest.mark.slow
def test_a_real_model_writes_valid_tool_calls_and_dates(client: Any) -> None:
    weather = {"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}, "days": {"type": "integer", "minimum": 1,
                                                                                       "maximum": 3}},
        "required": ["city", "days"]}}}
    clock = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}}
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    for seed in range(3):  # a random-weight model: whatever it writes, the constraint keeps it valid
        out = client.chat.completions.create(model="tiny", messages=ask, tools=[weather, clock],
                                             tool_choice="required", temperature=1.0, seed=seed, max_tokens=64)
        call = out.choices[0].message.tool_calls[0]
        arguments = json.loads(call.function.arguments)
        assert call.function.name in ("weather", "clock")
        if call.function.name == "weather":
            assert arguments["city"] in ("Paris", "Oslo") and 1 <= arguments["days"] <= 3
        else:
            assert arguments == {}
        assert out.usage.prompt_tokens > 20 and out.usage.completion_tokens > 3  # the tokenizer's own counts
    parsed = client.chat.completions.parse(model="tiny", messages=ask, response_format=Shipment, temperature=1.0,
                                           seed=7).choices[0].message.parsed
    assert isinstance(parsed.sent, dt.date) and 1 <= parsed.parcels <= 9
    whole = client.chat.completions.create(model="tiny", messages=ask, max_tokens=12).choices[0].message.content
    stream = client.chat.completions.create(model="tiny", messages=ask, stream=True, max_tokens=12)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == whole and whole  # greedy: the same text
