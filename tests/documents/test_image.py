from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import docvlm as dv
from docvlm.types.geometry import BoundingBox


@pytest.mark.parametrize(("name", "fmt"), [("square.png", "png"), ("square.jpg", "jpeg"), ("square.webp", "webp"), ("square.bmp", "bmp")])
def test_image_formats(files: dict[str, Path], name: str, fmt: str) -> None:
    doc = dv.open(files[name])
    assert doc.format == fmt and len(doc) == 1
    page = doc[0]
    assert (page.width, page.height, page.units) == (400, 300, "px")
    assert page.words() == [] and not page.has_text_layer and page.text() == ""


def test_native_render_and_region_mapping(files: dict[str, Path]) -> None:
    page = dv.open(files["square.png"])[0]
    assert page.units_per_inch == pytest.approx(200, abs=0.1)  # from the PNG's pHYs chunk
    image = page.render()
    assert image.image.size == (400, 300)
    half = page.render(dpi=100)
    assert half.image.size == (200, 150)
    square = BoundingBox(x0=100, y0=50, x1=200, y1=150)
    px = square.to_pixels(half.frame)
    assert px.xyxy == pytest.approx((50, 25, 100, 75))
    a = np.asarray(half.image)
    assert a[30:70, 55:95].max() < 20 and a[5:20, 5:20].min() > 235


def test_crop_of_image(files: dict[str, Path]) -> None:
    page = dv.open(files["square.png"])[0]
    crop = page.crop(BoundingBox(x0=90, y0=40, x1=210, y1=160), dpi=400)
    assert crop.image.size == (240, 240)
    inner = BoundingBox(x0=100, y0=50, x1=200, y1=150).to_pixels(crop.frame)
    assert inner.xyxy == pytest.approx((20, 20, 220, 220))


def test_multi_page_tiff(files: dict[str, Path]) -> None:
    doc = dv.open(files["multi.tiff"])
    assert doc.format == "tiff" and len(doc) == 3
    assert [(p.width, p.height) for p in doc] == [(100, 50), (110, 55), (120, 60)]
    assert doc[2].render().image.mode == "RGB"


def test_decompression_bomb(files: dict[str, Path]) -> None:
    with pytest.raises(dv.PageTooLargeError, match="100000x100000"):
        dv.open(files["bomb.png"])


def test_truncated_image(files: dict[str, Path]) -> None:
    with pytest.raises(dv.CorruptDocumentError, match="damaged or truncated"):
        dv.open(files["truncated.png"])[0]
