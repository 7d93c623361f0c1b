"""Binary segmentation masks stored as COCO run-length encoding (RLE).

A [`Mask`][docvlm.types.mask.Mask] is always in the pixel space of one image of ``size = (height, width)``; pixel
``(row, col)`` covers the square ``[col, col + 1] x [row, row + 1]`` of that space, the same continuous
convention [`BoundingBox`][docvlm.types.geometry.BoundingBox] uses (a box ``(0, 0, width, height)`` is the whole image).

The encoding is exactly the one of ``pycocotools``: ``counts`` are run lengths over the pixels in
column-major (Fortran) order, starting with a run of zeros (which may be empty). The compressed string
form of COCO annotation files is read and written without pycocotools.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox, Polygon, Size, Space

__all__ = ["Mask"]


def counts_to_string(counts: Sequence[int]) -> str:
    """Compress RLE counts to COCO's string form (pycocotools ``rleToString``).

    Each count (from the fourth on, the difference to the count two places back) is written as a
    little-endian sequence of 5-bit groups, 6 bits per character offset by 48 (``'0'``): bit 5 says
    "more groups follow", bit 4 of the last group is the sign.
    """
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count)
        if i > 2:  # sic: pycocotools starts delta coding at index 3, not 2
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as in C on a signed long
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(s: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools ``rleFrString``) to run lengths.

    Raises:
        ValueError: a character outside ``'0'..'o'`` or a string cut off in the middle of a count.
    """
    text = s.decode("ascii") if isinstance(s, bytes) else s
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("compressed RLE string ends in the middle of a count")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid character {text[p]!r} at {p} in a compressed RLE string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _canonical(counts: Iterable[int]) -> list[int]:
    """Merge runs split by empty runs and drop trailing empty runs; keeps the leading zero-run rule."""
    out: list[int] = []
    for i, c in enumerate(counts):
        if c < 0:
            raise ValueError(f"RLE counts must be >= 0, got {c} at index {i}")
        if c == 0:
            continue
        value = i % 2
        if not out:
            out = [0, c] if value == 1 else [c]
        elif (len(out) - 1) % 2 == value:
            out[-1] += c
        else:
            out.append(c)
    return out


def _encode(array: npt.NDArray[np.bool_]) -> list[int]:
    flat = array.ravel(order="F")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size])))
    counts: list[int] = runs.tolist()
    return [0, *counts] if flat[0] else counts


def _rasterize(points: npt.NDArray[np.float64], height: int, width: int) -> npt.NDArray[np.bool_]:
    """Pixels whose centre lies inside the polygon (even-odd rule, half-open edges).

    Pixel ``(r, c)`` has its centre at ``(c + 0.5, r + 0.5)``. A crossing of the scanline through the
    centres of row ``r`` at ``x`` toggles every pixel whose centre is at or right of ``x``.
    """
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    sloped = y0 != y1
    x0, y0, x1, y1 = x0[sloped], y0[sloped], x1[sloped], y1[sloped]
    # rows whose centre line y = r + 0.5 satisfies min(y0, y1) <= y < max(y0, y1)
    first = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, height).astype(np.int64)
    stop = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, height).astype(np.int64)
    n_rows = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(n_rows.size), n_rows)
    rows = first[edge] + np.arange(edge.size) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    yc = rows + 0.5
    xc = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    cols = np.clip(np.ceil(xc - 0.5), 0, width).astype(np.int64)
    toggles = np.zeros((height, width + 1), dtype=np.uint8)
    np.add.at(toggles, (rows, cols), 1)  # uint8 wraps, parity is what counts
    inside: npt.NDArray[np.bool_] = (np.cumsum(toggles[:, :width], axis=1, dtype=np.uint8) & 1).astype(bool)
    return inside


class Mask(BaseModel):
    """A binary mask over an image, run-length encoded exactly like COCO / pycocotools.

    Build one with [`from_array`][docvlm.types.mask.Mask.from_array], [`from_polygon`][docvlm.types.mask.Mask.from_polygon] or [`from_coco`][docvlm.types.mask.Mask.from_coco]; constructing
    ``Mask(size=..., counts=...)`` directly also accepts a compressed COCO string as ``counts``.
    Counts are stored canonically (no empty runs except a leading zero-run), so two masks with the
    same pixels compare equal.

    >>> import numpy as np
    >>> m = Mask.from_array(np.array([[0, 1], [1, 1]], dtype=bool))
    >>> m.counts, m.area, m.to_coco()
    ([1, 3], 3, {'size': [2, 2], 'counts': '13'})

    Attributes:
        size: ``(height, width)`` of the image, in COCO's order.
        counts: uncompressed run lengths, column-major, starting with a (possibly empty) run of zeros.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: tuple[int, int] = Field(description="(height, width) of the image, COCO order")
    counts: list[int] = Field(description="run lengths in column-major order, starting with a run of zeros")

    @model_validator(mode="before")
    @classmethod
    def _decode_string_counts(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("counts"), str | bytes):
            return {**data, "counts": string_to_counts(data["counts"])}
        return data

    @field_validator("size")
    @classmethod
    def _positive_size(cls, size: tuple[int, int]) -> tuple[int, int]:
        if size[0] < 1 or size[1] < 1:
            raise ValueError(f"a mask needs height and width >= 1, got size={list(size)}")
        return size

    @field_validator("counts")
    @classmethod
    def _canonical_counts(cls, counts: list[int]) -> list[int]:
        return _canonical(counts)

    @model_validator(mode="after")
    def _counts_cover_image(self) -> Self:
        total = sum(self.counts)
        h, w = self.size
        if total != h * w:
            raise ValueError(f"RLE counts add up to {total} pixels but size {h}x{w} has {h * w}")
        return self

    # constructors
    @classmethod
    def from_array(cls, array: npt.ArrayLike) -> Mask:
        """A mask from a 2-D ``height x width`` array; nonzero (``True``) pixels are foreground.

        Raises:
            UsageError: the array is not 2-D or has an empty side.
        """
        arr = np.asarray(array)
        if arr.ndim != 2 or 0 in arr.shape:
            raise UsageError(
                f"a mask array must be 2-D (height x width) and non-empty, got shape {arr.shape}",
                hint="squeeze or select the channel first, e.g. array[..., 0]",
            )
        flags = arr if arr.dtype == np.bool_ else arr != 0
        return cls(size=(int(arr.shape[0]), int(arr.shape[1])), counts=_encode(flags))

    @classmethod
    def from_polygon(cls, polygon: Polygon | Sequence[tuple[float, float]], height: int, width: int) -> Mask:
        """Rasterize a polygon onto a ``height x width`` image.

        A pixel is foreground when its centre lies inside the polygon (even-odd rule; a centre on a
        left or top edge is inside, on a right or bottom edge outside), so a rectangle with corners
        on pixel edges fills exactly its area: ``(10, 10)-(20, 20)`` gives 100 pixels. Parts outside
        the image are cut off.

        Args:
            polygon: a [`Polygon`][docvlm.types.geometry.Polygon] in pixel or normalized space (normalized coordinates are scaled
                by ``width`` and ``height``), or ``(x, y)`` vertices in pixels.
            height: image height in pixels.
            width: image width in pixels.

        Raises:
            UsageError: a non-positive size, or a polygon in page space (convert it with
                ``polygon.to("pixel", frame)`` first).
        """
        return cls.from_polygons([polygon], height, width)

    @classmethod
    def from_polygons(
        cls, polygons: Iterable[Polygon | Sequence[tuple[float, float]]], height: int, width: int
    ) -> Mask:
        """The union of several polygons rasterized as in [`from_polygon`][docvlm.types.mask.Mask.from_polygon] (e.g. a COCO segmentation list)."""
        try:
            h, w = operator.index(height), operator.index(width)
        except TypeError:
            h = w = 0
        if h < 1 or w < 1:
            raise UsageError(f"a mask needs integer height and width >= 1, got height={height!r}, width={width!r}")
        height, width = h, w
        size = Size(width=width, height=height)
        out = np.zeros((height, width), dtype=bool)
        for item in polygons:
            poly = item if isinstance(item, Polygon) else Polygon(points=list(item), space=Space.PIXEL, image_size=size)
            if poly.space is Space.PAGE:
                raise UsageError(
                    "cannot rasterize a page-space polygon without knowing the image",
                    hint="convert it first with polygon.to('pixel', page_image.frame)",
                )
            if poly.space is Space.PIXEL and poly.image_size is not None and poly.image_size != size:
                raise UsageError(
                    f"a polygon in pixels of a {poly.image_size.width:g}x{poly.image_size.height:g} image "
                    f"cannot be drawn on a {width}x{height} mask",
                    hint="pass the polygon's own image size, or rescale it via normalized space",
                )
            pixel = poly.to(Space.PIXEL, size)
            out |= _rasterize(np.asarray(pixel.points, dtype=np.float64), height, width)
        return cls.from_array(out)

    @classmethod
    def from_coco(cls, rle: Mapping[str, Any]) -> Mask:
        """A mask from a COCO RLE dict ``{"size": [h, w], "counts": ...}``.

        ``counts`` may be a list of run lengths (uncompressed RLE, as in ``iscrowd`` annotations) or
        the compressed string (``str`` or ``bytes``, as pycocotools' ``encode`` returns).

        Raises:
            pydantic.ValidationError: missing keys, a malformed string, or counts that do not add up
                to ``h * w``.
        """
        return cls.model_validate(dict(rle))

    @classmethod
    def empty(cls, height: int, width: int) -> Mask:
        """An all-background mask."""
        return cls(size=(height, width), counts=[height * width])

    # views
    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self.size[0]

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self.size[1]

    @property
    def image_size(self) -> Size:
        """The image size as a [`Size`][docvlm.types.geometry.Size] (width, height)."""
        return Size(width=self.width, height=self.height)

    @property
    def area(self) -> int:
        """Number of foreground pixels."""
        return sum(self.counts[1::2])

    @property
    def is_empty(self) -> bool:
        """True when no pixel is set."""
        return self.area == 0

    @property
    def bbox(self) -> BoundingBox | None:
        """The tightest pixel-space box around the foreground, or ``None`` for an empty mask.

        Edges lie on pixel boundaries: a single pixel at ``(row=2, col=3)`` gives ``(3, 2, 4, 3)``,
        the same numbers as COCO's ``[x, y, w, h] = [3, 2, 1, 1]``.
        """
        if self.is_empty:
            return None
        arr = self.to_array()
        rows = np.flatnonzero(arr.any(axis=1))
        cols = np.flatnonzero(arr.any(axis=0))
        return BoundingBox(
            x0=int(cols[0]),
            y0=int(rows[0]),
            x1=int(cols[-1]) + 1,
            y1=int(rows[-1]) + 1,
            space=Space.PIXEL,
            image_size=self.image_size,
        )

    # exporters
    def to_array(self) -> npt.NDArray[np.bool_]:
        """The mask as a boolean ``height x width`` array."""
        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        flat = np.repeat(values, self.counts)
        out: npt.NDArray[np.bool_] = flat.reshape(self.size, order="F")
        return out

    def to_coco(self, compressed: bool = True) -> dict[str, Any]:
        """The COCO RLE dict: ``{"size": [h, w], "counts": str}`` or, uncompressed, ``counts`` as a list.

        The compressed string is what pycocotools' ``encode`` returns, decoded to ``str`` so that it
        can go straight into JSON.
        """
        counts: str | list[int] = counts_to_string(self.counts) if compressed else list(self.counts)
        return {"size": [self.height, self.width], "counts": counts}

    def to_polygons(self) -> list[Polygon]:
        """Outlines of the connected foreground regions (8-connectivity), largest area first.

        Vertices lie on pixel corners, tracing the outer boundary of the foreground pixels, so a
        polygon's area equals its region's pixel count and [`from_polygons`][docvlm.types.mask.Mask.from_polygons] of the result gives
        the mask back with holes filled in (holes are not reported). Regions that touch only at a
        corner come back as one outline that touches itself there.
        """
        import cv2

        if self.is_empty:
            return []
        # Trace the mask upsampled 2x: every foreground pixel becomes a 2x2 block, so left / top
        # boundary pixels sit at even indices and right / bottom ones at odd indices, and
        # ceil(index / 2) puts each traced vertex on the pixel corner it belongs to.
        big = np.kron(self.to_array(), np.ones((2, 2), dtype=bool)).astype(np.uint8)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        size = self.image_size
        polygons: list[Polygon] = []
        for contour in contours:
            pts = (contour.reshape(-1, 2).astype(np.int64) + 1) // 2
            keep = np.any(pts != np.roll(pts, 1, axis=0), axis=1)
            corners = [(float(x), float(y)) for x, y in pts[keep]] if keep.any() else []
            if len(corners) >= 3:
                polygons.append(Polygon(points=corners, space=Space.PIXEL, image_size=size))
        polygons.sort(key=lambda p: -p.area)
        return polygons

    # comparisons and set operations
    def _check_same_size(self, other: Mask, what: str) -> None:
        if not isinstance(other, Mask):
            raise UsageError(f"the {what} of a Mask needs another Mask, got {type(other).__name__}")
        if self.size != other.size:
            raise UsageError(
                f"cannot take the {what} of masks of different sizes {list(self.size)} and {list(other.size)}",
                hint="both masks must be over the same image (size is [height, width])",
            )

    def iou(self, other: Mask) -> float:
        """Intersection over union of the foregrounds in ``[0, 1]``; 0 when both masks are empty.

        Raises:
            UsageError: the masks have different sizes.
        """
        self._check_same_size(other, "IoU")
        a, b = self.to_array(), other.to_array()
        union = int(np.count_nonzero(a | b))
        return int(np.count_nonzero(a & b)) / union if union else 0.0

    def __and__(self, other: Mask) -> Mask:
        self._check_same_size(other, "intersection")
        return Mask.from_array(self.to_array() & other.to_array())

    def __or__(self, other: Mask) -> Mask:
        self._check_same_size(other, "union")
        return Mask.from_array(self.to_array() | other.to_array())

    def __invert__(self) -> Mask:
        return Mask.from_array(~self.to_array())

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        yield "size", self.size
        yield "area", self.area
