"""Schema extraction with per-field evidence: ``dv.extract(model, document, Schema)``.

How it works (text-grounded, LMDX-style, with a learned layout ranker):

1. The document's words (text layer, OCR, or words you pass to ``dv.open(..., words=...)``) become segments and
   visual lines ([`docvlm.tasks.text`][docvlm.tasks.text]).
2. Every run of printed text a value could be becomes a candidate *span* (`docvlm.tasks._spans`): segments,
   lines, segments without their label or registration number, multi-line blocks (addresses), dates and numbers
   inside segments. A field takes only spans that validate as its type: numbers for numeric fields, dates for
   dates, printed options for ``Literal`` / ``Enum`` fields, any text for strings.
3. A ranker learned from real and generated documents (`docvlm.tasks._rank`) scores each field's spans by
   layout, typography, shape, the label printed with them and its similarity to the field's name, and scores
   "not printed" beside them.
4. Without a model (``model=None``) the best-ranked span is the value. With a model, the model chooses among the
   best ``max_choices`` spans under a constraint that allows only them (or ``null``): it can only copy values that
   exist. A vision model also sees the page images.
5. Each chosen value maps back to the words it was read from, so its evidence box is exact to the glyph.

With ``verbatim=False`` a vision model writes each value itself (a value OCR misread, or one the text layer
lacks), and docvlm finds the evidence: the printed span closest to the value, else the model grounds it.

Lists of sub-models (line items) are read from the document's tables: columns are matched to the item model's
fields by name, and every cell becomes evidence.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from docvlm._deadline import with_timeout
from docvlm.documents.base import Document, Page
from docvlm.errors import FieldNotFoundError, ModelError, RowsSkippedWarning, UsageError
from docvlm.models.base import Model
from docvlm.tasks._context import LM_WEIGHT, field_prompt, text_near
from docvlm.tasks._rank import Candidates, FieldSpec, Ranker, default_ranker
from docvlm.tasks._spans import Span, dates_in, page_spans
from docvlm.tasks.text import (
    Line,
    group_lines,
    numbers_in,
    page_words,
    pages_of,
    segments_of,
)
from docvlm.types.answer import FieldEvidence
from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table

__all__ = ["LM_WEIGHT", "Extraction", "FieldNotFoundError", "extract", "field_prompt"]

S = TypeVar("S", bound=BaseModel)

#: Printed spellings of currency codes, so a Literal["USD", ...] field finds "$" on the page.
_CURRENCY_SYMBOLS = {"USD": ("$", "US$"), "EUR": ("€",), "GBP": ("£",), "JPY": ("¥",), "CHF": ("Fr.",), "INR": ("₹",)}

_MAX_CHOICE_CHARS = 200  # longer spans are not offered (they are rarely field values)


class Extraction(BaseModel, Generic[S]):
    """An extracted, validated object and the evidence of each leaf field.

    Attributes:
        value: the filled schema.
        evidence: for each leaf field path (``"total"``, ``"items[0].amount"``), where its value was read.
            A field whose value the document does not contain has no entry: docvlm never invents evidence.
        model: the spec of the model that chose the values (``"layout"`` for the ranker alone).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    value: S
    evidence: dict[str, FieldEvidence] = Field(default_factory=dict)
    model: str = ""

    def box(self, path: str) -> BoundingBox | None:
        """The evidence box of a field, if it has one."""
        ev = self.evidence.get(path)
        return ev.box if ev else None


@dataclass
class _Candidate:
    text: str  # what the model chooses (as printed, or the option it spells)
    value: Any  # validated for the field
    page: int
    box: BoundingBox
    index: int  # the span it reads from
    score: float = 0.0  # the ranker's score
    words: frozenset[tuple[int, int]] = frozenset()  # the printed words it reads (`Span.words`)


@dataclass
class _Leaf:
    path: str
    name: str
    annotation: Any
    required: bool
    description: str | None


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _base_type(tp: Any) -> Any:
    tp, _ = _unwrap_optional(tp)
    if typing.get_origin(tp) is typing.Annotated:
        return typing.get_args(tp)[0]
    return tp


def _leaves(schema: type[BaseModel], prefix: str = "") -> tuple[list[_Leaf], list[tuple[str, FieldInfo]]]:
    leaves: list[_Leaf] = []
    tables: list[tuple[str, FieldInfo]] = []
    for name, info in schema.model_fields.items():
        path = f"{prefix}{name}"
        base = _base_type(info.annotation)
        origin = typing.get_origin(base)
        if isinstance(base, type) and issubclass(base, BaseModel):
            sub, subtables = _leaves(base, f"{path}.")
            leaves += sub
            tables += subtables
        elif origin in (list, Sequence) and typing.get_args(base) and isinstance(typing.get_args(base)[0], type) \
                and issubclass(typing.get_args(base)[0], BaseModel):
            tables.append((path, info))
        elif origin in (list, tuple, set, dict, Sequence):
            raise UsageError(
                f"field {path!r} is a {base!r}: extraction supports scalar fields, nested models and lists of models",
                hint="model repeated values as list[SubModel] (read from tables)",
            )
        else:
            leaves.append(_Leaf(path, name, info.annotation, info.is_required(), info.description))
    return leaves, tables


def _kind(leaf: _Leaf) -> str:
    base = _base_type(leaf.annotation)
    if base in (int, float, Decimal):
        return "num"
    if base in (dt.date, dt.datetime):
        return "date"
    if base is bool or typing.get_origin(base) is Literal or (isinstance(base, type) and issubclass(base, enum.Enum)):
        return "other"
    return "str"


def _options(base: Any) -> list[Any]:
    return list(typing.get_args(base)) if typing.get_origin(base) is Literal else [m.value for m in base]


_MONEY = re.compile(r"^(?:[A-Z]{1,3}\$?\s?|[$€£¥₹]\s?)?([-+]?[\d.,' ]*\d)\s?(?:[A-Z]{2,3}|[$€£¥₹])?$")


def _number_value(text: str) -> float | None:
    """The number a span prints, allowing a currency sign or code around it (``$1,234.50``, ``RM 37.10``,
    ``1 234,50 EUR``); ``None`` when the span is more than a number."""
    m = _MONEY.match(text)
    if m is None:
        return None
    core = m.group(1)
    nums = numbers_in(core)
    if len(nums) != 1 or nums[0][0] != 0 or nums[0][1] != len(core):
        return None
    return nums[0][2]


def _typed_candidates(leaf: _Leaf, cands: Candidates, allowed: Sequence[int]) -> list[_Candidate]:
    """The spans that validate as the field's type, each with its value."""
    base = _base_type(leaf.annotation)
    adapter: TypeAdapter[Any] = TypeAdapter(_unwrap_optional(leaf.annotation)[0])
    kind = _kind(leaf)
    out: list[_Candidate] = []

    def add(i: int, span: Span, text: str, raw: Any, box: BoundingBox | None = None,
            words: set[tuple[int, int]] | None = None) -> None:
        try:
            value = adapter.validate_python(raw)
        except ValidationError:
            return
        out.append(_Candidate(text, value, span.page, box or span.box, i,
                              words=frozenset(span.words if words is None else words)))

    for i in allowed:
        span = cands.spans[i]
        text = span.text
        if len(text) > _MAX_CHOICE_CHARS or text.endswith(":"):  # a label is never a value
            continue
        if kind == "num":
            if span.lines > 1:
                continue
            number = _number_value(text)
            if number is not None:
                add(i, span, text, int(number) if base is int and number.is_integer() else number)
        elif kind == "date":
            dates = dates_in(text)
            if span.lines == 1 and len(dates) == 1 and dates[0][0] == 0 and dates[0][1] >= len(text.rstrip(".,;")):
                add(i, span, text, dates[0][2])
        elif kind == "other":
            if base is bool or span.lines > 1 or span.kind not in ("seg", "suf", "pre", "num"):
                continue
            for option in _options(base):
                for spelling in (str(option), *_CURRENCY_SYMBOLS.get(str(option), ())):
                    pattern = rf"(?<!\w){re.escape(spelling)}(?!\w)" if spelling[-1].isalnum() else re.escape(spelling)
                    m = re.search(pattern, text, re.IGNORECASE)
                    if m is not None:
                        seg, start, _ = span.parts[0]
                        printed = Span(m.group(), "seg", span.page, [(seg, start + m.start(), start + m.end())],
                                       span.line)
                        add(i, span, str(option), option, printed.box, printed.words)
                        break
        else:
            add(i, span, text, text)
    return out


_LABEL = re.compile(r"^[^:]{1,40}:$|^(?:[A-Z]{2,}\s?){1,3}$")


def _is_label(seg: Any) -> bool:
    """``Bill to:``, ``Invoice No.:``, ``BILL TO``: a printed label (ends a run of table rows)."""
    return bool(_LABEL.match(seg.text.strip()))


def _in_tables(span: Span, boxes: Mapping[int, list[BoundingBox]]) -> bool:
    cx, cy = span.box.center
    return any(b.x0 <= cx <= b.x1 and b.y0 <= cy <= b.y1 for b in boxes.get(span.page, []))


def _ruled_tables(page: Page, cache: dict[int, list[Table] | None]) -> list[Table] | None:
    """The page's tables from its vector lines, found once per extraction (``None``: an image page)."""
    from docvlm.tasks.tables import find_tables

    if page.index not in cache:
        try:
            cache[page.index] = find_tables(page)
        except UsageError:  # image pages: no vector lines
            cache[page.index] = None
    return cache[page.index]


def _question(leaf: _Leaf) -> str:
    name = leaf.path.replace("_", " ").replace(".", " ")
    return f"{name} ({leaf.description})" if leaf.description else name


def _aliases(leaf: _Leaf, synonyms: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    words = re.findall(r"[a-z0-9]+", leaf.name.lower().replace("_", " "))
    return tuple(alias for w in [leaf.name.lower(), *words] for alias in synonyms.get(w, ()))


@with_timeout("extract")
def extract(
    model: Model | None,
    document: Document | Page,
    schema: type[S],
    *,
    pages: Sequence[int] | None = None,
    instructions: str | None = None,
    max_chars: int = 6000,
    use_images: bool | None = None,
    max_choices: int | None = 5,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    ranker: Ranker | None = None,
    verbatim: bool = True,
    exclusive: bool = True,
    timeout: float | None = None,
) -> Extraction[S]:
    """Fill ``schema`` from a document, with evidence (page, box, quote) for every leaf field found.

    Args:
        model: any docvlm model, or ``None`` for the learned layout ranking alone (fast, no model). A text-only
            model reads the text near the candidates; a vision model also sees the page images (``use_images``,
            default: when it supports images).
        document: a document or one page.
        schema: a pydantic model: scalar fields (str, numbers, dates, Literal, Enum, bool), nested models,
            and ``list[SubModel]`` for repeated rows (read from tables).
        pages: 0-based pages to read (default: all).
        instructions: extra guidance put in the prompt.
        max_chars: the most document text given to the model in one prompt.
        max_choices: how many of a field's best-ranked candidate values the model chooses from (``None``: every
            value printed in the document that validates as the field's type).
        synonyms: other names of fields or of words of field names, e.g. ``{"iban": ("account", "bank account")}``;
            a label similar to one of them counts as naming the field.
        ranker: the candidate ranker (default: the one shipped with docvlm, `docvlm.tasks._rank`).
        verbatim: ``True`` (the default): every value is copied from a printed span. ``False`` (vision models
            only): the model reads the page images and writes each value itself, so a value the OCR or the text
            layer misspells still comes out right; its evidence is the printed span that spells it most closely
            (numbers and dates: the same value), else the box the model grounds it to.
        exclusive: ``True`` (the default): a field's value is not a part of another field's, as in key-information
            extraction, where each printed word has one label; where the best values of two fields overlap without
            being the same words (an address read from the company's line down), the fields' values are chosen
            together, the most likely ones without overlap under the ranker. Two fields may still have the same value
            (a total that is also the amount due). ``False`` for schemas whose fields nest (an address and its city). Applies to
            the values the ranking chooses (no model, or a text-only model that scores); a generating model's
            choices are its own.
        timeout: seconds before the call stops with [`TimeLimitError`][docvlm.errors.TimeLimitError] (OCR and model
            calls included; enforced by [`with_timeout`][docvlm._deadline.with_timeout]).

    Raises:
        FieldNotFoundError: a required field has no value in the document.
        UsageError: an unsupported field type, or a page without words for a text-only model.
        TimeLimitError: ``timeout`` passed.
    """
    leaves, tables = _leaves(schema)
    if use_images is None:
        use_images = model is not None and model.supports_images
    for word, spellings in (synonyms or {}).items():
        if isinstance(spellings, str) or not all(isinstance(x, str) for x in spellings):
            raise UsageError(f"synonyms[{word!r}] must be a tuple of label spellings, got {spellings!r}",
                             hint=f"write {{{word!r}: ({str(spellings)!r},)}}" if isinstance(spellings, str) else None)
    if max_choices is not None and max_choices < 1:
        raise UsageError(f"max_choices must be at least 1 (or None), got {max_choices}")
    source = document.source if isinstance(document, Document) else document.document.source
    ranker = ranker or default_ranker()
    page_list = pages_of(document, pages)
    if not verbatim:
        if model is None or not model.supports_images:
            raise UsageError("verbatim=False needs a vision model: a text-only model can only copy printed values",
                             source=source, hint="pass a vision-language model, or keep verbatim=True")
        return _free(model, page_list, schema, leaves, instructions, source)
    ruled: dict[int, list[Table] | None] = {}  # each page's vector tables, found once
    cands, all_lines = Candidates.of_pages(page_list)
    table_boxes = {page.index: [t.box for t in _ruled_tables(page, ruled) or [] if t.box is not None]
                   for page in page_list} if cands.spans else {}
    allowed = [i for i, span in enumerate(cands.spans) if not _in_tables(span, table_boxes)]

    ranked: dict[str, list[_Candidate]] = {}
    absent_first: dict[str, bool] = {}
    log_odds: dict[str, tuple[float, float]] = {}  # each field's (log normaliser, "not printed" score)
    for leaf in leaves:
        spec = FieldSpec(leaf.path, _kind(leaf), leaf.description or "", _aliases(leaf, synonyms or {}))
        typed = _typed_candidates(leaf, cands, allowed)
        if typed:
            scores = ranker.scores(cands.rows(spec, [c.index for c in typed]))
            for c, score in zip(typed, scores, strict=True):
                c.score = float(score)
            typed.sort(key=lambda c: -c.score)
            none_score = float(ranker.scores([cands.none_row(spec)])[0])
            top = max(none_score, typed[0].score)
            log_odds[leaf.path] = (top + math.log(sum(math.exp(c.score - top) for c in typed)
                                                  + math.exp(none_score - top)), none_score)
            # a printed option of a Literal / Enum ("EUR", or its "€") is the field's evidence: the ranker has not
            # learned when such a field is absent (its "not printed" score is fitted on text, number and date fields)
            absent_first[leaf.path] = none_score > typed[0].score and spec.kind != "other"
        if spec.kind in ("num", "date"):  # "EUR 145.78" and "145.78": the same value, cited by its own words
            tightest: dict[tuple[Any, int], _Candidate] = {}
            for c in typed:
                key = (c.value, cands.spans[c.index].segment.id)
                kept = tightest.get(key)
                if kept is None or len(c.text) < len(kept.text):
                    tightest[key] = _Candidate(c.text, c.value, c.page, c.box, c.index,
                                               max(c.score, kept.score) if kept is not None else c.score, c.words)
            typed = sorted(tightest.values(), key=lambda c: -c.score)
        best: dict[str, _Candidate] = {}
        for c in typed:  # one candidate per text: its best-ranked place
            best.setdefault(c.text, c)
        ranked[leaf.path] = list(best.values())

    found: dict[str, tuple[Any, _Candidate | None]] = {}
    if model is None:
        for leaf in leaves:
            options = ranked[leaf.path]
            if options and (leaf.required or not absent_first.get(leaf.path, False)):
                found[leaf.path] = (options[0].value, options[0])
    else:
        found = _choose(model, leaves, ranked, cands, all_lines, page_list, max_choices=max_choices,
                        max_chars=max_chars, instructions=instructions, use_images=bool(use_images),
                        absent=absent_first)
    if exclusive and (model is None or _scores(model, leaves, bool(use_images))):
        found = _exclusive(found, leaves, ranked, log_odds)

    missing = [leaf.path for leaf in leaves if leaf.required and leaf.path not in found]
    table_values, table_evidence = _table_fields(tables, document, pages, ruled)
    if missing:
        raise FieldNotFoundError(missing, source=source)
    data: dict[str, Any] = {}
    evidence: dict[str, FieldEvidence] = {}
    for path, (value, cand) in found.items():
        _set_path(data, path, value)
        if cand is not None:
            evidence[path] = FieldEvidence(path=path, value=_jsonable(value), page=cand.page, box=cand.box, quote=cand.text)
    for path, rows in table_values.items():
        _set_path(data, path, rows)
    evidence.update(table_evidence)
    try:
        value = schema.model_validate(data)
    except ValidationError as exc:
        raise ModelError(f"the extracted values do not validate as {schema.__name__}: {exc.errors()[0]['msg']}",
                         source=source) from exc
    return Extraction[schema](value=value, evidence=evidence,  # type: ignore[valid-type]
                              model=model.spec if model is not None else "layout")


def _free(model: Model, pages: Sequence[Page], schema: type[S], leaves: Sequence[_Leaf], instructions: str | None,
          source: str) -> Extraction[S]:
    """A vision model writes the schema from the page images; each leaf value is then found on the page."""
    from docvlm.tasks._page import view

    wanted = ", ".join(_question(leaf) for leaf in leaves)
    prompt: list[Any] = [view(page) for page in pages[:4]]
    prompt.append(f"{instructions + chr(10) if instructions else ''}Read these fields from the document: {wanted}. "
                  "Write each value as printed; use null for a field the document does not contain. Answer in JSON.")
    value = model.generate(prompt, schema)
    if not isinstance(value, schema):
        value = schema.model_validate(value)
    evidence: dict[str, FieldEvidence] = {}
    flat = value.model_dump()
    for leaf in leaves:
        got: Any = flat
        for part in leaf.path.split("."):
            got = got.get(part) if isinstance(got, dict) else None
        if got is None or isinstance(got, bool):
            continue
        found = _locate(model, pages, got)
        if found is not None:
            page, box, quote = found
            evidence[leaf.path] = FieldEvidence(path=leaf.path, value=_jsonable(got), page=page, box=box, quote=quote)
    return Extraction[schema](value=value, evidence=evidence, model=model.spec)  # type: ignore[valid-type]


def _locate(model: Model, pages: Sequence[Page], value: Any) -> tuple[int, BoundingBox, str] | None:
    """Where a value the model wrote is printed: the span that spells it most closely (at least 0.7 similar), the
    span with the same number or date, else the first box the model grounds it to."""
    from docvlm._strings import levenshtein
    from docvlm.tasks.vision import ground

    want = re.sub(r"\s+", " ", str(value.value if isinstance(value, enum.Enum) else value)).strip().lower()
    best: tuple[float, Span] | None = None
    for page in pages:
        lines = group_lines(segments_of(page_words(page).rows, page.index))
        for span in page_spans(lines):
            text = span.text.lower()
            if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                number = _number_value(span.text)
                score = 1.0 if number is not None and abs(number - float(value)) < 0.005 else 0.0
            elif isinstance(value, dt.date):
                dates = dates_in(span.text)
                score = 1.0 if len(dates) == 1 and dates[0][2] == value and dates[0][1] - dates[0][0] == len(span.text) \
                    else 0.0
            else:
                score = 1.0 - levenshtein(text, want) / max(len(text), len(want), 1)
            if score >= 0.7 and (best is None or score > best[0] or (score == best[0] and len(span.text) < len(best[1].text))):
                best = (score, span)
    if best is not None:
        return best[1].page, best[1].box, best[1].text
    for page in pages:
        boxes = ground(model, page, want)
        if boxes:
            return page.index, boxes[0], ""
    return None


def optional_choice(options: Sequence[str]) -> Any:
    """``Literal[options] | None``, the options in the order given (best first). typing caches unions, and it holds
    two Literals with the same members in another order equal, so ``Literal[...] | None`` can hand back an earlier
    field's order; the union is built past that cache."""
    choice: Any = Literal[tuple(options)]
    getitem = getattr(typing.Union, "_getitem", None)
    return getitem(typing.Union, (choice, type(None))) if getitem is not None else choice | None


def _choose(model: Model, leaves: Sequence[_Leaf], ranked: Mapping[str, list[_Candidate]], cands: Candidates,
            lines: Sequence[Line], pages: Sequence[Page], *, max_choices: int | None, max_chars: int,
            instructions: str | None, use_images: bool, absent: Mapping[str, bool]) -> dict[str, tuple[Any, _Candidate | None]]:
    """The model chooses each field's value among its best-ranked candidates: by scoring them (a text-only model
    that can score: one prefill of the document text, each candidate's log-probability added to its ranker score),
    or by generating JSON under a constraint that allows only them (or null)."""
    offered = {path: options[:max_choices] if max_choices is not None else options
               for path, options in ranked.items()}
    text = text_near(lines, [cands.spans[c.index].segment.id for options in offered.values() for c in options],
                     max_chars=max_chars)
    if _scores(model, leaves, use_images):
        return _score_choices(model, leaves, offered, text, instructions, absent)
    fields: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for i, leaf in enumerate(leaves):
        options = offered[leaf.path]
        if _base_type(leaf.annotation) is bool:
            tp: Any = bool | None
        elif options:
            tp = optional_choice([c.text for c in options])
        else:
            continue
        key = f"f{i}_{re.sub(r'[^a-z0-9_]', '_', leaf.path.lower())}"
        keys[key] = leaf.path
        fields[key] = (tp, Field(alias=leaf.path.replace(".", "_")))
    found: dict[str, tuple[Any, _Candidate | None]] = {}
    if not fields:
        return found
    answer_model = create_model("Fields", __config__=ConfigDict(populate_by_name=True), **fields)
    wanted = ", ".join(_question(leaf) for leaf in leaves if leaf.path in keys.values())
    prompt: list[Any] = []
    if use_images:
        from docvlm.tasks._page import view

        prompt += [view(page) for page in pages[:4]]
    prompt.append(
        f"Document:\n{text}\n\n"
        f"{instructions + chr(10) if instructions else ''}"
        f"Copy these fields exactly as printed in the document: {wanted}. "
        "Use null for a field the document does not contain. Answer in JSON."
    )
    answer = model.generate(prompt, answer_model)
    for key, path in keys.items():
        chosen = getattr(answer, key)
        if chosen is None:
            continue
        if isinstance(chosen, bool):
            found[path] = (chosen, None)
            continue
        best = next(c for c in offered[path] if c.text == chosen)
        found[path] = (best.value, best)
    return found


def _scores(model: Model, leaves: Sequence[_Leaf], use_images: bool) -> bool:
    """Whether `_choose` scores the candidates (a text-only model that can score) rather than generating a choice."""
    return model.supports_scoring and not use_images and not any(_base_type(leaf.annotation) is bool for leaf in leaves)


#: How many of a field's best-ranked values `_exclusive` weighs when two fields would read the same words.
EXCLUSIVE_CHOICES = 5


def _clash(a: frozenset[tuple[int, int]], b: frozenset[tuple[int, int]]) -> bool:
    """Two values that read some of the same printed words but are not the same words (one is a part of the other,
    or they overlap): two fields may have the same value (a total that is also the amount due), not parts of it."""
    return bool(a & b) and a != b


def _exclusive(found: dict[str, tuple[Any, _Candidate | None]], leaves: Sequence[_Leaf],
               ranked: Mapping[str, list[_Candidate]],
               log_odds: Mapping[str, tuple[float, float]]) -> dict[str, tuple[Any, _Candidate | None]]:
    """The values again where two fields read parts of the same printed words (an address that starts with the
    company's line, `_clash`): among the clashing fields' ``EXCLUSIVE_CHOICES`` best values (and "not printed" for an
    optional field), the choice without clashes of the highest joint probability under the ranker (the sum of each
    field's log-softmax over its candidates). Fields that do not clash keep their values; where every choice clashes,
    nothing changes."""
    picked = {path: c for path, (_, c) in found.items() if c is not None and c.words}
    paths = list(picked)
    group = sorted({p for i, a in enumerate(paths) for b in paths[i + 1:] if _clash(picked[a].words, picked[b].words)
                    for p in (a, b)})
    if not group:
        return found
    fixed = [picked[p].words for p in paths if p not in group]
    required = {leaf.path for leaf in leaves if leaf.required}
    options: list[list[tuple[float, _Candidate | None]]] = []
    for path in group:
        logz, none_score = log_odds[path]
        opts: list[tuple[float, _Candidate | None]] = [
            (c.score - logz, c) for c in ranked[path][:EXCLUSIVE_CHOICES] if not any(_clash(c.words, f) for f in fixed)]
        if path not in required:
            opts.append((none_score - logz, None))
        options.append(sorted(opts, key=lambda t: -t[0]))
    bound = [sum(max((o[0] for o in opts), default=-math.inf) for opts in options[n:])
             for n in range(len(options) + 1)]
    best: tuple[float, list[_Candidate | None]] = (-math.inf, [])

    def search(n: int, total: float, chosen: list[_Candidate | None]) -> None:
        nonlocal best
        if total + bound[n] <= best[0]:
            return
        if n == len(options):
            best = (total, list(chosen))
            return
        for logp, c in options[n]:
            if c is None or not any(d is not None and _clash(c.words, d.words) for d in chosen):
                search(n + 1, total + logp, [*chosen, c])

    search(0, 0.0, [])
    if not best[1]:
        return found
    out = {path: value for path, value in found.items() if path not in group}
    for path, c in zip(group, best[1], strict=True):
        if c is not None:
            out[path] = (c.value, c)
    return out


def _score_choices(model: Model, leaves: Sequence[_Leaf], offered: Mapping[str, list[_Candidate]], text: str,
                   instructions: str | None, absent: Mapping[str, bool]) -> dict[str, tuple[Any, _Candidate | None]]:
    found: dict[str, tuple[Any, _Candidate | None]] = {}
    weight = model.choice_weight if model.choice_weight is not None else LM_WEIGHT
    for leaf in leaves:
        options = offered[leaf.path]
        if not options or (absent.get(leaf.path, False) and not leaf.required):
            continue
        best = options[0]
        if len(options) > 1 and weight > 0:
            lm = model.score(field_prompt(text, _question(leaf), instructions), [c.text for c in options])
            top = max(lm)
            best = max(zip(options, lm, strict=True), key=lambda t: t[0].score + weight * (t[1] - top))[0]
        found[leaf.path] = (best.value, best)
    return found


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, Decimal, enum.Enum)):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        data = data.setdefault(p, {})
    data[parts[-1]] = value


def _table_fields(tables: list[tuple[str, FieldInfo]], document: Document | Page, pages: Sequence[int] | None,
                  ruled: dict[int, list[Table] | None]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, FieldEvidence]]:
    """Rows of ``list[SubModel]`` fields from the document's tables, columns matched to fields by name."""
    if not tables:
        return {}, {}
    from docvlm.tasks.tables import find_tables

    found_tables: list[Table] = []
    for page in pages_of(document, pages):
        vector = _ruled_tables(page, ruled)
        if vector is not None:
            found_tables += vector
        else:  # an image or a scan: no vector lines, find the table from its header words
            for _, info in tables:
                item_type = typing.get_args(_base_type(info.annotation))[0]
                region = _header_anchored_region(page, item_type)
                if region is not None:
                    found_tables += find_tables(page, strategy="text", region=region)
    values: dict[str, list[dict[str, Any]]] = {}
    evidence: dict[str, FieldEvidence] = {}
    for path, info in tables:
        item_type = typing.get_args(_base_type(info.annotation))[0]
        best = None
        best_score = 0.0
        for table in found_tables:
            header = [c for c in table.cells if c.row == 0]
            mapping = _match_columns(item_type, header)
            score = len(mapping) / max(1, len(item_type.model_fields))
            if score > best_score:
                best, best_score = (table, mapping), score
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        if best is not None and best_score >= 0.5:
            table, mapping = best
            for r in range(table.header_rows or 1, table.shape[0]):
                row: dict[str, Any] = {}
                ok = True
                for name, col in mapping.items():
                    cell = table.cell(r, col)
                    if cell is None:
                        continue
                    annotation = item_type.model_fields[name].annotation
                    value = _cell_value(cell.text, annotation)
                    if value is None and item_type.model_fields[name].is_required():
                        ok = False
                        if cell.text.strip():  # a printed cell that does not read as its type
                            skipped.append(f"row {r} ({name} {cell.text.strip()!r})")
                        break
                    row[name] = value
                    if cell.box is not None and value is not None:
                        p = f"{path}[{len(rows)}].{name}"
                        evidence[p] = FieldEvidence(path=p, value=_jsonable(value), page=table.page, box=cell.box,
                                                    quote=cell.text)
                if ok and row:
                    rows.append(row)
            if skipped:
                warnings.warn(RowsSkippedWarning(
                    f"{path}: {len(skipped)} table row{'s' if len(skipped) > 1 else ''} on page {table.page} left out, "
                    f"a required field does not read as its type: {', '.join(skipped[:5])}"), stacklevel=3)
        values[path] = rows
    return values, evidence


def _header_anchored_region(page: Page, item_type: type[BaseModel]) -> BoundingBox | None:
    """Where a borderless table of ``item_type`` rows is on a page without vector lines (e.g. a scan): from the
    visual line that names most of the item's fields (the header) down through the lines that look like rows
    (several segments, at least one number)."""
    words = page_words(page).rows
    if not words:
        return None
    lines = group_lines(segments_of(words, page.index))
    best, best_hits = None, 0
    for i, line in enumerate(lines):
        hits = len(_match_columns(item_type, [_HeaderCell(j, s.text) for j, s in enumerate(line.segments)]))
        if hits > best_hits:
            best, best_hits = i, hits
    if best is None or best_hits < max(2, len(item_type.model_fields) // 2):
        return None
    rows = [lines[best]]
    for line in lines[best + 1:]:
        if len(line.segments) < 2 or not numbers_in(line.text) or _is_label(line.segments[0]):
            break
        rows.append(line)
    if len(rows) < 2:
        return None
    box = rows[0].box
    for line in rows[1:]:
        box = box.union(line.box)
    return box.pad(2).clip(page.bbox)


@dataclass
class _HeaderCell:
    col: int
    text: str


def _match_columns(item_type: type[BaseModel], header: Sequence[Any]) -> dict[str, int]:
    synonyms = {"quantity": {"qty", "quantity", "count"}, "unit_price": {"unit", "price", "rate"},
                "amount": {"amount", "total", "sum"}, "description": {"description", "item", "product", "name"}}
    mapping: dict[str, int] = {}
    for name, info in item_type.model_fields.items():
        words = set(name.lower().split("_")) | synonyms.get(name.lower(), set())
        if info.description:
            words |= set(re.findall(r"[a-z]+", info.description.lower()))
        for cell in header:
            cell_words = set(re.findall(r"[a-z]+", cell.text.lower()))
            if words & cell_words and cell.col not in mapping.values():
                mapping[name] = cell.col
                break
    return mapping


def _cell_value(text: str, annotation: Any) -> Any:
    base = _base_type(annotation)
    adapter: TypeAdapter[Any] = TypeAdapter(_unwrap_optional(annotation)[0])
    raw: Any = text
    if base in (int, float, Decimal):
        nums = numbers_in(text)
        if not nums:
            return None
        raw = nums[0][2]
        if base is int and float(raw).is_integer():
            raw = int(raw)
    try:
        return adapter.validate_python(raw)
    except ValidationError:
        return None
