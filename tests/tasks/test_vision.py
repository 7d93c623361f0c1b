"""detect / ground / point / segment driven by fakes that answer in each family's dialect.

The fakes are oracles: they find the :class:`PageImage` in the prompt, move the true page-space box of a
word into that image's pixels through its frame, and write it the way the family would (``encode_box`` /
``format_boxes``). What comes back must land on the word again in page space, whatever the rotation or zoom.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

import docvlm as dv
from docvlm.documents.base import Page, PageImage
from docvlm.models import FunctionInfo, FunctionModel, Message, TestModel
from docvlm.models import profiles as P
from docvlm.models.profiles import FamilyProfile, smart_resize
from docvlm.tasks._page import as_page, view
from docvlm.tasks.snap import snap_to_words
from docvlm.tasks.vision import detect, ground, point, segment
from docvlm.types import BoundingBox, Mask, Point, Polygon, Size, Space, WordList

TOTAL = "145.78"
NUMBER = "INV-2026-0042"
#: a zoom region around the totals block (page space, PDF points)
TOTALS = BoundingBox(x0=350, y0=340, x1=560, y1=420)
#: Qwen2.5-VL's processor with a smaller pixel budget than the profile's default, so that using the
#: default input size instead of the model's own would put boxes in the wrong place
QWEN25_MAX_PIXELS = 28 * 28 * 900


# ------------------------------------------------------------------------------------------------
# fixtures and fakes
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pages() -> dict[int, Page]:
    return {rot: as_page(dv.samples.invoice_pdf(rotation=rot)) for rot in (0, 90)}


def word_box(page: Page, text: str) -> BoundingBox:
    return next(w.box for w in page.words() if w.text == text)


class FamilyModel(FunctionModel):
    """A FunctionModel that speaks like a family: its profile and, for Qwen2.5-VL, its processor's resize."""

    def __init__(self, profile: FamilyProfile, answer: Callable[[PageImage, Size, FunctionInfo], Any], *,
                 supports_images: bool = True) -> None:
        def fn(messages: list[Message], info: FunctionInfo) -> Any:
            (image,) = messages[0].page_images
            assert image is not None
            return answer(image, self.input_image_size(image.image), info)

        super().__init__(fn, supports_images=supports_images)
        self._profile = profile

    @property
    def profile(self) -> FamilyProfile:
        return self._profile

    def input_image_size(self, image: Any) -> Size:
        size = Size(width=image.width, height=image.height)
        if self._profile.box_convention is P.BoxConvention.INPUT_PIXELS:
            return smart_resize(size, max_pixels=QWEN25_MAX_PIXELS)
        return size


def is_json(profile: FamilyProfile) -> bool:
    return profile.native_box_regex() is None


def native_boxes(profile: FamilyProfile, items: list[tuple[str, BoundingBox]], input_size: Size) -> str:
    """What the family writes for these pixel boxes (JSON families: the JSON the constraint allows)."""
    if is_json(profile):
        # the compact JSON of the constrained output (no fence, no Qwen2-VL box tokens)
        return P.FamilyProfile.format_boxes(P.FamilyProfile("plain", box_convention=profile.box_convention,
                                                            box_key=profile.box_key, decimals=profile.decimals),
                                            items, input_size=input_size)
    return profile.format_boxes(items, input_size=input_size)


def oracle(targets: list[tuple[str, BoundingBox]], profile: FamilyProfile, *,
           pad: float = 0.0) -> Callable[[PageImage, Size, FunctionInfo], Any]:
    """Answer with ``targets`` (page space, grown by ``pad`` points) as seen in the prompt's image."""

    def answer(image: PageImage, input_size: Size, info: FunctionInfo) -> Any:
        items = []
        for label, box in targets:
            grown = box.model_copy(update={"x0": box.x0 - pad, "y0": box.y0 - pad, "x1": box.x1 + pad, "y1": box.y1 + pad})
            items.append((label, grown.to(Space.PIXEL, image.frame)))
        return native_boxes(profile, items, input_size)

    return answer


JSON_FAMILIES = [P.GENERIC, P.QWEN2_VL, P.QWEN2_5_VL, P.QWEN3_VL, P.SMOLVLM]
LOC_FAMILIES = [P.PALIGEMMA, P.FLORENCE2]
PRECISE = [*JSON_FAMILIES, *LOC_FAMILIES]  # LLaVA's two decimals are too coarse for a word on a whole page
ids = [p.name for p in PRECISE]


# ------------------------------------------------------------------------------------------------
# ground
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("zoom", [False, True], ids=["page", "region"])
@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("profile", PRECISE, ids=ids)
def test_ground_maps_family_boxes_to_page_space(
    profile: FamilyProfile, rotation: int, zoom: bool, pages: dict[int, Page]
) -> None:
    page = pages[rotation]
    target = word_box(page, TOTAL)
    model = FamilyModel(profile, oracle([(TOTAL, target)], profile))
    region = TOTALS if zoom else None
    (box,) = ground(model, page, TOTAL, region=region, snap=False)
    assert box.space is Space.PAGE
    assert box.iou(target) >= 0.9
    # the model saw the view of the region, in its family's dialect, with an empty answer allowed
    (request,) = model.requests
    (image,) = request.messages[0].page_images
    assert image is not None and image.frame == view(page, region).frame
    prompt = request.messages[0].text
    if is_json(profile):
        assert TOTAL in prompt and "answer []" in prompt and f'"{profile.box_key}"' in prompt
        assert re.fullmatch(request.constraint.regex, "[]")
    else:
        assert prompt == profile.task_prompt("ground" if profile is P.FLORENCE2 else "detect", [TOTAL])
        assert re.fullmatch(request.constraint.regex, "")


def test_qwen25_boxes_are_in_pixels_of_the_models_own_input(pages: dict[int, Page]) -> None:
    page = pages[0]
    target = word_box(page, TOTAL)
    model = FamilyModel(P.QWEN2_5_VL, oracle([(TOTAL, target)], P.QWEN2_5_VL))
    (box,) = ground(model, page, TOTAL, snap=False)
    assert box.iou(target) >= 0.9
    image = view(page)
    seen = model.input_image_size(image.image)
    assert seen != P.QWEN2_5_VL.default_input_size(image.size)  # the test would not notice otherwise
    assert f"The image is {seen.width:g} pixels wide and {seen.height:g} pixels high." in model.requests[0].messages[0].text


def test_llava_two_decimals_need_a_zoom_or_snapping(pages: dict[int, Page]) -> None:
    page = pages[90]
    target = word_box(page, TOTAL)
    model = FamilyModel(P.LLAVA, oracle([(TOTAL, target)], P.LLAVA))
    (coarse,) = ground(model, page, TOTAL, snap=False)
    assert 0.3 < coarse.iou(target) < 0.9  # 0.01 of a page is 8 points: a word is 15 points high
    (zoomed,) = ground(model, page, TOTAL, region=TOTALS, snap=False)
    assert zoomed.iou(target) >= 0.9
    (snapped,) = ground(model, page, TOTAL)
    assert snapped.iou(target) >= 0.99


@pytest.mark.parametrize("profile", [P.GENERIC, P.QWEN2_5_VL, P.PALIGEMMA, P.FLORENCE2], ids=lambda p: p.name)
def test_snapping_makes_a_loose_box_exact(profile: FamilyProfile, pages: dict[int, Page]) -> None:
    page = pages[90]
    target = word_box(page, TOTAL)
    model = FamilyModel(profile, oracle([(TOTAL, target)], profile, pad=4.0))
    (loose,) = ground(model, page, TOTAL, snap=False)
    assert loose.iou(target) < 0.7
    (snapped,) = ground(model, page, TOTAL)
    assert snapped.iou(target) >= 0.99
    assert snapped.xyxy == pytest.approx(target.xyxy)


def test_ground_drops_duplicates_after_snapping(pages: dict[int, Page]) -> None:
    page = pages[0]
    target = word_box(page, TOTAL)
    shifted = target.model_copy(update={"x0": target.x0 + 1, "x1": target.x1 + 1})
    model = FamilyModel(P.GENERIC, oracle([(TOTAL, target), (TOTAL, shifted)], P.GENERIC))
    assert len(ground(model, page, TOTAL, snap=False)) == 2
    assert ground(model, page, TOTAL) == [target]


# ------------------------------------------------------------------------------------------------
# empty answers and errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", [P.GENERIC, P.QWEN2_5_VL, P.LLAVA, *LOC_FAMILIES], ids=lambda p: p.name)
def test_nothing_found_gives_empty_results(profile: FamilyProfile, pages: dict[int, Page]) -> None:
    nothing = "" if not is_json(profile) else "[]"
    model = FamilyModel(profile, lambda image, size, info: nothing)
    page = pages[0]
    assert ground(model, page, "a purple elephant") == []
    assert len(detect(model, page, ["logo", "signature"])) == 0
    assert point(model, page, "a purple elephant") == []
    assert len(segment(model, page, "a purple elephant")) == 0
    for request in model.requests:
        assert re.fullmatch(request.constraint.regex, nothing)


def test_detect_only_allows_the_labels_asked_for(pages: dict[int, Page]) -> None:
    model = FamilyModel(P.GENERIC, lambda image, size, info: '[{"bbox":[1,2,3,4],"label":"cat"}]')
    with pytest.raises(dv.ModelError, match="not a valid"):
        detect(model, pages[0], ["logo"])
    request = model.requests[0]
    assert re.fullmatch(request.constraint.regex, '[{"bbox":[1,2,3,4],"label":"logo"}]')
    assert not re.fullmatch(request.constraint.regex, '[{"bbox":[1,2,3,4],"label":"cat"}]')
    assert not re.fullmatch(request.constraint.regex, '[{"bbox":[1,2,3,1001],"label":"logo"}]')


def test_bad_inputs_raise_usage_errors(pages: dict[int, Page]) -> None:
    page = pages[0]
    model = FamilyModel(P.GENERIC, lambda image, size, info: "[]")
    with pytest.raises(dv.UsageError, match="does not overlap the page"):
        ground(model, page, TOTAL, region=BoundingBox(x0=700, y0=0, x1=800, y1=10))
    with pytest.raises(dv.UsageError, match="page space"):
        detect(model, page, ["logo"], region=BoundingBox(x0=0, y0=0, x1=10, y1=10, space=Space.PIXEL))
    with pytest.raises(dv.UsageError, match="at least one label"):
        detect(model, page, [])
    with pytest.raises(dv.UsageError, match="non-empty"):
        ground(model, page, "   ")
    with pytest.raises(dv.UsageError, match="max_boxes"):
        ground(model, page, TOTAL, max_boxes=0)
    with pytest.raises(dv.UsageError, match="delimiters"):
        detect(FamilyModel(P.PALIGEMMA, lambda image, size, info: ""), page, ["a ; b"])
    with pytest.raises(dv.UsageError, match="one page"):
        ground(model, dv.open(_two_pages()), TOTAL)
    assert model.requests == []  # nothing was asked


def _two_pages() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page()
    doc.new_page()
    data: bytes = doc.tobytes()
    doc.close()
    return data


def test_text_only_models(pages: dict[int, Page], monkeypatch: pytest.MonkeyPatch) -> None:
    page = pages[0]
    model = FunctionModel(lambda messages, info: "[]", supports_images=False)
    for task, arg in ((detect, ["logo"]), (point, TOTAL), (segment, TOTAL)):
        with pytest.raises(dv.UsageError, match="text-only model") as err:
            task(model, page, arg)
        assert err.value.hint is not None and "ground()" in err.value.hint
    # ground reads the text layer instead: the model picks segment ids, boxes are the segments' glyphs
    def pick(messages: list[Any], info: Any) -> dict[str, list[str]]:
        text = messages[-1].text
        segments = [part for ln in text.split("\n") for part in ln.split("   ") if part.startswith("[")]
        ids = [seg.split("] ")[0].lstrip("[") for seg in segments if TOTAL in seg]
        return {"ids": ids}

    text_model = FunctionModel(pick, supports_images=False)
    (box,) = ground(text_model, page, TOTAL)  # printed on the page: found in the words, without the model
    assert box.iou(word_box(page, TOTAL)) > 0.999
    assert ground(text_model, page, TOTAL, region=TOTALS) == [box]
    (box,) = ground(text_model, page, "the total amount 145.78 EUR")  # not printed as such: the model picks segments
    eur = next(w.box for w in page.words() if w.text == "EUR" and abs(w.box.y0 - word_box(page, TOTAL).y0) < 1)
    assert box.iou(eur.union(word_box(page, TOTAL))) > 0.999  # the segment "EUR 145.78", exact to the glyphs
    far = BoundingBox(x0=10, y0=700, x1=200, y1=800)
    assert ground(text_model, page, TOTAL, region=far) == []  # not in the region: nothing, never invented


# ------------------------------------------------------------------------------------------------
# detect
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("profile", [P.GENERIC, P.QWEN2_5_VL, P.QWEN3_VL, *LOC_FAMILIES], ids=lambda p: p.name)
def test_detect_labels(profile: FamilyProfile, rotation: int, pages: dict[int, Page]) -> None:
    page = pages[rotation]
    targets = [(TOTAL, word_box(page, TOTAL)), (NUMBER, word_box(page, NUMBER))]
    model = FamilyModel(profile, oracle(targets, profile))
    dets = detect(model, page, [TOTAL, NUMBER, TOTAL])
    assert dets.labels == [TOTAL, NUMBER]
    assert dets.space is Space.PAGE and dets.scores == [None, None]
    for det, (_, target) in zip(dets, targets, strict=True):
        assert det.box.iou(target) >= 0.9
    snapped = detect(model, page, [TOTAL, NUMBER], snap=True)
    assert [d.box for d in snapped] == [t for _, t in targets]
    prompt = model.requests[0].messages[0].text
    if is_json(profile):
        assert f'"{TOTAL}", "{NUMBER}"' in prompt and "answer []" in prompt
    else:
        assert prompt == profile.task_prompt("ground" if profile is P.FLORENCE2 else "detect", [TOTAL, NUMBER])


def test_detect_in_a_region(pages: dict[int, Page]) -> None:
    page = pages[90]
    target = word_box(page, TOTAL)
    model = FamilyModel(P.QWEN2_5_VL, oracle([(TOTAL, target)], P.QWEN2_5_VL))
    (det,) = detect(model, page, [TOTAL], region=TOTALS)
    assert det.label == TOTAL and det.box.iou(target) >= 0.95


# ------------------------------------------------------------------------------------------------
# point
# ------------------------------------------------------------------------------------------------
def point_oracle(target: BoundingBox, profile: FamilyProfile) -> Callable[[PageImage, Size, FunctionInfo], Any]:
    def answer(image: PageImage, input_size: Size, info: FunctionInfo) -> Any:
        cx, cy = target.to(Space.PIXEL, image.frame).center
        pixel = Point(x=cx, y=cy, space=Space.PIXEL, image_size=image.size)
        return [{profile.point_key: list(profile.encode_point(pixel, input_size=input_size))}]

    return answer


@pytest.mark.parametrize("zoom", [False, True], ids=["page", "region"])
@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("profile", [P.GENERIC, P.QWEN2_5_VL, P.LLAVA, *LOC_FAMILIES], ids=lambda p: p.name)
def test_point(profile: FamilyProfile, rotation: int, zoom: bool, pages: dict[int, Page]) -> None:
    page = pages[rotation]
    target = word_box(page, TOTAL)
    answer = point_oracle(target, profile) if is_json(profile) else oracle([(TOTAL, target)], profile)
    model = FamilyModel(profile, answer)
    (pt,) = point(model, page, TOTAL, region=TOTALS if zoom else None)
    assert pt.space is Space.PAGE and pt.label == TOTAL
    assert pt.within(target)
    cx, cy = target.center
    tolerance = 4.5 if profile is P.LLAVA and not zoom else 1.0  # LLaVA: 0.01 of the page
    assert abs(pt.x - cx) <= tolerance and abs(pt.y - cy) <= tolerance
    if is_json(profile):
        assert f'"{profile.point_key}": [x, y]' in model.requests[0].messages[0].text


# ------------------------------------------------------------------------------------------------
# segment
# ------------------------------------------------------------------------------------------------
def polygon_oracle(target: BoundingBox, profile: FamilyProfile) -> Callable[[PageImage, Size, FunctionInfo], Any]:
    """The word's outline (its four corners) as the family writes a polygon."""

    def answer(image: PageImage, input_size: Size, info: FunctionInfo) -> Any:
        corners = target.to(Space.PIXEL, image.frame).corners
        poly = Polygon(points=corners, space=Space.PIXEL, image_size=image.size)
        if profile is P.FLORENCE2:
            return profile.format_polygons([(None, poly)])
        if isinstance(profile, P.PaliGemmaProfile):
            return profile.format_segments([(TOTAL, poly.bbox, list(range(16)))])
        pts = [Point(x=x, y=y, space=Space.PIXEL, image_size=image.size) for x, y in corners]
        return [{"polygon": [list(profile.encode_point(p, input_size=input_size)) for p in pts]}]

    return answer


@pytest.mark.parametrize("zoom", [False, True], ids=["page", "region"])
@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("profile", [P.GENERIC, P.QWEN2_5_VL, *LOC_FAMILIES], ids=lambda p: p.name)
def test_segment(profile: FamilyProfile, rotation: int, zoom: bool, pages: dict[int, Page]) -> None:
    page = pages[rotation]
    target = word_box(page, TOTAL)
    region = TOTALS if zoom else None
    model = FamilyModel(profile, polygon_oracle(target, profile))
    (det,) = segment(model, page, TOTAL, region=region)
    image = view(page, region)
    assert det.label == TOTAL and det.box.space is Space.PAGE
    assert det.box.iou(target) >= 0.9
    # the mask is over the image the model saw, and the frame relates it to page space
    frame = det.data["frame"]
    assert frame == image.frame and det.mask is not None and det.mask.size == (image.height, image.width)
    expected = Mask.from_polygon(Polygon(points=target.to(Space.PIXEL, frame).corners, space=Space.PIXEL,
                                         image_size=image.size), image.height, image.width)
    assert det.mask.iou(expected) >= 0.85
    assert det.data["mask_from"] == ("box" if profile is P.PALIGEMMA else "polygon")
    (outline,) = det.data["polygons"]
    assert outline.space is Space.PAGE and outline.bbox.iou(target) >= 0.9


def test_segment_keeps_florence_parts_as_one_object(pages: dict[int, Page]) -> None:
    page = pages[0]
    a, b = word_box(page, TOTAL), word_box(page, NUMBER)

    def answer(image: PageImage, input_size: Size, info: FunctionInfo) -> str:
        polys = [Polygon(points=box.to(Space.PIXEL, image.frame).corners, space=Space.PIXEL, image_size=image.size)
                 for box in (a, b)]
        return "<sep>".join(P.FLORENCE2.format_polygons([(None, p)]) for p in polys)

    (det,) = segment(FamilyModel(P.FLORENCE2, answer), page, "the numbers")
    assert len(det.data["polygons"]) == 2
    assert det.box.iou(a.union(b)) >= 0.95


# ------------------------------------------------------------------------------------------------
# TestModel: random but valid answers never crash and stay on the page
# ------------------------------------------------------------------------------------------------
class FamilyTestModel(TestModel):
    __test__ = False

    def __init__(self, profile: FamilyProfile, seed: int) -> None:
        super().__init__(seed=seed, extra_repeats=3)
        self._profile = profile

    @property
    def profile(self) -> FamilyProfile:
        return self._profile


@pytest.mark.parametrize("profile", [P.GENERIC, P.QWEN2_5_VL, P.LLAVA, *LOC_FAMILIES], ids=lambda p: p.name)
def test_random_answers_give_valid_page_space_results(profile: FamilyProfile, pages: dict[int, Page]) -> None:
    page = pages[90]
    bounds = page.bbox
    for seed in range(3):
        model = FamilyTestModel(profile, seed)
        region = TOTALS if seed == 2 else None
        inside = bounds if region is None else region
        dets = detect(model, page, ["logo", "total"], region=region)
        boxes = ground(model, page, TOTAL, region=region, snap=False)
        points = point(model, page, TOTAL, region=region)
        masks = segment(model, page, TOTAL, region=region)
        assert set(dets.labels) <= {"logo", "total"}
        for box in [*dets.xyxy.tolist(), *(b.xyxy for b in boxes), *(d.box.xyxy for d in masks)]:
            assert BoundingBox.from_xyxy(box).clip(inside).xyxy == pytest.approx(tuple(box), abs=1e-6)
        for pt in points:
            assert pt.space is Space.PAGE and pt.within(inside.model_copy(update={
                "x0": inside.x0 - 1e-6, "y0": inside.y0 - 1e-6, "x1": inside.x1 + 1e-6, "y1": inside.y1 + 1e-6}))
        for det in masks:
            assert isinstance(det.mask, Mask) and det.mask.size == (det.data["frame"].image_size.height,
                                                                    det.data["frame"].image_size.width)


def test_output_types_are_built_once(pages: dict[int, Page]) -> None:
    model = FamilyModel(P.GENERIC, lambda image, size, info: "[]")
    ground(model, pages[0], TOTAL)
    ground(model, pages[0], TOTAL)
    first, second = model.requests
    assert first.constraint is second.constraint


# ------------------------------------------------------------------------------------------------
# snap_to_words
# ------------------------------------------------------------------------------------------------
WORDS = WordList(
    [
        (10.0, 10.0, 30.0, 20.0, "EUR", 0, 0, 0),
        (34.0, 10.0, 60.0, 20.0, "145.78", 0, 0, 1),
        (10.0, 30.0, 40.0, 40.0, "Thanks", 0, 1, 0),
        (50.0, 30.0, 50.0, 40.0, "", 0, 1, 1),  # zero width
    ],
    page=0,
)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((32, 8, 62, 22), (34, 10, 60, 20)),  # loose around one word: tightened
        ((35, 11, 59, 19), (34, 10, 60, 20)),  # a bit inside the word: grown to it
        ((5, 5, 65, 25), (10, 10, 60, 20)),  # around two words: their union
        ((47, 5, 65, 25), (34, 10, 60, 20)),  # half of 145.78 (13 of 26 points): counts at exactly 0.5
        ((48, 5, 65, 25), (48, 5, 65, 25)),  # less than half: unchanged
        ((45, 28, 55, 42), (50, 30, 50, 40)),  # only a zero-area word inside: it counts
        ((100, 100, 120, 120), (100, 100, 120, 120)),  # no words: unchanged
    ],
)
def test_snap_to_words(box: tuple[float, ...], expected: tuple[float, ...]) -> None:
    snapped = snap_to_words(BoundingBox.from_xyxy(box), WORDS)
    assert snapped.xyxy == expected and snapped.space is Space.PAGE


def test_snap_to_words_options_and_errors() -> None:
    box = BoundingBox.from_xyxy((47, 5, 65, 25))
    assert snap_to_words(box, WORDS, min_overlap=0.6).xyxy == (47, 5, 65, 25)
    assert snap_to_words(box, WORDS, min_overlap=0.1).xyxy == (34, 10, 60, 20)
    assert snap_to_words(box, WordList([], page=0)) == box
    with pytest.raises(dv.UsageError, match="min_overlap"):
        snap_to_words(box, WORDS, min_overlap=0)
    with pytest.raises(dv.UsageError, match="page space"):
        snap_to_words(box.model_copy(update={"space": Space.PIXEL}), WORDS)
