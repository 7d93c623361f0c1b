"""``docvlm.open``: any supported source to a [`Document`][docvlm.documents.base.Document]."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from docvlm.documents._sniff import sniff_format
from docvlm.documents.base import Document
from docvlm.errors import DocumentNotFoundError, PageTooLargeError, UnsupportedFormatError, UsageError
from docvlm.limits import get_limits

if TYPE_CHECKING:
    from docvlm.documents.web import WebOptions

__all__ = ["Source", "open_document", "sniff_format"]

#: What [`open_document`][docvlm.documents._open.open_document] takes: a path, the file's bytes, a binary file object, or a
#: URL / HTML text (a ``str``).
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]

_WEB_EXTENSIONS = (".html", ".htm", ".xhtml")


_URL_SCHEME = re.compile(r"\s*([a-z][a-z0-9+.-]+):", re.I)


def open_document(
    source: Source,
    password: str | None = None,
    *,
    format: str | None = None,
    max_image_pixels: int | None = None,
    web: WebOptions | None = None,
    words: Mapping[int, Sequence[Any]] | None = None,
    allow_local_files: bool | None = None,
) -> Document:
    """Open a PDF, an image or a web page as a [`Document`][docvlm.documents.base.Document].

    Args:
        source: a path, the file's bytes, a binary file object, an ``http(s)://`` URL, or (with
            ``format="html"``) the HTML text itself.
        password: the password of an encrypted PDF.
        format: ``"pdf"``, ``"image"`` or ``"html"`` to skip detection from the file's first bytes.
        max_image_pixels: refuse images with more pixels than this (decompression-bomb guard; default
            [`ResourceLimits.max_image_pixels`][docvlm.limits.ResourceLimits]).
        web: rendering and safety options for web pages (`WebOptions`).
        words: words you already have, used instead of the text layer and OCR:
            ``{page_index: [(text, (x0, y0, x1, y1)), ...]}``, boxes in page units (pixels for an image);
            see `use_words`.
        allow_local_files: what a string may name on this machine. ``None`` (the default): a path is opened,
            but a URL string of any scheme other than ``http(s)`` (``file://``, ``ftp://`` ...) is refused, so a
            URL from an untrusted source cannot read local files. ``True``: ``file://`` URLs are opened as paths
            too. ``False``: nothing local at all (paths and path objects are refused; bytes, file objects and
            ``http(s)`` URLs are opened), for an application that passes strings it does not control.

    Raises:
        DocumentNotFoundError: no file at the path.
        UnsupportedFormatError: not a PDF or supported image.
        CorruptDocumentError: damaged or truncated input.
        EncryptedDocumentError: a password is needed, or the one given is wrong.
        EmptyDocumentError: a document without pages.
        PageTooLargeError: an image over ``max_image_pixels``, or a file object over
            [`ResourceLimits.max_input_bytes`][docvlm.limits.ResourceLimits].
        BlockedURLError: a URL refused by the web safety rules (see `docvlm.documents.web`), a URL of
            another scheme, or a path when ``allow_local_files=False``.
    """
    doc = _open_source(source, password, format=format, max_image_pixels=max_image_pixels, web=web,
                       allow_local_files=allow_local_files)
    if words is not None:
        try:
            doc.use_words(words)
        except BaseException:
            doc.close()
            raise
    return doc


def _open_source(source: Source, password: str | None, *, format: str | None, max_image_pixels: int | None,
                 web: WebOptions | None, allow_local_files: bool | None) -> Document:
    path: str | None = None
    data: bytes
    kind = format.lower() if format else None
    if isinstance(source, str) and re.match(r"\s*https?://", source, re.I):
        from docvlm.documents.web import open_web

        return open_web(source, "url", web)
    if isinstance(source, str) and kind == "html" and source.lstrip().startswith("<"):
        from docvlm.documents.web import open_web

        return open_web(source, "html", web)
    if isinstance(source, str):
        source = _local_url(source, allow_local_files)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        label = str(p)
        if allow_local_files is False:
            from docvlm.documents.web import BlockedURLError

            raise BlockedURLError("local files are not allowed here (allow_local_files=False)", source=_short(label),
                                  hint="pass an http(s) URL, the file's bytes or a file object")
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
        label = str(getattr(source, "name", None) or "<file object>")
        limit = get_limits().max_input_bytes
        raw = source.read(limit + 1)
        if not isinstance(raw, bytes):
            raise UsageError("the file object must be opened in binary mode ('rb')")
        if len(raw) > limit:
            raise PageTooLargeError(f"the file object holds more than {limit:,} bytes (max_input_bytes)", source=label,
                                    hint="pass a path instead, or raise docvlm.limits max_input_bytes")
        data = raw
        head = data[:1024]
        if label == "<file object>":
            label = f"<file object, {len(data)} bytes>"
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
        from docvlm.documents.image import ImageDocument

        if path is not None:
            return ImageDocument(None, label, max_image_pixels=max_image_pixels, path=path)
        return ImageDocument(data, label, max_image_pixels=max_image_pixels)
    if format:
        raise UsageError(f"unknown format {format!r}", hint="use 'pdf', 'image' or 'html'")
    raise UnsupportedFormatError(
        "not a PDF or a supported image (unrecognised first bytes)", source=label,
        hint="docvlm reads PDF, PNG, JPEG, WebP, BMP, GIF and TIFF",
    )


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _local_url(source: str, allow_local_files: bool | None) -> str:
    """``source`` as a path: a ``file://`` URL becomes its path when local files are allowed; any other URL
    scheme is refused (a one-letter "scheme" is a Windows drive, so ``C:\\x.pdf`` stays a path)."""
    m = _URL_SCHEME.match(source)
    if m is None or len(m.group(1)) < 2:
        return source
    from docvlm.documents.web import BlockedURLError

    scheme = m.group(1).lower()
    shown = _short(source.strip())
    if scheme in ("http", "https"):
        raise BlockedURLError("a malformed http(s) URL", source=shown, hint="write http://host/path")
    if scheme != "file":
        if not source[m.end():].startswith("//") and scheme not in _KNOWN_SCHEMES:
            return source  # "notes:v2.pdf" is a file name with a colon, not a URL
        raise BlockedURLError(f"the URL scheme {scheme!r} is not supported", source=shown,
                              hint="docvlm opens http(s) URLs, paths, bytes and file objects")
    if not allow_local_files:
        raise BlockedURLError("file:// URLs are refused: they read local files", source=shown,
                              hint="pass allow_local_files=True for a URL you trust, or pass the path itself")
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(source.strip())
    if parts.netloc not in ("", "localhost"):
        raise BlockedURLError(f"a file:// URL on another host ({parts.netloc}) is not supported", source=shown)
    return unquote(parts.path)


# schemes refused even without "//" after the colon (they never name a local file)
_KNOWN_SCHEMES = frozenset({"data", "javascript", "mailto", "about", "blob", "ftp", "ftps", "ws", "wss", "gopher",
                            "dict", "ldap", "smb", "sftp", "ssh", "tel", "jar", "netdoc", "vbscript"})
