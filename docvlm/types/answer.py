"""Grounded answers: text with citations, and per-field evidence for schema extraction."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docvlm.types.geometry import BoundingBox

__all__ = ["Answer", "Citation", "FieldEvidence", "KeyValue"]

_PATH = re.compile(r"(?:[^.\[\]]+|\[\d+\])(?:\.[^.\[\]]+|\[\d+\])*")
_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


class Citation(BaseModel):
    """Where on which page a statement comes from.

    Attributes:
        page: 0-based page index.
        box: the cited region (usually in page space).
        quote: the cited text as it appears in the document; ``""`` for a purely visual citation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    page: int = Field(ge=0)
    box: BoundingBox
    quote: str = ""


class Answer(BaseModel):
    """A free-text answer with the citations that support it.

    Attributes:
        text: the answer.
        citations: the evidence, in the order the answer uses it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    citations: list[Citation] = Field(default_factory=list)

    @property
    def pages(self) -> list[int]:
        """The distinct cited pages, ascending."""
        return sorted({c.page for c in self.citations})

    def __str__(self) -> str:
        return self.text


class KeyValue(BaseModel):
    """A key printed on a page (a label, a form's question) and the value printed with it.

    Attributes:
        key: the key's text as printed and its box.
        value: the value's text and box, or ``None`` when the key has no value (an empty form field).
        confidence: how likely the key is a key (0..1).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: Citation
    value: Citation | None = None
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)

    @property
    def page(self) -> int:
        return self.key.page

    def __str__(self) -> str:
        return f"{self.key.quote} -> {self.value.quote if self.value is not None else None}"


class FieldEvidence(BaseModel):
    """Where one extracted field's value was found, for schema extraction.

    >>> FieldEvidence(path="items[0].amount", value=12.5, page=0).parts
    ('items', 0, 'amount')

    Attributes:
        path: the field in the extracted object: attribute names joined by ``.``, list positions in
            brackets, e.g. ``"total"`` or ``"items[0].amount"``.
        value: the extracted value.
        page: 0-based page index the value was found on, if known.
        box: the region of the value, if known.
        quote: the text the value was read from, if any.
        confidence: how sure the extractor is, in ``[0, 1]``, if it says.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    value: Any = None
    page: int | None = Field(default=None, ge=0)
    box: BoundingBox | None = None
    quote: str | None = None
    confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        if not _PATH.fullmatch(path):
            raise ValueError(
                f"invalid field path {path!r}: use names joined by '.' and list positions in brackets, "
                "e.g. 'total' or 'items[0].amount'"
            )
        return path

    @property
    def parts(self) -> tuple[str | int, ...]:
        """The path split into names and list positions: ``"items[0].amount"`` -> ``("items", 0, "amount")``."""
        return tuple(int(m[1]) if m[1] is not None else m[2] for m in _PART.finditer(self.path))

    @staticmethod
    def join_path(parts: Iterable[str | int]) -> str:
        """The path for ``parts``, the inverse of [`parts`][docvlm.types.answer.FieldEvidence.parts]: ``("items", 0, "amount")`` -> ``"items[0].amount"``."""
        out = ""
        for part in parts:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else part
        return out
