"""Geometry: validation, box arithmetic, spaces, and conversions through page frames (rotated too)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from docvlm.errors import UsageError
from docvlm.types import Affine, BoundingBox, Frame, Point, Polygon, Quad, Size, Space

SETTINGS = settings(deadline=None, max_examples=150)
PAGE = Size(width=260, height=160)


def approx_seq(values: tuple[float, ...] | list[float], tol: float = 1e-6) -> object:
    return pytest.approx(list(values), rel=1e-9, abs=tol)


def flat(points: list[tuple[float, float]]) -> list[float]:
    return [v for p in points for v in p]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "xyxy",
    [
        (10, 0, 5, 5),  # x0 > x1
        (0, 10, 5, 5),  # y0 > y1
        (math.nan, 0, 1, 1),
        (0, 0, math.inf, 1),
        (0, -math.inf, 1, 1),
    ],
)
def test_box_rejects_inverted_and_non_finite(xyxy: tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = xyxy
    with pytest.raises(ValidationError):
        BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1)


def test_box_error_message_says_what_to_do() -> None:
    with pytest.raises(ValidationError, match="from_corners"):
        BoundingBox(x0=10, y0=0, x1=5, y1=5)


def test_zero_size_box_is_valid() -> None:
    b = BoundingBox(x0=3, y0=4, x1=3, y1=4)
    assert b.area == 0.0
    assert b.width_height == (0.0, 0.0)


@pytest.mark.parametrize("kwargs", [{"width": 0, "height": 1}, {"width": 1, "height": -2}, {"width": math.nan, "height": 1}, {"width": 1, "height": math.inf}])
def test_size_must_be_positive_and_finite(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Size(**kwargs)


def test_point_polygon_quad_reject_non_finite() -> None:
    with pytest.raises(ValidationError):
        Point(x=math.nan, y=0)
    with pytest.raises(ValidationError):
        Polygon(points=[(0, 0), (1, math.inf), (1, 1)])
    with pytest.raises(ValidationError):
        Quad(ul=(0, 0), ur=(1, 0), lr=(1, 1), ll=(math.nan, 1))


def test_polygon_needs_three_points() -> None:
    with pytest.raises(ValidationError):
        Polygon(points=[(0, 0), (1, 1)])


def test_models_are_frozen_and_strict_about_fields() -> None:
    b = BoundingBox(x0=0, y0=0, x1=1, y1=1)
    with pytest.raises(ValidationError):
        b.x0 = 0.5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        BoundingBox(x0=0, y0=0, x1=1, y1=1, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        BoundingBox(x0=0, y0=0, x1=1, y1=1, space="inches")  # type: ignore[arg-type]


def test_space_accepts_strings() -> None:
    b = BoundingBox(x0=0, y0=0, x1=1, y1=1, space="normalized")  # type: ignore[arg-type]
    assert b.space is Space.NORMALIZED
    assert b.to("pixel", Size(width=10, height=20)).xyxy == (0, 0, 10, 20)


def test_box_json_round_trip() -> None:
    b = BoundingBox(x0=1, y0=2, x1=3, y1=4, space=Space.PIXEL, image_size=Size(width=10, height=20))
    assert BoundingBox.model_validate_json(b.model_dump_json()) == b
    assert b.model_dump(mode="json")["space"] == "pixel"


# --------------------------------------------------------------------------- constructors and views


def test_constructors() -> None:
    assert BoundingBox.from_xyxy([1, 2, 3, 4]).xyxy == (1, 2, 3, 4)
    assert BoundingBox.from_xywh((1, 2, 3, 4)).xyxy == (1, 2, 4, 6)
    assert BoundingBox.from_corners(5, 6, 1, 2).xyxy == (1, 2, 5, 6)
    e = BoundingBox.enclosing([(3, 1), (0, 5), (2, 2)], space="pixel")
    assert e.xyxy == (0, 1, 3, 5)
    assert e.space is Space.PIXEL
    with pytest.raises(UsageError, match="zero points"):
        BoundingBox.enclosing([])


def test_views() -> None:
    b = BoundingBox(x0=10, y0=10, x1=30, y1=20)
    assert b.xywh == (10, 10, 20, 10)
    assert b.width_height == (20, 10)
    assert b.area == 200
    assert b.center == (20, 15)
    assert b.corners == [(10, 10), (30, 10), (30, 20), (10, 20)]


# --------------------------------------------------------------------------- set operations


def box(x0: float, y0: float, x1: float, y1: float, space: Space = Space.PAGE) -> BoundingBox:
    return BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1, space=space)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 2, 2), (0, 0, 2, 2), 1.0),
        ((0, 0, 2, 2), (1, 1, 3, 3), 1 / 7),
        ((0, 0, 4, 4), (1, 1, 3, 3), 4 / 16),
        ((0, 0, 2, 2), (2, 0, 4, 2), 0.0),  # touching edges
        ((0, 0, 2, 2), (5, 5, 6, 6), 0.0),  # apart
        ((0, 0, 10, 1), (5, 0, 15, 1), 5 / 15),
        ((1, 1, 1, 1), (1, 1, 1, 1), 0.0),  # two empty boxes
    ],
)
def test_iou(a: tuple[float, ...], b: tuple[float, ...], expected: float) -> None:
    ba, bb = box(*a), box(*b)
    assert ba.iou(bb) == pytest.approx(expected)
    assert bb.iou(ba) == pytest.approx(expected)


def test_intersection_and_union() -> None:
    a, b = box(0, 0, 4, 3), box(2, 1, 6, 5)
    inter = a.intersection(b)
    assert inter is not None
    assert inter.xyxy == (2, 1, 4, 3)
    assert a.union(b).xyxy == (0, 0, 6, 5)
    assert a.intersection(box(10, 10, 11, 11)) is None
    touching = a.intersection(box(4, 0, 5, 3))
    assert touching is not None
    assert touching.xyxy == (4, 0, 4, 3)
    assert touching.area == 0


def test_intersection_keeps_space_and_image_size() -> None:
    size = Size(width=100, height=50)
    a = BoundingBox(x0=0, y0=0, x1=10, y1=10, space=Space.PIXEL, image_size=size)
    b = BoundingBox(x0=5, y0=5, x1=20, y1=20, space=Space.PIXEL, image_size=size)
    inter = a.intersection(b)
    assert inter is not None
    assert (inter.space, inter.image_size) == (Space.PIXEL, size)


def test_contains_and_within() -> None:
    outer = box(0, 0, 10, 10)
    assert outer.contains(box(2, 2, 10, 10))
    assert not outer.contains(box(2, 2, 11, 10))
    assert Point(x=10, y=0).within(outer)
    assert not Point(x=10.01, y=0).within(outer)


def test_clip() -> None:
    assert box(-5, 2, 20, 30).clip(Size(width=10, height=20)).xyxy == (0, 2, 10, 20)
    assert box(-5, 2, 20, 30).clip(box(1, 1, 8, 8)).xyxy == (1, 2, 8, 8)
    assert box(-0.5, 0.2, 1.5, 0.9, Space.NORMALIZED).clip().xyxy == (0, 0.2, 1, 0.9)
    sized = BoundingBox(x0=-3, y0=-3, x1=500, y1=5, space=Space.PIXEL, image_size=Size(width=100, height=50))
    assert sized.clip().xyxy == (0, 0, 100, 5)
    # entirely outside: a zero-area box on the nearest edge
    outside = box(20, 30, 25, 35).clip(Size(width=10, height=20))
    assert outside.xyxy == (10, 20, 10, 20)
    with pytest.raises(UsageError, match="bounds"):
        box(0, 0, 1, 1).clip()
    with pytest.raises(UsageError, match="bounds"):
        box(0, 0, 1, 1, Space.PIXEL).clip()


def test_pad() -> None:
    b = box(10, 10, 20, 14)
    assert b.pad(2).xyxy == (8, 8, 22, 16)
    assert b.pad(2, 0).xyxy == (8, 10, 22, 14)
    assert b.pad(-1).xyxy == (11, 11, 19, 13)
    # shrinking past zero collapses to the centre line instead of inverting
    assert b.pad(-3).xyxy == (13, 12, 17, 12)
    assert b.pad(-100).xyxy == (15, 12, 15, 12)


@pytest.mark.parametrize("op", ["iou", "intersection", "union", "contains", "clip"])
def test_space_mismatch_raises_usage_error(op: str) -> None:
    a = box(0, 0, 1, 1, Space.PAGE)
    b = box(0, 0, 1, 1, Space.PIXEL)
    with pytest.raises(UsageError, match="page and pixel") as info:
        getattr(a, op)(b)
    assert info.value.hint is not None
    assert ".to(space, frame)" in info.value.hint


def test_point_within_space_mismatch() -> None:
    with pytest.raises(UsageError, match="normalized and page"):
        Point(x=0.5, y=0.5, space=Space.NORMALIZED).within(box(0, 0, 1, 1))


# --------------------------------------------------------------------------- polygons and quads


def test_polygon_area_and_bbox() -> None:
    tri = Polygon(points=[(0, 0), (4, 0), (0, 3)])
    assert tri.area == 6
    assert tri.bbox.xyxy == (0, 0, 4, 3)
    # orientation does not change the area
    assert Polygon(points=[(0, 0), (0, 3), (4, 0)]).area == 6


def test_quad() -> None:
    q = Quad(ul=(0, 10), ur=(10, 0), lr=(15, 5), ll=(5, 15))
    assert q.bbox.xyxy == (0, 0, 15, 15)
    assert q.angle == pytest.approx(45)  # rising to the right on screen (y down)
    assert q.to_polygon().points == [(0, 10), (10, 0), (15, 5), (5, 15)]
    assert Quad(ul=(0, 0), ur=(10, 0), lr=(10, 2), ll=(0, 2)).angle == 0


# --------------------------------------------------------------------------- affine


def test_affine_compose_and_invert() -> None:
    m = Affine.scaling(2, 3).then(Affine.translation(5, -1))
    assert m.apply(1, 1) == (7, 2)
    inv = m.inverse()
    assert inv.apply(7, 2) == pytest.approx((1, 1))
    rot = Affine.page_rotation(PAGE, 90)
    both = rot.then(rot.inverse())
    assert [both.a, both.b, both.c, both.d, both.e, both.f] == pytest.approx([1, 0, 0, 1, 0, 0])
    assert Affine.identity().apply(3, 4) == (3, 4)


def test_affine_errors() -> None:
    with pytest.raises(UsageError, match="not invertible"):
        Affine.scaling(0, 1).inverse()
    with pytest.raises(UsageError, match="multiple of 90"):
        Affine.page_rotation(PAGE, 45)


def test_axis_aligned() -> None:
    assert Affine.scaling(2, -1).is_axis_aligned
    assert Affine.page_rotation(PAGE, 90).is_axis_aligned
    assert not Affine(a=1, b=0.5, c=0, d=1).is_axis_aligned


# --------------------------------------------------------------------------- frames


@pytest.mark.parametrize(("rotation", "size"), [(0, (520, 320)), (90, (320, 520)), (180, (520, 320)), (270, (320, 520)), (-90, (320, 520)), (450, (320, 520))])
def test_frame_image_size(rotation: int, size: tuple[int, int]) -> None:
    frame = Frame.for_page(PAGE, scale=2, rotation=rotation)
    assert frame.image_size.width_height == size


@pytest.mark.parametrize(
    ("rotation", "pixel"),
    [(0, (0, 0)), (90, (320, 0)), (180, (520, 320)), (270, (0, 520))],
)
def test_page_origin_lands_on_the_rotated_corner(rotation: int, pixel: tuple[float, float]) -> None:
    """The unrotated page's top-left goes top-right at 90 (clockwise), bottom-right at 180, bottom-left at 270."""
    frame = Frame.for_page(PAGE, scale=2, rotation=rotation)
    p = Point(x=0, y=0).to(Space.PIXEL, frame)
    assert p.xy == approx_seq(pixel)
    assert p.image_size == frame.image_size


def test_rotation_90_matches_pymupdf_worked_example() -> None:
    """A word at unrotated (30, 8.5, 75.56, 35.98) on a 260x160 page rendered at 2x with /Rotate 90.

    PyMuPDF: pixel rect = word * Matrix(0, 1, -1, 0, 160, 0) * 2, i.e. (x, y) -> (2 * (160 - y), 2 * x).
    """
    frame = Frame.for_page(PAGE, scale=2, rotation=90)
    word = BoundingBox(x0=30, y0=8.5, x1=75.56, y1=35.98)
    px = word.to(Space.PIXEL, frame)
    assert px.xyxy == approx_seq((2 * (160 - 35.98), 2 * 30, 2 * (160 - 8.5), 2 * 75.56))
    assert px.image_size == Size(width=320, height=520)
    assert px.to(Space.PAGE, frame).xyxy == approx_seq(word.xyxy)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_frame_matches_pymupdf_rotation_matrix_and_pixmap(rotation: int) -> None:
    pymupdf = pytest.importorskip("pymupdf")
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE.width, height=PAGE.height)
    page.set_rotation(rotation)
    expected = page.rotation_matrix * pymupdf.Matrix(2, 2)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(2, 2))
    doc.close()
    frame = Frame.for_page(PAGE, scale=2, rotation=rotation)
    m = frame.page_to_pixel
    assert [m.a, m.b, m.c, m.d, m.e, m.f] == approx_seq(tuple(expected))
    assert frame.image_size.width_height == (pix.width, pix.height)


def test_frame_with_clip() -> None:
    clip = box(100, 40, 200, 90)
    frame = Frame.for_page(PAGE, scale=3, clip=clip)
    assert frame.image_size.width_height == (300, 150)
    assert clip.to(Space.PIXEL, frame).xyxy == approx_seq((0, 0, 300, 150))
    assert Point(x=150, y=50).to(Space.PIXEL, frame).xy == approx_seq((150, 30))
    # rotated clip: the clip's unrotated top-left is the image's top-right
    rframe = Frame.for_page(PAGE, scale=1, rotation=90, clip=clip)
    assert rframe.image_size.width_height == (50, 100)
    assert Point(x=100, y=40).to(Space.PIXEL, rframe).xy == approx_seq((50, 0))


def test_frame_errors() -> None:
    with pytest.raises(UsageError, match="scale"):
        Frame.for_page(PAGE, scale=0)
    with pytest.raises(UsageError, match="scale"):
        Frame.for_page(PAGE, scale=math.inf)
    with pytest.raises(UsageError, match="page space"):
        Frame.for_page(PAGE, scale=1, clip=box(0, 0, 1, 1, Space.PIXEL))
    with pytest.raises(UsageError, match="multiple of 90"):
        Frame.for_page(PAGE, scale=1, rotation=30)


def test_pixel_to_page_is_the_inverse() -> None:
    frame = Frame.for_page(PAGE, scale=1.5, rotation=270)
    inv = frame.pixel_to_page
    x, y = frame.page_to_pixel.apply(12.5, 99)
    assert inv.apply(x, y) == approx_seq((12.5, 99))


def test_quad_keeps_reading_direction_through_rotation() -> None:
    """Text running left-to-right on the unrotated page runs downwards on screen after /Rotate 90."""
    frame = Frame.for_page(PAGE, scale=1, rotation=90)
    q = Quad(ul=(10, 10), ur=(50, 10), lr=(50, 20), ll=(10, 20))
    px = q.to(Space.PIXEL, frame)
    assert px.angle == pytest.approx(-90)
    assert px.ul == approx_seq((150, 10))
    assert px.to(Space.PAGE, frame) == q


# --------------------------------------------------------------------------- conversion errors


def test_conversions_say_what_is_missing() -> None:
    page_box = box(0, 0, 10, 10)
    with pytest.raises(UsageError, match="needs a Frame") as info:
        page_box.to(Space.PIXEL)
    assert info.value.hint is not None
    with pytest.raises(UsageError, match="needs a Frame"):
        page_box.to(Space.NORMALIZED, Size(width=10, height=10))
    with pytest.raises(UsageError, match="image size"):
        box(0, 0, 10, 10, Space.PIXEL).to(Space.NORMALIZED)
    with pytest.raises(UsageError, match="image size"):
        Point(x=0.5, y=0.5, space=Space.NORMALIZED).to(Space.PIXEL)


def test_pixel_normalized_with_size_or_own_image_size() -> None:
    size = Size(width=200, height=100)
    px = BoundingBox(x0=20, y0=10, x1=100, y1=50, space=Space.PIXEL, image_size=size)
    n = px.to(Space.NORMALIZED)
    assert n.xyxy == approx_seq((0.1, 0.1, 0.5, 0.5))
    assert n.image_size == size
    assert n.to(Space.PIXEL) == px
    assert box(0.25, 0.5, 1, 1, Space.NORMALIZED).to(Space.PIXEL, size).xyxy == (50, 50, 200, 100)
    assert box(0, 0, 1, 1).to(Space.PAGE) == box(0, 0, 1, 1)


def test_pixel_geometry_is_not_relabelled_to_another_image() -> None:
    size = Size(width=100, height=100)
    px = BoundingBox(x0=0, y0=0, x1=50, y1=50, space=Space.PIXEL, image_size=size)
    assert px.to(Space.PIXEL, size) == px
    assert px.to(Space.PIXEL, Frame.for_page(Size(width=50, height=50), scale=2)) == px  # a 100x100 rendering
    with pytest.raises(UsageError, match="100x100 image cannot be moved to a 200x200 image"):
        px.to(Space.PIXEL, Size(width=200, height=200))
    with pytest.raises(UsageError, match="cannot be moved"):
        Point(x=1, y=1, space=Space.PIXEL, image_size=size).to(Space.PIXEL, Size(width=10, height=10))
    # the supported way: through normalized space (the same view, resized)
    assert px.to(Space.NORMALIZED).to(Space.PIXEL, Size(width=200, height=200)).xyxy == (0, 0, 100, 100)
    # without an image size of its own, a pixel box takes the one given
    bare = BoundingBox(x0=0, y0=0, x1=5, y1=5, space=Space.PIXEL)
    assert bare.to(Space.PIXEL, size).image_size == size


def test_to_page_drops_image_size() -> None:
    frame = Frame.for_page(PAGE, scale=2)
    px = box(0, 0, 10, 10).to_pixels(frame)
    assert px.image_size == frame.image_size
    assert px.to_page(frame).image_size is None
    assert px.to_normalized().xyxy == approx_seq((0, 0, 20 / 520, 20 / 320))


# --------------------------------------------------------------------------- round-trip properties

rotations = st.sampled_from([0, 90, 180, 270])
page_sizes = st.builds(
    Size,
    width=st.floats(10, 2000, allow_nan=False, allow_infinity=False),
    height=st.floats(10, 2000, allow_nan=False, allow_infinity=False),
)
scales = st.floats(0.1, 6, allow_nan=False, allow_infinity=False)
unit = st.floats(-0.5, 1.5, allow_nan=False, allow_infinity=False)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    size = draw(page_sizes)
    clip = None
    if draw(st.booleans()):
        fx0, fx1 = sorted((draw(st.floats(0, 1)), draw(st.floats(0, 1))))
        fy0, fy1 = sorted((draw(st.floats(0, 1)), draw(st.floats(0, 1))))
        clip = BoundingBox(
            x0=fx0 * size.width, y0=fy0 * size.height, x1=max(fx1, fx0 + 0.05) * size.width, y1=max(fy1, fy0 + 0.05) * size.height
        )
    return Frame.for_page(size, scale=draw(scales), rotation=draw(rotations), clip=clip)


@st.composite
def page_points(draw: st.DrawFn, frame: Frame, n: int) -> list[tuple[float, float]]:
    w, h = frame.page_size.width_height
    return [(draw(unit) * w, draw(unit) * h) for _ in range(n)]


def close_points(a: list[tuple[float, float]], b: list[tuple[float, float]], scale: float) -> None:
    assert flat(a) == pytest.approx(flat(b), rel=1e-9, abs=1e-9 * scale)


@SETTINGS
@given(data=st.data())
def test_box_round_trips_through_every_space(data: st.DataObject) -> None:
    frame = data.draw(frames())
    (p0, p1) = data.draw(page_points(frame, 2))
    b = BoundingBox.from_corners(*p0, *p1)
    scale = max(frame.page_size.width_height) * 10
    for path in ([Space.PIXEL], [Space.NORMALIZED], [Space.PIXEL, Space.NORMALIZED], [Space.NORMALIZED, Space.PIXEL]):
        cur = b
        for space in path:
            cur = cur.to(space, frame)
            assert cur.space is space
            assert cur.image_size == frame.image_size
        back = cur.to(Space.PAGE, frame)
        assert back.space is Space.PAGE
        assert back.image_size is None
        close_points(back.corners, b.corners, scale)
    # pixel <-> normalized needs only the image size
    px = b.to(Space.PIXEL, frame)
    close_points(px.to(Space.NORMALIZED).to(Space.PIXEL).corners, px.corners, scale)
    # areas scale by scale**2 (rotation by multiples of 90 keeps boxes boxes)
    s = abs(frame.page_to_pixel.determinant)
    assert px.area == pytest.approx(b.area * s, rel=1e-9, abs=1e-6)


@SETTINGS
@given(data=st.data())
def test_point_polygon_quad_round_trip(data: st.DataObject) -> None:
    frame = data.draw(frames())
    pts = data.draw(page_points(frame, 4))
    scale = max(frame.page_size.width_height) * 10
    point = Point(x=pts[0][0], y=pts[0][1], label="sig")
    polygon = Polygon(points=pts)
    quad = Quad(ul=pts[0], ur=pts[1], lr=pts[2], ll=pts[3])
    for space in (Space.PIXEL, Space.NORMALIZED):
        p = point.to(space, frame)
        assert p.label == "sig"
        close_points([p.to(Space.PAGE, frame).xy], [point.xy], scale)
        poly = polygon.to(space, frame)
        assert len(poly.points) == 4
        close_points(poly.to(Space.PAGE, frame).points, polygon.points, scale)
        q = quad.to(space, frame)
        close_points(q.to(Space.PAGE, frame).points, quad.points, scale)
    # every representation maps its points the same way as the frame's affine map
    m = frame.page_to_pixel
    expected = [m.apply(x, y) for x, y in pts]
    close_points(polygon.to(Space.PIXEL, frame).points, expected, scale)
    close_points(quad.to(Space.PIXEL, frame).points, expected, scale)
    close_points([point.to(Space.PIXEL, frame).xy], expected[:1], scale)
    assert polygon.to(Space.PIXEL, frame).area == pytest.approx(polygon.area * abs(m.determinant), rel=1e-6, abs=1e-6)


@SETTINGS
@given(data=st.data())
def test_page_rectangle_fills_the_image(data: st.DataObject) -> None:
    """Without a clip, the whole page maps onto the whole image (up to rounding of the image size)."""
    size = data.draw(page_sizes)
    rotation = data.draw(rotations)
    scale = data.draw(scales)
    frame = Frame.for_page(size, scale=scale, rotation=rotation)
    px = BoundingBox(x0=0, y0=0, x1=size.width, y1=size.height).to(Space.PIXEL, frame)
    w, h = (size.height, size.width) if rotation in (90, 270) else (size.width, size.height)
    assert px.xyxy == pytest.approx((0, 0, w * scale, h * scale), abs=1e-6)
    assert frame.image_size.width_height == (max(1, round(w * scale)), max(1, round(h * scale)))


@SETTINGS
@given(
    size=st.builds(Size, width=st.integers(1, 5000), height=st.integers(1, 5000)),
    xs=st.lists(unit, min_size=2, max_size=2),
    ys=st.lists(unit, min_size=2, max_size=2),
)
def test_normalized_pixel_round_trip(size: Size, xs: list[float], ys: list[float]) -> None:
    n = BoundingBox.from_corners(xs[0], ys[0], xs[1], ys[1], space=Space.NORMALIZED)
    px = n.to(Space.PIXEL, size)
    assert px.image_size == size
    assert px.xyxy == pytest.approx((n.x0 * size.width, n.y0 * size.height, n.x1 * size.width, n.y1 * size.height))
    assert px.to(Space.NORMALIZED).xyxy == pytest.approx(n.xyxy, abs=1e-12)
