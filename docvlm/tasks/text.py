"""The text-grounded way to see a page: words grouped into numbered segments and visual lines.

Text-only models (the offline default) and VLMs that want evidence read a page as its words: from the text
layer, or OCR for scans and images. Words are grouped into *segments* (runs of words on one text line with
no wide gap) and segments into *visual lines* (segments side by side at the same height, e.g. a label and
its value), each with its box in page space. Models answer by choosing among segments or values found in
them, under a constraint that only allows what exists, so every answer's box is exact to the glyph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from docvlm.documents.base import Document, Page
from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox
from docvlm.types.text import WordList, WordRow

__all__ = [
    "Line",
    "Segment",
    "document_segments",
    "group_lines",
    "numbers_in",
    "page_words",
    "pages_of",
    "parse_number",
    "read_text",
    "segments_of",
    "serialize_lines",
    "words_in",
]


@dataclass
class Segment:
    """Words of one text line without a wide gap, e.g. ``Invoice number:`` or ``INV-2026-0042``.

    Attributes:
        id: 0-based number of the segment in its document (stable in reading order).
        page: 0-based page index.
        words: the segment's word rows ``(x0, y0, x1, y1, text, block, line, index)``.
    """

    id: int
    page: int
    words: list[WordRow]

    @property
    def text(self) -> str:
        return " ".join(str(w[4]) for w in self.words)

    @property
    def box(self) -> BoundingBox:
        return BoundingBox(
            x0=min(w[0] for w in self.words), y0=min(w[1] for w in self.words),
            x1=max(w[2] for w in self.words), y1=max(w[3] for w in self.words),
        )

    def span_box(self, start: int, end: int) -> BoundingBox:
        """The box of the words covering characters ``start:end`` of [`text`][docvlm.tasks.text]."""
        pos = 0
        chosen: list[WordRow] = []
        for w in self.words:
            t = str(w[4])
            if pos < end and pos + len(t) > start:
                chosen.append(w)
            pos += len(t) + 1
        chosen = chosen or self.words
        return BoundingBox(
            x0=min(w[0] for w in chosen), y0=min(w[1] for w in chosen),
            x1=max(w[2] for w in chosen), y1=max(w[3] for w in chosen),
        )


@dataclass
class Line:
    """Segments that sit side by side at the same height: how a reader sees a row of the page."""

    page: int
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "   ".join(s.text for s in self.segments)

    @property
    def box(self) -> BoundingBox:
        box = self.segments[0].box
        for s in self.segments[1:]:
            box = box.union(s.box)
        return box


def page_words(page: Page) -> WordList:
    """The page's words: its text layer, or OCR for scans and images when an OCR engine is installed."""
    return page.words(ocr="auto")


def pages_of(document: Document | Page, pages: Sequence[int] | None = None) -> list[Page]:
    """The pages a document-level task reads: one page as given, or the document's pages (``pages``: 0-based)."""
    if isinstance(document, Page):
        return [document]
    return list(document.pages(pages) if pages is not None else document)


def document_segments(pages: Sequence[Page]) -> list[Segment]:
    """The segments of several pages, numbered through in reading order."""
    segments: list[Segment] = []
    for page in pages:
        segments += segments_of(page_words(page).rows, page.index, first_id=len(segments))
    return segments


def words_in(words: Iterable[WordRow], region: BoundingBox | None) -> list[WordRow]:
    """The words whose centre lies inside ``region`` (all of them without a region)."""
    rows = list(words)
    if region is None:
        return rows
    return [w for w in rows if region.x0 <= (w[0] + w[2]) / 2 <= region.x1 and region.y0 <= (w[1] + w[3]) / 2 <= region.y1]


def segments_of(words: Sequence[WordRow], page: int, *, first_id: int = 0, gap: float = 1.2) -> list[Segment]:
    """Group words into segments: same text line (block, line), split where the gap between two words exceeds
    ``gap`` times the line height. Segments come in reading order (top to bottom, then left to right)."""
    by_line: dict[tuple[int, int], list[WordRow]] = {}
    for w in words:
        by_line.setdefault((int(w[5]), int(w[6])), []).append(w)
    pieces: list[list[WordRow]] = []
    for line_words in by_line.values():
        line_words.sort(key=lambda w: w[0])
        current = [line_words[0]]
        for w in line_words[1:]:
            prev = current[-1]
            height = max(prev[3] - prev[1], w[3] - w[1], 1e-6)
            if w[0] - prev[2] > gap * height:
                pieces.append(current)
                current = [w]
            else:
                current.append(w)
        pieces.append(current)
    pieces.sort(key=lambda p: (round(min(w[1] for w in p) / 4), min(w[0] for w in p)))
    return [Segment(first_id + i, page, p) for i, p in enumerate(pieces)]


def group_lines(segments: Sequence[Segment]) -> list[Line]:
    """Group segments of one page into visual lines: a segment joins a line when their vertical extents
    overlap by more than half of the smaller height."""
    lines: list[Line] = []
    for seg in sorted(segments, key=lambda s: (s.box.y0, s.box.x0)):
        b = seg.box
        for line in lines:
            lb = line.box
            overlap = min(lb.y1, b.y1) - max(lb.y0, b.y0)
            if line.page == seg.page and overlap > 0.5 * min(lb.height, b.height):
                line.segments.append(seg)
                line.segments.sort(key=lambda s: s.box.x0)
                break
        else:
            lines.append(Line(seg.page, [seg]))
    lines.sort(key=lambda ln: (ln.page, ln.box.y0))
    return lines


def serialize_lines(lines: Sequence[Line], *, with_ids: bool = False, max_chars: int | None = None) -> str:
    """The page text as a model reads it: one visual line per line, optionally ``[id]``-tagged segments."""
    out: list[str] = []
    total = 0
    for line in lines:
        text = "   ".join(f"[{s.id}] {s.text}" for s in line.segments) if with_ids else line.text
        if max_chars is not None and total + len(text) + 1 > max_chars:
            break
        out.append(text)
        total += len(text) + 1
    return "\n".join(out)


def read_text(page: Page, region: BoundingBox | None = None) -> str:
    """The text of a page or region from its words (text layer or OCR), as visual lines."""
    if region is not None:
        region = page.check_region(region)
    words = words_in(page_words(page).rows, region)
    return serialize_lines(group_lines(segments_of(words, page.index)))


# values inside segments ----------------------------------------------------------------------------------
# a number as printed, not part of a word, a date (2026-11-02, 02/11/2026) or an identifier (INV-2026-0042)
_NUMBER = re.compile(r"(?<![\w./-])[-+]?(?:\d{1,3}(?:[,.' ]\d{3})+|\d+)(?:[.,]\d+)?(?![\w/-]|[.,]\d)")


def parse_number(text: str) -> float | None:
    """A number as printed (``1,234.50``, ``1.234,50``, ``145.78``, ``-3``), or ``None``."""
    t = text.strip().replace("'", "").replace(" ", "")
    if not t:
        return None
    if "," in t and "." in t:
        t = t.replace(",", "") if t.rfind(".") > t.rfind(",") else t.replace(".", "").replace(",", ".")
    elif "," in t:
        head, _, tail = t.rpartition(",")
        t = head.replace(",", "") + ("." + tail if len(tail) != 3 else tail)
    try:
        return float(t)
    except ValueError:
        return None


def numbers_in(text: str) -> list[tuple[int, int, float]]:
    """``(start, end, value)`` of every number in ``text``."""
    out = []
    for m in _NUMBER.finditer(text):
        value = parse_number(m.group(0))
        if value is not None:
            out.append((m.start(), m.end(), value))
    return out


def require_words(page: Page, words: Sequence[Any]) -> None:
    """A typed error when a page has no words to ground text on."""
    if not words:
        raise UsageError(
            "the page has no text layer and OCR found no words",
            source=page.document.source, page=page.index,
            hint="for scans install an OCR engine (apt-get install tesseract-ocr) or use a vision model",
        )
