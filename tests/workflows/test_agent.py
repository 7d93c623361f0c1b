"""dv.Agent driven by scripted models: the loop, the constraint on calls, observations, budgets and the trace."""

from __future__ import annotations

import base64
import doctest
import io
import re
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import pytest
from PIL import Image
from pydantic import TypeAdapter

import docvlm as dv
from docvlm.decoding import compile_output_type
from docvlm.documents import PageImage
from docvlm.models import FunctionInfo, Message, Model, Request
from docvlm.workflows import Agent, AgentResult, Trace, agent, pipelines, tool_call_type, trace
from docvlm.workflows.tools import AnswerArgs, ListPagesArgs, ReadTextArgs, ZoomArgs

from .conftest import Bundle, answer_ground, boxes_in

TASK = "What is the total amount due on the invoice?"


def is_step(messages: list[Message]) -> bool:
    return messages[0].role == "system"


def pad(box: dv.BoundingBox, by: float) -> dict[str, float]:
    return {"x0": box.x0 - by, "y0": box.y0 - by, "x1": box.x1 + by, "y1": box.y1 + by}


@pytest.fixture(scope="module")
def zoom_and_ground(bundle: Bundle) -> tuple[AgentResult, list[list[Message]]]:
    """A vision model's script: read page 0, zoom into the invoice's totals, ground the total, answer citing it."""
    truth = bundle.invoice.fields["total"]
    seen: list[list[Message]] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        if not is_step(messages):
            return answer_ground(messages, info, truth.box)
        seen.append(list(messages))
        step = len(seen) - 1
        if step == 0:
            return {"tool": "read_text", "args": {"page": 0, "box": None}}
        if step == 1:
            return {"tool": "zoom", "args": {"page": 2, "box": pad(truth.box, 40), "dpi": 200}}
        if step == 2:
            return {"tool": "ground", "args": {"page": 2, "phrase": truth.text}}
        (found,) = boxes_in(messages[-1].text)
        return {"tool": "answer", "args": {"text": truth.text, "citations": [
            {"page": 2, "box": {"x0": found.x0, "y0": found.y0, "x1": found.x1, "y1": found.y1}, "quote": truth.text}]}}

    result = Agent(dv.FunctionModel(script), max_steps=6).run(bundle.pdf, TASK)
    return result, seen


def test_scripted_agent_answers_by_zooming_and_grounding(bundle: Bundle, zoom_and_ground: tuple[AgentResult, Any]) -> None:
    result, _ = zoom_and_ground
    truth = bundle.invoice.fields["total"]
    assert isinstance(result, dv.AgentResult)
    assert result.answer.text == truth.text == "$2,502.26"
    (cited,) = result.answer.citations
    assert cited.page == 2 and cited.quote == truth.text
    assert cited.box.iou(truth.box) > 0.97  # ground snapped to the word; the tool rounds to 0.1 pt
    assert [s.tool for s in result.trace.steps] == ["read_text", "zoom", "ground", "answer"]
    assert result.steps == 4 and result.images == 1
    assert result.trace.outcome == "answered" and result.trace.task == TASK
    assert all(s.error is None for s in result.trace.steps)
    assert all(s.model_seconds is not None and s.model_seconds >= 0 for s in result.trace.steps)


def test_observations_carry_text_and_the_zoomed_image(bundle: Bundle, zoom_and_ground: tuple[AgentResult, Any]) -> None:
    result, seen = zoom_and_ground
    system = seen[0][0].text
    assert "The document has 3 pages" in system
    for name in ("list_pages", "render_page", "zoom", "read_text", "find_tables", "ground", "answer"):
        assert f"- {name}(" in system
    assert "- zoom(page: int, box: {x0, y0, x1, y1}, dpi: number = 288)" in system
    assert seen[0][1].text == f"Task: {TASK}"
    # step 1 saw the read_text observation: page 0's text from its title on, cut at max_observation_chars
    observed = seen[1][-1].text
    assert observed.startswith(bundle.parts[0].blocks[0].text + "\n")
    assert observed.endswith(" ... (cut)\n(5 steps left.)") and len(observed) == 3000 + len(" ... (cut)\n(5 steps left.)")
    assert seen[1][-2].role == "assistant" and seen[1][-2].text == '{"tool":"read_text","args":{"page":0,"box":null}}'
    # step 2 saw the crop: a PageImage of page 2 showing the zoom region at 200 dpi
    (crop,) = seen[2][-1].page_images
    assert isinstance(crop, PageImage) and crop.page_index == 2 and crop.dpi == pytest.approx(200)
    zoom_step = result.trace.steps[1]
    assert zoom_step.images == ["crop-1"] and seen[2][-1].text.startswith("image crop-1: page 2 region")
    assert zoom_step.regions[0].box.iou(dv.BoundingBox.from_corners(**pad(bundle.invoice.fields["total"].box, 40))) > 0.99
    # the ground step's boxes are recorded as regions on page 2
    assert [r.page for r in result.trace.steps[2].regions] == [2]


def test_result_is_json(zoom_and_ground: tuple[AgentResult, Any]) -> None:
    result, _ = zoom_and_ground
    back = dv.AgentResult.model_validate_json(result.model_dump_json())
    assert back.answer == result.answer
    assert [s.arguments for s in back.trace.steps] == [s.arguments for s in result.trace.steps]
    assert back.trace.steps[1].arguments["box"]["x0"] == pytest.approx(result.trace.steps[1].arguments["box"]["x0"])


def test_trace_html_shows_every_step(zoom_and_ground: tuple[AgentResult, Any], tmp_path: Path) -> None:
    result, _ = zoom_and_ground
    path = result.to_html(tmp_path / "trace.html")
    page = path.read_text()
    for step in result.trace.steps:
        assert f"id='step-{step.index}'" in page
        assert f"<code class='tool'>{step.tool}</code>" in page
    assert "&quot;phrase&quot;: &quot;$2,502.26&quot;" in page  # the arguments, escaped
    sections = re.split(r"<section ", page)[1:]
    images_per_step = [s.count("<img ") for s in sections]
    # read_text of a whole page draws nothing; zoom: the crop + the page with the region; ground: the page with
    # the box; answer: the page with the citation; then the answer section with its citation drawn
    assert images_per_step == [0, 2, 1, 1, 1]
    sources = re.findall(r"<img src='([^']*)'", page)
    assert all(s.startswith("data:image/jpeg;base64,") for s in sources)
    crop = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert crop.size[0] > 200 and "http" not in page.split("<body>")[1].split("<img")[0]


def test_bad_arguments_become_error_observations_the_model_recovers_from(bundle: Bundle) -> None:
    truth = bundle.invoice.fields["total"]
    seen: list[str] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        seen.append(messages[-1].text)
        if len(seen) == 1:
            return {"tool": "zoom", "args": {"page": 7, "box": pad(truth.box, 10)}}
        if len(seen) == 2:
            return {"tool": "read_text", "args": {"page": 2, "box": {"x0": 900, "y0": 10, "x1": 950, "y1": 40}}}
        if len(seen) == 3:
            return {"tool": "read_text", "args": {"page": 2, "box": pad(truth.box, 1)}}
        return {"tool": "answer", "args": {"text": messages[-1].text.splitlines()[0], "citations": []}}

    result = Agent(dv.FunctionModel(script), max_steps=5).run(bundle.pdf, TASK)
    assert seen[1].startswith("error: page 7 is out of range: the document has 3 pages (0..2)")
    assert seen[2].startswith("error: box [900, 10, 950, 40] is outside page 2 (0, 0, 612, 792)")
    assert [s.error is not None for s in result.trace.steps] == [True, True, False, False]
    assert result.answer.text == truth.text


def test_the_last_step_only_allows_the_answer_tool_and_a_bad_answer_ends_in_the_typed_error(bundle: Bundle) -> None:
    allowed: list[tuple[bool, bool]] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        allowed.append((info.constraint.matches('{"tool":"list_pages","args":{}}'),
                        info.constraint.matches('{"tool":"answer","args":{"text":"x","citations":[]}}')))
        if info.call_index < 2:
            return {"tool": "list_pages", "args": {}}
        box = {"x0": 0, "y0": 0, "x1": 10, "y1": 10}
        return {"tool": "answer", "args": {"text": "x", "citations": [{"page": 5, "box": box, "quote": ""}]}}

    with pytest.raises(dv.AgentBudgetError, match="did not answer within max_steps=3") as err:
        Agent(dv.FunctionModel(script), max_steps=3).run(bundle.pdf, TASK)
    assert allowed == [(True, True), (True, True), (False, True)]
    assert isinstance(err.value, dv.ModelError) and err.value.reason == "steps"
    partial = err.value.trace
    assert isinstance(partial, Trace) and partial.outcome == "steps"
    assert [s.tool for s in partial.steps] == ["list_pages", "list_pages", "answer"]
    assert partial.steps[2].error == "page 5 is out of range: the document has 3 pages (0..2)"


def test_time_budget_ends_the_run_with_the_partial_trace(bundle: Bundle, tmp_path: Path) -> None:
    def slow(messages: list[Message], info: FunctionInfo) -> Any:
        time.sleep(0.3)
        return {"tool": "list_pages", "args": {}}

    with pytest.raises(dv.AgentBudgetError, match=r"ran out of its 0.2 s budget after 1 steps") as err:
        Agent(dv.FunctionModel(slow), max_steps=5, budget=0.2).run(bundle.pdf, TASK)
    assert err.value.reason == "time"
    assert [s.tool for s in err.value.trace.steps] == ["list_pages"]
    html = err.value.trace.to_html(tmp_path / "t.html").read_text()
    assert "<code class='tool'>list_pages</code>" in html and "<dd>time</dd>" in html


def test_image_budget_turns_further_image_calls_into_errors(bundle: Bundle) -> None:
    def script(messages: list[Message], info: FunctionInfo) -> Any:
        if info.call_index < 3:
            box = {"x0": 50, "y0": 50 + 100 * info.call_index, "x1": 300, "y1": 120 + 100 * info.call_index}
            return {"tool": "zoom", "args": {"page": 0, "box": box, "dpi": 100}}
        return {"tool": "answer", "args": {"text": "done", "citations": []}}

    result = Agent(dv.FunctionModel(script), max_steps=4, max_images=2).run(bundle.pdf, TASK)
    assert result.images == 2
    assert [s.images for s in result.trace.steps] == [["crop-1"], ["crop-2"], [], []]
    assert result.trace.steps[2].error == "the image budget is spent (max_images=2); use read_text instead"


class Truncating(Model):
    """A backend whose outputs are given raw, the way a real model's cut-off output reaches the parser."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self.spec = "truncating"
        self.outputs = list(outputs)
        self.caps: list[int] = []

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        self.caps += [r.max_new_tokens() for r in requests]
        return [self.outputs.pop(0) for _ in requests]


def test_a_cut_off_output_is_an_error_observation_and_the_token_cap_applies(bundle: Bundle) -> None:
    model = Truncating(['{"tool":"read_text","args":{"pa', '{"tool":"answer","args":{"text":"ok","citations":[]}}'])
    result = Agent(model, max_steps=3, max_tokens_per_step=50, extractive=False).run(bundle.pdf, TASK)
    assert result.answer.text == "ok"
    first = result.trace.steps[0]
    assert first.tool == "invalid_call" and first.error is not None
    assert first.error.startswith("your output was not a complete tool call (output does not match the constraint")
    assert model.caps == [50, 50]


def test_text_only_models_get_text_observations(bundle: Bundle) -> None:
    truth = bundle.invoice.fields["total"]
    seen: list[list[Message]] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        seen.append(messages)
        if info.call_index == 0:
            return {"tool": "zoom", "args": {"page": 2, "box": pad(truth.box, 2), "dpi": 100}}
        return {"tool": "answer", "args": {"text": truth.text, "citations": []}}

    text_only = dv.FunctionModel(script, supports_images=False)
    assert Agent(text_only).extractive and not Agent(dv.FunctionModel(script)).extractive
    Agent(text_only, tools=["zoom", "read_text"], max_steps=2, extractive=False).run(bundle.pdf, TASK)
    assert seen[0][1].text == f"Task: {TASK}"  # no opening read outside extractive mode
    last = seen[1][-1]
    assert last.images == [] and f"the text in this region:\n{truth.text}" in last.text
    tools_listed = re.findall(r"^- (\w+)\(", seen[0][0].text, flags=re.M)
    assert tools_listed == ["zoom", "read_text", "answer"]
    # by default a text-only model is not offered the image tools
    box = dv.workflows.TracedToolbox(bundle.pdf, text_only)
    assert [t.name for t in Agent(text_only).offered(box)] == ["list_pages", "read_text", "find_tables", "ground", "answer"]


def answer_texts(output_type: Any) -> set[str] | None:
    """The texts an extractive step's constraint allows as the answer (``None``: answer not offered)."""
    members = typing.get_args(typing.get_args(output_type)[0]) if typing.get_origin(output_type) is Annotated \
        else (output_type,)
    for member in members:
        (tool,) = typing.get_args(member.model_fields["tool"].annotation)
        if tool == "answer":
            return set(typing.get_args(member.model_fields["args"].annotation.model_fields["text"].annotation))
    return None


def spans_printed(page: dv.Page, region: dv.BoundingBox | None = None) -> set[str]:
    """What ``dv.ask`` would let a text-only model answer from a region: segment texts, ``label: value`` tails and
    numbers, from the page's words (built here from the text helpers, not from the agent's code)."""
    from docvlm.tasks.text import numbers_in, page_words, segments_of, words_in

    out = set()
    for seg in segments_of(words_in(page_words(page).rows, region), page.index):
        t = seg.text
        out.add(t)
        if ":" in t[:-1]:
            out.add(t.partition(":")[2].strip())
        out |= {t[a:b] for a, b, _ in numbers_in(t)}
    return {x for x in out if x and len(x) <= 120}


def word_boxes(page: dv.Page, *texts: str) -> list[dv.BoundingBox]:
    rows = page.words().rows
    return [dv.BoundingBox.from_corners(*(float(v) for v in w[:4])) for t in texts for w in rows if w[4] == t]


def test_extractive_answers_are_exactly_the_spans_shown_and_cite_their_glyphs(bundle: Bundle, tmp_path: Path) -> None:
    """A text-only model: the run opens with the page that shares the most words with the task (the invoice, page
    2); each step's answer constraint allows exactly the spans shown so far; choosing one cites its words."""
    doc = dv.open(bundle.pdf)
    truth = bundle.invoice.fields["total"]
    title = {"x0": 0, "y0": 0, "x1": 612, "y1": 80}
    steps: list[tuple[Any, list[Message]]] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        if not is_step(messages):  # the ground tool asking about page 1's segments
            (sid,) = re.findall(r"\[(\d+)\] Truck 28\b", messages[-1].text)
            return {"ids": [sid]}
        steps.append((info.output_type, messages))
        if len(steps) == 1:
            return {"tool": "read_text", "args": {"page": 0, "box": title}}
        if len(steps) == 2:
            return {"tool": "ground", "args": {"page": 1, "phrase": "Truck 28"}}
        if len(steps) == 3:
            return {"tool": "list_pages", "args": {}}
        return {"tool": "answer", "args": {"text": truth.text}}

    result = Agent(dv.FunctionModel(script, supports_images=False), max_steps=6, max_answer_spans=500).run(bundle.pdf, TASK)
    opening = result.trace.steps[0]
    assert (opening.tool, opening.arguments, opening.model_seconds) == ("read_text", {"page": 2, "box": None}, None)
    assert opening.note == "read by the agent before the first model call: page 2, it shares the most words with the task (3)"
    first = steps[0][1][1].text
    assert first.startswith(f"Task: {TASK}\n\nThe text of page 2, read for you") and "Balance due:   $2,502.26" in first
    invoice = spans_printed(doc[2])
    assert {"$2,502.26", "2,502.26", "Balance due:", "INV-2022-0245"} <= invoice and len(invoice) > 40
    assert answer_texts(steps[0][0]) == invoice
    title_spans = spans_printed(doc[0], dv.BoundingBox.from_corners(0, 0, 612, 80))
    assert "Energy Costs in Practice" in title_spans and not title_spans & invoice
    assert answer_texts(steps[1][0]) == invoice | title_spans
    # ground showed the text in the box it found, and that text became an answer
    assert "The text there:\nTruck 28" in steps[2][1][-1].text
    assert answer_texts(steps[2][0]) == invoice | title_spans | {"Truck 28", "28"}
    assert steps[3][0] is steps[2][0]  # list_pages showed no text: the same union, compiled once
    # the constraint itself: only spans shown, no citations written by the model
    constraint = compile_output_type(steps[3][0])
    assert constraint.matches('{"tool":"answer","args":{"text":"$2,502.26"}}')
    assert not constraint.matches('{"tool":"answer","args":{"text":"$2,502.27"}}')
    assert not constraint.matches('{"tool":"answer","args":{"text":"Freight Capacity"}}')  # page 1, never shown
    assert not constraint.matches('{"tool":"answer","args":{"text":"$2,502.26","citations":[]}}')
    # the citation is docvlm's: page 2 and the glyph box of the word
    assert result.answer.text == truth.text and result.steps == 4
    (cited,) = result.answer.citations
    (glyphs,) = word_boxes(doc[2], "$2,502.26")
    assert cited.page == 2 and cited.quote == truth.text and cited.box.iou(glyphs) > 0.999
    assert cited.box.iou(truth.box) > 0.97
    answer_step = result.trace.steps[-1]
    assert answer_step.arguments == {"text": truth.text} and answer_step.result["citations"][0]["page"] == 2
    assert [s.tool for s in result.trace.steps] == ["read_text", "read_text", "ground", "list_pages", "answer"]
    system = steps[0][1][0].text
    assert "- answer(text: string): Give the final answer: text copied exactly" in system
    assert "call answer with its text copied exactly from the document text you were shown" in system
    page = result.to_html(tmp_path / "trace.html").read_text()
    assert "<p class='note'>read by the agent before the first model call: page 2" in page


def test_extractive_offers_the_spans_that_share_most_words_with_the_task(bundle: Bundle) -> None:
    """``max_answer_spans`` caps the choice: the spans on the line that shares the most words with the task come
    first; a number inside a word cites the whole word."""
    offered: list[set[str] | None] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        offered.append(answer_texts(info.output_type))
        return {"tool": "answer", "args": {"text": "2,502.26"}}

    result = Agent(dv.FunctionModel(script, supports_images=False), max_steps=1, max_answer_spans=3).run(
        bundle.pdf, "What is the balance due?")
    assert offered == [{"Balance due:", "$2,502.26", "2,502.26"}]
    (glyphs,) = word_boxes(dv.open(bundle.pdf)[2], "$2,502.26")
    assert result.answer.text == "2,502.26" and result.answer.citations[0].box.iou(glyphs) > 0.999


def test_extractive_offers_no_answer_until_text_was_shown() -> None:
    """A page without words (a blank image, no text layer, nothing for OCR): ``answer`` is not offered, and a run
    that never sees text ends in the typed budget error instead of a forced, baseless answer."""
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buf, format="PNG")
    allowed: list[tuple[bool, bool]] = []

    def script(messages: list[Message], info: FunctionInfo) -> Any:
        allowed.append((info.constraint.matches('{"tool":"list_pages","args":{}}'), answer_texts(info.output_type) is None))
        return {"tool": "list_pages", "args": {}}

    agent = Agent(dv.FunctionModel(script, supports_images=False), max_steps=3)
    with pytest.raises(dv.AgentBudgetError, match="no document text it could answer with was shown to it") as err:
        agent.run(buf.getvalue(), "What does the sign say?")
    assert allowed == [(True, True), (True, True)]
    trace = err.value.trace
    assert [s.tool for s in trace.steps] == ["read_text", "list_pages", "list_pages"] and trace.outcome == "steps"
    assert trace.steps[0].text == "(no text)" and "no page shares words with the task" in (trace.steps[0].note or "")


def test_extra_and_custom_tools_and_unknown_names(bundle: Bundle) -> None:
    box = dv.workflows.TracedToolbox(bundle.pdf, dv.TestModel())
    names = [t.name for t in Agent(dv.TestModel(), tools=["layout", "read_text", pipelines.extract_table_tool]).offered(box)]
    assert names == ["layout", "read_text", "extract_table", "answer"]
    with pytest.raises(dv.UsageError, match="unknown tool 'teleport'"):
        Agent(dv.TestModel(), tools=["teleport"]).offered(box)


def test_tool_call_type_is_a_cached_discriminated_union() -> None:
    tools = (("list_pages", ListPagesArgs), ("read_text", ReadTextArgs), ("zoom", ZoomArgs), ("answer", AnswerArgs))
    call = tool_call_type(tools)
    assert tool_call_type(tools) is call
    constraint = compile_output_type(call)
    assert constraint.matches('{"tool":"read_text","args":{"page":1,"box":{"x0":1,"y0":2,"x1":3.5,"y1":4}}}')
    assert not constraint.matches('{"tool":"delete_file","args":{}}')
    assert not constraint.matches('{"tool":"read_text","args":{"page":-1,"box":null}}')
    assert not constraint.matches('{"tool":"zoom","args":{"page":0,"box":null,"dpi":288}}')  # zoom needs a box
    assert not constraint.matches('{"tool":"list_pages","args":{"page":0}}')
    parsed = constraint.parse('{"tool":"zoom","args":{"page":0,"box":{"x0":1,"y0":2,"x1":3,"y1":4},"dpi":72}}')
    assert parsed.tool == "zoom" and isinstance(parsed.args, ZoomArgs) and parsed.args.dpi == 72
    schema = TypeAdapter(call).json_schema()
    assert schema["discriminator"]["propertyName"] == "tool"
    assert tool_call_type((("answer", AnswerArgs),)).model_fields.keys() == {"tool", "args"}


def test_bad_agent_settings() -> None:
    with pytest.raises(dv.UsageError, match="max_steps must be at least 1"):
        Agent(dv.TestModel(), max_steps=0)
    with pytest.raises(dv.UsageError, match="budget must be a positive"):
        Agent(dv.TestModel(), budget=0)
    with pytest.raises(dv.UsageError, match="the task is empty"):
        Agent(dv.TestModel()).run(dv.samples.invoice_pdf(), "  ")


@pytest.mark.parametrize("module", [agent, trace, pipelines])
def test_module_examples(module: Any) -> None:
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0
