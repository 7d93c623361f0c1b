"""Page layout of born-digital PDF pages through PyMuPDF's bundled layout model (``pymupdf-layout``).

The model is a small graph network over the page's text lines, vector graphics and a low-resolution
rendering (ONNX on CPU, about 1-2 s a page). It labels regions with the eleven DocLayNet classes in
`LAYOUT_LABELS` and returns them in reading order. It reads the text layer, so it does not work
on images or scans: a rendering of a page turned into an image-only PDF comes back with no regions.
"""

from __future__ import annotations

import threading
import weakref

from docvlm.documents.base import Page
from docvlm.documents.pdf import PDFPage, mupdf_errors
from docvlm.documents.pdf import load_pymupdf as _pymupdf
from docvlm.errors import MissingDependencyError, PageTooLargeError, UsageError
from docvlm.tasks._page import PageInput, as_page
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import BoundingBox

__all__ = ["LAYOUT_LABELS", "MAX_LAYOUT_ITEMS", "layout"]

#: The labels [`layout`][docvlm.tasks.layout.layout] gives, as PyMuPDF's layout model names them (DocLayNet's classes).
LAYOUT_LABELS: tuple[str, ...] = (
    "title",
    "section-header",
    "text",
    "list-item",
    "table",
    "picture",
    "caption",
    "formula",
    "footnote",
    "page-header",
    "page-footer",
)

_CACHE: weakref.WeakKeyDictionary[Page, Detections] = weakref.WeakKeyDictionary()
# one ONNX session serves every page; PyMuPDF4LLM also serializes calls into it
_MODEL_LOCK = threading.Lock()
_SNAP_COVER = 0.8  # a table region snaps to a ruled table covering this share of it

#: Most vector drawing items plus words on a page that the layout model reads: it builds a graph over them and
#: cannot be interrupted, so a page past this (a map, an A0 technical drawing) raises
#: `PageTooLargeError` instead of hanging.
MAX_LAYOUT_ITEMS = 40_000


def layout(page: PageInput) -> Detections:
    """The regions of a born-digital PDF page, labelled and in reading order, boxes in page space.

    Labels are those of `LAYOUT_LABELS`; detections carry no score (the model gives none).
    Embedded images come back as ``picture`` regions with the image's exact placement, and a ``table``
    region snaps to the table's ruling when it has one (the model itself boxes a table's text only).
    Rotated pages and pages with a CropBox are handled: boxes are in the page space of
    [`Page`][docvlm.documents.base.Page] (unrotated, origin at the CropBox's top-left). The result is
    cached on the page object, so asking again costs nothing.

    Args:
        page: a PDF page with a text layer (or a one-page document, or its path / bytes).

    Raises:
        UsageError: the page is an image: the layout model reads a PDF's text layer and vector graphics.
        MissingDependencyError: ``pymupdf-layout`` is not installed.
        PageTooLargeError: the page has more than `MAX_LAYOUT_ITEMS` drawing items and words.
    """
    page = as_page(page)
    if not isinstance(page, PDFPage):
        raise UsageError(
            "the layout model reads a PDF's text layer and vector graphics, and this page is an image "
            "(its rendering turned into a PDF comes back empty)",
            source=page.document.source, page=page.index,
            hint="ask a vision model for the regions instead, e.g. with docvlm's detection task",
        )
    cached = _CACHE.get(page)
    if cached is not None:
        return cached
    raw = _run_model(page)
    detections = []
    for x0, y0, x1, y1, label in raw:
        box = BoundingBox.from_corners(x0, y0, x1, y1).clip(page.bbox)
        if box.area > 0:
            detections.append(Detection(label=str(label), box=box))
    if any(d.label == "table" for d in detections):
        detections = _snap_tables(page, detections)
    result = Detections(detections=detections)
    _CACHE[page] = result
    return result


def _run_model(page: PDFPage) -> list[tuple[float, float, float, float, str]]:
    pymupdf = _pymupdf()
    if getattr(pymupdf, "_get_layout", None) is None:
        raise MissingDependencyError("pymupdf-layout", "layout", purpose="page layout",
                                     hint="pip install pymupdf-layout")
    fitz_page = page.fitz_page
    with mupdf_errors(page.document.source, page.index, "reading the drawings"):
        n_items = len(page.words()) + sum(len(d["items"]) for d in fitz_page.get_drawings())
    if n_items > MAX_LAYOUT_ITEMS:
        raise PageTooLargeError(
            f"the page has {n_items:,} drawing items and words, more than the layout model's budget of "
            f"{MAX_LAYOUT_ITEMS:,}", source=page.document.source, page=page.index,
            hint="give the region yourself (e.g. extract_tables(None, page, region=...)), or raise "
                 "docvlm.tasks.layout.MAX_LAYOUT_ITEMS")
    rotation = page.rotation
    before = getattr(fitz_page, "layout_information", None)
    # The model renders the page and reads its text: on a rotated page the rendering is turned and the
    # text is not, which changes the answer. Unrotated, both are in page space. MuPDF's errors come out typed.
    with _MODEL_LOCK, mupdf_errors(page.document.source, page.index, "finding the layout"):
        if rotation:
            fitz_page.set_rotation(0)
        try:
            # filter_img_bboxes: embedded images become picture regions (else a plain image is often missed)
            fitz_page.get_layout(filter_img_bboxes=True)
            raw = [(float(x0), float(y0), float(x1), float(y1), str(label))
                   for x0, y0, x1, y1, label in fitz_page.layout_information or []]
        finally:
            fitz_page.layout_information = before  # leave PyMuPDF's own find_tables gating as it was
            if rotation:
                fitz_page.set_rotation(rotation)
    return raw


def _snap_tables(page: PDFPage, detections: list[Detection]) -> list[Detection]:
    """Replace a table region (the model boxes the table's text) by the ruled table that covers it."""
    from docvlm.tasks.tables import find_tables

    ruled = [t.box for t in find_tables(page) if t.box is not None]
    out = []
    for d in detections:
        if d.label == "table" and d.box.area > 0:
            for box in ruled:
                inter = d.box.intersection(box)
                if inter is not None and inter.area >= _SNAP_COVER * d.box.area:
                    d = d.model_copy(update={"box": box})
                    break
        out.append(d)
    return out
