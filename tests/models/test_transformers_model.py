"""TransformersModel through the public API on tiny random-weight models of every family.

Random weights answer nonsense, so these tests check plumbing, not accuracy: loading through
``dv.load_model("transformers:<folder>")``, prompts with images through each family's processor, batched
constrained sampling that always validates, and boxes that end up in page space.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

import docvlm as dv
from docvlm.models.transformers import TransformersModel

from .tiny import FAMILIES, IMAGE_FAMILIES

torch = pytest.importorskip("torch")


class Box(BaseModel):
    x0: int = Field(ge=0, le=1000)
    y0: int = Field(ge=0, le=1000)
    x1: int = Field(ge=0, le=1000)
    y1: int = Field(ge=0, le=1000)
    label: Literal["total", "date"]


Boxes = Annotated[list[Box], Field(max_length=3)]


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs tiny models on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="module")
def page() -> dv.Page:
    return dv.open(dv.samples.invoice_pdf())[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_load_and_constrained_sampling_always_validates(family: str, tiny_model: Callable[[str], Path],
                                                        page: dv.Page) -> None:
    model = dv.load_model(f"transformers:{tiny_model(family)}")
    assert isinstance(model, TransformersModel)
    assert model.supports_images == (family in IMAGE_FAMILIES)
    assert model.profile.name in (family, "generic")
    image = page.render(dpi=20)
    prompt: list[object] = ["Find the total.", image] if model.supports_images else ["Find the total."]
    results = []
    for seed in range(4):  # 4 batched calls x 5 prompts = 20 sampled generations
        results += model.generate_batch([prompt] * 5, Boxes, temperature=1.0, seed=seed)
    assert len(results) == 20
    assert all(isinstance(r, list) and all(isinstance(b, Box) for b in r) for r in results)


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_boxes_land_in_page_space(family: str, tiny_model: Callable[[str], Path], page: dv.Page) -> None:
    """The family's own convention maps every box the model can emit into the page."""
    from docvlm.tasks.vision import detect

    model = dv.load_model(f"transformers:{tiny_model(family)}")
    rotated = dv.open(dv.samples.invoice_pdf(rotation=90))[0]
    for p in (page, rotated):
        found = detect(model, p, ["total", "date"], max_boxes=3)
        for d in found:
            assert d.box.space is dv.Space.PAGE
            assert 0 <= d.box.x0 <= d.box.x1 <= p.width and 0 <= d.box.y0 <= d.box.y1 <= p.height
            assert d.label in ("total", "date")


def test_greedy_batch_equals_one_by_one(tiny_model: Callable[[str], Path]) -> None:
    """Left padding in a batch does not change greedy answers."""
    model = dv.load_model(f"transformers:{tiny_model('qwen2_vl')}")
    image = dv.open(dv.samples.invoice_pdf())[0].render(dpi=20)
    prompts = [["Find the total.", image], ["Find the date please, it is somewhere.", image]]
    batched = model.generate_batch(prompts, Boxes)
    single = [model.generate(p, Boxes) for p in prompts]
    assert batched == single


def test_bad_folders_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(dv.ModelError, match="no model folder"):
        dv.load_model(f"transformers:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(dv.ModelError, match="cannot read a model config"):
        dv.load_model(f"transformers:{tmp_path / 'empty'}")
