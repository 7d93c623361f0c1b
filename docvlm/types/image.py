"""An image with the exact transform to the page it shows: what renderings are and what models see."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from docvlm.errors import UsageError
from docvlm.types.geometry import BoundingBox, Frame, Size, Space

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["PageImage"]


class PageImage:
    """A rendering of a page (or of a region of it) and the exact transform between page and pixels.

    Attributes:
        page_index: 0-based index of the page rendered.
        frame: the [`Frame`][docvlm.types.geometry.Frame] that converts geometry between page and pixel space.
        dpi: pixels per inch of the rendering.
    """

    def __init__(self, page_index: int, frame: Frame, dpi: float, image: Image.Image | None = None,
                 raw: tuple[bytes, int, int] | None = None) -> None:
        if image is None and raw is None:
            raise UsageError("a PageImage needs an image")
        self.page_index = page_index
        self.frame = frame
        self.dpi = dpi
        self._image = image
        self._raw = raw

    @property
    def image(self) -> Image.Image:
        """The rendering as an RGB PIL image (decoded on first access)."""
        if self._image is None:
            from PIL import Image

            assert self._raw is not None
            data, width, height = self._raw
            self._image = Image.frombytes("RGB", (width, height), data)
            self._raw = None
        return self._image

    @property
    def width(self) -> int:
        return int(self.frame.image_size.width)

    @property
    def height(self) -> int:
        return int(self.frame.image_size.height)

    @property
    def size(self) -> Size:
        return self.frame.image_size

    def to_pixels(self, box: BoundingBox) -> BoundingBox:
        """``box`` (any space) in this image's pixels."""
        return box.to(Space.PIXEL, self.frame)

    def to_page(self, box: BoundingBox) -> BoundingBox:
        """``box`` (any space relative to this image) in page space."""
        return box.to(Space.PAGE, self.frame)

    def to_png(self, path: str | Path | None = None) -> bytes:
        """PNG bytes of the image; also written to ``path`` if given."""
        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        data = buf.getvalue()
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def __repr__(self) -> str:
        return f"PageImage(page={self.page_index}, {self.width}x{self.height}px, dpi={self.dpi:g})"
