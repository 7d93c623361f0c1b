"""A file's format from its first bytes (shared by ``dv.open`` and the web reader, which meets PDFs and images)."""

from __future__ import annotations

import re

__all__ = ["sniff_format"]

_HTML_START = re.compile(rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S)


def sniff_format(head: bytes) -> str | None:
    """The format of a file from its first bytes: ``"pdf"``, ``"image"``, ``"html"`` or ``None``."""
    if head.lstrip(b"\x00\t\n\r\x0c ")[:5] == b"%PDF-" or b"%PDF-" in head[:1024]:
        return "pdf"
    if _HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "html"
    image_magic = (
        b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"GIF87a", b"GIF89a",
    )
    if head.startswith(image_magic) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return None
