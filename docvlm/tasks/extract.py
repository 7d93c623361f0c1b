"""Schema extraction with per-field evidence: ``dv.extract(model, document, Schema)``.

How it works (text-grounded, LMDX-style):

1. The document's words (text layer, or OCR) become segments and visual lines ([`docvlm.tasks.text`][docvlm.tasks.text]).
2. For every leaf field of the schema, docvlm collects the *candidate values* the page actually contains and
   that validate as the field's type: segment texts and ``label: value`` tails for strings, printed numbers
   for numeric fields, printed dates for dates, printed options for ``Literal`` / ``Enum`` fields.
3. Candidates are ranked by layout (`docvlm.tasks._keys`): each value is linked to the label printed
   with it, and values whose label names the field come first; a value whose label names another field
   better is left to that field; unlabelled fields get unlabelled values of the shape their name implies.
4. The model reads the page text (and the page image, for a vision model) and fills a JSON object whose every
   field is constrained to its first ``max_choices`` candidates (or ``null``): it can only copy values that
   exist.
5. Each chosen value maps back to the words it was read from, so its evidence box is exact to the glyph.

Lists of sub-models (line items) are read from the document's tables: columns are matched to the item model's
fields by name, and every cell becomes evidence.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from docvlm._deadline import with_timeout
from docvlm.documents.base import Document, Page
from docvlm.errors import ModelError, RowsSkippedWarning, UsageError
from docvlm.models.base import Model
from docvlm.tasks._keys import LABEL_SYNONYMS, Key, Phrase, field_vocabulary, key_score, link_keys, tokens
from docvlm.tasks.text import (
    Line,
    Segment,
    document_segments,
    group_lines,
    numbers_in,
    page_words,
    pages_of,
    segments_of,
    serialize_lines,
)
from docvlm.types.answer import FieldEvidence
from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table

__all__ = ["Extraction", "FieldNotFoundError", "extract"]

S = TypeVar("S", bound=BaseModel)

#: Printed spellings of currency codes, so a Literal["USD", ...] field finds "$" on the page.
_CURRENCY_SYMBOLS = {"USD": ("$", "US$"), "EUR": ("€",), "GBP": ("£",), "JPY": ("¥",), "CHF": ("Fr.",), "INR": ("₹",)}

_MAX_CHOICE_CHARS = 120  # longer candidate strings are cut from the choice list (they are rarely field values)


class FieldNotFoundError(ModelError):
    """Required fields of the schema have no value in the document."""

    def __init__(self, fields: Sequence[str], source: str | None = None) -> None:
        super().__init__(
            f"required field{'s' if len(fields) > 1 else ''} not found in the document: {', '.join(fields)}",
            source=source, hint="make the field Optional if it may be absent, or check the document",
        )
        self.fields = list(fields)


class Extraction(BaseModel, Generic[S]):
    """An extracted, validated object and the evidence of each leaf field.

    Attributes:
        value: the filled schema.
        evidence: for each leaf field path (``"total"``, ``"items[0].amount"``), where its value was read.
            A field whose value the document does not contain has no entry: docvlm never invents evidence.
        model: the spec of the model that chose the values.
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
    text: str  # as printed, what the model chooses
    value: Any  # validated for the field
    page: int
    box: BoundingBox
    line_text: str
    seg: int = -1  # the segment it was read from
    key: Key | None = None  # the label it was printed with
    score: float = 0.0  # how well that label names the field


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


_DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b"), "dmy"),  # 07/23/2026 falls back to month first
]
_MONTHS = {m.lower(): i for i, m in enumerate(
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
     "November", "December"], 1)}
_MONTHS.update({name[:3]: i for name, i in list(_MONTHS.items())} | {"sept": 9})
_TEXT_DATE = re.compile(r"\b([A-Z][a-z]+)\.? (\d{1,2}), (\d{4})\b|\b(\d{1,2})[ -]([A-Z][a-z]+)\.?[ -](\d{4})\b")


def _dates_in(text: str) -> list[tuple[int, int, dt.date]]:
    """Dates printed in ``text``: ISO, day/month/year (month/day/year where only that is valid), and month
    names (``March 8, 2026``, ``8 March 2026``, ``15-May-2025``, ``Sep 3, 2024``)."""
    out = []
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            a, b, c = (int(g) for g in m.groups())
            tries = [(a, b, c)] if order == "ymd" else [(c, b, a), (c, a, b)]
            for y, mo, d in tries:
                try:
                    out.append((m.start(), m.end(), dt.date(y, mo, d)))
                    break
                except ValueError:
                    continue
    for m in _TEXT_DATE.finditer(text):
        g = m.groups()
        month, day, year = (g[0], g[1], g[2]) if g[0] else (g[4], g[3], g[5])
        if month and month.lower() in _MONTHS:
            try:
                out.append((m.start(), m.end(), dt.date(int(year), _MONTHS[month.lower()], int(day))))
            except ValueError:
                continue
    return out


_LABEL = re.compile(r"^[^:]{1,40}:$|^(?:[A-Z]{2,}\s?){1,3}$")


def _is_label(seg: Segment) -> bool:
    """``Bill to:``, ``Invoice No.:``, ``BILL TO``: printed labels, never values."""
    return bool(_LABEL.match(seg.text.strip()))


def _ruled_tables(page: Page, cache: dict[int, list[Table] | None]) -> list[Table] | None:
    """The page's tables from its vector lines, found once per extraction (``None``: an image page)."""
    from docvlm.tasks.tables import find_tables

    if page.index not in cache:
        try:
            cache[page.index] = find_tables(page)
        except UsageError:  # image pages: no vector lines
            cache[page.index] = None
    return cache[page.index]


def _value_segments(segments: Sequence[Segment], pages: Sequence[Page],
                    tables: dict[int, list[Table] | None]) -> list[Segment]:
    """Segments that can hold a scalar field's value: not labels, and not inside a table (line items are read
    from tables separately, and a table's numbers would otherwise compete with the totals)."""
    table_boxes = {page.index: [t.box for t in _ruled_tables(page, tables) or [] if t.box is not None]
                   for page in pages}

    def in_table(seg: Segment) -> bool:
        cx, cy = seg.box.center
        return any(b.x0 <= cx <= b.x1 and b.y0 <= cy <= b.y1 for b in table_boxes.get(seg.page, []))

    return [s for s in segments if not _is_label(s) and not in_table(s)]


def _candidates(leaf: _Leaf, segments: Sequence[Segment], line_of: dict[int, Line],
                keys: dict[int, Key]) -> list[_Candidate]:
    base = _base_type(leaf.annotation)
    adapter: TypeAdapter[Any] = TypeAdapter(_unwrap_optional(leaf.annotation)[0])
    out: list[_Candidate] = []
    seen: set[tuple[str, int]] = set()

    def add(seg: Segment, start: int, end: int, raw: Any) -> None:
        text = seg.text[start:end].strip()
        if not text or len(text) > _MAX_CHOICE_CHARS or (text, seg.id) in seen:
            return
        try:
            value = adapter.validate_python(raw)
        except ValidationError:
            return
        seen.add((text, seg.id))
        key = keys.get(seg.id)
        if start > 0 and seg.text[:start].rstrip().endswith(":"):  # the tail of "Label: value" in one segment
            key = Key(seg.text[:start].strip(), 0)
        out.append(_Candidate(text, value, seg.page, seg.span_box(start, end), line_of[seg.id].text, seg.id, key))

    def add_option(seg: Segment, start: int, end: int, option: Any) -> None:
        """An option printed in another spelling (a currency symbol): the model chooses the option itself."""
        text = str(option)
        if (text, -1) in seen:
            return
        seen.add((text, -1))
        out.append(_Candidate(text, adapter.validate_python(option), seg.page, seg.span_box(start, end),
                              line_of[seg.id].text, seg.id, keys.get(seg.id)))

    for seg in segments:
        t = seg.text
        if base in (int, float, Decimal):
            for start, end, number in numbers_in(t):
                add(seg, start, end, int(number) if base is int and number.is_integer() else number)
        elif base in (dt.date, dt.datetime):
            for start, end, date in _dates_in(t):
                add(seg, start, end, date)
        elif typing.get_origin(base) is Literal or (isinstance(base, type) and issubclass(base, enum.Enum)):
            options = typing.get_args(base) if typing.get_origin(base) is Literal else [m.value for m in base]
            for option in options:
                spellings = [str(option), *_CURRENCY_SYMBOLS.get(str(option), ())]
                for spelling in spellings:
                    pattern = rf"(?<!\w){re.escape(spelling)}(?!\w)" if spelling[-1].isalnum() else re.escape(spelling)
                    for m in re.finditer(pattern, t, re.IGNORECASE):
                        add_option(seg, m.start(), m.end(), option)
        elif base is bool:
            continue  # yes/no questions have no span to copy; see _choice_type
        else:  # strings and anything pydantic can build from one
            add(seg, 0, len(t), t)
            if ":" in t[:-1]:
                head, _, tail = t.partition(":")
                if tail.strip():
                    add(seg, len(head) + 1 + (len(tail) - len(tail.lstrip())), len(t), tail.strip())
    return out


def _shape_ok(leaf: _Leaf, text: str) -> bool:
    """Whether a printed string has the shape its field's name implies (a name has few digits, an email an @).
    Only for string fields; a field whose name implies nothing accepts every string."""
    words = set(re.findall(r"[a-z]+", leaf.name.lower().replace("_", " ")))
    digits = sum(ch.isdigit() for ch in text)
    sentence = len(text.split()) > 10 or (len(text.split()) >= 5 and text.rstrip().endswith("."))
    if "email" in words or "mail" in words:
        return "@" in text
    if words & {"phone", "tel", "telephone", "mobile", "fax"}:
        return digits >= 6
    if words & {"date", "birth", "dob"}:
        return bool(_dates_in(text))
    if words & {"number", "no", "id", "code"}:
        return digits > 0
    if "address" in words:
        return digits > 0 and any(ch.isalpha() for ch in text) and not sentence
    if "name" in words:
        return digits <= 3 and len(text.split()) <= 8 and "@" not in text and not sentence
    return True


def _shortlist(leaves: Sequence[_Leaf], cands: dict[str, list[_Candidate]],
               vocab: dict[str, tuple[set[str], list[Phrase]]], max_choices: int | None) -> dict[str, list[_Candidate]]:
    """Rank each field's candidates by layout: values printed with a label that names the field first (and
    only those, when there are some); values whose label names another field better are left to that field;
    unlabelled values in reading order, of the shape the field's name implies. The model chooses among the
    first ``max_choices``. ``vocab``: each field's name words and label phrases (`field_vocabulary`)."""
    label_words = {w for _, phrases in vocab.values() for p, _ in phrases for w in p}

    def restates_a_label(text: str) -> bool:  # "Invoice", "Invoice #": a title or label, not a value
        words = tokens(text)
        return bool(words) and set(words) <= label_words
    best_for_segment: dict[int, float] = {}
    for leaf in leaves:
        name_words, phrases = vocab[leaf.path]
        for c in cands[leaf.path]:
            c.score = key_score(name_words, phrases, c.key.text) if c.key is not None else 0.0
            best_for_segment[c.seg] = max(best_for_segment.get(c.seg, 0.0), c.score)
    sharing: dict[int, set[str]] = {}  # the fields whose label scores best on a segment ("Date:": two dates)
    for leaf in leaves:
        for c in cands[leaf.path]:
            if c.score > 0 and c.score >= best_for_segment[c.seg] - 1e-9:
                sharing.setdefault(c.seg, set()).add(leaf.path)
    out: dict[str, list[_Candidate]] = {}
    for leaf in leaves:
        pool = cands[leaf.path]
        if max_choices is None:  # every printed value, best labelled first
            out[leaf.path] = sorted(pool, key=lambda c: (-c.score, c.seg))
            continue
        is_str = _base_type(leaf.annotation) is str
        if is_str:
            pool = [c for c in pool if not restates_a_label(c.text)]
            pool = [c for c in pool if _shape_ok(leaf, c.text)] or pool
        keyed = [c for c in pool if c.score > 0 and c.score >= best_for_segment.get(c.seg, 0.0) - 1e-9]
        if keyed:  # the best-named label's values, nearest to it first (a name right under "Bill to:")
            top = max(c.score for c in keyed)
            best = [c for c in keyed if c.score >= top - 1e-9 and c.key is not None]
            near = min(c.key.distance for c in best if c.key is not None)
            ranked = sorted((c for c in best if c.key is not None and c.key.distance == near),
                            key=lambda c: (len(sharing.get(c.seg, ())), c.seg))
        else:
            ranked = [c for c in pool if best_for_segment.get(c.seg, 0.0) == 0.0] or pool
        texts = list(dict.fromkeys(c.text for c in ranked))[:max_choices]
        out[leaf.path] = [c for c in ranked if c.text in texts]
    return out


def _question(leaf: _Leaf) -> str:
    name = leaf.path.replace("_", " ").replace(".", " ")
    return f"{name} ({leaf.description})" if leaf.description else name


def _choice_type(leaf: _Leaf, cands: list[_Candidate]) -> Any:
    base = _base_type(leaf.annotation)
    if base is bool:
        return bool | None
    texts = list(dict.fromkeys(c.text for c in cands))
    if not texts:
        return None
    return Literal[tuple(texts)] | None


def _chunks(document: Document | Page, pages: Sequence[int] | None, max_chars: int) -> list[list[Page]]:
    chunks: list[list[Page]] = []
    size = 0
    for page in pages_of(document, pages):
        n = len(page_words(page).rows) * 8
        if chunks and size + n <= max_chars:
            chunks[-1].append(page)
            size += n
        else:
            chunks.append([page])
            size = n
    return chunks


@with_timeout("extract")
def extract(
    model: Model,
    document: Document | Page,
    schema: type[S],
    *,
    pages: Sequence[int] | None = None,
    instructions: str | None = None,
    max_chars: int = 6000,
    use_images: bool | None = None,
    max_choices: int | None = 3,
    synonyms: dict[str, tuple[str, ...]] | None = None,
    timeout: float | None = None,
) -> Extraction[S]:
    """Fill ``schema`` from a document, with evidence (page, box, quote) for every leaf field found.

    Args:
        model: any docvlm model; a text-only model reads the text layer (or OCR), a vision model also sees
            the page images (``use_images``, default: when it supports images).
        document: a document or one page.
        schema: a pydantic model: scalar fields (str, numbers, dates, Literal, Enum, bool), nested models,
            and ``list[SubModel]`` for repeated rows (read from tables).
        pages: 0-based pages to read (default: all).
        instructions: extra guidance put in the prompt.
        max_chars: the page text given to the model in one prompt; longer documents are read in chunks of
            pages, and each field takes the first value found.
        max_choices: how many of a field's candidate values, best ranked by layout first, the model chooses
            from (``None``: every value printed in the document that validates as the field's type). Values printed next to a label that names the field rank first (see
            `docvlm.tasks._keys`); a small model chooses far better among a few.
        synonyms: more label spellings for words of field names, e.g. ``{"iban": ("account", "bank account")}``,
            merged into `docvlm.tasks._keys.LABEL_SYNONYMS`.
        timeout: seconds before the call stops with [`TimeLimitError`][docvlm.errors.TimeLimitError] (OCR and model
            calls included; enforced by [`with_timeout`][docvlm._deadline.with_timeout]).

    Raises:
        FieldNotFoundError: a required field has no value in the document.
        UsageError: an unsupported field type, or a page without words for a text-only model.
        TimeLimitError: ``timeout`` passed.
    """
    leaves, tables = _leaves(schema)
    if use_images is None:
        use_images = model.supports_images
    found: dict[str, tuple[Any, _Candidate | None]] = {}
    source = document.source if isinstance(document, Document) else document.document.source
    for word, spellings in (synonyms or {}).items():
        if isinstance(spellings, str) or not all(isinstance(x, str) for x in spellings):
            raise UsageError(f"synonyms[{word!r}] must be a tuple of label spellings, got {spellings!r}",
                             hint=f"write {{{word!r}: ({str(spellings)!r},)}}" if isinstance(spellings, str) else None)
    all_synonyms = {**LABEL_SYNONYMS, **(synonyms or {})}
    vocab = {leaf.path: field_vocabulary(leaf.name, all_synonyms) for leaf in leaves}
    ruled: dict[int, list[Table] | None] = {}  # each page's vector tables, found once
    for chunk in _chunks(document, pages, max_chars):
        remaining = [leaf for leaf in leaves if leaf.path not in found]
        if not remaining:
            break
        segments = document_segments(chunk)
        lines = group_lines(segments)
        line_of = {s.id: line for line in lines for s in line.segments}
        values = _value_segments(segments, chunk, ruled)
        vocabulary = {w for leaf in remaining for phrase, _ in vocab[leaf.path][1] for w in phrase}
        keys_of = link_keys(lines, {page.index: page.width for page in chunk}, vocabulary)
        cands = _shortlist(remaining, {leaf.path: _candidates(leaf, values, line_of, keys_of) for leaf in remaining},
                           vocab, max_choices)
        fields: dict[str, Any] = {}
        keys: dict[str, str] = {}
        for i, leaf in enumerate(remaining):
            tp = _choice_type(leaf, cands[leaf.path])
            if tp is None:
                continue
            key = f"f{i}_{re.sub(r'[^a-z0-9_]', '_', leaf.path.lower())}"
            keys[key] = leaf.path
            fields[key] = (tp, Field(alias=leaf.path.replace(".", "_")))
        if not fields:
            continue
        answer_model = create_model("Fields", __config__=ConfigDict(populate_by_name=True), **fields)
        text = serialize_lines(lines, max_chars=max_chars)
        wanted = ", ".join(_question(leaf) for leaf in remaining if any(keys[k] == leaf.path for k in keys))
        prompt: list[Any] = []
        if use_images:
            from docvlm.tasks._page import view

            prompt += [view(page) for page in chunk]
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
            matches = [c for c in cands[path] if c.text == chosen]
            best = max(matches, key=lambda c: c.score)
            found[path] = (best.value, best)

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
    return Extraction[schema](value=value, evidence=evidence, model=model.spec)  # type: ignore[valid-type]


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
