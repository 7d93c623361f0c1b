from __future__ import annotations

from typing import Any

import pytest

import docvlm as dv
from docvlm.tasks.layout import LAYOUT_LABELS, layout
from docvlm.types.detections import Detections
from docvlm.types.geometry import BoundingBox
from tests.conftest import finish_pdf

TABLE = BoundingBox(x0=56, y0=230, x1=539, y1=330)  # the ruling
PICTURE = BoundingBox(x0=56, y0=400, x1=296, y1=580)
PARAGRAPH = "Document understanding with vision language models turns pages into typed results. " * 6


def layout_pdf(rotation: int = 0, cropbox: tuple[float, float, float, float] | None = None) -> bytes:
    """A page with known regions: a title, two paragraphs, a ruled table and a picture."""
    import numpy as np
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((56, 80), "Annual Report on Widgets", fontsize=22, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(56, 110, 539, 200), PARAGRAPH, fontsize=10)
    xs, ys = [56, 200, 300, 400, 539], [230 + 20 * i for i in range(6)]
    shape = page.new_shape()
    for y in ys:
        shape.draw_line((xs[0], y), (xs[-1], y))
    for x in xs:
        shape.draw_line((x, ys[0]), (x, ys[-1]))
    shape.finish(color=(0, 0, 0), width=0.8)
    shape.commit()
    for r in range(5):
        for c in range(4):
            page.insert_text((xs[c] + 4, ys[r] + 14), f"Head {c}" if r == 0 else f"{(r * 7 + c * 3) % 10}.{r}{c}",
                             fontsize=10)
    h, w = 90, 120
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], -1).astype(np.uint8)
    page.insert_image(pymupdf.Rect(*PICTURE.xyxy), pixmap=pymupdf.Pixmap(pymupdf.csRGB, w, h, pixels.tobytes(), False))
    page.insert_textbox(pymupdf.Rect(56, 600, 539, 700), PARAGRAPH, fontsize=10)
    return finish_pdf(doc, page, cropbox=cropbox, rotation=rotation)


def best(dets: Detections, box: BoundingBox) -> tuple[str, float]:
    """The label of the detection overlapping ``box`` most, and that IoU."""
    found = max(dets, key=lambda d: d.box.iou(box))
    return found.label, found.box.iou(box)


@pytest.fixture(scope="module")
def upright() -> Detections:
    return layout(dv.open(layout_pdf())[0])


def test_known_regions(upright: Detections) -> None:
    assert set(upright.labels) <= set(LAYOUT_LABELS) and upright.space is dv.Space.PAGE
    label, iou = best(upright, TABLE)
    assert label == "table" and iou >= 0.99  # snapped to the ruling (the model boxes the table's text)
    label, iou = best(upright, PICTURE)
    assert label == "picture" and iou >= 0.99
    words = dv.open(layout_pdf())[0].words()[:4]
    assert " ".join(w.text for w in words) == "Annual Report on Widgets"
    title = BoundingBox.enclosing(p for w in words for p in w.box.corners)
    label, iou = best(upright, title)
    assert label in ("title", "section-header") and iou >= 0.6  # the model boxes glyphs, words their line height
    assert upright.labels.count("text") == 2
    assert upright.labels[0] == label  # reading order: the title comes first
    assert all(d.score is None for d in upright)


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_page_gives_the_same_regions(upright: Detections, rotation: int) -> None:
    page = dv.open(layout_pdf(rotation=rotation))[0]
    rotated = layout(page)
    assert rotated.labels == upright.labels
    assert rotated.xyxy.ravel().tolist() == pytest.approx(upright.xyxy.ravel().tolist(), abs=0.5)
    assert page.rotation == rotation and page.fitz_page.layout_information is None  # the page is left as it was


def test_cropbox_page_boxes_start_at_the_cropbox(upright: Detections) -> None:
    cropped = layout(dv.open(layout_pdf(cropbox=(20, 30, 580, 800)))[0])
    assert cropped.labels == upright.labels
    shifted = (upright.xyxy - [20, 30, 20, 30]).ravel().tolist()
    assert cropped.xyxy.ravel().tolist() == pytest.approx(shifted, abs=0.5)


def test_cached_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymupdf

    calls: list[dict[str, Any]] = []

    def fake(page: Any, **kwargs: Any) -> list[list[Any]]:
        calls.append(kwargs)
        return [[10, 20, 110, 40, "title"], [10, 50, 700, 90, "text"], [5, 5, 5, 9, "text"]]

    monkeypatch.setattr(pymupdf, "_get_layout", fake)
    page = dv.open(layout_pdf())[0]
    first = layout(page)
    assert layout(page) is first and len(calls) == 1
    assert calls[0] == {"filter_img_bboxes": True}
    # boxes are clipped to the page; empty ones are dropped
    assert first.labels == ["title", "text"] and first.xyxy.tolist()[1] == [10, 50, 595, 90]
    assert len(layout(dv.open(layout_pdf())[0])) == 2 and len(calls) == 2  # another page object: asked again


def test_missing_layout_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymupdf

    monkeypatch.setattr(pymupdf, "_get_layout", None)
    with pytest.raises(dv.MissingDependencyError, match="pymupdf-layout"):
        layout(dv.open(layout_pdf())[0])


def test_images_are_refused(files: dict[str, Any]) -> None:
    with pytest.raises(dv.UsageError, match="this page is an image"):
        layout(dv.open(files["square.png"])[0])
