"""Mask: COCO RLE (both forms), rasterizing polygons, tracing outlines, IoU."""

from __future__ import annotations

import json

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from pydantic import ValidationError

from docvlm.errors import UsageError
from docvlm.types import BoundingBox, Mask, Polygon, Size, Space
from docvlm.types.mask import counts_to_string, string_to_counts

SETTINGS = settings(deadline=None, max_examples=200)
masks = arrays(dtype=bool, shape=array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24))

# A compressed RLE string produced by pycocotools for a 50x70 mask (from a public COCO tooling README).
PYCOCOTOOLS_50x70 = (
    "0g05b08J4M2N2NA^O1`0OCO=0E090H080IO68DH;>@C>a0_O_O`0j0OWOF<:CM72I24NL43JM92FN;1ENKO72L0LO91J0MO92INO0NO122OO"
    "0M031O000NO31OO11MO40N011MO41MO21L06OL021L06OL021L06OL021L060J040L060J040L060J040L060J040L060J040L060J040L060KO"
    "31L060KO31L06OL021L06OL021L06OL021MO41MO21MO40N100NO310O00M0310O00NO1220NO92IONO91KOMO72M0<1EO:2GN63KM34OLM73JF"
    "<;=1G_O_Ob0=AC`07EH=1IO71H090F0:1DO>1_O1b0>2N2N3L6H]O"
)


def fill_holes(a: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The mask with every background region not 4-connected to the border set."""
    h, w = a.shape
    padded = np.pad(a, 1).astype(np.uint8)
    cv2.floodFill(padded, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2)
    out: npt.NDArray[np.bool_] = (padded != 2)[1:-1, 1:-1]
    return out


# --------------------------------------------------------------------------- RLE from arrays


@pytest.mark.parametrize(
    ("rows", "counts"),
    [
        ([[0, 1], [1, 1]], [1, 3]),  # column-major: 0, 1 | 1, 1
        ([[1, 0], [1, 1]], [0, 2, 1, 1]),  # a set first pixel starts with an empty zero-run
        ([[0, 0, 0], [0, 0, 0]], [6]),
        ([[1, 1, 1], [1, 1, 1]], [0, 6]),
        ([[1, 1, 1], [0, 0, 0]], [0, 1, 1, 1, 1, 1, 1]),  # a full row is fragmented in Fortran order
        ([[1, 0, 0], [1, 0, 0]], [0, 2, 4]),  # a full column is one run
    ],
)
def test_from_array_counts_are_column_major(rows: list[list[int]], counts: list[int]) -> None:
    m = Mask.from_array(np.array(rows, dtype=bool))
    assert m.counts == counts
    assert m.size == (len(rows), len(rows[0]))
    assert m.to_array().tolist() == [[bool(v) for v in r] for r in rows]


def test_from_array_treats_nonzero_as_foreground() -> None:
    m = Mask.from_array(np.array([[0, 255], [3, 0]], dtype=np.uint8))
    assert m.to_array().tolist() == [[False, True], [True, False]]
    assert m.area == 2


@pytest.mark.parametrize("shape", [(4,), (2, 2, 3), (0, 5), (3, 0)])
def test_from_array_rejects_non_2d(shape: tuple[int, ...]) -> None:
    with pytest.raises(UsageError, match="2-D"):
        Mask.from_array(np.zeros(shape, dtype=bool))


@SETTINGS
@given(a=masks)
def test_array_round_trip(a: npt.NDArray[np.bool_]) -> None:
    m = Mask.from_array(a)
    back = m.to_array()
    assert back.dtype == np.bool_
    assert np.array_equal(back, a)
    assert m.area == int(a.sum())
    assert m.is_empty == (not a.any())
    assert sum(m.counts) == a.size
    assert all(c > 0 for c in m.counts[1:])  # canonical: only the leading run may be empty


@SETTINGS
@given(a=masks)
def test_coco_and_json_round_trips(a: npt.NDArray[np.bool_]) -> None:
    m = Mask.from_array(a)
    compressed = m.to_coco()
    assert compressed["size"] == list(a.shape)
    assert isinstance(compressed["counts"], str)
    assert Mask.from_coco(compressed) == m
    assert Mask.from_coco({**compressed, "counts": compressed["counts"].encode()}) == m  # bytes, as pycocotools gives
    assert Mask.from_coco(json.loads(json.dumps(m.to_coco(compressed=False)))) == m
    assert Mask.model_validate_json(m.model_dump_json()) == m
    assert string_to_counts(counts_to_string(m.counts)) == m.counts


@SETTINGS
@given(counts=st.lists(st.integers(0, 10**7), min_size=1, max_size=30))
def test_string_codec_round_trips_any_counts(counts: list[int]) -> None:
    assert string_to_counts(counts_to_string(counts)) == counts


def test_uncompressed_dump_is_coco_rle() -> None:
    m = Mask.from_array(np.array([[0, 1], [1, 1]], dtype=bool))
    assert m.model_dump(mode="json") == {"size": [2, 2], "counts": [1, 3]}
    assert m.to_coco(compressed=False) == {"size": [2, 2], "counts": [1, 3]}


# --------------------------------------------------------------------------- the compressed string codec


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        # one 6-bit character per small count: chr(48 + count)
        ([1, 3], "13"),
        ([0, 1], "01"),
        ([3, 4, 5], "345"),  # the third count (index 2) is *not* delta coded in pycocotools
        # index 3 on is delta coded against two back: 4 - 10 = -6 -> 5 bits 0b11010 (sign bit set) = 26 -> 'J'
        ([5, 10, 15, 4], "5:?J"),
        # 100 = 4 + 3 * 32: low group 4 with the continuation bit (4 | 32 = 36 -> 'T'), then 3 -> '3'
        ([100], "T3"),
        # 16 sets bit 4, which would read as a sign, so a zero group follows: (16 | 32) -> '`', then '0'
        ([16], "`0"),
        # 1 - 100 = -99 = 29 + 32 * -4: (29 | 32) -> 'm', then -4 & 31 = 28 (sign set, last) -> 'L'
        ([0, 100, 2, 1], "0T32mL"),
    ],
)
def test_string_codec_known_values(counts: list[int], text: str) -> None:
    assert counts_to_string(counts) == text
    assert string_to_counts(text) == counts
    assert string_to_counts(text.encode()) == counts


def test_known_mask_compresses_to_known_string() -> None:
    # 3x2 mask, column-major pixels 0,0,1 | 1,1,0 -> counts [2, 3, 1] -> "231"
    m = Mask.from_array(np.array([[0, 1], [0, 1], [1, 0]], dtype=bool))
    assert m.counts == [2, 3, 1]
    assert m.to_coco() == {"size": [3, 2], "counts": "231"}
    assert Mask(size=(3, 2), counts="231") == m  # type: ignore[arg-type]


def test_real_pycocotools_string() -> None:
    m = Mask.from_coco({"size": [50, 70], "counts": PYCOCOTOOLS_50x70})
    assert sum(m.counts) == 50 * 70
    assert m.counts[:6] == [0, 23, 5, 41, 13, 35]  # starts with a set pixel: an empty zero-run
    assert m.to_coco()["counts"] == PYCOCOTOOLS_50x70  # byte-identical re-encoding
    assert m.area == sum(m.counts[1::2])


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [2, 2], "counts": "1~"}, "invalid character"),
        ({"size": [100, 1], "counts": "T"}, "middle of a count"),
        ({"size": [2, 2], "counts": "12"}, "add up to 3"),
        ({"size": [2, 2], "counts": [1, 2]}, "add up to 3"),
        ({"size": [2, 2], "counts": [2, -1, 3]}, ">= 0"),
        ({"size": [0, 2], "counts": []}, "height and width >= 1"),
        ({"size": [2, 2]}, "counts"),
        ({"size": [2, 2], "counts": [4], "iscrowd": 1}, "iscrowd"),
    ],
)
def test_bad_rle_is_a_validation_error(rle: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Mask.from_coco(rle)


def test_counts_are_canonicalized() -> None:
    assert Mask(size=(1, 6), counts=[0, 0, 2, 0, 4]).counts == [6]
    assert Mask(size=(1, 6), counts=[0, 2, 0, 3, 1]).counts == [0, 5, 1]
    assert Mask(size=(1, 6), counts=[0, 2, 0, 3, 1, 0]) == Mask.from_array(np.array([[1, 1, 1, 1, 1, 0]], dtype=bool))


def test_repr_is_short() -> None:
    m = Mask.from_array(np.eye(50, dtype=bool))
    assert repr(m) == "Mask(size=(50, 50), area=50)"


# --------------------------------------------------------------------------- views


def test_bbox_is_on_pixel_edges() -> None:
    a = np.zeros((5, 6), dtype=bool)
    a[2, 3] = True
    b = Mask.from_array(a).bbox
    assert b == BoundingBox(x0=3, y0=2, x1=4, y1=3, space=Space.PIXEL, image_size=Size(width=6, height=5))
    a[4, 0] = True
    b2 = Mask.from_array(a).bbox
    assert b2 is not None
    assert b2.xyxy == (0, 2, 4, 5)


def test_empty_mask() -> None:
    m = Mask.empty(3, 4)
    assert m.counts == [12]
    assert m.is_empty
    assert m.area == 0
    assert m.bbox is None
    assert m.to_polygons() == []
    assert (m.height, m.width, m.image_size) == (3, 4, Size(width=4, height=3))


@SETTINGS
@given(a=masks)
def test_bbox_matches_numpy(a: npt.NDArray[np.bool_]) -> None:
    b = Mask.from_array(a).bbox
    if not a.any():
        assert b is None
        return
    ys, xs = np.nonzero(a)
    assert b is not None
    assert b.xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


# --------------------------------------------------------------------------- polygons


def test_rectangle_fills_exactly_its_area() -> None:
    m = Mask.from_polygon([(10, 10), (20, 10), (20, 20), (10, 20)], 30, 30)
    assert m.area == 100
    assert m.bbox is not None
    assert m.bbox.xyxy == (10, 10, 20, 20)
    expected = np.zeros((30, 30), dtype=bool)
    expected[10:20, 10:20] = True
    assert np.array_equal(m.to_array(), expected)


def test_fill_samples_pixel_centres() -> None:
    # x from 10.4 to 20.4 holds centres 10.5 .. 19.5 (10 columns); y from 10.4 to 20.6 holds 10.5 .. 20.5 (11 rows)
    m = Mask.from_polygon([(10.4, 10.4), (20.4, 10.4), (20.4, 20.6), (10.4, 20.6)], 30, 30)
    assert m.area == 110
    # right triangle with legs 20: row r holds centres x + 0.5 < 20 - (r + 0.5), so 19 - r pixels (the
    # centres on the hypotenuse are on a right edge, outside): 19 + 18 + ... + 0 = 190
    assert Mask.from_polygon([(0, 0), (20, 0), (0, 20)], 30, 30).area == 190


def test_concave_and_clipped_polygons() -> None:
    ell = [(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)]
    m = Mask.from_polygon(ell, 5, 5)
    assert m.area == 6
    assert m.to_array()[:3, :1].all()
    assert m.to_array()[0, :4].all()
    assert Mask.from_polygon([(-5, -5), (5, -5), (5, 5), (-5, 5)], 10, 10).area == 25


def test_normalized_polygon_is_scaled() -> None:
    poly = Polygon(points=[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)], space=Space.NORMALIZED)
    m = Mask.from_polygon(poly, height=40, width=20)
    assert m.area == 10 * 20
    assert m.bbox is not None
    assert m.bbox.xyxy == (5, 10, 15, 30)


def test_polygon_union() -> None:
    a = [(0, 0), (4, 0), (4, 4), (0, 4)]
    b = [(2, 2), (6, 2), (6, 6), (2, 6)]
    assert Mask.from_polygons([a, b], 8, 8).area == 16 + 16 - 4


def test_polygon_errors() -> None:
    with pytest.raises(UsageError, match="page-space"):
        Mask.from_polygon(Polygon(points=[(0, 0), (1, 0), (1, 1)]), 4, 4)
    other = Polygon(points=[(0, 0), (1, 0), (1, 1)], space=Space.PIXEL, image_size=Size(width=8, height=8))
    with pytest.raises(UsageError, match="8x8 image"):
        Mask.from_polygon(other, 4, 4)
    with pytest.raises(UsageError, match="height=0, width=4"):
        Mask.from_polygon([(0, 0), (1, 0), (1, 1)], 0, 4)
    with pytest.raises(UsageError, match=r"height=4.5, width=4"):
        Mask.from_polygon([(0, 0), (1, 0), (1, 1)], 4.5, 4)  # type: ignore[arg-type]
    assert Mask.from_polygon([(0, 0), (2, 0), (2, 2)], np.int64(4), np.int64(4)).size == (4, 4)
    with pytest.raises(ValidationError):
        Mask.from_polygon([(0, 0), (1, 0)], 4, 4)


@SETTINGS
@given(
    x0=st.integers(-5, 30), y0=st.integers(-5, 30), w=st.integers(0, 30), h=st.integers(0, 30),
    height=st.integers(1, 30), width=st.integers(1, 30),
)
def test_integer_rectangles_fill_exactly(x0: int, y0: int, w: int, h: int, height: int, width: int) -> None:
    m = Mask.from_polygon([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)], height, width)
    expected = np.zeros((height, width), dtype=bool)
    expected[max(y0, 0) : max(y0 + h, 0), max(x0, 0) : max(x0 + w, 0)] = True
    assert np.array_equal(m.to_array(), expected)


def test_to_polygons_traces_pixel_edges() -> None:
    a = np.zeros((6, 8), dtype=bool)
    a[1:4, 2:7] = True  # 3 rows x 5 columns
    a[5, 0] = True  # a single pixel
    polys = Mask.from_array(a).to_polygons()
    assert len(polys) == 2
    big, small = polys  # largest first
    assert sorted(big.points) == [(2, 1), (2, 4), (7, 1), (7, 4)]
    assert big.area == 15
    assert (big.space, big.image_size) == (Space.PIXEL, Size(width=8, height=6))
    assert sorted(small.points) == [(0, 5), (0, 6), (1, 5), (1, 6)]


def test_to_polygons_reports_outer_boundary_only() -> None:
    a = np.ones((5, 5), dtype=bool)
    a[2, 2] = False
    (poly,) = Mask.from_array(a).to_polygons()
    assert poly.area == 25


@SETTINGS
@given(a=masks)
def test_polygons_give_back_the_mask_with_holes_filled(a: npt.NDArray[np.bool_]) -> None:
    m = Mask.from_array(a)
    polys = m.to_polygons()
    h, w = a.shape
    back = Mask.from_polygons(polys, h, w).to_array()
    assert np.array_equal(back, fill_holes(a))


# --------------------------------------------------------------------------- set operations


def test_iou_hand_cases() -> None:
    left = np.zeros((4, 4), dtype=bool)
    left[:, 0:2] = True
    mid = np.zeros((4, 4), dtype=bool)
    mid[:, 1:3] = True
    right = np.zeros((4, 4), dtype=bool)
    right[:, 3] = True
    a, b, c = Mask.from_array(left), Mask.from_array(mid), Mask.from_array(right)
    assert a.iou(a) == 1.0
    assert a.iou(b) == pytest.approx(4 / 12)
    assert a.iou(c) == 0.0
    assert Mask.empty(4, 4).iou(Mask.empty(4, 4)) == 0.0
    assert (a & b).area == 4
    assert (a | b).area == 12
    assert (~a).area == 8
    assert (a | c) == Mask.from_array(left | right)


def test_size_mismatch_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"different sizes \[4, 4\] and \[4, 5\]"):
        Mask.empty(4, 4).iou(Mask.empty(4, 5))
    with pytest.raises(UsageError, match="different sizes"):
        _ = Mask.empty(4, 4) & Mask.empty(5, 4)
