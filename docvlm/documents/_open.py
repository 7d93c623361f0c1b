"""``docvlm.open``: any supported source to a [`Document`][docvlm.documents.base.Document]."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from docvlm.documents._sniff import sniff_format
from docvlm.documents.base import Document
from docvlm.errors import DocumentNotFoundError, UnsupportedFormatError, UsageError

if TYPE_CHECKING:
    from docvlm.documents.web import WebOptions

__all__ = ["Source", "open_document", "sniff_format"]

#: What [`open_document`][docvlm.documents._open.open_document] takes: a path, the file's bytes, a binary file object, or a
#: URL / HTML text (a ``str``).
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]

_WEB_EXTENSIONS = (".html", ".htm", ".xhtml")


def open_document(
    source: Source,
    password: str | None = None,
    *,
    format: str | None = None,
    max_image_pixels: int | None = None,
    web: WebOptions | None = None,
    words: Mapping[int, Sequence[Any]] | None = None,
) -> Document:
    """Open a PDF, an image or a web page as a [`Document`][docvlm.documents.base.Document].

    Args:
        source: a path, the file's bytes, a binary file object, an ``http(s)://`` URL, or (with
            ``format="html"``) the HTML text itself.
        password: the password of an encrypted PDF.
        format: ``"pdf"``, ``"image"`` or ``"html"`` to skip detection from the file's first bytes.
        max_image_pixels: refuse images with more pixels than this (decompression-bomb guard).
        web: rendering and safety options for web pages (`WebOptions`).
        words: words you already have, used instead of the text layer and OCR:
            ``{page_index: [(text, (x0, y0, x1, y1)), ...]}``, boxes in page units (pixels for an image);
            see `use_words`.

    Raises:
        DocumentNotFoundError: no file at the path.
        UnsupportedFormatError: not a PDF or supported image.
        CorruptDocumentError: damaged or truncated input.
        EncryptedDocumentError: a password is needed, or the one given is wrong.
        EmptyDocumentError: a document without pages.
        PageTooLargeError: an image over ``max_image_pixels``.
        BlockedURLError: a URL refused by the web safety rules (see `docvlm.documents.web`).
    """
    doc = _open_source(source, password, format=format, max_image_pixels=max_image_pixels, web=web)
    if words is not None:
        try:
            doc.use_words(words)
        except BaseException:
            doc.close()
            raise
    return doc


def _open_source(source: Source, password: str | None, *, format: str | None, max_image_pixels: int | None,
                 web: WebOptions | None) -> Document:
    path: str | None = None
    data: bytes
    kind = format.lower() if format else None
    if isinstance(source, str) and re.match(r"\s*https?://", source, re.I):
        from docvlm.documents.web import open_web

        return open_web(source, "url", web)
    if isinstance(source, str) and source.lower().startswith("file://"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        source = url2pathname(urlsplit(source).path)
    if isinstance(source, str) and kind == "html" and source.lstrip().startswith("<"):
        from docvlm.documents.web import open_web

        return open_web(source, "html", web)
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
    if kind is None and path is not None and path.lower().endswith(_WEB_EXTENSIONS):
        kind = "html"
    kind = kind or sniff_format(head)
    if kind in ("html", "htm"):
        from docvlm.documents.web import open_web

        return open_web(path, "file", web, label=label) if path is not None else open_web(data, "html", web, label=label)
    if kind == "pdf":
        from docvlm.documents.pdf import PDFDocument

        return PDFDocument(data if path is None else None, path, label, password=password)
    if kind in ("image", "png", "jpeg", "jpg", "webp", "bmp", "tiff", "gif"):
        from docvlm.documents.image import DEFAULT_MAX_IMAGE_PIXELS, ImageDocument

        if path is not None:
            data = Path(path).read_bytes()
        return ImageDocument(data, label, max_image_pixels=max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS)
    if format:
        raise UsageError(f"unknown format {format!r}", hint="use 'pdf', 'image' or 'html'")
    raise UnsupportedFormatError(
        "not a PDF or a supported image (unrecognised first bytes)", source=label,
        hint="docvlm reads PDF, PNG, JPEG, WebP, BMP, GIF and TIFF",
    )
