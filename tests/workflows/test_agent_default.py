"""The agent with the offline default model (SmolLM2-135M, text-only): real constrained decoding of tool calls.

A text-only model answers extractively: the answer tool only allows text spans the run has shown it, and docvlm
cites them. So the run completes within its steps with a valid answer, printed in the document and cited to its
glyphs, even though a model this small often picks the wrong span (measured here: the invoice date instead of the
balance due; ``dv.ask`` on the same page picks ``Sales tax 7%:``).
"""

from __future__ import annotations

import pytest

import docvlm as dv
from docvlm.workflows import Agent

from .conftest import Bundle

pytestmark = pytest.mark.slow

TASK = "What is the total amount due on the invoice?"


def printed_at(page: dv.Page, text: str) -> list[dv.BoundingBox]:
    """The boxes of every shortest run of the page's words (in text-layer order) whose text contains ``text``."""
    rows = page.words().rows
    words = [str(w[4]) for w in rows]
    found = []
    for i in range(len(rows)):
        for j in range(i, min(i + 12, len(rows))):
            if text in " ".join(words[i: j + 1]):
                if text not in " ".join(words[i + 1: j + 1]):
                    box = dv.BoundingBox.from_corners(*(float(v) for v in rows[i][:4]))
                    for w in rows[i + 1: j + 1]:
                        box = box.union(dv.BoundingBox.from_corners(*(float(v) for v in w[:4])))
                    found.append(box)
                break
    return found


def test_default_model_answers_with_a_span_printed_in_the_document_cited_to_its_glyphs(bundle: Bundle) -> None:
    model = dv.load_model("default")
    assert not model.supports_images
    agent = Agent(model, max_steps=2, budget=600)
    assert agent.extractive
    result = agent.run(bundle.pdf, TASK)

    # the trace: the agent's opening read of the invoice page, the model's calls, the answer last
    trace = result.trace
    assert trace.outcome == "answered" and trace.model == "default" and trace.task == TASK
    opening, *chosen = trace.steps
    assert (opening.tool, opening.arguments, opening.model_seconds) == ("read_text", {"page": 2, "box": None}, None)
    assert opening.note is not None and opening.note.startswith("read by the agent before the first model call: page 2")
    assert "Balance due:" in opening.text
    assert 1 <= len(chosen) == result.steps <= 2
    assert all(s.model_seconds is not None and s.model_seconds > 0 for s in chosen)
    assert all(s.tool != "invalid_call" for s in chosen)  # the constraint held at every step
    final = chosen[-1]
    assert final.tool == "answer" and final.error is None and final.arguments == {"text": result.answer.text}

    # the answer is a span printed in the document, cited by docvlm to the glyph boxes of its words
    answer = result.answer
    assert answer.text.strip() == answer.text and answer.text
    (cited,) = answer.citations
    assert cited.quote == answer.text
    page = dv.open(bundle.pdf)[cited.page]
    candidates = printed_at(page, answer.text)
    assert candidates, f"{answer.text!r} is not printed on page {cited.page}"
    assert max(cited.box.iou(box) for box in candidates) > 0.99
    assert final.result["citations"][0]["page"] == cited.page
    assert result.images == 0
