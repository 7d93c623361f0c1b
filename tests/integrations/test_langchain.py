from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

import docvlm as dv
from docvlm.integrations.langchain import tools
from docvlm.workflows import Toolbox
from docvlm.workflows.tools import ImageArtifact, TablesResult, TextResult

TOTAL = {"x0": 300, "y0": 380, "x1": 560, "y1": 420}


class ToolCallingFakeChatModel(GenericFakeChatModel):
    """GenericFakeChatModel with bind_tools as real chat models do it: tools converted to OpenAI schemas."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


def call(name: str, args: dict[str, Any], id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": id, "type": "tool_call"}


def test_a_chat_model_drives_the_tools() -> None:
    toolbox = Toolbox(dv.open(dv.samples.invoice_pdf()))
    by_name = {t.name: t for t in tools(toolbox)}
    chat = ToolCallingFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[call("read_text", {"page": 0, "box": TOTAL}, "1"),
                                          call("find_tables", {"page": 0}, "2")]),
        AIMessage(content="", tool_calls=[call("zoom", {"page": 0, "box": TOTAL, "dpi": 144}, "3"),
                                          call("read_text", {"page": 4}, "4")]),
        AIMessage(content="", tool_calls=[call("answer", {"text": "EUR 145.78", "citations": [
            {"page": 0, "box": TOTAL, "quote": "Total:   EUR 145.78"}]}, "5")]),
    ]))
    bound = chat.bind_tools(list(by_name.values()))
    bound_names = [t["function"]["name"] for t in bound.kwargs["tools"]]  # type: ignore[attr-defined]
    assert bound_names == list(by_name)
    history: list[Any] = [HumanMessage("What is the invoice total?")]
    results: dict[str, ToolMessage] = {}
    for _ in range(3):
        ai = bound.invoke(history)
        assert isinstance(ai, AIMessage)
        history.append(ai)
        for tc in ai.tool_calls:
            message = by_name[tc["name"]].invoke(tc)
            assert isinstance(message, ToolMessage)
            assert message.tool_call_id == tc["id"]
            results[tc["id"]] = message
            history.append(message)

    read = results["1"]
    assert read.content == "Total:   EUR 145.78"
    assert read.status == "success"
    assert isinstance(read.artifact, TextResult) and read.artifact.text == "Total:   EUR 145.78"

    tables = results["2"]
    assert isinstance(tables.artifact, TablesResult)
    assert tables.artifact.tables[0].markdown.splitlines()[2] == "| Torque wrench | 2 | 18.75 | 37.50 |"
    assert "table-0-0 (4x4" in str(tables.content)

    zoom = results["3"]
    assert isinstance(zoom.artifact, ImageArtifact)
    assert (zoom.artifact.width, zoom.artifact.height) == (520, 80)
    assert toolbox.image(zoom.artifact.id).image.size == (520, 80)

    bad = results["4"]
    assert bad.status == "error"
    assert bad.content == "error: page 4 is out of range: the document has 1 page (0..0)"

    assert toolbox.final is not None and toolbox.final.text == "EUR 145.78"
    assert toolbox.final.citations[0].box.xyxy == (300, 380, 560, 420)


def test_invalid_arguments_are_an_error_message() -> None:
    (read,) = [t for t in tools(dv.samples.invoice_pdf()) if t.name == "read_text"]
    message = read.invoke(call("read_text", {"page": -1}, "9"))
    assert message.status == "error"
    assert message.content == "error: invalid arguments: page: Input should be greater than or equal to 0"


def test_openai_schema_keeps_the_argument_model() -> None:
    by_name = {t.name: t for t in tools(dv.samples.invoice_pdf())}
    assert list(by_name) == ["list_pages", "render_page", "zoom", "read_text", "find_tables", "answer"]
    zoom = convert_to_openai_tool(by_name["zoom"])["function"]
    assert zoom["name"] == "zoom"
    assert "1 page (0..0)" in zoom["description"]
    params = zoom["parameters"]
    assert params["required"] == ["page", "box"]
    assert params["properties"]["page"] == {"description": "0-based page index", "minimum": 0, "type": "integer"}
    assert params["properties"]["dpi"]["maximum"] == 1200
    assert params["properties"]["box"]["required"] == ["x0", "y0", "x1", "y1"]
    answer = convert_to_openai_tool(by_name["answer"])["function"]["parameters"]
    assert answer["properties"]["citations"]["type"] == "array"


def test_ground_is_offered_with_a_model() -> None:
    names = [t.name for t in tools(dv.samples.invoice_pdf(), dv.TestModel())]
    assert "ground" in names


@pytest.mark.parametrize("blocked", ["langchain_core"])
def test_importing_the_module_does_not_import_langchain(blocked: str) -> None:
    import subprocess
    import sys

    code = ("import sys, docvlm, docvlm.workflows, docvlm.integrations.langchain; "
            f"assert {blocked!r} not in sys.modules, 'imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)
