"""Family profiles: how each vision-language model family speaks, mapped onto docvlm's geometry.

A [`FamilyProfile`][docvlm.models.profiles.FamilyProfile] holds a family's *dialect*: how its prompt is built (chat template or a raw
task prompt), which task tokens it knows, and above all its **box convention**: the numbers a model
writes for a box and what they mean. Tasks never see these conventions; they ask the model's profile
to turn raw output into [`BoundingBox`][docvlm.types.geometry.BoundingBox] / [`Point`][docvlm.types.geometry.Point] objects in the
pixel space of the *original* image (``space="pixel"``, ``image_size`` set)::

    profile = model.profile                     # profile_for(config.model_type), e.g. "qwen2_5_vl"
    size = Size(width=image.width, height=image.height)
    for label, box in profile.parse_boxes(text, image_size=size, input_size=model.input_image_size(image)):
        ...

The conventions (see [`BoxConvention`][docvlm.models.profiles.BoxConvention]), each with the source it was checked against:

========================  ==========================================================================
``qwen2_vl``              integers 0..1000 of the image, ``(x0,y0),(x1,y1)`` between
                          ``<|box_start|>`` / ``<|box_end|>``, the label in ``<|object_ref_start|>``
                          ... ``<|object_ref_end|>`` (Qwen2-VL grounding data format, QwenLM and ms-swift issues).
``qwen2_5_vl``            absolute pixels of the processor-resized input (``smart_resize`` to
                          multiples of 28, transformers ``Qwen2VLImageProcessor``), JSON objects
                          ``{"bbox_2d": [...], "label": ...}`` / ``{"point_2d": [x, y]}``, often in a
                          fenced code block (Qwen2.5-VL spatial-understanding cookbook).
``qwen3_vl``              JSON like Qwen2.5-VL but integers 0..1000 relative to the image
                          (Qwen3-VL release notes: "relative coordinates ranging from 0 to 1000").
``idefics3``, ``smolvlm`` floats 0..1 of the image. A prompt convention only: these models were not
                          trained to ground (``supports_grounding=False``).
``llava``, ``llava_next`` floats 0..1 with 2 decimals, ``[x0, y0, x1, y1]`` (LLaVA-1.5 RefCOCO / VG
                          instruction data; note LLaVA's own training code normalized to the image
                          padded to a square, the HF processors crop or tile instead).
``paligemma``             ``<locNNNN>`` tokens, 4 per box in ``y0 x0 y1 x1`` order, bin ``round(v * 1023)``
                          of the image (big_vision ``pp/proj/paligemma/segmentation.py`` encodes with
                          ``round(bbox * 1023)`` and its evaluator decodes ``/ 1023``), then the label;
                          entries separated by `` ; ``. Masks are 16 ``<segNNN>`` codes (0..127) of a
                          VQ-VAE after the box (``transformers`` ``processing_paligemma.EXTRA_TOKENS``).
``florence2``             task tokens (``<OD>``, ``<CAPTION_TO_PHRASE_GROUNDING>``, ...), the label
                          *before* its ``<loc_N>`` tokens, N in 0..999 a bin of width ``size / 1000``
                          read at its centre ``(N + 0.5) * size / 1000`` (transformers
                          ``Florence2PostProcessor.quantize`` / ``dequantize``); quads for
                          ``<OCR_WITH_REGION>`` (8 locs), polygons as loc pairs split by ``<sep>``.
========================  ==========================================================================

Parsers are tolerant by design: markdown fences, JSON lists / objects with ``bbox_2d`` / ``bbox`` /
``box`` keys, bare ``[x0, y0, x1, y1]`` lists, trailing garbage and output cut off mid-box all parse
to the complete boxes; garbage parses to ``[]``. They never raise on model text. Coordinates outside
the image are clipped to it and swapped corners are put in order.

This module is pure Python (pydantic only): importing it loads neither torch nor transformers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import Field

from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox, Point, Polygon, Quad, Size, Space

__all__ = [
    "FLORENCE2",
    "GENERIC",
    "IDEFICS3",
    "LLAVA",
    "PALIGEMMA",
    "PROFILES",
    "QWEN2_5_VL",
    "QWEN2_VL",
    "QWEN3_VL",
    "SMOLVLM",
    "BoxConvention",
    "FamilyProfile",
    "Florence2Profile",
    "LabeledBox",
    "LabeledPoint",
    "LabeledPolygon",
    "LabeledQuad",
    "PaliGemmaProfile",
    "Qwen2VLProfile",
    "Qwen25VLProfile",
    "Segment",
    "profile_for",
    "smart_resize",
]


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


def smart_resize(size: Size, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280) -> Size:
    """The size Qwen2-VL's image processor resizes an image of ``size`` to.

    A re-implementation of ``transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize``
    (defaults of ``Qwen2VLImageProcessor``, which Qwen2.5-VL uses): both sides multiples of ``factor``,
    the area within ``[min_pixels, max_pixels]``, the aspect ratio kept as closely as possible.

    Args:
        size: the original image size.
        factor: patch size times merge size (28 for Qwen2/2.5-VL).
        min_pixels: the smallest area.
        max_pixels: the largest area.

    Returns:
        The resized size.

    Raises:
        UsageError: an aspect ratio above 200, which the processor rejects too.
    """
    height, width = size.height, size.width
    if max(height, width) / min(height, width) > 200:
        raise UsageError(f"Qwen-VL processors reject an aspect ratio above 200, got {size.width:g}x{size.height:g}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return Size(width=w_bar, height=h_bar)


# -------------------------------------------------------------------------------------------------
# tolerant scanning of free-form output (JSON, bare lists, Qwen2-VL box tokens, Molmo point tags)
# -------------------------------------------------------------------------------------------------
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_FENCE_RE = re.compile(r"```[A-Za-z0-9_+-]*")
_START_RE = re.compile(r"[\[{(]|<\|object_ref_start\|>|<points?(?=[\s/>])")
_REF_RE = re.compile(r"<\|object_ref_start\|>([^<]*)(?:<\|object_ref_end\|>)?")
_PAREN_BOX_RE = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_POINT_TAG_RE = re.compile(r"<(points?)(\s[^<>]*?)?(/?)>")
_ATTR_RE = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_NUMS_LIST_RE = re.compile(rf"^[\[(]\s*({_NUM})((?:\s*,\s*{_NUM})*)\s*[\])]$")
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")

_BOX_KEYS = ("bbox_2d", "bbox", "box", "bounding_box", "boundingbox")
_POINT_KEYS = ("point_2d", "point", "coordinate", "coordinates", "position")
_LABEL_KEYS = ("label", "text", "name", "category", "class", "object", "description", "phrase")
_LABEL_ALT = "|".join(_LABEL_KEYS)
_CORNER_KEYS = (
    ("x0", "y0", "x1", "y1"),
    ("x1", "y1", "x2", "y2"),
    ("xmin", "ymin", "xmax", "ymax"),
    ("x_min", "y_min", "x_max", "y_max"),
    ("left", "top", "right", "bottom"),
)

_Want = Literal["box", "point"]


class _Raw(NamedTuple):
    label: str | None
    values: tuple[float, ...]
    percent: bool = False  # Molmo-style 0..100 of the image, whatever the family's convention


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _numbers(values: Sequence[Any], n: int) -> tuple[float, ...] | None:
    if len(values) != n:
        return None
    out = tuple(_number(v) for v in values)
    if any(v is None for v in out):
        return None
    return tuple(v for v in out if v is not None)


def _coords(value: Any, want: _Want) -> tuple[float, ...] | None:
    """The numbers of one box (4) or point (2) written as a list, a pair of pairs or a dict."""
    if isinstance(value, (list, tuple)):
        if want == "box":
            if len(value) == 2 and all(isinstance(p, (list, tuple)) for p in value):
                a, b = (_numbers(p, 2) for p in value)
                return a + b if a is not None and b is not None else None
            return _numbers(value, 4)
        return _numbers(value, 2)
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        if want == "point":
            return _numbers([lowered.get("x"), lowered.get("y")], 2) if "x" in lowered and "y" in lowered else None
        for keys in _CORNER_KEYS:
            if all(k in lowered for k in keys):
                return _numbers([lowered[k] for k in keys], 4)
    return None


def _text_label(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _walk(value: Any, want: _Want, label: str | None, out: list[_Raw]) -> None:
    """Collect boxes / points from a decoded JSON value, in document order."""
    coords = _coords(value, want)
    if coords is not None:
        out.append(_Raw(label, coords))
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, want, label, out)
        return
    if not isinstance(value, dict):
        return
    lowered = {str(k).lower(): k for k in value}
    own_label = label
    for key in _LABEL_KEYS:
        if key in lowered and (text := _text_label(value[lowered[key]])) is not None:
            own_label = text
            break
    for key in _BOX_KEYS if want == "box" else _POINT_KEYS:
        if key in lowered:
            _walk(value[lowered[key]], want, own_label, out)
            return
    for key, item in value.items():
        if str(key).lower() in _LABEL_KEYS:
            continue
        # {"cat": [x0, y0, x1, y1]} or {"cat": [[...], [...]]}: the key is the label
        direct = _coords(item, want) is not None or (
            isinstance(item, list) and bool(item) and all(_coords(i, want) is not None for i in item)
        )
        _walk(item, want, (str(key).strip() or None) if direct else own_label, out)


def _closing_brackets(text: str) -> dict[int, tuple[int, int]]:
    """For each ``[`` / ``{`` that is closed: the index after its closing bracket and its nesting depth.

    One string-aware pass. Brackets are matched by depth, whatever their kind; openers never closed
    (output cut off) are absent. The depth counts the levels inside and including the bracket.
    """
    closes: dict[int, tuple[int, int]] = {}
    stack: list[list[int]] = []  # [index of the opener, deepest nesting inside it so far]
    in_string = False
    escaped = False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            stack.append([i, 1])
        elif c in "]}" and stack:
            start, depth = stack.pop()
            closes[start] = (i + 1, depth)
            if stack:
                stack[-1][1] = max(stack[-1][1], depth + 1)
    return closes


_FAIL = object()


def _lenient_json(span: str) -> Any:
    """Decode almost-JSON: trailing commas, single quotes, Python literals; ``_FAIL`` if still invalid."""
    fixed = _TRAILING_COMMA_RE.sub(r"\1", span)
    if '"' not in fixed:
        fixed = fixed.replace("'", '"')
    fixed = re.sub(r"\bNone\b", "null", re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", fixed)))
    try:
        return json.loads(fixed)
    except (ValueError, RecursionError):
        pass
    m = _NUMS_LIST_RE.match(span.strip())
    if m:  # e.g. [.1, .2, .3, .4] or (1, 2, 3, 4)
        return [float(v) for v in re.findall(_NUM, span)]
    return _FAIL


def _salvage_record(span: str, want: _Want) -> list[_Raw]:
    """A box / point record that is not JSON at all (``{bbox_2d: [1, 2, 3, 4], label: cat}``)."""
    keys = "|".join(_BOX_KEYS if want == "box" else _POINT_KEYS)
    n = 4 if want == "box" else 2
    nums = r"\s*,\s*".join([f"({_NUM})"] * n)
    m = re.search(rf"""["']?(?:{keys})["']?\s*[:=]\s*[\[(]\s*{nums}\s*[\])]""", span, re.I)
    if not m:
        return []
    values = _numbers(m.groups(), n)
    if values is None:
        return []
    lab = re.search(rf"""["']?(?:{_LABEL_ALT})["']?\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|([^,}}]+))""", span, re.I)
    label = next((g.strip() for g in lab.groups() if g is not None), None) if lab else None
    return [_Raw(label or None, values)]


_RECORD_KEY_RE = {
    want: re.compile(rf"""["']?(?:{"|".join(keys)})["']?\s*[:=]""", re.I)
    for want, keys in (("box", _BOX_KEYS), ("point", _POINT_KEYS))
}
_MAX_DEPTH = 64


def _opens_record(text: str, start: int, want: _Want) -> bool:
    """Whether an unclosed ``{`` at ``start`` is itself a box / point record (so it was cut off)."""
    end = text.find("{", start + 1)
    return _RECORD_KEY_RE[want].search(text, start + 1, end if end >= 0 else len(text)) is not None


def _point_tag(match: re.Match[str], text: str) -> tuple[list[_Raw], int]:
    """Molmo-style ``<point x="12.5" y="40" alt="cat">cat</point>`` / ``<points x1=.. y1=.. ...>`` (0..100)."""
    tag, attrs_text, self_closing = match.group(1), match.group(2) or "", match.group(3)
    attrs = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR_RE.finditer(attrs_text)}
    end = match.end()
    inner: str | None = None
    if not self_closing:
        close = re.compile(rf"([^<]*)</{tag}\s*>").match(text, end)
        if close is not None:
            inner = close.group(1)
            end = close.end()
    label = (inner.strip() if inner else None) or (attrs.get("alt") or "").strip() or None
    pairs: list[tuple[str | None, str | None]] = []
    if tag == "point":
        pairs.append((attrs.get("x"), attrs.get("y")))
    else:
        i = 1
        while f"x{i}" in attrs and f"y{i}" in attrs:
            pairs.append((attrs[f"x{i}"], attrs[f"y{i}"]))
            i += 1
    out = []
    for x, y in pairs:
        values = _numbers([x, y], 2)
        if values is not None:
            out.append(_Raw(label, values, percent=True))
    return out, end


def _scan(text: str, want: _Want) -> list[_Raw]:
    """Every complete box (4 numbers) or point (2 numbers) in free-form model output, in order.

    Reads JSON (also inside code fences, after prose, or truncated: complete records before the cut
    count, the cut-off one does not), bare lists, Qwen2-VL ``<|object_ref_start|>label<|object_ref_end|>
    <|box_start|>(x0,y0),(x1,y1)<|box_end|>`` and, for points, Molmo ``<point>`` tags.
    """
    if not isinstance(text, str) or not text:
        return []
    text = _FENCE_RE.sub(" ", text)
    decoder = json.JSONDecoder()
    closes: dict[int, tuple[int, int]] | None = None  # bracket matches, computed at the first bracket
    out: list[_Raw] = []
    pending: str | None = None  # a Qwen2-VL object_ref label that labels the boxes after it
    pos = 0
    while True:
        m = _START_RE.search(text, pos)
        if m is None:
            break
        i, token = m.start(), m.group()
        if token == "<|object_ref_start|>":
            ref = _REF_RE.match(text, i)
            assert ref is not None  # the pattern matches whatever follows the start tag
            pending = ref.group(1).strip() or None
            pos = max(ref.end(), i + 1)
            continue
        if token.startswith("<point"):
            tag = _POINT_TAG_RE.match(text, i)
            if tag is None:
                pos = i + 1
                continue
            if want == "point":
                raws, pos = _point_tag(tag, text)
                out.extend(raws)
            else:
                pos = tag.end()
            continue
        if token == "(":
            pair = _PAREN_BOX_RE.match(text, i) if want == "box" else None
            if pair is not None:
                values = _numbers(pair.groups(), 4)
                if values is not None:
                    out.append(_Raw(pending, values))
                pos = pair.end()
            else:
                pos = i + 1
            continue
        # "{" or "["
        if closes is None:
            closes = _closing_brackets(text)
        match = closes.get(i)
        if match is None:  # never closed: the output was cut off inside this value
            if token == "{" and _opens_record(text, i, want):
                break  # a cut-off record: nothing complete follows
            pos = i + 1  # a cut-off wrapper: its complete children still count
            continue
        close, depth = match
        if depth > _MAX_DEPTH:  # no box answer nests this deep: look inside instead of decoding it all
            pos = i + 1
            continue
        try:
            value, end = decoder.raw_decode(text, i)
        except RecursionError:  # absurdly deep nesting: look inside instead
            pos = i + 1
            continue
        except ValueError:
            value = _lenient_json(text[i:close])
            if value is _FAIL:
                salvaged = _salvage_record(text[i:close], want) if token == "{" else []
                if salvaged:
                    out.extend(r._replace(label=r.label or pending) for r in salvaged)
                    pos = close
                else:
                    pos = i + 1
                continue
            end = close
        found: list[_Raw] = []
        try:
            _walk(value, want, pending, found)
        except RecursionError:  # absurdly nested JSON: nothing usable in it
            found = []
        out.extend(found)
        pos = end
    return out


def _clip(v: float, hi: float) -> float:
    return min(max(v, 0.0), hi)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


# -------------------------------------------------------------------------------------------------
# profiles
# -------------------------------------------------------------------------------------------------
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
        return _clip(px, image_size.width), _clip(py, image_size.height)

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
        for raw in _scan(text, "box"):
            out.append(LabeledBox(raw.label, self.to_pixel_box(raw.values, image_size=image_size, input_size=input_size)))
        return out

    def parse_points(self, text: str, *, image_size: Size, input_size: Size | None = None) -> list[LabeledPoint]:
        """Every complete (label, point) in the output: ``point_2d`` / ``point`` JSON, bare ``[x, y]``, Molmo tags.

        Molmo-style ``<point x="61.5" y="40.6" alt="cat">cat</point>`` (and ``<points x1=.. y1=..>``)
        are read as percentages of the image whatever the family. Never raises on model text.
        """
        out: list[LabeledPoint] = []
        for raw in _scan(text, "point"):
            if raw.percent:
                x, y = raw.values
                point = Point(
                    x=_clip(x / 100 * image_size.width, image_size.width),
                    y=_clip(y / 100 * image_size.height, image_size.height),
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


@dataclass(frozen=True)
class Qwen2VLProfile(FamilyProfile):
    """Qwen2-VL: ``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x0,y0),(x1,y1)<|box_end|>``, 0..1000."""

    def format_boxes(self, items: Iterable[tuple[str | None, BoundingBox]], *, input_size: Size | None = None) -> str:
        """Qwen2-VL's grounding tokens for each box (see [`FamilyProfile.format_boxes`][docvlm.models.profiles.FamilyProfile.format_boxes])."""
        parts = []
        for label, box in items:
            x0, y0, x1, y1 = (_fmt(v) for v in self.encode_box(box, input_size=input_size))
            ref = f"<|object_ref_start|>{label}<|object_ref_end|>" if label is not None else ""
            parts.append(f"{ref}<|box_start|>({x0},{y0}),({x1},{y1})<|box_end|>")
        return "\n".join(parts)


@dataclass(frozen=True)
class Qwen25VLProfile(FamilyProfile):
    """Qwen2.5-VL: JSON ``bbox_2d`` in absolute pixels of the ``smart_resize``-d input image.

    Attributes:
        resize_factor: both input sides are multiples of this (patch 14 x merge 2).
        min_pixels: the processor's smallest input area (``size["shortest_edge"]``).
        max_pixels: the processor's largest input area (``size["longest_edge"]``).
    """

    resize_factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    def default_input_size(self, image_size: Size) -> Size:
        """[`smart_resize`][docvlm.models.profiles.smart_resize] with the processor defaults; pass ``input_size`` when the processor differs."""
        return smart_resize(image_size, factor=self.resize_factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)


_PG_ENTRY_RE = re.compile(r"((?:<loc\d+>){4})((?:<seg\d+>)*)([^<;]*)")
_PG_LOC_RE = re.compile(r"<loc(\d+)>")
_PG_SEG_RE = re.compile(r"<seg(\d+)>")


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
        for m in _PG_ENTRY_RE.finditer(text):
            locs = [float(v) for v in _PG_LOC_RE.findall(m.group(1))]
            segs = tuple(int(v) for v in _PG_SEG_RE.findall(m.group(2)))
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


_FL_STRIP_RE = re.compile(r"<(?!loc_\d+>|sep>|/?poly>)[^<>]*>")
_FL_RUN_RE = re.compile(r"([^<]*)((?:<loc_\d+>)+)")
_FL_POLY_RUN_RE = re.compile(r"([^<]*)((?:<loc_\d+>|<sep>|<poly>|</poly>)+)")
_FL_LOC_RE = re.compile(r"<loc_(\d+)>")


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
        return _FL_STRIP_RE.sub("", text.replace("<pad>", "")) if isinstance(text, str) else ""

    def _runs(self, text: str, group: int) -> list[tuple[str | None, list[list[float]]]]:
        out = []
        for m in _FL_RUN_RE.finditer(self._clean(text)):
            locs = [float(v) for v in _FL_LOC_RE.findall(m.group(2))]
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
        for m in _FL_POLY_RUN_RE.finditer(self._clean(text)):
            label = m.group(1).strip() or None
            for chunk in re.split(r"<sep>|<poly>|</poly>", m.group(2)):
                locs = [float(v) for v in _FL_LOC_RE.findall(chunk)]
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


# -------------------------------------------------------------------------------------------------
# the registry
# -------------------------------------------------------------------------------------------------
GENERIC = FamilyProfile(
    "generic",
    notes="Unknown families: prompted to write JSON boxes as integers 0..1000 of the image (a common convention).",
)

QWEN2_VL = Qwen2VLProfile(
    "qwen2_vl",
    model_types=("qwen2_vl",),
    box_convention=BoxConvention.REL_1000,
    supports_grounding=True,
    notes="<|object_ref_start|>label<|object_ref_end|><|box_start|>(x0,y0),(x1,y1)<|box_end|>, integers 0..1000.",
)

QWEN2_5_VL = Qwen25VLProfile(
    "qwen2_5_vl",
    model_types=("qwen2_5_vl",),
    box_convention=BoxConvention.INPUT_PIXELS,
    supports_grounding=True,
    box_key="bbox_2d",
    point_key="point_2d",
    json_fence=True,
    notes="JSON bbox_2d / point_2d in absolute pixels of the smart_resize-d input (multiples of 28).",
)

QWEN3_VL = FamilyProfile(
    "qwen3_vl",
    model_types=("qwen3_vl", "qwen3_vl_moe"),
    box_convention=BoxConvention.REL_1000,
    supports_grounding=True,
    box_key="bbox_2d",
    point_key="point_2d",
    json_fence=True,
    notes="JSON bbox_2d / point_2d, integers 0..1000 relative to the image.",
)

IDEFICS3 = FamilyProfile(
    "idefics3",
    model_types=("idefics3",),
    box_convention=BoxConvention.REL_1,
    notes="No grounding training: boxes follow the prompt's 0..1 convention only and are unreliable.",
)

SMOLVLM = FamilyProfile(
    "smolvlm",
    model_types=("smolvlm",),
    box_convention=BoxConvention.REL_1,
    notes="No grounding training (Idefics3 architecture): boxes follow the prompt's 0..1 convention only.",
)

LLAVA = FamilyProfile(
    "llava",
    model_types=("llava", "llava_next"),
    box_convention=BoxConvention.REL_1,
    supports_grounding=True,
    decimals=2,
    notes=(
        "[x0, y0, x1, y1] floats 0..1 with 2 decimals, from LLaVA-1.5's RefCOCO / VG instruction data. "
        "LLaVA's training code normalized to the image padded to a square; the HF processors crop or tile, "
        "so boxes can be offset on non-square images."
    ),
)

PALIGEMMA = PaliGemmaProfile(
    "paligemma",
    model_types=("paligemma",),
    box_convention=BoxConvention.LOC_1024_YX,
    supports_grounding=True,
    uses_chat_template=False,
    image_token="<image>",
    notes="<locNNNN> x4 (y0 x0 y1 x1, round(v * 1023)) then the label, ' ; ' between entries; 16 <segNNN> mask codes.",
)

FLORENCE2 = Florence2Profile(
    "florence2",
    model_types=("florence2",),
    box_convention=BoxConvention.LOC_1000,
    supports_grounding=True,
    uses_chat_template=False,
    notes="Task tokens; label<loc_x0><loc_y0><loc_x1><loc_y1>, bins of size/1000 read at their centre.",
)

PROFILES: dict[str, FamilyProfile] = {
    model_type: profile
    for profile in (QWEN2_VL, QWEN2_5_VL, QWEN3_VL, IDEFICS3, SMOLVLM, LLAVA, PALIGEMMA, FLORENCE2)
    for model_type in profile.model_types
}
"""Profiles by transformers ``config.model_type``."""


def profile_for(model_type: str | None) -> FamilyProfile:
    """The profile of a transformers ``config.model_type`` (``"qwen2_5_vl"``, ``"paligemma"``, ...).

    Args:
        model_type: the model type; case and surrounding whitespace are ignored.

    Returns:
        The family's profile, or `GENERIC` for an unknown or missing model type.
    """
    if not model_type:
        return GENERIC
    return PROFILES.get(model_type.strip().lower(), GENERIC)
