"""The base of every family profile: coordinate conventions, and the JSON dialect most families speak.

A [`FamilyProfile`][docvlm.models.profiles.FamilyProfile] owns both directions of a task for its family:

- the **request**: the prompt and the constrained output type, sized to the input (the coordinate bounds of the
  image the model sees, the labels asked for, the most items allowed under the model's
  [`Limits`][docvlm.decoding.Limits]);
- the **parse**: the answer back to labelled boxes, points or outlines in pixels of the image the model saw.

The methods [`box_request`][docvlm.models.profiles.FamilyProfile.box_request],
[`point_request`][docvlm.models.profiles.FamilyProfile.point_request] and
[`outline_request`][docvlm.models.profiles.FamilyProfile.outline_request] return a
[`TaskRequest`][docvlm.models.profiles.TaskRequest] holding both. This base class speaks the JSON dialect (a JSON
list of ``{"<box_key>": [x0, y0, x1, y1], "label": ...}`` objects, coordinates in the family's
[`BoxConvention`][docvlm.models.profiles.BoxConvention]); a family with its own output syntax (PaliGemma's and
Florence-2's loc tokens) overrides the three requests in its own module. Tasks only map the pixels to page space.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, ClassVar, Generic, Literal, NamedTuple, TypeVar

from pydantic import ConfigDict, Field, create_model

from docvlm.decoding import Limits, Regex, compile_output_type
from docvlm.errors import UsageError
from docvlm.models.profiles._scan import clip, scan
from docvlm.types.geometry import BoundingBox, Point, Polygon, Quad, Size, Space

__all__ = [
    "BoxConvention",
    "FamilyProfile",
    "LabeledBox",
    "LabeledPoint",
    "LabeledPolygon",
    "LabeledQuad",
    "Outline",
    "Segment",
    "TaskRequest",
    "fit_repeats",
    "points_at_box_centres",
]

R = TypeVar("R")


class BoxConvention(str, Enum):
    """How a family writes one box coordinate ``v`` for an image (or input) side of length ``L``.

    Attributes:
        REL_1: floats ``0..1`` of the image: ``v * L``.
        REL_1000: integers ``0..1000`` of the image: ``v / 1000 * L``.
        INPUT_PIXELS: absolute pixels of the processor-resized input image: ``v * L / L_input``.
        LOC_1024_YX: PaliGemma ``<locNNNN>`` tokens (1024 of them), ``v / 1023 * L``, y before x.
        LOC_1000: Florence-2 ``<loc_N>`` tokens (1000 bins), bin centre ``(v + 0.5) / 1000 * L``.
    """

    REL_1 = "rel_1"
    REL_1000 = "rel_1000"
    INPUT_PIXELS = "input_pixels"
    LOC_1024_YX = "loc_1024_yx"
    LOC_1000 = "loc_1000"


class LabeledBox(NamedTuple):
    """A parsed box and the label the model gave it (``None`` when it gave none)."""

    label: str | None
    box: BoundingBox


class LabeledPoint(NamedTuple):
    """A parsed point and its label (also kept in ``point.label``)."""

    label: str | None
    point: Point


class LabeledPolygon(NamedTuple):
    """A parsed polygon (e.g. a Florence-2 segmentation outline) and its label."""

    label: str | None
    polygon: Polygon


class LabeledQuad(NamedTuple):
    """A parsed quadrilateral (e.g. a Florence-2 ``<OCR_WITH_REGION>`` text line) and its text."""

    label: str | None
    quad: Quad


class Segment(NamedTuple):
    """A PaliGemma segmentation: label, box and the 16 raw VQ-VAE codebook indices (0..127) of its mask.

    Turning ``seg_codes`` into a mask needs PaliGemma's mask VAE decoder (a 64x64 mask in ``box``);
    the codes are exposed as they are.
    """

    label: str | None
    box: BoundingBox
    seg_codes: tuple[int, ...]


class Outline(NamedTuple):
    """One object of a segmentation answer: its outline as pixel polygons (one, or several parts), and where the
    outline came from: ``"polygon"`` (the model drew it) or ``"box"`` (only the object's box was available)."""

    polygons: list[Polygon]
    mask_from: Literal["polygon", "box"]


@dataclass(frozen=True)
class TaskRequest(Generic[R]):
    """One task question in a family's dialect, and how to read its answer.

    Ask with ``model.generate([image, request.prompt], request.output_type)`` and hand the answer to
    ``request.parse``: results come back in pixels of the image the model saw (``space="pixel"``,
    ``image_size`` set). An empty answer is always allowed and parses to ``[]``.

    Attributes:
        prompt: the text sent with the image.
        output_type: the constrained output type (a JSON list type, or a [`Regex`][docvlm.decoding.Regex] of the
            family's native tokens), sized to the input.
        parse: the validated answer to results in pixels of the image.
    """

    prompt: str
    output_type: Any
    parse: Callable[[Any], R]


_STRICT = ConfigDict(extra="forbid")


def _bounded_list(item: Any, max_items: int) -> Any:
    return Annotated[list.__class_getitem__(item), Field(max_length=max_items)]


def _quoted(phrases: Sequence[str]) -> str:
    return ", ".join(f'"{p}"' for p in phrases)


@functools.lru_cache(maxsize=64)
def free_chars(pattern: str) -> int:
    """Free-text positions of one repeat of a native-token pattern: what its token index costs (see
    ``Limits.max_free_chars``). Computed once per pattern; the patterns are a family's fixed token syntax."""
    return compile_output_type(Regex(pattern), limits=Limits(max_free_chars=1 << 30)).free_chars


def fit_repeats(unit: str, wanted: int, limits: Limits) -> int:
    """How many repeats of the native pattern ``unit`` (at most ``wanted``, at least 1) fit ``limits``.

    The constraint compiler counts every character class of a [`Regex`][docvlm.decoding.Regex] (the digits of a loc
    token too) as a free-text position and refuses patterns with more than ``limits.max_free_chars`` of them, so long
    repeats of loc tokens are capped here: a PaliGemma ``detect`` answer holds at most 21 boxes under the default
    limits. Literal text (the labels asked for) costs nothing, so ``unit`` is the family's token syntax alone.
    """
    cost = free_chars(unit)
    if cost == 0:
        return wanted
    return max(1, min(wanted, limits.max_free_chars // cost))


def points_at_box_centres(request: TaskRequest[list[LabeledBox]], phrase: str) -> TaskRequest[list[Point]]:
    """A box request whose answer is read as points at the boxes' centres, labelled ``phrase`` (families without a
    point convention)."""

    def parse(answer: Any) -> list[Point]:
        return [
            Point(x=b.center[0], y=b.center[1], label=phrase, space=Space.PIXEL, image_size=b.image_size)
            for _, b in request.parse(answer)
        ]

    return TaskRequest(request.prompt, request.output_type, parse)


@dataclass(frozen=True)
class FamilyProfile:
    """How a model family speaks: prompt quirks and its box / point convention.

    Raw numbers are always in the family's own order and scale (``y0, x0, y1, x1`` loc indices for
    PaliGemma, loc bins for Florence-2, ...); results are always in the pixel space of the original
    image. ``input_size`` is the size the model saw after its processor resized the image
    ([`docvlm.models.base.Model.input_image_size`][docvlm.models.base.Model.input_image_size]); only `BoxConvention.INPUT_PIXELS`
    families need it, and without it they assume the processor's default resize
    ([`default_input_size`][docvlm.models.profiles.FamilyProfile.default_input_size]).

    Attributes:
        name: a short family name (``"qwen2_5_vl"``).
        model_types: the transformers ``config.model_type`` values this profile serves.
        box_convention: how one coordinate is written (see [`BoxConvention`][docvlm.models.profiles.BoxConvention]).
        supports_grounding: whether the family was trained to output boxes; when False, boxes come
            only from the prompt convention ([`box_prompt_hint`][docvlm.models.profiles.FamilyProfile.box_prompt_hint]) and are rough at best.
        uses_chat_template: False for families that take a raw task prompt (PaliGemma, Florence-2).
        image_token: the placeholder a raw prompt carries once per image (PaliGemma's ``"<image>"``),
            or None when the processor or chat template places images itself.
        box_key: the JSON key this family writes a box under (``"bbox_2d"`` for Qwen2.5/3-VL).
        point_key: the JSON key for a point.
        decimals: fraction digits of `BoxConvention.REL_1` coordinates when encoding.
        json_fence: whether the family wraps JSON answers in a markdown code fence.
        notes: where the convention comes from and its caveats.
    """

    name: str
    model_types: tuple[str, ...] = ()
    box_convention: BoxConvention = BoxConvention.REL_1000
    supports_grounding: bool = False
    uses_chat_template: bool = True
    image_token: str | None = None
    box_key: str = "bbox"
    point_key: str = "point"
    decimals: int = 3
    json_fence: bool = False
    notes: str = ""

    _TASKS: ClassVar[Mapping[str, tuple[str, bool]]] = {}
    """Task name -> (prompt template, needs text); empty for free-form families."""

    # capabilities --------------------------------------------------------------------------------
    @property
    def image_token_in_prompt(self) -> bool:
        """Whether a raw prompt must carry `image_token` once per image."""
        return self.image_token is not None

    @property
    def supported_tasks(self) -> tuple[str, ...]:
        """Task names [`task_prompt`][docvlm.models.profiles.FamilyProfile.task_prompt] accepts (empty for families prompted in free text)."""
        return tuple(self._TASKS)

    @property
    def _yx(self) -> bool:
        return self.box_convention is BoxConvention.LOC_1024_YX

    # coordinate mapping --------------------------------------------------------------------------
    def default_input_size(self, image_size: Size) -> Size:
        """The size the family's processor shows the model by default (only input-pixel families resize)."""
        return image_size

    def _input(self, image_size: Size, input_size: Size | None) -> Size:
        return input_size if input_size is not None else self.default_input_size(image_size)

    def _to_fraction(self, v: float, axis_input: float) -> float:
        c = self.box_convention
        if c is BoxConvention.REL_1:
            return v
        if c is BoxConvention.REL_1000:
            return v / 1000
        if c is BoxConvention.INPUT_PIXELS:
            return v / axis_input
        if c is BoxConvention.LOC_1024_YX:
            return v / 1023
        return (v + 0.5) / 1000  # LOC_1000: bin centre

    def _from_fraction(self, f: float, axis_input: float) -> float:
        c = self.box_convention
        if c is BoxConvention.REL_1:
            return round(min(max(f, 0.0), 1.0), self.decimals)
        if c is BoxConvention.REL_1000:
            return min(max(round(f * 1000), 0), 1000)
        if c is BoxConvention.INPUT_PIXELS:
            return min(max(round(f * axis_input), 0), round(axis_input))
        if c is BoxConvention.LOC_1024_YX:
            return min(max(round(f * 1023), 0), 1023)
        return min(max(math.floor(f * 1000), 0), 999)  # LOC_1000, as Florence2PostProcessor.quantize

    def _xy_to_pixels(self, x: float, y: float, image_size: Size, input_size: Size | None) -> tuple[float, float]:
        inp = self._input(image_size, input_size)
        px = self._to_fraction(x, inp.width) * image_size.width
        py = self._to_fraction(y, inp.height) * image_size.height
        return clip(px, image_size.width), clip(py, image_size.height)

    @staticmethod
    def _finite(values: Sequence[float], n: int, what: str) -> list[float]:
        vals = [float(v) for v in values]
        if len(vals) != n or not all(math.isfinite(v) for v in vals):
            raise UsageError(f"a {what} needs {n} finite numbers, got {list(values)!r}")
        return vals

    def to_pixel_box(self, values: Sequence[float], *, image_size: Size, input_size: Size | None = None) -> BoundingBox:
        """The family's raw 4 numbers as a box in pixels of the original image.

        Handles the order (``y0, x0, y1, x1`` for PaliGemma), the scale, swapped corners, and clips
        coordinates outside the image to its edges.

        Args:
            values: the 4 numbers as the model wrote them.
            image_size: the original image's size.
            input_size: the size the model saw (input-pixel families; default [`default_input_size`][docvlm.models.profiles.FamilyProfile.default_input_size]).

        Returns:
            A [`BoundingBox`][docvlm.types.geometry.BoundingBox] with ``space="pixel"`` and ``image_size=image_size``.

        Raises:
            UsageError: not exactly 4 finite numbers.
        """
        a, b, c, d = self._finite(values, 4, "box")
        x0, y0, x1, y1 = (b, a, d, c) if self._yx else (a, b, c, d)
        px0, py0 = self._xy_to_pixels(x0, y0, image_size, input_size)
        px1, py1 = self._xy_to_pixels(x1, y1, image_size, input_size)
        return BoundingBox.from_corners(px0, py0, px1, py1, space=Space.PIXEL, image_size=image_size)

    def to_pixel_point(
        self, values: Sequence[float], *, image_size: Size, input_size: Size | None = None, label: str | None = None
    ) -> Point:
        """The family's raw 2 numbers (``y, x`` for PaliGemma) as a point in pixels of the original image, clipped.

        Args:
            values: the 2 numbers as the model wrote them.
            image_size: the original image's size.
            input_size: the size the model saw (input-pixel families).
            label: a label to store on the point.

        Raises:
            UsageError: not exactly 2 finite numbers.
        """
        a, b = self._finite(values, 2, "point")
        x, y = (b, a) if self._yx else (a, b)
        px, py = self._xy_to_pixels(x, y, image_size, input_size)
        return Point(x=px, y=py, label=label, space=Space.PIXEL, image_size=image_size)

    def _fractions(self, geom: BoundingBox | Point, image_size: Size | None) -> tuple[list[float], Size | None]:
        size = image_size or geom.image_size
        pts = geom.corners[::2] if isinstance(geom, BoundingBox) else [geom.xy]
        if geom.space is Space.NORMALIZED:
            return [v for p in pts for v in p], size
        if geom.space is Space.PIXEL and size is not None:
            return [v for x, y in pts for v in (x / size.width, y / size.height)], size
        raise UsageError(
            f"encoding needs geometry in pixel space with its image size, or normalized; got {geom.space.value}",
            hint="convert with .to('pixel', frame) first",
        )

    def _encode(self, fractions: list[float], image_size: Size | None, input_size: Size | None) -> tuple[float, ...]:
        if self.box_convention is BoxConvention.INPUT_PIXELS and input_size is None:
            if image_size is None:
                raise UsageError(f"{self.name} writes pixels of the model's input: encoding needs an input_size")
            input_size = self.default_input_size(image_size)
        w = input_size.width if input_size is not None else 1.0
        h = input_size.height if input_size is not None else 1.0
        out = [self._from_fraction(f, w if i % 2 == 0 else h) for i, f in enumerate(fractions)]
        if self._yx:
            out = [v for i in range(0, len(out), 2) for v in (out[i + 1], out[i])]
        return tuple(out)

    def encode_box(
        self, box: BoundingBox, *, image_size: Size | None = None, input_size: Size | None = None
    ) -> tuple[float, float, float, float]:
        """The 4 numbers this family would write for ``box`` (the inverse of [`to_pixel_box`][docvlm.models.profiles.FamilyProfile.to_pixel_box], quantized).

        Useful for fakes that imitate a family (a TestModel answering in its dialect) and for region
        prompts (Florence-2 ``<REGION_TO_DESCRIPTION>``).

        Args:
            box: a box in pixel space (with ``image_size``, or pass ``image_size``) or normalized space.
            image_size: the image the box's pixels refer to, if the box does not say.
            input_size: the size the model sees (input-pixel families).

        Raises:
            UsageError: a page-space box, or a pixel box without an image size.
        """
        fractions, size = self._fractions(box, image_size)
        a, b, c, d = self._encode(fractions, size, input_size)
        return (a, b, c, d)

    def encode_point(
        self, point: Point, *, image_size: Size | None = None, input_size: Size | None = None
    ) -> tuple[float, float]:
        """The 2 numbers this family would write for ``point`` (inverse of [`to_pixel_point`][docvlm.models.profiles.FamilyProfile.to_pixel_point], quantized).

        Raises:
            UsageError: a page-space point, or a pixel point without an image size.
        """
        fractions, size = self._fractions(point, image_size)
        a, b = self._encode(fractions, size, input_size)
        return (a, b)

    def quantization_error(self, image_size: Size, *, input_size: Size | None = None) -> tuple[float, float]:
        """The largest error in pixels (x, y) that writing a coordinate in this convention introduces."""
        c = self.box_convention
        if c is BoxConvention.REL_1:
            step_x = step_y = 10.0 ** -self.decimals
        elif c is BoxConvention.INPUT_PIXELS:
            inp = self._input(image_size, input_size)
            step_x, step_y = 1 / inp.width, 1 / inp.height
        else:
            step_x = step_y = 1 / (1023 if c is BoxConvention.LOC_1024_YX else 1000)
        return (step_x * image_size.width / 2, step_y * image_size.height / 2)

    # constrained decoding and prompts ------------------------------------------------------------
    def coordinate_type(self, *, input_size: Size | None = None, axis: Literal["x", "y"] | None = None) -> Any:
        """The type of ONE coordinate in a constrained JSON box for this family.

        ``Annotated[int, Field(ge=0, le=1000)]`` for 0..1000 families, ``Annotated[float, Field(ge=0,
        le=1)]`` for 0..1 ones, ``Annotated[int, Field(ge=0, le=max(input_size))]`` for Qwen2.5-VL
        (``le`` is the input width or height when ``axis`` says which), and the loc index range for
        the token families (0..1023 PaliGemma, 0..999 Florence-2; their native output is tokens, see
        [`native_box_regex`][docvlm.models.profiles.FamilyProfile.native_box_regex]).

        Raises:
            UsageError: an input-pixel family without ``input_size``.
        """
        c = self.box_convention
        if c is BoxConvention.REL_1:
            return Annotated[float, Field(ge=0, le=1)]
        if c is BoxConvention.REL_1000:
            return Annotated[int, Field(ge=0, le=1000)]
        if c is BoxConvention.LOC_1024_YX:
            return Annotated[int, Field(ge=0, le=1023)]
        if c is BoxConvention.LOC_1000:
            return Annotated[int, Field(ge=0, le=999)]
        if input_size is None:
            raise UsageError(
                f"{self.name} writes pixels of the resized input image: the coordinate bound needs input_size",
                hint="pass input_size=model.input_image_size(image)",
            )
        sides = {"x": input_size.width, "y": input_size.height}
        hi = sides[axis] if axis is not None else max(sides.values())
        return Annotated[int, Field(ge=0, le=math.ceil(hi))]

    def native_box_regex(self) -> str | None:
        """A regex for one box in the family's native token syntax (loc-token families), else None."""
        return None

    def box_prompt_hint(self, *, input_size: Size | None = None) -> str:
        """A sentence telling the model how to write a box in this family's convention."""
        key = self.box_key
        c = self.box_convention
        if c is BoxConvention.REL_1000:
            return (
                f'Give each box as "{key}": [x0, y0, x1, y1] where coordinates are integers from 0 to 1000 '
                "relative to the image width and height: (0, 0) is the top-left corner, (1000, 1000) the bottom-right."
            )
        if c is BoxConvention.REL_1:
            return (
                f'Give each box as "{key}": [x0, y0, x1, y1] where coordinates are decimal numbers from 0 to 1 '
                f"with {self.decimals} decimals, fractions of the image width and height: (0, 0) is the top-left "
                "corner, (1, 1) the bottom-right."
            )
        if c is BoxConvention.INPUT_PIXELS:
            size = (
                f" The image is {input_size.width:g} pixels wide and {input_size.height:g} pixels high."
                if input_size is not None
                else ""
            )
            return (
                f'Give each box as "{key}": [x0, y0, x1, y1] where coordinates are integer pixel positions in '
                f"the image as you see it, (0, 0) being the top-left corner.{size}"
            )
        if c is BoxConvention.LOC_1024_YX:
            return (
                "Each box is four <locNNNN> tokens y0 x0 y1 x1, each 0000 to 1023 of the image height or width, "
                "followed by its label; boxes are separated by ' ; '."
            )
        return "Each box is its label followed by four <loc_N> tokens x0 y0 x1 y1, each 0 to 999 of the image."

    def point_prompt_hint(self, *, input_size: Size | None = None) -> str:
        """A sentence telling the model how to write a point in this family's convention."""
        hint = self.box_prompt_hint(input_size=input_size)
        return hint.replace(f'"{self.box_key}": [x0, y0, x1, y1]', f'"{self.point_key}": [x, y]').replace(
            "Give each box", "Give each point"
        )

    def task_prompt(self, task: str, text: str | Sequence[str] | None = None, *, language: str = "en") -> str:
        """The raw prompt for a native task of a task-token family (Florence-2, PaliGemma).

        Args:
            task: a name from [`supported_tasks`][docvlm.models.profiles.FamilyProfile.supported_tasks] (or the family's own task token, e.g. ``"<OD>"``).
            text: the task's input, for tasks that take one (a phrase; for PaliGemma ``detect`` also a
                list of labels).
            language: the output language of PaliGemma's ``caption`` / ``answer`` / ``ocr`` prefixes.

        Raises:
            UsageError: a family prompted in free text, an unknown task, or text missing / not allowed.
        """
        if not self._TASKS:
            raise UsageError(
                f"the {self.name} family has no task prompts: it is prompted in free text",
                hint="write an instruction and add box_prompt_hint() for boxes",
            )
        key = task.strip()
        entry = self._TASKS.get(key.lower()) or next((v for v in self._TASKS.values() if v[0].split("{")[0] == key), None)
        if entry is None:
            raise UsageError(f"unknown {self.name} task {task!r}", hint=f"choose one of {', '.join(self._TASKS)}")
        template, needs_text = entry
        joined = text if isinstance(text, str) or text is None else self._join_labels(text)
        if needs_text and not (joined and joined.strip()):
            raise UsageError(f"the {self.name} task {task!r} needs text (a phrase or labels)")
        if not needs_text and joined is not None:
            raise UsageError(f"the {self.name} task {task!r} takes no text")
        return template.format(text=(joined or "").strip(), language=language)

    def _join_labels(self, labels: Sequence[str]) -> str:
        return ", ".join(s.strip() for s in labels)

    def raw_prompt(self, prompt: str, *, num_images: int = 1) -> str:
        """``prompt`` as the processor of a raw-prompt family expects it (image placeholders first)."""
        return (self.image_token or "") * num_images + prompt

    # parsing ---------------------------------------------------------------------------------------
    def parse_boxes(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledBox]:
        """Every complete (label, box) in the family's native free-form output, in pixels of the original image.

        Tolerates markdown fences, JSON lists / objects (``bbox_2d`` / ``bbox`` / ``box`` keys, or the
        label as key), bare ``[x0, y0, x1, y1]`` lists, Qwen2-VL box tokens, prose around them,
        trailing garbage and a cut-off last box (dropped). Never raises on model text.
        """
        out: list[LabeledBox] = []
        for raw in scan(text, "box"):
            out.append(LabeledBox(raw.label, self.to_pixel_box(raw.values, image_size=image_size, input_size=input_size)))
        return out

    def parse_points(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledPoint]:
        """Every complete (label, point) in the output: ``point_2d`` / ``point`` JSON, bare ``[x, y]``, Molmo tags.

        Molmo-style ``<point x="61.5" y="40.6" alt="cat">cat</point>`` (and ``<points x1=.. y1=..>``)
        are read as percentages of the image whatever the family. Never raises on model text.
        """
        out: list[LabeledPoint] = []
        for raw in scan(text, "point"):
            if raw.percent:
                x, y = raw.values
                point = Point(
                    x=clip(x / 100 * image_size.width, image_size.width),
                    y=clip(y / 100 * image_size.height, image_size.height),
                    label=raw.label,
                    space=Space.PIXEL,
                    image_size=image_size,
                )
            else:
                point = self.to_pixel_point(raw.values, image_size=image_size, input_size=input_size, label=raw.label)
            out.append(LabeledPoint(raw.label, point))
        return out

    def parse_polygons(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledPolygon]:
        """Polygons in native output; only Florence-2 has a polygon convention, the others return ``[]``."""
        return []

    def parse_segments(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[Segment]:
        """Boxes with VQ-VAE mask codes; only PaliGemma writes them, the others return ``[]``."""
        return []

    # formatting (the inverse of parsing; for fakes and examples) -----------------------------------
    def format_boxes(self, items: Iterable[tuple[str | None, BoundingBox]], *, input_size: Size | None = None) -> str:
        """Native output text for labelled boxes, as a model of this family would write it.

        Boxes are in pixel space with ``image_size`` set (or normalized); [`parse_boxes`][docvlm.models.profiles.FamilyProfile.parse_boxes] reads the
        result back within [`quantization_error`][docvlm.models.profiles.FamilyProfile.quantization_error].
        """
        records = []
        for label, box in items:
            record: dict[str, Any] = {self.box_key: list(self.encode_box(box, input_size=input_size))}
            if label is not None:
                record["label"] = label
            records.append(record)
        return self._json_text(records)

    def format_points(self, items: Iterable[tuple[str | None, Point]], *, input_size: Size | None = None) -> str:
        """Native output text for labelled points (JSON families), the inverse of [`parse_points`][docvlm.models.profiles.FamilyProfile.parse_points]."""
        records = []
        for label, point in items:
            record: dict[str, Any] = {self.point_key: list(self.encode_point(point, input_size=input_size))}
            if label is not None:
                record["label"] = label
            records.append(record)
        return self._json_text(records)

    def _json_text(self, records: list[dict[str, Any]]) -> str:
        body = json.dumps(records, ensure_ascii=False)
        return f"```json\n{body}\n```" if self.json_fence else body


    # tasks: the request and the parse back to pixels (the JSON dialect; loc-token families override) ------
    @property
    def needs_input_size(self) -> bool:
        """Whether requests and parses need the size the model's processor resizes the image to (Qwen2.5-VL's
        input pixels); tasks then pass ``input_size=model.input_image_size(image)``."""
        return self.box_convention is BoxConvention.INPUT_PIXELS

    #: Characters a phrase may not contain (the family's own delimiters).
    reserved_characters: ClassVar[str] = ""

    def check_phrase(self, text: str, what: str) -> None:
        """Refuse a phrase this family cannot be asked about (one with its delimiters in it).

        Raises:
            UsageError: ``text`` contains one of `reserved_characters`.
        """
        chars = self.reserved_characters
        if chars and any(c in text for c in chars):
            listed = ", ".join(f"'{c}'" for c in chars[:-1]) + f" or '{chars[-1]}'" if len(chars) > 1 else f"'{chars}'"
            raise UsageError(
                f"the {what} {text!r} contains {listed}, which {self.name} models use as delimiters",
                hint="rephrase it without those characters",
            )

    def box_request(self, phrases: Sequence[str], *, labelled: bool, max_boxes: int, image_size: Size,
                    input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[LabeledBox]]:
        """Ask for the boxes of ``phrases``: labels to detect (``labelled``), or the one phrase to ground.

        JSON dialect: ``[{"<box_key>": [x0, y0, x1, y1], "label": <one of the phrases>}, ...]`` with coordinates
        bounded by the family's convention (pixels of ``input_size`` for Qwen2.5-VL), at most ``max_boxes`` items.

        Args:
            phrases: the labels (or the one phrase), cleaned and distinct.
            labelled: detection of several labels (else grounding of ``phrases[0]``).
            max_boxes: the most boxes the answer may hold.
            image_size: the size of the image the model sees.
            input_size: the size the model's processor resizes it to (families that `needs_input_size`).
            limits: the model's constraint limits (native-token families size their repeats to them).

        Returns:
            The request; its ``parse`` gives labelled pixel boxes of the image, each label one of ``phrases``.
        """
        labels = tuple(phrases)
        output_type = _box_list_type(self, input_size, labels, max_boxes)
        key = self.box_key
        hint = self.box_prompt_hint(input_size=input_size)
        if labelled:
            prompt = (
                f"Detect every instance of these labels in the image: {_quoted(labels)}. Answer with a JSON list "
                f'with one object per instance: {{"{key}": [x0, y0, x1, y1], "label": <one of the labels>}}. '
                f"{hint} If none of them is in the image, answer []."
            )
        else:
            prompt = (
                f'Find "{labels[0]}" in the image. Answer with a JSON list with one object per place where it '
                f'appears (at most {max_boxes}): {{"{key}": [x0, y0, x1, y1], "label": "{labels[0]}"}}. '
                f"{hint} "
                "If it does not appear in the image, answer [] and do not guess a box."
            )

        def parse(items: Any) -> list[LabeledBox]:
            return [
                LabeledBox(str(it.label), self.to_pixel_box(getattr(it, key), image_size=image_size, input_size=input_size))
                for it in items
            ]

        return TaskRequest(prompt, output_type, parse)

    def point_request(self, phrase: str, *, max_points: int, image_size: Size, input_size: Size | None = None,
                      limits: Limits | None = None) -> TaskRequest[list[Point]]:
        """Ask for points on ``phrase``: ``[{"<point_key>": [x, y]}, ...]`` in the family's convention.

        Returns:
            The request; its ``parse`` gives pixel points of the image, labelled with ``phrase``.
        """
        output_type = _point_list_type(self, input_size, max_points)
        key = self.point_key
        prompt = (
            f'Point at "{phrase}" in the image. Answer with a JSON list with one object per place where it appears '
            f'(at most {max_points}): {{"{key}": [x, y]}}. {self.point_prompt_hint(input_size=input_size)} '
            "If it does not appear in the image, answer [] and do not guess a point."
        )

        def parse(items: Any) -> list[Point]:
            return [
                self.to_pixel_point(getattr(it, key), image_size=image_size, input_size=input_size, label=phrase)
                for it in items
            ]

        return TaskRequest(prompt, output_type, parse)

    def outline_request(self, phrase: str, *, max_masks: int, max_vertices: int, image_size: Size,
                        input_size: Size | None = None, limits: Limits | None = None) -> TaskRequest[list[Outline]]:
        """Ask for the outlines of the objects ``phrase`` refers to: ``[{"polygon": [[x, y], ...]}, ...]``, 3 to
        ``max_vertices`` vertices each, at most ``max_masks`` objects.

        Returns:
            The request; its ``parse`` gives one [`Outline`][docvlm.models.profiles.Outline] per object, in pixels.
        """
        output_type = _polygon_list_type(self, input_size, max_masks, max_vertices)
        prompt = (
            f'Segment "{phrase}" in the image: outline each separate object it refers to (at most {max_masks}) as '
            f'a polygon of 3 to {max_vertices} vertices, {{"polygon": [[x, y], [x, y], [x, y], ...]}}, '
            f"and answer with a JSON list of these objects. {self.point_prompt_hint(input_size=input_size)} "
            "If it does not appear in the image, answer [] and do not guess."
        )

        def parse(items: Any) -> list[Outline]:
            out = []
            for it in items:
                pts = [self.to_pixel_point(v, image_size=image_size, input_size=input_size).xy for v in it.polygon]
                out.append(Outline([Polygon(points=pts, space=Space.PIXEL, image_size=image_size)], "polygon"))
            return out

        return TaskRequest(prompt, output_type, parse)


# ------------------------------------------------------------------------------------------------
# output types of the JSON dialect (built once per profile, input size, labels and sizes)
# ------------------------------------------------------------------------------------------------
def _coordinates(profile: FamilyProfile, input_size: Size | None) -> tuple[Any, Any]:
    return (
        profile.coordinate_type(input_size=input_size, axis="x"),
        profile.coordinate_type(input_size=input_size, axis="y"),
    )


@functools.lru_cache(maxsize=256)
def _box_list_type(profile: FamilyProfile, input_size: Size | None, labels: tuple[str, ...], max_items: int) -> Any:
    """``[{"<box_key>": [x0, y0, x1, y1], "label": <one of labels>}, ...]``, the box first as Qwen2.5-VL writes it."""
    cx, cy = _coordinates(profile, input_size)
    fields: dict[str, Any] = {
        profile.box_key: (tuple.__class_getitem__((cx, cy, cx, cy)), ...),
        "label": (Literal.__getitem__(labels), ...),
    }
    item = create_model("Box", __config__=_STRICT, **fields)
    return _bounded_list(item, max_items)


@functools.lru_cache(maxsize=256)
def _point_list_type(profile: FamilyProfile, input_size: Size | None, max_items: int) -> Any:
    """``[{"<point_key>": [x, y]}, ...]``."""
    cx, cy = _coordinates(profile, input_size)
    fields: dict[str, Any] = {profile.point_key: (tuple.__class_getitem__((cx, cy)), ...)}
    item = create_model("PointAnswer", __config__=_STRICT, **fields)
    return _bounded_list(item, max_items)


@functools.lru_cache(maxsize=256)
def _polygon_list_type(profile: FamilyProfile, input_size: Size | None, max_items: int, max_vertices: int) -> Any:
    """``[{"polygon": [[x, y], [x, y], [x, y], ...]}, ...]``, 3 to ``max_vertices`` vertices each."""
    cx, cy = _coordinates(profile, input_size)
    vertex = tuple.__class_getitem__((cx, cy))
    outline: Any = Annotated[list.__class_getitem__(vertex), Field(min_length=3, max_length=max_vertices)]
    fields: dict[str, Any] = {"polygon": (outline, ...)}
    item = create_model("PolygonAnswer", __config__=_STRICT, **fields)
    return _bounded_list(item, max_items)
