from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import docvlm as dv
from docvlm.types.geometry import BoundingBox, Space
from tests.conftest import make_pdf


def ink_box(image: object, threshold: int = 128) -> tuple[int, int, int, int]:
    a = np.asarray(image)
    ys, xs = np.where(a.min(axis=2) < threshold)
    assert len(xs), "no ink on the image"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_open_path_bytes_and_file_object(files: dict[str, Path]) -> None:
    data = files["multi.pdf"].read_bytes()
    for source in (files["multi.pdf"], str(files["multi.pdf"]), data, io.BytesIO(data)):
        with dv.open(source) as doc:
            assert len(doc) == 5
            assert doc.format == "pdf"
            assert [p.text() for p in doc] == [f"Hello{i}" for i in range(5)]


def test_pages_are_lazy_and_indexable(files: dict[str, Path]) -> None:
    doc = dv.open(files["multi.pdf"])
    assert doc[-1].index == 4
    assert [p.index for p in doc[1:3]] == [1, 2]
    with pytest.raises(dv.PageIndexError, match="page index 5 is out of range for a document of 5 pages"):
        doc[5]
    with pytest.raises(IndexError):  # also a plain IndexError for sequence protocols
        doc[-6]


def test_page_geometry_and_words(files: dict[str, Path]) -> None:
    page = dv.open(files["simple.pdf"])[0]
    assert (page.width, page.height, page.rotation, page.units) == (300, 200, 0, "pt")
    (word,) = page.words()
    assert word.text == "Hello0"
    assert word.page == 0
    assert word.box.space is Space.PAGE
    # baseline at y=60 with a 20 pt font: the box spans the line from ascender to descender
    assert word.box.x0 == pytest.approx(50, abs=0.01)
    assert word.box.y0 < 60 < word.box.y1
    assert page.has_text_layer


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("cropbox", [None, (20, 30, 280, 190)])
def test_word_boxes_land_on_their_glyphs_in_the_render(rotation: int, cropbox: tuple[float, ...] | None) -> None:
    doc = dv.open(make_pdf(rotation=rotation, cropbox=cropbox))  # type: ignore[arg-type]
    page = doc[0]
    assert page.rotation == rotation
    if cropbox:
        assert (page.width, page.height) == (260, 160)
    image = page.render(dpi=144)
    if rotation in (90, 270):
        assert (image.width, image.height) == (round(page.height * 2), round(page.width * 2))
    else:
        assert (image.width, image.height) == (round(page.width * 2), round(page.height * 2))
    (word,) = page.words()
    px = word.box.to_pixels(image.frame)
    ink = BoundingBox.from_xyxy(ink_box(image.image), space=Space.PIXEL)
    # the glyphs lie inside the word's box (1 px of anti-aliasing slack) and fill most of it
    assert px.pad(1).contains(ink.model_copy(update={"image_size": px.image_size}))
    assert ink.area / px.area > 0.45
    # and back: the ink's box converted to page space overlaps the word
    back = ink.to_page(image.frame)
    assert back.iou(word.box) > 0.45


@pytest.mark.parametrize("rotation", [0, 90])
def test_crop_zooms_into_a_region(rotation: int) -> None:
    page = dv.open(make_pdf(rotation=rotation))[0]
    (word,) = page.words()
    region = word.box.pad(4)
    crop = page.crop(region, dpi=400)
    assert crop.dpi == 400
    scale = 400 / 72
    w, h = (region.height, region.width) if rotation == 90 else (region.width, region.height)
    assert abs(crop.width - w * scale) <= 2 and abs(crop.height - h * scale) <= 2
    px = word.box.to_pixels(crop.frame)
    ink = ink_box(crop.image)
    assert px.pad(2).contains(BoundingBox.from_xyxy(ink, space=Space.PIXEL).model_copy(update={"image_size": px.image_size}))


def test_region_errors(files: dict[str, Path]) -> None:
    page = dv.open(files["simple.pdf"])[0]
    with pytest.raises(dv.UsageError, match="does not overlap the page"):
        page.crop(BoundingBox(x0=400, y0=0, x1=500, y1=50))
    with pytest.raises(dv.UsageError, match="must be in page space"):
        page.crop(BoundingBox(x0=0, y0=0, x1=0.5, y1=0.5, space="normalized"))


def test_render_default_dpi_and_lazy_image(files: dict[str, Path]) -> None:
    image = dv.open(files["simple.pdf"])[0].render()
    assert (image.width, image.height, image.dpi) == (600, 400, 144)
    assert image.image.size == (600, 400)
    assert image.image.mode == "RGB"
    assert image.to_png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pixel_budget_for_huge_pages(files: dict[str, Path]) -> None:
    page = dv.open(files["huge.pdf"])[0]
    assert page.width == 14400
    with pytest.raises(dv.PageTooLargeError, match="over the budget"):
        page.render(dpi=300)
    image = page.render(max_pixels=4_000_000)  # default dpi is lowered to fit
    assert image.width * image.height <= 4_000_000
    assert image.width > 1900
    # the transform still maps the page corners to the image corners
    corner = BoundingBox(x0=0, y0=0, x1=page.width, y1=page.height).to_pixels(image.frame)
    assert corner.x1 == pytest.approx(image.width, abs=1)
    # a crop of a small region can still be rendered at high resolution
    assert page.crop(BoundingBox(x0=0, y0=0, x1=200, y1=200), dpi=300).width == pytest.approx(833, abs=1)


def test_encrypted(files: dict[str, Path]) -> None:
    with pytest.raises(dv.EncryptedDocumentError, match="needs a password"):
        dv.open(files["encrypted.pdf"])
    with pytest.raises(dv.EncryptedDocumentError, match="password is wrong"):
        dv.open(files["encrypted.pdf"], password="nope")
    doc = dv.open(files["encrypted.pdf"], password="s3cret")
    assert doc.encrypted and len(doc) == 2
    assert doc[1].text() == "Hello1"


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("truncated.pdf", dv.CorruptDocumentError, "not a readable PDF"),
        ("empty.pdf", dv.UnsupportedFormatError, "empty"),
        ("zero-pages.pdf", dv.EmptyDocumentError, "no pages"),
        ("notes.txt", dv.UnsupportedFormatError, "not a PDF or a supported image"),
    ],
)
def test_bad_documents_raise_typed_errors(files: dict[str, Path], name: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        dv.open(files[name])
    assert isinstance(info.value, dv.DocumentError)
    assert str(files[name]) in str(info.value)  # says where


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(dv.DocumentNotFoundError, match="no such file"):
        dv.open(tmp_path / "nope.pdf")
    with pytest.raises(dv.UsageError, match="folder"):
        dv.open(tmp_path)
    with pytest.raises(dv.UsageError, match="cannot open a int"):
        dv.open(42)  # type: ignore[arg-type]


def test_repaired_pdf_warns(files: dict[str, Path]) -> None:
    with pytest.warns(dv.DocumentRepairedWarning, match="repaired"):
        doc = dv.open(files["tail-truncated.pdf"])
    assert doc.repaired
    assert [p.text() for p in doc] == ["Hello0", "Hello1", "Hello2"]
    with pytest.warns(dv.DocumentRepairedWarning):
        half = dv.open(files["half.pdf"])
    assert half[0].text() == "Hello0"  # what survived is readable; the warning said content may be missing


def test_info(files: dict[str, Path]) -> None:
    info = dv.open(files["rotated90.pdf"]).info()
    assert info.format == "pdf" and info.page_count == 1 and not info.encrypted
    assert info.pages[0].model_dump() == {
        "index": 0, "width": 300.0, "height": 200.0, "units": "pt", "rotation": 90, "has_text_layer": True
    }


def test_frame_without_rendering_matches_render(files: dict[str, Path]) -> None:
    page = dv.open(files["rotated90.pdf"])[0]
    assert page.frame(dpi=144) == page.render(dpi=144).frame


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_words_identical_whether_or_not_the_page_was_rendered_first(rotation: int) -> None:
    data = dv.samples.invoice_pdf(rotation=rotation)
    plain = dv.open(data)[0].words()
    page = dv.open(data)[0]
    page.render(dpi=50)
    assert page.words().rows == plain.rows
    assert len(plain) == 59


def test_word_list_is_a_lazy_sequence_of_words() -> None:
    words = dv.open(dv.samples.invoice_pdf())[0].words()
    assert words[0].text == "Acme" and words[-1].text == "business."
    assert words.texts[:3] == ["Acme", "Tools", "GmbH"]
    assert words.xyxy.shape == (59, 4)
    assert list(words[:2]) == [words[0], words[1]]
    assert words == list(words)
    with pytest.raises(IndexError):
        words[59]


# ---------------------------------------------------------------------------------------------------------
# every MuPDF call is guarded (issue 15, finding 8)

INVALID_PAGE_COUNT = (  # a page tree whose /Count MuPDF rejects ("code=7: Invalid number of pages")
    b"%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type/Pages/Kids[3 0 R]/Count -1>> endobj\n"
    b"3 0 obj <</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
)


def test_a_page_count_mupdf_rejects_is_a_typed_error_on_opening() -> None:
    with pytest.raises(dv.CorruptDocumentError, match=r"counting the pages \(code=7: Invalid number of pages\)") as info:
        dv.open(INVALID_PAGE_COUNT)
    assert "\n" not in str(info.value) and info.value.source == f"<{len(INVALID_PAGE_COUNT)} bytes>"


def test_a_malformed_page_tree_is_a_typed_error_when_the_page_loads() -> None:
    # found by the fuzzer: the page tree's /Kids renamed /Parent; MuPDF counts 2 pages, then fails loading them
    import pymupdf

    doc = pymupdf.open(stream=make_pdf(pages=2), filetype="pdf")
    data = doc.tobytes(garbage=0, expand=255)
    doc.close()
    assert b"/Type/Pages/Count 2/Kids[" in data
    opened = dv.open(data.replace(b"/Kids", b"/Parent", 1))
    assert len(opened) == 2
    with pytest.raises(dv.CorruptDocumentError, match=r"page 0: MuPDF failed loading the page \(code=7: malformed "
                                                      r"page tree\)"):
        opened[0]
    with pytest.raises(dv.CorruptDocumentError, match=r"page 0: MuPDF failed loading the page"):
        opened.info()


def test_the_guard_types_mupdf_errors_and_leaves_docvlm_bugs_alone() -> None:
    import pymupdf

    from docvlm.documents._mupdf import mupdf_errors

    corrupt = pytest.raises(dv.CorruptDocumentError, match=r"x\.pdf: page 3: MuPDF failed rendering \(code=7: bad\)")
    with corrupt, mupdf_errors("x.pdf", 3, "rendering"):
        raise pymupdf.mupdf.FzErrorFormat("bad")  # derives from Exception only, not RuntimeError
    with pytest.raises(dv.PageTooLargeError, match="MuPDF hit a limit"), mupdf_errors("x.pdf", 0, "rendering"):
        raise pymupdf.mupdf.FzErrorLimit("too many objects")
    with pytest.raises(ZeroDivisionError), mupdf_errors("x.pdf", 0, "rendering"):  # not MuPDF's: stays visible
        _ = 1 / 0


def test_a_page_too_elongated_for_the_pixel_budget_is_a_typed_error() -> None:
    # found by the fuzzer: a 10^11 x 150 pt MediaBox rendered within the budget came out 0 pixels high
    pdf = INVALID_PAGE_COUNT.replace(b"/Count -1", b"/Count 1").replace(b"[0 0 100 100]", b"[0 0 100000000000 150]")
    with pytest.warns(dv.DocumentRepairedWarning):  # no xref table: MuPDF rebuilds it
        page = dv.open(pdf)[0]
    assert page.width == pytest.approx(1e11) and page.height == 150  # MuPDF keeps floats
    with pytest.raises(dv.PageTooLargeError, match=r"page \(1e\+11 x 150 pt\) is too elongated to render within "
                                                   r"0\.5 megapixels") as info:
        page.render(max_pixels=500_000)
    assert "page.crop" in str(info.value.hint)
    assert page.crop(BoundingBox(x0=0, y0=0, x1=300, y1=150), dpi=72).size.width == 300  # a part of it renders
