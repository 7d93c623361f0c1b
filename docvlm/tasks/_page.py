"""What every task shares: turning the user's input into a page, a view of it for a model, and model geometry
back into page space."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, TypeAlias, Union

from docvlm.documents.base import DEFAULT_MAX_PIXELS, Document, Page, PageImage
from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox, Size, Space

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.models.base import Model

__all__ = ["PageInput", "as_page", "check_region", "input_size_of", "model_box_to_page", "view"]

#: What tasks accept as "a page": a [`Page`][docvlm.documents.base.Page], a one-page [`Document`][docvlm.documents.base.Document], a PIL image, or a path / bytes of
#: a one-page document.
PageInput: TypeAlias = Union[Page, Document, "Image.Image", str, bytes, "os.PathLike[str]"]

#: Default resolution of the page image a vision model sees (before the model's own processor resizes it).
VISION_DPI = 144.0
#: Default pixel budget of that image: large enough for small print, small enough for a VLM's context.
VISION_MAX_PIXELS = 1_600_000


def as_page(page: PageInput) -> Page:
    """The [`Page`][docvlm.documents.base.Page] behind a task's input.

    Raises:
        UsageError: a multi-page document where one page is needed (pick ``doc[i]``), or an unknown input.
    """
    if isinstance(page, Page):
        return page
    if isinstance(page, Document):
        if len(page) != 1:
            raise UsageError(
                f"this task works on one page and the document has {len(page)}",
                source=page.source, hint="pass doc[i], or use a document-level task (extract, ask)",
            )
        return page[0]
    if isinstance(page, (str, bytes, os.PathLike)):
        from docvlm.documents import open_document

        return as_page(open_document(page))
    from PIL import Image

    if isinstance(page, Image.Image):
        from docvlm.documents.image import ImageDocument

        buf = io.BytesIO()
        page.save(buf, format="PNG")
        return ImageDocument(buf.getvalue(), "<PIL image>")[0]
    raise UsageError(f"cannot use a {type(page).__name__} as a page", hint="pass a docvlm Page, a PIL image or a path")


def check_region(page: Page, region: BoundingBox | None) -> BoundingBox | None:
    """``region`` clipped to the page, or a typed error when it is not in page space or misses the page."""
    if region is None:
        return None
    return page.check_region(region)


def view(page: Page, region: BoundingBox | None = None, *, dpi: float | None = None,
         max_pixels: int = VISION_MAX_PIXELS) -> PageImage:
    """The image a vision model gets: the page (or ``region``) rendered at ``dpi`` within ``max_pixels``.

    Without ``dpi`` the resolution is chosen to fill the budget (capped at 300 dpi), so a zoomed region is
    seen at a higher resolution than the whole page.
    """
    region = check_region(page, region)
    area = (region or page.bbox).area / page.units_per_inch**2
    if dpi is None:
        dpi = min(300.0, (max_pixels / max(area, 1e-9)) ** 0.5 * 0.98)
        return page.crop(region, dpi=dpi, max_pixels=max(max_pixels, DEFAULT_MAX_PIXELS)) if region else page.render(
            dpi=dpi, max_pixels=max(max_pixels, DEFAULT_MAX_PIXELS))
    return page.crop(region, dpi=dpi, max_pixels=max_pixels) if region else page.render(dpi=dpi, max_pixels=max_pixels)


def input_size_of(model: Model, image: PageImage) -> Size:
    """The size the model's processor turns ``image`` into (what pixel-convention families count in)."""
    return model.input_image_size(image.image)


def model_box_to_page(model: Model, values: Any, image: PageImage, *, input_size: Size | None = None) -> BoundingBox:
    """The model family's raw four numbers for ``image`` as a box in page space."""
    pixel = model.profile.to_pixel_box(values, image_size=image.size, input_size=input_size)
    return pixel.to(Space.PAGE, image.frame)
