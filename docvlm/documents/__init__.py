"""Documents: sources (PDF, images, web pages) turned into pages with an image and a text layer."""

from docvlm.documents._open import Source, open_document, sniff_format
from docvlm.documents.base import DEFAULT_MAX_PIXELS, Document, DocumentInfo, Page, PageImage, PageInfo
from docvlm.documents.pages import parse_page_range
from docvlm.documents.web import WebDocument, WebOptions, WebPage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Document",
    "DocumentInfo",
    "Page",
    "PageImage",
    "PageInfo",
    "Source",
    "WebDocument",
    "WebOptions",
    "WebPage",
    "open_document",
    "parse_page_range",
    "sniff_format",
]
