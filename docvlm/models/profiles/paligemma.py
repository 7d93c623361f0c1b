"""PaliGemma (1 and 2): raw task prompts, ``<locNNNN>`` boxes in y,x order, ``<segNNN>`` mask codes.

In tasks PaliGemma is asked with its own task prefixes (``detect a ; b``, ``segment a``) under a
[`Regex`][docvlm.decoding.Regex] of its native answer, the label restricted to what was asked and the empty answer
allowed ("nothing found").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from docvlm.decoding import Limits, Regex
from docvlm.errors import UsageError
from docvlm.models.profiles._base import (
    BoxConvention,
    FamilyProfile,
    LabeledBox,
    LabeledPoint,
    Outline,
    Segment,
    TaskRequest,
    fit_repeats,
    points_at_box_centres,
)
from docvlm.types.geometry import BoundingBox, Point, Polygon, Size, Space

__all__ = ["PALIGEMMA", "PaliGemmaProfile"]

#: PaliGemma mask codes: 16 ``<segNNN>`` tokens, each 000..127.
_SEG16 = r"(?:<seg(?:0[0-9]{2}|1[01][0-9]|12[0-7])>){16}"

_ENTRY_RE = re.compile(r"((?:<loc\d+>){4})((?:<seg\d+>)*)([^<;]*)")
_LOC_RE = re.compile(r"<loc(\d+)>")
_SEG_RE = re.compile(r"<seg(\d+)>")


@dataclass(frozen=True)
class PaliGemmaProfile(FamilyProfile):
    """PaliGemma (1 and 2): raw task prompts, ``<locNNNN>`` boxes in y,x order and ``<segNNN>`` mask codes."""

    _TASKS: ClassVar[Mapping[str, tuple[str, bool]]] = {
        "detect": ("detect {text}", True),
        "segment": ("segment {text}", True),
        "caption": ("caption {language}", False),
        "ocr": ("ocr", False),
        "answer": ("answer {language} {text}", True),
        "question": ("question {language} {text}", True),
    }

    def _join_labels(self, labels: Sequence[str]) -> str:
        return " ; ".join(s.strip() for s in labels)

    def native_box_regex(self) -> str:
        """Four ``<locNNNN>`` tokens, each 0000..1023."""
        return r"(?:<loc(?:0[0-9]{3}|10[01][0-9]|102[0-3])>){4}"

    def _entries(self, text: str, image_size: Size) -> list[tuple[str | None, BoundingBox, tuple[int, ...] | None]]:
        out: list[tuple[str | None, BoundingBox, tuple[int, ...] | None]] = []
        if not isinstance(text, str):
            return out
        for m in _ENTRY_RE.finditer(text):
            locs = [float(v) for v in _LOC_RE.findall(m.group(1))]
            segs = tuple(int(v) for v in _SEG_RE.findall(m.group(2)))
            if segs and (len(segs) != 16 or max(segs) > 127):
                continue  # a cut-off or malformed mask: the entry is incomplete
            label = m.group(3).strip() or None
            box = self.to_pixel_box(locs, image_size=image_size)
            out.append((label, box, segs or None))
        return out

    def parse_boxes(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledBox]:
        """``<loc y0><loc x0><loc y1><loc x1> label ; ...`` (also with mask codes) to labelled pixel boxes.

        Entries cut off before their fourth loc token, or inside their 16 mask codes, are dropped.
        """
        return [LabeledBox(label, box) for label, box, _ in self._entries(text, image_size)]

    def parse_segments(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[Segment]:
        """``<loc>x4 <seg>x16 label ; ...`` to (label, box, seg_codes); entries without 16 codes are skipped."""
        return [Segment(label, box, segs) for label, box, segs in self._entries(text, image_size) if segs is not None]

    def parse_points(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledPoint]:
        """PaliGemma has no point convention: always ``[]``."""
        return []

    def format_boxes(self, items: Iterable[tuple[str | None, BoundingBox]], *, input_size: Size | None = None) -> str:
        """``<loc..>x4 label`` entries joined by ``" ; "``, as PaliGemma's ``detect`` answers."""
        parts = []
        for label, box in items:
            locs = "".join(f"<loc{int(v):04d}>" for v in self.encode_box(box))
            parts.append(f"{locs} {label}" if label else locs)
        return " ; ".join(parts)

    def format_segments(self, items: Iterable[tuple[str | None, BoundingBox, Sequence[int]]]) -> str:
        """``<loc..>x4<seg..>x16 label`` entries joined by ``" ; "``, as PaliGemma's ``segment`` answers."""
        parts = []
        for label, box, codes in items:
            locs = "".join(f"<loc{int(v):04d}>" for v in self.encode_box(box))
            segs = "".join(f"<seg{int(c):03d}>" for c in codes)
            parts.append(f"{locs}{segs} {label}" if label else locs + segs)
        return " ; ".join(parts)

    def format_points(self, items: Iterable[tuple[str | None, Point]], *, input_size: Size | None = None) -> str:
        """PaliGemma has no point convention.

        Raises:
            UsageError: always.
        """
        raise UsageError("PaliGemma has no point convention")

    # tasks ----------------------------------------------------------------------------------------
    reserved_characters: ClassVar[str] = "<>;"

    def box_request(self, phrases: Sequence[str], *, labelled: bool, max_boxes: int, image_size: Size,
                    input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[LabeledBox]]:
        """``detect a ; b`` under a regex of ``<loc>x4 label`` entries joined by ``" ; "`` (labels: the phrases),
        as many as fit ``limits`` (21 under the defaults), or nothing."""
        labels = list(phrases)
        box = self.native_box_regex()
        entry = f"{box} (?:{_alternatives(labels)})"
        n = fit_repeats(box, max_boxes, limits or Limits())
        pattern = f"(?:{entry}(?: ; {entry}){{0,{n - 1}}})?"

        def parse(answer: object) -> list[LabeledBox]:
            found = self.parse_boxes(str(answer), image_size=image_size)[:max_boxes]
            return [LabeledBox(label if label in labels else labels[0], b) for label, b in found]

        return TaskRequest(self.task_prompt("detect", labels), Regex(pattern), parse)

    def point_request(self, phrase: str, *, max_points: int, image_size: Size, input_size: Size | None = None,
                      limits: Limits | None = None) -> TaskRequest[list[Point]]:
        """No point convention: the phrase is grounded and each box's centre is a point."""
        request = self.box_request([phrase], labelled=False, max_boxes=max_points, image_size=image_size,
                                   input_size=input_size, limits=limits)
        return points_at_box_centres(request, phrase)

    def outline_request(self, phrase: str, *, max_masks: int, max_vertices: int, image_size: Size,
                        input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[Outline]]:
        """``segment phrase`` under a regex of ``<loc>x4 <seg>x16 phrase`` entries. The mask codes need PaliGemma's
        VQ-VAE decoder, which docvlm does not ship: each outline is the object's box (``mask_from="box"``)."""
        unit = f"{self.native_box_regex()}{_SEG16}"
        entry = f"{unit} {re.escape(phrase)}"
        n = fit_repeats(unit, max_masks, limits or Limits())
        pattern = f"(?:{entry}(?: ; {entry}){{0,{n - 1}}})?"

        def parse(answer: object) -> list[Outline]:
            boxes = self.parse_boxes(str(answer), image_size=image_size)[:max_masks]
            return [Outline([Polygon(points=b.corners, space=Space.PIXEL, image_size=image_size)], "box")
                    for _, b in boxes]

        return TaskRequest(self.task_prompt("segment", phrase), Regex(pattern), parse)


def _alternatives(phrases: Sequence[str]) -> str:
    return "|".join(re.escape(p) for p in phrases)


PALIGEMMA = PaliGemmaProfile(
    "paligemma",
    model_types=("paligemma",),
    box_convention=BoxConvention.LOC_1024_YX,
    supports_grounding=True,
    uses_chat_template=False,
    image_token="<image>",
    notes="<locNNNN> x4 (y0 x0 y1 x1, round(v * 1023)) then the label, ' ; ' between entries; 16 <segNNN> mask codes.",
)
