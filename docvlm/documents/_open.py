"""``docvlm.open``: any supported source to a :class:`~docvlm.documents.Document`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from docvlm.documents.base import Document
from docvlm.errors import DocumentNotFoundError, UnsupportedFormatError, UsageError

__all__ = ["open_document", "sniff_format"]

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def sniff_format(head: bytes) -> str | None:
    """The format of a file from its first bytes: ``"pdf"``, ``"image"`` or ``None``."""
    if head.lstrip(b"\x00\t\n\r\x0c ")[:5] == b"%PDF-" or b"%PDF-" in head[:1024]:
        return "pdf"
    image_magic = (
        b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"GIF87a", b"GIF89a",
    )
    if head.startswith(image_magic) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return None


def open_document(
    source: Source,
    password: str | None = None,
    *,
    format: str | None = None,
    max_image_pixels: int | None = None,
) -> Document:
    """Open a PDF or an image as a :class:`~docvlm.documents.Document`.

    Args:
        source: a path, the file's bytes, or a binary file object.
        password: the password of an encrypted PDF.
        format: ``"pdf"`` or ``"image"`` to skip detection from the file's first bytes.
        max_image_pixels: refuse images with more pixels than this (decompression-bomb guard).

    Raises:
        DocumentNotFoundError: no file at the path.
        UnsupportedFormatError: not a PDF or supported image.
        CorruptDocumentError: damaged or truncated input.
        EncryptedDocumentError: a password is needed, or the one given is wrong.
        EmptyDocumentError: a document without pages.
        PageTooLargeError: an image over ``max_image_pixels``.
    """
    path: str | None = None
    data: bytes
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        label = str(p)
        if not p.exists():
            raise DocumentNotFoundError("no such file", source=label, hint="check the path")
        if p.is_dir():
            raise UsageError("this is a folder, not a document", source=label, hint="pass a file inside it")
        try:
            with p.open("rb") as fh:
                head = fh.read(1024)
        except OSError as exc:
            raise DocumentNotFoundError(f"cannot read the file ({exc.strerror})", source=label) from exc
        path = str(p)
        data = b""
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        head = data[:1024]
        label = f"<{len(data)} bytes>"
    elif hasattr(source, "read"):
        raw = source.read()
        if not isinstance(raw, bytes):
            raise UsageError("the file object must be opened in binary mode ('rb')")
        data = raw
        head = data[:1024]
        label = str(getattr(source, "name", None) or f"<file object, {len(data)} bytes>")
    else:
        raise UsageError(
            f"cannot open a {type(source).__name__}", hint="pass a path, bytes, or a binary file object"
        )

    if not head:
        raise UnsupportedFormatError("the file is empty (0 bytes)", source=label)
    kind = format.lower() if format else sniff_format(head)
    if kind == "pdf":
        from docvlm.documents.pdf import PDFDocument

        return PDFDocument(data if path is None else None, path, label, password=password)
    if kind in ("image", "png", "jpeg", "jpg", "webp", "bmp", "tiff", "gif"):
        from docvlm.documents.image import DEFAULT_MAX_IMAGE_PIXELS, ImageDocument

        if path is not None:
            data = Path(path).read_bytes()
        return ImageDocument(data, label, max_image_pixels=max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS)
    if format:
        raise UsageError(f"unknown format {format!r}", hint="use 'pdf' or 'image'")
    raise UnsupportedFormatError(
        "not a PDF or a supported image (unrecognised first bytes)", source=label,
        hint="docvlm reads PDF, PNG, JPEG, WebP, BMP, GIF and TIFF",
    )
