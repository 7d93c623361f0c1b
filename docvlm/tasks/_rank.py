"""A learned ranker of candidate values: which printed span is a field's value.

Each (field, span) pair becomes a set of sparse binary features, hashed into a fixed-size weight vector:

- the span itself: its kind and size, the shape of its characters (``9/9/9``, ``A a``), whether it reads as a
  date or an amount, what was cut from its segment (``TOTAL:`` before it, ``(126926-H)`` after it), where it is
  on the page (height band, line from the top and bottom, centred, alone on its line), its font size against the
  page's, the words left of it, above and below it, the label it was printed with (`docvlm.tasks._keys`),
  and for amounts their rank on the page (largest, lowest, printed how many times), how they relate to the
  page's other amounts (a sum of two, a rounding of one) and whether they are a multiple of 0.05 (a total rounded to
  the coin);
- the field: the words of its name and its type;
- crosses of the two (``field word total`` x ``label word rounded``; ``field type date`` x ``shape 9/9/9``), and
  how similar the field's name is to the span's label and context (character trigrams), which carries over to
  field names the ranker never saw.

The weights are learned (`fit`: a softmax over each field's candidates, trained by ``python -m
bench.train_ranker`` on realdev and generated documents) and shipped in ``docvlm/data/ranker.npz``. Nothing
here lists words of any document: the words are features, their weights come from data.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import io
import json
import math
import re
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from docvlm.tasks._keys import Key, link_keys
from docvlm.tasks._spans import Span, dates_in
from docvlm.tasks.text import Line, numbers_in

__all__ = [
    "DIM",
    "MAX_KEY_CHARS",
    "Candidates",
    "FieldSpec",
    "PageContext",
    "Ranker",
    "default_key_model",
    "default_link_model",
    "default_ranker",
    "fit",
    "fit_binary",
    "key_rows",
    "link_rows",
    "span_features",
    "with_bias",
]

#: Size of the hashed feature space.
DIM = 1 << 20
#: The longest text (characters) a key can be: longer spans are never scored as keys.
MAX_KEY_CHARS = 120
_WEIGHTS = "ranker.npz"
_KEYS = "keys.npz"
_LINKS = "links.npz"


@dataclass(frozen=True)
class FieldSpec:
    """What the ranker knows of a field: the words of its name, its value type and its description."""

    name: str
    kind: str = "str"  # "str", "num", "date" or "other"
    description: str = ""
    aliases: tuple[str, ...] = ()  # other names a label may print (the caller's synonyms)

    @functools.cached_property
    def words(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_words(_split_name(self.name))))

    @functools.cached_property
    def trigrams(self) -> frozenset[str]:
        return _trigrams(" ".join(self.words))

    @functools.cached_property
    def alias_trigrams(self) -> tuple[frozenset[str], ...]:
        return tuple(_trigrams(a) for a in self.aliases)

    def similarity(self, grams: frozenset[str]) -> float:
        """How similar a text (its trigrams) is to the field's name or one of its aliases."""
        return max([_similarity(self.trigrams, grams), *(_similarity(a, grams) for a in self.alias_trigrams)])


def _split_name(name: str) -> str:
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").replace(".", " ")


def _words(text: str) -> list[str]:
    """Lower-case alphabetic words (digits become ``9``), punctuation dropped."""
    return [re.sub(r"\d+", "9", w) for w in re.findall(r"[a-z0-9]+", text.lower()) if not w.isdigit()]


def _trigrams(text: str) -> frozenset[str]:
    t = f"  {' '.join(_words(text))} "
    return frozenset(t[i:i + 3] for i in range(len(t) - 2))


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def _shape(text: str, tokens: int = 4) -> str:
    out = []
    for tok in text.split()[:tokens]:
        s = re.sub(r"[A-Z]+", "A", re.sub(r"[a-z]+", "a", re.sub(r"\d+", "9", tok)))
        out.append(s[:8])
    return " ".join(out) + ("+" if len(text.split()) > tokens else "")


def _bucket(value: float, edges: Sequence[float]) -> int:
    for i, e in enumerate(edges):
        if value < e:
            return i
    return len(edges)


#: An amount as a span prints it: a currency sign or code before it ("$", "RM ", "€ ") or after it ("1 234,56 €",
#: "12.50 EUR"), thousands grouped by "," "." "'" or a space, two decimals.
_AMOUNT = re.compile(r"^[^\d\s-]{0,3}\s?-?\d{1,3}(?:[,.' ]?\d{3})*[.,]\d{2}(?:\s?(?:[A-Z]{3}|[€$£¥]))?$")


@dataclass
class PageContext:
    """What the features of one page's spans need to know about the page: its lines, the size of its print, the
    labels of its segments, and its amounts and dates in order."""

    lines: Sequence[Line]
    width: float
    height: float
    keys: dict[int, Key] = field(default_factory=dict)
    median_height: float = 1.0
    amounts: list[float] = field(default_factory=list)  # every amount printed on the page
    amount_rows: dict[float, list[int]] = field(default_factory=dict)  # amount -> the lines it is printed on
    dates: list[int] = field(default_factory=list)  # segment ids with a date, top to bottom

    @classmethod
    def build(cls, lines: Sequence[Line], width: float, height: float) -> PageContext:
        ctx = cls(lines, width, height, keys=link_keys(lines, {ln.page: width for ln in lines}, None))
        heights = sorted(s.box.height for ln in lines for s in ln.segments)
        ctx.median_height = heights[len(heights) // 2] if heights else 1.0
        for li, line in enumerate(lines):
            for seg in line.segments:
                for start, end, value in numbers_in(seg.text):
                    if _AMOUNT.match(seg.text[start:end]):
                        ctx.amounts.append(abs(value))
                        ctx.amount_rows.setdefault(abs(value), []).append(li)
                if dates_in(seg.text):
                    ctx.dates.append(seg.id)
        ctx.amounts.sort(reverse=True)
        return ctx

    def relations(self, value: float, line: int) -> list[str]:
        """How an amount relates to the page's other amounts: the sum of two printed above it (subtotal + tax), the
        difference of two (cash - change), a rounding of one (within 0.05), the same amount printed below it."""
        out = []
        others = sorted(set(self.amounts) - {value})
        if len(others) > 30:
            others = others[-30:]
        for a in others:
            if abs(a - value) <= 0.05:  # one of the two is the other rounded: which is printed lower
                rows = self.amount_rows.get(a, [])
                out.append("rel:rounding-below" if any(r > line for r in rows) else "rel:rounding-above")
        for i, a in enumerate(others):
            for b in others[i:]:
                if abs(a + b - value) < 0.005 and a > 0 and b > 0:
                    out.append("rel:sum")
                if abs(abs(a - b) - value) < 0.005 and value > 0:
                    out.append("rel:diff")
        if any(r > line for r in self.amount_rows.get(value, [])):
            out.append("rel:again-below")
        return sorted(set(out))

    @functools.cached_property
    def _line_of_segment(self) -> dict[int, int]:
        return {s.id: li for li, ln in enumerate(self.lines) for s in ln.segments}

    def neighbours(self, span: Span) -> tuple[str, str, str]:
        """Text left of the span on its line, of the segment above it and of the segment below it."""
        first = span.parts[0][0]
        last = span.parts[-1][0]
        li = self._line_of_segment.get(first.id, span.line)
        line = self.lines[li]
        left = [s for s in line.segments if s.box.x1 <= first.box.x0 + 1e-6]
        left_text = left[-1].text if left else ""
        above = _column_neighbour(first, self.lines[max(0, li - 3):li][::-1])
        lj = self._line_of_segment.get(last.id, li)
        below = _column_neighbour(last, self.lines[lj + 1:lj + 4])
        return left_text, above, below


def _column_segment(seg: Any, lines: Iterable[Line]) -> Any:
    """The first segment of ``lines`` (in their order) that overlaps ``seg`` across: the one above or under it."""
    b = seg.box
    for line in lines:
        for s in line.segments:
            if min(s.box.x1, b.x1) - max(s.box.x0, b.x0) > 0:
                return s
    return None


def _column_neighbour(seg: Any, lines: Iterable[Line]) -> str:
    s = _column_segment(seg, lines)
    return str(s.text) if s is not None else ""


def _token_features(prefix: str, text: str, n: int = 3, last: bool = True) -> list[str]:
    words = _words(text)
    words = words[-n:] if last else words[:n]
    return [f"{prefix}:{w}" for w in words]


def span_features(span: Span, ctx: PageContext) -> list[str]:
    """The features of a span that do not depend on the field (computed once per span)."""
    text = span.text
    f = [f"k:{span.kind}", f"nl:{min(span.lines, 4)}", f"nw:{min(len(text.split()), 8)}",
         f"len:{_bucket(len(text), (2, 3, 5, 8, 12, 20, 35, 60, 100))}", f"sh:{_shape(text)}"]
    f += [f"w:{w}" for w in dict.fromkeys(_words(text)[:8])]
    if span.lines > 1:
        first, last = span.parts[0][0].text, span.parts[-1][0].text
        f += [f"l0sh:{_shape(first, 2)}", f"lnsh:{_shape(last, 2)}", f"lnw:{_words(last)[-1] if _words(last) else ''}"]
        if first.startswith("("):
            f.append("l0paren")  # the first line is a bracketed note (a registration number over an address)
    f.append(f"commas:{min(text.count(','), 4)}")
    letters = [c for c in text if c.isalpha()]
    digits = sum(c.isdigit() for c in text)
    f.append(f"dr:{_bucket(digits / max(1, len(text)), (1e-9, 0.2, 0.5, 0.8, 1.0))}")
    if letters:
        f.append(f"ur:{_bucket(sum(c.isupper() for c in letters) / len(letters), (0.1, 0.5, 0.9, 1.0))}")
    nums = numbers_in(text)
    whole_num = len(nums) == 1 and nums[0][1] - nums[0][0] >= len(text.strip()) - 3
    dates = dates_in(text)
    if dates and dates[0][1] - dates[0][0] == len(text):
        f.append("isdate")
    elif dates:
        f.append("hasdate")
    if _AMOUNT.match(text):
        f.append("isamt")
        value = abs(nums[-1][2]) if nums else 0.0
        f.append(f"arank:{_bucket(ctx.amounts.index(value) if value in ctx.amounts else 9, (1, 2, 3, 5))}")
        rows = ctx.amount_rows.get(value, [])
        f.append(f"acount:{min(len(rows), 4)}")
        lower = [a for a in ctx.amounts if any(r > span.line for r in ctx.amount_rows.get(a, []))]
        f.append(f"abelow:{_bucket(len(lower), (1, 2, 4, 8))}")
        rels = ctx.relations(value, span.line)
        c5 = round(value * 100) % 5 == 0  # a multiple of 0.05: what a total rounded to the coin reads
        f += rels + [f"c5:{c5}"] + [f"{r}|c5:{c5}" for r in rels]
    elif whole_num:
        f.append("isnum")
    if text.endswith(","):
        f.append("endcomma")  # a list cut short (an address missing its last line)
    if text.endswith(":"):
        f.append("endcolon")
    elif ":" in text:
        f.append("hascolon")
    if text.startswith("(") and text.endswith(")"):
        f.append("paren")
    if text.count("(") != text.count(")"):
        f.append("unbal")  # a bracket opened and not closed, or closed and not opened: cut inside it
    if span.cut_before:
        f += _token_features("cb", span.cut_before)
        f.append(f"cbsh:{_shape(span.cut_before.split()[-1] if span.cut_before.split() else '')}")
        if span.cut_before.rstrip().endswith(":"):
            f.append("cbcolon")
    if span.cut_after:
        f.append(f"cash:{_shape(span.cut_after, 2)}")
        f += _token_features("ca", span.cut_after, 2, last=False)
    box = span.box
    xc, yc = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    f.append(f"y:{min(9, int(10 * yc / max(ctx.height, 1e-6)))}")
    f.append(f"x:{min(2, int(3 * xc / max(ctx.width, 1e-6)))}")
    f.append(f"li:{_bucket(span.line, (1, 2, 3, 4, 6, 9, 13, 20))}")
    f.append(f"lb:{_bucket(len(ctx.lines) - 1 - span.line, (1, 2, 3, 5, 8, 13))}")
    h = box.height / span.lines / max(ctx.median_height, 1e-6)
    f.append(f"h:{_bucket(h, (0.8, 1.2, 1.6, 2.2))}")
    if abs(xc - ctx.width / 2) < 0.08 * ctx.width:
        f.append("center")
    line = ctx.lines[span.line] if span.line < len(ctx.lines) else None
    if line is not None and len(line.segments) == 1:
        f.append("alone")
    left, above, below = ctx.neighbours(span)
    f += _token_features("lf", left)
    if left.rstrip().endswith(":"):
        f.append("lfcolon")
    f += _token_features("ab", above, 3, last=False)
    f.append(f"absh:{_shape(above, 2)}")
    if above.rstrip().endswith(","):
        f.append("abcomma")  # the text above runs on into this span (an address cut after its first line)
    f += _token_features("bl", below, 3, last=False)
    f.append(f"blsh:{_shape(below, 2)}")
    key = ctx.keys.get(span.segment.id) if span.kind in ("seg", "block", "lines") else None
    if key is not None:
        f += _token_features("key", key.text)
        f.append(f"kd:{min(key.distance, 3)}")
    return f


def _context_texts(span: Span, ctx: PageContext) -> dict[str, str]:
    left, above, _ = ctx.neighbours(span)
    key = ctx.keys.get(span.segment.id)
    return {"cb": span.cut_before, "lf": left, "ab": above, "key": key.text if key is not None else ""}


def _hash(text: str) -> int:
    return zlib.crc32(text.encode())


_MIX = np.uint64(0x9E3779B1)


def _cross(base: np.ndarray[Any, np.dtype[np.uint64]], other: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """Hashes of ``base`` features crossed with one other feature (vectorised: no strings built)."""
    return (base * _MIX) ^ np.uint64(other)


def _start_distance(key: Span, x: float, y: float) -> tuple[str, float] | None:
    """Where a span starting at (x, y) lies from the key, ``("right", gap)`` on the key's lines or ``("below",
    lines down + shift across / 3)`` under them, in key line heights; ``None`` above the key or left of it."""
    k = key.box
    h = max(k.height / key.lines, 1e-6)
    if y < k.y0 - 0.5 * h:
        return None
    if y < k.y1 - 0.5 * h:  # on the key's lines: right of it
        return ("right", (x - k.x1) / h) if x >= k.x1 - 0.5 * h else None
    return "below", (y - k.y1) / h + abs(x - k.x0) / (3 * h)


def start_distances(key: Span, starts: Iterable[tuple[int, int]]) -> dict[str, list[float]]:
    """The `_start_distance` of every starting point (rounded ``(x0, y0)`` of the page's spans) right of the key and
    below it, each side sorted: what `start_rank` ranks a span's start among."""
    dists: dict[str, list[float]] = {"right": [], "below": []}
    for x, y in starts:
        where = _start_distance(key, x, y)
        if where is not None:
            dists[where[0]].append(where[1])
    for values in dists.values():
        values.sort()
    return dists


def start_rank(key: Span, span: Span, dists: Mapping[str, Sequence[float]]) -> int | None:
    """How many starting points on the same side of the key (`start_distances`) are nearer than the span's start;
    ``None`` above the key or left of it."""
    where = _start_distance(key, round(span.box.x0), round(span.box.y0))
    return bisect.bisect_left(dists[where[0]], where[1] - 1e-6) if where is not None else None


def pair_features(key: Span, span: Span, rank: int | None = None) -> list[str]:
    """Where ``span`` sits from ``key`` (right of it on its line, under it, aligned with it, how far, how many
    other starting points on that side are nearer: ``rank``), crossed with the span's kind, its lines and the key's
    colon."""
    k, v = key.box, span.box
    h = max(k.height / key.lines, 1e-6)
    overlap = min(k.y1, v.y1) - max(k.y0, v.y0)
    if span.page != key.page:
        rel = "page"
    elif min(k.x1, v.x1) - max(k.x0, v.x0) > 0 and overlap > 0:
        rel = "over"
    elif overlap > 0.3 * h and v.x0 >= k.x1 - 0.5 * h:
        rel = "right"
    elif v.y0 >= k.y1 - 0.3 * h:
        rel = "below"
    elif v.y1 <= k.y0 + 0.3 * h:
        rel = "above"
    else:
        rel = "left"
    f = [f"pr:{rel}", f"pr:{rel}|k:{span.kind}", f"pr:{rel}|nl:{min(span.lines, 4)}",
         f"pr:{rel}|kc:{key.text.rstrip().endswith(':')}"]
    if rel == "right":
        f.append(f"pr:gap:{_bucket((v.x0 - k.x1) / h, (0.5, 1.5, 4, 10, 25))}")
    elif rel == "below":
        f.append(f"pr:dy:{_bucket((v.y0 - k.y1) / h, (0.5, 1.5, 3, 6))}")
        f.append(f"pr:dx0:{_bucket(abs(v.x0 - k.x0) / h, (0.5, 2, 6, 15))}")
        f.append(f"pr:xover:{min(k.x1, v.x1) - max(k.x0, v.x0) > 0}")
    if rank is not None:
        f.append(f"pr:rank:{min(rank, 5)}")
        f.append(f"pr:{rel}|rank:{min(rank, 5)}")
    return f


#: Families of span features, by the prefix of their names, for ablations (`Candidates.drop`); besides these,
#: ``field-words`` (crosses with the words of the field's name) and ``similarity`` (of the field's name to the span's
#: label and context) can be left out.
FAMILIES: dict[str, tuple[str, ...]] = {
    "shape": ("k", "nl", "nw", "len", "sh", "dr", "ur", "isdate", "hasdate", "isamt", "isnum", "endcolon", "hascolon",
              "paren", "unbal", "endcomma", "commas", "l0sh", "l0paren", "lnsh", "lnw"),
    "words": ("w",),
    "cut": ("cb", "cbsh", "cbcolon", "cash", "ca"),
    "position": ("y", "x", "li", "lb", "h", "center", "alone"),
    "context": ("lf", "lfcolon", "ab", "absh", "abcomma", "bl", "blsh"),
    "key": ("key", "kd"),
    "amounts": ("arank", "acount", "abelow", "rel", "c5"),
}
#: Pair features of a value with the key it is read for (`Candidates.rows` with ``key``; ``dv.key_values``), left
#: out together as the family ``pair``.
PAIR = "pair"
_FAMILY_INDEX = {name: i + 1 for i, name in enumerate(FAMILIES)}
_FAMILY_OF = {prefix: _FAMILY_INDEX[name] for name, prefixes in FAMILIES.items() for prefix in prefixes}


@dataclass
class Candidates:
    """Spans of one or more pages with their field-independent features, hashed once."""

    spans: list[Span]
    contexts: list[PageContext]  # parallel to spans: each span's page context
    base: list[np.ndarray[Any, np.dtype[np.uint64]]]
    texts: list[dict[str, tuple[frozenset[str], frozenset[str]]]]  # each span's context: trigrams and words
    families: list[np.ndarray[Any, np.dtype[np.uint8]]] = field(default_factory=list)  # each base feature's family
    #: feature families left out of `rows` (ablations: what each family adds), see `FAMILIES`
    drop: frozenset[str] = frozenset()
    #: `_similarities` per field spec while `caching` is on (``dv.key_values`` asks for one key's value rows, its
    #: "not printed" row and its link rows in turn, each needing every span's similarity to the key's text); a
    #: plain dict, emptied when full or when the last `caching` block ends, so threads sharing these candidates
    #: only get and set, and candidates kept for long (training sets) keep nothing
    _sims: dict[Any, tuple[list[dict[str, float]], dict[str, float]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _caching: int = field(default=0, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_sims", "_caching")}  # pickled without them

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sims, self._caching = {}, 0

    @contextlib.contextmanager
    def caching(self) -> Iterator[Candidates]:
        """Keep each field spec's similarities for the block's duration (one page's key-value reading)."""
        self._caching += 1
        try:
            yield self
        finally:
            self._caching = max(0, self._caching - 1)
            if not self._caching:
                self._sims.clear()

    @classmethod
    def build(cls, pages: Sequence[tuple[Sequence[Line], float, float]]) -> Candidates:
        """From each page's visual lines, width and height."""
        from docvlm.tasks._spans import page_spans

        spans: list[Span] = []
        contexts: list[PageContext] = []
        for lines, width, height in pages:
            ctx = PageContext.build(lines, width, height)
            page = page_spans(lines)
            spans += page
            contexts += [ctx] * len(page)
        features = [span_features(s, c) for s, c in zip(spans, contexts, strict=True)]
        base = [np.fromiter((_hash(f) for f in fs), dtype=np.uint64, count=len(fs)) for fs in features]
        families = [np.fromiter((_FAMILY_OF.get(f.split(":")[0], 0) for f in fs), dtype=np.uint8, count=len(fs))
                    for fs in features]
        texts = [{k: (_trigrams(v), frozenset(_words(v))) for k, v in (_context_texts(s, c) | {"self": s.text}).items()
                  if v} for s, c in zip(spans, contexts, strict=True)]
        return cls(spans, contexts, base, texts, families)

    @classmethod
    def of_pages(cls, pages: Sequence[Any]) -> tuple[Candidates, list[Line]]:
        """The candidates of a document's pages (their words: text layer, OCR or given words) and its visual lines
        in reading order, segment ids numbered through the pages. Built once for the same words: asking several
        questions of one document, or extracting then asking, builds them once (the last few are kept)."""
        from docvlm.tasks.text import group_lines, page_words, segments_of

        rows = [page_words(page).rows for page in pages]
        key = tuple((page.index, page.width, page.height, tuple(r)) for page, r in zip(pages, rows, strict=True))
        hit = _BUILT.get(key)
        if hit is not None:
            _BUILT.move_to_end(key)
            return hit
        lines_all: list[Line] = []
        per_page = []
        first_id = 0
        for page, r in zip(pages, rows, strict=True):
            segs = segments_of(r, page.index, first_id=first_id)
            first_id += len(segs)
            lines = group_lines(segs)
            lines_all += lines
            per_page.append((lines, page.width, page.height))
        built = _BUILT[key] = (cls.build(per_page), lines_all)
        while len(_BUILT) > 4:
            _BUILT.popitem(last=False)
        return built

    def _similarities(self, spec: FieldSpec) -> tuple[list[dict[str, float]], dict[str, float]]:
        """How similar each span's texts (itself and its context: `_context_texts`) are to the field's name, and
        the best of each context over the spans (kept while `caching` is on)."""
        key = (spec.trigrams, spec.alias_trigrams)
        hit = self._sims.get(key) if self._caching else None
        if hit is not None:
            return hit
        sims = [{where: spec.similarity(grams) for where, (grams, _) in texts.items()} for texts in self.texts]
        best: dict[str, float] = {}
        for row in sims:
            for where, sim in row.items():
                best[where] = max(best.get(where, 0.0), sim)
        if self._caching:
            if len(self._sims) >= 256:
                self._sims.clear()
            self._sims[key] = (sims, best)
        return sims, best

    def rows(self, spec: FieldSpec, indices: Iterable[int] | None = None, *,
             key: int | None = None) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
        """The hashed feature rows of the field's pairs with the spans at ``indices`` (default: all); with ``key``
        (the index of the span the field is read for, ``dv.key_values``), also where each span sits from it
        (`pair_features`)."""
        indices = list(range(len(self.spans)) if indices is None else indices)
        pairs = self._pair_features(key, indices) if key is not None and PAIR not in self.drop else None
        type_h = _hash(f"t={spec.kind}")
        word_h = [_hash(f"f={w}") for w in spec.words]
        words = set(spec.words)
        sims, best = self._similarities(spec)
        out = []
        dropped = [_FAMILY_INDEX[f] for f in self.drop if f in _FAMILY_INDEX]
        for n, i in enumerate(indices):
            base = self.base[i]
            if dropped:
                base = base[~np.isin(self.families[i], dropped)]
            parts = [base, _cross(base, type_h)]
            if "field-words" not in self.drop:
                parts += [_cross(base, h) for h in word_h]
            extra = []
            for where, (_, context_words) in ([] if "similarity" in self.drop else self.texts[i].items()):
                sim = sims[i][where]
                extra.append(f"sim:{where}:{_bucket(sim, (0.05, 0.2, 0.4, 0.6, 0.8))}")
                if sim >= best[where] - 1e-9 and sim > 0.2:
                    extra.append(f"best:{where}")
                if words and words <= context_words:
                    extra.append(f"covers:{where}")
            if pairs is not None:
                extra += pairs[n]
            parts.append(np.fromiter((_hash(f) for f in extra), dtype=np.uint64))
            out.append(np.unique(np.concatenate(parts) & np.uint64(DIM - 1)).astype(np.int64))
        return out

    def _pair_features(self, key: int, indices: Sequence[int]) -> list[list[str]]:
        """`pair_features` of each span at ``indices`` with the key span, its nearness ranked among the starting points
        of the key's page on the same side of the key (right of it on its lines, or below it)."""
        k = self.spans[key]
        dists = start_distances(k, {(round(s.box.x0), round(s.box.y0)) for s in self.spans if s.page == k.page})
        out = []
        for i in indices:
            span = self.spans[i]
            out.append(pair_features(k, span, start_rank(k, span, dists) if span.page == k.page else None))
        return out

    def none_row(self, spec: FieldSpec) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The features of "the field is not printed": how well any label on the page names it, by field type
        and name word."""
        sims, _ = self._similarities(spec)
        top = max((row.get(where, 0.0) for row in sims for where in ("key", "lf", "cb")), default=0.0)
        base = [f"none:sim:{_bucket(top, (0.2, 0.4, 0.6, 0.8))}", "none"]
        feats = base + [f"t={spec.kind}|{b}" for b in base] + [f"f={w}|{b}" for w in spec.words for b in base]
        return np.unique(np.fromiter((_hash(f) & (DIM - 1) for f in feats), dtype=np.int64))


class Ranker:
    """A linear scorer over hashed features: ``score = sum of the weights of the pair's features``."""

    def __init__(self, weights: np.ndarray[Any, np.dtype[np.float32]], info: Mapping[str, Any] | None = None) -> None:
        self.weights = weights
        self.info = dict(info or {})

    def scores(self, rows: Sequence[np.ndarray[Any, np.dtype[np.int64]]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array([float(self.weights[r].sum()) for r in rows], dtype=np.float64)

    def save(self, path: str | Path) -> None:
        """Write the weights (non-zero ones, as float16) and ``info`` to an ``.npz`` file."""
        nz = np.flatnonzero(np.abs(self.weights) > 1e-4).astype(np.uint32)
        np.savez_compressed(path, dim=np.array([DIM]), index=nz, weight=self.weights[nz].astype(np.float16),
                            info=np.frombuffer(json.dumps(self.info).encode(), dtype=np.uint8))

    def probabilities(self, rows: Sequence[np.ndarray[Any, np.dtype[np.int64]]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """For a binary model (`fit_binary`): the probability of each row."""
        probs: np.ndarray[Any, np.dtype[np.float64]] = 1.0 / (1.0 + np.exp(-self.scores(rows)))
        return probs

    @classmethod
    def load(cls, path: str | Path | None = None, *, name: str = _WEIGHTS) -> Ranker:
        """Weights from a file written by `save`, or (``path=None``) the one named ``name`` shipped in
        ``docvlm/data``."""
        source: Any = path if path is not None else io.BytesIO(resources.files("docvlm.data").joinpath(name).read_bytes())
        with np.load(source) as data:
            if int(data["dim"][0]) != DIM:
                raise ValueError(f"the weights are for {int(data['dim'][0])} features, this docvlm hashes into {DIM}")
            weights = np.zeros(DIM, dtype=np.float32)
            weights[data["index"].astype(np.int64)] = data["weight"].astype(np.float32)
            info = json.loads(data["info"].tobytes().decode() or "{}")
        return cls(weights, info)


_BUILT: OrderedDict[tuple[Any, ...], tuple[Candidates, list[Line]]] = OrderedDict()  # Candidates.of_pages


@functools.lru_cache(maxsize=1)
def default_ranker() -> Ranker:
    """The value ranker shipped with docvlm (trained by ``python -m bench.train_ranker``)."""
    return Ranker.load()


@functools.lru_cache(maxsize=1)
def default_key_model() -> Ranker:
    """The key detector shipped with docvlm (trained by ``python -m bench.train_ranker``)."""
    return Ranker.load(name=_KEYS)


@functools.lru_cache(maxsize=1)
def default_link_model() -> Ranker:
    """The key -> value link model shipped with docvlm (trained by ``python -m bench.train_ranker``): how likely
    a span is one of a key's values, each value alone (a key may have several)."""
    return Ranker.load(name=_LINKS)


def fit(groups: Sequence[tuple[Sequence[np.ndarray[Any, np.dtype[np.int64]]], Sequence[bool]]], *,
        epochs: int = 30, lr: float = 0.1, l2: float = 1e-5, seed: int = 0) -> Ranker:
    """Learn weights from groups of candidates, each group one field of one document: the candidates' feature
    rows and which of them are the field's value. Maximises the softmax probability of the right candidates
    (summed, when the value is printed more than once) with Adagrad and an L2 penalty. Groups without a right
    candidate, or with only right ones, teach nothing and are left out."""
    packed = []
    for rows, labels in groups:
        y = np.asarray(labels, dtype=bool)
        if not y.any() or y.all():
            continue
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.concatenate(rows)
        uniq, inv = np.unique(flat, return_inverse=True)
        packed.append((uniq, inv, np.repeat(np.arange(len(rows)), lengths), y))
    rng = np.random.default_rng(seed)
    w = np.zeros(DIM, dtype=np.float64)
    g2 = np.full(DIM, 1e-8)
    order = np.arange(len(packed))
    for _ in range(epochs):
        rng.shuffle(order)
        for k in order:
            uniq, inv, owner, y = packed[k]
            wu = w[uniq]
            s = np.bincount(owner, weights=wu[inv], minlength=len(y))
            p = np.exp(s - s.max())
            p /= p.sum()
            q = np.where(y, p, 0.0)
            q /= q.sum()
            grad = np.bincount(inv, weights=(p - q)[owner], minlength=len(uniq)) + l2 * wu
            g2[uniq] += grad ** 2
            w[uniq] = wu - lr * grad / np.sqrt(g2[uniq])
    return Ranker(w.astype(np.float32))


def fit_binary(rows: Sequence[np.ndarray[Any, np.dtype[np.int64]]], labels: Sequence[bool], *, steps: int = 300,
               lr: float = 0.2, l2: float = 1e-4) -> Ranker:
    """Logistic regression over hashed feature rows (full-batch Adagrad with an L2 penalty): the key detector.
    The bias is the weight of the feature ``"bias"``, which every row gets."""
    rows = with_bias(rows)  # once: rows that have it already (`key_rows`, `link_rows`) keep one
    y = np.asarray(labels, dtype=np.float64)
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    flat = np.concatenate(rows)
    uniq, inv = np.unique(flat, return_inverse=True)
    owner = np.repeat(np.arange(len(rows)), lengths)
    w = np.zeros(len(uniq))
    g2 = np.full(len(uniq), 1e-8)
    for _ in range(steps):
        s = np.bincount(owner, weights=w[inv], minlength=len(rows))
        p = 1.0 / (1.0 + np.exp(-s))
        grad = np.bincount(inv, weights=(p - y)[owner], minlength=len(uniq)) / len(rows) + l2 * w
        g2 += grad ** 2
        w -= lr * grad / np.sqrt(g2)
    weights = np.zeros(DIM, dtype=np.float32)
    weights[uniq] = w
    return Ranker(weights)


def with_bias(rows: Sequence[np.ndarray[Any, np.dtype[np.int64]]]) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """Rows with the feature ``"bias"`` (once, also where a row has it already): what `fit_binary` trains on and a
    binary model's `Ranker.probabilities` are computed from."""
    bias = _hash("bias") & (DIM - 1)
    return [np.unique(np.append(r, bias)).astype(np.int64) for r in rows]


def link_rows(cands: Candidates, key: int, indices: Iterable[int]) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """The link model's rows (`default_link_model`): each span at ``indices`` as one of the values of the key span at
    ``key`` (a field named by the key's text without its colon), with where it sits from the key, and the bias. What
    the link model is trained on (``bench.train_ranker.link_data``) and read with (``dv.key_values``, ``dv.ask``)."""
    return with_bias(cands.rows(FieldSpec(cands.spans[key].text.rstrip(": ")), indices, key=key))


def key_features(span: Span, ctx: PageContext) -> list[str]:
    """What a key detector needs beyond a span's own features (`span_features`): what is printed right of it on its
    line (nothing, a value, another label: its shape, its colon, how far), and the column under it (how many of the
    next three segments under it are numbers: a column header over its cells)."""
    last = span.parts[-1][0]
    li = ctx._line_of_segment.get(last.id, span.line)
    box = span.box
    right = [s for s in ctx.lines[li].segments if s.box.x0 >= box.x1 - 1e-6] if li < len(ctx.lines) else []
    if not right:
        f = ["kr:none"]
    else:
        nxt = min(right, key=lambda s: s.box.x0)
        h = max(box.height / span.lines, 1e-6)
        f = [f"krsh:{_shape(nxt.text, 2)}", f"krgap:{_bucket((nxt.box.x0 - box.x1) / h, (0.5, 1.5, 4, 10, 25))}"]
        if nxt.text.rstrip().endswith(":"):
            f.append("krcolon")
    numbers = 0
    current = last
    for line in ctx.lines[li + 1:li + 4]:
        under = _column_segment(current, [line])
        if under is None:
            continue
        current = under
        nums = numbers_in(current.text)
        numbers += bool(nums) and nums[0][1] - nums[0][0] >= len(current.text.strip()) - 3
    f.append(f"kcolnum:{numbers}")
    return f


def key_rows(cands: Candidates, indices: Iterable[int]) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """Feature rows of spans as keys (labels, form questions): their own features, `key_features` and the bias."""
    rows = []
    for i in indices:
        extra = np.fromiter((_hash(f) for f in key_features(cands.spans[i], cands.contexts[i])), dtype=np.uint64)
        rows.append((np.concatenate([cands.base[i], extra]) & np.uint64(DIM - 1)).astype(np.int64))
    return with_bias(rows)
