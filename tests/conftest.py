"""Shared fixtures: documents generated once per session (PDFs with PyMuPDF, images with Pillow)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def finish_pdf(doc: Any, page: Any, *, cropbox: tuple[float, float, float, float] | None = None,
               rotation: int = 0) -> bytes:
    """Apply a CropBox and a rotation to ``page``, then return the document's bytes and close it."""
    import pymupdf

    if cropbox is not None:
        page.set_cropbox(pymupdf.Rect(*cropbox))
    if rotation:
        page.set_rotation(rotation)
    data: bytes = doc.tobytes()
    doc.close()
    return data


@pytest.fixture
def torch_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny models run several times faster on one thread; constraint indexes go to a temporary cache."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("DOCVLM_CACHE_DIR", str(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_pdf(pages: int = 1, *, width: float = 300, height: float = 200, rotation: int = 0,
             cropbox: tuple[float, float, float, float] | None = None, text: str = "Hello") -> bytes:
    """A PDF whose page i carries ``f"{text}{i}"`` at (50, 60) in 20 pt Helvetica."""
    import pymupdf

    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=width, height=height)
        page.insert_text((50, 60), f"{text}{i}", fontsize=20)
        if cropbox is not None:
            page.set_cropbox(pymupdf.Rect(*cropbox))
        if rotation:
            page.set_rotation(rotation)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no pixel data (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


ZERO_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type/Pages/Kids[]/Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test document, written once per session."""
    import pymupdf
    from PIL import Image

    root = tmp_path_factory.mktemp("docs")
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = root / name
        out[name].write_bytes(data)

    put("simple.pdf", make_pdf())
    put("multi.pdf", make_pdf(pages=5))
    put("rotated90.pdf", make_pdf(rotation=90))
    put("cropped.pdf", make_pdf(cropbox=(20, 30, 280, 190)))
    doc = pymupdf.open(stream=make_pdf(pages=2), filetype="pdf")
    put("encrypted.pdf", doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="s3cret"))
    doc.close()
    put("huge.pdf", make_pdf(width=200 * 72, height=200 * 72))
    simple = make_pdf(pages=3)
    put("truncated.pdf", simple[:100])
    put("half.pdf", simple[: len(simple) // 2])
    put("tail-truncated.pdf", simple[:-40])
    put("empty.pdf", b"")
    put("zero-pages.pdf", ZERO_PAGE_PDF)
    put("notes.txt", b"just some text, not a document\n")
    put("bomb.png", png_header_only(100_000, 100_000))

    img = Image.new("RGB", (400, 300), "white")
    img.paste((0, 0, 0), (100, 50, 200, 150))
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(200, 200))
    put("square.png", buf.getvalue())
    png = buf.getvalue()
    put("truncated.png", png[: len(png) // 2])
    for fmt, name in (("JPEG", "square.jpg"), ("WEBP", "square.webp"), ("BMP", "square.bmp")):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        put(name, buf.getvalue())
    frames = [Image.new("L", (100 + 10 * i, 50 + 5 * i), 255) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    put("multi.tiff", buf.getvalue())
    return out
