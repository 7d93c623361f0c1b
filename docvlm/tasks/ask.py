"""Questions answered with citations (``dv.ask``), reading (``dv.read``) and phrase grounding on the text layer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from docvlm._deadline import with_timeout
from docvlm._strings import levenshtein
from docvlm.documents.base import Document, Page
from docvlm.errors import UsageError
from docvlm.models.base import Model
from docvlm.tasks._page import PageInput, as_page, check_region, view
from docvlm.tasks._rank import Candidates, FieldSpec, Ranker
from docvlm.tasks._spans import Span, dates_in
from docvlm.tasks.text import (
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
from docvlm.types.text import WordRow

__all__ = ["ask", "ground_text", "question_field", "read"]

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


_QUESTION = re.compile(
    r"^\s*(?:what|which|who|whom|when|where|how\s+(?:much|many))\b(?:\s+(?:is|are|was|were|does|do|did|'s))?"
    r"(?:\s+(?:the|a|an|this|its))?\s+|\?+\s*$", re.IGNORECASE)


def question_field(question: str) -> str:
    """The thing a question asks for, as a field name: ``"What is the total?"`` -> ``"total"``, ``"What is the
    DATE:?"`` -> ``"DATE"``; a question of another shape is kept whole."""
    field = _QUESTION.sub("", question).strip().rstrip(":?. ").strip()
    return field or question.strip()


def _answer_type(question: str) -> str:
    """The type a question's first word asks for: "When" a date, "How much / how many" a number, "Who" a name
    (words, not numbers), any other a text."""
    head = question.strip().lower()
    return ("date" if re.match(r"when\b", head) else "num" if re.match(r"how\s+(?:much|many)\b", head)
            else "name" if re.match(r"who(?:m|se)?\b", head) else "str")


def question_spec(question: str) -> FieldSpec:
    """What the ranker is told of a question: the field it names (`question_field`) and the type its first word
    asks for (a name is ranked as a text)."""
    kind = _answer_type(question)
    return FieldSpec(question_field(question), kind="str" if kind == "name" else kind)


def _holds(kind: str, text: str) -> bool:
    """Whether a span is mostly a value of the kind: a date, a number or a name (text of any other kind holds)."""
    if kind == "name":
        return sum(c.isalpha() for c in text) * 2 > len(text.strip())
    found = dates_in(text) if kind == "date" else numbers_in(text) if kind == "num" else [(0, len(text), None)]
    return any(2 * (end - start) >= len(text.strip()) for start, end, _ in found)


_USE_KEY = True  # False: rank without the printed key (bench A/B: FUNSD questions ANLS 0.457 -> 0.584 with it)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).rstrip(":").lower()


def _overlaps(a: Span, b: Span) -> bool:
    """Whether two spans share printed characters (a date cut from "DATE: 12/01" does not share the key's)."""
    return any(sa.id == sb.id and s0 < e1 and s1 < e0 for sa, s0, e0 in a.parts for sb, s1, e1 in b.parts)


#: How many character edits per character of the key a printed key may differ by and still be the question's (OCR
#: misreads "Fax #:" as "Fax #;"). Chosen on FUNSD questions with docvlm's OCR and 5-fold models, two thirds of the
#: forms: ANLS 0.620 / 0.589 with exact keys only, 0.650 / 0.624 at 0.25 (0.644 / 0.622 at 0.15-0.2, 0.626 at 0.33).
_KEY_EDITS = 0.25


def _printed_key(cands: Candidates, name: str, ranker: Ranker) -> int | None:
    """The span that prints the question's field as a key ("DATE:" for "What is the date?"; case, spacing and a
    trailing colon aside; where none does, the nearest spelling within `_KEY_EDITS` edits per character, as OCR
    reads it), the one the ranker likes best as a key when it is printed several times."""
    want = _squash(name)
    found = [i for i, s in enumerate(cands.spans) if want and _squash(s.text) == want][:4]
    if not found and len(want) >= 4:
        most = int(_KEY_EDITS * len(want))
        near = [(d, i) for i, s in enumerate(cands.spans)
                if abs(len(t := _squash(s.text)) - len(want)) <= most and (d := levenshtein(t, want)) <= most]
        found = [i for d, i in near if d == min(near)[0]][:4] if near else []
    if len(found) <= 1:
        return found[0] if found else None
    best: dict[int, float] = {}
    for k in found:
        pool = [i for i, s in enumerate(cands.spans) if not _overlaps(s, cands.spans[k])]
        scores = ranker.scores(cands.rows(FieldSpec(name), pool, key=k))
        best[k] = max(scores, default=float("-inf"))
    return max(found, key=lambda k: best[k])


#: Weight of the link model's log-odds beside the ranker's score where the question's key is printed. FUNSD
#: questions with docvlm's OCR, 5-fold models, a third of the forms: ANLS 0.650 (ranker alone) -> 0.691 / 0.693 /
#: 0.701 at 0.5 / 1 / 2 (the link model alone 0.685).
_LINK_WEIGHT = 2.0


def _extractive(model: Model | None, page_list: Sequence[Page], question: str, max_chars: int,
                ranker: Ranker | None, max_choices: int, link_model: Ranker | None = None) -> Answer:
    """Answer by choosing a printed span: the ranker of [`docvlm.extract`][docvlm.extract] ranks the spans as values of the field
    the question names, and the model (if any) chooses among the best ``max_choices``: by scoring them as
    `docvlm.extract` does (its `choice_weight`; 0: the ranking alone), or under a ``Literal`` constraint."""
    from docvlm.tasks._context import LM_WEIGHT, field_prompt, text_near
    from docvlm.tasks._rank import default_link_model, default_ranker, link_rows

    ranker = ranker or default_ranker()
    cands, lines_all = Candidates.of_pages(page_list)
    spec = question_spec(question)
    pool = [i for i, s in enumerate(cands.spans) if len(s.text) <= _MAX_ANSWER_CHARS]
    typed = [i for i in pool if _holds(_answer_type(question), cands.spans[i].text)]
    pool = typed or pool  # "When ...?" is answered by a date where one is printed
    key = _printed_key(cands, spec.name, ranker) if _USE_KEY else None
    if key is not None:  # the question's words are printed as a key: rank values by where they sit from it too
        pool = [i for i in pool if not _overlaps(cands.spans[i], cands.spans[key])] or pool
    scores = ranker.scores(cands.rows(spec, pool, key=key))
    if key is not None:  # and how likely each is one of the key's values (the link model of dv.key_values)
        link = link_model or default_link_model()
        scores = scores + _LINK_WEIGHT * link.scores(link_rows(cands, key, pool))
    order = [pool[k] for k in sorted(range(len(pool)), key=lambda k: -scores[k])]
    texts: dict[str, int] = {}
    for i in order:
        texts.setdefault(cands.spans[i].text, i)
        if len(texts) >= max_choices:
            break
    weight = None if model is None or not model.supports_scoring else \
        model.choice_weight if model.choice_weight is not None else LM_WEIGHT
    if model is None or weight == 0:  # the ranking alone (a model whose scores add nothing is not asked)
        chosen = next(iter(texts))
    elif weight is not None and len(texts) > 1:  # the model's log-probability of each answer beside its rank score
        excerpt = text_near(lines_all, [cands.spans[i].segment.id for i in texts.values()], max_chars=max_chars)
        lm = model.score(field_prompt(excerpt, question_field(question)), list(texts))
        rank = {i: float(scores[pool.index(i)]) for i in texts.values()}
        chosen = max(zip(texts.items(), lm, strict=True), key=lambda t: rank[t[0][1]] + weight * (t[1] - max(lm)))[0][0]
    elif weight is not None:
        chosen = next(iter(texts))
    else:
        excerpt = text_near(lines_all, [cands.spans[i].segment.id for i in texts.values()], max_chars=max_chars)
        chosen = str(model.generate(
            f"Document:\n{excerpt}\n\nQuestion: {question}\nAnswer with text copied exactly from the document.",
            Literal[tuple(texts)],
        ))
    span = cands.spans[texts[chosen]]
    return Answer(text=chosen, citations=[Citation(page=span.page, box=span.box, quote=chosen)])


@with_timeout("ask")
def ask(model: Model | None, document: Document | Page, question: str, *, pages: Sequence[int] | None = None,
        max_chars: int = 6000, max_choices: int = 5, ranker: Ranker | None = None,
        link_model: Ranker | None = None, timeout: float | None = None) -> Answer:
    """Answer a question about a document, citing the page regions the answer comes from.

    Without a model, or with a text-only model, the answer is *extractive*: the question names a field ("What is
    the total?" asks for ``total``) and its first word the answer's type ("When": a date, "How much / how many": a
    number, "Who": words); where the question's field is printed as a key ("Total:" for "What is the total?"; or a
    spelling a few edits from it, as OCR misreads keys) the answer is the value linked to it, ranked as
    [`docvlm.key_values`][docvlm.key_values] ranks a key's values (where a span sits from the key counts, and how
    likely each is one of the key's values by the link model of `key_values`); otherwise the learned ranker of
    [`docvlm.extract`][docvlm.extract] ranks the spans printed in the
    document as its value, and the model (if any) chooses among the best ``max_choices``; the answer and its
    citation are always real. A vision model sees the page images, writes a free answer (bounded) and cites the
    text segments it used by id.

    ``timeout``: seconds before the call stops with [`TimeLimitError`][docvlm.errors.TimeLimitError] (OCR and model calls
    included).

    Raises:
        UsageError: an empty question, or a document without words and a model that cannot see images.
        TimeLimitError: ``timeout`` passed.
    """
    if not question.strip():
        raise UsageError("the question is empty")
    page_list = pages_of(document, pages)
    segments = document_segments(page_list)
    if not segments:
        if model is None or not model.supports_images:
            require_words(page_list[0], [])
        assert model is not None
        answer = model.generate([*(view(p) for p in page_list[:4]), question], str)
        return Answer(text=str(answer).strip())
    if model is None or not model.supports_images:
        return _extractive(model, page_list, question, max_chars, ranker, max_choices, link_model)
    text = serialize_lines(group_lines(segments), with_ids=True, max_chars=max_chars)
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


def _printed(words: Sequence[WordRow], phrase: str) -> list[BoundingBox]:
    """Boxes of every run of words that spells ``phrase`` (case and spacing ignored), in reading order."""
    want = re.sub(r"\s+", "", phrase).lower()
    if not want:
        return []
    out: list[BoundingBox] = []
    texts = [re.sub(r"\s+", "", str(w[4])).lower() for w in words]
    for i in range(len(words)):
        got = ""
        for j in range(i, len(words)):
            got += texts[j]
            if not want.startswith(got):
                break
            if got == want:
                run = words[i:j + 1]
                out.append(BoundingBox(x0=min(w[0] for w in run), y0=min(w[1] for w in run),
                                       x1=max(w[2] for w in run), y1=max(w[3] for w in run)))
                break
    return out


def ground_text(model: Model, page: PageInput, phrase: str, *, region: BoundingBox | None = None,
                max_boxes: int = 8) -> list[BoundingBox]:
    """Boxes of the text segments a phrase refers to, chosen by the model among the page's segments.

    A phrase printed on the page (case and spacing aside) is found in the words themselves, without the model.
    Otherwise this works with text-only models: the model reads the page as ``[id]``-tagged lines and answers with segment
    ids (only ids that exist are allowed, and an empty list when nothing matches); each box is exact to the
    glyphs of the chosen segment.
    """
    p = as_page(page)
    region = check_region(p, region)
    words = words_in(page_words(p).rows, region)
    require_words(p, words)
    printed = _printed(words, phrase)
    if printed:  # the phrase is printed: its words are the answer, exact to the glyph
        return printed[:max_boxes]
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
