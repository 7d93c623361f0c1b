"""Seeded synthetic documents (invoices, forms, tables, multi-column text) with exact ground truth.

Every generator draws a born-digital PDF with PyMuPDF from ``random.Random(seed)`` alone (no network, no
files), then reads the PDF's text layer back to measure the truth: a field's evidence box is the union of
the boxes of the words that print its value, exactly as `docvlm.Page.words` reports them. A value
whose words cannot be found again is a generator bug and raises, so the truth never silently drifts
from the page.

>>> from docvlm.synth import generate_invoice
>>> doc = generate_invoice(7)
>>> truth = doc.fields["total"]
>>> isinstance(truth.value, float), truth.box.space.value, truth.page
(True, 'page', 0)
>>> doc.expected().total == truth.value
True
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from docvlm.errors import UsageError
from docvlm.synth import _vocab as vocab
from docvlm.synth._canvas import FONTS, Align, Canvas, measure_marks
from docvlm.types.geometry import BoundingBox, Size
from docvlm.types.table import Table, TableCell

if TYPE_CHECKING:
    from docvlm.documents.base import Document

__all__ = [
    "DocumentKind",
    "FieldTruth",
    "FormFields",
    "InvoiceFields",
    "SyntheticDocument",
    "TextBlock",
    "generate",
    "generate_columns_page",
    "generate_dataset",
    "generate_form",
    "generate_invoice",
    "generate_table_page",
]

_SEED_STRIDE = 1 << 20


class DocumentKind(str, Enum):
    """The kinds of synthetic document."""

    INVOICE = "invoice"
    FORM = "form"
    TABLE = "table"
    COLUMNS = "columns"


class FieldTruth(BaseModel):
    """The true value of one field and where it is printed.

    Attributes:
        value: the value, typed: ``float`` for amounts, ``str`` otherwise (dates as printed).
        text: the words that print the value, exactly as in the text layer (e.g. ``"$1,234.50"``,
            ``"1 234,50"``, ``"14.03.2025"``). For ``currency`` it is the word carrying the symbol or code.
        box: evidence box: the union of those words' boxes, in page space.
        page: 0-based index of the page.
        normalized: a canonical form where one exists (ISO 8601 for dates).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | str
    text: str
    box: BoundingBox
    page: int = Field(default=0, ge=0)
    normalized: str | None = None


class TextBlock(BaseModel):
    """A block of running text (title, heading or paragraph fragment) in reading order.

    Attributes:
        kind: ``"title"``, ``"heading"`` or ``"paragraph"``.
        text: the block's words joined by single spaces.
        box: the union of its word boxes, page space.
        page: 0-based page index.
        column: 0-based column of a multi-column layout; ``None`` for blocks spanning the columns.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["title", "heading", "paragraph"]
    text: str
    box: BoundingBox
    page: int = Field(default=0, ge=0)
    column: int | None = None


_STRICT = ConfigDict(extra="forbid")


class InvoiceFields(BaseModel):
    """The fields to extract from an invoice; names match the keys of an invoice's `SyntheticDocument.fields`."""

    model_config = _STRICT

    vendor_name: str = Field(description="name of the company that issued the invoice")
    vendor_address: str = Field(description="the vendor's postal address, one line")
    invoice_number: str = Field(description="the invoice number as printed, without its label")
    invoice_date: str = Field(description="the invoice date as printed")
    due_date: str | None = Field(default=None, description="the payment due date as printed, if any")
    customer_name: str = Field(description="name of the customer billed")
    currency: Literal["USD", "EUR", "GBP", "CHF"] = Field(description="ISO 4217 code of the invoice currency")
    subtotal: float = Field(description="sum of the line items before tax")
    tax: float = Field(description="tax amount")
    total: float = Field(description="total amount due, tax included")


class FormFields(BaseModel):
    """The fields to extract from a form; names match the keys of a form's `SyntheticDocument.fields`."""

    model_config = _STRICT

    full_name: str = Field(description="the person's full name")
    date_of_birth: str = Field(description="date of birth as printed")
    policy_number: str = Field(description="policy or contract number as printed")
    email: str = Field(description="email address")
    phone: str = Field(description="phone number as printed")
    amount: float = Field(description="the amount claimed or insured, without currency")


#: Other names people give these fields in their own schemas (``issuer`` for ``vendor_name``, ``amount`` for
#: ``total``): training data for the extraction ranker varies the field names with these, so that what it learns
#: is not tied to one spelling of a schema.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "vendor_name": ("vendor_name", "vendor", "issuer", "seller", "supplier", "company", "merchant", "company_name"),
    "vendor_address": ("vendor_address", "address", "seller_address", "supplier_address", "issuer_address"),
    "invoice_number": ("invoice_number", "number", "invoice_no", "invoice_id", "reference", "bill_number"),
    "invoice_date": ("invoice_date", "date", "issue_date", "issued_on", "document_date", "bill_date"),
    "due_date": ("due_date", "payment_due", "due", "pay_by"),
    "customer_name": ("customer_name", "customer", "client", "buyer", "bill_to", "recipient"),
    "subtotal": ("subtotal", "net_amount", "net_total", "amount_before_tax"),
    "tax": ("tax", "vat", "tax_amount", "sales_tax"),
    "total": ("total", "amount", "total_amount", "grand_total", "amount_due", "gross_amount"),
    "full_name": ("full_name", "name", "applicant", "person_name", "insured_name"),
    "date_of_birth": ("date_of_birth", "birth_date", "dob", "birthday"),
    "policy_number": ("policy_number", "policy_no", "contract_number", "policy_id"),
    "email": ("email", "email_address", "e_mail"),
    "phone": ("phone", "phone_number", "telephone", "mobile"),
    "amount": ("amount", "claim_amount", "sum_insured", "premium", "claimed"),
}

_SCHEMAS: dict[DocumentKind, type[BaseModel]] = {DocumentKind.INVOICE: InvoiceFields, DocumentKind.FORM: FormFields}


class SyntheticDocument(BaseModel):
    """A generated PDF and its ground truth.

    Attributes:
        kind: what was generated.
        seed: the seed that reproduces it exactly (same bytes, same truth).
        pdf: the PDF bytes.
        page_size: size of its (single) page in points.
        fields: truth per field name (the schema's field names for invoices and forms; ``title`` or
            ``caption`` for text and table pages).
        tables: the tables drawn, cell boxes in page space (grid cells: ruling lines or column / row bounds).
        blocks: running text in reading order (multi-column pages).
        language: the language of the printed labels: ``en``, or for invoices also ``fr de es it nl``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    kind: DocumentKind
    seed: int
    pdf: bytes = Field(repr=False)
    page_size: Size
    fields: dict[str, FieldTruth] = Field(default_factory=dict)
    tables: list[Table] = Field(default_factory=list)
    blocks: list[TextBlock] = Field(default_factory=list)
    language: str = "en"

    def open(self) -> Document:
        """The PDF opened with [`docvlm.open`][docvlm.documents._open.open_document]."""
        from docvlm.documents import open_document

        return open_document(self.pdf, format="pdf")

    @property
    def schema_type(self) -> type[BaseModel] | None:
        """The extraction schema for this kind (`InvoiceFields`, `FormFields`), if any."""
        return _SCHEMAS.get(self.kind)

    def expected(self) -> BaseModel:
        """The true answer as an instance of [`schema_type`][docvlm.eval.datasets.FieldsSample.schema_type], e.g. to score ``dv.extract`` against.

        Raises:
            UsageError: this kind of document has no extraction schema.
        """
        schema = self.schema_type
        if schema is None:
            raise UsageError(f"a {self.kind.value} document has no extraction schema",
                             hint="use .fields, .tables and .blocks")
        return schema.model_validate({k: v.value for k, v in self.fields.items()})


# formatting ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Locale:
    currency: str
    symbol: str | None  # attached prefix symbol, else the ISO code is printed as its own word
    code_suffix: bool
    number: Literal["en", "de", "fr", "ch", "plain"]
    dates: tuple[str, ...]
    after: bool = False  # the symbol follows the number, a space between ("1 234,56 €")
    gap: str = ""  # between a leading symbol and the number ("€ 1.234,56")


_LOCALES = (
    _Locale("USD", "$", False, "en", ("us_num", "us_long", "us_short", "iso")),
    _Locale("GBP", "£", False, "en", ("eu_slash", "eu_long", "dmy_dash")),
    _Locale("EUR", None, True, "de", ("de_dot", "iso", "eu_long")),
    _Locale("EUR", None, True, "fr", ("eu_slash", "eu_long")),
    _Locale("CHF", None, False, "ch", ("de_dot", "iso")),
    _Locale("EUR", None, False, "en", ("eu_slash", "eu_long", "iso", "dmy_dash")),
    _Locale("USD", None, False, "plain", ("iso", "us_num")),
)
#: Currencies, number and date forms of invoices in other languages (English invoices draw from `_LOCALES`).
_LANGUAGE_LOCALES = {
    "fr": (_Locale("EUR", "€", False, "fr", ("eu_slash", "long"), after=True),
           _Locale("EUR", None, True, "fr", ("eu_slash", "long")),
           _Locale("EUR", "€", False, "de", ("eu_slash", "long"), after=True)),
    "de": (_Locale("EUR", "€", False, "de", ("de_dot", "de_long"), after=True),
           _Locale("EUR", None, True, "de", ("de_dot", "de_long", "iso")),
           _Locale("CHF", None, False, "ch", ("de_dot", "de_long"))),
    "es": (_Locale("EUR", "€", False, "de", ("eu_slash", "es_long"), after=True),
           _Locale("EUR", None, True, "de", ("eu_slash", "es_long"))),
    "it": (_Locale("EUR", "€", False, "de", ("eu_slash", "long"), gap=" "),
           _Locale("EUR", "€", False, "de", ("eu_slash", "long"), after=True),
           _Locale("EUR", None, True, "de", ("eu_slash", "long"))),
    "nl": (_Locale("EUR", "€", False, "de", ("dmy_num", "long"), gap=" "),
           _Locale("EUR", None, False, "de", ("dmy_num", "long"))),
}
_IBAN_COUNTRY = {"en": "DE", "fr": "FR", "de": "DE", "es": "ES", "it": "IT", "nl": "NL"}


def _number(value: float, style: str) -> str:
    s = f"{value:,.2f}"
    if style == "de":
        return s.replace(",", "_").replace(".", ",").replace("_", ".")
    if style == "fr":
        return s.replace(",", " ").replace(".", ",")
    if style == "ch":
        return s.replace(",", "'")
    if style == "plain":
        return f"{value:.2f}"
    return s


def _money(value: float, loc: _Locale) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """The printed amount and the spans of the amount's words and of the currency's word."""
    num = _number(value, loc.number)
    if loc.symbol is not None and loc.after:
        text = f"{num} {loc.symbol}"
        return text, (0, len(num)), (len(num) + 1, len(text))
    if loc.symbol is not None and loc.gap:
        text = loc.symbol + loc.gap + num
        return text, (len(text) - len(num), len(text)), (0, len(loc.symbol))
    if loc.symbol is not None:
        text = loc.symbol + num
        return text, (0, len(text)), (0, len(text.split()[0]))
    if loc.code_suffix:
        text = f"{num} {loc.currency}"
        return text, (0, len(num)), (len(num) + 1, len(text))
    text = f"{loc.currency} {num}"
    return text, (len(loc.currency) + 1, len(text)), (0, len(loc.currency))


def _date(d: dt.date, style: str, language: str = "en") -> str:
    month = vocab.MONTHS_IN[language][d.month - 1]
    day = "1er" if language == "fr" and d.day == 1 else str(d.day)
    return {
        "long": f"{day} {month} {d.year}",  # "1er février 2014", "7 maggio 2014"
        "de_long": f"{d.day}. {month} {d.year}",
        "es_long": f"{d.day} de {month} de {d.year}",
        "dmy_num": f"{d.day:02d}-{d.month:02d}-{d.year}",
        "us_num": f"{d.month:02d}/{d.day:02d}/{d.year}",
        "us_long": f"{month} {d.day}, {d.year}",
        "us_short": f"{month[:3]} {d.day}, {d.year}",
        "iso": d.isoformat(),
        "eu_slash": f"{d.day:02d}/{d.month:02d}/{d.year}",
        "eu_long": f"{d.day} {month} {d.year}",
        "de_dot": f"{d.day:02d}.{d.month:02d}.{d.year}",
        "dmy_dash": f"{d.day:02d}-{month[:3]}-{d.year}",
    }[style]


def _page_size(rng: random.Random) -> tuple[float, float]:
    return rng.choice([(595.0, 842.0), (612.0, 792.0)])  # A4, US Letter


def _finish(cv: Canvas, kind: DocumentKind, seed: int, title: str, values: dict[str, tuple[float | str, str | None]],
            tables: list[Table] | None = None, blocks: list[tuple[str, str, int | None]] | None = None,
            language: str = "en") -> SyntheticDocument:
    """Write the PDF, measure every mark in its text layer and assemble the truth."""
    pdf = cv.finish(title)
    found = measure_marks(pdf, cv.marks)
    fields = {
        key: FieldTruth(value=value, text=found[key][0], box=found[key][1], normalized=normalized)
        for key, (value, normalized) in values.items()
    }
    text_blocks = [
        TextBlock(kind=block_kind, text=found[key][0], box=found[key][1], column=column)
        for key, block_kind, column in blocks or []
    ]
    return SyntheticDocument(kind=kind, seed=seed, pdf=pdf, page_size=Size(width=cv.width, height=cv.height),
                             fields=fields, tables=tables or [], blocks=text_blocks, language=language)


# tables ----------------------------------------------------------------------------------------------
TableStyle = Literal["grid", "rows", "none"]


@dataclass
class _Cell:
    row: int
    col: int
    text: str
    row_span: int = 1
    col_span: int = 1
    header: bool = False


def _draw_table(cv: Canvas, *, key: str, x: float, y: float, widths: list[float], row_height: float,
                cells: list[_Cell], aligns: list[Align], family: tuple[str, str], size: float, style: TableStyle,
                shade: bool, caption: str | None = None) -> tuple[Table, float]:
    """Draw a table whose top-left corner is ``(x, y)``; returns its truth (cell boxes are grid cells) and bottom."""
    n_rows = max(c.row + c.row_span for c in cells)
    xs = [x]
    for w in widths:
        xs.append(xs[-1] + w)
    ys = [y + r * row_height for r in range(n_rows + 1)]
    pad = max(3.0, size * 0.45)
    truth: list[TableCell] = []
    for c in cells:
        x0, x1 = xs[c.col], xs[c.col + c.col_span]
        y0, y1 = ys[c.row], ys[c.row + c.row_span]
        if c.header and shade:
            cv.rect(x0, y0, x1, y1, color=None, fill=(0.88, 0.88, 0.88))
        if style == "grid":
            cv.rect(x0, y0, x1, y1, width=0.7)
        elif style == "rows":
            cv.line(x0, y1, x1, y1, width=0.7 if c.header or c.row + c.row_span == n_rows else 0.4)
        align: Align = "center" if c.col_span > 1 else aligns[c.col]
        tx = x0 + pad if align == "left" else x1 - pad if align == "right" else (x0 + x1) / 2
        baseline = (y0 + y1) / 2 + size * 0.33
        if c.text:
            cv.text(tx, baseline, c.text, font=family[1] if c.header else family[0], size=size, align=align)
            cv.mark(f"{key}.{c.row}.{c.col}", c.text, (x0, y0, x1, y1))
        truth.append(TableCell(row=c.row, col=c.col, row_span=c.row_span, col_span=c.col_span, text=c.text,
                               box=BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1), is_header=c.header))
    if style == "rows":
        cv.line(xs[0], ys[0], xs[-1], ys[0], width=0.9)
    table = Table(cells=truth, n_rows=n_rows, n_cols=len(widths), box=BoundingBox(x0=xs[0], y0=ys[0], x1=xs[-1], y1=ys[-1]),
                  page=0, caption=caption)
    return table, ys[-1]


def _column_widths(cells: list[_Cell], n_cols: int, family: tuple[str, str], size: float) -> list[float]:
    pad = max(3.0, size * 0.45)
    widths = [0.0] * n_cols
    for c in cells:
        if c.col_span == 1:
            w = Canvas.measure(c.text, family[1] if c.header else family[0], size) + 2 * pad + 2
            widths[c.col] = max(widths[c.col], w)
    for c in cells:  # spanning cells: widen their columns evenly if needed
        if c.col_span > 1:
            need = Canvas.measure(c.text, family[1] if c.header else family[0], size) + 2 * pad + 2
            have = sum(widths[c.col:c.col + c.col_span])
            if need > have:
                for k in range(c.col, c.col + c.col_span):
                    widths[k] += (need - have) / c.col_span
    return widths


# invoices --------------------------------------------------------------------------------------------
def invoice_language(seed: int) -> str:
    """The language `generate_invoice` prints the invoice of ``seed`` in: English for half the seeds, French, German,
    Spanish, Italian or Dutch for a tenth each (drawn apart from the layout, so English invoices are what they
    were before the other languages came)."""
    rng = random.Random(f"invoice-language:{seed}")
    return "en" if rng.random() < 0.5 else rng.choice(vocab.INVOICE_LANGUAGES[1:])


def generate_invoice(seed: int, *, language: str | None = None, inline: bool | None = None) -> SyntheticDocument:
    """A one-page invoice: vendor, address, number, dates, customer, a ruled line-item table and totals.

    Layouts vary with the seed: header and label placement, the language of the labels (English, French, German,
    Spanish, Italian, Dutch: `invoice_language`) and their wording ("Invoice No." / "Invoice #" / "Number:",
    "N° de facture :" / "Facture n°"), date and number formats, currencies (symbol or ISO code), fonts (Helvetica,
    Times, Courier), sizes and page format (A4 / Letter). Truth keys are `InvoiceFields`'s field names
    (``due_date`` only when printed); the line items are ``tables[0]``.

    Args:
        seed: any integer; the same seed gives the same bytes and truth.
        language: one of ``en fr de es it nl`` instead of the seed's own.
        inline: print each label and its value as one run of text ("Invoice No.: 2014-0042", "Total TTC 19,99 €"),
            or (False) the values in a column of their own; by default drawn from the seed (about a third of the
            invoices' number / date blocks, and of their totals, are printed inline).

    Raises:
        UsageError: an unknown ``language``.
    """
    if language is None:
        language = invoice_language(seed)
    elif language not in vocab.INVOICE_WORDS:
        raise UsageError(f"no invoice wording for language {language!r}",
                         hint=f"use one of {', '.join(vocab.INVOICE_LANGUAGES)}")
    words = vocab.INVOICE_WORDS[language]
    # a label and its value printed as one run of text ("Invoice No.: 2014-0042", "Total TTC 19,99 €"), as many real
    # invoices print them, or the value in a column of its own; drawn apart from the layout (the others unchanged)
    draw = random.Random(f"invoice-inline:{seed}")
    inline_meta, inline_totals = draw.random() < 0.35, draw.random() < 0.3
    if inline is not None:
        inline_meta = inline_totals = inline
    rng = random.Random(f"invoice:{seed}")
    width, height = _page_size(rng)
    cv = Canvas(width, height)
    family = FONTS[rng.choice(list(FONTS))]
    regular, bold = family
    size = rng.choice([9.0, 9.5, 10.0, 10.5, 11.0])
    margin = rng.uniform(40, 68)
    loc = rng.choice(_LOCALES if language == "en" else _LANGUAGE_LOCALES[language])
    date_style = rng.choice(loc.dates)
    values: dict[str, tuple[float | str, str | None]] = {}

    # header: vendor and title on one baseline
    vendor, vendor_address = vocab.company(rng), vocab.address(rng)
    title = rng.choice(words["title"])
    title_size = rng.uniform(16, 24)
    vendor_size = rng.uniform(13, 19)
    while Canvas.measure(vendor, bold, vendor_size) + Canvas.measure(title, bold, title_size) > width - 2 * margin - 30:
        vendor_size -= 1
    small = size - 0.5
    while Canvas.measure(vendor_address, regular, small) + Canvas.measure(title, bold, title_size) > width - 2 * margin - 30:
        title_size -= 1  # a long title ("Fattura accompagnatoria") clear of the address under the vendor
    top = margin + title_size
    vendor_left = rng.random() < 0.6
    valign: Align = "left" if vendor_left else "right"
    vx = margin if vendor_left else width - margin
    cv.text(vx, top, vendor, font=bold, size=vendor_size, align=valign, mark="vendor_name")
    cv.text(vx, top + vendor_size * 0.6 + small * 1.4, vendor_address, font=regular, size=small, align=valign,
            mark="vendor_address")
    contact = f"Tel. +{rng.randint(1, 49)} {rng.randint(20, 99)} {rng.randint(100000, 9999999)}"
    if rng.random() < 0.6:
        cv.text(vx, top + vendor_size * 0.6 + small * 2.9, contact, font=regular, size=small, align=valign)
    cv.text(width - margin if vendor_left else margin, top, title, font=bold, size=title_size,
            align="right" if vendor_left else "left")
    values["vendor_name"] = (vendor, None)
    values["vendor_address"] = (vendor_address, None)

    # meta block (number, dates) and customer
    number = rng.choice([
        f"INV-{rng.randint(2019, 2026)}-{rng.randint(1, 9999):04d}", f"{rng.randint(2019, 2026)}/{rng.randint(1, 99999):05d}",
        f"A-{rng.randint(1000, 999999):06d}", f"RE{rng.randint(10000, 99999)}", f"F{rng.randint(19, 26)}-{rng.randint(1, 9999):04d}",
    ])
    issued = vocab.date(rng)
    meta: list[tuple[str, str, str, str | None]] = [
        ("invoice_number", rng.choice(words["invoice_number"]), number, None),
        ("invoice_date", rng.choice(words["invoice_date"]), _date(issued, date_style, language), issued.isoformat()),
    ]
    if rng.random() < 0.6:
        due = issued + dt.timedelta(days=rng.choice([7, 14, 30, 45, 60]))
        meta.append(("due_date", rng.choice(words["due_date"]), _date(due, date_style, language), due.isoformat()))
    if rng.random() < 0.3:  # the date first
        meta[0], meta[1] = meta[1], meta[0]
    customer = vocab.company(rng) if rng.random() < 0.7 else vocab.person(rng)
    customer_label = rng.choice(words["customer"])
    leading = size * rng.uniform(1.55, 1.9)
    block_top = top + vendor_size + small * 3 + rng.uniform(28, 60)
    half = width / 2
    meta_left = rng.random() < 0.5
    label_w = max(Canvas.measure(label, bold, size) for _, label, _, _ in meta) + rng.uniform(12, 30)
    mx = margin if meta_left else half + rng.uniform(0, 40)
    space = Canvas.measure(" ", bold, size)
    if inline_meta and max(Canvas.measure(label, bold, size) + space + Canvas.measure(value, regular, size)
                           for _, label, value, _ in meta) > half - margin - 20:
        inline_meta = False  # too wide to leave the other column clear
    # where each value starts, right of its label: one space after it, or the column of values
    offsets = [Canvas.measure(label, bold, size) + space if inline_meta else label_w for _, label, _, _ in meta]
    meta_w = max(o + Canvas.measure(value, regular, size) for o, (_, _, value, _) in zip(offsets, meta, strict=True))
    if not meta_left:
        mx = min(mx, width - margin - meta_w)  # a long date ("13 de noviembre de 2026") stays on the page
    y = block_top
    for offset, (key, label, value, normalized) in zip(offsets, meta, strict=True):
        cv.text(mx, y, label, font=bold, size=size)
        cv.text(mx + offset, y, value, font=regular, size=size, mark=key)
        values[key] = (value, normalized)
        y += leading
    meta_bottom = y
    cx = half + rng.uniform(0, 40) if meta_left else margin
    if meta_left:
        cx = max(cx, mx + meta_w + 12)  # long labels ("Date limite de paiement :") push the customer right
    y = block_top
    above = rng.random() < 0.5  # label above the customer's name and address
    lw = 0.0 if above else Canvas.measure(customer_label, bold, size) + rng.uniform(8, 20)
    if cx + lw + Canvas.measure(customer, regular, size) > (width - margin if meta_left else mx - 12):
        above = True  # the label beside the name would run into the other column or off the page
    if above:
        cv.text(cx, y, customer_label, font=bold, size=size)
        y += leading
        cv.text(cx, y, customer, font=regular, size=size, mark="customer_name")
    else:
        cv.text(cx, y, customer_label, font=bold, size=size)
        cv.text(cx + lw, y, customer, font=regular, size=size, mark="customer_name")
        cx += lw
    y += leading
    street, _, city = vocab.address(rng).partition(", ")
    cv.text(cx, y, street, font=regular, size=small)
    cv.text(cx, y + leading, city, font=regular, size=small)
    values["customer_name"] = (customer, None)
    y = max(meta_bottom, y + 2 * leading) + rng.uniform(18, 40)

    # line items
    n_items = rng.randint(2, 6)
    items = []
    for product in rng.sample(vocab.PRODUCTS, n_items):
        qty = rng.choice([1, 1, 2, 3, 4, 5, 8, 10, 12, 20, 25])
        price = round(rng.choice([rng.uniform(1.5, 40), rng.uniform(40, 400), rng.uniform(400, 2500)]), 2)
        items.append((product, qty, price, round(qty * price, 2)))
    subtotal = round(sum(it[3] for it in items), 2)
    rate = rng.choice([0.05, 0.07, 0.08, 0.1, 0.19, 0.2, 0.21])
    tax = round(subtotal * rate, 2)
    total = round(subtotal + tax, 2)
    numbered = rng.random() < 0.3
    heads = [
        rng.choice(words["description"]), rng.choice(words["quantity"]), rng.choice(words["unit_price"]),
        rng.choice(words["line_total"]) + (f" ({loc.currency})" if rng.random() < 0.4 else ""),
    ]
    if numbered:
        heads.insert(0, rng.choice(words["position"]))
    cells = [_Cell(0, c, h, header=True) for c, h in enumerate(heads)]
    for r, (product, qty, price, amount) in enumerate(items, start=1):
        texts = [product, str(qty), _number(price, loc.number), _number(amount, loc.number)]
        if numbered:
            texts.insert(0, str(r))
        cells += [_Cell(r, c, t) for c, t in enumerate(texts)]
    aligns: list[Align] = ["left", "right", "right", "right"]
    if numbered:
        aligns.insert(0, "right")
    table_size = size
    table_width = width - 2 * margin
    widths = _column_widths(cells, len(heads), family, table_size)
    desc = 1 if numbered else 0
    while sum(widths) > table_width and table_size > 6:
        table_size -= 0.5
        widths = _column_widths(cells, len(heads), family, table_size)
    widths[desc] += table_width - sum(widths)
    style: TableStyle = rng.choice(["grid", "grid", "rows"])
    table, bottom = _draw_table(cv, key="items", x=margin, y=y, widths=widths, row_height=table_size * rng.uniform(1.8, 2.3),
                                cells=cells, aligns=aligns, family=family, size=table_size, style=style,
                                shade=rng.random() < 0.4)

    # totals, right-aligned under the amount column
    right = width - margin - max(3.0, table_size * 0.45)
    y = bottom + rng.uniform(18, 30)
    pct = f"{rate * 100:g}" + (" %" if language == "fr" else "%")
    lines: list[tuple[str, str, float]] = [
        ("subtotal", rng.choice(words["subtotal"]), subtotal),
        ("tax", rng.choice(words["tax"]).format(pct=pct), tax),
        ("total", rng.choice(words["total"]), total),
    ]
    printed = [_money(v, loc) for _, _, v in lines]
    value_w = max(Canvas.measure(p[0], bold, size) for p in printed)
    label_right = right - value_w - rng.uniform(14, 30)
    for (key, label, amount_value), (text, amount_span, currency_span) in zip(lines, printed, strict=True):
        is_total = key == "total"
        if is_total:
            cv.line(label_right - Canvas.measure(label, bold, size), y - size * 1.2, right, y - size * 1.2, width=0.6)
        parts = {key: amount_span}
        if is_total:
            parts["currency"] = currency_span
        at = right - Canvas.measure(text, bold if is_total else regular, size) - space if inline_totals else label_right
        cv.text(at, y, label, font=bold, size=size, align="right")
        cv.text(right, y, text, font=bold if is_total else regular, size=size, align="right", parts=parts)
        values[key] = (amount_value, None)
        y += leading
    values["currency"] = (loc.currency, None)

    days = rng.choice([14, 30])
    iban = (f"{_IBAN_COUNTRY[language]}{rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)} "
            f"{rng.randint(1000, 9999)} {rng.randint(1000, 9999)} {rng.randint(10, 99)}")
    footer = rng.choice(words["footer"]).format(days=days, iban=iban)
    cv.text(margin, height - margin, footer, font=regular, size=small - 0.5)
    return _finish(cv, DocumentKind.INVOICE, seed, f"Invoice {number}", values, tables=[table], language=language)


# forms -----------------------------------------------------------------------------------------------
_FORM_LABELS: dict[str, tuple[str, ...]] = {
    "full_name": ("Full name", "Name", "Applicant name", "Policyholder", "Insured person"),
    "date_of_birth": ("Date of birth", "DOB", "Birth date"),
    "policy_number": ("Policy number", "Policy No.", "Policy #", "Contract number"),
    "email": ("Email", "E-mail address", "Email address"),
    "phone": ("Phone", "Telephone", "Phone number", "Mobile"),
    "amount": ("Amount claimed", "Claim amount", "Amount", "Sum insured", "Premium"),
}
_FORM_DISTRACTORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Agent code", ("AG-1042", "K-77", "B3310")),
    ("Branch", ("Central", "North", "Harbour", "Online")),
    ("Reference", ("REF 2291", "Q-8812", "CL/2024/118")),
    ("Occupation", ("Engineer", "Teacher", "Nurse", "Accountant", "Chef")),
    ("Nationality", ("German", "French", "Irish", "Dutch", "Canadian")),
    ("Claim type", ("Water damage", "Theft", "Accident", "Storm")),
)


def generate_form(seed: int) -> SyntheticDocument:
    """A one-page filled-in form: key-value pairs in one or two columns.

    Labels vary ("Full name" / "Applicant name" / ...), as do the style (``label: value`` on one line, a small
    label above the value, or values in ruled boxes), fonts and field order; a few fields that are not in
    `FormFields` are mixed in. Truth keys are `FormFields`'s field names.

    Args:
        seed: any integer; the same seed gives the same bytes and truth.
    """
    rng = random.Random(f"form:{seed}")
    width, height = _page_size(rng)
    cv = Canvas(width, height)
    regular, bold = FONTS[rng.choice(list(FONTS))]
    size = rng.choice([9.5, 10.0, 10.5, 11.0, 12.0])
    margin = rng.uniform(45, 70)
    loc = rng.choice(_LOCALES)
    first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
    name = f"{first} {last}" if rng.random() < 0.8 else f"{last.upper()}, {first}"
    birth = vocab.date(rng, 1940, 2005)
    amount = round(rng.choice([rng.uniform(50, 900), rng.uniform(900, 25000), float(rng.randint(1, 500) * 100)]), 2)
    money, amount_span, _ = _money(amount, loc)
    phone = rng.choice([
        f"+1 ({rng.randint(200, 989)}) 555-{rng.randint(0, 9999):04d}", f"+49 {rng.randint(30, 89)} {rng.randint(1000000, 9999999)}",
        f"0{rng.randint(20, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}", f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
    ])
    policy = rng.choice([
        f"PL-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}", f"AX{rng.randint(10000000, 99999999)}",
        f"H{rng.randint(2015, 2026)}/{rng.randint(1, 99999):05d}", f"{rng.randint(100, 999)}-{rng.randint(100000, 999999)}",
    ])
    email = f"{first.lower()}.{last.lower()}@{rng.choice(vocab.EMAIL_DOMAINS)}"
    date_style = rng.choice(loc.dates)
    printed = _date(birth, date_style)
    # key -> (text printed, true value, normalized value, the value's span in the printed text)
    truth: dict[str, tuple[str, float | str, str | None, tuple[int, int]]] = {
        "full_name": (name, name, None, (0, len(name))),
        "date_of_birth": (printed, printed, birth.isoformat(), (0, len(printed))),
        "policy_number": (policy, policy, None, (0, len(policy))),
        "email": (email, email, None, (0, len(email))),
        "phone": (phone, phone, None, (0, len(phone))),
        "amount": (money, amount, None, amount_span),
    }
    entries: list[tuple[str | None, str, str]] = [(k, rng.choice(_FORM_LABELS[k]), truth[k][0]) for k in truth]
    for label, options in rng.sample(_FORM_DISTRACTORS, rng.randint(0, 3)):
        entries.append((None, label, rng.choice(options)))
    rng.shuffle(entries)

    title = rng.choice(["Insurance Claim Form", "Policy Application", "Customer Registration", "Change of Details Request",
                        "Travel Insurance Claim", "Membership Application"])
    title_size = rng.uniform(15, 21)
    y = margin + title_size
    cv.text(margin, y, title, font=bold, size=title_size)
    cv.text(width - margin, y, f"Form {rng.choice('ABCHKX')}-{rng.randint(1, 99)} ({rng.randint(1, 12):02d}/{rng.randint(2018, 2026)})",
            font=regular, size=size - 2, align="right")
    y += size * 2.2
    cv.text(margin, y, rng.choice(["Please complete all fields in block capitals.", "Section A: personal details",
                                   "To be completed by the applicant."]), font=regular, size=size - 1)
    y += size * 2.5

    style: str = rng.choice(["inline", "stacked", "boxed"])
    two_columns = rng.random() < 0.5
    colon = rng.random() < 0.7 and style != "stacked"
    label_gap = rng.uniform(10, 24)
    gap = 24.0
    base_size = size

    def layout(size: float, two: bool, style: str) -> tuple[float, list[float]] | None:
        """Column width and per-column label widths when every label and value fits, else None."""
        col_w = (width - 2 * margin - (gap if two else 0)) / (2 if two else 1)
        label_size = size - 2 if style == "stacked" else size
        label_ws = []
        for column in ([entries[0::2], entries[1::2]] if two else [entries]):
            label_w = max(Canvas.measure(lb + (":" if colon else ""), bold, label_size) for _, lb, _ in column) + label_gap
            room = col_w - (0 if style == "stacked" else label_w) - 10
            if max(Canvas.measure(v, regular, size) for _, _, v in column) > room:
                return None
            label_ws.append(label_w)
        return col_w, label_ws

    # shrink the text (down to 8.5 pt) until it fits; else one column; else labels above values
    layouts: list[tuple[bool, str]] = [(two_columns, style), (False, style), (False, "stacked")]
    for two_columns, style in layouts:
        size = base_size
        fitted = layout(size, two_columns, style)
        while fitted is None and size > 8.5:
            size -= 0.5
            fitted = layout(size, two_columns, style)
        if fitted is not None:
            break
    if fitted is None:
        raise RuntimeError(f"synthetic layout bug: form {seed} does not fit its page")
    col_w, label_ws = fitted
    label_size = size - 2 if style == "stacked" else size
    gray = (0.35, 0.35, 0.35)
    bottom = y
    for ci, column in enumerate([entries[0::2], entries[1::2]] if two_columns else [entries]):
        x = margin + ci * (col_w + gap)
        yy = y
        for key, label, value in column:
            label = label + (":" if colon else "")
            if style == "stacked":
                cv.text(x, yy, label, font=bold, size=label_size, color=gray)
                yy += size * 1.5
                vx = x
            else:
                cv.text(x, yy, label, font=bold, size=label_size)
                vx = x + label_ws[ci]
                if style == "boxed":
                    cv.rect(vx - 4, yy - size * 1.15, x + col_w, yy + size * 0.55, width=0.6, color=(0.3, 0.3, 0.3))
            cv.text(vx, yy, value, font=regular, size=size, parts=None if key is None else {key: truth[key][3]})
            yy += size * (2.6 if style != "inline" else 2.1)
        bottom = max(bottom, yy)
    y = bottom + size * 2
    cv.text(margin, y + 20, "Signature:", font=bold, size=size)
    cv.line(margin + Canvas.measure("Signature:", bold, size) + 10, y + 22, margin + 260, y + 22, width=0.5)
    values = {key: (t[1], t[2]) for key, t in truth.items()}
    return _finish(cv, DocumentKind.FORM, seed, title, values)


# table pages -----------------------------------------------------------------------------------------
_TABLE_THEMES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Revenue by region", "Region", ("North", "South", "East", "West", "Central", "Online", "Export", "Retail"),
     ("Q1", "Q2", "Q3", "Q4", "H1", "H2")),
    ("Inventory status", "Product", tuple(p for p in vocab.PRODUCTS if "," not in p),
     ("Stock", "Reserved", "Ordered", "Price", "Value")),
    ("Laboratory measurements", "Sample", tuple(f"S-{i:03d}" for i in range(1, 60)),
     ("pH", "Temp", "Conductivity", "Turbidity", "Nitrate")),
    ("Staff hours", "Employee", tuple(f"{first} {last}" for first, last in zip(vocab.FIRST_NAMES, vocab.LAST_NAMES, strict=False)),
     ("Mon", "Tue", "Wed", "Thu", "Fri", "Total")),
    ("Fleet utilisation", "Vehicle", tuple(f"Truck {i}" for i in range(1, 40)), ("Trips", "Distance", "Fuel", "Idle")),
)


def generate_table_page(seed: int, *, ruled: bool | None = True) -> SyntheticDocument:
    """A page with a captioned table (header row; sometimes a two-level header with a cell spanning columns and
    one spanning rows) between lines of text.

    Args:
        seed: any integer; the same seed gives the same bytes and truth.
        ruled: ``True`` draws every cell border, ``False`` none (a borderless table), ``None`` lets the seed
            choose (also between full grids and horizontal rules only).

    The truth is ``tables[0]`` (cell boxes are the grid cells) and ``fields["caption"]``.
    """
    rng = random.Random(f"table:{seed}")
    width, height = _page_size(rng)
    cv = Canvas(width, height)
    family = FONTS[rng.choice(list(FONTS))]
    regular, bold = family
    size = rng.choice([8.5, 9.0, 9.5, 10.0, 11.0])
    margin = rng.uniform(45, 72)
    if ruled is None:
        style: TableStyle = rng.choice(["grid", "grid", "rows", "none"])
    else:
        style = "grid" if ruled else "none"
    theme, first_head, labels, metrics = rng.choice(_TABLE_THEMES)
    n_values = rng.randint(2, min(5, len(metrics)))
    heads = list(metrics[:n_values]) if rng.random() < 0.5 else rng.sample(metrics, n_values)
    n_body = rng.randint(3, 12)
    row_labels = rng.sample(labels, min(n_body, len(labels)))
    decimals = rng.choice([0, 1, 2])
    grouped = n_values >= 2 and rng.random() < 0.45

    cells: list[_Cell] = []
    if grouped:
        cells.append(_Cell(0, 0, first_head, row_span=2, header=True))
        split = rng.randint(1, n_values - 1) if n_values >= 4 and rng.random() < 0.5 else n_values
        groups = [(1, split), (split + 1, n_values)] if split < n_values else [(1, n_values)]
        years = rng.sample(range(2018, 2027), len(groups))
        for (start, end), year in zip(groups, sorted(years), strict=True):
            name = rng.choice([str(year), f"FY {year}", "Measured", "Actual", "Plan"]) if len(groups) == 1 else str(year)
            cells.append(_Cell(0, start, name, col_span=end - start + 1, header=True))
        cells += [_Cell(1, c + 1, h, header=True) for c, h in enumerate(heads)]
        first_body = 2
    else:
        cells += [_Cell(0, c, h, header=True) for c, h in enumerate([first_head, *heads])]
        first_body = 1
    for r, label in enumerate(row_labels):
        row = first_body + r
        cells.append(_Cell(row, 0, label))
        for c in range(n_values):
            value = rng.uniform(0, 10 ** rng.randint(1, 4))
            text = f"{value:,.{decimals}f}" if rng.random() > 0.05 else "-"
            cells.append(_Cell(row, c + 1, text))
    right: Align = "right"
    aligns: list[Align] = ["left", *[right] * n_values]
    widths = _column_widths(cells, n_values + 1, family, size)
    available = width - 2 * margin
    while sum(widths) > available and size > 6:
        size -= 0.5
        widths = _column_widths(cells, n_values + 1, family, size)
    if style != "none" and rng.random() < 0.5:  # stretch to the text width
        extra = (available - sum(widths)) / len(widths)
        widths = [w + extra for w in widths]
    elif style == "none":
        widths = [w + rng.uniform(6, 18) for w in widths]
    x = margin if rng.random() < 0.6 else (width - sum(widths)) / 2

    y = margin + 14
    heading = rng.choice(vocab.TOPICS)
    cv.text(margin, y, heading, font=bold, size=size + 5)
    y += size * 2.4
    for line in _wrap(vocab.paragraph(rng, (2, 3)), regular, size, available):
        cv.text(margin, y, line, font=regular, size=size)
        y += size * 1.35
    y += size * 1.6
    caption = f"Table {rng.randint(1, 12)}: {theme}" + (f", {rng.randint(2018, 2026)}" if rng.random() < 0.5 else "")
    cv.text(x, y, caption, font=bold if rng.random() < 0.5 else regular, size=size, mark="caption")
    y += size * 1.0
    table, bottom = _draw_table(cv, key="table", x=x, y=y, widths=widths, row_height=size * rng.uniform(1.7, 2.2),
                                cells=cells, aligns=aligns, family=family, size=size, style=style,
                                shade=style != "none" and rng.random() < 0.3, caption=caption)
    y = bottom + size * 2.2
    if rng.random() < 0.7:
        cv.text(margin, y, rng.choice(["Source: internal reporting.", "Figures are provisional.",
                                       "All values rounded."]), font=regular, size=size - 1)
    return _finish(cv, DocumentKind.TABLE, seed, theme, {"caption": (caption, None)}, tables=[table])


# multi-column text -----------------------------------------------------------------------------------
def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and Canvas.measure(trial, font, size) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def generate_columns_page(seed: int, *, columns: int | None = None) -> SyntheticDocument:
    """A page of running text: a title across the top, then two or three columns of headings and paragraphs.

    Paragraphs flow from column to column (a paragraph cut by a column end becomes two blocks). The truth
    is ``blocks`` in reading order (title, then each column top to bottom) and ``fields["title"]``.

    Args:
        seed: any integer; the same seed gives the same bytes and truth.
        columns: 2 or 3; chosen by the seed when ``None``.
    """
    rng = random.Random(f"columns:{seed}")
    if columns is None:
        columns = rng.choice([2, 2, 3])
    if columns not in (2, 3):
        raise UsageError(f"columns must be 2 or 3, got {columns}")
    width, height = _page_size(rng)
    cv = Canvas(width, height)
    regular, bold = FONTS[rng.choice(["helv", "times", "times"])]
    size = rng.choice([8.5, 9.0, 9.5, 10.0]) if columns == 3 else rng.choice([9.0, 9.5, 10.0, 10.5])
    leading = size * rng.uniform(1.2, 1.4)
    margin = rng.uniform(40, 60)
    gap = rng.uniform(14, 26)
    col_w = (width - 2 * margin - gap * (columns - 1)) / columns
    blocks: list[tuple[str, str, int | None]] = []

    title = rng.choice(vocab.TOPICS) + rng.choice(["", " in Practice", ": Annual Review", ": What Changed"])
    title_size = rng.uniform(18, 24)
    y = margin + title_size
    cv.text(margin, y, title, font=bold, size=title_size, mark="title")
    blocks.append(("title", "title", None))
    y += size * 1.8
    cv.text(margin, y, f"By {vocab.person(rng)} | {_date(vocab.date(rng), 'eu_long')}", font=regular, size=size - 1)
    body_top = y + size * 2.2
    body_bottom = height - margin

    col, yy = 0, body_top + size
    n = 0

    def new_column() -> bool:
        nonlocal col, yy
        col += 1
        yy = body_top + size
        return col < columns

    done = False
    while not done:
        if rng.random() < 0.35 and yy + leading * 4 < body_bottom:  # a section heading
            heading = rng.choice(vocab.TOPICS)
            if Canvas.measure(heading, bold, size + 1.5) <= col_w:
                x = margin + col * (col_w + gap)
                cv.text(x, yy, heading, font=bold, size=size + 1.5, mark=f"b{n}")
                blocks.append((f"b{n}", "heading", col))
                n += 1
                yy += leading * 1.5
        lines = _wrap(vocab.paragraph(rng), regular, size, col_w)
        while lines:
            room = int((body_bottom - yy) // leading) + 1
            if room <= 0:
                if not new_column():
                    done = True
                    break
                continue
            chunk, lines = lines[:room], lines[room:]
            x = margin + col * (col_w + gap)
            top = yy - size
            for line in chunk:
                cv.text(x, yy, line, font=regular, size=size)
                yy += leading
            cv.mark(f"b{n}", " ".join(chunk), (x, top, x + col_w, yy - leading + size * 0.35))
            blocks.append((f"b{n}", "paragraph", col))
            n += 1
            if lines and not new_column():
                done = True
                break
        yy += leading * 0.8
        if yy + leading * 2 > body_bottom and not new_column():
            done = True
    return _finish(cv, DocumentKind.COLUMNS, seed, title, {"title": (title, None)}, blocks=blocks)


# datasets --------------------------------------------------------------------------------------------
def generate(kind: DocumentKind | str, seed: int) -> SyntheticDocument:
    """One document of ``kind`` (tables: ruling chosen by the seed; columns: 2 or 3 chosen by the seed)."""
    k = _kind(kind)
    if k is DocumentKind.INVOICE:
        return generate_invoice(seed)
    if k is DocumentKind.FORM:
        return generate_form(seed)
    if k is DocumentKind.TABLE:
        return generate_table_page(seed, ruled=None)
    return generate_columns_page(seed)


def generate_dataset(kind: DocumentKind | str, n: int, seed: int = 0) -> Iterator[SyntheticDocument]:
    """``n`` documents of ``kind``, generated lazily.

    Document ``i`` is ``generate(kind, seed * 2**20 + i)``, so datasets with different seeds do not share
    documents (for ``n`` up to about a million) and any one document can be regenerated alone.

    Raises:
        UsageError: an unknown kind or a negative ``n``.
    """
    k = _kind(kind)
    if n < 0:
        raise UsageError(f"n must be >= 0, got {n}")
    for i in range(n):
        yield generate(k, seed * _SEED_STRIDE + i)


def _kind(kind: DocumentKind | str) -> DocumentKind:
    try:
        return DocumentKind(kind)
    except ValueError:
        raise UsageError(f"unknown document kind {kind!r}",
                         hint="use one of " + ", ".join(repr(k.value) for k in DocumentKind)) from None

