"""Words of a page's text layer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field

from docvlm.types.geometry import BoundingBox

__all__ = ["Word", "WordList", "WordRow"]


class Word(BaseModel):
    """One word of a page's text layer, its box in page space.

    Attributes:
        text: the word as extracted.
        box: where the word's glyphs are, in page space (PDF points, top-left origin, unrotated page).
        page: 0-based index of the page the word is on.
        block: block number on the page (from the text layer or OCR).
        line: line number within the block.
        index: word number within the line.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    box: BoundingBox
    page: int = Field(ge=0)
    block: int = 0
    line: int = 0
    index: int = 0


WordRow = tuple[float, float, float, float, str, int, int, int]
"""A raw word: ``(x0, y0, x1, y1, text, block, line, index)`` in page space, as PyMuPDF and OCR give them."""


class WordList(Sequence[Word]):
    """The words of one page: a sequence of [`Word`][docvlm.types.text.Word] built on access from compact rows.

    A page can hold thousands of words; most uses only need a few of them, or all of them as arrays
    ([`xyxy`][docvlm.types.text.WordList.xyxy], `texts`), so the [`Word`][docvlm.types.text.Word] objects are only created when indexed or iterated.
    Compares equal to a list of the same words.
    """

    __slots__ = ("_cache", "_page", "_rows")

    def __init__(self, rows: Sequence[WordRow], page: int) -> None:
        self._rows = list(rows)
        self._page = page
        self._cache: dict[int, Word] = {}

    @classmethod
    def from_words(cls, words: Iterable[Word], page: int) -> WordList:
        rows = [(*w.box.xyxy, w.text, w.block, w.line, w.index) for w in words]
        return cls(rows, page)

    def __len__(self) -> int:
        return len(self._rows)

    def _word(self, i: int) -> Word:
        w = self._cache.get(i)
        if w is None:
            x0, y0, x1, y1, text, block, line, index = self._rows[i]
            box = BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1)
            w = self._cache[i] = Word(text=text, box=box, page=self._page, block=block, line=line, index=index)
        return w

    @overload
    def __getitem__(self, i: int) -> Word: ...
    @overload
    def __getitem__(self, i: slice) -> WordList: ...
    def __getitem__(self, i: int | slice) -> Word | WordList:
        if isinstance(i, slice):
            return WordList(self._rows[i], self._page)
        n = len(self._rows)
        if not -n <= i < n:
            raise IndexError(f"word index {i} out of range for {n} words")
        return self._word(i % n)

    def __iter__(self) -> Iterator[Word]:
        for i in range(len(self._rows)):
            yield self._word(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WordList):
            return self._page == other._page and self._rows == other._rows
        if isinstance(other, list):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(r[4]) for r in self._rows[:5])
        more = ", ..." if len(self._rows) > 5 else ""
        return f"WordList(page={self._page}, {len(self._rows)} words: [{head}{more}])"

    @property
    def page(self) -> int:
        return self._page

    @property
    def texts(self) -> list[str]:
        return [r[4] for r in self._rows]

    @property
    def rows(self) -> list[WordRow]:
        """The compact rows ``(x0, y0, x1, y1, text, block, line, index)``."""
        return list(self._rows)

    @property
    def xyxy(self) -> Any:
        """All boxes as a float64 numpy array of shape (N, 4), page space."""
        import numpy as np

        return np.array([r[:4] for r in self._rows], dtype=np.float64).reshape(-1, 4)

    def text(self) -> str:
        """The words joined as lines (a new line at every change of block or line)."""
        lines: list[str] = []
        last: tuple[int, int] | None = None
        for r in self._rows:
            key = (r[5], r[6])
            if key != last:
                lines.append(r[4])
                last = key
            else:
                lines[-1] += " " + r[4]
        return "\n".join(lines)
