"""Adding a family is one module and one registry line: the made-up Tagged family through every vision task.

``tests/models/families/tagged.py`` defines the family (its request and its parse, in a syntax no shipped family
uses); the fixture below is the registry line. The tasks are docvlm's own, unchanged: what comes back must land on
the word in page space, on upright and rotated pages and in zoomed regions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import docvlm as dv
from docvlm.documents.base import Page
from docvlm.models import FunctionInfo, FunctionModel, Message, profiles
from docvlm.tasks._page import as_page
from docvlm.tasks.vision import detect, ground, point, segment
from docvlm.types import BoundingBox, Space
from tests.models.families.tagged import TAGGED

TOTAL = "145.78"
TOTALS = BoundingBox(x0=350, y0=340, x1=560, y1=420)


@pytest.fixture
def registered() -> Iterator[None]:
    profiles.register(TAGGED)  # the registry line
    yield
    profiles.unregister(TAGGED)


@pytest.fixture(scope="module")
def pages() -> dict[int, Page]:
    return {rot: as_page(dv.samples.invoice_pdf(rotation=rot)) for rot in (0, 90)}


def word_box(page: Page, text: str) -> BoundingBox:
    return next(w.box for w in page.words() if w.text == text)


class TaggedModel(FunctionModel):
    """A fake model whose ``config.model_type`` is ``tagged_vlm``: its profile comes from the registry, as a
    transformers model's does. It answers like a perfect Tagged model: the true word boxes, in the image it saw."""

    model_type = "tagged_vlm"

    def __init__(self, targets: dict[str, BoundingBox]) -> None:
        def answer(messages: list[Message], info: FunctionInfo) -> str:
            (image,) = messages[0].page_images
            assert image is not None
            prompt = messages[0].text
            parts = []
            for label, box in targets.items():
                if label not in prompt:
                    continue
                pixel = box.to(Space.PIXEL, image.frame)
                values = TAGGED.box_values(pixel)
                if prompt.startswith("Tag every"):
                    parts.append(TAGGED.format_tags("obj", label, values))
                elif prompt.startswith("Tag each place"):
                    parts.append(TAGGED.format_tags("pt", label, ((values[0] + values[2]) / 2, (values[1] + values[3]) / 2)))
                else:
                    x0, y0, x1, y1 = values
                    parts.append(TAGGED.format_tags("poly", label, (x0, y0, x1, y0, x1, y1, x0, y1)))
            text = " ".join(parts)
            assert info.constraint.matches(text), (text, info.constraint.regex[:200])
            return text

        super().__init__(answer)

    @property
    def profile(self) -> profiles.FamilyProfile:
        return profiles.profile_for(self.model_type)


def test_unregistered_family_falls_back_to_generic() -> None:
    assert profiles.profile_for("tagged_vlm") is profiles.GENERIC


@pytest.mark.parametrize("zoom", [False, True], ids=["page", "region"])
@pytest.mark.parametrize("rotation", [0, 90])
def test_every_vision_task_speaks_the_new_family(registered: None, pages: dict[int, Page], rotation: int,
                                                 zoom: bool) -> None:
    page = pages[rotation]
    target = word_box(page, TOTAL)
    eur = next(w.box for w in page.words() if w.text == "EUR" and abs(w.box.y0 - target.y0) < 1)
    model = TaggedModel({TOTAL: target, "EUR": eur})
    assert model.profile is TAGGED
    region = TOTALS if zoom else None

    found = detect(model, page, [TOTAL, "EUR", "logo"], region=region)
    assert [d.label for d in found.detections] == [TOTAL, "EUR"]
    assert found.detections[0].box.iou(target) >= 0.9 and found.detections[1].box.iou(eur) >= 0.9
    (box,) = ground(model, page, TOTAL, region=region, snap=False)
    assert box.space is Space.PAGE and box.iou(target) >= 0.9
    (pt,) = point(model, page, TOTAL, region=region)
    assert pt.label == TOTAL and pt.within(target)
    (det,) = segment(model, page, TOTAL, region=region).detections
    assert det.data["mask_from"] == "polygon" and det.box.iou(target) >= 0.9

    # every request was the family's own, and each constraint allowed the empty answer ("nothing found")
    prompts = [r.messages[0].text for r in model.requests]
    assert [p.split(" ")[0] for p in prompts] == ["Tag", "Tag", "Tag", "Outline"]
    assert all(r.constraint.matches("") for r in model.requests)


def test_the_family_refuses_its_delimiters(registered: None, pages: dict[int, Page]) -> None:
    with pytest.raises(dv.UsageError, match="delimiters"):
        ground(TaggedModel({}), pages[0], 'the "total"')


def test_registry_refuses_a_taken_model_type(registered: None) -> None:
    impostor = type(TAGGED)("impostor", model_types=("tagged_vlm",))
    with pytest.raises(dv.UsageError, match="served by the profile 'tagged'"):
        profiles.register(impostor)
    profiles.register(impostor, replace=True)
    assert profiles.profile_for("Tagged_VLM ") is impostor
    profiles.unregister(impostor)
    assert profiles.profile_for("tagged_vlm") is profiles.GENERIC
    with pytest.raises(dv.UsageError, match="names no model_types"):
        profiles.register(type(TAGGED)("nameless"))


def test_unanswered_tasks_give_nothing(registered: None, pages: dict[int, Page]) -> None:
    model = TaggedModel({})
    assert ground(model, pages[0], TOTAL) == []
    assert point(model, pages[0], TOTAL) == []
    assert segment(model, pages[0], TOTAL).detections == []
    assert detect(model, pages[0], ["logo"]).detections == []
