"""Answer, Citation and FieldEvidence."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from docvlm.types import Answer, BoundingBox, Citation, FieldEvidence

BOX = BoundingBox(x0=10, y0=20, x1=50, y1=30)


def test_citation() -> None:
    c = Citation(page=2, box=BOX, quote="Total: 12.50")
    assert (c.page, c.quote) == (2, "Total: 12.50")
    assert Citation(page=0, box=BOX).quote == ""
    with pytest.raises(ValidationError):
        Citation(page=-1, box=BOX)
    with pytest.raises(ValidationError):
        Citation(page=0)  # type: ignore[call-arg]


def test_answer() -> None:
    a = Answer(text="12.50", citations=[Citation(page=3, box=BOX), Citation(page=1, box=BOX), Citation(page=3, box=BOX)])
    assert str(a) == "12.50"
    assert a.pages == [1, 3]
    assert Answer(text="no").citations == []
    assert Answer.model_validate_json(a.model_dump_json()) == a
    with pytest.raises(ValidationError):
        Answer(text="x", sources=[])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("total", ("total",)),
        ("items[0].amount", ("items", 0, "amount")),
        ("items[12]", ("items", 12)),
        ("a.b.c", ("a", "b", "c")),
        ("grid[1][2]", ("grid", 1, 2)),
        ("[0].name", (0, "name")),
        ("vendor name", ("vendor name",)),  # dict keys may hold spaces
    ],
)
def test_field_paths(path: str, parts: tuple[str | int, ...]) -> None:
    ev = FieldEvidence(path=path, value=1)
    assert ev.parts == parts
    assert FieldEvidence.join_path(parts) == path


@pytest.mark.parametrize("path", ["", "items[0]amount", "items.", ".total", "items[x]", "items[-1]", "a..b", "items[0"])
def test_bad_field_paths(path: str) -> None:
    with pytest.raises(ValidationError, match="invalid field path"):
        FieldEvidence(path=path)


def test_field_evidence() -> None:
    ev = FieldEvidence(path="total", value=12.5, page=0, box=BOX, quote="12.50", confidence=0.9)
    assert ev.value == 12.5
    assert FieldEvidence.model_validate_json(ev.model_dump_json()) == ev
    bare = FieldEvidence(path="total")
    assert (bare.value, bare.page, bare.box, bare.quote, bare.confidence) == (None, None, None, None, None)
    for bad in ({"confidence": 1.2}, {"confidence": -0.1}, {"page": -1}):
        with pytest.raises(ValidationError):
            FieldEvidence(path="total", **bad)  # type: ignore[arg-type]
