"""The clients people use, against a live ``docvlm serve``: the official ``openai`` client and ``langchain-openai``.

The backing model is scripted: each test checks that the request the client built reached the model as the
constraint it asked for, and that the client read the answer back as it would from OpenAI.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from docvlm.models.base import Request

from .conftest import Live

openai = pytest.importorskip("openai")


class Invoice(BaseModel):
    number: str = Field(max_length=20)
    issued: dt.date
    total: float = Field(ge=0)
    currency: Literal["EUR", "USD"]


class Contact(BaseModel):
    id: uuid.UUID
    email: str = Field(json_schema_extra={"format": "email"})


INVOICE = '{"number":"A-17","issued":"2026-11-02","total":145.78,"currency":"EUR"}'


@pytest.fixture
def client(live: Live) -> Iterator[Any]:
    with openai.OpenAI(base_url=live.url, api_key="unused", max_retries=0, timeout=30) as c:
        yield c


def _is_tool_union(request: Request, *names: str) -> bool:
    return all(f'"tool":"{n}"' in request.constraint.regex for n in names)


# ---------------------------------------------------------------------------------------------------
# openai
# ---------------------------------------------------------------------------------------------------


def test_openai_json_schema_and_usage(live: Live, client: Any) -> None:
    live.backend.reset(lambda r, i: INVOICE)
    schema = Invoice.model_json_schema()
    out = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Read the invoice."}],
        response_format={"type": "json_schema", "json_schema": {"name": "invoice", "schema": schema, "strict": True}})
    assert json.loads(out.choices[0].message.content) == json.loads(INVOICE)
    assert out.usage.prompt_tokens == 5 and out.usage.completion_tokens == 18 and out.usage.total_tokens == 23
    constraint = live.backend.requests[0].constraint
    assert not constraint.matches(INVOICE.replace("2026-11-02", "2026-11-31"))  # format date, exactly
    assert not constraint.matches(INVOICE.replace("145.78", "-1"))


def test_openai_parse_with_a_pydantic_model(live: Live, client: Any) -> None:
    live.backend.reset(lambda r, i: INVOICE)
    out = client.chat.completions.parse(model="scripted", messages=[{"role": "user", "content": "Read it."}],
                                        response_format=Invoice)
    assert out.choices[0].message.parsed == Invoice(number="A-17", issued=dt.date(2026, 11, 2), total=145.78,
                                                    currency="EUR")


def test_openai_uuid_and_email_formats(live: Live, client: Any) -> None:
    answer = '{"id":"123e4567-e89b-12d3-a456-426614174000","email":"jane.doe@example.com"}'
    live.backend.reset(lambda r, i: answer)
    out = client.chat.completions.parse(model="scripted", messages=[{"role": "user", "content": "Who?"}],
                                        response_format=Contact)
    assert out.choices[0].message.parsed.id == uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
    assert not live.backend.requests[0].constraint.matches(answer.replace("jane.doe@example.com", "not an email"))


def test_openai_stream(live: Live, client: Any) -> None:
    text = "Total: EUR 145.78, due on 2 December 2026."
    live.backend.reset(lambda r, i: text)
    stream = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "Total?"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage.completion_tokens == 11 and chunks[-1].choices == []


def test_openai_stream_helper_with_a_response_format(live: Live, client: Any) -> None:
    live.backend.reset(lambda r, i: INVOICE)
    with client.chat.completions.stream(model="scripted", messages=[{"role": "user", "content": "Read it."}],
                                        response_format=Invoice) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert {"content.delta", "content.done"} <= kinds
    assert final.choices[0].message.parsed.total == 145.78


def test_openai_tools(live: Live, client: Any) -> None:
    live.backend.reset(lambda r, i: '{"tool":"Invoice","args":' + INVOICE + "}")
    tool = openai.pydantic_function_tool(Invoice)
    out = client.chat.completions.parse(model="scripted", messages=[{"role": "user", "content": "Read it."}],
                                        tools=[tool], tool_choice="required")
    (call,) = out.choices[0].message.tool_calls
    assert call.function.name == "Invoice" and call.function.parsed_arguments.currency == "EUR"
    assert out.choices[0].finish_reason == "tool_calls"


# ---------------------------------------------------------------------------------------------------
# langchain-openai
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def chat(live: Live) -> Any:
    langchain_openai = pytest.importorskip("langchain_openai")
    return langchain_openai.ChatOpenAI(model="scripted", base_url=live.url, api_key="unused", max_retries=0,
                                       timeout=30)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output(live: Live, chat: Any, method: str) -> None:
    live.backend.reset(lambda r, i: INVOICE if method == "json_schema" else '{"tool":"Invoice","args":' + INVOICE + "}")
    structured = chat.with_structured_output(Invoice, method=method)
    assert structured.invoke("Read the invoice.") == Invoice(number="A-17", issued=dt.date(2026, 11, 2), total=145.78,
                                                            currency="EUR")
    request = live.backend.requests[0]
    if method == "function_calling":  # langchain forces the one tool: the constraint allows no text reply
        assert _is_tool_union(request, "Invoice") and not request.constraint.matches('{"content":"no"}')
    else:
        assert request.constraint.matches(INVOICE)


def test_langchain_bind_tools_and_the_tool_result_turn(live: Live, chat: Any) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    def script(request: Request, index: int) -> str:
        return '{"tool":"multiply","args":{"a":6,"b":7}}' if index == 0 else '{"content":"6 times 7 is 42."}'

    live.backend.reset(script)
    bound = chat.bind_tools([multiply])
    first = bound.invoke([HumanMessage("What is 6 times 7?")])
    assert first.tool_calls == [{"name": "multiply", "args": {"a": 6, "b": 7}, "id": first.tool_calls[0]["id"],
                                 "type": "tool_call"}]
    result = multiply.invoke(first.tool_calls[0])
    assert isinstance(result, ToolMessage) and result.content == "42"
    second = bound.invoke([HumanMessage("What is 6 times 7?"), first, result])
    assert second.content == "6 times 7 is 42." and second.tool_calls == []
    conversation = live.backend.requests[1].messages
    assert conversation[-2].text == '{"tool":"multiply","args":{"a":6,"b":7}}'
    assert conversation[-1].text == "Result of multiply: 42"
    assert first.usage_metadata is not None and first.usage_metadata["output_tokens"] > 0


def test_langchain_stream(live: Live, chat: Any) -> None:
    text = "Streaming works through langchain as well."
    live.backend.reset(lambda r, i: text)
    pieces = list(chat.stream("Say something."))
    assert len(pieces) > 2
    assert "".join(str(p.content) for p in pieces) == text


def test_langchain_stream_of_tool_calls(live: Live, chat: Any) -> None:
    from langchain_core.tools import tool

    @tool
    def lookup(query: str) -> str:
        """Look something up."""
        return query

    live.backend.reset(lambda r, i: '{"tool":"lookup","args":{"query":"invoice total"}}')
    merged = None
    for piece in chat.bind_tools([lookup], tool_choice="lookup").stream("Find the total."):
        merged = piece if merged is None else merged + piece
    assert merged is not None and merged.tool_calls[0]["args"] == {"query": "invoice total"}
