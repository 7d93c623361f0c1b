"""Geometry with an explicit coordinate space: boxes, points, polygons, quads and the transforms between spaces.

Three spaces, named by [`Space`][docvlm.types.geometry.Space]:

- ``page``: the source's own units. For a PDF these are PDF points (1/72 inch) of the *unrotated* page,
  origin at the top-left of the visible area (CropBox), y pointing down, exactly what PyMuPDF's text
  extraction reports. For an image document they are the image's own pixels; for a web page CSS pixels.
- ``pixel``: pixels of one particular image (a rendering, a crop), whose size the geometry may carry in
  ``image_size``.
- ``normalized``: fractions ``0..1`` of one image's width and height.

Converting between ``page`` and the image spaces needs a [`Frame`][docvlm.types.geometry.Frame], which every rendered
[`PageImage`][docvlm.types.image.PageImage] carries (``page_image.frame``). No arithmetic on bare tuples
crosses a module boundary: conversions are methods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from docvlm.errors import UsageError

__all__ = [
    "Affine",
    "BoundingBox",
    "Frame",
    "Point",
    "Polygon",
    "Quad",
    "Size",
    "Space",
]


class Space(str, Enum):
    """The coordinate space a piece of geometry is expressed in."""

    NORMALIZED = "normalized"
    PIXEL = "pixel"
    PAGE = "page"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Size(_Frozen):
    """Width and height of an image (pixels) or a page (page units)."""

    width: float = Field(gt=0, allow_inf_nan=False)
    height: float = Field(gt=0, allow_inf_nan=False)

    @property
    def width_height(self) -> tuple[float, float]:
        return (self.width, self.height)

    @property
    def area(self) -> float:
        return self.width * self.height


class Affine(_Frozen):
    """A 2-D affine map ``(x, y) -> (a*x + c*y + e, b*x + d*y + f)`` (PyMuPDF's ``Matrix`` convention)."""

    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 1.0
    e: float = 0.0
    f: float = 0.0

    @classmethod
    def identity(cls) -> Affine:
        return cls()

    @classmethod
    def scaling(cls, sx: float, sy: float | None = None) -> Affine:
        return cls(a=sx, d=sx if sy is None else sy)

    @classmethod
    def translation(cls, tx: float, ty: float) -> Affine:
        return cls(e=tx, f=ty)

    @classmethod
    def page_rotation(cls, page_size: Size, rotation: int) -> Affine:
        """The map from an unrotated page to the page as displayed after a clockwise ``rotation``.

        ``rotation`` is one of 0, 90, 180, 270 (PDF ``/Rotate``). The result maps the unrotated page
        rectangle ``[0, w] x [0, h]`` onto the displayed rectangle with its origin at the top-left.
        """
        w, h = page_size.width, page_size.height
        r = rotation % 360
        if r == 0:
            return cls()
        if r == 90:
            return cls(a=0, b=1, c=-1, d=0, e=h, f=0)
        if r == 180:
            return cls(a=-1, b=0, c=0, d=-1, e=w, f=h)
        if r == 270:
            return cls(a=0, b=-1, c=1, d=0, e=0, f=w)
        raise UsageError(f"rotation must be a multiple of 90 degrees, got {rotation}")

    @property
    def determinant(self) -> float:
        return self.a * self.d - self.b * self.c

    def apply(self, x: float, y: float) -> tuple[float, float]:
        return (self.a * x + self.c * y + self.e, self.b * x + self.d * y + self.f)

    def then(self, other: Affine) -> Affine:
        """The map that applies ``self`` first, then ``other``."""
        o = other
        return Affine(
            a=self.a * o.a + self.b * o.c,
            b=self.a * o.b + self.b * o.d,
            c=self.c * o.a + self.d * o.c,
            d=self.c * o.b + self.d * o.d,
            e=self.e * o.a + self.f * o.c + o.e,
            f=self.e * o.b + self.f * o.d + o.f,
        )

    def inverse(self) -> Affine:
        det = self.determinant
        if det == 0 or not math.isfinite(det):
            raise UsageError("this transform is not invertible")
        a, b, c, d = self.d / det, -self.b / det, -self.c / det, self.a / det
        return Affine(a=a, b=b, c=c, d=d, e=-(self.e * a + self.f * c), f=-(self.e * b + self.f * d))

    @property
    def is_axis_aligned(self) -> bool:
        """True when boxes stay boxes: a scale (with flips) possibly swapping the axes."""
        return (self.b == 0 and self.c == 0) or (self.a == 0 and self.d == 0)


class Frame(_Frozen):
    """How a page and one image of it relate: sizes in both spaces and the page-to-pixel transform."""

    page_size: Size
    image_size: Size
    page_to_pixel: Affine

    @property
    def pixel_to_page(self) -> Affine:
        return self.page_to_pixel.inverse()

    @classmethod
    def for_page(
        cls,
        page_size: Size,
        *,
        scale: float,
        rotation: int = 0,
        clip: BoundingBox | None = None,
    ) -> Frame:
        """The frame of a rendering at ``scale`` pixels per page unit of a page displayed at ``rotation``.

        ``clip`` (in page space) restricts the image to a region, as for a zoomed crop.
        """
        if not (scale > 0 and math.isfinite(scale)):
            raise UsageError(f"scale must be a positive finite number, got {scale}")
        rot = Affine.page_rotation(page_size, rotation)
        if clip is None:
            display = BoundingBox(x0=0, y0=0, x1=page_size.width, y1=page_size.height).transformed(rot)
        else:
            if clip.space is not Space.PAGE:
                raise UsageError(f"a clip must be in page space, got {clip.space.value}")
            display = clip.transformed(rot)
        to_pixel = rot.then(Affine.translation(-display.x0, -display.y0)).then(Affine.scaling(scale))
        width = max(1, round(display.width * scale))
        height = max(1, round(display.height * scale))
        return cls(page_size=page_size, image_size=Size(width=width, height=height), page_to_pixel=to_pixel)


def _check_finite(values: Iterable[float]) -> None:
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"coordinates must be finite numbers, got {v}")


def _map_points(
    points: Sequence[tuple[float, float]],
    src: Space,
    dst: Space,
    *,
    frame: Frame | None,
    image_size: Size | None,
) -> list[tuple[float, float]]:
    """Map points from ``src`` to ``dst``; the one place where spaces are converted."""
    if src is dst:
        return list(points)
    img = frame.image_size if frame is not None else image_size

    def need_image() -> Size:
        if img is None:
            raise UsageError(
                f"converting {src.value} to {dst.value} needs the image size",
                hint="pass a Frame (page_image.frame) or set image_size",
            )
        return img

    def need_frame() -> Frame:
        if frame is None:
            raise UsageError(
                f"converting {src.value} to {dst.value} needs a Frame",
                hint="pass page_image.frame or page.frame(dpi=...)",
            )
        return frame

    # bring everything to pixel space first
    if src is Space.NORMALIZED:
        size = need_image()
        pts = [(x * size.width, y * size.height) for x, y in points]
    elif src is Space.PAGE:
        m = need_frame().page_to_pixel
        pts = [m.apply(x, y) for x, y in points]
    else:
        pts = list(points)
    if dst is Space.PIXEL:
        return pts
    if dst is Space.NORMALIZED:
        size = need_image()
        return [(x / size.width, y / size.height) for x, y in pts]
    inv = need_frame().pixel_to_page
    return [inv.apply(x, y) for x, y in pts]


class _Spatial(_Frozen):
    space: Space = Space.PAGE
    image_size: Size | None = Field(
        default=None, description="size of the image that pixel / normalized geometry refers to"
    )

    def _target_image_size(self, dst: Space, frame: Frame | Size | None) -> Size | None:
        if dst is Space.PAGE:
            return None
        if isinstance(frame, Frame):
            size = frame.image_size
        elif isinstance(frame, Size):
            size = frame
        else:
            return self.image_size
        if dst is Space.PIXEL and self.space is Space.PIXEL and self.image_size not in (None, size):
            # pixel -> pixel maps nothing, so a new size would only relabel the coordinates
            raise UsageError(
                f"geometry in pixels of a {self.image_size.width:g}x{self.image_size.height:g} image cannot be "
                f"moved to a {size.width:g}x{size.height:g} image",
                hint="go through normalized space (same view, resized) or page space (with each image's Frame)",
            )
        return size

    @staticmethod
    def _split(frame: Frame | Size | None) -> tuple[Frame | None, Size | None]:
        if isinstance(frame, Frame):
            return frame, None
        return None, frame

    def _check_same_space(self, other: _Spatial, what: str) -> None:
        if self.space is not other.space:
            raise UsageError(
                f"cannot take the {what} of geometry in {self.space.value} and {other.space.value} space",
                hint="convert one with .to(space, frame) first",
            )


class Point(_Spatial):
    """A point, e.g. the answer to "point at the signature"."""

    x: float
    y: float
    label: str | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _check_finite((self.x, self.y))
        return self

    @property
    def xy(self) -> tuple[float, float]:
        return (self.x, self.y)

    def to(self, space: Space | str, frame: Frame | Size | None = None) -> Point:
        """This point in ``space``; ``frame`` is a [`Frame`][docvlm.types.geometry.Frame] (needed for page space) or an image [`Size`][docvlm.types.geometry.Size]."""
        dst = Space(space)
        fr, size = self._split(frame)
        ((x, y),) = _map_points([self.xy], self.space, dst, frame=fr, image_size=size or self.image_size)
        return self.model_copy(update={"x": x, "y": y, "space": dst, "image_size": self._target_image_size(dst, frame)})

    def within(self, box: BoundingBox) -> bool:
        self._check_same_space(box, "containment")
        return box.x0 <= self.x <= box.x1 and box.y0 <= self.y <= box.y1


class BoundingBox(_Spatial):
    """An axis-aligned box ``x0 <= x1``, ``y0 <= y1`` in an explicit [`Space`][docvlm.types.geometry.Space].

    >>> b = BoundingBox(x0=10, y0=10, x1=30, y1=20)
    >>> b.area, b.width_height
    (200.0, (20.0, 10.0))
    """

    x0: float
    y0: float
    x1: float
    y1: float

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _check_finite((self.x0, self.y0, self.x1, self.y1))
        if self.x0 > self.x1 or self.y0 > self.y1:
            raise ValueError(
                f"a box needs x0 <= x1 and y0 <= y1, got ({self.x0}, {self.y0}, {self.x1}, {self.y1}); "
                "use BoundingBox.from_corners to accept corners in any order"
            )
        return self

    # constructors
    @classmethod
    def from_xyxy(cls, xyxy: Sequence[float], space: Space | str = Space.PAGE, image_size: Size | None = None) -> BoundingBox:
        x0, y0, x1, y1 = (float(v) for v in xyxy)
        return cls(x0=x0, y0=y0, x1=x1, y1=y1, space=Space(space), image_size=image_size)

    @classmethod
    def from_xywh(cls, xywh: Sequence[float], space: Space | str = Space.PAGE, image_size: Size | None = None) -> BoundingBox:
        x, y, w, h = (float(v) for v in xywh)
        return cls(x0=x, y0=y, x1=x + w, y1=y + h, space=Space(space), image_size=image_size)

    @classmethod
    def from_corners(
        cls, x0: float, y0: float, x1: float, y1: float, space: Space | str = Space.PAGE, image_size: Size | None = None
    ) -> BoundingBox:
        """A box from two opposite corners given in any order (swapped corners are common in model output)."""
        return cls(
            x0=min(x0, x1), y0=min(y0, y1), x1=max(x0, x1), y1=max(y0, y1), space=Space(space), image_size=image_size
        )

    @classmethod
    def enclosing(cls, points: Iterable[tuple[float, float]], space: Space | str = Space.PAGE, image_size: Size | None = None) -> BoundingBox:
        pts = list(points)
        if not pts:
            raise UsageError("cannot enclose zero points")
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        return cls(x0=min(xs), y0=min(ys), x1=max(xs), y1=max(ys), space=Space(space), image_size=image_size)

    # views
    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.width, self.height)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def width_height(self) -> tuple[float, float]:
        return (self.width, self.height)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    @property
    def corners(self) -> list[tuple[float, float]]:
        return [(self.x0, self.y0), (self.x1, self.y0), (self.x1, self.y1), (self.x0, self.y1)]

    # set operations
    def intersection(self, other: BoundingBox) -> BoundingBox | None:
        """The overlap of two boxes, or ``None`` when they do not overlap (touching edges give a zero-area box)."""
        self._check_same_space(other, "intersection")
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        if x0 > x1 or y0 > y1:
            return None
        return self.model_copy(update={"x0": x0, "y0": y0, "x1": x1, "y1": y1})

    def union(self, other: BoundingBox) -> BoundingBox:
        """The smallest box containing both boxes."""
        self._check_same_space(other, "union")
        return self.model_copy(
            update={
                "x0": min(self.x0, other.x0),
                "y0": min(self.y0, other.y0),
                "x1": max(self.x1, other.x1),
                "y1": max(self.y1, other.y1),
            }
        )

    def iou(self, other: BoundingBox) -> float:
        """Intersection over union in ``[0, 1]``; 0 for two empty boxes."""
        inter = self.intersection(other)
        if inter is None:
            return 0.0
        union = self.area + other.area - inter.area
        return inter.area / union if union > 0 else 0.0

    def contains(self, other: BoundingBox) -> bool:
        self._check_same_space(other, "containment")
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1

    def clip(self, bounds: BoundingBox | Size | None = None) -> BoundingBox:
        """Clip to ``bounds``: a box, a size (``[0, w] x [0, h]``), or by default the image / unit square.

        A box entirely outside ends as a zero-area box on the nearest edge.
        """
        if isinstance(bounds, BoundingBox):
            self._check_same_space(bounds, "clip")
            bx0, by0, bx1, by1 = bounds.xyxy
        else:
            size = bounds
            if size is None:
                if self.space is Space.NORMALIZED:
                    size = Size(width=1, height=1)
                elif self.space is Space.PIXEL and self.image_size is not None:
                    size = self.image_size
                else:
                    raise UsageError("clip needs bounds for a page-space box or a pixel box without image_size")
            bx0, by0, bx1, by1 = 0.0, 0.0, size.width, size.height

        def c(v: float, lo: float, hi: float) -> float:
            return min(max(v, lo), hi)

        return self.model_copy(
            update={"x0": c(self.x0, bx0, bx1), "y0": c(self.y0, by0, by1), "x1": c(self.x1, bx0, bx1), "y1": c(self.y1, by0, by1)}
        )

    def pad(self, dx: float, dy: float | None = None) -> BoundingBox:
        """Grow by ``dx`` left and right and ``dy`` (default ``dx``) top and bottom; negative values shrink.

        Shrinking past zero size collapses to the centre line instead of inverting the box.
        """
        dy = dx if dy is None else dy
        cx, cy = self.center
        x0, x1 = self.x0 - dx, self.x1 + dx
        y0, y1 = self.y0 - dy, self.y1 + dy
        if x0 > x1:
            x0 = x1 = cx
        if y0 > y1:
            y0 = y1 = cy
        return self.model_copy(update={"x0": x0, "y0": y0, "x1": x1, "y1": y1})

    def transformed(self, m: Affine) -> BoundingBox:
        """The box enclosing this box's corners mapped by ``m`` (exact when ``m`` is axis-aligned); same space label."""
        return BoundingBox.enclosing((m.apply(x, y) for x, y in self.corners), self.space, self.image_size)

    def to(self, space: Space | str, frame: Frame | Size | None = None) -> BoundingBox:
        """This box in ``space``.

        ``frame`` is the [`Frame`][docvlm.types.geometry.Frame] of the image involved (``page_image.frame``), required whenever page
        space is on either side; between pixel and normalized space an image [`Size`][docvlm.types.geometry.Size] is enough
        (or the box's own ``image_size``).
        """
        dst = Space(space)
        fr, size = self._split(frame)
        pts = _map_points(self.corners, self.space, dst, frame=fr, image_size=size or self.image_size)
        return BoundingBox.enclosing(pts, dst, self._target_image_size(dst, frame))

    def to_pixels(self, frame: Frame) -> BoundingBox:
        return self.to(Space.PIXEL, frame)

    def to_page(self, frame: Frame) -> BoundingBox:
        return self.to(Space.PAGE, frame)

    def to_normalized(self, frame: Frame | Size | None = None) -> BoundingBox:
        return self.to(Space.NORMALIZED, frame)

    def __rich_repr__(self) -> Iterable[Any]:
        yield "xyxy", tuple(round(v, 2) for v in self.xyxy)
        yield "space", self.space.value


class Polygon(_Spatial):
    """A simple polygon (e.g. a segmentation outline), vertices in order."""

    points: list[tuple[float, float]] = Field(min_length=3)

    @field_validator("points")
    @classmethod
    def _finite(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        _check_finite(v for p in pts for v in p)
        return pts

    @property
    def bbox(self) -> BoundingBox:
        return BoundingBox.enclosing(self.points, self.space, self.image_size)

    @property
    def area(self) -> float:
        """Area by the shoelace formula (absolute value)."""
        s = 0.0
        n = len(self.points)
        for i in range(n):
            x0, y0 = self.points[i]
            x1, y1 = self.points[(i + 1) % n]
            s += x0 * y1 - x1 * y0
        return abs(s) / 2

    def to(self, space: Space | str, frame: Frame | Size | None = None) -> Polygon:
        dst = Space(space)
        fr, size = self._split(frame)
        pts = _map_points(self.points, self.space, dst, frame=fr, image_size=size or self.image_size)
        return self.model_copy(update={"points": pts, "space": dst, "image_size": self._target_image_size(dst, frame)})


class Quad(_Spatial):
    """Four corners of a possibly rotated rectangle, e.g. a line of rotated text.

    Corners are named as seen in the text's own reading direction: upper-left, upper-right,
    lower-right, lower-left.
    """

    ul: tuple[float, float]
    ur: tuple[float, float]
    lr: tuple[float, float]
    ll: tuple[float, float]

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _check_finite(v for p in self.points for v in p)
        return self

    @property
    def points(self) -> list[tuple[float, float]]:
        return [self.ul, self.ur, self.lr, self.ll]

    @property
    def bbox(self) -> BoundingBox:
        return BoundingBox.enclosing(self.points, self.space, self.image_size)

    @property
    def angle(self) -> float:
        """Direction of the top edge in degrees, counter-clockwise from the x axis as seen on screen (y down)."""
        (x0, y0), (x1, y1) = self.ul, self.ur
        return math.degrees(math.atan2(-(y1 - y0), x1 - x0))

    def to_polygon(self) -> Polygon:
        return Polygon(points=self.points, space=self.space, image_size=self.image_size)

    def to(self, space: Space | str, frame: Frame | Size | None = None) -> Quad:
        dst = Space(space)
        fr, size = self._split(frame)
        ul, ur, lr, ll = _map_points(self.points, self.space, dst, frame=fr, image_size=size or self.image_size)
        return self.model_copy(
            update={"ul": ul, "ur": ur, "lr": lr, "ll": ll, "space": dst, "image_size": self._target_image_size(dst, frame)}
        )
