from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image

import docvlm as dv
from docvlm.integrations.langchain import DocvlmLoader, tools
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
    # the model sees the zoomed image: a text block and a standard image block
    text_block, image = zoom.content
    assert text_block == {"type": "text", "text": "image crop-1: page 0 region [300, 380, 560, 420], 520x80 px at 144 dpi"}
    assert set(image) == {"type", "base64", "mime_type"} and (image["type"], image["mime_type"]) == ("image", "image/png")
    png = Image.open(io.BytesIO(base64.b64decode(image["base64"])))
    assert png.size == (520, 80)
    assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(toolbox.image("crop-1").image.convert("RGB")))

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


def test_render_and_zoom_carry_images_in_each_format() -> None:
    for images, kind in (("image", "image"), ("image_url", "image_url")):
        by_name = {t.name: t for t in tools(dv.samples.invoice_pdf(), images=images)}  # type: ignore[arg-type]
        message = by_name["render_page"].invoke(call("render_page", {"page": 0, "dpi": 36}, "1"))
        text_block, image = message.content
        assert text_block["type"] == "text" and text_block["text"].startswith("image page-1: page 0")
        assert image["type"] == kind
        data = image["base64"] if kind == "image" else image["image_url"]["url"].removeprefix("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (298, 421)
    by_name = {t.name: t for t in tools(dv.samples.invoice_pdf(), images="none")}
    message = by_name["zoom"].invoke(call("zoom", {"page": 0, "box": TOTAL}, "2"))
    assert isinstance(message.content, str) and message.content.startswith("image crop-1")
    read = by_name["read_text"].invoke(call("read_text", {"page": 0, "box": TOTAL}, "3"))
    assert read.content == "Total:   EUR 145.78"  # text tools stay text
    with pytest.raises(dv.UsageError, match="images must be"):
        tools(dv.samples.invoice_pdf(), images="png")  # type: ignore[arg-type]


def test_a_chat_model_is_shown_the_zoomed_image() -> None:
    """The tool message a chat model gets back holds the image (here: what a fake model is sent next turn)."""
    by_name = {t.name: t for t in tools(dv.samples.invoice_pdf())}
    seen: list[list[Any]] = []

    class Recorder(ToolCallingFakeChatModel):
        def _generate(self, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            seen.append(messages)
            return super()._generate(messages, *args, **kwargs)

    chat = Recorder(messages=iter([AIMessage(content="", tool_calls=[call("zoom", {"page": 0, "box": TOTAL}, "z")]),
                                   AIMessage(content="EUR 145.78")]))
    bound = chat.bind_tools(list(by_name.values()))
    history: list[Any] = [HumanMessage("total?")]
    ai = bound.invoke(history)
    history += [ai, *[by_name[tc["name"]].invoke(tc) for tc in ai.tool_calls]]  # type: ignore[attr-defined]
    assert bound.invoke(history).content == "EUR 145.78"
    tool_message = seen[-1][-1]
    assert isinstance(tool_message, ToolMessage) and tool_message.content[1]["type"] == "image"


def test_loader_yields_one_document_per_page_with_line_boxes(tmp_path: Any) -> None:
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(dv.samples.invoice_pdf())
    loader = DocvlmLoader(str(pdf))
    assert isinstance(loader, BaseLoader) and isinstance(loader, DocvlmLoader)
    (doc,) = loader.load()
    assert isinstance(doc, Document)
    assert doc.page_content == dv.read(None, dv.open(pdf)[0])
    meta = doc.metadata
    assert (meta["source"], meta["page"], meta["page_count"], meta["units"]) == (str(pdf), 0, 1, "pt")
    assert (meta["width"], meta["height"]) == (595, 842)
    total = [line for line in meta["lines"] if line["text"].startswith("Total:")]
    assert [line["text"] for line in total] == ["Total:   EUR 145.78"]
    box = total[0]["box"]
    assert list(box) == ["space", "image_size", "x0", "y0", "x1", "y1"] and box["space"] == "page"
    assert 300 < box["x0"] < box["x1"] < 560 and 380 < box["y0"] < box["y1"] < 420
    assert [line["text"] for line in meta["lines"]] == doc.page_content.splitlines()
    docs = list(DocvlmLoader([dv.samples.invoice_pdf(), str(pdf)], pages="1").lazy_load())
    assert [d.metadata["source"] for d in docs] == ["<bytes>", str(pdf)]


def test_loader_per_extraction() -> None:
    from pydantic import BaseModel

    class Invoice(BaseModel):
        invoice_number: str | None = None
        total: float | None = None

    (doc,) = DocvlmLoader(dv.samples.invoice_pdf(), mode="extract", schema=Invoice, model=None).load()
    assert doc.metadata["schema"] == "Invoice" and doc.metadata["model"] == "layout"  # the learned ranking alone
    assert doc.metadata["value"] == {"invoice_number": "INV-2026-0042", "total": 145.78}
    assert Invoice.model_validate_json(doc.page_content) == Invoice(invoice_number="INV-2026-0042", total=145.78)
    evidence = doc.metadata["evidence"]["total"]
    assert evidence["quote"] == "145.78" and evidence["page"] == 0 and evidence["box"]["space"] == "page"
    with pytest.raises(dv.UsageError, match="needs a schema"):
        DocvlmLoader(dv.samples.invoice_pdf(), mode="extract")
