"""OCR against the exact truth of generated pages: the PDF text layer the page image was rendered from.

These tests need Tesseract (``apt-get install -y tesseract-ocr tesseract-ocr-eng``) and fail without it: they
are the only check that OCR boxes land in page space.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import docvlm as dv
from docvlm.documents.ocr import OCREngine, OCRWordList, available_engines, ocr_words, parse_tesseract_tsv, split_lines
from docvlm.types.geometry import BoundingBox, Space

PARAGRAPH = (
    "The quarterly report shows revenue of 48,250 dollars for March, up from 41,900 in February. "
    "Shipping costs fell because the warehouse in Leipzig moved orders to rail freight. "
    "Please send the signed contract to our office before Friday, 14 November 2025. "
    "Customer number 7731-B will receive a credit note for the damaged pallets. "
    "Questions about this statement can be sent to accounts@example.com or by phone."
)


def text_page_pdf(*, rotation: int = 0) -> bytes:
    """An A4 page of ordinary text (a heading, key-value lines, a paragraph) as a PDF with a text layer.

    With ``rotation`` 90 the page is stored sideways (landscape MediaBox, ``/Rotate 90``) and the text is
    drawn so that it reads upright on screen, as a scanner writes a page fed sideways.
    """
    import pymupdf

    doc = pymupdf.open()
    if rotation == 90:
        page = doc.new_page(width=842, height=595)
        page.set_rotation(90)
        # displayed (x, y) = (595 - y_unrot, x_unrot): text at displayed (x, y) sits at unrotated (y, 595 - x)
        def at(x: float, y: float) -> tuple[float, float]:
            return (y, 595 - x)
        rotate = 90
    else:
        page = doc.new_page(width=595, height=842)

        def at(x: float, y: float) -> tuple[float, float]:
            return (x, y)
        rotate = 0
    page.insert_text(at(60, 80), "Northwind Logistics Statement", fontsize=18, fontname="hebo", rotate=rotate)
    y = 120.0
    for key, value in [("Account:", "DE-4471-0093"), ("Period:", "March 2025"), ("Balance due:", "1,284.60 EUR")]:
        page.insert_text(at(60, y), key, fontsize=11, fontname="hebo", rotate=rotate)
        page.insert_text(at(170, y), value, fontsize=11, rotate=rotate)
        y += 18
    box = pymupdf.Rect(60, y + 10, 535, y + 260)
    if rotation == 90:
        box = pymupdf.Rect(box.y0, 595 - box.x1, box.y1, 595 - box.x0)
    rc = page.insert_textbox(box, PARAGRAPH, fontsize=11, fontname="tiro", rotate=rotate)
    assert rc >= 0, "the paragraph does not fit"
    data: bytes = doc.tobytes()
    doc.close()
    return data


def image_only_pdf(pdf: bytes, dpi: float) -> bytes:
    """The same PDF with every page replaced by a picture of it (no text layer), rotation kept."""
    import pymupdf

    src = pymupdf.open(stream=pdf, filetype="pdf")
    out = pymupdf.open()
    for page in src:
        rotation = page.rotation
        page.set_rotation(0)  # rasterize the unrotated page, so the picture fills the MediaBox as it is
        pix = page.get_pixmap(dpi=dpi)
        new = out.new_page(width=page.rect.width, height=page.rect.height)
        new.insert_image(new.rect, pixmap=pix)
        new.set_rotation(rotation)
    data: bytes = out.tobytes()
    return data


def ink_box(gray: np.ndarray, box: BoundingBox) -> BoundingBox | None:
    """The tight box of the dark pixels inside ``box`` (pixels of ``gray``)."""
    x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
    x1, y1 = min(gray.shape[1], int(np.ceil(box.x1))), min(gray.shape[0], int(np.ceil(box.y1)))
    ys, xs = np.nonzero(gray[y0:y1, x0:x1] < 160)
    if not len(xs):
        return None
    return BoundingBox(x0=x0 + xs.min(), y0=y0 + ys.min(), x1=x0 + xs.max() + 1, y1=y0 + ys.max() + 1, space=box.space,
                       image_size=box.image_size)


def match(truth: list[tuple[str, BoundingBox]], found: dv.WordList, pad: float) -> list[tuple[str, dv.Word | None]]:
    """For each true word the one OCR word whose centre lies inside its (padded) box, or None."""
    out: list[tuple[str, dv.Word | None]] = []
    for text, box in truth:
        area = box.pad(pad)
        hits = [w for w in found if area.x0 <= w.box.center[0] <= area.x1 and area.y0 <= w.box.center[1] <= area.y1]
        out.append((text, hits[0] if len(hits) == 1 else None))
    return out


@pytest.fixture(scope="module")
def scanned_text_page() -> tuple[dv.WordList, dv.PageImage, dv.Page]:
    """The text page rendered at 150 dpi as a PNG, its text layer in the PNG's pixels, and the PNG opened."""
    pdf_page = dv.open(text_page_pdf())[0]
    image = pdf_page.render(dpi=150)
    buf = io.BytesIO()
    image.image.save(buf, format="PNG", dpi=(150, 150))
    # the PNG's page space is its pixels: the text layer's boxes mapped through the rendering's frame
    truth = dv.WordList(
        [(*w.box.to(Space.PIXEL, image.frame).xyxy, w.text, w.block, w.line, w.index) for w in pdf_page.words()], 0
    )
    return truth, image, dv.open(buf.getvalue())[0]


def test_tesseract_is_installed() -> None:
    """OCR is checked for real: without Tesseract this fails instead of skipping the tests below."""
    assert shutil.which("tesseract"), "install Tesseract: apt-get install -y tesseract-ocr tesseract-ocr-eng"
    assert available_engines() == [OCREngine.RAPIDOCR, OCREngine.TESSERACT], "the README install adds the ocr extra"


def test_auto_prefers_rapidocr_for_the_languages_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """RapidOCR reads real receipts and forms far better (bench.realdata --sets ocr), so "auto" takes it first; for
    a language its bundled model does not read, Tesseract."""
    import docvlm.documents.ocr as ocr

    monkeypatch.setattr(ocr, "_rapidocr_importable", lambda: True)
    assert available_engines() == [OCREngine.RAPIDOCR, OCREngine.TESSERACT]
    assert available_engines("deu") == [OCREngine.TESSERACT]


def test_ocr_of_an_image_page_matches_the_text_layer(scanned_text_page: tuple[dv.WordList, dv.PageImage, dv.Page]) -> None:
    truth, image, page = scanned_text_page
    assert page.units == "px" and page.words() == [] and not page.has_text_layer
    words = ocr_words(page, engine="tesseract")
    assert isinstance(words, OCRWordList) and words.engine == "tesseract" and words.dpi == pytest.approx(150, abs=0.1)
    assert len(truth) == 77
    assert abs(len(words) - len(truth)) <= 3
    pairs = match([(w.text, w.box) for w in truth], words, pad=2)
    exact = sum(found is not None and found.text == text for text, found in pairs)
    assert exact >= 0.95 * len(truth), [(t, f and f.text) for t, f in pairs if f is None or f.text != t]
    # the OCR box of a word is where its ink is: compare with the ink inside the text-layer box
    gray = np.asarray(image.image.convert("L"))
    ious = []
    for (text, found), true in zip(pairs, truth, strict=True):
        ink = ink_box(gray, true.box)
        assert ink is not None, text
        ious.append(0.0 if found is None else found.box.iou(ink))
    assert sum(v >= 0.5 for v in ious) >= 0.9 * len(truth), sorted(ious)[:10]
    assert float(np.median(ious)) > 0.8
    # OCR boxes stay inside the text layer's boxes (which span the font's ascent and descent)
    inside = sum(f is not None and t.box.pad(2).contains(f.box) for (_, f), t in zip(pairs, truth, strict=True))
    assert inside >= 0.9 * len(truth)
    # block / line / word numbering from the engine: the heading is the first line of the first block
    assert [w.text for w in words if (w.block, w.line) == (words[0].block, words[0].line)] == [
        "Northwind", "Logistics", "Statement"]
    assert [w.index for w in words[:3]] == [0, 1, 2]
    assert words.text().splitlines()[0] == "Northwind Logistics Statement"
    confidences = words.confidences
    assert len(confidences) == len(words) and all(0 <= c <= 100 for c in confidences)
    assert float(np.median(confidences)) > 85


def test_ocr_result_is_cached_on_the_page(scanned_text_page: tuple[dv.WordList, dv.PageImage, dv.Page]) -> None:
    _, _, page = scanned_text_page
    assert page.words(ocr=True) is page.words(ocr="auto")
    assert page.text(ocr=True).startswith("Northwind Logistics Statement")
    assert page.words() == []  # the text layer is still empty


def test_rotated_image_only_pdf_page_gives_boxes_in_page_space() -> None:
    pdf = text_page_pdf(rotation=90)
    original = dv.open(pdf)[0]
    truth = original.words()
    assert original.rotation == 90 and (original.width, original.height) == (842, 595)
    assert truth.texts[:3] == ["Northwind", "Logistics", "Statement"]
    # text in a /Rotate 90 page reads upright: in unrotated page space it runs bottom to top
    assert truth[0].box.height > truth[0].box.width
    page = dv.open(image_only_pdf(pdf, dpi=200))[0]
    assert page.rotation == 90 and not page.has_text_layer and page.words() == []
    words = ocr_words(page, engine="tesseract")
    assert all(w.box.space is Space.PAGE for w in words)
    pairs = match([(w.text, w.box) for w in truth], words, pad=1.5)
    exact = sum(found is not None and found.text == text for text, found in pairs)
    assert exact >= 0.95 * len(truth)
    # in page points, each OCR box lies inside its word's text-layer box and covers much of it
    good = sum(
        f is not None and t.box.pad(1.5).contains(f.box) and f.box.area > 0.3 * t.box.area
        for (_, f), t in zip(pairs, truth, strict=True)
    )
    assert good >= 0.9 * len(truth)
    heading = words[0].box.union(words[2].box)
    assert heading.iou(truth[0].box.union(truth[2].box)) > 0.5


def test_pdf_pages_use_the_text_layer_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import docvlm.documents.ocr as ocr

    page = dv.open(dv.samples.invoice_pdf())[0]
    calls: list[object] = []
    monkeypatch.setattr(ocr, "ocr_words", lambda p, **kw: calls.append(p) or OCRWordList([], 0, [], engine="x", dpi=1))
    assert page.words(ocr="auto") == page.words() and len(page.words()) > 40
    assert calls == []
    assert page.words(ocr=True) == [] and calls == [page]  # True always OCRs (here the stub)
    with pytest.raises(dv.UsageError, match="ocr must be"):
        page.words(ocr="yes")  # type: ignore[arg-type]


def test_ocr_of_a_pdf_page_renders_it_at_300_dpi() -> None:
    page = dv.open(dv.samples.invoice_pdf())[0]
    words = ocr_words(page, engine="tesseract")
    assert words.dpi == 300 and words.engine == "tesseract"
    truth = page.words()
    pairs = match([(w.text, w.box) for w in truth], words, pad=1)
    assert sum(f is not None and f.text == t for t, f in pairs) >= 0.95 * len(truth)
    # a crop (a PageImage) is read as it is, boxes still in page space
    total = truth[[w.text for w in truth].index("145.78")]
    crop = page.crop(total.box.pad(30, 8), dpi=300)
    found = ocr_words(crop, engine="tesseract")
    assert "145.78" in found.texts
    box = found[found.texts.index("145.78")].box
    assert total.box.pad(1).contains(box) and box.area > 0.4 * total.box.area


def test_missing_engines_raise_with_both_install_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scanned_text_page: tuple[dv.WordList, dv.PageImage, dv.Page]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "rapidocr", None)
    assert available_engines() == []
    page = dv.open(scanned_text_page[1].to_png())[0]
    assert page.words() == []  # the text layer needs no engine
    with pytest.raises(dv.MissingDependencyError) as err:
        page.words(ocr="auto")
    message = str(err.value)
    assert "apt-get install tesseract-ocr tesseract-ocr-eng" in message
    assert "pip install rapidocr onnxruntime" in message
    assert isinstance(err.value, ImportError)
    with pytest.raises(dv.MissingDependencyError, match="apt-get install tesseract-ocr"):
        ocr_words(page, engine="tesseract")
    with pytest.raises(dv.MissingDependencyError, match="pip install rapidocr onnxruntime"):
        ocr_words(page, engine="rapidocr")
    with pytest.raises(dv.UsageError, match="unknown OCR engine 'easyocr'"):
        ocr_words(page, engine="easyocr")


def test_missing_language_data_names_the_package() -> None:
    page = dv.open(dv.samples.invoice_pdf())[0]
    with pytest.raises(dv.MissingDependencyError, match="tesseract-ocr-xyz"):
        ocr_words(page, lang="xyz", dpi=72)


TSV = (
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    "1\t1\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t\n"
    "2\t1\t1\t0\t0\t0\t10\t10\t300\t60\t-1\t\n"
    "5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tHello\n"
    "5\t1\t1\t1\t1\t2\t70\t12\t60\t18\t91.25\tworld\n"
    "5\t1\t1\t1\t1\t3\t140\t12\t5\t18\t12\t \n"
    "5\t1\t1\t2\t1\t1\t10\t50\t40\t20\t88\tNext\n"
    "5\t1\t2\t1\t1\t1\t400\t10\t40\t20\t-1\tOther\n"
)


def test_parse_tesseract_tsv() -> None:
    rows, conf = parse_tesseract_tsv(TSV)
    assert rows == [
        (10, 10, 60, 30, "Hello", 0, 0, 0),
        (70, 12, 130, 30, "world", 0, 0, 1),
        (10, 50, 50, 70, "Next", 0, 1, 0),  # second paragraph of block 1: line 1 of block 0
        (400, 10, 440, 30, "Other", 1, 0, 0),
    ]
    assert conf == [96.5, 91.25, 88.0, 0.0]
    assert parse_tesseract_tsv("") == ([], [])


def test_split_lines_by_characters_and_by_engine_word_boxes() -> None:
    quad = [(0.0, 0.0), (110.0, 0.0), (110.0, 10.0), (0.0, 10.0)]  # "ab cdefgh": 9 characters
    rows, conf = split_lines([quad], ["ab  cdefgh"], [0.9])
    assert [r[4] for r in rows] == ["ab", "cdefgh"]
    assert rows[0][:4] == pytest.approx((0, 0, 110 * 2 / 9, 10))
    assert rows[1][:4] == pytest.approx((110 * 3 / 9, 0, 110, 10))
    assert [r[5:] for r in rows] == [(0, 0, 0), (0, 0, 1)] and conf == [90.0, 90.0]
    # a tilted line: words follow the baseline direction
    tilted = [(0.0, 0.0), (100.0, 10.0), (99.0, 20.0), (-1.0, 10.0)]
    rows, _ = split_lines([tilted], ["a b"], [1.0])
    assert rows[0][:4] == pytest.approx((-1, 0, 100 / 3, 10 + 10 / 3))
    # the engine's own word boxes win when they spell the same words
    given = [[("ab", 0.5, [[0, 0], [20, 0], [20, 10], [0, 10]]), ("cdefgh", 0.8, [[30, 1], [100, 1], [100, 9], [30, 9]])]]
    rows, conf = split_lines([quad], ["ab cdefgh"], [0.9], given)
    assert rows == [(0, 0, 20, 10, "ab", 0, 0, 0), (30, 1, 100, 9, "cdefgh", 0, 0, 1)] and conf == [50.0, 80.0]


def test_split_lines_reads_full_width_punctuation_as_ascii() -> None:
    quad = [(0.0, 0.0), (40.0, 0.0), (40.0, 10.0), (0.0, 10.0)]
    rows, _ = split_lines([quad], ["Date：05-03-2018 （M）"], [0.9])
    assert [r[4] for r in rows] == ["Date:05-03-2018", "(M)"]
    given = [[("（M）", 0.5, [[0, 0], [20, 0], [20, 10], [0, 10]])]]
    rows, _ = split_lines([quad], ["（M）"], [0.9], given)
    assert rows == [(0, 0, 20, 10, "(M)", 0, 0, 0)]  # the engine's word box, the word normalised


def test_ocr_word_list_slices_keep_confidences() -> None:
    words = OCRWordList([(0, 0, 1, 1, "a", 0, 0, 0), (1, 0, 2, 1, "b", 0, 0, 1)], 3, [40.0, 90.0], engine="t", dpi=300)
    assert words[1:].confidences == [90.0] and words[1:].texts == ["b"]
    assert words.filter(50).texts == ["b"] and words[0].page == 3
    assert words == dv.WordList([(0, 0, 1, 1, "a", 0, 0, 0), (1, 0, 2, 1, "b", 0, 0, 1)], 3)
    with pytest.raises(dv.UsageError):
        OCRWordList([(0, 0, 1, 1, "a", 0, 0, 0)], 0, [], engine="t", dpi=1)


def test_rapidocr_engine_reads_the_page(scanned_text_page: tuple[dv.WordList, dv.PageImage, dv.Page]) -> None:
    truth, _, page = scanned_text_page
    words = ocr_words(page, engine="rapidocr")
    assert words.engine == "rapidocr"
    pairs = match([(w.text, w.box) for w in truth], words, pad=4)
    assert sum(f is not None and f.text == t for t, f in pairs) >= 0.8 * len(truth)


def test_ocr_runs_once_per_page_of_a_document(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import docvlm.documents.ocr as ocr

    image = tmp_path / "scan.png"
    dv.open(dv.samples.invoice_pdf())[0].render(dpi=50).to_png(image)
    calls: list[int] = []

    def fake(page: dv.Page, **kw: object) -> OCRWordList:
        calls.append(page.index)
        return OCRWordList([(1, 1, 9, 9, f"w{len(calls)}", 0, 0, 0)], 0, [1.0], engine="x", dpi=1)

    monkeypatch.setattr(ocr, "ocr_words", fake)
    doc = dv.open(image)
    first = doc[0].words(ocr="auto")
    assert doc[0].words(ocr=True) is first and calls == [0]  # a new page object of the same document: no new OCR
    assert dv.open(image)[0].words(ocr=True).texts == ["w2"] and calls == [0, 0]  # another document OCRs its own
    doc.use_words({0: [("given", (1, 1, 5, 5))]})
    assert [w.text for w in doc[0].words(ocr=True)] == ["given"] and calls == [0, 0]  # given words win
