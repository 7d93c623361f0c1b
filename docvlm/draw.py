"""``dv.draw``: results drawn on a page or an image, for looking at what a model did."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from docvlm.documents.base import Page, PageImage
from docvlm.errors import UsageError
from docvlm.types.answer import Answer, Citation, FieldEvidence
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import BoundingBox, Frame, Point, Space
from docvlm.types.mask import Mask
from docvlm.types.table import Table
from docvlm.types.text import Word

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["draw"]

ImageT = TypeVar("ImageT", "Image.Image", PageImage)

_PALETTE = [(230, 25, 75), (60, 140, 60), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 160, 160),
            (200, 50, 200), (128, 128, 0)]


def _items(result: Any) -> Iterable[tuple[str | None, Any]]:
    """(label, geometry) pairs of any docvlm result."""
    if isinstance(result, (BoundingBox, Point, Mask)):
        yield None, result
    elif isinstance(result, Detection):
        yield result.label, result.mask if result.mask is not None and result.box.space is not Space.PAGE else result.box
    elif isinstance(result, Detections):
        for d in result:
            yield from _items(d)
    elif isinstance(result, Word):
        yield None, result.box
    elif isinstance(result, Citation):
        yield result.quote[:30] or None, result.box
    elif isinstance(result, Answer):
        for c in result.citations:
            yield from _items(c)
    elif isinstance(result, FieldEvidence):
        if result.box is not None:
            yield result.path, result.box
    elif isinstance(result, Table):
        for cell in result.cells:
            if cell.box is not None:
                yield None, cell.box
    elif hasattr(result, "evidence") and isinstance(result.evidence, dict):  # Extraction
        for ev in result.evidence.values():
            yield from _items(ev)
    elif isinstance(result, Sequence) and not isinstance(result, str):
        for r in result:
            yield from _items(r)
    else:
        raise UsageError(f"cannot draw a {type(result).__name__}",
                         hint="draw boxes, points, masks, detections, tables, answers or extractions")


def draw(image: ImageT | Page, result: Any, *, dpi: float = 100, width: int = 2, labels: bool = True) -> Any:
    """Draw ``result`` (boxes, points, masks, detections, tables, answers, extractions) on an image.

    Args:
        image: a [`PageImage`][docvlm.types.image.PageImage] (page-space geometry is mapped through its frame), a [`Page`][docvlm.documents.base.Page]
            (rendered at ``dpi`` first), or a PIL image (geometry must be in its pixel or normalized space).
        result: what to draw; page-space geometry needs a page or a page image.

    Returns:
        The same kind of image it was given: a new ``PageImage`` (same frame) or a new PIL image; for a
        ``Page``, the rendered ``PageImage``.
    """
    from PIL import Image, ImageDraw

    target: Any = image.render(dpi=dpi) if isinstance(image, Page) else image
    frame: Frame | None = target.frame if isinstance(target, PageImage) else None
    base = target.image if isinstance(target, PageImage) else target
    if not isinstance(base, Image.Image):
        raise UsageError(f"cannot draw on a {type(image).__name__}", hint="pass a Page, a PageImage or a PIL image")
    canvas = base.convert("RGB")
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(canvas)
    fill = ImageDraw.Draw(overlay)
    size = frame.image_size if frame else None
    colors: dict[str | None, tuple[int, int, int]] = {}
    for label, geom in _items(result):
        color: tuple[int, int, int] = colors.setdefault(label, _PALETTE[len(colors) % len(_PALETTE)])
        if isinstance(geom, Mask):
            if geom.size != (canvas.height, canvas.width):
                raise UsageError(f"a {geom.width}x{geom.height} mask cannot be drawn on a {canvas.width}x{canvas.height} image")
            alpha = Image.fromarray(geom.to_array().astype("uint8") * 110)
            fill.bitmap((0, 0), alpha, fill=(*color, 110))
            box = geom.bbox
            if box is None:
                continue
            x0, y0, x1, y1 = box.xyxy
        elif isinstance(geom, Point):
            if geom.space is Space.PAGE and frame is None:
                raise UsageError("page-space geometry needs a Page or PageImage to be drawn on")
            p = geom.to(Space.PIXEL, frame or size or _size(canvas))
            r = 3 + width
            pen.ellipse((p.x - r, p.y - r, p.x + r, p.y + r), outline=color, width=width)
            x0, y0, x1, y1 = p.x, p.y, p.x, p.y
        else:
            if geom.space is Space.PAGE and frame is None:
                raise UsageError("page-space geometry needs a Page or PageImage to be drawn on")
            b = geom.to(Space.PIXEL, frame or _size(canvas))
            x0, y0, x1, y1 = b.xyxy
            pen.rectangle((x0, y0, x1, y1), outline=color, width=width)
        if labels and label:
            pen.text((x0 + 1, max(0, y0 - 11)), label, fill=color)
    canvas = Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")
    if isinstance(target, PageImage):
        return PageImage(target.page_index, target.frame, target.dpi, image=canvas)
    return canvas


def _size(img: Image.Image) -> Any:
    from docvlm.types.geometry import Size

    return Size(width=img.width, height=img.height)
