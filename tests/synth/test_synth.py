"""The synthetic documents' truth checked against the documents themselves: text layer, rendering and OCR."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import re

import numpy as np
import pytest
from PIL import Image

import docvlm as dv
from docvlm.synth import (
    DocumentKind,
    FormFields,
    InvoiceFields,
    ScannedDocument,
    SyntheticDocument,
    generate,
    generate_columns_page,
    generate_dataset,
    generate_form,
    generate_invoice,
    generate_table_page,
    invoice_language,
    scan,
)
from docvlm.synth._vocab import INVOICE_LANGUAGES, INVOICE_WORDS, MONTHS_IN
from docvlm.types.geometry import BoundingBox

SEEDS = range(12)


def words_in(words: dv.WordList, box: BoundingBox, pad: float = 0.5) -> str:
    """The words whose centre lies in ``box``, in text-layer order."""
    area = box.pad(pad)
    return " ".join(w.text for w in words if area.x0 <= w.box.center[0] <= area.x1 and area.y0 <= w.box.center[1] <= area.y1)


def parse_amount(text: str) -> float:
    """An amount as a reader parses it: currency marks dropped, the last '.' or ',' before two digits is decimal."""
    t = re.sub(r"[$£€]|EUR|USD|GBP|CHF", "", text).strip()
    m = re.fullmatch(r"([\d.,' ]*?)[.,](\d{2})", t)
    assert m, text
    return float(re.sub(r"\D", "", m.group(1)) + "." + m.group(2))


DATE_FORMATS = ("%m/%d/%Y", "%B %d, %Y", "%b %d, %Y", "%Y-%m-%d", "%d/%m/%Y", "%d %B %Y", "%d.%m.%Y", "%d-%b-%Y",
                "%d-%m-%Y", "%d. %B %Y")


def parse_dates(text: str) -> set[str]:
    """Every date ``text`` reads as in one of `DATE_FORMATS`, month names of the invoices' other languages read as
    their English names ("1er février 2014", "7 de mayo de 2014" as "1 February 2014", "7 May 2014")."""
    english = MONTHS_IN["en"]
    for language, months in MONTHS_IN.items():
        if language != "en":
            text = " ".join(english[months.index(w)] if w in months else w for w in text.split())
    text = re.sub(r"^1er ", "1 ", text).replace(" de ", " ")
    out = set()
    for fmt in DATE_FORMATS:
        with contextlib.suppress(ValueError):
            out.add(dt.datetime.strptime(text, fmt).date().isoformat())
    return out


ALL_KINDS = [
    *(generate_invoice(s) for s in SEEDS),
    *(generate_form(s) for s in SEEDS),
    *(generate_table_page(s, ruled=r) for s in SEEDS for r in (True, False)),
    *(generate_columns_page(s) for s in SEEDS[:6]),
]


# determinism ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(DocumentKind))
def test_same_seed_same_document(kind: DocumentKind) -> None:
    a, b = generate(kind, 5), generate(kind, 5)
    assert a.pdf == b.pdf and a == b
    c = generate(kind, 6)
    assert c.pdf != a.pdf and c.fields != a.fields


def test_same_seed_same_scan() -> None:
    doc = generate_form(3)
    a, b = scan(doc, seed=9), scan(doc, seed=9)
    assert a.image_bytes == b.image_bytes and a == b
    c = scan(doc, seed=10)
    assert c.image_bytes != a.image_bytes and c.angle != a.angle


def test_datasets_are_lazy_reproducible_and_disjoint() -> None:
    docs = list(generate_dataset("invoice", 3, seed=1))
    assert [d.seed for d in docs] == [2**20, 2**20 + 1, 2**20 + 2]
    assert docs[2] == generate_invoice(2**20 + 2)
    other = {d.pdf for d in generate_dataset("invoice", 3, seed=0)}
    assert not other & {d.pdf for d in docs}
    assert {d.kind for d in generate_dataset("table", 4)} == {DocumentKind.TABLE}
    with pytest.raises(dv.UsageError, match="unknown document kind 'receipt'"):
        next(generate_dataset("receipt", 1))


def test_json_round_trip() -> None:
    doc = generate_invoice(4)
    again = SyntheticDocument.model_validate_json(doc.model_dump_json())
    assert again == doc and again.pdf == doc.pdf
    scanned = scan(doc, seed=1, dpi=72)
    assert ScannedDocument.model_validate_json(scanned.model_dump_json()) == scanned


# truth against the PDF's text layer ----------------------------------------------------------------------
@pytest.mark.parametrize("doc", ALL_KINDS, ids=lambda d: f"{d.kind.value}-{d.seed}")
def test_truth_boxes_hold_exactly_the_value_words(doc: SyntheticDocument) -> None:
    with doc.open() as pdf:
        page = pdf[0]
        words = page.words()
        assert (page.width, page.height) == doc.page_size.width_height
    assert doc.fields
    for key, truth in doc.fields.items():
        assert truth.page == 0 and truth.box.space is dv.Space.PAGE
        assert words_in(words, truth.box) == truth.text, key
        if isinstance(truth.value, float):
            assert key in ("subtotal", "tax", "total", "amount")
            assert parse_amount(truth.text) == pytest.approx(truth.value, abs=1e-9), key
        elif key == "currency":
            assert truth.value in ("EUR", "USD", "GBP", "CHF")
            assert truth.value in truth.text or {"USD": "$", "GBP": "£", "EUR": "€"}[str(truth.value)] in truth.text
        else:
            assert truth.value == truth.text
        if truth.normalized is not None:
            assert truth.normalized in parse_dates(truth.text), (key, truth.text)
    for table in doc.tables:
        assert table.box is not None and table.page == 0
        for cell in table.cells:
            assert cell.box is not None
            assert words_in(words, cell.box, pad=0) == cell.text, cell.name
            assert table.box.pad(0.01).contains(cell.box)
        # the cells tile the table: their areas add up to the table's, and none overlap (checked by Table)
        assert sum(c.box.area for c in table.cells if c.box) == pytest.approx(table.box.area, rel=1e-9)
    for block in doc.blocks:
        assert words_in(words, block.box) == block.text, block.kind


def test_invoice_truth_is_consistent_and_matches_the_schema() -> None:
    fonts: set[str] = set()
    labels: set[str] = set()
    for seed in range(30):
        doc = generate_invoice(seed)
        keys = set(doc.fields)
        assert keys <= set(InvoiceFields.model_fields) and set(InvoiceFields.model_fields) - keys <= {"due_date"}
        expected = doc.expected()
        assert isinstance(expected, InvoiceFields) and expected.total == doc.fields["total"].value
        (items,) = doc.tables
        assert 3 <= items.n_rows <= 7 and items.header_rows == 1
        amounts = [parse_amount(row[-1]) for row in items.grid()[1:]]
        assert sum(amounts) == pytest.approx(expected.subtotal, abs=0.005)
        assert expected.subtotal + expected.tax == pytest.approx(expected.total, abs=0.005)
        with doc.open() as pdf:
            fonts |= {f[3] for f in pdf[0].fitz_page.get_fonts()}
            text = pdf[0].text()
        labels |= {lb for lb in ("Invoice No.", "Invoice #", "Number:", "Invoice number:") if lb in text}
    assert {"Helvetica", "Times-Roman", "Courier"} <= fonts
    assert len(labels) >= 3


def test_invoices_are_printed_in_six_languages() -> None:
    """Half the seeds print English invoices, the others French, German, Spanish, Italian or Dutch ones: labels,
    month names, number forms and "€" of that language; ``language=`` picks one."""
    assert {invoice_language(s) for s in range(80)} == set(INVOICE_LANGUAGES)
    assert 0.35 < sum(invoice_language(s) == "en" for s in range(400)) / 400 < 0.65
    assert generate_invoice(3) == generate_invoice(3, language=invoice_language(3))
    euro = 0
    for language in INVOICE_LANGUAGES:
        for seed in range(4):
            doc = generate_invoice(seed, language=language)
            assert doc.language == language
            with doc.open() as pdf:
                text = pdf[0].text()
            words = INVOICE_WORDS[language]
            for name in ("title", "invoice_number", "invoice_date", "customer", "subtotal", "total"):
                assert any(label in text for label in words[name]), (language, seed, name)
            euro += "€" in text
            if language != "en" and "/" not in doc.fields["invoice_date"].text and \
                    "-" not in doc.fields["invoice_date"].text and "." not in doc.fields["invoice_date"].text:
                assert any(m in doc.fields["invoice_date"].text for m in MONTHS_IN[language])
            assert doc.expected().total == pytest.approx(parse_amount(doc.fields["total"].text))
    assert euro >= 5  # the euro sign is in the text layer (the base-14 fonts print it)
    with pytest.raises(dv.UsageError, match="no invoice wording for language 'pt'"):
        generate_invoice(1, language="pt")


def test_an_invoice_may_print_a_label_and_its_value_as_one_run_of_text() -> None:
    """About a third of the invoices print "Invoice No.: 2014-0042" / "Total TTC 19,99 €" as one run (one segment of
    the text layer), the others the value in a column of its own; the truth is the value's words either way."""
    from docvlm.tasks.text import document_segments

    drawn = [generate_invoice(s) for s in range(40)]
    assert 5 <= sum(any(d.fields["invoice_number"].text in g.text and g.text != d.fields["invoice_number"].text
                        for g in document_segments(list(d.open()))) for d in drawn) <= 25
    for inline in (True, False):
        doc = generate_invoice(5, language="fr", inline=inline)
        segments = [g.text for g in document_segments(list(doc.open()))]
        for key in ("invoice_number", "invoice_date", "total"):
            value = doc.fields[key].text
            one_run = [g for g in segments if value in g and g != value and g.index(value) > 0]
            assert bool(one_run) == inline, (key, segments)
            if inline:
                label = one_run[0][:one_run[0].index(value)].strip()
                assert label in INVOICE_WORDS["fr"][key]


def test_form_truth_matches_the_schema() -> None:
    for seed in range(20):
        doc = generate_form(seed)
        assert set(doc.fields) == set(FormFields.model_fields)
        expected = doc.expected()
        assert isinstance(expected, FormFields) and "@" in expected.email
        assert isinstance(doc.fields["amount"].value, float)


def test_tables_ruled_borderless_and_spanning_headers() -> None:
    spans = {"col": 0, "row": 0}
    for seed in range(20):
        ruled, plain = generate_table_page(seed, ruled=True), generate_table_page(seed, ruled=False)
        with ruled.open() as a, plain.open() as b:
            assert len(a[0].fitz_page.get_drawings()) > 0
            assert not [d for d in b[0].fitz_page.get_drawings() if d.get("color") is not None]  # no ruling lines
        table = ruled.tables[0]
        assert table.caption == ruled.fields["caption"].value
        assert table.header_rows in (1, 2) and all(c.is_header == (c.row < table.header_rows) for c in table.cells)
        spans["col"] += any(c.col_span > 1 for c in table.cells)
        spans["row"] += any(c.row_span > 1 for c in table.cells)
    assert spans["col"] >= 3 and spans["row"] >= 3
    with pytest.raises(dv.UsageError, match="a table document has no extraction schema"):
        generate_table_page(0).expected()


def test_columns_page_blocks_are_in_reading_order() -> None:
    for seed, columns in [(1, 2), (2, 3), (3, None)]:
        doc = generate_columns_page(seed, columns=columns)
        title, *body = doc.blocks
        assert title.kind == "title" and title.text == doc.fields["title"].value and title.column is None
        cols = [b.column for b in body if b.column is not None]
        assert len(cols) == len(body) and cols == sorted(cols)
        assert (len(set(cols)) == columns) if columns else (len(set(cols)) in (2, 3))
        for a, b in itertools.pairwise(body):
            if a.column == b.column:
                assert a.box.y1 <= b.box.y0  # top to bottom within a column
            else:
                assert a.box.x1 < b.box.x0  # the next column is to the right
        assert sum(len(b.text.split()) for b in body if b.kind == "paragraph") > 300


def test_a_dataset_has_distinct_documents() -> None:
    docs = list(generate_dataset("invoice", 50, seed=7))
    assert len({d.pdf for d in docs}) == 50


# scans -----------------------------------------------------------------------------------------------------
def gray(scanned: ScannedDocument) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(scanned.image_bytes)).convert("L"), dtype=np.float64)


def centroid(darkness: np.ndarray, box: BoundingBox) -> tuple[float, float]:
    """Darkness-weighted centre of the pixels in ``box`` (continuous coordinates: pixel i spans [i, i+1))."""
    x0, y0 = int(np.floor(box.x0)), int(np.floor(box.y0))
    patch = darkness[y0:int(np.ceil(box.y1)), x0:int(np.ceil(box.x1))]
    ys, xs = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
    total = patch.sum()
    assert total > 0
    return (x0 + 0.5 + float((xs * patch).sum() / total), y0 + 0.5 + float((ys * patch).sum() / total))


def pixel_sum(values: np.ndarray, box: BoundingBox) -> float:
    """Sum of ``values`` over the pixels ``box`` covers, partly covered pixels weighted by the part covered."""
    x0, y0, x1, y1 = box.xyxy
    xs = np.clip(np.minimum(np.arange(values.shape[1]) + 1, x1) - np.maximum(np.arange(values.shape[1]), x0), 0, 1)
    ys = np.clip(np.minimum(np.arange(values.shape[0]) + 1, y1) - np.maximum(np.arange(values.shape[0]), y0), 0, 1)
    return float(ys @ values @ xs)


@pytest.mark.parametrize("angle", [1.4, -1.1])
def test_scan_truth_is_moved_by_the_same_transform_as_the_image(angle: float) -> None:
    doc = generate_invoice(11, language="en", inline=False)  # the invoice this test was written on
    scanned = scan(doc, angle=angle, noise=0, blur=0, dpi=150)
    assert scanned.angle == angle and scanned.format == "png"
    page = scanned.open()[0]
    assert (page.width, page.height) == scanned.image_size.width_height and page.units_per_inch == pytest.approx(150, abs=0.1)
    # the same page rendered straight: where each value's ink is, mapped by the scan's transform
    straight = doc.open()[0].render(dpi=150)
    ref = 255.0 - np.asarray(straight.image.convert("L"), dtype=np.float64)
    out = gray(scanned)
    paper = float(np.median(out))
    dark = np.clip(paper - out, 0, None)
    pixel_to_scan = straight.frame.pixel_to_page.then(scanned.transforms[0])
    errors = []
    for key, truth in doc.fields.items():
        cx, cy = centroid(ref, truth.box.to_pixels(straight.frame))
        expected = pixel_to_scan.apply(cx, cy)
        found = centroid(dark, scanned.fields[key].box)
        errors.append(float(np.hypot(found[0] - expected[0], found[1] - expected[1])))
    assert float(np.median(errors)) < 0.1 and max(errors) < 1.0, errors
    # the scan's box encloses the rotated word: it holds all the ink the word has in the straight rendering
    # (rotation keeps the total ink; the ratio is the scan's contrast, the same for every word)
    ratios = []
    for key, truth in doc.fields.items():
        word_ink = pixel_sum(ref, truth.box.to_pixels(straight.frame))
        ratios.append(pixel_sum(dark, scanned.fields[key].box) / word_ink)
    assert min(ratios) > 0.98 * float(np.median(ratios)), ratios


def test_noisy_scan_truth_lands_on_ink_and_is_read_back_by_ocr() -> None:
    doc = generate_invoice(2)
    scanned = scan(doc, dpi=200, seed=4)
    assert -1.5 <= scanned.angle <= 1.5 and 2 <= scanned.noise <= 8 and 0 <= scanned.blur <= 0.8
    out = gray(scanned)
    paper = float(np.median(out))
    for key, truth in scanned.fields.items():
        b = truth.box
        patch = out[int(b.y0):int(np.ceil(b.y1)), int(b.x0):int(np.ceil(b.x1))]
        assert (patch < paper - 80).mean() > 0.05, key  # ink, not paper and noise
    for cell in scanned.tables[0].cells:
        assert cell.box is not None and cell.text
        c = cell.box
        assert (out[int(c.y0):int(c.y1), int(c.x0):int(c.x1)] < paper - 80).mean() > 0.02, cell.name
    # end to end: OCR of the scan finds each field's words inside its box
    words = scanned.open()[0].words(ocr=True)
    hits = [words_in(words, f.box, pad=2) == f.text for f in scanned.fields.values()]
    assert sum(hits) >= 0.8 * len(hits), [(k, words_in(words, f.box, pad=2), f.text) for k, f in scanned.fields.items()]


def test_scan_of_every_kind_maps_tables_and_blocks() -> None:
    for doc in (generate_table_page(1), generate_columns_page(1), generate_form(1)):
        scanned = scan(doc, dpi=100, seed=2)
        assert scanned.kind is doc.kind and scanned.source_seed == doc.seed
        assert [t.n_rows for t in scanned.tables] == [t.n_rows for t in doc.tables]
        assert [b.text for b in scanned.blocks] == [b.text for b in doc.blocks]
        m = scanned.transforms[0]
        for a, b in zip(doc.blocks, scanned.blocks, strict=True):
            assert b.box == a.box.transformed(m)
        w, h = scanned.image_size.width_height
        for f in scanned.fields.values():
            assert 0 <= f.box.x0 < f.box.x1 <= w and 0 <= f.box.y0 < f.box.y1 <= h
    with pytest.raises(dv.UsageError, match="dpi must be a positive number"):
        scan(generate_form(1), dpi=0)
    tiff = scan(generate_form(1), format="tiff", dpi=72)
    assert tiff.format == "tiff" and dv.open(tiff.image_bytes).format == "tiff"
