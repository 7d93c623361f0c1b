"""Questions answered with citations (``dv.ask``), reading (``dv.read``) and phrase grounding on the text layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from docvlm._deadline import with_timeout
from docvlm.documents.base import Document, Page
from docvlm.errors import UsageError
from docvlm.models.base import Model
from docvlm.tasks._page import PageInput, as_page, check_region, view
from docvlm.tasks.text import (
    Segment,
    document_segments,
    group_lines,
    numbers_in,
    page_words,
    pages_of,
    read_text,
    require_words,
    segments_of,
    serialize_lines,
    words_in,
)
from docvlm.types.answer import Answer, Citation
from docvlm.types.geometry import BoundingBox

__all__ = ["ask", "ground_text", "read"]

_MAX_ANSWER_CHARS = 300


def read(model: Model | None, page: PageInput, region: BoundingBox | None = None, *, max_chars: int = 2000) -> str:
    """The text of a page or a region.

    Without a model, or with a text-only model, the words of the text layer (or OCR for scans) are returned
    as lines: exact and free. With a vision model the region is rendered and transcribed by the model
    (bounded by ``max_chars``), which reads what a text layer lacks.

    Raises:
        UsageError: a region outside the page.
    """
    p = as_page(page)
    region = check_region(p, region)
    if model is None or not model.supports_images:
        return read_text(p, region)
    image = view(p, region)
    from typing import Annotated

    return str(model.generate(
        [image, "Transcribe all text in this image, line by line, exactly as written."],
        Annotated[str, Field(max_length=max_chars)],
    ))


def _spans(segments: Sequence[Segment]) -> list[tuple[str, Segment, int, int]]:
    """Answer candidates for extractive answers: segment texts, ``label: value`` tails and numbers."""
    out: list[tuple[str, Segment, int, int]] = []
    seen: set[str] = set()

    def add(seg: Segment, start: int, end: int) -> None:
        text = seg.text[start:end].strip()
        if text and len(text) <= 120 and text not in seen:
            seen.add(text)
            out.append((text, seg, start, end))

    for seg in segments:
        t = seg.text
        add(seg, 0, len(t))
        if ":" in t[:-1]:
            head, _, tail = t.partition(":")
            add(seg, len(head) + 1 + (len(tail) - len(tail.lstrip())), len(t))
        for start, end, _ in numbers_in(t):
            add(seg, start, end)
    return out


@with_timeout("ask")
def ask(model: Model, document: Document | Page, question: str, *, pages: Sequence[int] | None = None,
        max_chars: int = 6000, timeout: float | None = None) -> Answer:
    """Answer a question about a document, citing the page regions the answer comes from.

    A text-only model answers *extractively*: it chooses the answer among spans printed in the document
    (segment texts, ``label: value`` tails, numbers), so the answer and its citation are always real. A vision
    model sees the page images, writes a free answer (bounded) and cites the text segments it used by id.

    ``timeout``: seconds before the call stops with [`TimeLimitError`][docvlm.errors.TimeLimitError] (OCR and model calls
    included).

    Raises:
        UsageError: the document has no words and the model cannot see images.
        TimeLimitError: ``timeout`` passed.
    """
    if not question.strip():
        raise UsageError("the question is empty")
    page_list = pages_of(document, pages)
    segments = document_segments(page_list)
    text = serialize_lines(group_lines(segments), with_ids=model.supports_images, max_chars=max_chars)
    if not segments:
        if not model.supports_images:
            require_words(page_list[0], [])
        answer = model.generate([*(view(p) for p in page_list[:4]), question], str)
        return Answer(text=str(answer).strip())
    if not model.supports_images:
        spans = _spans(segments)
        choice = model.generate(
            f"Document:\n{text}\n\nQuestion: {question}\nAnswer with text copied exactly from the document.",
            Literal[tuple(s[0] for s in spans)],
        )
        _, seg, start, end = next(s for s in spans if s[0] == choice)
        return Answer(text=str(choice), citations=[Citation(page=seg.page, box=seg.span_box(start, end), quote=str(choice))])
    ids = tuple(str(s.id) for s in segments)
    answer_type: type[BaseModel] = create_model(
        "GroundedAnswer",
        answer=(str, Field(max_length=_MAX_ANSWER_CHARS)),
        sources=(list[Literal[ids]], Field(max_length=3)),  # type: ignore[valid-type]
    )
    prompt: list[Any] = [*(view(p) for p in page_list[:4]),
                         f"Document text, segments tagged with [id]:\n{text}\n\nQuestion: {question}\n"
                         "Answer briefly and list the ids of the segments that support the answer."]
    result: Any = model.generate(prompt, answer_type)
    by_id = {str(s.id): s for s in segments}
    citations = [Citation(page=by_id[i].page, box=by_id[i].box, quote=by_id[i].text) for i in dict.fromkeys(result.sources)]
    return Answer(text=result.answer, citations=citations)


def ground_text(model: Model, page: PageInput, phrase: str, *, region: BoundingBox | None = None,
                max_boxes: int = 8) -> list[BoundingBox]:
    """Boxes of the text segments a phrase refers to, chosen by the model among the page's segments.

    Works with text-only models: the model reads the page as ``[id]``-tagged lines and answers with segment
    ids (only ids that exist are allowed, and an empty list when nothing matches); each box is exact to the
    glyphs of the chosen segment.
    """
    p = as_page(page)
    region = check_region(p, region)
    words = words_in(page_words(p).rows, region)
    require_words(p, words)
    segments = segments_of(words, p.index)
    text = serialize_lines(group_lines(segments), with_ids=True)
    ids = tuple(str(s.id) for s in segments)
    choice = model.generate(
        f"Page text, segments tagged with [id]:\n{text}\n\nWhich segments contain: {phrase}?\n"
        "Answer with the list of ids, or an empty list if none does.",
        create_model("Segments", ids=(list[Literal[ids]], Field(max_length=max_boxes))),  # type: ignore[valid-type]
    )
    by_id = {str(s.id): s for s in segments}
    return [by_id[i].box for i in dict.fromkeys(choice.ids)]  # type: ignore[attr-defined]
