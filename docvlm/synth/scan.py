"""A scan simulator: a synthetic PDF becomes a slightly rotated, blurred, noisy grey image with the truth moved along.

The page is rendered at ``dpi``, rotated about its centre by a small angle onto a canvas that holds the
whole rotated page, toned (paper and ink grey levels), blurred and given sensor noise. Every truth box is
mapped through the *same* affine transform that rotated the image (page points -> rendered pixels ->
rotated pixels) and replaced by the axis-aligned box enclosing its four mapped corners, so the boxes are
exact up to that enclosure (a rotated word's enclosing box is a little taller than the word).

>>> from docvlm.synth import generate_form, scan
>>> scanned = scan(generate_form(1), seed=1)
>>> page = scanned.open()[0]               # page space of the image: its pixels
>>> page.units, scanned.fields["email"].box.space.value
('px', 'page')
"""

from __future__ import annotations

import io
import math
import random
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from docvlm.errors import UsageError
from docvlm.synth.documents import DocumentKind, FieldTruth, SyntheticDocument, TextBlock
from docvlm.types.geometry import Affine, Size
from docvlm.types.table import Table

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.documents.base import Document

__all__ = ["ScannedDocument", "scan"]

Range = float | tuple[float, float]


class ScannedDocument(BaseModel):
    """A simulated scan of a `SyntheticDocument` and its truth in the image's coordinates.

    Boxes are in the page space of the image document (``docvlm.open(scanned.image_bytes)``), which is the
    image's pixels.

    Attributes:
        kind: the kind of the source document.
        source_seed: the seed of the source document.
        seed: the seed of the scan's randomness.
        image_bytes: the image file (PNG for one page, TIFF for several), with its resolution recorded.
        format: ``"png"`` or ``"tiff"``.
        dpi: resolution of the scan.
        angle: rotation applied, degrees, counter-clockwise as seen on screen.
        noise: standard deviation of the added grey-level noise (0..255 scale).
        blur: radius of the Gaussian blur, pixels.
        image_size: size of the (first) page image in pixels.
        transforms: per page, the affine map from the PDF page's points to the image's pixels.
        fields: the source's fields with boxes mapped into the image.
        tables: the source's tables with cell boxes mapped into the image.
        blocks: the source's text blocks with boxes mapped into the image.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    kind: DocumentKind
    source_seed: int
    seed: int
    image_bytes: bytes = Field(repr=False)
    format: Literal["png", "tiff"]
    dpi: float
    angle: float
    noise: float
    blur: float
    image_size: Size
    transforms: list[Affine]
    fields: dict[str, FieldTruth] = Field(default_factory=dict)
    tables: list[Table] = Field(default_factory=list)
    blocks: list[TextBlock] = Field(default_factory=list)

    def open(self) -> Document:
        """The image opened with [`docvlm.open`][docvlm.documents._open.open_document]."""
        from docvlm.documents import open_document

        return open_document(self.image_bytes)


def _draw(rng: random.Random, value: Range, name: str) -> float:
    if isinstance(value, tuple):
        lo, hi = value
        if lo > hi:
            raise UsageError(f"{name} range must be (low, high), got {value}")
        return rng.uniform(lo, hi)
    return float(value)


def rotation_about_centre(size: Size, angle: float) -> tuple[Affine, Size]:
    """The map rotating an image of ``size`` by ``angle`` degrees (counter-clockwise on screen) about its centre
    onto the smallest canvas holding all of it, and that canvas's size.

    Pixel coordinates are continuous (pixel ``i`` covers ``[i, i + 1)``), as in Pillow's transforms and docvlm's
    frames.
    """
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    w, h = size.width, size.height
    out = Size(width=math.ceil(w * abs(cos) + h * abs(sin) - 1e-9), height=math.ceil(w * abs(sin) + h * abs(cos) - 1e-9))
    m = (
        Affine.translation(-w / 2, -h / 2)
        .then(Affine(a=cos, b=-sin, c=sin, d=cos))
        .then(Affine.translation(out.width / 2, out.height / 2))
    )
    return m, out


def scan(
    document: SyntheticDocument,
    *,
    dpi: float = 150,
    angle: Range = (-1.5, 1.5),
    noise: Range = (2.0, 8.0),
    blur: Range = (0.0, 0.8),
    seed: int | None = None,
    format: Literal["png", "tiff"] | None = None,
) -> ScannedDocument:
    """Simulate scanning ``document``: render, rotate, tone, blur and add noise; map the truth along.

    Args:
        document: the synthetic document.
        dpi: scan resolution.
        angle: rotation in degrees (counter-clockwise on screen), or a ``(low, high)`` range to draw from.
        noise: standard deviation of Gaussian grey-level noise, or a range.
        blur: Gaussian blur radius in pixels, or a range (0 = sharp).
        seed: seed of the scan's randomness; the document's own seed by default.
        format: ``"png"`` (one page only) or ``"tiff"``; by default PNG for one page, TIFF for several.

    Returns:
        The image and the truth in its page space (pixels).

    Raises:
        UsageError: a bad range, a non-positive ``dpi``, or PNG asked for several pages.
    """
    import numpy as np
    from PIL import Image, ImageFilter

    if not (dpi > 0 and math.isfinite(dpi)):
        raise UsageError(f"dpi must be a positive number, got {dpi}")
    scan_seed = document.seed if seed is None else seed
    rng = random.Random(f"scan:{document.kind.value}:{document.seed}:{scan_seed}")
    theta = _draw(rng, angle, "angle")
    sigma = _draw(rng, noise, "noise")
    radius = _draw(rng, blur, "blur")
    if sigma < 0 or radius < 0:
        raise UsageError(f"noise and blur must be >= 0, got {sigma} and {radius}")
    paper, ink = rng.uniform(228, 250), rng.uniform(10, 45)
    noise_rng = np.random.default_rng(rng.getrandbits(64))

    images: list[Image.Image] = []
    transforms: list[Affine] = []
    with document.open() as doc:
        for page in doc:
            rendered = page.render(dpi=dpi)
            gray = rendered.image.convert("L")
            rotate, size = rotation_about_centre(rendered.size, theta)
            if theta != 0:
                inv = rotate.inverse()
                gray = gray.transform(
                    (int(size.width), int(size.height)), Image.Transform.AFFINE,
                    (inv.a, inv.c, inv.e, inv.b, inv.d, inv.f), resample=Image.Resampling.BILINEAR, fillcolor=255,
                )
            if radius > 0:
                gray = gray.filter(ImageFilter.GaussianBlur(radius))
            a = np.asarray(gray, dtype=np.float32)
            a = ink + (paper - ink) * (a / 255.0)
            if sigma > 0:
                a += noise_rng.normal(0.0, sigma, a.shape).astype(np.float32)
            images.append(Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L"))
            transforms.append(rendered.frame.page_to_pixel.then(rotate))

    fmt = format or ("png" if len(images) == 1 else "tiff")
    if fmt == "png" and len(images) > 1:
        raise UsageError(f"PNG holds one page; this document has {len(images)}", hint="use format='tiff'")
    buf = io.BytesIO()
    if fmt == "png":
        images[0].save(buf, format="PNG", dpi=(dpi, dpi), compress_level=1)  # noise compresses badly anyway
    else:
        images[0].save(buf, format="TIFF", dpi=(dpi, dpi), compression="tiff_deflate", save_all=True,
                       append_images=images[1:])

    fields = {k: f.model_copy(update={"box": f.box.transformed(transforms[f.page])}) for k, f in document.fields.items()}
    blocks = [b.model_copy(update={"box": b.box.transformed(transforms[b.page])}) for b in document.blocks]
    tables = []
    for t in document.tables:
        m = transforms[t.page or 0]
        cells = [c if c.box is None else c.model_copy(update={"box": c.box.transformed(m)}) for c in t.cells]
        tables.append(t.model_copy(update={"cells": cells, "box": None if t.box is None else t.box.transformed(m)}))
    return ScannedDocument(
        kind=document.kind, source_seed=document.seed, seed=scan_seed, image_bytes=buf.getvalue(), format=fmt,
        dpi=dpi, angle=theta, noise=sigma, blur=radius,
        image_size=Size(width=images[0].width, height=images[0].height), transforms=transforms,
        fields=fields, tables=tables, blocks=blocks,
    )
