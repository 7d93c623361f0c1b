"""The pixel budget of a rendering: how many pixels a region takes at a scale, and the largest scale that fits."""

from __future__ import annotations

import math

from docvlm.types.geometry import BoundingBox

__all__ = ["DEFAULT_MAX_PIXELS", "fit_scale", "pixels_at"]

#: Default pixel budget of one rendering (about 6,300 x 6,300 pixels, 120 MB as RGB); the value in force is
#: [`ResourceLimits.max_render_pixels`][docvlm.limits.ResourceLimits].
DEFAULT_MAX_PIXELS = 40_000_000


def pixels_at(region: BoundingBox, scale: float) -> float:
    """An upper bound of the pixels of ``region`` rendered at ``scale`` (one extra pixel per side for rounding)."""
    return (region.width * scale + 2) * (region.height * scale + 2)


def fit_scale(region: BoundingBox, max_pixels: int) -> float:
    """The largest scale whose rendering of ``region`` stays within ``max_pixels`` by `pixels_at`."""
    a = region.width * region.height
    b = 2 * (region.width + region.height)
    c = 4 - max_pixels
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) * 0.999
