"""Detection and Detections: validation, the sequence protocol, array views, filtering, NMS, conversion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from docvlm.errors import UsageError
from docvlm.types import BoundingBox, Detection, Detections, Frame, Mask, Size, Space


def det(label: str, xyxy: tuple[float, float, float, float], score: float | None = None, **kw: object) -> Detection:
    space = kw.pop("space", Space.PAGE)
    image_size = kw.pop("image_size", None)
    b = BoundingBox.from_xyxy(xyxy, space=space, image_size=image_size)  # type: ignore[arg-type]
    return Detection(label=label, box=b, score=score, **kw)  # type: ignore[arg-type]


@pytest.fixture
def dets() -> Detections:
    return Detections(
        detections=[
            det("logo", (0, 0, 10, 10), 0.9),
            det("logo", (1, 1, 11, 11), 0.8),
            det("stamp", (1, 1, 11, 11), 0.7),
            det("signature", (50, 50, 60, 55)),
        ]
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("score", [-0.1, 1.5, float("nan")])
def test_score_must_be_a_probability(score: float) -> None:
    with pytest.raises(ValidationError):
        det("x", (0, 0, 1, 1), score)


def test_detection_extra_fields_go_in_data() -> None:
    d = det("invoice number", (0, 0, 1, 1), data={"text": "INV-001"})
    assert d.data == {"text": "INV-001"}
    with pytest.raises(ValidationError):
        Detection(label="x", box=BoundingBox(x0=0, y0=0, x1=1, y1=1), colour="red")  # type: ignore[call-arg]


def test_mask_must_match_the_pixel_box_image() -> None:
    size = Size(width=4, height=3)
    ok = det("x", (0, 0, 1, 1), space=Space.PIXEL, image_size=size, mask=Mask.empty(3, 4))
    assert ok.mask is not None
    with pytest.raises(ValidationError, match="mask is 4x3 pixels but the box is on a 5x3 image"):
        det("x", (0, 0, 1, 1), space=Space.PIXEL, image_size=Size(width=5, height=3), mask=Mask.empty(3, 4))


def test_boxes_must_share_one_space() -> None:
    with pytest.raises(ValidationError, match="share a space, found page, pixel"):
        Detections(detections=[det("a", (0, 0, 1, 1)), det("b", (0, 0, 1, 1), space=Space.PIXEL)])


# --------------------------------------------------------------------------- sequence protocol


def test_sequence_protocol(dets: Detections) -> None:
    assert isinstance(dets, Sequence)
    assert len(dets) == 4
    assert [d.label for d in dets] == ["logo", "logo", "stamp", "signature"]
    assert dets[0].score == 0.9
    assert dets[-1].label == "signature"
    assert dets[np.int64(2)].label == "stamp"
    assert dets[2] in dets
    assert dets.index(dets[2]) == 2
    assert [d.label for d in reversed(dets)] == ["signature", "stamp", "logo", "logo"]
    with pytest.raises(IndexError):
        dets[4]


def test_indexing_returns_detections(dets: Detections) -> None:
    sliced = dets[1:3]
    assert isinstance(sliced, Detections)
    assert sliced.labels == ["logo", "stamp"]
    assert dets[[3, 0]].labels == ["signature", "logo"]
    assert dets[np.array([2])].labels == ["stamp"]
    assert dets[dets.confidence > 0.75].labels == ["logo", "logo"]
    assert dets[[True, False, False, True]].labels == ["logo", "signature"]
    assert len(dets[[]]) == 0
    with pytest.raises(UsageError, match=r"shape \(4,\)"):
        dets[np.array([True, False])]
    with pytest.raises(UsageError, match="cannot index"):
        dets[np.array([0.5])]


def test_empty_detections() -> None:
    empty = Detections()
    assert len(empty) == 0
    assert empty.space is None
    assert empty.xyxy.shape == (0, 4)
    assert empty.confidence.shape == (0,)
    assert empty.class_names == []
    assert empty.nms().labels == []
    sv = empty.to_supervision_kwargs()
    assert sv["xyxy"].shape == (0, 4)
    assert sv["confidence"] is None
    assert sv["mask"] is None


def test_concatenation(dets: Detections) -> None:
    both = dets[:1] + dets[3:]
    assert both.labels == ["logo", "signature"]


def test_json_round_trip(dets: Detections) -> None:
    assert Detections.model_validate_json(dets.model_dump_json()) == dets


# --------------------------------------------------------------------------- array views


def test_array_views(dets: Detections) -> None:
    assert dets.xyxy.dtype == np.float32
    assert dets.xyxy.tolist() == [[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 55]]
    conf = dets.confidence
    assert conf.dtype == np.float32
    assert conf[:3].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert np.isnan(conf[3])
    assert dets.scores == [0.9, 0.8, 0.7, None]
    assert dets.space is Space.PAGE


def test_class_ids_follow_first_appearance(dets: Detections) -> None:
    assert dets.class_names == ["logo", "stamp", "signature"]
    assert dets.class_id.tolist() == [0, 0, 1, 2]
    assert dets.class_id.dtype == np.int64
    # stable: the same labels in the same order give the same ids, whatever the boxes
    assert dets[::-1].class_names == ["signature", "stamp", "logo"]


# --------------------------------------------------------------------------- filter and nms


def test_filter(dets: Detections) -> None:
    assert dets.filter(labels="logo").labels == ["logo", "logo"]
    assert dets.filter(labels=["stamp", "signature"]).labels == ["stamp", "signature"]
    assert dets.filter(min_score=0.75).labels == ["logo", "logo"]
    # unscored detections never pass a score threshold
    assert dets.filter(min_score=0.0).labels == ["logo", "logo", "stamp"]
    assert dets.filter(predicate=lambda d: d.box.area > 90).labels == ["logo", "logo", "stamp"]
    assert dets.filter(labels="logo", min_score=0.85).labels == ["logo"]
    assert dets.filter().labels == dets.labels


def test_nms_per_class_and_agnostic(dets: Detections) -> None:
    # boxes 0 and 1 overlap with IoU 81 / 119 = 0.68
    assert dets.nms(0.5).labels == ["logo", "stamp", "signature"]
    assert dets.nms(0.5).scores == [0.9, 0.7, None]
    assert dets.nms(0.7).labels == dets.labels
    assert dets.nms(0.5, class_agnostic=True).scores == [0.9, None]


def test_nms_keeps_best_score_and_original_order() -> None:
    d = Detections(
        detections=[
            det("a", (0, 0, 10, 10), 0.2),
            det("a", (100, 100, 110, 110), 0.5),
            det("a", (0, 0, 10, 11), 0.95),
        ]
    )
    kept = d.nms(0.5)
    assert kept.scores == [0.5, 0.95]


def test_nms_unscored_ties_keep_the_first() -> None:
    d = Detections(detections=[det("a", (0, 0, 10, 10)), det("a", (0, 0, 10, 10)), det("a", (0, 0, 10, 10), 0.1)])
    kept = d.nms(0.5)
    assert len(kept) == 1
    assert kept[0].score == 0.1
    u = Detections(detections=[det("a", (0, 0, 10, 10), data={"i": 0}), det("a", (0, 0, 10, 10), data={"i": 1})])
    assert [x.data["i"] for x in u.nms(0.5)] == [0]


def test_nms_threshold_is_checked(dets: Detections) -> None:
    with pytest.raises(UsageError, match="iou_threshold"):
        dets.nms(1.5)


# --------------------------------------------------------------------------- conversion and export


def test_to_converts_every_box() -> None:
    frame = Frame.for_page(Size(width=260, height=160), scale=2, rotation=90)
    d = Detections(detections=[det("a", (30, 8.5, 75.56, 35.98)), det("b", (0, 0, 10, 10))])
    px = d.to(Space.PIXEL, frame)
    assert px.space is Space.PIXEL
    assert px.xyxy[0].tolist() == pytest.approx([248.04, 60, 303, 151.12], abs=1e-4)
    assert px.xyxy[1].tolist() == pytest.approx([300, 0, 320, 20])
    back = px.to("page", frame)
    assert np.allclose(back.xyxy, d.xyxy, atol=1e-4)
    assert back.labels == ["a", "b"]


def test_to_supervision_kwargs_plain(dets: Detections) -> None:
    frame = Frame.for_page(Size(width=100, height=100), scale=2)
    sv = dets.to_supervision_kwargs(frame)
    assert set(sv) == {"xyxy", "confidence", "class_id", "mask", "data"}
    assert sv["xyxy"].dtype == np.float32
    assert sv["xyxy"][0].tolist() == [0, 0, 20, 20]  # page boxes came to pixels
    assert sv["confidence"][:3].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert np.isnan(sv["confidence"][3])
    assert sv["class_id"].tolist() == [0, 0, 1, 2]
    assert sv["mask"] is None
    assert sv["data"]["class_name"].tolist() == ["logo", "logo", "stamp", "signature"]


def test_to_supervision_kwargs_needs_a_frame_for_page_boxes(dets: Detections) -> None:
    with pytest.raises(UsageError, match="needs a Frame"):
        dets.to_supervision_kwargs()


def test_to_supervision_kwargs_with_fixed_class_names(dets: Detections) -> None:
    sv = dets.to(Space.PIXEL, Frame.for_page(Size(width=100, height=100), scale=1)).to_supervision_kwargs(
        class_names=["signature", "stamp", "logo", "table"]
    )
    assert sv["class_id"].tolist() == [2, 2, 1, 0]
    with pytest.raises(UsageError, match=r"labels \['stamp', 'signature'\] are not among"):
        dets.to_supervision_kwargs(Frame.for_page(Size(width=100, height=100), scale=1), class_names=["logo"])


def test_to_supervision_kwargs_with_masks() -> None:
    size = Size(width=4, height=3)
    a = np.zeros((3, 4), dtype=bool)
    a[0, 0] = True
    d = Detections(
        detections=[
            det("a", (0, 0, 1, 1), space=Space.PIXEL, image_size=size, mask=Mask.from_array(a)),
            det("b", (0, 0, 4, 3), space=Space.PIXEL, image_size=size, mask=Mask.from_array(~a)),
        ]
    )
    sv = d.to_supervision_kwargs()
    assert sv["mask"].shape == (2, 3, 4)
    assert sv["mask"].dtype == np.bool_
    assert sv["mask"][0].tolist() == a.tolist()
    assert sv["confidence"] is None
    partial = Detections(detections=[d[0], det("c", (0, 0, 1, 1), space=Space.PIXEL)])
    with pytest.raises(UsageError, match="1 of 2 detections have a mask"):
        partial.to_supervision_kwargs()


def test_to_supervision_gives_sv_detections_and_back(dets: Detections) -> None:
    sv = pytest.importorskip("supervision")
    frame = Frame.for_page(Size(width=100, height=100), scale=2)
    out = dets.to_supervision(frame)
    assert isinstance(out, sv.Detections) and len(out) == 4
    assert out.xyxy[0].tolist() == [0, 0, 20, 20]
    assert out.class_id.tolist() == [0, 0, 1, 2]
    assert out.data["class_name"].tolist() == ["logo", "logo", "stamp", "signature"]
    assert len(out[out.confidence > 0.75]) == 2  # supervision's own filtering works on it
    back = Detections.from_supervision(out, image_size=(200, 200))
    assert back.labels == dets.labels and back.space is Space.PIXEL
    assert back.scores == [pytest.approx(0.9), pytest.approx(0.8), pytest.approx(0.7), None]
    assert np.allclose(back.to("page", frame).xyxy, dets.xyxy, atol=1e-4)
    assert back[0].box.image_size == Size(width=200, height=200)


def test_from_supervision_with_masks_and_class_names() -> None:
    sv = pytest.importorskip("supervision")
    mask = np.zeros((2, 3, 4), dtype=bool)
    mask[0, 0, 0] = mask[1, 1:, 2:] = True
    raw = sv.Detections(xyxy=np.array([[0, 0, 1, 1], [2, 1, 4, 3]], dtype=np.float32), mask=mask,
                        class_id=np.array([1, 0]), data={"track": np.array([7, 8])})
    d = Detections.from_supervision(raw, class_names=["table", "logo"])
    assert d.labels == ["logo", "table"] and d.scores == [None, None]
    assert d[1].mask is not None and d[1].mask.to_array().tolist() == mask[1].tolist()
    assert d[0].box.image_size == Size(width=4, height=3) and d[0].data == {"track": 7}
    again = d.to_supervision()
    assert np.array_equal(again.mask, mask) and again.confidence is None
    with pytest.raises(UsageError, match="class id 1 has no name among 1 class names"):
        Detections.from_supervision(raw, class_names=["table"])
