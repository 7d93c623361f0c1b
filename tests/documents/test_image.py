from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import docvlm as dv
from docvlm.limits import override_limits
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
    doc = dv.open(files["truncated.png"])  # opening and page sizes read the header only
    assert (doc[0].width, doc[0].height) == (400, 300)
    with pytest.raises(dv.CorruptDocumentError, match="damaged or truncated") as info:
        doc[0].render()
    assert info.value.page == 0 and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# the decode budget (issue 15, finding 4): nothing is decoded before it is needed, and never over the budget


def png_header(width: int, height: int, color_type: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` of ``color_type`` (6: RGBA, 3: palette) and no pixels."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    plte = chunk(b"PLTE", b"\xff\xff\xff\x00\x00\x00") if color_type == 3 else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + plte + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + chunk(b"IEND", b""))


def test_an_rgba_png_over_the_decode_budget_opens_but_is_refused_before_decoding() -> None:
    # 12000 x 12000 RGBA: 144 megapixels, under the pixel limit, but 576 MB decoded plus its RGB copy
    doc = dv.open(png_header(12000, 12000, 6))
    assert doc.info().pages[0].width == 12000  # info reads the header only
    with pytest.raises(dv.PageTooLargeError, match=r"12000x12000 RGBA image needs about 1099 MiB, over the budget "
                                                   r"of 384 MiB") as info:
        doc[0].render(dpi=10)
    assert "max_image_bytes" in str(info.value.hint)
    with pytest.raises(dv.PageTooLargeError, match=r"12000x12000 P image needs about 687 MiB"):
        dv.open(png_header(12000, 12000, 3))[0].render(dpi=10)


def test_the_decode_budget_is_configurable_per_block() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (600, 500), (10, 20, 30, 255)).save(buf, format="PNG")
    with override_limits(max_image_bytes=2 * 2**20), pytest.raises(dv.PageTooLargeError, match="600x500 RGBA"):
        dv.open(buf.getvalue())[0].render()
    image = dv.open(buf.getvalue())[0].render()  # outside the block the default budget holds
    assert image.image.getpixel((5, 5)) == (10, 20, 30)


def test_a_jpeg_over_the_budget_is_decoded_reduced_and_keeps_page_geometry() -> None:
    from PIL import Image

    img = Image.new("RGB", (2000, 1000), "white")
    img.paste((0, 0, 0), (1000, 500, 1400, 700))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    # full size needs 2000*1000*(4+4) = 16 MB; 1/4 (500x250) needs 1 MB and fits 2.5 MB, 1/2 (4 MB) does not
    with override_limits(max_image_bytes=2_500_000):
        page = dv.open(buf.getvalue())[0]
        image = page.render(dpi=18)  # 72 dpi page: a quarter of the page's pixels
        decoded = page.pil_image.size
    assert (page.width, page.height) == (2000, 1000) and decoded == (500, 250)
    assert image.size.width == 500 and image.size.height == 250
    dark = BoundingBox(x0=1000, y0=500, x1=1400, y1=700).to_pixels(image.frame)
    assert dark.xyxy == pytest.approx((250, 125, 350, 175))
    a = np.asarray(image.image)
    assert a[130:170, 255:345].max() < 30 and a[100:120, 200:240].min() > 225


def test_a_200_page_tiff_opens_without_decoding_a_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from docvlm.documents.image import ImageDocument

    frames = [Image.new("L", (80 + i % 7, 60), 255) for i in range(200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    decoded: list[int] = []
    real = ImageDocument._decode

    def counting(self: ImageDocument, index: int, upright: tuple[int, int]) -> Image.Image:
        decoded.append(index)
        return real(self, index, upright)

    monkeypatch.setattr(ImageDocument, "_decode", counting)
    doc = dv.open(buf.getvalue())
    info = doc.info()
    assert info.page_count == 200 and [p.width for p in info.pages[:8]] == [80, 81, 82, 83, 84, 85, 86, 80]
    assert decoded == []
    assert doc[199].render().size.width == 80 + 199 % 7
    assert decoded == [199]


def test_exif_orientation_is_read_from_the_header_and_applied_on_decode() -> None:
    from PIL import Image, ImageOps

    img = Image.new("RGB", (40, 20), "white")
    img.paste((0, 0, 0), (0, 0, 10, 20))  # dark left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    page = dv.open(buf.getvalue())[0]
    assert (page.width, page.height) == (20, 40)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))).convert("RGB"), dtype=int)
    got = np.asarray(page.render().image, dtype=int)
    assert got.shape == expected.shape == (40, 20, 3)
    assert np.abs(got - expected).max() == 0
    assert got[:8, :].mean() < 40 and got[12:, :].mean() > 200  # the dark edge is on top


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    from PIL import Image

    a = np.tile(np.linspace(0, 4000, 64, dtype=np.uint16), (8, 1))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    got = np.asarray(dv.open(buf.getvalue())[0].render().image)[:, :, 0]
    assert got[0, 0] == 0 and got[0, -1] == 255 and 120 <= got[0, 32] <= 135
