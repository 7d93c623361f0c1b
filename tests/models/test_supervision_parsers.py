"""Each family's parser against supervision's ``Detections.from_vlm`` on the same raw model outputs.

supervision reads PaliGemma, Qwen2.5-VL, Qwen3-VL and (for the region tasks, as raw text) Florence-2. The two must
find the same labelled boxes; where the conventions differ the tolerance is one quantization step and says why:
PaliGemma's locs are ``v / 1023`` in docvlm (big_vision's encoder) and ``v / 1024`` in supervision, and Florence-2's
``<loc_N>`` is read at the bin's centre ``(N + 0.5) / 1000`` in docvlm (transformers' post-processor) and at its
edge ``N / 1000`` in supervision. Raw outputs are both hand-written (fences, truncation, prose) and what each
family's constrained task request lets a model write (sampled by TestModel).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from docvlm.decoding import compile_output_type
from docvlm.models import profiles as P
from docvlm.models.test import sample_regex
from docvlm.types import Size

sv = pytest.importorskip("supervision")

IMAGE = Size(width=1280, height=720)
QWEN_INPUT = Size(width=644, height=364)  # what Qwen2.5-VL's processor makes of it (multiples of 28)

HANDWRITTEN: dict[str, list[str]] = {
    "qwen2_5_vl": [
        '```json\n[\n  {"bbox_2d": [10, 20, 300, 200], "label": "cat"},\n  {"bbox_2d": [320, 40, 640, 360], "label": "dog"}\n]\n```',
        '[{"bbox_2d": [0, 0, 644, 364], "label": "page"}]',
        '```json\n[{"bbox_2d": [10, 20, 300, 200], "label": "cat"}, {"bbox_2d": [320, 40, 64',  # cut off
        "[]",
    ],
    "qwen3_vl": [
        '```json\n[{"bbox_2d": [100, 200, 300, 400], "label": "total"}, {"bbox_2d": [0, 0, 1000, 1000], "label": "page"}]\n```',
        '[{"bbox_2d": [500, 500, 510, 520], "label": "dot"}]',
    ],
    "paligemma": [
        "<loc0102><loc0205><loc0307><loc0410> total ; <loc0000><loc0000><loc1023><loc1023> page",
        "<loc0512><loc0256><loc0768><loc0999> signature line",
        "",
    ],
}

TOLERANCE = {
    # pixels of IMAGE: one quantization step of the family's convention, where docvlm and supervision differ
    "qwen2_5_vl": (1e-6, 1e-6),
    "qwen3_vl": (1e-6, 1e-6),
    "paligemma": (IMAGE.width / 1023, IMAGE.height / 1023),
    "florence2": (IMAGE.width / 1000, IMAGE.height / 1000),
}


def supervision_boxes(family: str, text: str) -> list[tuple[str, tuple[float, ...]]]:
    wh = (int(IMAGE.width), int(IMAGE.height))
    if family == "qwen2_5_vl":
        det = sv.Detections.from_vlm(sv.VLM.QWEN_2_5_VL, text, input_wh=(int(QWEN_INPUT.width), int(QWEN_INPUT.height)),
                                     resolution_wh=wh)
    elif family == "qwen3_vl":
        det = sv.Detections.from_vlm(sv.VLM.QWEN_3_VL, text, resolution_wh=wh)
    elif family == "paligemma":
        det = sv.Detections.from_vlm(sv.VLM.PALIGEMMA, text, resolution_wh=wh)
    else:
        det = sv.Detections.from_vlm(sv.VLM.FLORENCE_2, {"<REGION_TO_DESCRIPTION>": text}, resolution_wh=wh)
    names = det.data.get("class_name", [None] * len(det))
    return [(str(n).strip(), tuple(float(v) for v in xyxy)) for n, xyxy in zip(names, det.xyxy, strict=True)]


def docvlm_boxes(family: str, text: str) -> list[tuple[str, tuple[float, ...]]]:
    profile = P.profile_for(family)
    input_size = QWEN_INPUT if family == "qwen2_5_vl" else None
    return [(str(label), box.xyxy) for label, box in profile.parse_boxes(text, image_size=IMAGE, input_size=input_size)]


def assert_same(family: str, text: str) -> None:
    ours, theirs = docvlm_boxes(family, text), supervision_boxes(family, text)
    assert [label for label, _ in ours] == [label for label, _ in theirs], text
    tx, ty = TOLERANCE[family]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert a == pytest.approx(b, abs=max(tx, ty)), text
        assert abs(a[0] - b[0]) <= tx + 1e-9 and abs(a[2] - b[2]) <= tx + 1e-9, text
        assert abs(a[1] - b[1]) <= ty + 1e-9 and abs(a[3] - b[3]) <= ty + 1e-9, text


@pytest.mark.parametrize(("family", "text"), [(f, t) for f, texts in HANDWRITTEN.items() for t in texts])
def test_handwritten_outputs_parse_as_supervision_reads_them(family: str, text: str) -> None:
    assert_same(family, text)


def test_florence2_region_answers() -> None:
    for text in ("a red car<loc_52><loc_333><loc_932><loc_774>", "total<loc_0><loc_0><loc_999><loc_999>"):
        ours = docvlm_boxes("florence2", text)
        assert len(ours) == 1
        assert_same("florence2", text)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "paligemma"])
def test_constrained_task_answers_parse_as_supervision_reads_them(family: str) -> None:
    """What a model may write under the family's own detect request, read by the request and by supervision."""
    profile = P.profile_for(family)
    input_size = QWEN_INPUT if profile.needs_input_size else None
    labels = ("total", "invoice date", "logo")
    request = profile.box_request(labels, labelled=True, max_boxes=6, image_size=IMAGE, input_size=input_size)
    constraint = compile_output_type(request.output_type)
    rng = random.Random(7)
    seen = 0
    for _ in range(40):
        text = sample_regex(constraint.regex, rng, extra_repeats=3)
        value: Any = constraint.parse(text)
        ours = [(label, box.xyxy) for label, box in request.parse(value)]
        assert ours == docvlm_boxes(family, text)  # the request reads its answer as the free-text parser does
        assert_same(family, text)
        seen += len(ours)
    assert seen > 20  # the samples held boxes, not only empty answers
