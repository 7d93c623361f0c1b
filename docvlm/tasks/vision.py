"""Vision tasks: find things on a page with a vision-language model, answers in page space.

[`detect`][docvlm.tasks.vision.detect] (labelled boxes), [`ground`][docvlm.tasks.vision.ground] (boxes of a phrase), [`point`][docvlm.tasks.vision.point] (points of a phrase) and
[`segment`][docvlm.tasks.vision.segment] (masks of a phrase) all work the same way:

1. the page (or a ``region`` of it, to zoom in) is rendered as the model's view (`view`);
2. the model's family profile (`Model.profile`) builds the request: the prompt and an output type sized to the
   view, that only allows well-formed answers and always allows an empty one
   ([`box_request`][docvlm.models.profiles.FamilyProfile.box_request],
   [`point_request`][docvlm.models.profiles.FamilyProfile.point_request],
   [`outline_request`][docvlm.models.profiles.FamilyProfile.outline_request]):

   - JSON families (generic, Qwen2/2.5/3-VL, Idefics3 / SmolVLM, LLaVA) get a JSON list type built for the
     call: boxes under the family's key (``"bbox_2d"`` for Qwen2.5/3-VL, else ``"bbox"``), coordinates
     bounded by the family's convention (0..1000, 0..1, or pixels of Qwen2.5-VL's resized input), labels
     restricted to the ones asked for, at most ``max_boxes`` items. The prompt says how to write a box
     ([`box_prompt_hint`][docvlm.models.profiles.FamilyProfile.box_prompt_hint]) and to answer ``[]`` when there is none;
   - loc-token families get their native task prompt (PaliGemma ``detect`` / ``segment``, Florence-2
     ``<CAPTION_TO_PHRASE_GROUNDING>`` / ``<REFERRING_EXPRESSION_SEGMENTATION>``) and a
     [`Regex`][docvlm.decoding.Regex] of their native output, with the label restricted to what was asked;
     the empty string is their "nothing found";
3. the same request parses the answer into pixels of the view, and the task maps them to page space with the
   view's [`Frame`][docvlm.types.geometry.Frame], so rotation, crop boxes and zoom regions are accounted for exactly.

Text-only models cannot look at a page: [`ground`][docvlm.tasks.vision.ground] falls back to the text layer for them
([`docvlm.tasks.ask.ground_text`][docvlm.tasks.ask.ground_text]); the other tasks raise [`UsageError`][docvlm.errors.UsageError].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from docvlm.errors import UsageError
from docvlm.models.profiles import FamilyProfile
from docvlm.tasks._page import PageInput, as_page, check_region, input_size_of, view
from docvlm.tasks.snap import snap_to_words
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import BoundingBox, Point, Size, Space
from docvlm.types.image import PageImage
from docvlm.types.mask import Mask

if TYPE_CHECKING:
    from docvlm.documents.base import Page
    from docvlm.models.base import Model

__all__ = ["detect", "ground", "point", "segment"]

#: Most vertices of one polygon a JSON-family model may write in [`segment`][docvlm.tasks.vision.segment].
MAX_POLYGON_VERTICES = 32


# ------------------------------------------------------------------------------------------------
# shared plumbing: the page's view, the profile's request, and the answer back in page space
# ------------------------------------------------------------------------------------------------
def _require_vision(model: Model, task: str, page: Page) -> None:
    if not model.supports_images:
        raise UsageError(
            f"{task} looks at the page image, and {model.spec or type(model).__name__} is a text-only model",
            source=page.document.source, page=page.index,
            hint="load a vision-language model (e.g. 'transformers:<folder of a VLM>'); to find text on a page "
            "with a text-only model use ground(), which reads the text layer",
        )


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")


def _clean_phrases(values: Sequence[str], what: str, profile: FamilyProfile) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise UsageError(f"every {what} must be non-empty text, got {v!r}")
        text = " ".join(v.split())
        profile.check_phrase(text, what)
        if text not in out:
            out.append(text)
    if not out:
        raise UsageError(f"give at least one {what}")
    return tuple(out)


def _input_size(model: Model, image: PageImage) -> Size | None:
    """The processor's input size, for families that count pixels of the resized input."""
    return input_size_of(model, image) if model.profile.needs_input_size else None


def _look(page: Page, region: BoundingBox | None, dpi: float | None) -> tuple[PageImage, BoundingBox]:
    """The model's view of the page (or region), and the part of the page it stands for, in page space."""
    bounds = check_region(page, region) or page.bbox
    return view(page, bounds if region is not None else None, dpi=dpi), bounds


def _to_page(box: BoundingBox, image: PageImage, bounds: BoundingBox) -> BoundingBox:
    """A pixel box of ``image`` in page space, clipped to the page (or region) the image shows.

    A rendering is a whole number of pixels, so its last row and column may reach a fraction of a pixel past
    the page or region; a box touching the image's edge stays inside.
    """
    return box.to(Space.PAGE, image.frame).clip(bounds)


def _clamp_xy(xy: tuple[float, float], bounds: BoundingBox) -> tuple[float, float]:
    return (min(max(xy[0], bounds.x0), bounds.x1), min(max(xy[1], bounds.y0), bounds.y1))


def _clamp(pt: Point, bounds: BoundingBox) -> Point:
    x, y = _clamp_xy(pt.xy, bounds)
    return pt.model_copy(update={"x": x, "y": y})


def _boxes(model: Model, image: PageImage, bounds: BoundingBox, phrases: tuple[str, ...], *, max_boxes: int,
           labelled: bool) -> list[tuple[str, BoundingBox]]:
    """(label, page-space box) for ``phrases`` (labels of [`detect`][docvlm.tasks.vision.detect], or the one phrase of [`ground`][docvlm.tasks.vision.ground])."""
    request = model.profile.box_request(phrases, labelled=labelled, max_boxes=max_boxes, image_size=image.size,
                                        input_size=_input_size(model, image), limits=model.limits)
    found = request.parse(model.generate([image, request.prompt], request.output_type))
    return [(str(label), _to_page(box, image, bounds)) for label, box in found]


def _snap_all(page: Page, boxes: list[tuple[str, BoundingBox]]) -> list[tuple[str, BoundingBox]]:
    words = page.words()
    if not words:
        return boxes
    return [(label, snap_to_words(box, words)) for label, box in boxes]


def _unique(boxes: list[tuple[str, BoundingBox]]) -> list[tuple[str, BoundingBox]]:
    seen: set[tuple[str, tuple[float, float, float, float]]] = set()
    out = []
    for label, box in boxes:
        key = (label, box.xyxy)
        if key not in seen:
            seen.add(key)
            out.append((label, box))
    return out


# ------------------------------------------------------------------------------------------------
# public tasks
# ------------------------------------------------------------------------------------------------
def detect(
    model: Model,
    page: PageInput,
    labels: Sequence[str],
    *,
    region: BoundingBox | None = None,
    dpi: float | None = None,
    snap: bool = False,
    max_boxes: int = 32,
) -> Detections:
    """Find every instance of some labels (``"logo"``, ``"signature"``, ``"table"``) on a page.

    The model sees the page (or ``region``) and answers in its family's dialect under a constraint that
    only allows the given labels and at most ``max_boxes`` boxes (see the module docstring for the
    prompts). Vision-language models give no confidence, so every ``score`` is ``None``.

    Args:
        model: a vision-language model.
        page: a [`Page`][docvlm.documents.base.Page], a one-page document, a PIL image, or a path / bytes.
        labels: the classes to look for; duplicates are dropped.
        region: a page-space box to zoom into; only it is shown to the model, at a higher resolution.
        dpi: the resolution of the model's view (default: as high as the view's pixel budget allows).
        snap: tighten each box to the text-layer words it covers ([`snap_to_words`][docvlm.tasks.snap.snap_to_words]);
            for text labels only.
        max_boxes: the most boxes the model may answer.

    Returns:
        [`Detections`][docvlm.types.detections.Detections] with boxes in page space, in the model's order.

    Raises:
        UsageError: a text-only model, no labels, or a region outside the page.
    """
    p = as_page(page)
    _require_vision(model, "detect", p)
    _check_count("max_boxes", max_boxes)
    names = _clean_phrases(labels, "label", model.profile)
    image, bounds = _look(p, region, dpi)
    boxes = _boxes(model, image, bounds, names, max_boxes=max_boxes, labelled=True)
    if snap:
        boxes = _snap_all(p, boxes)
    return Detections(detections=[Detection(label=label, box=box) for label, box in boxes])


def ground(
    model: Model,
    page: PageInput,
    phrase: str,
    *,
    region: BoundingBox | None = None,
    dpi: float | None = None,
    snap: bool = True,
    max_boxes: int = 8,
) -> list[BoundingBox]:
    """Boxes of what a phrase refers to (``"the invoice total"``, ``"145.78"``), in page space.

    A phrase that is not on the page gives ``[]``: the constraint always allows an empty answer and the
    prompt asks for it, so the model is never forced to invent a box.

    With ``snap`` (the default) each box is tightened to the text-layer words it mostly covers
    ([`snap_to_words`][docvlm.tasks.snap.snap_to_words]), which turns a model's rough box around text into the exact
    glyph box; pages without words are left as the model answered. Pass ``snap=False`` for things that are
    not text (a logo, a stamp): snapping would shrink such a box onto words inside it.

    A text-only model cannot see the page: it is asked about the text layer instead
    ([`docvlm.tasks.ask.ground_text`][docvlm.tasks.ask.ground_text]), which gives boxes exact to the glyph.

    Args:
        model: a vision-language model (or a text-only one, see above).
        page: a [`Page`][docvlm.documents.base.Page], a one-page document, a PIL image, or a path / bytes.
        phrase: what to find.
        region: a page-space box to zoom into; only it is shown to the model, at a higher resolution.
        dpi: the resolution of the model's view (default: as high as the view's pixel budget allows).
        snap: tighten boxes to the text layer.
        max_boxes: the most boxes the model may answer.

    Returns:
        Page-space boxes in the model's order, duplicates (after snapping) removed.

    Raises:
        UsageError: an empty phrase or a region outside the page.
    """
    p = as_page(page)
    _check_count("max_boxes", max_boxes)
    if not model.supports_images:
        return _ground_text_layer(model, p, phrase, region=region, max_boxes=max_boxes)
    (text,) = _clean_phrases([phrase], "phrase", model.profile)
    image, bounds = _look(p, region, dpi)
    boxes = _boxes(model, image, bounds, (text,), max_boxes=max_boxes, labelled=False)
    if snap:
        boxes = _snap_all(p, boxes)
    return [box for _, box in _unique(boxes)]


def _ground_text_layer(model: Model, page: Page, phrase: str, *, region: BoundingBox | None,
                       max_boxes: int) -> list[BoundingBox]:
    from docvlm.tasks.ask import ground_text

    return ground_text(model, page, phrase, region=region, max_boxes=max_boxes)


def point(
    model: Model,
    page: PageInput,
    phrase: str,
    *,
    region: BoundingBox | None = None,
    dpi: float | None = None,
    max_points: int = 8,
) -> list[Point]:
    """Points on what a phrase refers to (``"the signature line"``), in page space, labelled with the phrase.

    JSON families answer ``[{"point": [x, y]}, ...]`` (``"point_2d"`` for Qwen2.5/3-VL) in their box
    convention. PaliGemma and Florence-2 have no point convention: they ground the phrase and each box's
    centre is the point.

    Args:
        model: a vision-language model.
        page: a [`Page`][docvlm.documents.base.Page], a one-page document, a PIL image, or a path / bytes.
        phrase: what to point at.
        region: a page-space box to zoom into.
        dpi: the resolution of the model's view.
        max_points: the most points the model may answer.

    Returns:
        Page-space points in the model's order; ``[]`` when the phrase is not on the page.

    Raises:
        UsageError: a text-only model, an empty phrase or a region outside the page.
    """
    p = as_page(page)
    _require_vision(model, "point", p)
    _check_count("max_points", max_points)
    (text,) = _clean_phrases([phrase], "phrase", model.profile)
    image, bounds = _look(p, region, dpi)
    request = model.profile.point_request(text, max_points=max_points, image_size=image.size,
                                          input_size=_input_size(model, image), limits=model.limits)
    found = request.parse(model.generate([image, request.prompt], request.output_type))
    return [_clamp(pt.to(Space.PAGE, image.frame), bounds) for pt in found]


def segment(
    model: Model,
    page: PageInput,
    phrase: str,
    *,
    region: BoundingBox | None = None,
    dpi: float | None = None,
    max_masks: int = 4,
) -> Detections:
    """Masks of what a phrase refers to (``"the company logo"``), one [`Detection`][docvlm.types.detections.Detection] per object.

    Each detection carries:

    - ``box``: the object's box in **page space**;
    - ``mask``: a [`Mask`][docvlm.types.mask.Mask] over the **image the model saw** (the page or ``region``
      rendering), at that image's resolution, so nothing the model said is lost to resampling;
    - ``data["frame"]``: that image's [`Frame`][docvlm.types.geometry.Frame], which relates the mask's pixels to page
      space (``det.box.to("pixel", det.data["frame"])`` lands on the mask);
    - ``data["polygons"]``: the outline(s) in page space, to draw the mask again at any resolution:
      ``Mask.from_polygons([p.to("pixel", f) for p in polygons], f.image_size.height, f.image_size.width)``
      for another rendering's frame ``f``;
    - ``data["mask_from"]``: ``"polygon"``, or ``"box"`` when the mask is only the object's rectangle.

    JSON families outline each object as ``{"polygon": [[x, y], ...]}`` (3 to 32 vertices, in their point
    convention); Florence-2 answers ``<REFERRING_EXPRESSION_SEGMENTATION>`` with loc-token polygons (one
    object, possibly in parts). PaliGemma's ``segment`` answer encodes each mask as 16 ``<segNNN>`` codes of
    a VQ-VAE whose decoder docvlm does not ship: its masks are the object's box filled in
    (``mask_from="box"``).

    Args:
        model: a vision-language model.
        page: a [`Page`][docvlm.documents.base.Page], a one-page document, a PIL image, or a path / bytes.
        phrase: what to segment.
        region: a page-space box to zoom into (the masks are then over the region's rendering).
        dpi: the resolution of the model's view.
        max_masks: the most objects the model may answer.

    Returns:
        [`Detections`][docvlm.types.detections.Detections] labelled with the phrase; empty when it is not on the page.

    Raises:
        UsageError: a text-only model, an empty phrase or a region outside the page.
    """
    p = as_page(page)
    _require_vision(model, "segment", p)
    _check_count("max_masks", max_masks)
    (text,) = _clean_phrases([phrase], "phrase", model.profile)
    image, bounds = _look(p, region, dpi)
    request = model.profile.outline_request(text, max_masks=max_masks, max_vertices=MAX_POLYGON_VERTICES,
                                            image_size=image.size, input_size=_input_size(model, image),
                                            limits=model.limits)
    outlines = request.parse(model.generate([image, request.prompt], request.output_type))
    detections = []
    height, width = image.height, image.width
    for polygons, source in outlines:
        page_polygons = [
            poly.model_copy(update={"points": [_clamp_xy(xy, bounds) for xy in poly.points]})
            for poly in (poly.to(Space.PAGE, image.frame) for poly in polygons)
        ]
        box = BoundingBox.enclosing(pt for poly in page_polygons for pt in poly.points)
        detections.append(
            Detection(
                label=text,
                box=box,
                mask=Mask.from_polygons(polygons, height, width),
                data={"frame": image.frame, "polygons": page_polygons, "mask_from": source},
            )
        )
    return Detections(detections=detections)
