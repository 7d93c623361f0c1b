"""Candidate values on a page: every run of printed text a field's value could be, with its box.

A value on a real document is rarely one whole text segment: a total follows its label on the same segment
(``TOTAL: 9.00``), a company name carries a registration number (``AEON CO. (M) BHD (126926-H)``), an address
runs over three lines, a date sits inside ``12 MAR 2018 18:19``. `page_spans` offers all of these as
`Span` s:

- ``seg``: a whole segment; ``line``: a whole visual line of several segments; ``run``: 2 or 3 neighbouring
  segments of a line (``$`` and ``0.00`` printed apart);
- ``pre`` / ``suf``: a segment without its last / first words (what was cut is kept, it tells a label from a
  value); a long segment is cut only after its colons, and ``mid`` is the value between two labels;
- ``block``: a segment and the segments stacked under it in the same column (2 to `MAX_BLOCK_LINES`
  lines: addresses, names over two lines, multi-line answers); ``lines``: whole visual lines, one under another;
- ``date`` / ``num``: a date or a number printed inside a segment.

Which span is a field's value is decided by a learned ranker (`docvlm.tasks._rank`), never by this module.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from docvlm.tasks.text import Line, Segment, numbers_in
from docvlm.types.geometry import BoundingBox

__all__ = ["MAX_BLOCK_LINES", "MAX_RUN_SEGMENTS", "Span", "dates_in", "page_spans"]

#: The most lines a multi-line value (an address) may span.
MAX_BLOCK_LINES = 6
#: The most neighbouring segments of one line a span may join.
MAX_RUN_SEGMENTS = 3
_MAX_SPAN_CHARS = 300
_MAX_CUT_TOKENS = 10  # prefixes and suffixes of segments with more words than this are not offered


@dataclass(eq=False)
class Span:
    """A run of printed text that may be a field's value.

    Attributes:
        text: the text as printed (words joined by single spaces, lines by a space).
        kind: ``seg``, ``line``, ``run``, ``pre``, ``suf``, ``mid``, ``block``, ``lines``, ``date`` or ``num``.
        page: 0-based page.
        parts: the segments it reads from, each with the character range used: ``(segment, start, end)``.
        line: index of its first visual line on the page (0 = top).
        lines: how many visual lines it spans.
        cut_before: text of its segment before it (``suf``, ``date``, ``num``), e.g. the label ``TOTAL:``.
        cut_after: text of its segment after it (``pre``, ``date``, ``num``), e.g. ``(126926-H)``.
    """

    text: str
    kind: str
    page: int
    parts: list[tuple[Segment, int, int]]
    line: int
    lines: int = 1
    cut_before: str = ""
    cut_after: str = ""
    _box: BoundingBox | None = field(default=None, repr=False)

    @property
    def box(self) -> BoundingBox:
        """The union of the boxes of its words, page space."""
        if self._box is None:
            box = None
            for seg, start, end in self.parts:
                b = seg.span_box(start, end)
                box = b if box is None else box.union(b)
            assert box is not None
            self._box = box
        return self._box

    @property
    def segment(self) -> Segment:
        """The (first) segment it reads from."""
        return self.parts[0][0]

    @property
    def segment_ids(self) -> tuple[int, ...]:
        return tuple(seg.id for seg, _, _ in self.parts)

    @property
    def words(self) -> set[tuple[int, int]]:
        """The printed words it covers, as (segment id, character offset of the word): two spans that share one
        read the same ink."""
        out = set()
        for seg, start, end in self.parts:
            pos = 0
            for w in seg.words:
                t = str(w[4])
                if pos < end and pos + len(t) > start:
                    out.add((seg.id, pos))
                pos += len(t) + 1
        return out


# dates ----------------------------------------------------------------------------------------------------
_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december"]
# the months in the other languages invoices are most often printed in (French, German, Spanish, Italian, Dutch,
# Portuguese): calendar words, with the abbreviations each language prints ("févr.", "Okt", "dic"); not those
# that are English words ("set", "out", "ago", "mag", "lug": "1 SET 12.00" is a receipt's line, not a date)
_FOREIGN_MONTHS = [
    "janvier janv januar jänner enero ene gennaio gen januari janeiro",
    "février févr fév fevrier fevr februar febrero febbraio februari fevereiro fev",
    "mars märz maerz marzo maart mrt março marco mär mrz",
    "avril avr abril abr aprile",
    "mai mayo maggio mei maio",
    "juin juni junio giugno junho giu",
    "juillet juil juli julio luglio julho",
    "août aout agosto augustus",
    "septembre sept septiembre settembre setembro",
    "octobre oktober octubre ottobre ott oct okt outubro",
    "novembre noviembre nov",
    "décembre déc decembre dezember diciembre dicembre december dezembro dez dic",
]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)} | {m[:3]: i for i, m in enumerate(_MONTH_NAMES, 1)} | {
    "sept": 9} | {w: i for i, words in enumerate(_FOREIGN_MONTHS, 1) for w in words.split()}
_MON = r"(?P<mon>[^\W\d_]{3,10})\.?"
# a date ends where its digits do, or (a four-digit year) where a time glued to it by OCR begins: "05-03-201819:02"
_END = r"(?:(?!\d)|(?<=\d{4})(?=\d{1,2}:\d{2}))"
_DE = r"(?:\s*(?i:de|del))?"  # "7 de mayo de 2014", "7 DE MAYO DEL 2014"
_DATE_RES = [
    re.compile(r"(?<![\d.])(?P<y>\d{4})[-./](?P<m>\d{1,2})[-./](?P<d>\d{1,2})(?![\d])"),
    re.compile(r"(?<![\d.])(?P<a>\d{1,2})\s?[-./]\s?(?P<b>\d{1,2})\s?[-./]\s?(?P<y>\d{4}|\d{2})" + _END),
    # a two-digit year is not followed by decimals: "2 MARS 12.90" is a quantity, a name and a price
    re.compile(rf"(?<![\d])(?P<d>\d{{1,2}})(?i:st|nd|rd|th|er|º)?[\s./-]*(?i:de\s+)?{_MON}{_DE}[\s.,/-]*"
               rf"(?P<y>\d{{4}}|\d{{2}}(?![.,]\d))" + _END),
    re.compile(rf"(?<![^\W\d_]){_MON}[\s.-]*(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*(?P<y>\d{{4}})" + _END),
]


def _year(text: str) -> int:
    y = int(text)
    return y if len(text) == 4 else 2000 + y if y < 70 else 1900 + y


def dates_in(text: str) -> list[tuple[int, int, dt.date]]:
    """``(start, end, date)`` of every date printed in ``text``: ISO and other year-first dates, day/month/year
    with ``/ - .`` and two- or four-digit years (month/day/year where only that is a valid date), and dates with
    month names (``12 MAR 2018``, ``March 8, 2026``, ``August 3 , 2014``, ``15-May-25``), English or the other
    languages invoices are often printed in (``1er février 2014``, ``3. März 2014``, ``7 de mayo de 2014``)."""
    out: list[tuple[int, int, dt.date]] = []
    taken: list[tuple[int, int]] = []
    for pattern in _DATE_RES:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            g = m.groupdict()
            tries: list[tuple[int, int, int]] = []
            if g.get("mon") is not None:
                month = _MONTHS.get(g["mon"].lower().rstrip("."))
                if month is None:
                    continue
                tries = [(_year(g["y"]), month, int(g["d"]))]
            elif g.get("a") is not None:
                y = _year(g["y"])
                tries = [(y, int(g["b"]), int(g["a"])), (y, int(g["a"]), int(g["b"]))]
            else:
                tries = [(int(g["y"]), int(g["m"]), int(g["d"]))]
            for y, mo, d in tries:
                try:
                    out.append((m.start(), m.end(), dt.date(y, mo, d)))
                except ValueError:
                    continue
                taken.append((m.start(), m.end()))
                break
    return sorted(out)


# spans ----------------------------------------------------------------------------------------------------
def _token_starts(text: str) -> list[int]:
    return [m.start() for m in re.finditer(r"\S+", text)]


def _stacked_under(seg: Segment, line: Line) -> Segment | None:
    """The segment of ``line`` that continues ``seg``'s column: horizontally overlapping, nearest left edge."""
    b = seg.box
    best = None
    for s in line.segments:
        sb = s.box
        overlaps = min(sb.x1, b.x1) - max(sb.x0, b.x0) > 0.3 * min(sb.width, b.width)
        if overlaps and (best is None or abs(sb.x0 - b.x0) < abs(best.box.x0 - b.x0)):
            best = s
    return best


def page_spans(lines: Sequence[Line]) -> list[Span]:
    """Every candidate span of one page's visual lines (top to bottom), duplicates (same text, same words)
    removed."""
    out: list[Span] = []
    seen: set[tuple[str, tuple[tuple[int, int, int], ...]]] = set()

    def add(span: Span) -> None:
        span.text = " ".join(span.text.split())
        if not span.text or len(span.text) > _MAX_SPAN_CHARS:
            return
        key = (span.text, tuple((s.id, a, b) for s, a, b in span.parts))
        if key not in seen:
            seen.add(key)
            out.append(span)

    for li, line in enumerate(lines):
        whole = [(s, 0, len(s.text)) for s in line.segments]
        if len(line.segments) > 1:
            add(Span(line.text, "line", line.page, whole, li))
        for a in range(len(line.segments)):  # runs of neighbouring segments ("$" "0.00", "4/ 22/" "90")
            for b in range(a + 2, min(a + MAX_RUN_SEGMENTS, len(line.segments)) + 1):
                if b - a < len(line.segments):
                    run = line.segments[a:b]
                    add(Span(" ".join(s.text for s in run), "run", line.page, [(s, 0, len(s.text)) for s in run], li))
        # whole lines under this one (a centred address whose last line holds two segments)
        parts, last = list(whole), line
        for k, nxt in enumerate(lines[li + 1:li + MAX_BLOCK_LINES], 2):
            if nxt.page != line.page or nxt.box.y0 - last.box.y1 > 1.2 * max(last.box.height, 1e-6):
                break
            parts += [(s, 0, len(s.text)) for s in nxt.segments]
            last = nxt
            add(Span(" ".join(s.text for s, _, _ in parts), "lines", line.page, list(parts), li, lines=k))
        for seg in line.segments:
            t = seg.text
            add(Span(t, "seg", seg.page, [(seg, 0, len(t))], li))
            starts = _token_starts(t)
            if 1 < len(starts) <= _MAX_CUT_TOKENS:
                cuts = starts[1:]
            else:  # a long segment: cut only after its colons ("Contact: Ms. Joy Weathers  Description: ...")
                cuts = [m.end() + len(t[m.end():]) - len(t[m.end():].lstrip()) for m in re.finditer(r":(?=\s)", t)]
            for k in cuts:
                head = t[:k].rstrip()
                add(Span(head, "pre", seg.page, [(seg, 0, len(head))], li, cut_after=t[k:]))
                add(Span(t[k:], "suf", seg.page, [(seg, k, len(t))], li, cut_before=t[:k]))
            if len(starts) > _MAX_CUT_TOKENS:  # between two labels: "Label: value  Label 2: ..."
                for k0, k1 in itertools.pairwise(cuts):
                    inner = [k for k in starts if k0 < k < k1][:_MAX_CUT_TOKENS]
                    for k in inner:
                        add(Span(t[k0:k].rstrip(), "mid", seg.page, [(seg, k0, len(t[:k].rstrip()))], li,
                                 cut_before=t[:k0], cut_after=t[k:]))
            for start, end, _ in dates_in(t):
                if (start, end) != (0, len(t)):
                    add(Span(t[start:end], "date", seg.page, [(seg, start, end)], li, cut_before=t[:start],
                             cut_after=t[end:]))
            for start, end, _ in numbers_in(t):
                if (start, end) != (0, len(t)):
                    add(Span(t[start:end], "num", seg.page, [(seg, start, end)], li, cut_before=t[:start],
                             cut_after=t[end:]))
            # the column under this segment: a name over an address, an answer over several lines
            parts = [(seg, 0, len(t))]
            current = seg
            for nxt in lines[li + 1:]:
                if nxt.page != seg.page or len(parts) >= MAX_BLOCK_LINES:
                    break
                under = _stacked_under(current, nxt)
                if under is None:  # a line of another column between two lines of this one
                    if nxt.box.y0 - current.box.y1 > 1.2 * max(current.box.height, 1e-6):
                        break
                    continue
                if under.box.y0 - current.box.y1 > 1.2 * max(current.box.height, 1e-6):
                    break
                parts.append((under, 0, len(under.text)))
                current = under
                add(Span(" ".join(s.text for s, _, _ in parts), "block", seg.page, list(parts), li,
                         lines=len(parts)))
    return out
