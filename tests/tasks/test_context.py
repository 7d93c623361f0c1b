"""text_near: the prompt text around the candidate values, on the sample invoice's real text layer."""

from __future__ import annotations

import pytest

import docvlm as dv
from docvlm.tasks._context import GAP, text_near
from docvlm.tasks.text import document_segments, group_lines, serialize_lines


@pytest.fixture(scope="module")
def lines() -> list:
    page = dv.open(dv.samples.invoice_pdf())[0]
    return group_lines(document_segments([page]))


def segment_with(lines: list, text: str) -> int:
    return next(s.id for line in lines for s in line.segments if text in s.text)


def test_keeps_the_candidate_its_neighbours_and_the_head(lines: list) -> None:
    total = segment_with(lines, "145.78")
    text = text_near(lines, [total], around=1, head=1)
    kept = text.split("\n")
    assert kept[0] == lines[0].text  # the vendor / title line
    assert any("Total:" in k and "145.78" in k for k in kept)
    assert any("Tax" in k for k in kept)  # the line above the total
    assert "Torque wrench" not in text  # line items are far from the total
    assert GAP in kept and len(text) < len(serialize_lines(lines)) / 2


def test_without_gaps_it_is_the_whole_page(lines: list) -> None:
    everything = [s.id for line in lines for s in line.segments]
    assert text_near(lines, everything) == serialize_lines(lines)
    assert text_near(lines, [], head=2).split("\n") == [lines[0].text, lines[1].text, GAP]


def test_a_cap_keeps_the_nearest_lines_first(lines: list) -> None:
    total = segment_with(lines, "145.78")
    full = text_near(lines, [total], around=3, head=0)
    capped = text_near(lines, [total], around=3, head=0, max_chars=40)
    assert "145.78" in capped and len(capped.replace(GAP, "")) <= 40 + 4 < len(full)
    with pytest.raises(dv.UsageError):
        text_near(lines, [total], around=-1)
