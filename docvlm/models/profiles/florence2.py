"""Florence-2: task tokens, labels before their ``<loc_N>`` tokens, quads and polygons as loc runs.

In tasks Florence-2 is asked with its task tokens (``<CAPTION_TO_PHRASE_GROUNDING>``,
``<REFERRING_EXPRESSION_SEGMENTATION>``) under a [`Regex`][docvlm.decoding.Regex] of its native answer, the label
restricted to what was asked and the empty answer allowed ("nothing found").
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
    LabeledPolygon,
    LabeledQuad,
    Outline,
    TaskRequest,
    fit_repeats,
    points_at_box_centres,
)
from docvlm.types.geometry import BoundingBox, Point, Polygon, Quad, Size, Space

__all__ = ["FLORENCE2", "Florence2Profile"]

_STRIP_RE = re.compile(r"<(?!loc_\d+>|sep>|/?poly>)[^<>]*>")
_RUN_RE = re.compile(r"([^<]*)((?:<loc_\d+>)+)")
_POLY_RUN_RE = re.compile(r"([^<]*)((?:<loc_\d+>|<sep>|<poly>|</poly>)+)")
_LOC_RE = re.compile(r"<loc_(\d+)>")


@dataclass(frozen=True)
class Florence2Profile(FamilyProfile):
    """Florence-2: task tokens, labels before their ``<loc_N>`` tokens, quads and polygons as loc runs.

    Parse the text decoded with ``skip_special_tokens=False`` (loc tokens are special tokens).
    """

    _TASKS: ClassVar[Mapping[str, tuple[str, bool]]] = {
        "caption": ("<CAPTION>", False),
        "detailed_caption": ("<DETAILED_CAPTION>", False),
        "more_detailed_caption": ("<MORE_DETAILED_CAPTION>", False),
        "ocr": ("<OCR>", False),
        "ocr_with_region": ("<OCR_WITH_REGION>", False),
        "detect": ("<OD>", False),
        "dense_region_caption": ("<DENSE_REGION_CAPTION>", False),
        "region_proposal": ("<REGION_PROPOSAL>", False),
        "ground": ("<CAPTION_TO_PHRASE_GROUNDING>{text}", True),
        "segment": ("<REFERRING_EXPRESSION_SEGMENTATION>{text}", True),
        "open_vocabulary_detection": ("<OPEN_VOCABULARY_DETECTION>{text}", True),
        "region_to_segmentation": ("<REGION_TO_SEGMENTATION>{text}", True),
        "region_to_category": ("<REGION_TO_CATEGORY>{text}", True),
        "region_to_description": ("<REGION_TO_DESCRIPTION>{text}", True),
        "region_to_ocr": ("<REGION_TO_OCR>{text}", True),
    }

    def native_box_regex(self) -> str:
        """Four ``<loc_N>`` tokens, each 0..999."""
        return r"(?:<loc_(?:[0-9]|[1-9][0-9]|[1-9][0-9]{2})>){4}"

    @staticmethod
    def _clean(text: str) -> str:
        return _STRIP_RE.sub("", text.replace("<pad>", "")) if isinstance(text, str) else ""

    def _runs(self, text: str, group: int) -> list[tuple[str | None, list[list[float]]]]:
        out = []
        for m in _RUN_RE.finditer(self._clean(text)):
            locs = [float(v) for v in _LOC_RE.findall(m.group(2))]
            groups = [locs[i : i + group] for i in range(0, len(locs) - group + 1, group)]
            if groups:
                out.append((m.group(1).strip() or None, groups))
        return out

    def parse_boxes(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledBox]:
        """``label<loc_x0><loc_y0><loc_x1><loc_y1>...`` to labelled pixel boxes (bin centres).

        A label followed by 8 locs gives two boxes (phrase grounding); a trailing incomplete group is
        dropped. For ``<OCR_WITH_REGION>`` use `parse_quads`, for segmentation [`parse_polygons`][docvlm.models.profiles.FamilyProfile.parse_polygons].
        """
        return [
            LabeledBox(label, self.to_pixel_box(g, image_size=image_size))
            for label, groups in self._runs(text, 4)
            for g in groups
        ]

    def parse_quads(self, text: str, *, image_size: Size) -> list[LabeledQuad]:
        """``<OCR_WITH_REGION>`` output: ``text<loc_x1><loc_y1>...<loc_x4><loc_y4>`` to (text, quad) in pixels."""
        out = []
        for label, groups in self._runs(text, 8):
            for g in groups:
                corners = [self.to_pixel_point(g[i : i + 2], image_size=image_size).xy for i in range(0, 8, 2)]
                quad = Quad(
                    ul=corners[0], ur=corners[1], lr=corners[2], ll=corners[3], space=Space.PIXEL, image_size=image_size
                )
                out.append(LabeledQuad(label, quad))
        return out

    def parse_polygons(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledPolygon]:
        """Segmentation output: loc pairs ``x y`` per vertex, polygons split by ``<sep>`` / ``<poly>``.

        Polygons with fewer than 3 vertices are dropped, and so is an odd last coordinate.
        """
        out = []
        for m in _POLY_RUN_RE.finditer(self._clean(text)):
            label = m.group(1).strip() or None
            for chunk in re.split(r"<sep>|<poly>|</poly>", m.group(2)):
                locs = [float(v) for v in _LOC_RE.findall(chunk)]
                pts = [self.to_pixel_point(locs[i : i + 2], image_size=image_size).xy for i in range(0, len(locs) - 1, 2)]
                if len(pts) >= 3:
                    out.append(LabeledPolygon(label, Polygon(points=pts, space=Space.PIXEL, image_size=image_size)))
        return out

    def parse_points(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledPoint]:
        """Florence-2 has no point convention: always ``[]``."""
        return []

    def format_boxes(self, items: Iterable[tuple[str | None, BoundingBox]], *, input_size: Size | None = None) -> str:
        """``label<loc_..>x4`` per box, concatenated, as Florence-2's ``<OD>`` answers."""
        return "".join(
            (label or "") + "".join(f"<loc_{int(v)}>" for v in self.encode_box(box)) for label, box in items
        )

    def format_polygons(self, items: Iterable[tuple[str | None, Polygon]]) -> str:
        """``label<loc_x><loc_y>...`` per polygon, as Florence-2's segmentation answers."""
        parts = []
        for label, poly in items:
            locs: list[float] = []
            for x, y in poly.points:
                pt = Point(x=x, y=y, space=poly.space, image_size=poly.image_size)
                locs.extend(self.encode_point(pt))
            parts.append((label or "") + "".join(f"<loc_{int(v)}>" for v in locs))
        return "".join(parts)

    def format_points(self, items: Iterable[tuple[str | None, Point]], *, input_size: Size | None = None) -> str:
        """Florence-2 has no point convention.

        Raises:
            UsageError: always.
        """
        raise UsageError("Florence-2 has no point convention")

    # tasks ----------------------------------------------------------------------------------------
    reserved_characters: ClassVar[str] = "<>;"

    def box_request(self, phrases: Sequence[str], *, labelled: bool, max_boxes: int, image_size: Size,
                    input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[LabeledBox]]:
        """``<CAPTION_TO_PHRASE_GROUNDING>`` under a regex of a label, then its boxes: the first box must be
        labelled, later ones only when the label changes; as many boxes as fit ``limits``, or nothing."""
        labels = list(phrases)
        label, box = f"(?:{_alternatives(labels)})", self.native_box_regex()
        n = fit_repeats(box, max_boxes, limits or Limits())
        pattern = f"(?:{label}{box}(?:{label}?{box}){{0,{n - 1}}})?"

        def parse(answer: object) -> list[LabeledBox]:
            found = self.parse_boxes(str(answer), image_size=image_size)[:max_boxes]
            return [LabeledBox(lab if lab in labels else labels[0], b) for lab, b in found]

        return TaskRequest(self.task_prompt("ground", labels), Regex(pattern), parse)

    def point_request(self, phrase: str, *, max_points: int, image_size: Size, input_size: Size | None = None,
                      limits: Limits | None = None) -> TaskRequest[list[Point]]:
        """No point convention: the phrase is grounded and each box's centre is a point."""
        request = self.box_request([phrase], labelled=False, max_boxes=max_points, image_size=image_size,
                                   input_size=input_size, limits=limits)
        return points_at_box_centres(request, phrase)

    def outline_request(self, phrase: str, *, max_masks: int, max_vertices: int, image_size: Size,
                        input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[Outline]]:
        """``<REFERRING_EXPRESSION_SEGMENTATION>``: one object, possibly in parts split by ``<sep>``, with a budget
        of ``2 * max_vertices`` vertices in all (parts of fewer than three vertices are dropped by the parser)."""
        one = self.native_box_regex()[: -len("{4}")]
        pair = f"{one}{one}"
        vertices = max(3, fit_repeats(pair, 2 * max_vertices, limits or Limits()))
        pattern = f"(?:{pair}{{3}}(?:{pair}|<sep>){{0,{vertices - 3}}})?"

        def parse(answer: object) -> list[Outline]:
            parts = [lp.polygon for lp in self.parse_polygons(str(answer), image_size=image_size)]
            return [Outline(parts, "polygon")] if parts else []

        return TaskRequest(self.task_prompt("segment", phrase), Regex(pattern), parse)


def _alternatives(phrases: Sequence[str]) -> str:
    return "|".join(re.escape(p) for p in phrases)


FLORENCE2 = Florence2Profile(
    "florence2",
    model_types=("florence2",),
    box_convention=BoxConvention.LOC_1000,
    supports_grounding=True,
    uses_chat_template=False,
    notes="Task tokens; label<loc_x0><loc_y0><loc_x1><loc_y1>, bins of size/1000 read at their centre.",
)
