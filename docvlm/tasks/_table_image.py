"""Tables in images (PNG crops, photos, scanned PDF pages): ruling from the pixels, cell text from OCR words.

1. The page is rendered so that its text is about `_TEXT_PX` pixels tall (small crops are upscaled: the
   text height is estimated from the ink's connected components first), and read by OCR
   (`ocr_words`: RapidOCR when installed, else Tesseract, as everywhere in docvlm).
2. Rules are the long thin runs of ink: the binarized image opened with a horizontal (vertical) kernel several
   text heights long keeps only lines, and each connected run becomes a segment in page space.
3. The segments are drawn on a blank vector page of the page's size and read by the same ruled-table finder
   as a born-digital PDF (`ruled_tables`: grid, spans, continued rows, the rows
   and columns the words imply), with the OCR words as its text.
4. Where the ruling makes no table (borderless tables, rules above and below the header only), the table comes
   from the alignment of the words (`text_table`), using any full-width
   rules to find the header.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from docvlm.documents.base import Page
from docvlm.types.geometry import BoundingBox
from docvlm.types.table import Table
from docvlm.types.text import WordRow

_TEXT_PX = 32.0  # text height (pixels) the OCR reads best at
_MAX_UPSCALE = 4.0
_MAX_OCR_PIXELS = 16_000_000
_MIN_CONFIDENCE = 10.0
_PSM = 6
_ENGINE = "auto"  # docvlm's default engine (RapidOCR when installed, else Tesseract); the bench compares them


def image_tables(page: Page, region: BoundingBox | None) -> list[Table]:
    """The tables of an image page (or of ``region``), cells from OCR words; boxes in page space."""
    import cv2
    from PIL import Image

    from docvlm.documents.base import PageImage
    from docvlm.tasks._table_words import text_table
    from docvlm.tasks.tables import ruled_tables

    area = region or page.bbox
    base = page.crop(area) if region is not None else page.render()
    # the ink's height is measured on the image as it is (an upscaled image has soft, noisy edges)
    text_px = _text_height(np.asarray(base.image.convert("L")))
    scale = float(min(_MAX_UPSCALE, max(1.0, _TEXT_PX / text_px))) if text_px > 0 else 1.0
    w, h = base.image.size
    scale = max(1.0, min(scale, (_MAX_OCR_PIXELS / max(1, w * h)) ** 0.5))  # a full page need not grow past this
    image = base if scale == 1.0 else (page.crop(area, base.dpi * scale) if region is not None
                                       else page.render(base.dpi * scale))
    text_px *= scale
    gray = _light_background(np.asarray(image.image.convert("L")), text_px)
    horizontal, vertical, mask = _rules(gray, text_px, cv2)
    # OCR without the rules: a line under or beside small text turns it into garbage
    clean = gray.copy()
    clean[mask > 0] = 255
    if scale >= 2:  # soften the resampling's ringing around enlarged letters (measured: TEDS 0.748 -> 0.769)
        clean = cv2.GaussianBlur(clean, (3, 3), 0)
    words = _ocr(PageImage(page.index, image.frame, image.dpi, image=Image.fromarray(clean)), area)
    if not words:
        return []
    to_page = image.frame.pixel_to_page
    h_rules = [_seg_to_page(s, to_page, True) for s in horizontal]
    v_rules = [_seg_to_page(s, to_page, False) for s in vertical]
    tables: list[Table] = []
    if v_rules and h_rules:
        from docvlm.documents.pdf import mupdf_errors

        # MuPDF's errors (e.g. on a word it cannot write) come out typed
        with mupdf_errors(page.document.source, page.index, "finding tables in the image"), \
                _ruling_pdf(page, h_rules, v_rules, words) as doc:
            tables = ruled_tables(doc[0], words, page.index)
    if not tables:
        table = text_table(words, page.index, rules=[r for r in h_rules if r[1] - r[0] >= 0.5 * area.width])
        tables = [] if table is None else [table]
    return tables


def _ocr(image: Any, area: BoundingBox) -> list[WordRow]:
    from docvlm.documents.ocr import ocr_words
    from docvlm.tasks._table_words import centre_in

    # Tesseract reads the table as one block of text lines (psm 6): the words of a row stay in their line
    ocr = ocr_words(image, engine=_ENGINE, psm=_PSM)
    return [w for w, c in zip(ocr.rows, ocr.confidences, strict=True)
            if c >= _MIN_CONFIDENCE and str(w[4]).strip() and centre_in(w, area)]


def _light_background(gray: np.ndarray[Any, Any], text_px: float) -> np.ndarray[Any, Any]:
    """The image with light text on dark shading (a header band, a dark cell) turned dark on light, as OCR reads
    best: each solid dark box at least a text line tall is inverted."""
    import cv2

    dark = (gray < 110).astype(np.uint8)
    k = max(3, int(text_px) | 1)
    solid = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    out = gray
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if h >= 1.2 * text_px and w >= 4 * text_px and area >= 0.8 * w * h:
            if out is gray:
                out = gray.copy()
            out[y:y + h, x:x + w] = 255 - out[y:y + h, x:x + w]
    return out


def _text_height(gray: np.ndarray[Any, Any]) -> float:
    """The height of the text in pixels: the 75th percentile of the ink's connected components (letters with
    ascenders, not dots and commas); 0 when there is too little ink to say."""
    import cv2

    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    heights = [int(stats[i, cv2.CC_STAT_HEIGHT]) for i in range(1, n)
               if 2 <= stats[i, cv2.CC_STAT_HEIGHT] <= gray.shape[0] // 2
               and stats[i, cv2.CC_STAT_WIDTH] <= 4 * stats[i, cv2.CC_STAT_HEIGHT]]
    return float(np.percentile(heights, 75)) if len(heights) >= 5 else 0.0


def _rules(gray: np.ndarray[Any, Any], text_px: float, cv2: Any,
           ) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]], np.ndarray[Any, Any]]:
    """Horizontal ``(x0, x1, y)`` and vertical ``(y0, y1, x)`` rules in pixels: thin runs of ink several text
    heights long; and the mask of their pixels."""
    binary = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15)
    length = int(max(12, 3 * text_px))
    thick = max(2.0, 0.5 * text_px)
    out: list[list[tuple[float, float, float]]] = [[], []]
    mask = np.zeros_like(binary)
    # dotted and dashed rules: the small specks of ink (not letters), joined along a row or column by a bit
    # more than half a text height, then kept where they run several text heights
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    small = np.isin(labels, [i for i in range(1, n) if max(stats[i, 2], stats[i, 3]) <= max(2.0, 0.3 * text_px)])
    specks = np.where(small, 255, 0).astype(np.uint8)
    gap = max(3, int(0.6 * text_px))
    for k, kernel in enumerate(((length, 1), (1, length))):
        joined = cv2.morphologyEx(specks, cv2.MORPH_CLOSE, cv2.getStructuringElement(
            cv2.MORPH_RECT, (gap, 1) if k == 0 else (1, gap)))
        lines = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        lines |= cv2.morphologyEx(joined, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        for i in range(1, n):
            x, y, w, h = (int(v) for v in stats[i, :4])
            if k == 0 and h <= thick and w >= length:
                out[0].append((float(x), float(x + w), y + h / 2))
            elif k == 1 and w <= thick and h >= length:
                out[1].append((float(y), float(y + h), x + w / 2))
            else:
                continue
            mask[y:y + h, x:x + w] |= binary[y:y + h, x:x + w] & np.where(labels[y:y + h, x:x + w] == i, 255, 0).astype(np.uint8)
    return out[0], out[1], cv2.dilate(mask, np.ones((3, 3), np.uint8))


def _seg_to_page(seg: tuple[float, float, float], to_page: Any, horizontal: bool) -> tuple[float, float, float]:
    a, b, at = seg
    if horizontal:
        (x0, y), (x1, _) = to_page.apply(a, at), to_page.apply(b, at)
        return (min(x0, x1), max(x0, x1), y)
    (x, y0), (_, y1) = to_page.apply(at, a), to_page.apply(at, b)
    return (min(y0, y1), max(y0, y1), x)


def _ruling_pdf(page: Page, horizontal: list[tuple[float, float, float]],
                vertical: list[tuple[float, float, float]], words: list[WordRow]) -> Any:
    """A one-page vector PDF of the page's size with the rules drawn and the words written invisibly (PyMuPDF's
    finder returns nothing on a page without text), for the ruled-table finder."""
    from docvlm.documents.pdf import load_pymupdf as _pymupdf

    pymupdf = _pymupdf()
    doc = pymupdf.open()
    fitz_page = doc.new_page(width=page.size.width, height=page.size.height)
    shape = fitz_page.new_shape()
    for x0, x1, y in horizontal:
        shape.draw_line((x0, y), (x1, y))
    for y0, y1, x in vertical:
        shape.draw_line((x, y0), (x, y1))
    shape.finish(color=(0, 0, 0), width=0.5)
    shape.commit()
    for w in words:
        size = max(1.0, 0.8 * (w[3] - w[1]))
        fitz_page.insert_text((w[0], w[3] - 0.2 * size), str(w[4]), fontsize=size, render_mode=3)
    return doc
