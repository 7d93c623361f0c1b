"""Words of a page's text layer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from docvlm.types.geometry import BoundingBox

__all__ = ["Word"]


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
