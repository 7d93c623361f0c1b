"""Image documents through Pillow: PNG, JPEG, WebP, BMP, GIF and (multi-page) TIFF, one page per frame."""

from __future__ import annotations

import io
import threading
import warnings
from typing import TYPE_CHECKING, Any

from docvlm.documents.base import Document, Page, PageImage, scale_frame
from docvlm.errors import CorruptDocumentError, PageTooLargeError, UnsupportedFormatError
from docvlm.types.geometry import BoundingBox, Size
from docvlm.types.text import WordList

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_MAX_IMAGE_PIXELS", "ImageDocument", "ImagePage"]

#: Images with more pixels than this are refused (decompression-bomb guard), e.g. A0 at 300 dpi fits.
DEFAULT_MAX_IMAGE_PIXELS = 150_000_000

_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "GIF": "gif", "MPO": "jpeg"}


_PIL_LIMIT_LOCK = threading.Lock()


def _open_header(data: bytes) -> Image.Image:
    """Open an image reading only its header, with Pillow's own size check off: docvlm checks the size itself
    against its own limit right after, with a message that names the claimed size."""
    from PIL import Image

    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


class ImagePage(Page):
    """One frame of an image; page space is the image's own pixels (after EXIF orientation)."""

    units = "px"

    def __init__(self, document: ImageDocument, index: int) -> None:
        super().__init__(document, index)
        self._image = document._frame(index)
        w, h = self._image.size
        self._size = Size(width=w, height=h)
        self._dpi = document._dpi(self._image)
        self.default_dpi = self._dpi

    @property
    def size(self) -> Size:
        return self._size

    @property
    def units_per_inch(self) -> float:
        """The image's resolution from its metadata, 72 when it has none."""
        return self._dpi

    @property
    def pil_image(self) -> Image.Image:
        """The frame as an RGB PIL image in page space (no copy; do not modify)."""
        return self._image

    def _rasterize(self, clip: BoundingBox | None, dpi: float) -> PageImage:
        from PIL import Image

        scale = dpi / self._dpi
        region = clip if clip is not None else self.bbox
        out_w = max(1, round(region.width * scale))
        out_h = max(1, round(region.height * scale))
        if clip is None and (out_w, out_h) == self._image.size:
            img = self._image.copy()
        else:
            img = self._image.resize((out_w, out_h), Image.Resampling.LANCZOS, box=region.xyxy)
        frame = scale_frame(self._size, clip, Size(width=out_w, height=out_h))
        return PageImage(self.index, frame, dpi, image=img)

    def _text_words(self) -> WordList:
        """An image has no text layer: always empty (``words(ocr=True)`` or ``"auto"`` reads it by OCR)."""
        return WordList([], self.index)

    @property
    def has_text_layer(self) -> bool:
        return False


class ImageDocument(Document):
    """An image file; every frame (e.g. each page of a multi-page TIFF) is a page."""

    def __init__(self, data: bytes, source: str, *, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.source = source
        self._max_pixels = max_image_pixels
        self._lock = threading.Lock()
        try:
            img = _open_header(data)
        except Exception as exc:  # PIL.UnidentifiedImageError, OSError, SyntaxError for bad headers
            raise CorruptDocumentError(f"not a readable image ({exc})", source=source) from exc
        fmt = _FORMATS.get(str(img.format))
        if fmt is None:
            raise UnsupportedFormatError(
                f"image format {img.format} is not supported", source=source,
                hint="use PDF, PNG, JPEG, WebP, BMP, GIF or TIFF",
            )
        self.format = fmt
        self._img = img
        self._check_pixels(img, 0)
        self._n = int(getattr(img, "n_frames", 1))

    def _check_pixels(self, img: Image.Image, index: int) -> None:
        w, h = img.size
        if w * h > self._max_pixels:
            raise PageTooLargeError(
                f"the image claims {w}x{h} = {w * h / 1e6:.0f} megapixels, over the limit of {self._max_pixels / 1e6:g}",
                source=self.source, page=index,
                hint="this looks like a decompression bomb; pass max_image_pixels=... only for a trusted file",
            )

    def _frame(self, index: int) -> Image.Image:
        from PIL import Image, ImageOps

        with self._lock:
            try:
                self._img.seek(index)
                self._check_pixels(self._img, index)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    frame = self._img.copy()
                    frame.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise CorruptDocumentError(
                    f"the image data is damaged or truncated ({exc})", source=self.source, page=index
                ) from exc
            frame = ImageOps.exif_transpose(frame)
            if frame.mode != "RGB":
                frame = frame.convert("RGBA").convert("RGB") if "A" in frame.getbands() or frame.mode == "P" else frame.convert("RGB")
            return frame

    def _dpi(self, img: Image.Image) -> float:
        dpi: Any = self._img.info.get("dpi")
        try:
            value = float(dpi[0]) if dpi else 72.0
        except (TypeError, ValueError, IndexError):
            value = 72.0
        return value if 1.0 <= value <= 10_000 else 72.0

    @property
    def page_count(self) -> int:
        return self._n

    def _load_page(self, index: int) -> ImagePage:
        return ImagePage(self, index)

    def close(self) -> None:
        self._img.close()
