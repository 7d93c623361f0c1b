"""A made-up family, written the way a new family is added to docvlm: this one module, and one registry line.

"Tagged" models write XML-ish tags, a syntax none of docvlm's families share, with integers 0..1000 of the image:

    <obj label="total">712 455 801 471</obj> <obj label="date">...</obj>      boxes (x0 y0 x1 y1)
    <pt label="total">756 463</pt>                                          points (x y)
    <poly label="logo">10 10 90 10 90 40</poly>                             outlines (x y pairs)

The profile owns both directions: the request (prompt and a regex of exactly these tags, sized to the model's
limits) and the parse back to pixels of the image. Nothing in docvlm's tasks knows about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from docvlm.decoding import Limits, Regex
from docvlm.models.profiles import (
    BoxConvention,
    FamilyProfile,
    LabeledBox,
    Outline,
    TaskRequest,
    fit_repeats,
)
from docvlm.types import BoundingBox, Point, Polygon, Size, Space

_NUM = r"(?:0|[1-9][0-9]{0,2})"  # 0..999 is enough for this made-up family
_TAG = re.compile(r'<(obj|pt|poly) label="([^"<>]*)">([0-9 ]*)</\1>')


def _alternatives(phrases: Sequence[str]) -> str:
    return "|".join(re.escape(p) for p in phrases)


def _numbers(text: str) -> list[float]:
    return [float(v) for v in text.split()]


@dataclass(frozen=True)
class TaggedProfile(FamilyProfile):
    """Boxes, points and outlines as tags with 0..1000 coordinates."""

    reserved_characters: ClassVar[str] = '<>"'

    def _tags(self, answer: object, kind: str) -> list[tuple[str, list[float]]]:
        return [(m.group(2), _numbers(m.group(3))) for m in _TAG.finditer(str(answer)) if m.group(1) == kind]

    def box_request(self, phrases: Sequence[str], *, labelled: bool, max_boxes: int, image_size: Size,
                    input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[LabeledBox]]:
        labels = list(phrases)
        entry = f'<obj label="(?:{_alternatives(labels)})">{_NUM} {_NUM} {_NUM} {_NUM}</obj>'
        n = fit_repeats(f"{_NUM} {_NUM} {_NUM} {_NUM}", max_boxes, limits or Limits())
        pattern = f"(?:{entry}(?: {entry}){{0,{n - 1}}})?"
        prompt = f"Tag every {' or '.join(labels)}: <obj label=\"...\">x0 y0 x1 y1</obj>, 0..1000 of the image."

        def parse(answer: object) -> list[LabeledBox]:
            return [LabeledBox(label, self.to_pixel_box(v, image_size=image_size))
                    for label, v in self._tags(answer, "obj")]

        return TaskRequest(prompt, Regex(pattern), parse)

    def point_request(self, phrase: str, *, max_points: int, image_size: Size, input_size: Size | None = None,
                      limits: Limits | None = None) -> TaskRequest[list[Point]]:
        entry = f'<pt label="{re.escape(phrase)}">{_NUM} {_NUM}</pt>'
        n = fit_repeats(f"{_NUM} {_NUM}", max_points, limits or Limits())
        prompt = f'Tag each place of "{phrase}": <pt label="...">x y</pt>.'

        def parse(answer: object) -> list[Point]:
            return [self.to_pixel_point(v, image_size=image_size, label=label) for label, v in self._tags(answer, "pt")]

        return TaskRequest(prompt, Regex(f"(?:{entry}(?: {entry}){{0,{n - 1}}})?"), parse)

    def outline_request(self, phrase: str, *, max_masks: int, max_vertices: int, image_size: Size,
                        input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[Outline]]:
        vertex = f"{_NUM} {_NUM}"
        n = fit_repeats(vertex, max_vertices * max_masks, limits or Limits()) // max_masks
        entry = f'<poly label="{re.escape(phrase)}">{vertex}(?: {vertex}){{2,{max(2, n - 1)}}}</poly>'
        prompt = f'Outline "{phrase}": <poly label="...">x y x y x y ...</poly>.'

        def parse(answer: object) -> list[Outline]:
            out = []
            for _, v in self._tags(answer, "poly"):
                pts = [self.to_pixel_point(v[i: i + 2], image_size=image_size).xy for i in range(0, len(v) - 1, 2)]
                out.append(Outline([Polygon(points=pts, space=Space.PIXEL, image_size=image_size)], "polygon"))
            return out

        return TaskRequest(prompt, Regex(f"(?:{entry}(?: {entry}){{0,{max_masks - 1}}})?"), parse)

    # the inverse, for the test's oracle (what a Tagged model would answer)
    def format_tags(self, kind: str, label: str, values: Sequence[float]) -> str:
        return f'<{kind} label="{label}">{" ".join(str(int(v)) for v in values)}</{kind}>'

    def box_values(self, box: BoundingBox) -> tuple[float, ...]:
        return tuple(min(v, 999) for v in self.encode_box(box))


TAGGED = TaggedProfile("tagged", model_types=("tagged_vlm",), box_convention=BoxConvention.REL_1000,
                       supports_grounding=True, notes="A made-up family for tests.")
