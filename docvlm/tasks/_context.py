"""A prompt no longer than the question needs: the text near the candidate values, not the whole page.

A model's prompt costs in proportion to its tokens (the prefill dominates a scoring call), and a long page
mostly holds text that says nothing about the fields asked for. [`docvlm.tasks._context.text_near`][docvlm.tasks._context.text_near] keeps the visual lines
that hold a candidate, a few lines above and below each (where the labels and headings sit), and the first
lines of each page (vendor, title), in reading order, with ``...`` where lines were left out::

    lines = group_lines(document_segments(pages))
    prompt_text = text_near(lines, [c.segment_id for c in candidates], around=2, max_chars=1500)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from docvlm.errors import UsageError
from docvlm.tasks.text import Line

__all__ = ["GAP", "LM_WEIGHT", "field_prompt", "text_near"]

#: What stands for lines left out.
GAP = "..."


def text_near(lines: Sequence[Line], segment_ids: Iterable[int], *, around: int = 2, head: int = 2,
              max_chars: int | None = None) -> str:
    """The serialized lines that hold the segments ``segment_ids``, with ``around`` lines on each side.

    Args:
        lines: the document's visual lines in reading order ([`docvlm.tasks.text.group_lines`][docvlm.tasks.text.group_lines]).
        segment_ids: ids of the segments that hold candidate values ([`docvlm.tasks.text.Segment.id`][docvlm.tasks.text.Segment.id]).
        around: how many lines above and below each candidate's line to keep (labels, headings).
        head: how many first lines of each page to keep (a vendor's name, a title).
        max_chars: a cap on the text; lines nearest a candidate are kept first, in reading order still.

    Returns:
        The kept lines joined by newlines, with a line ``...`` wherever lines were left out. All lines when
        nothing was left out; the ``head`` lines only when no line holds a candidate.
    """
    if around < 0 or head < 0:
        raise UsageError(f"around and head must be >= 0, got {around} and {head}")
    wanted = set(segment_ids)
    # distance of each line to the nearest candidate line (0: holds one); head lines count as distance 0
    hits = [i for i, line in enumerate(lines) if any(s.id in wanted for s in line.segments)]
    first_of_page: dict[int, int] = {}
    for i, line in enumerate(lines):
        first_of_page.setdefault(line.page, i)
    distance: dict[int, int] = {}
    for i in hits:
        for j in range(max(0, i - around), min(len(lines), i + around + 1)):
            distance[j] = min(distance.get(j, around + 1), abs(i - j))
    for start in first_of_page.values():
        for j in range(start, min(len(lines), start + head)):
            if lines[j].page == lines[start].page:
                distance[j] = min(distance.get(j, 0), 0)
    keep = sorted(distance)
    if max_chars is not None:
        chosen: set[int] = set()
        total = 0
        for j in sorted(keep, key=lambda k: (distance[k], k)):
            cost = len(lines[j].text) + 1
            if total + cost > max_chars:
                continue
            chosen.add(j)
            total += cost
        keep = sorted(chosen)
    out: list[str] = []
    previous = -1
    for j in keep:
        if j != previous + 1:
            out.append(GAP)
        out.append(lines[j].text)
        previous = j
    if keep and keep[-1] != len(lines) - 1:
        out.append(GAP)
    return "\n".join(out)


def field_prompt(text: str, question: str, instructions: str | None = None) -> str:
    """The prompt a text-only model scores a field's candidate values after (the value is the answer): the document
    text near the candidates, then the question. One prompt shape for every field, so a model reads the document
    text once (its prefix cache) and only the question differs; fine-tuning data uses the same shape
    (`docvlm.finetune`)."""
    return (f"Document:\n{text}\n\n{instructions + chr(10) if instructions else ''}"
            f"What is the {question}? Copy it exactly as printed in the document.")


#: How much a text-only model's log-probability of a value counts beside the ranker's score when it chooses by
#: scoring, for models that do not set their own `Model.choice_weight` (the untuned default model sets 0: on real
#: receipts it adds nothing, ``python -m bench.lm_weight``).
LM_WEIGHT = 1.0
