"""Extraction, questions and text grounding on the text layer: the LMDX-style text-grounded path."""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import docvlm as dv
from docvlm.models import FunctionInfo, FunctionModel, Message
from docvlm.samples import INVOICE
from docvlm.tasks.ask import ask, ground_text, read
from docvlm.tasks.extract import Extraction, FieldNotFoundError, extract


class Item(BaseModel):
    description: str
    quantity: int
    unit_price: float
    amount: float


class Invoice(BaseModel):
    vendor: str = Field(description="the company that issued the invoice")
    invoice_number: str
    date: dt.date
    total: float
    po_number: str | None = Field(default=None, description="purchase order number")
    items: list[Item] = []


def choices(info: FunctionInfo) -> dict[str, tuple[Any, ...]]:
    """The values the constraint allows for each field of the answer model docvlm built."""
    out = {}
    for name, f in info.output_type.model_fields.items():
        args = [a for a in typing.get_args(f.annotation) if a is not type(None)]
        out[f.alias or name] = typing.get_args(args[0]) if args and typing.get_origin(args[0]) is Literal else ()
    return out


def oracle(messages: list[Message], info: FunctionInfo) -> dict[str, Any]:
    """Answers like a perfect model: the true value where the constraint offers it, else null."""
    truth = {"vendor": INVOICE["vendor"], "invoice_number": INVOICE["invoice_number"], "date": INVOICE["date"],
             "total": INVOICE["total"]}
    answer = {}
    for alias, options in choices(info).items():
        answer[alias] = truth.get(alias) if truth.get(alias) in options else None
    return answer


@pytest.fixture(scope="module")
def page() -> dv.Page:
    return dv.open(dv.samples.invoice_pdf())[0]


def word_box(page: dv.Page, text: str) -> dv.BoundingBox:
    return next(w.box for w in page.words() if w.text == text)


def test_extract_fills_the_schema_with_glyph_exact_evidence(page: dv.Page) -> None:
    result = extract(FunctionModel(oracle), page.document, Invoice)
    assert isinstance(result, Extraction)
    v = result.value
    assert (v.vendor, v.invoice_number, v.date, v.total) == ("Acme Tools GmbH", "INV-2026-0042", dt.date(2026, 11, 2), 145.78)
    assert v.po_number is None and "po_number" not in result.evidence  # absent: no invented evidence
    total = result.evidence["total"]
    assert total.page == 0 and total.quote == "145.78"
    assert total.box is not None and total.box.iou(word_box(page, "145.78")) > 0.999
    assert result.evidence["invoice_number"].box.iou(word_box(page, "INV-2026-0042")) > 0.999  # type: ignore[union-attr]
    # line items come from the ruled table, each cell with evidence
    assert [(i.description, i.quantity, i.unit_price, i.amount) for i in v.items] == [
        (it["description"], it["quantity"], float(it["unit_price"]), float(it["amount"])) for it in INVOICE["items"]
    ]
    assert result.evidence["items[1].amount"].quote == "64.00"


def test_the_constraint_only_offers_values_printed_in_the_document(page: dv.Page) -> None:
    seen: dict[str, tuple[Any, ...]] = {}

    def spy(messages: list[Message], info: FunctionInfo) -> dict[str, Any]:
        seen.update(choices(info))
        return oracle(messages, info)

    extract(FunctionModel(spy), page, Invoice, max_choices=None)
    assert {"145.78", "122.50", "23.28"} <= set(seen["total"])  # every printed amount outside the tables
    assert not {"EUR 145.78", "EUR 122.50"} & set(seen["total"])  # one text per amount: its own words
    assert "18.75" not in seen["total"]  # line-item cells are read from the table, not offered for the total
    assert not any(o.endswith(":") for o in seen["invoice_number"])  # labels are never values
    assert seen["date"] == ("2026-11-02",)
    assert "Acme Tools GmbH" in seen["vendor"] and "INV-2026-0042" in seen["invoice_number"]


def test_the_learned_ranking_offers_the_value_first_and_the_model_chooses_among_a_few(page: dv.Page) -> None:
    """The ranker puts each field's value first (the amount after "Total:" for total, the code under "Invoice
    number:" for invoice_number); the model is offered at most ``max_choices`` values per field."""
    seen: dict[str, tuple[Any, ...]] = {}

    def spy(messages: list[Message], info: FunctionInfo) -> dict[str, Any]:
        seen.update(choices(info))
        return oracle(messages, info)

    result = extract(FunctionModel(spy), page, Invoice)
    assert seen["total"][0] == "145.78" and seen["invoice_number"][0] == "INV-2026-0042"
    assert seen["vendor"][0] == "Acme Tools GmbH" and seen["date"] == ("2026-11-02",)
    assert all(len(options) <= 5 for options in seen.values())
    assert result.value.total == 145.78
    assert result.evidence["total"].box.iou(word_box(page, "145.78")) > 0.999  # type: ignore[union-attr]
    extract(FunctionModel(spy), page, Invoice, max_choices=2)
    assert all(len(options) <= 2 for options in seen.values())


def test_without_a_model_the_ranking_alone_fills_the_schema(page: dv.Page) -> None:
    result = extract(None, page, Invoice)
    v = result.value
    assert (v.vendor, v.invoice_number, v.date, v.total) == ("Acme Tools GmbH", "INV-2026-0042", dt.date(2026, 11, 2), 145.78)
    assert result.model == "layout" and result.evidence["vendor"].quote == "Acme Tools GmbH"


def test_required_field_absent_is_a_typed_error(page: dv.Page) -> None:
    class Needs(BaseModel):
        iban: str = Field(description="bank account IBAN")

    with pytest.raises(FieldNotFoundError, match="required field not found in the document: iban") as info:
        extract(FunctionModel(lambda m, i: dict.fromkeys(choices(i))), page, Needs)
    assert info.value.fields == ["iban"]


def test_unsupported_field_types_are_rejected(page: dv.Page) -> None:
    class Bad(BaseModel):
        tags: list[str]

    with pytest.raises(dv.UsageError, match="scalar fields, nested models and lists of models"):
        extract(dv.TestModel(), page, Bad)


def test_ask_extractive_answer_with_citation(page: dv.Page) -> None:
    def pick_total(messages: list[Message], info: FunctionInfo) -> str:
        assert "What is the total" in messages[-1].text
        return "EUR 145.78"

    model = FunctionModel(pick_total, supports_images=False)
    answer = ask(model, page.document, "What is the total?")
    assert answer.text == "EUR 145.78"
    (cite,) = answer.citations
    assert cite.page == 0 and cite.quote == "EUR 145.78"
    amount = word_box(page, "145.78")
    eur = next(w.box for w in page.words() if w.text == "EUR" and abs(w.box.y0 - amount.y0) < 1)
    assert cite.box.iou(eur.union(amount)) > 0.999


def test_ground_text_returns_segment_boxes_or_nothing(page: dv.Page) -> None:
    def find(messages: list[Message], info: FunctionInfo) -> dict[str, list[str]]:
        text = messages[-1].text
        line = next(ln for ln in text.splitlines() if "INV-2026-0042" in ln)
        seg_id = line.split("[")[2].split("]")[0]
        return {"ids": [seg_id] if "invoice number" in text else []}

    model = FunctionModel(find, supports_images=False)
    (box,) = ground_text(model, page, "the invoice number")
    assert box.iou(word_box(page, "INV-2026-0042")) > 0.999
    assert ground_text(model, page, "a signature") == []


def test_read_uses_the_text_layer_without_a_model(page: dv.Page) -> None:
    region = word_box(page, "Subtotal:").union(word_box(page, "145.78")).pad(2)
    assert read(None, page, region).splitlines() == ["Subtotal:   EUR 122.50", "Tax (19%):   EUR 23.28", "Total:   EUR 145.78"]
    with pytest.raises(dv.UsageError, match="does not overlap the page"):
        read(None, page, dv.BoundingBox(x0=1000, y0=0, x1=1100, y1=10))


@pytest.mark.slow
def test_default_model_extracts_the_sample_invoice() -> None:
    model = dv.load_model("default")
    result = extract(model, dv.open(dv.samples.invoice_pdf()), Invoice)
    v = result.value
    assert (v.vendor, v.invoice_number, v.date, v.total) == ("Acme Tools GmbH", "INV-2026-0042", dt.date(2026, 11, 2), 145.78)
    assert len(v.items) == 3
    assert result.evidence["vendor"].quote == "Acme Tools GmbH"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["invoice", "form"])
def test_default_model_accuracy_on_a_seeded_subset(kind: str) -> None:
    """Regression guard for the accuracy bench (python -m bench.accuracy): born-digital documents, 4 seeds.

    The thresholds are the issue's targets (>= 0.8 for values and for evidence boxes); the full figures on
    more documents, scans included, are in docs/performance.md.
    """
    from bench.accuracy import score_document, summarize
    from docvlm.synth import FormFields, InvoiceFields, generate_dataset

    schema = {"invoice": InvoiceFields, "form": FormFields}[kind]
    model = dv.load_model("default")
    rows = [score_document(model, d.open(), d.fields, schema) for d in generate_dataset(kind, 4, seed=0)]  # type: ignore[arg-type]
    summary = summarize(rows)
    assert summary["failed_documents"] == 0
    assert summary["field_accuracy"] >= 0.8, summary
    assert summary["evidence_iou50"] >= 0.8, summary


def foreign_invoice_reads(ranker: Any = None, n: int = 30) -> list[bool]:
    """For the first ``n`` invoices of seeds 6000 and up printed in French, German, Spanish, Italian or Dutch, whether
    the layout ranking alone (``ranker``: the shipped one by default) reads the invoice's date and its number."""
    from docvlm.eval.datasets import Invoice2DataFields
    from docvlm.synth import generate_invoice, invoice_language

    seeds = [s for s in range(6000, 6400) if invoice_language(s) != "en"][:n]
    out = []
    for seed in seeds:
        synthetic = generate_invoice(seed)
        got = extract(None, synthetic.open(), Invoice2DataFields, ranker=ranker).value
        out += [got.date is not None and got.date.isoformat() == synthetic.fields["invoice_date"].normalized,
                got.invoice_number == synthetic.fields["invoice_number"].text]
    return out


def test_invoices_labelled_in_other_languages_are_read() -> None:
    """The ranker learned labels from generated invoices in six languages (it saw seeds 1000-1199): on other seeds'
    French, German, Spanish, Italian and Dutch invoices it reads the invoice's own date (not the due date printed
    beside it: "Date :" / "Échéance :", "Rechnungsdatum:" / "Fällig am:") and its number. A ranker trained with
    English wording only (the one before) fails this: it takes the due date or none."""
    reads = foreign_invoice_reads()
    assert sum(reads) / len(reads) >= 0.85, sum(reads)


def test_line_items_from_a_scan_come_from_the_ocr_words() -> None:
    """No vector lines in an image: the table is found from the header words down, and read from OCR."""
    from docvlm.demo import scan_pdf_page

    doc = dv.open(scan_pdf_page(dv.samples.invoice_pdf(), angle=0.4))

    class Items(BaseModel):
        items: list[Item] = []

    result = extract(FunctionModel(lambda m, i: {}), doc, Items)
    assert [(i.description, i.quantity, i.unit_price, i.amount) for i in result.value.items] == [
        (it["description"], it["quantity"], float(it["unit_price"]), float(it["amount"])) for it in INVOICE["items"]
    ]
    box = result.evidence["items[2].amount"].box
    assert box is not None and box.space is dv.Space.PAGE and 0 < box.x0 < box.x1 <= doc[0].width


def test_a_row_whose_required_cell_does_not_read_is_left_out_with_a_warning() -> None:
    import pymupdf

    pdf = pymupdf.open()
    pg = pdf.new_page(width=595, height=842)
    rows = [("Description", "Quantity", "Unit price", "Amount"), ("Bolts", "4", "2.50", "10.00"),
            ("Nuts", "four", "1.00", "4.00"), ("Washers", "10", "0.10", "1.00")]
    x = [50, 250, 350, 450, 550]
    for r, row in enumerate(rows):
        y = 100 + 20 * r
        for c, text in enumerate(row):
            pg.insert_text((x[c] + 4, y + 14), text, fontsize=10)
    for r in range(len(rows) + 1):
        pg.draw_line((x[0], 100 + 20 * r), (x[-1], 100 + 20 * r))
    for xx in x:
        pg.draw_line((xx, 100), (xx, 100 + 20 * len(rows)))

    class Items(BaseModel):
        items: list[Item] = []

    with pytest.warns(dv.errors.RowsSkippedWarning, match=r"items: 1 table row on page 0 left out.*quantity 'four'"):
        result = extract(FunctionModel(lambda m, i: {}), dv.open(pdf.tobytes()), Items)
    assert [i.description for i in result.value.items] == ["Bolts", "Washers"]


def test_a_vision_model_may_write_values_the_text_layer_misspells() -> None:
    """verbatim=False: the model reads the image and writes the value; the evidence is the printed span that spells
    it most closely (here an OCR misreading of the invoice number), or the same number."""
    class Header(BaseModel):
        invoice_number: str
        total: float

    doc = dv.open(dv.samples.invoice_pdf())
    words = [(w.text.replace("INV-2026-0042", "lNV-2O26-0042"), w.box) for w in doc[0].words()]
    doc.use_words({0: words})
    answers: list[Any] = []

    def vlm(messages: list[Message], info: FunctionInfo) -> dict[str, Any]:
        answers.append(info.output_type)
        return {"invoice_number": "INV-2026-0042", "total": 145.78}

    result = extract(FunctionModel(vlm), doc, Header, verbatim=False)
    assert answers == [Header]  # the schema itself is the constraint: the model writes the values
    assert result.value.invoice_number == "INV-2026-0042"
    assert result.evidence["invoice_number"].quote == "lNV-2O26-0042"
    assert result.evidence["total"].quote == "145.78"
    with pytest.raises(dv.UsageError, match="verbatim=False needs a vision model"):
        extract(FunctionModel(vlm, supports_images=False), doc, Header, verbatim=False)


def test_a_number_in_an_address_or_a_phone_is_not_an_amount() -> None:
    """The issue's receipt: a street number, a postcode and a phone number printed above the amounts; the learned
    ranking reads the amounts from their labels and shapes, and the address whole over its two lines."""
    import pymupdf

    class Bill(BaseModel):
        vendor: str
        address: str
        tax: float
        total: float

    doc = pymupdf.open()
    page = doc.new_page(width=300, height=500)
    for y, text, size in [(40, "SUNRISE HARDWARE", 13), (58, "4557 De Silva St", 9), (70, "Fremont, CA 94538", 9),
                          (82, "Tel 510-555-0142", 9), (140, "Hammer 2 x 12.00", 9), (230, "Subtotal: 24.00", 9),
                          (244, "Tax: 2.16", 9), (258, "Total: 26.16", 10)]:
        page.insert_text((30 if y < 100 else 40, y), text, fontsize=size)
    result = extract(None, dv.open(doc.tobytes()), Bill)
    assert (result.value.tax, result.value.total) == (2.16, 26.16)
    assert result.value.vendor == "SUNRISE HARDWARE"
    assert result.value.address == "4557 De Silva St Fremont, CA 94538"



def test_asking_several_questions_builds_the_candidates_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from docvlm.tasks import _rank

    built: list[int] = []
    real = _rank.Candidates.build.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(_rank.Candidates, "build",
                        classmethod(lambda cls, pages: built.append(len(pages)) or real(cls, pages)))
    monkeypatch.setattr(_rank, "_BUILT", type(_rank._BUILT)())
    doc = dv.open(dv.samples.invoice_pdf())
    assert ask(None, doc, "What is the total?").text == ask(None, doc, "What is the total?").text
    ask(None, dv.open(dv.samples.invoice_pdf()), "What is the date?")  # the same words read again: no new build
    assert built == [1]
    doc.use_words({0: [("Total", (10, 10, 40, 20)), ("9.00", (50, 10, 70, 20))]})
    assert ask(None, doc, "What is the total?").text == "9.00" and built == [1, 1]  # other words: built again
    extract(None, doc, Total)  # extraction shares them
    assert built == [1, 1]


class Total(BaseModel):
    total: float


@pytest.mark.parametrize(("question", "answer"), [
    ("When was the invoice issued?", "2026-11-02"),  # a date, though the question's words name the invoice (number)
    ("How much is due?", "EUR 145.78"),  # a number, not the customer's name printed under "Bill to"
    ("Who issued the invoice?", "Acme Tools GmbH|Blue River Labs"),  # a name, not the invoice number
])
def test_the_question_word_asks_for_a_type(question: str, answer: str) -> None:
    from docvlm.tasks.ask import question_spec

    got = ask(None, dv.open(dv.samples.invoice_pdf()), question)
    assert got.text in answer.split("|") and got.citations[0].quote == got.text
    assert question_spec(question).kind == {"When": "date", "How": "num", "Who": "str"}[question.split()[0]]


class Priced(BaseModel):
    total: float
    currency: Literal["USD", "EUR", "GBP"] | None = None
    status: Literal["paid", "overdue"] | None = None


def test_a_literal_printed_only_as_its_symbol_is_read_and_an_unprinted_one_stays_none() -> None:
    doc = dv.open(dv.samples.invoice_pdf())
    doc.use_words({0: [("Invoice", (50, 50, 120, 62)), ("Total:", (50, 600, 90, 612)), ("£12.50", (100, 600, 150, 612))]})
    got = extract(None, doc, Priced)
    assert got.value == Priced(total=12.5, currency="GBP", status=None)
    assert got.evidence["currency"].box == got.evidence["total"].box  # cited where it is printed: the word "£12.50"


def test_a_key_that_ocr_misread_is_still_the_questions_key() -> None:
    """"Fax #;" printed (OCR read the colon as a semicolon) is the key of "What is the Fax #?"; a key that differs by
    more than a few edits per character is not."""
    from docvlm.tasks._rank import Candidates, default_ranker
    from docvlm.tasks.ask import _printed_key

    words: list[tuple[str, tuple[float, float, float, float]]] = []
    for x, y, line in [(50, 100, "Name: John Smith"), (300, 100, "Date: 1/19/82"), (50, 130, "Phone: 212-555-0199"),
                       (300, 130, "Fax #; 816/545-7473"), (50, 160, "Account: Dairy Mart")]:
        for text in line.split():
            words.append((text, (x, y, x + 7 * len(text), y + 12)))
            x += 7 * len(text) + 6
    doc = dv.open(dv.samples.invoice_pdf())
    doc.use_words({0: words})
    cands, _ = Candidates.of_pages([doc[0]])
    found = {name: _printed_key(cands, name, default_ranker()) for name in ("Fax #", "Phone", "Account number")}
    assert cands.spans[found["Fax #"]].text == "Fax #;"  # type: ignore[index]
    assert cands.spans[found["Phone"]].text == "Phone:"  # type: ignore[index]
    assert found["Account number"] is None  # "Account:" is 6 edits from it
    assert ask(None, doc, "What is the Fax #?").text == "816/545-7473"


def test_where_the_key_is_printed_the_link_model_weighs_in() -> None:
    """`ask` adds the link model's log-odds (each span as one of the key's values) to the ranker's score: a link
    model that only likes spans under their key moves the answer there; one that says nothing leaves the ranking's."""
    import numpy as np

    from docvlm.tasks._rank import DIM, Ranker, _hash
    from tests.tasks.test_key_values import form_pdf

    doc = dv.open(form_pdf())
    silent = Ranker(np.zeros(DIM, dtype=np.float32))
    below = np.zeros(DIM, dtype=np.float32)
    below[_hash("pr:below") & (DIM - 1)] = 100.0
    assert ask(None, doc, "What is the Name?", link_model=silent).text == "Maria Rossi"
    moved = ask(None, doc, "What is the Name?", link_model=Ranker(below))
    key = next(w for w in doc[0].words() if w.text == "Name:")
    assert moved.text != "Maria Rossi" and moved.citations[0].box.y0 >= key.box.y1 - 1


def _cand(text: str, score: float, words: set[tuple[int, int]]) -> Any:
    from docvlm.tasks.extract import _Candidate

    return _Candidate(text, text, 0, dv.BoundingBox(x0=0, y0=0, x1=1, y1=1), 0, score, frozenset(words))


def test_fields_whose_values_overlap_are_chosen_together() -> None:
    """An address read from the company's line down (SROIE: "SEGI CASH & CARRY SDN. BHD. PT17920 SEK U9, SHAH
    ALAM" where the company is the first line): the address and the company may not both read the company's words;
    the joint choice of the highest probability keeps the company and takes the address without its first line."""
    from docvlm.tasks.extract import _exclusive, _Leaf

    company, street, city = {(0, 0)}, {(1, 0)}, {(2, 0)}
    ranked = {"company": [_cand("SEGI", 2.0, company), _cand("PT17920", 0.0, street)],
              "address": [_cand("SEGI PT17920 SHAH ALAM", 1.5, company | street | city),
                          _cand("PT17920 SHAH ALAM", 1.2, street | city), _cand("SHAH ALAM", 0.0, city)]}
    log_odds = {"company": (2.5, -3.0), "address": (2.3, -3.0)}
    leaves = [_Leaf(p, p, str, True, None) for p in ranked]
    found = {p: (options[0].value, options[0]) for p, options in ranked.items()}
    out = _exclusive(found, leaves, ranked, log_odds)
    assert {p: v for p, (v, _) in out.items()} == {"company": "SEGI", "address": "PT17920 SHAH ALAM"}
    # where the whole block is much likelier as the address than the company's line as the company, the company
    # takes its next value instead
    ranked["company"] = [_cand("SEGI", 0.1, company), _cand("IKANO", 0.0, {(3, 0)})]
    ranked["address"][0].score = 3.0
    out = _exclusive(found | {"company": (ranked["company"][0].value, ranked["company"][0])}, leaves, ranked, log_odds)
    assert {p: v for p, (v, _) in out.items()} == {"company": "IKANO", "address": "SEGI PT17920 SHAH ALAM"}
    # an optional field whose every other choice is unlikely is left out rather than given a clashing value
    leaves = [_Leaf("company", "company", str | None, False, None), leaves[1]]
    ranked["company"] = [_cand("SEGI", 0.1, company)]
    log_odds["company"] = (2.5, 0.0)
    out = _exclusive({p: (o[0].value, o[0]) for p, o in ranked.items()}, leaves, ranked, log_odds)
    assert "company" not in out and out["address"][0] == "SEGI PT17920 SHAH ALAM"


def test_two_fields_may_read_the_same_value(page: dv.Page) -> None:
    """A total that is also the amount due: the same words are not a clash, only a part of another field's value is."""
    class Due(BaseModel):
        total: float
        amount_due: float | None = None
        vendor: str
        issuer: str | None = None

    for exclusive in (True, False):
        got = extract(None, page, Due, exclusive=exclusive)
        assert got.value.total == got.value.amount_due == 145.78
        assert got.value.vendor == got.value.issuer == "Acme Tools GmbH"
        assert got.evidence["total"].box == got.evidence["amount_due"].box
