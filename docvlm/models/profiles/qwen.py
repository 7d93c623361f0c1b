"""The Qwen-VL families: Qwen2-VL (box tokens, 0..1000), Qwen2.5-VL (JSON, pixels of the resized input) and
Qwen3-VL (JSON, 0..1000).

In tasks all three answer in the JSON dialect of [`FamilyProfile`][docvlm.models.profiles.FamilyProfile] under a
constraint; what differs is the convention of the numbers, and Qwen2-VL's native box tokens when formatting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from docvlm.errors import UsageError
from docvlm.models.profiles._base import BoxConvention, FamilyProfile
from docvlm.models.profiles._scan import fmt_number
from docvlm.types.geometry import BoundingBox, Size

__all__ = ["QWEN2_5_VL", "QWEN2_VL", "QWEN3_VL", "Qwen2VLProfile", "Qwen25VLProfile", "smart_resize"]


def smart_resize(size: Size, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280) -> Size:
    """The size Qwen2-VL's image processor resizes an image of ``size`` to.

    A re-implementation of ``transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize``
    (defaults of ``Qwen2VLImageProcessor``, which Qwen2.5-VL uses): both sides multiples of ``factor``,
    the area within ``[min_pixels, max_pixels]``, the aspect ratio kept as closely as possible.

    Args:
        size: the original image size.
        factor: patch size times merge size (28 for Qwen2/2.5-VL).
        min_pixels: the smallest area.
        max_pixels: the largest area.

    Returns:
        The resized size.

    Raises:
        UsageError: an aspect ratio above 200, which the processor rejects too.
    """
    height, width = size.height, size.width
    if max(height, width) / min(height, width) > 200:
        raise UsageError(f"Qwen-VL processors reject an aspect ratio above 200, got {size.width:g}x{size.height:g}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return Size(width=w_bar, height=h_bar)



@dataclass(frozen=True)
class Qwen2VLProfile(FamilyProfile):
    """Qwen2-VL: ``<|object_ref_start|>label<|object_ref_end|><|box_start|>(x0,y0),(x1,y1)<|box_end|>``, 0..1000."""

    def format_boxes(self, items: Iterable[tuple[str | None, BoundingBox]], *, input_size: Size | None = None) -> str:
        """Qwen2-VL's grounding tokens for each box (see [`FamilyProfile.format_boxes`][docvlm.models.profiles.FamilyProfile.format_boxes])."""
        parts = []
        for label, box in items:
            x0, y0, x1, y1 = (fmt_number(v) for v in self.encode_box(box, input_size=input_size))
            ref = f"<|object_ref_start|>{label}<|object_ref_end|>" if label is not None else ""
            parts.append(f"{ref}<|box_start|>({x0},{y0}),({x1},{y1})<|box_end|>")
        return "\n".join(parts)


@dataclass(frozen=True)
class Qwen25VLProfile(FamilyProfile):
    """Qwen2.5-VL: JSON ``bbox_2d`` in absolute pixels of the ``smart_resize``-d input image.

    Attributes:
        resize_factor: both input sides are multiples of this (patch 14 x merge 2).
        min_pixels: the processor's smallest input area (``size["shortest_edge"]``).
        max_pixels: the processor's largest input area (``size["longest_edge"]``).
    """

    resize_factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    def default_input_size(self, image_size: Size) -> Size:
        """[`smart_resize`][docvlm.models.profiles.smart_resize] with the processor defaults; pass ``input_size`` when the processor differs."""
        return smart_resize(image_size, factor=self.resize_factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)


QWEN2_VL = Qwen2VLProfile(
    "qwen2_vl",
    model_types=("qwen2_vl",),
    box_convention=BoxConvention.REL_1000,
    supports_grounding=True,
    notes="<|object_ref_start|>label<|object_ref_end|><|box_start|>(x0,y0),(x1,y1)<|box_end|>, integers 0..1000.",
)

QWEN2_5_VL = Qwen25VLProfile(
    "qwen2_5_vl",
    model_types=("qwen2_5_vl",),
    box_convention=BoxConvention.INPUT_PIXELS,
    supports_grounding=True,
    box_key="bbox_2d",
    point_key="point_2d",
    json_fence=True,
    notes="JSON bbox_2d / point_2d in absolute pixels of the smart_resize-d input (multiples of 28).",
)

QWEN3_VL = FamilyProfile(
    "qwen3_vl",
    model_types=("qwen3_vl", "qwen3_vl_moe"),
    box_convention=BoxConvention.REL_1000,
    supports_grounding=True,
    box_key="bbox_2d",
    point_key="point_2d",
    json_fence=True,
    notes="JSON bbox_2d / point_2d, integers 0..1000 relative to the image.",
)
