"""Evaluation datasets: loaders for common public formats, and the synthetic generator, as typed samples.

===============  ==================================================================  =============================
format           what ``path`` is                                                    samples
===============  ==================================================================  =============================
``funsd``        a FUNSD annotation JSON, or a folder of them (``annotations/`` next  [`FieldsSample`][docvlm.eval.datasets.FieldsSample]: linked
                 to ``images/`` as FUNSD ships, or flat); the page is the file with   question -> answer pairs
                 the same stem (PNG, JPEG, TIFF or PDF)
``sroie``        a SROIE folder: ``key/`` (or ``entities/``) JSON key files, ``box/``  [`FieldsSample`][docvlm.eval.datasets.FieldsSample]
                 text-line files (``x1,y1,...,x4,y4,text``), ``img/`` images; or the  (company, date, address,
                 same files side by side                                              total)
``invoice2data`` a folder of invoices (PDF or image), each beside a JSON file of the same    [`FieldsSample`][docvlm.eval.datasets.FieldsSample] (issuer,
                 stem holding invoice2data's expected output (an object, or a list    invoice number, date, amount,
                 of one); searched through subfolders                                 currency; typed schema)
``docvqa``       a DocVQA ``*_qas.json`` / ``val_v1.0.json`` (``{"data": [...]}``)    [`QASample`][docvlm.eval.datasets.QASample]
``coco``         a COCO detection / segmentation JSON (images next to it or in       [`DetectionSample`][docvlm.eval.datasets.DetectionSample]
                 ``images/``)
``icdar2013``    an ICDAR-2013 table-competition ``*-str.xml``, or a folder of them;  `TableSample`, one per
                 the PDF shares the XML's stem (``us-001-str.xml``: ``us-001.pdf``)   table region
``camelot``      camelot's test tables: a folder with ``data_tables.json`` (the       `TableSample`, one per
                 expected tables by variable name), ``camelot_expected_tables.tsv``  PDF and expected table (no
                 (test -> PDFs, variables, pages) and the PDFs in ``files/``          boxes, no header marks)
``pubtabnet``    a PubTabNet JSONL (images next to it or in a ``<split>/`` folder)    `TableSample`
``mcq``          a JSONL of ``{"id", "document", "question", "choices", "answer"}``   `ChoiceSample`
                 (``answer``: the right choice's index or letter)
``synthetic``    ``invoice``, ``form`` or ``table``, optionally ``:n`` and ``:seed``  generated PDFs with exact
                 (``"invoice:20:0"``)                                                 truth (`docvlm.synth`)
===============  ==================================================================  =============================

All geometry ends up in docvlm's page space of the sample's document: image pixels for images (FUNSD,
SROIE, COCO and PubTabNet boxes are pixels already), PDF points from the CropBox's top-left corner for PDFs
(ICDAR-2013 boxes are PDF points with the origin at the bottom-left, and are converted).

Bad input: a file that cannot be read or has the wrong overall shape raises [`DatasetError`][docvlm.eval.datasets.DatasetError] (with the
file). A bad *record* inside a good file (an entity without a box, a question without answers, an
annotation pointing at a missing image) is skipped and reported in `Dataset.skipped` with the file, the
record's index and the reason, because public datasets carry a few broken records and an evaluation should
still run on the rest; pass ``strict=True`` to raise [`DatasetError`][docvlm.eval.datasets.DatasetError] at the first one instead.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import typing
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from docvlm.documents import Document, open_document
from docvlm.documents.pdf import mupdf_errors
from docvlm.errors import DatasetError, DocVLMError, UsageError
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import BoundingBox
from docvlm.types.mask import Mask
from docvlm.types.table import Table, TableCell

__all__ = [
    "FORMATS",
    "INVOICE2DATA_CURRENCIES",
    "ChoiceSample",
    "Dataset",
    "DatasetError",
    "DetectionSample",
    "FieldsSample",
    "Invoice2DataFields",
    "QASample",
    "Sample",
    "SkippedRecord",
    "TableSample",
    "TrueField",
    "load_dataset",
    "synthetic_dataset",
    "table_from_html",
]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".pdf", ".PNG", ".JPG", ".JPEG")


class SkippedRecord(BaseModel):
    """A record a loader left out, and why."""

    model_config = ConfigDict(frozen=True)

    file: str
    record: int | str
    reason: str


class TrueField(BaseModel):
    """The true value of one field of a document.

    Attributes:
        name: the field's name in the extraction schema (a Python identifier).
        label: the key as the dataset names it (FUNSD: the question's text as printed).
        value: the true value.
        box: where the value is printed (page space), if known.
        page: 0-based page.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    label: str
    value: str | float
    box: BoundingBox | None = None
    page: int = 0


class _SampleBase(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    document: str = Field(description="the document's path (or a name for generated documents)")
    page: int = Field(default=0, ge=0, description="0-based page the sample is about")
    content: bytes | None = Field(default=None, repr=False, exclude=True,
                                  description="the document's bytes, for generated documents")

    def open(self) -> Document:
        """The sample's document."""
        return open_document(self.content if self.content is not None else self.document)


class FieldsSample(_SampleBase):
    """A document and the true values of its fields (key information extraction).

    Attributes:
        fields: the true fields.
        schema_name: a fixed extraction schema (``"invoice"`` / ``"form"``: `docvlm.synth`'s;
            ``"invoice2data"``: the fields of `Invoice2DataFields` the truth gives), else one is built from the
            fields (every field an optional string).
        whole_document: the fields may be on any page (an invoice's total on its last): every page is read.
    """

    kind: Literal["fields"] = "fields"
    fields: list[TrueField] = Field(default_factory=list)
    schema_name: str | None = None
    whole_document: bool = Field(default=False, description="the fields may be printed on any page: every page "
                                                              "is read, not only `page`")

    def schema_type(self) -> type[BaseModel]:
        """The pydantic model to extract: the named schema (for ``"invoice2data"``, only the fields the truth gives:
        a field it leaves out is not scored), or one optional ``str`` field per true field."""
        if self.schema_name == "invoice2data":
            given = {f.name for f in self.fields}
            typed: dict[str, Any] = {name: (info.annotation, None) for name, info in
                                     Invoice2DataFields.model_fields.items() if name in given}
            subset: type[BaseModel] = create_model("Invoice2DataFields", __doc__=Invoice2DataFields.__doc__, **typed)
            return subset
        if self.schema_name is not None:
            from docvlm.synth import FormFields, InvoiceFields

            schemas: dict[str, type[BaseModel]] = {"invoice": InvoiceFields, "form": FormFields}
            return schemas[self.schema_name]
        spec: dict[str, Any] = {f.name: (str | None, Field(default=None, description=f.label)) for f in self.fields}
        model: type[BaseModel] = create_model("Fields", **spec)
        return model

    def truth(self) -> dict[str, Any]:
        return {f.name: f.value for f in self.fields}


class TableSample(_SampleBase):
    """A table on a page (structure recognition): the true table and, when known, its region."""

    kind: Literal["table"] = "table"
    table: Table
    region: BoundingBox | None = None


class DetectionSample(_SampleBase):
    """An image and its labelled objects (boxes, and masks for segmentation data)."""

    kind: Literal["detection"] = "detection"
    objects: Detections = Field(default_factory=Detections)


class QASample(_SampleBase):
    """A question about a page and its accepted answers (DocVQA)."""

    kind: Literal["qa"] = "qa"
    question: str
    answers: list[str] = Field(min_length=1)


class ChoiceSample(_SampleBase):
    """A multiple-choice question about a page: the choices and the index of the right one."""

    kind: Literal["choice"] = "choice"
    question: str
    choices: list[str] = Field(min_length=2)
    answer: int = Field(ge=0)


Sample = Annotated[FieldsSample | TableSample | DetectionSample | QASample | ChoiceSample, Field(discriminator="kind")]


class Dataset(BaseModel):
    """Loaded samples and the records that were skipped.

    Attributes:
        format: the format it was read as.
        path: where it was read from.
        samples: the samples, in file order.
        skipped: the records left out, each with its file, index and reason.
    """

    model_config = ConfigDict(frozen=True)

    format: str
    path: str
    samples: list[Sample] = Field(default_factory=list)
    skipped: list[SkippedRecord] = Field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def head(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all of them for ``None``)."""
        return self if n is None else self.model_copy(update={"samples": self.samples[: max(0, n)]})


class _Collector:
    """Skips bad records, or raises at the first one when strict."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.skipped: list[SkippedRecord] = []

    def skip(self, file: Path | str, record: int | str, reason: str) -> None:
        if self.strict:
            raise DatasetError(reason, file=file, record=record, hint="fix the record, or load with strict=False to skip it")
        self.skipped.append(SkippedRecord(file=str(file), record=record, reason=reason))


# helpers ---------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DatasetError("no such file", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the file: {exc}", file=path) from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", file=path) from exc


def _xyxy(value: Any, what: str = "box") -> BoundingBox:
    """A page-space box from ``[x0, y0, x1, y1]`` (corners in any order); ValueError when malformed."""
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{what} must be 4 numbers [x0, y0, x1, y1], got {value!r}")
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
        return BoundingBox.from_corners(x0, y0, x1, y1)
    except ValidationError as exc:
        raise ValueError(f"{what} {value!r}: {exc.errors()[0]['msg']}") from None


def _find_file(name: str, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _find_by_stem(stem: str, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        for suffix in _IMAGE_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "field"
    if base[0].isdigit() or base in {"model_config", "model_fields"} or base.startswith("model_"):
        base = f"f_{base}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _files(path: Path, pattern: str, *, subfolders: Sequence[str] = ()) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError("no such file or folder", file=path)
    for sub in subfolders:
        if (path / sub).is_dir():
            return sorted((path / sub).glob(pattern))
    return sorted(path.glob(pattern))


# FUNSD -----------------------------------------------------------------------------------------------------
_FUNSD_LABELS = {"question", "answer", "header", "other"}


def load_funsd(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """FUNSD form annotations: each linked question -> answer pair is a field (see the module docs)."""
    out = _Collector(strict)
    samples: list[Sample] = []
    files = _files(path, "*.json", subfolders=("annotations",))
    if not files:
        raise DatasetError("no FUNSD annotation files (*.json)", file=path)
    for file in files:
        data = _read_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("form"), list):
            raise DatasetError('not a FUNSD annotation: expected an object with a "form" list', file=file)
        document = _find_by_stem(file.stem, [file.parent.parent / "images", file.parent, file.parent / "images"])
        if document is None:
            out.skip(file, "document", f"no page image named {file.stem}.png (or .jpg, .tif, .pdf) next to the "
                                       "annotations or in images/")
            continue
        entities: dict[int, tuple[str, str, BoundingBox]] = {}
        links: set[tuple[int, int]] = set()
        for i, ent in enumerate(data["form"]):
            try:
                if not isinstance(ent, dict):
                    raise ValueError(f"an entity must be an object, got {type(ent).__name__}")
                ent_id, text, label = ent.get("id"), ent.get("text"), ent.get("label")
                if not isinstance(ent_id, int) or isinstance(ent_id, bool):
                    raise ValueError(f"entity id must be an integer, got {ent_id!r}")
                if not isinstance(text, str):
                    raise ValueError(f"entity text must be a string, got {text!r}")
                if label not in _FUNSD_LABELS:
                    raise ValueError(f"entity label must be one of {sorted(_FUNSD_LABELS)}, got {label!r}")
                box = _xyxy(ent.get("box"))
                for link in ent.get("linking") or []:
                    if not (isinstance(link, list) and len(link) == 2 and all(isinstance(v, int) for v in link)):
                        raise ValueError(f"a link must be a pair of entity ids, got {link!r}")
                    links.add((link[0], link[1]))
            except ValueError as exc:
                out.skip(file, i, str(exc))
                continue
            entities[ent_id] = (label, text, box)
        answers: dict[int, list[int]] = {}
        for a, b in sorted(links):
            if a not in entities or b not in entities:
                out.skip(file, f"link {a}->{b}", "the link names an entity that is missing or was skipped")
                continue
            if entities[a][0] == "question" and entities[b][0] == "answer":
                answers.setdefault(a, []).append(b)
        taken: set[str] = set()
        fields = []
        for q, ans in answers.items():
            parts = sorted(ans, key=lambda k: (entities[k][2].y0, entities[k][2].x0))
            value = " ".join(entities[k][1].strip() for k in parts if entities[k][1].strip())
            if not value:
                continue
            box = entities[parts[0]][2]
            for k in parts[1:]:
                box = box.union(entities[k][2])
            label = entities[q][1].strip()
            fields.append(TrueField(name=_slug(label.rstrip(":"), taken), label=label, value=value, box=box))
        samples.append(FieldsSample(id=file.stem, document=str(document), fields=fields))
    return samples, out.skipped


# SROIE -----------------------------------------------------------------------------------------------------
def _sroie_lines(file: Path, out: _Collector) -> list[tuple[str, BoundingBox]]:
    lines = []
    try:
        raw = file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read the file: {exc}", file=file) from exc
    for n, line in enumerate(raw, 1):
        if not line.strip():
            continue
        parts = line.split(",", 8)
        try:
            if len(parts) != 9:
                raise ValueError("a box line is 8 coordinates and the text: x1,y1,x2,y2,x3,y3,x4,y4,text")
            xs = [float(v) for v in parts[0:8:2]]
            ys = [float(v) for v in parts[1:8:2]]
        except ValueError as exc:
            out.skip(file, n, str(exc) if "box line" in str(exc) else f"bad coordinate in {line[:60]!r}")
            continue
        lines.append((parts[8].strip(), BoundingBox.enclosing(zip(xs, ys, strict=True))))
    return lines


def _sroie_box(value: str, lines: list[tuple[str, BoundingBox]]) -> BoundingBox | None:
    """The box of a key value: the one line that prints it, or the lines that together spell it (an address)."""
    want = " ".join(value.split())
    exact = [b for t, b in lines if " ".join(t.split()) == want]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return None  # printed more than once: ambiguous
    parts = [(t, b) for t, b in lines if len(t.strip()) >= 3 and " ".join(t.split()) in want]
    if parts and " ".join(" ".join(t.split()) for t, _ in parts) == want:
        box = parts[0][1]
        for _, b in parts[1:]:
            box = box.union(b)
        return box
    return None


def load_sroie(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """SROIE receipts: key files (company, date, address, total) with boxes found from the text-line files."""
    out = _Collector(strict)
    if not path.is_dir():
        raise DatasetError("a SROIE dataset is a folder (key/, box/, img/, or the files side by side)", file=path)
    key_dir = next((path / d for d in ("key", "entities") if (path / d).is_dir()), path)
    keys = sorted(p for p in key_dir.iterdir() if p.suffix in (".json", ".txt")) if key_dir != path else \
        sorted(path.glob("*.json"))
    if not keys:
        raise DatasetError("no SROIE key files (key/*.json, entities/*.txt or *.json)", file=path)
    samples: list[Sample] = []
    for i, key in enumerate(keys):
        try:
            data = json.loads(key.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.skip(key, i, f"the key file is not a JSON object: {exc}")
            continue
        if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
            out.skip(key, i, 'a key file is a JSON object of strings, e.g. {"company": ..., "total": ...}')
            continue
        image = _find_by_stem(key.stem, [path / "img", path])
        if image is None:
            out.skip(key, i, f"no receipt image named {key.stem}.jpg (or .png, .pdf) in img/ or beside the keys")
            continue
        folders = [path / "box"] + ([path] if key_dir != path else [])
        box_file = _find_file(f"{key.stem}.txt", folders) or _find_file(f"{key.stem}.csv", folders)
        lines = _sroie_lines(box_file, out) if box_file is not None else []
        taken: set[str] = set()
        fields = [TrueField(name=_slug(k, taken), label=k, value=" ".join(v.split()),
                            box=_sroie_box(v, lines)) for k, v in data.items() if v.strip()]
        samples.append(FieldsSample(id=key.stem, document=str(image), fields=fields))
    return samples, out.skipped


# invoice2data ----------------------------------------------------------------------------------------------
#: The currency codes `Invoice2DataFields.currency` may take (a printed symbol counts for its code).
Invoice2DataCurrency = Literal["USD", "EUR", "GBP", "CHF", "JPY", "INR", "CAD", "AUD", "PLN", "SEK", "NOK", "DKK",
                               "CZK", "CNY", "BRL", "MYR", "SGD"]
INVOICE2DATA_CURRENCIES: tuple[str, ...] = typing.get_args(Invoice2DataCurrency)


class Invoice2DataFields(BaseModel):
    """invoice2data's fields, typed: the date a date (invoice2data writes it ``YYYY-MM-DD`` however it is printed),
    the amount (the total) a number, the currency an ISO code."""

    issuer: str | None = None
    invoice_number: str | None = None
    date: dt.date | None = None
    amount: float | None = None
    currency: Invoice2DataCurrency | None = None


_INVOICE2DATA_DATES = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y")


def _invoice2data_value(name: str, value: Any) -> str | float | None:
    """A field of invoice2data's expected output as `TrueField` holds it: the amount a number, the date ISO text
    (invoice2data writes ``YYYY-MM-DD``; day-first forms are read day first), the currency an upper-case code of
    `INVOICE2DATA_CURRENCIES`, the rest text with runs of whitespace collapsed; ``None`` when it cannot be read."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    if name == "amount":
        from docvlm.tasks.text import parse_number

        number = float(value) if isinstance(value, int | float) else parse_number(value.strip())
        return number if number is not None and math.isfinite(number) else None
    text = " ".join(str(value).split())
    if name == "date":
        for form in _INVOICE2DATA_DATES:
            try:
                return dt.datetime.strptime(text[:10], form).date().isoformat()
            except ValueError:
                continue
        return None
    if name == "currency":
        return text.upper() if text.upper() in INVOICE2DATA_CURRENCIES else None
    return text


def load_invoice2data(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """Invoices beside invoice2data's expected output (see the module docs): one sample per invoice, its fields
    those of `Invoice2DataFields` the JSON gives (other keys, such as ``desc`` or ``lines``, are left out)."""
    out = _Collector(strict)
    if not path.is_dir():
        raise DatasetError("an invoice2data dataset is a folder of invoices, each beside its JSON of the same stem",
                           file=path)
    suffixes = {x.lower() for x in _IMAGE_SUFFIXES}
    documents = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    samples: list[Sample] = []
    taken: set[str] = set()
    for document in documents:
        truth_file = document.with_suffix(".json")
        if not truth_file.is_file():
            continue  # an invoice without expected output is not part of the set
        try:
            data = _read_json(truth_file)
        except DatasetError as exc:
            out.skip(truth_file, document.stem, exc.message)
            continue
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else None
        if not isinstance(data, dict):
            out.skip(truth_file, document.stem, "invoice2data's expected output is an object, or a list of one")
            continue
        fields = []
        for name in Invoice2DataFields.model_fields:
            raw = data.get(name)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue  # not given: not scored
            value = _invoice2data_value(name, raw)
            if value is None:
                what = "an ISO code docvlm reads" if name == "currency" else "readable"
                out.skip(truth_file, name, f"the {name} {raw!r} is not {what}: that field is not scored")
                continue
            fields.append(TrueField(name=name, label=name, value=value))
        if not fields:
            out.skip(truth_file, document.stem, f"none of {', '.join(Invoice2DataFields.model_fields)} is given")
            continue
        samples.append(FieldsSample(id=_slug(str(document.relative_to(path).with_suffix("")), taken),
                                    document=str(document), fields=fields, schema_name="invoice2data",
                                    whole_document=True))
    if not samples and not out.skipped:
        raise DatasetError("no invoice (PDF or image) with a JSON file of the same stem beside it", file=path)
    return samples, out.skipped


# DocVQA ----------------------------------------------------------------------------------------------------
def load_docvqa(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """DocVQA question-answer JSON: one [`QASample`][docvlm.eval.datasets.QASample] per question with answers."""
    out = _Collector(strict)
    data = _read_json(path)
    records = data.get("data") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise DatasetError('not a DocVQA file: expected an object with a "data" list', file=path)
    samples: list[Sample] = []
    folders = [path.parent, path.parent.parent]
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            out.skip(path, i, "a record must be an object")
            continue
        qid, question, image, answers = rec.get("questionId", i), rec.get("question"), rec.get("image"), rec.get("answers")
        if not isinstance(question, str) or not question.strip():
            out.skip(path, i, "no question text")
            continue
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            out.skip(path, i, "no answers (a test split without ground truth cannot be scored)")
            continue
        if not isinstance(image, str):
            out.skip(path, i, "no image path")
            continue
        found = _find_file(image, folders) or _find_file(Path(image).name, [path.parent / "documents", path.parent])
        if found is None:
            out.skip(path, i, f"the image {image!r} is not next to the file or in documents/")
            continue
        samples.append(QASample(id=str(qid), document=str(found), question=question.strip(), answers=answers))
    return samples, out.skipped


# COCO ------------------------------------------------------------------------------------------------------
def load_coco(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """COCO detection / segmentation JSON: one [`DetectionSample`][docvlm.eval.datasets.DetectionSample] per image (crowd regions are skipped)."""
    out = _Collector(strict)
    data = _read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise DatasetError('not a COCO file: expected "images", "annotations" and "categories" lists', file=path)
    names: dict[Any, str] = {}
    for i, cat in enumerate(data["categories"]):
        if isinstance(cat, dict) and "id" in cat and isinstance(cat.get("name"), str):
            names[cat["id"]] = cat["name"]
        else:
            out.skip(path, f"categories[{i}]", 'a category needs an "id" and a "name"')
    images: dict[Any, tuple[Path, int, int]] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            out.skip(path, f"images[{i}]", 'an image needs an "id" and a "file_name"')
            continue
        found = _find_file(img["file_name"], [path.parent, path.parent / "images", path.parent.parent / "images"])
        if found is None:
            out.skip(path, f"images[{i}]", f"the image file {img['file_name']!r} is not next to the JSON or in images/")
            continue
        w, h = img.get("width"), img.get("height")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            out.skip(path, f"images[{i}]", f"an image needs integer width and height, got {w!r} x {h!r}")
            continue
        images[img["id"]] = (found, w, h)
    objects: dict[Any, list[Detection]] = {k: [] for k in images}
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        try:
            if not isinstance(ann, dict):
                raise ValueError("an annotation must be an object")
            if ann.get("image_id") not in images:
                raise ValueError(f"image_id {ann.get('image_id')!r} is not a loaded image")
            if ann.get("category_id") not in names:
                raise ValueError(f"category_id {ann.get('category_id')!r} is not a category")
            if ann.get("iscrowd"):
                raise ValueError("a crowd region (iscrowd=1): crowd regions are not modelled")
            bbox = ann.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)) \
                    or bbox[2] < 0 or bbox[3] < 0:
                raise ValueError(f"bbox must be [x, y, width, height] with width, height >= 0, got {bbox!r}")
            _, w, h = images[ann["image_id"]]
            seg, mask = ann.get("segmentation"), None
            if isinstance(seg, list) and seg:
                polys = [list(zip(p[0::2], p[1::2], strict=False)) for p in seg]
                if any(len(p) < 3 for p in polys):
                    raise ValueError("a segmentation polygon needs at least 3 points")
                mask = Mask.from_polygons(polys, h, w)
            elif isinstance(seg, dict):
                mask = Mask.from_coco(seg)
                if mask.size != (h, w):
                    raise ValueError(f"the RLE mask is {mask.size} but the image is {(h, w)}")
            det = Detection(label=names[ann["category_id"]], box=BoundingBox.from_xywh(bbox), mask=mask)
        except (ValueError, UsageError) as exc:  # ValidationError is a ValueError
            out.skip(path, where, str(exc).splitlines()[0])
            continue
        objects[ann["image_id"]].append(det)
    samples: list[Sample] = [
        DetectionSample(id=str(k), document=str(images[k][0]), objects=Detections(detections=dets))
        for k, dets in objects.items()
    ]
    return samples, out.skipped


# ICDAR 2013 ------------------------------------------------------------------------------------------------
def _pdf_to_page(page: Any) -> Callable[[float, float, float, float], BoundingBox]:
    """The map from an ICDAR-2013 box to docvlm page space (CropBox top-left, y down) of a PyMuPDF page.

    On an unrotated page the boxes are PDF user space (y up). On a page with a /Rotate the real files box the
    displayed (turned) page, flipped by the unrotated page's height (ICDAR-2013 eu-015: a landscape table on
    a /Rotate 90 page); they are turned back into page space.
    """
    crop, media = page.cropbox, page.mediabox  # cropbox in MuPDF's y-down coordinates, mediabox as in the PDF
    left, top = crop.x0, media.y1 - crop.y0
    derotate = page.derotation_matrix

    def convert(x1: float, y1: float, x2: float, y2: float) -> BoundingBox:
        if page.rotation:
            r = (type(page.rect)(x1 - left, top - y1, x2 - left, top - y2) * derotate).normalize()
            return BoundingBox.from_corners(r.x0, r.y0, r.x1, r.y1)
        return BoundingBox.from_corners(x1 - left, top - y1, x2 - left, top - y2)

    return convert


def _int_attr(el: ET.Element, name: str, default: int | None = None) -> int:
    value = el.get(name)
    if value is None:
        if default is None:
            raise ValueError(f"<{el.tag}> has no {name!r} attribute")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"<{el.tag}> {name}={value!r} is not an integer") from None


def _bbox_el(el: ET.Element) -> tuple[float, float, float, float]:
    bb = el.find("bounding-box")
    if bb is None:
        raise ValueError(f"<{el.tag}> has no <bounding-box>")
    try:
        x1, y1, x2, y2 = (float(bb.get(k, "")) for k in ("x1", "y1", "x2", "y2"))
    except ValueError:
        raise ValueError("a <bounding-box> needs numeric x1, y1, x2, y2") from None
    return x1, y1, x2, y2


def load_icdar2013(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """ICDAR-2013 table structure XML: one [`TableSample`][docvlm.eval.datasets.TableSample] per table region, boxes converted to page space."""
    import pymupdf

    out = _Collector(strict)
    files = _files(path, "*-str.xml")
    if path.is_dir() and not files:
        files = sorted(path.glob("*.xml"))
    if not files:
        raise DatasetError("no ICDAR-2013 structure files (*-str.xml)", file=path)
    samples: list[Sample] = []
    for file in files:
        try:
            root = ET.parse(file).getroot()
        except (ET.ParseError, OSError) as exc:
            raise DatasetError(f"not readable XML: {exc}", file=file) from exc
        if root.tag != "document":
            raise DatasetError(f"not an ICDAR-2013 structure file: the root is <{root.tag}>, not <document>", file=file)
        # the PDF shares the XML's stem (us-001-str.xml -> us-001.pdf); the filename attribute names the XML itself
        # in the public set ("bm_us-001-str.xml"), so it is only a fallback
        stem = file.name.removesuffix(".xml").removesuffix("-str")
        names = [f"{stem}.pdf", f"{stem}.PDF"]
        attr = Path(root.get("filename") or "").name
        if attr.lower().endswith(".pdf"):
            names.append(attr)
        pdf = next((f for f in (_find_file(n, [file.parent, file.parent.parent]) for n in names) if f is not None), None)
        if pdf is None:
            out.skip(file, "document", f"no PDF {stem}.pdf next to the XML (the PDF shares the XML's stem)")
            continue
        try:
            doc = pymupdf.open(pdf)
        except Exception as exc:  # PyMuPDF raises its own types for damaged files
            out.skip(file, "document", f"cannot open {pdf.name}: {exc}")
            continue
        with doc:
            for t_index, table in enumerate(root.iter("table")):
                for r_index, region in enumerate(table.iter("region")):
                    rid = f"table {table.get('id', t_index)} region {region.get('id', r_index)}"
                    try:
                        page_no = _int_attr(region, "page", 1)
                        with mupdf_errors(pdf.name, None, "reading the PDF"):  # a damaged PDF: a skipped record
                            if not 1 <= page_no <= doc.page_count:
                                raise ValueError(f"page {page_no} is not in the {doc.page_count}-page PDF")
                            convert = _pdf_to_page(doc[page_no - 1])
                        cells = []
                        for cell in region.iter("cell"):
                            r0, c0 = _int_attr(cell, "start-row"), _int_attr(cell, "start-col")
                            r1, c1 = _int_attr(cell, "end-row", r0), _int_attr(cell, "end-col", c0)
                            if r1 < r0 or c1 < c0 or r0 < 0 or c0 < 0:
                                raise ValueError(f"cell rows {r0}-{r1}, columns {c0}-{c1} are not a valid span")
                            content = cell.find("content")
                            text = " ".join("".join(content.itertext()).split()) if content is not None else ""
                            cells.append(TableCell(row=r0, col=c0, row_span=r1 - r0 + 1, col_span=c1 - c0 + 1, text=text,
                                                   box=convert(*_bbox_el(cell)) if cell.find("bounding-box") is not None else None))
                        if not cells:
                            raise ValueError("the region has no cells")
                        # the structure file boxes cells only: the region is the union of its cells' text boxes
                        boxes = [c.box for c in cells if c.box is not None]
                        region_box = convert(*_bbox_el(region)) if region.find("bounding-box") is not None else (
                            BoundingBox(x0=min(b.x0 for b in boxes), y0=min(b.y0 for b in boxes),
                                        x1=max(b.x1 for b in boxes), y1=max(b.y1 for b in boxes)) if boxes else None)
                        truth = Table(cells=cells, box=region_box, page=page_no - 1)
                    except (ValueError, DocVLMError) as exc:
                        out.skip(file, rid, str(exc).splitlines()[0])
                        continue
                    samples.append(TableSample(id=f"{file.name.removesuffix('.xml').removesuffix('-str')}/{t_index}.{r_index}", document=str(pdf), page=page_no - 1,
                                               table=truth, region=region_box))
    return samples, out.skipped


# PubTabNet -------------------------------------------------------------------------------------------------
class _HTMLTable:
    """Grid positions of the cells of an HTML table (rowspan / colspan honoured)."""

    def __init__(self, html_text: str) -> None:
        from html.parser import HTMLParser

        self.cells: list[TableCell] = []
        occupied: set[tuple[int, int]] = set()
        state: dict[str, Any] = {"row": -1, "col": 0, "in_head": False, "cell": None}
        cells = self.cells

        class Parser(HTMLParser):
            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                if tag == "thead":
                    state["in_head"] = True
                elif tag in ("tbody", "tfoot"):
                    state["in_head"] = False
                elif tag == "tr":
                    state["row"] += 1
                    state["col"] = 0
                elif tag in ("td", "th"):
                    a = dict(attrs)
                    r, c = max(state["row"], 0), state["col"]
                    while (r, c) in occupied:
                        c += 1
                    rs, cs = max(1, int(a.get("rowspan") or 1)), max(1, int(a.get("colspan") or 1))
                    occupied.update((r + i, c + j) for i in range(rs) for j in range(cs))
                    state["col"] = c + cs
                    state["cell"] = {"row": r, "col": c, "row_span": rs, "col_span": cs, "text": "",
                                     "is_header": tag == "th" or state["in_head"]}

            def handle_endtag(self, tag: str) -> None:
                if tag in ("td", "th") and state["cell"] is not None:
                    spec = state["cell"]
                    spec["text"] = " ".join(spec["text"].split())
                    cells.append(TableCell(**spec))
                    state["cell"] = None

            def handle_data(self, data: str) -> None:
                if state["cell"] is not None:
                    state["cell"]["text"] += data

        parser = Parser(convert_charrefs=True)
        parser.feed(html_text)
        parser.close()


def table_from_html(html_text: str) -> Table:
    """A [`Table`][docvlm.types.table.Table] from an HTML ``<table>`` (spans honoured; ``<th>`` and ``<thead>`` cells are headers).

    >>> table_from_html("<table><tr><th>a</th><th>b</th></tr><tr><td colspan='2'>c</td></tr></table>").shape
    (2, 2)

    Raises:
        ValueError: a malformed span.
    """
    return Table(cells=_HTMLTable(html_text).cells)


def _pubtabnet_table(rec: dict[str, Any]) -> tuple[Table, str]:
    html = rec.get("html")
    structure = html.get("structure", {}).get("tokens") if isinstance(html, dict) else None
    cells = html.get("cells") if isinstance(html, dict) else None
    if not isinstance(structure, list) or not isinstance(cells, list) or not all(isinstance(t, str) for t in structure):
        raise ValueError('a record needs html.structure.tokens (a list of strings) and html.cells')
    parts: list[str] = []
    k = 0
    boxes: list[BoundingBox | None] = []
    for token in structure:
        parts.append(token)
        if token in ("<td>", ">"):  # the end of an opening cell tag: the cell's content follows
            if k >= len(cells):
                raise ValueError(f"the structure has more cells than the {len(cells)} in html.cells")
            cell = cells[k]
            tokens = cell.get("tokens", []) if isinstance(cell, dict) else None
            if not isinstance(tokens, list):
                raise ValueError(f"cell {k} has no token list")
            parts.append("".join(t for t in tokens if not (t.startswith("<") and t.endswith(">") and len(t) > 2)))
            boxes.append(_xyxy(cell["bbox"], f"cell {k} bbox") if "bbox" in cell else None)
            k += 1
    if k != len(cells):
        raise ValueError(f"the structure has {k} cells but html.cells has {len(cells)}")
    html_text = "<table>" + "".join(parts) + "</table>"
    grid = _HTMLTable(html_text).cells
    return Table(cells=[c.model_copy(update={"box": b}) for c, b in zip(grid, boxes, strict=True)]), html_text


def _jsonl(path: Path, out: _Collector) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records of a JSON-lines file as (line number, object); a line that is not a JSON object is skipped
    with its reason. A file that cannot be read is a [`DatasetError`][docvlm.eval.datasets.DatasetError]."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError("no such file", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the file: {exc}", file=path) from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            out.skip(path, n, f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(rec, dict):
            out.skip(path, n, "a record must be an object")
            continue
        yield n, rec


def load_pubtabnet(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """PubTabNet JSONL: one [`TableSample`][docvlm.eval.datasets.TableSample] per line (the table is the whole image, so no region)."""
    out = _Collector(strict)
    samples: list[Sample] = []
    for n, rec in _jsonl(path, out):
        try:
            if not isinstance(rec.get("filename"), str):
                raise ValueError('a record is an object with a "filename"')
            table, _ = _pubtabnet_table(rec)
        except (ValueError, KeyError, TypeError) as exc:
            out.skip(path, n, str(exc).splitlines()[0])
            continue
        split = str(rec["split"]) if isinstance(rec.get("split"), str) else ""
        image = _find_file(rec["filename"], [path.parent / split, path.parent, path.parent / "images"])
        if image is None:
            out.skip(path, n, f"the image {rec['filename']!r} is not next to the file or in {split or 'images'}/")
            continue
        samples.append(TableSample(id=str(rec.get("imgid", Path(rec["filename"]).stem)), document=str(image), table=table))
    return samples, out.skipped


# camelot's expected tables --------------------------------------------------------------------------------
def _camelot_table(rows: Any) -> Table:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and all(isinstance(c, str) for c in r)
                                                         for r in rows):
        raise ValueError("an expected table is a non-empty list of rows, each a list of strings")
    return Table(cells=[TableCell(row=r, col=c, text=" ".join(text.split()))
                        for r, row in enumerate(rows) for c, text in enumerate(row)],
                 n_rows=len(rows), n_cols=max(len(r) for r in rows))


def load_camelot(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """camelot's test tables: one `TableSample` per PDF, page and expected table variable.

    ``camelot_expected_tables.tsv`` (columns: test file, test name, PDFs relative to camelot's ``tests/files/``
    joined by commas, expected variables joined by commas, flavor, pages) names the expected tables of
    ``data_tables.json``; the PDFs are looked for in ``files/`` and next to the TSV. The same PDF and table in
    several tests is one sample. Tests whose PDF is not here (``tabula/...``) or is encrypted are skipped.
    These tables are a tool's regression expectations, not human annotation: score them tolerantly.
    """
    import csv

    import pymupdf

    folder = path if path.is_dir() else path.parent
    tsv = folder / "camelot_expected_tables.tsv" if path.is_dir() else path
    tables = _read_json(folder / "data_tables.json")
    if not isinstance(tables, dict):
        raise DatasetError("data_tables.json must map variable names to tables", file=folder / "data_tables.json")
    try:
        with tsv.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as exc:
        raise DatasetError(f"cannot read the file: {exc}", file=tsv) from exc
    if not rows or len(rows[0]) < 6 or "pdf" not in rows[0][2].lower():
        raise DatasetError("not camelot's expected-tables TSV (test_file, test_name, pdf(s), expected_data_var, "
                           "flavor, pages)", file=tsv)
    out = _Collector(strict)
    samples: list[Sample] = []
    seen: set[tuple[str, int, str]] = set()
    for n, row in enumerate(rows[1:], 2):
        if len(row) < 6:
            out.skip(tsv, n, f"a row needs 6 columns, got {len(row)}")
            continue
        test = row[1]
        try:
            pages = [int(p) - 1 for p in row[5].split(",") if p.strip()] or [0]
        except ValueError:
            out.skip(tsv, n, f"pages {row[5]!r} are not page numbers")
            continue
        for name in (p.strip() for p in row[2].split(",") if p.strip()):
            pdf = _find_file(name, [folder / "files", folder])
            if pdf is None:
                out.skip(tsv, f"{test} {name}", f"the PDF {name!r} is not in files/")
                continue
            try:
                with pymupdf.open(pdf) as doc:
                    encrypted, n_pages = doc.needs_pass, doc.page_count
            except Exception as exc:  # PyMuPDF raises its own types for damaged files
                out.skip(tsv, f"{test} {name}", f"cannot open {name}: {exc}")
                continue
            if encrypted:
                out.skip(tsv, f"{test} {name}", f"{name} is encrypted")
                continue
            for var in (v.strip() for v in row[3].split(",") if v.strip()):
                for page in pages:
                    if (name, page, var) in seen:
                        continue
                    seen.add((name, page, var))
                    try:
                        if not 0 <= page < n_pages:
                            raise ValueError(f"page {page + 1} is not in the {n_pages}-page PDF")
                        if var not in tables:
                            raise ValueError(f"no expected table {var!r} in data_tables.json")
                        table = _camelot_table(tables[var]).model_copy(update={"page": page})
                    except ValueError as exc:
                        out.skip(tsv, f"{test} {name} {var}", str(exc).splitlines()[0])
                        continue
                    samples.append(TableSample(id=f"{Path(name).stem}/{page + 1}/{var}", document=str(pdf), page=page,
                                               table=table))
    return samples, out.skipped


# multiple choice -------------------------------------------------------------------------------------------
def load_mcq(path: Path, *, strict: bool = False) -> tuple[list[Sample], list[SkippedRecord]]:
    """Multiple-choice JSONL: ``{"id", "document", "question", "choices": [...], "answer": 1 or "B"}`` per line."""
    out = _Collector(strict)
    samples: list[Sample] = []
    for n, rec in _jsonl(path, out):
        try:
            choices, answer = rec.get("choices"), rec.get("answer")
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise ValueError("choices must be a list of at least 2 strings")
            if isinstance(answer, str) and len(answer) == 1 and answer.isalpha():
                answer = ord(answer.upper()) - ord("A")
            if not isinstance(answer, int) or not 0 <= answer < len(choices):
                raise ValueError(f"answer must be the index or letter of one of the {len(choices)} choices, got {rec.get('answer')!r}")
            doc = rec.get("document")
            found = _find_file(doc, [path.parent]) if isinstance(doc, str) else None
            if found is None:
                raise ValueError(f"the document {doc!r} is not next to the file")
            samples.append(ChoiceSample(id=str(rec.get("id", n)), document=str(found), page=int(rec.get("page", 0)),
                                        question=str(rec.get("question", "")), choices=choices, answer=answer))
        except (ValueError, TypeError) as exc:
            out.skip(path, n, str(exc).splitlines()[0])
    return samples, out.skipped


# synthetic -------------------------------------------------------------------------------------------------
def synthetic_dataset(kind: str = "invoice", n: int = 20, seed: int = 0) -> Dataset:
    """Generated documents with exact truth (`docvlm.synth.generate_dataset`) as a dataset.

    Args:
        kind: ``"invoice"`` or ``"form"`` (field samples with the generator's schema), or ``"table"``.
        n: how many documents.
        seed: the dataset seed.
    """
    from docvlm.synth import generate_dataset

    if kind not in ("invoice", "form", "table"):
        raise UsageError(f"no synthetic evaluation samples for {kind!r}", hint="use 'invoice', 'form' or 'table'")
    samples: list[Sample] = []
    for doc in generate_dataset(kind, n, seed=seed):
        name = f"synthetic:{kind}:{doc.seed}"
        if kind == "table":
            for t in doc.tables:
                samples.append(TableSample(id=str(doc.seed), document=name, content=doc.pdf, table=t, region=t.box))
        else:
            fields = [TrueField(name=k, label=k, value=f.value, box=f.box, page=f.page) for k, f in doc.fields.items()]
            samples.append(FieldsSample(id=str(doc.seed), document=name, content=doc.pdf, fields=fields, schema_name=kind))
    return Dataset(format="synthetic", path=f"{kind}:{n}:{seed}", samples=samples)


def _synthetic(spec: str) -> Dataset:
    kind, _, rest = spec.partition(":")
    n_text, _, seed_text = rest.partition(":")
    try:
        n = int(n_text) if n_text else 20
        seed = int(seed_text) if seed_text else 0
    except ValueError:
        raise UsageError(f"bad synthetic dataset {spec!r}", hint="write kind[:n[:seed]], e.g. 'invoice:20:0'") from None
    return synthetic_dataset(kind, n, seed)


# entry point -----------------------------------------------------------------------------------------------
Loader = Callable[..., tuple[list[Sample], list[SkippedRecord]]]

#: The formats [`load_dataset`][docvlm.eval.datasets.load_dataset] reads, by name.
FORMATS: dict[str, Loader] = {
    "funsd": load_funsd,
    "sroie": load_sroie,
    "invoice2data": load_invoice2data,
    "docvqa": load_docvqa,
    "coco": load_coco,
    "icdar2013": load_icdar2013,
    "pubtabnet": load_pubtabnet,
    "camelot": load_camelot,
    "mcq": load_mcq,
}


def load_dataset(path: str | Path, format: str, *, strict: bool = False, limit: int | None = None) -> Dataset:
    """Load an evaluation dataset (see the module docs for the formats and the bad-record policy).

    Args:
        path: the file or folder (for ``"synthetic"``: ``kind[:n[:seed]]``).
        format: one of `FORMATS` or ``"synthetic"``.
        strict: raise [`DatasetError`][docvlm.eval.datasets.DatasetError] at the first bad record instead of skipping it.
        limit: keep only the first ``limit`` samples.

    Raises:
        DatasetError: the file is missing, unreadable or of the wrong shape, every record in it was skipped (or a
            record is bad, when strict).
        UsageError: an unknown format.
    """
    fmt = format.strip().lower().replace("-", "").replace("_", "")
    if fmt == "synthetic":
        return _synthetic(str(path)).head(limit)
    if fmt not in FORMATS:
        raise UsageError(f"unknown dataset format {format!r}", hint="use one of " + ", ".join([*FORMATS, "synthetic"]))
    where = Path(path)
    if not where.exists():
        raise DatasetError("no such file or folder", file=where)
    samples, skipped = FORMATS[fmt](where, strict=strict)
    if not samples and skipped:
        raise DatasetError(f"every record was skipped ({len(skipped)}); the first: {skipped[0].reason}",
                           file=skipped[0].file, hint=f"check that {where} is laid out as the {fmt} format ships")
    return Dataset(format=fmt, path=str(where), samples=samples, skipped=skipped).head(limit)
