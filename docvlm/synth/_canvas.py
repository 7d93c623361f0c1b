"""A page to draw on that remembers where each piece of ground truth was drawn, then measures it back.

Drawing positions are only used to *find* a value's words again: the truth boxes are the boxes of those
words in the text layer of the finished PDF, as `docvlm.Page.words` reports them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from docvlm.types.geometry import BoundingBox

__all__ = ["FONTS", "Canvas", "Mark"]

#: Font families of the PDF base-14 fonts: (regular, bold) PyMuPDF names.
FONTS: dict[str, tuple[str, str]] = {
    "helv": ("helv", "hebo"),
    "times": ("tiro", "tibo"),
    "cour": ("cour", "cobo"),
}

Align = Literal["left", "right", "center"]

_ADVANCES: dict[str, dict[str, float]] = {}  # font -> character -> advance at size 1
Color = tuple[float, float, float]


@dataclass
class Mark:
    """Where a piece of truth was drawn: its key, the text printed and a rectangle around it (points)."""

    key: str
    text: str
    rect: tuple[float, float, float, float]


@dataclass
class Canvas:
    """One PDF page; text and lines are collected and written in one pass by `finish`."""

    width: float
    height: float
    _texts: list[tuple[tuple[float, float], str, str, float, Color]] = field(default_factory=list)
    _lines: list[tuple[tuple[float, float, float, float], float, Color]] = field(default_factory=list)
    _rects: list[tuple[tuple[float, float, float, float], float, Color | None, Color | None]] = field(
        default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    @staticmethod
    def measure(text: str, font: str, size: float) -> float:
        """Advance width of ``text`` in points (base-14 fonts: the sum of the glyph advances, no kerning)."""
        widths = _ADVANCES.get(font)
        if widths is None:
            widths = _ADVANCES[font] = {}
        total = 0.0
        for ch in text:
            w = widths.get(ch)
            if w is None:
                import pymupdf

                w = widths[ch] = float(pymupdf.get_text_length(ch, fontname=font, fontsize=1) if _latin1(ch)
                                       else _font(font).text_length(ch, 1))
            total += w
        return total * size

    def text(self, x: float, y: float, text: str, *, font: str, size: float, align: Align = "left",
             color: Color = (0, 0, 0), mark: str | None = None,
             parts: dict[str, tuple[int, int]] | None = None) -> tuple[float, float]:
        """Draw ``text`` with its baseline at ``y``; ``x`` is its left, right or centre per ``align``.

        Args:
            mark: remember the whole text under this key.
            parts: remember substrings ``text[start:end]`` under their keys (whole words only).

        Returns:
            The left and right x of the drawn text.
        """
        width = self.measure(text, font, size)
        x0 = x - width if align == "right" else x - width / 2 if align == "center" else x
        self._texts.append(((x0, y), text, font, size, color))
        if mark is not None:
            self.marks.append(Mark(mark, text, (x0, y - size, x0 + width, y + size * 0.35)))
        for key, (start, end) in (parts or {}).items():
            a = x0 + self.measure(text[:start], font, size)
            b = x0 + self.measure(text[:end], font, size)
            self.marks.append(Mark(key, text[start:end], (a, y - size, b, y + size * 0.35)))
        return x0, x0 + width

    def mark(self, key: str, text: str, rect: tuple[float, float, float, float]) -> None:
        """Remember ``text``, drawn by several `text` calls inside ``rect``, under ``key``."""
        self.marks.append(Mark(key, text, rect))

    def line(self, x0: float, y0: float, x1: float, y1: float, *, width: float = 0.8,
             color: Color = (0, 0, 0)) -> None:
        self._lines.append(((x0, y0, x1, y1), width, color))

    def rect(self, x0: float, y0: float, x1: float, y1: float, *, width: float = 0.8,
             color: Color | None = (0, 0, 0), fill: Color | None = None) -> None:
        self._rects.append(((x0, y0, x1, y1), width, color, fill))

    def finish(self, title: str) -> bytes:
        """The PDF bytes: deterministic (no creation date, no random file ID)."""
        import pymupdf

        doc = pymupdf.open()
        page = doc.new_page(width=self.width, height=self.height)
        shape = page.new_shape()
        for (x0, y0, x1, y1), width, color, fill in self._rects:
            shape.draw_rect(pymupdf.Rect(x0, y0, x1, y1))
            shape.finish(width=width, color=color, fill=fill)
        for (x0, y0, x1, y1), width, color in self._lines:
            shape.draw_line((x0, y0), (x1, y1))
            shape.finish(width=width, color=color)
        # "€": the base-14 fonts have it, the Latin-1 text path does not (it prints "·"); a page that prints it is
        # written whole through a TextWriter, so that its words and their neighbours stay one text flow
        latin1 = all(_latin1(text) for _, text, _, _, _ in self._texts)
        writers: dict[Color, Any] = {}
        for point, text, font, size, color in self._texts:
            if latin1:
                shape.insert_text(point, text, fontname=font, fontsize=size, color=color)
            else:
                writer = writers.setdefault(color, pymupdf.TextWriter(page.rect, color=color))
                writer.append(point, text, font=_font(font), fontsize=size)
        shape.commit()
        for writer in writers.values():
            writer.write_text(page)
        doc.set_metadata({"title": title, "creator": "docvlm.synth", "producer": "docvlm.synth"})
        data: bytes = doc.tobytes(garbage=1, deflate=True, no_new_id=True)
        doc.close()
        return data


@functools.cache
def _font(name: str) -> Any:
    import pymupdf

    return pymupdf.Font(name)


def _latin1(text: str) -> bool:
    return all(ord(ch) < 256 for ch in text)


def measure_marks(pdf: bytes, marks: list[Mark]) -> dict[str, tuple[str, BoundingBox]]:
    """Find each mark's words in the PDF's text layer: ``key -> (printed text, union of the word boxes)``.

    Raises:
        RuntimeError: a mark's words are not exactly its text (a layout bug: overlapping or merged words).
    """
    from docvlm.documents import open_document

    with open_document(pdf) as doc:
        rows: list[Any] = doc[0].words().rows
    out: dict[str, tuple[str, BoundingBox]] = {}
    for m in marks:
        x0, y0, x1, y1 = m.rect
        hit = [r for r in rows if x0 - 1 <= (r[0] + r[2]) / 2 <= x1 + 1 and y0 - 1 <= (r[1] + r[3]) / 2 <= y1 + 1]
        found = " ".join(r[4] for r in hit)
        want = " ".join(m.text.split())
        if found != want or not hit:
            raise RuntimeError(f"synthetic layout bug: {m.key!r} should read {want!r} in the text layer, found {found!r}")
        box = BoundingBox(x0=min(r[0] for r in hit), y0=min(r[1] for r in hit),
                          x1=max(r[2] for r in hit), y1=max(r[3] for r in hit))
        out[m.key] = (want, box)
    return out
