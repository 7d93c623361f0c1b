"""Image documents through Pillow: PNG, JPEG, WebP, BMP, GIF and (multi-page) TIFF, one page per frame.

Frames are decoded lazily, one at a time, when a page's pixels are first needed (rendering, OCR): opening the
document and reading page sizes (``docvlm info``) only reads headers, so a 200-page TIFF opens in milliseconds.
Before decoding, the memory it would take is checked against the shared budget
([`ResourceLimits.max_image_bytes`][docvlm.limits.ResourceLimits]): a JPEG over it is decoded at a reduced size by its own decoder
(page space stays in the image's own pixels), any other image over it is refused with
[`PageTooLargeError`][docvlm.errors.PageTooLargeError].
"""

from __future__ import annotations

import io
import math
import struct
import threading
import warnings
from typing import TYPE_CHECKING, Any

from docvlm.documents._mupdf import one_line
from docvlm.documents.base import Document, Page, PageImage, scale_frame
from docvlm.errors import CorruptDocumentError, DocVLMError, PageTooLargeError, UnsupportedFormatError
from docvlm.limits import get_limits
from docvlm.types.geometry import BoundingBox, Size
from docvlm.types.text import WordList

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_MAX_IMAGE_PIXELS", "ImageDocument", "ImagePage", "decode_bytes"]

#: Images with more pixels than this are refused (decompression-bomb guard), e.g. A0 at 300 dpi fits; the
#: process-wide value is [`ResourceLimits.max_image_pixels`][docvlm.limits.ResourceLimits].
DEFAULT_MAX_IMAGE_PIXELS = 150_000_000

_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "GIF": "gif", "MPO": "jpeg"}
# formats whose frames may differ in size, read from each frame's header when the document opens (cheap: no pixels);
# the others share one canvas, and seeking them decodes the frames before (GIF, APNG)
_SIZED_FRAMES = frozenset({"TIFF", "MPO"})
# Pillow's in-memory bytes per pixel; RGB, RGBA, CMYK, YCbCr, LA, I, F ... take 4
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_GREY = frozenset({"1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
# EXIF orientation -> the transposition that displays the image upright (as ImageOps.exif_transpose does)
_ORIENTATIONS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                 7: "TRANSVERSE", 8: "ROTATE_90"}

_PIL_LIMIT_LOCK = threading.Lock()


def decode_bytes(mode: str, width: int, height: int) -> int:
    """Bytes Pillow needs to hold a ``width`` x ``height`` image of ``mode``."""
    return width * height * _BYTES_PER_PIXEL.get(mode, 4)


def _working_mode(mode: str) -> str:
    """The mode a frame is kept in: grey images stay grey (1 byte a pixel), everything else becomes RGB."""
    return "L" if mode in _GREY else "RGB"


def _open_header(fp: Any) -> Image.Image:
    """Open an image reading only its header, with Pillow's own size check off: docvlm checks the size itself
    against its own limit right after, with a message that names the claimed size."""
    from PIL import Image

    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(fp)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


class ImagePage(Page):
    """One frame of an image; page space is the image's own pixels (after EXIF orientation)."""

    units = "px"

    def __init__(self, document: ImageDocument, index: int) -> None:
        super().__init__(document, index)
        self.image_document = document
        w, h = document._frame_size(index)
        self._size = Size(width=w, height=h)
        self._dpi = document._dpi
        self.default_dpi = self._dpi
        self._image: Image.Image | None = None

    @property
    def size(self) -> Size:
        return self._size

    @property
    def units_per_inch(self) -> float:
        """The image's resolution from its metadata, 72 when it has none."""
        return self._dpi

    def _decoded(self) -> Image.Image:
        """The frame's pixels in its working mode (L or RGB), decoded on first use; may be smaller than the page
        when the decode budget reduced a JPEG."""
        if self._image is None:
            self._image = self.image_document._decode(self.index, (int(self._size.width), int(self._size.height)))
        return self._image

    @property
    def pil_image(self) -> Image.Image:
        """The frame as an RGB PIL image (decoded on first access; do not modify). A JPEG bigger than the decode
        budget is decoded at a reduced size, so this image may be smaller than the page (``page.size``)."""
        image = self._decoded()
        return image if image.mode == "RGB" else image.convert("RGB")

    def _rasterize(self, clip: BoundingBox | None, dpi: float) -> PageImage:
        from PIL import Image

        image = self._decoded()
        scale = dpi / self._dpi
        region = clip if clip is not None else self.bbox
        out_w = max(1, round(region.width * scale))
        out_h = max(1, round(region.height * scale))
        # the decoded image may be smaller than page space (a reduced JPEG): map the region into it
        sx, sy = image.width / self._size.width, image.height / self._size.height
        box = (region.x0 * sx, region.y0 * sy, region.x1 * sx, region.y1 * sy)
        if clip is None and (out_w, out_h) == image.size:
            img = image.copy()
        else:
            img = image.resize((out_w, out_h), Image.Resampling.LANCZOS, box=box)
        if img.mode != "RGB":
            img = img.convert("RGB")
        frame = scale_frame(self._size, clip, Size(width=out_w, height=out_h))
        return PageImage(self.index, frame, dpi, image=img)

    def _text_words(self) -> WordList:
        """An image has no text layer: always empty (``words(ocr=True)`` or ``"auto"`` reads it by OCR)."""
        return WordList([], self.index)

    @property
    def has_text_layer(self) -> bool:
        return False


class ImageDocument(Document):
    """An image file; every frame (e.g. each page of a multi-page TIFF) is a page.

    Args:
        data: the file's bytes (or ``None`` with ``path``).
        source: how messages name the image.
        max_image_pixels: refuse frames whose header claims more pixels (default: the shared limit).
        path: read the file from here, lazily, instead of ``data``.
    """

    def __init__(self, data: bytes | None, source: str, *, max_image_pixels: int | None = None,
                 path: str | None = None) -> None:
        self.source = source
        self._data = data
        self._path = path
        self._max_pixels = max_image_pixels or get_limits().max_image_pixels
        try:
            img = _open_header(self._fp())
        except Exception as exc:  # PIL.UnidentifiedImageError, OSError, SyntaxError for bad headers
            raise CorruptDocumentError(f"not a readable image ({one_line(exc)})", source=source) from exc
        # everything pages need is read from the headers now; no file stays open (frames are decoded by a fresh
        # reader each time)
        with img:
            fmt = _FORMATS.get(str(img.format))
            if fmt is None:
                raise UnsupportedFormatError(
                    f"image format {img.format} is not supported", source=source,
                    hint="use PDF, PNG, JPEG, WebP, BMP, GIF or TIFF",
                )
            self.format = fmt
            self._pil_format = str(img.format)
            self._check_pixels(img.size, 0)
            try:
                self._orientation = self._read_orientation(img)
                self._dpi = self._read_dpi(img)
                n = max(1, int(getattr(img, "n_frames", 1)))
                self._sizes = [img.size] * n
                if self._pil_format in _SIZED_FRAMES:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        for i in range(1, n):
                            img.seek(i)
                            self._sizes[i] = img.size
            except Exception as exc:  # a damaged header or frame table (TIFF IFDs, GIF blocks)
                raise CorruptDocumentError(f"the image's header is damaged ({one_line(exc)})", source=source) from exc

    def _fp(self) -> Any:
        return self._path if self._path is not None else io.BytesIO(self._data or b"")

    def _check_pixels(self, size: tuple[int, int], index: int) -> None:
        w, h = size
        if w * h > self._max_pixels:
            raise PageTooLargeError(
                f"the image claims {w}x{h} = {w * h / 1e6:.0f} megapixels, over the limit of {self._max_pixels / 1e6:g}",
                source=self.source, page=index,
                hint="this looks like a decompression bomb; pass max_image_pixels=... only for a trusted file",
            )
        if w < 1 or h < 1:
            raise CorruptDocumentError(f"the image claims a size of {w}x{h}", source=self.source, page=index)

    @staticmethod
    def _read_orientation(img: Image.Image) -> int:
        if img.format == "PNG" and "exif" not in img.info:
            return 1  # Pillow would decode the whole image to look for an eXIf chunk after the pixels
        try:
            value = img.getexif().get(0x0112)
        except Exception:  # a damaged EXIF block: show the image as stored
            return 1
        return value if isinstance(value, int) and value in _ORIENTATIONS else 1

    @staticmethod
    def _read_dpi(img: Image.Image) -> float:
        dpi: Any = img.info.get("dpi")
        try:
            value = float(dpi[0]) if dpi else 72.0
        except (TypeError, ValueError, IndexError):
            value = 72.0
        return value if 1.0 <= value <= 10_000 else 72.0

    def _frame_size(self, index: int) -> tuple[int, int]:
        """Frame ``index``'s upright size from its header (no pixels decoded), checked against the pixel limit."""
        w, h = self._sizes[index]
        self._check_pixels((w, h), index)
        return (h, w) if self._orientation in (5, 6, 7, 8) else (w, h)

    def _decode(self, index: int, upright: tuple[int, int]) -> Image.Image:
        """Decode frame ``index`` (a fresh reader, so no other frame's pixels stay in memory) into its working
        mode, within the decode budget."""
        from PIL import Image

        budget = get_limits().max_image_bytes
        reader = _open_header(self._fp())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                try:
                    if index:
                        reader.seek(index)
                    mode, (w, h) = reader.mode, reader.size
                    need = self._peak_bytes(mode, w, h)
                    if need > budget:
                        reduced = self._reduce(reader, mode, w, h, budget) if self._pil_format in ("JPEG", "MPO") else None
                        if reduced is None:
                            raise PageTooLargeError(
                                f"decoding the {w}x{h} {mode} image needs about {need / 2**20:.0f} MiB, over the budget "
                                f"of {budget / 2**20:.0f} MiB",
                                source=self.source, page=index,
                                hint="raise docvlm.limits max_image_bytes (env DOCVLM_MAX_IMAGE_BYTES) for a trusted "
                                     "file, or downscale the image",
                            )
                        mode = reader.mode
                    reader.load()
                    frame = self._to_working_mode(reader)
                except DocVLMError:
                    raise
                except MemoryError as exc:
                    raise PageTooLargeError("out of memory decoding the image", source=self.source,
                                            page=index) from exc
                except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as exc:
                    raise CorruptDocumentError(
                        f"the image data is damaged or truncated ({one_line(exc)})", source=self.source, page=index
                    ) from exc
        finally:
            reader.close()
        if self._orientation != 1:
            frame = frame.transpose(getattr(Image.Transpose, _ORIENTATIONS[self._orientation]))
        return frame

    def _peak_bytes(self, mode: str, w: int, h: int) -> int:
        """Memory a decode takes at its peak: the decoded frame, its working-mode copy (for 16/32-bit grey also
        the float array it is scaled through), and the upright copy."""
        working = decode_bytes(_working_mode(mode), w, h)
        wide_grey = w * h * 8 if mode in _GREY and mode not in ("1", "L") else 0
        return decode_bytes(mode, w, h) + working + wide_grey + (working if self._orientation != 1 else 0)

    def _reduce(self, reader: Image.Image, mode: str, w: int, h: int, budget: int) -> tuple[int, int] | None:
        """Ask the JPEG decoder for a 1/2, 1/4 or 1/8 scale that fits ``budget``; the size chosen, or ``None``."""
        for factor in (2, 4, 8):
            rw, rh = math.ceil(w / factor), math.ceil(h / factor)
            if self._peak_bytes(mode, rw, rh) <= budget:
                reader.draft(mode if mode in ("L", "RGB") else "RGB", (rw, rh))
                if self._peak_bytes(reader.mode, *reader.size) <= budget:
                    return reader.size
                return None
        return None

    @staticmethod
    def _to_working_mode(img: Image.Image) -> Image.Image:
        mode = _working_mode(img.mode)
        if img.mode == mode:
            return img.copy()
        if img.mode in ("I", "F") or img.mode.startswith("I;16"):
            # 16/32-bit grey: scale to 8 bits by its own range (a plain convert clips everything above 255)
            import numpy as np

            a = np.asarray(img, dtype=np.float32)
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo and (hi > 255 or lo < 0) else np.clip(a, 0, 255)
            from PIL import Image

            return Image.fromarray(a.astype(np.uint8))
        with warnings.catch_warnings():
            # Pillow suggests RGBA for a palette with transparency; dropping alpha gives the same pixels
            warnings.simplefilter("ignore")
            return img.convert(mode)

    @property
    def page_count(self) -> int:
        return len(self._sizes)

    def _load_page(self, index: int) -> ImagePage:
        return ImagePage(self, index)

