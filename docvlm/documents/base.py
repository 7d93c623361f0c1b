"""The document model every source turns into: a lazy sequence of pages, each an image plus a text layer."""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from docvlm.documents._pixels import DEFAULT_MAX_PIXELS
from docvlm.documents._pixels import fit_scale as _fit_scale
from docvlm.documents._pixels import pixels_at as _pixels_at
from docvlm.errors import PageIndexError, PageTooLargeError, UsageError
from docvlm.limits import get_limits
from docvlm.types.geometry import Affine, BoundingBox, Frame, Size, Space
from docvlm.types.image import PageImage
from docvlm.types.text import WordList

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Document",
    "DocumentInfo",
    "Page",
    "PageImage",
    "PageInfo",
]

class PageInfo(BaseModel):
    """What `docvlm info` reports for a page."""

    model_config = ConfigDict(extra="forbid")

    index: int
    width: float = Field(description="width in page units (unrotated)")
    height: float = Field(description="height in page units (unrotated)")
    units: str
    rotation: int
    has_text_layer: bool


class DocumentInfo(BaseModel):
    """What `docvlm info` reports for a document."""

    model_config = ConfigDict(extra="forbid")

    source: str
    format: str
    page_count: int
    encrypted: bool
    repaired: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    pages: list[PageInfo]


class Page(abc.ABC):
    """One page of a [`Document`][docvlm.documents.base.Document].

    Page space is the source's own units (``units``): PDF points of the unrotated page with the origin at
    the top-left of the CropBox for PDFs, pixels for images. ``width`` and ``height`` are in those
    units, before ``rotation`` (clockwise degrees the viewer turns the page by) is applied; renderings
    are displayed upright, so a page with rotation 90 renders ``height`` wide.
    """

    #: the units of page space
    units: str = "pt"
    #: resolution used by [`render`][docvlm.documents.base.Page.render] when none is given
    default_dpi: float = 144.0

    def __init__(self, document: Document, index: int) -> None:
        self.document = document
        self.index = index

    # geometry -----------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def size(self) -> Size:
        """Size of the unrotated page in page units."""

    @property
    def width(self) -> float:
        return self.size.width

    @property
    def height(self) -> float:
        return self.size.height

    @property
    def rotation(self) -> int:
        return 0

    @property
    def units_per_inch(self) -> float:
        """Page units per inch (72 for PDF points)."""
        return 72.0

    @property
    def bbox(self) -> BoundingBox:
        """The whole page as a box in page space."""
        return BoundingBox(x0=0, y0=0, x1=self.width, y1=self.height)

    def frame(self, dpi: float | None = None, clip: BoundingBox | None = None) -> Frame:
        """The frame a rendering at ``dpi`` (of region ``clip``) would have, without rendering."""
        scale = (dpi or self.default_dpi) / self.units_per_inch
        return Frame.for_page(self.size, scale=scale, rotation=self.rotation, clip=self._check_region(clip))

    # rendering ----------------------------------------------------------------------------------
    def render(self, dpi: float | None = None, *, max_pixels: int | None = None) -> PageImage:
        """Render the page upright.

        Args:
            dpi: pixels per inch. Without it the page's ``default_dpi`` is used, lowered as needed to fit
                ``max_pixels``; an explicit ``dpi`` that would exceed ``max_pixels`` raises.
            max_pixels: the most pixels the image may have (default: [`ResourceLimits.max_render_pixels`][docvlm.limits.ResourceLimits]).

        Raises:
            PageTooLargeError: an explicit ``dpi`` needs more than ``max_pixels``.
        """
        return self._render_region(None, dpi, max_pixels)

    def crop(self, box: BoundingBox, dpi: float | None = None, *, max_pixels: int | None = None) -> PageImage:
        """Render only the region ``box`` (page space), e.g. to zoom in; same ``dpi`` rules as [`render`][docvlm.documents.base.Page.render].

        Raises:
            UsageError: the region is not in page space or lies outside the page.
        """
        region = self._check_region(box)
        assert region is not None
        return self._render_region(region, dpi, max_pixels)

    def check_region(self, box: BoundingBox | None) -> BoundingBox | None:
        """``box`` clipped to the page, or ``None`` for no region.

        Raises:
            UsageError: a box that is not in page space, or one that does not overlap the page.
        """
        if box is None:
            return None
        if box.space is not Space.PAGE:
            raise UsageError(
                f"a region must be in page space, got {box.space.value}",
                source=self.document.source, page=self.index,
                hint="convert it with box.to('page', page_image.frame)",
            )
        clipped = box.clip(self.bbox)
        if clipped.width <= 0 or clipped.height <= 0:
            raise UsageError(
                f"region {tuple(round(v, 2) for v in box.xyxy)} does not overlap the page "
                f"(0, 0, {self.width:g}, {self.height:g})",
                source=self.document.source, page=self.index,
            )
        return clipped

    _check_region = check_region  # the name before it was public (kept while other branches land)

    def _render_region(self, clip: BoundingBox | None, dpi: float | None, max_pixels: int | None) -> PageImage:
        if dpi is not None and not (dpi > 0 and math.isfinite(dpi)):
            raise UsageError(f"dpi must be a positive number, got {dpi}", source=self.document.source, page=self.index)
        if max_pixels is None:
            max_pixels = get_limits().max_render_pixels
        if max_pixels < 1:
            raise UsageError(f"max_pixels must be positive, got {max_pixels}")
        region = clip if clip is not None else self.bbox
        want = dpi if dpi is not None else self.default_dpi
        if _pixels_at(region, want / self.units_per_inch) > max_pixels:
            if dpi is not None:
                raise PageTooLargeError(
                    f"rendering at {dpi:g} dpi needs about {_pixels_at(region, dpi / self.units_per_inch) / 1e6:.0f} "
                    f"megapixels, over the budget of {max_pixels / 1e6:g}",
                    source=self.document.source, page=self.index,
                    hint="lower dpi, crop a region, or raise max_pixels",
                )
            want = _fit_scale(region, max_pixels) * self.units_per_inch
        scale = want / self.units_per_inch
        if min(region.width, region.height) * scale < 1:
            # e.g. a 10^11 x 150 pt MediaBox: within the budget it would be less than one pixel high
            raise PageTooLargeError(
                f"the {'region' if clip is not None else 'page'} ({region.width:g} x {region.height:g} {self.units}) "
                f"is too elongated to render within {max_pixels / 1e6:g} megapixels",
                source=self.document.source, page=self.index, hint="crop a part of it with page.crop(box)",
            )
        return self._rasterize(clip, want)

    @abc.abstractmethod
    def _rasterize(self, clip: BoundingBox | None, dpi: float) -> PageImage: ...

    # text ---------------------------------------------------------------------------------------
    def words(self, ocr: bool | Literal["auto"] = False) -> WordList:
        """Words of the page, boxes in page space.

        Args:
            ocr: where the words come from. ``False`` (the default): the text layer only, fast, and empty
                for a scan or an image. ``True``: always OCR the page. ``"auto"``: the text layer when the
                page has one, else OCR. OCR runs once per page of a document object (the result is cached, so
                ``doc[0]`` taken again or another task on the same document does not OCR again) with the
                defaults of `docvlm.documents.ocr.ocr_words`; call that function for other settings.
                Words given to the document (``dv.open(..., words=...)``, [`Document.use_words`][docvlm.documents.base.Document.use_words]) replace
                both, whatever ``ocr`` says.

        Raises:
            MissingDependencyError: OCR is needed and no OCR engine is installed.
        """
        given = self.document._given_words
        if given is not None and self.index in given:
            return given[self.index]
        if ocr is False:
            return self._text_words()
        if ocr == "auto":
            words = self._text_words()
            if words:
                return words
        elif ocr is not True:
            raise UsageError(f"ocr must be True, False or 'auto', got {ocr!r}", source=self.document.source,
                             page=self.index)
        cache = self.document._ocr_cache
        if cache is None:
            cache = self.document._ocr_cache = {}
        if self.index not in cache:  # once per page of a document: ``doc[0]`` makes a new page object each time
            from docvlm.documents.ocr import ocr_words

            cache[self.index] = ocr_words(self)
        return cache[self.index]

    @abc.abstractmethod
    def _text_words(self) -> WordList:
        """Words of the text layer, boxes in page space; empty for a scan or an image."""

    def text(self, ocr: bool | Literal["auto"] = False) -> str:
        """The page as plain text, one line per text line; ``ocr`` as in [`words`][docvlm.documents.base.Page.words]."""
        return self.words(ocr=ocr).text()

    @property
    def has_text_layer(self) -> bool:
        return bool(self.words())

    def info(self) -> PageInfo:
        return PageInfo(
            index=self.index, width=round(self.width, 3), height=round(self.height, 3), units=self.units,
            rotation=self.rotation, has_text_layer=self.has_text_layer,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.index} of {self.document.source}: {self.width:g}x{self.height:g}{self.units}, rotation {self.rotation}>"


class Document(Sequence[Page], abc.ABC):
    """A sequence of pages, loaded lazily: indexing or iterating creates a page on demand.

    Use as a context manager (or call [`close`][docvlm.documents.base.Document.close]) to release the underlying file.
    """

    format: str
    source: str
    _given_words: dict[int, WordList] | None = None
    _ocr_cache: dict[int, WordList] | None = None  # each page's OCR words, made once (Page.words)

    def use_words(self, words: Mapping[int, Sequence[Any]]) -> None:
        """Use words the caller already has (an OCR service's lines, a dataset's boxes) instead of the text layer
        and OCR, for the pages given: ``{page_index: [(text, (x0, y0, x1, y1)), ...]}`` with boxes in page units
        (pixels for an image). See `docvlm.documents._given` for the accepted item shapes.

        Raises:
            UsageError: a page index outside the document, or a malformed item.
        """
        from docvlm.documents._given import given_words

        if not isinstance(words, Mapping):
            raise UsageError(f"words must be a mapping of page index to items, got {type(words).__name__}",
                             source=self.source, hint="e.g. words={0: [('TOTAL 9.00', (120, 610, 260, 628))]}")
        converted: dict[int, WordList] = {}
        for index, items in words.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.page_count:
                raise UsageError(f"words given for page {index!r}, but the document has {self.page_count} page(s)",
                                 source=self.source, hint="page indices are 0-based")
            converted[index] = given_words(items, index, source=self.source)
        self._given_words = {**(self._given_words or {}), **converted}

    @property
    @abc.abstractmethod
    def page_count(self) -> int: ...

    @abc.abstractmethod
    def _load_page(self, index: int) -> Page: ...

    @property
    def encrypted(self) -> bool:
        return False

    @property
    def repaired(self) -> bool:
        return False

    @property
    def metadata(self) -> dict[str, str]:
        return {}

    def __len__(self) -> int:
        return self.page_count

    @overload
    def __getitem__(self, index: int) -> Page: ...
    @overload
    def __getitem__(self, index: slice) -> list[Page]: ...
    def __getitem__(self, index: int | slice) -> Page | list[Page]:
        if isinstance(index, slice):
            return [self._load_page(i) for i in range(*index.indices(self.page_count))]
        if not isinstance(index, int):
            raise UsageError(f"page indices are integers, got {type(index).__name__}")
        n = self.page_count
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise PageIndexError(
                f"page index {index} is out of range for a document of {n} page{'s' if n != 1 else ''}",
                source=self.source, hint=f"use 0..{n - 1} (or negative indices from the end)",
            )
        return self._load_page(i)

    def __iter__(self) -> Iterator[Page]:
        for i in range(self.page_count):
            yield self._load_page(i)

    def pages(self, indices: Sequence[int] | None = None) -> Iterator[Page]:
        """Pages by 0-based index (all by default), one at a time."""
        for i in range(self.page_count) if indices is None else indices:
            yield self[i]

    def info(self) -> DocumentInfo:
        return DocumentInfo(
            source=self.source, format=self.format, page_count=self.page_count, encrypted=self.encrypted,
            repaired=self.repaired, metadata=self.metadata, pages=[p.info() for p in self],
        )

    def close(self) -> None:
        """Release the underlying file."""

    def __enter__(self) -> Document:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source!r}: {self.page_count} page(s), {self.format}>"


def scale_frame(page_size: Size, clip: BoundingBox | None, image_size: Size) -> Frame:
    """A frame mapping ``clip`` (or the whole page) onto an image of ``image_size`` by scaling."""
    region = clip if clip is not None else BoundingBox(x0=0, y0=0, x1=page_size.width, y1=page_size.height)
    m = Affine.translation(-region.x0, -region.y0).then(
        Affine.scaling(image_size.width / region.width, image_size.height / region.height)
    )
    return Frame(page_size=page_size, image_size=image_size, page_to_pixel=m)
