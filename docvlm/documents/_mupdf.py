"""Every call into MuPDF goes through `mupdf_errors`: what MuPDF raises becomes a typed docvlm error.

MuPDF reports a damaged file from wherever it notices it: opening, counting pages ("code=7: Invalid number of
pages"), loading a page, interpreting its content for a rendering or the text layer, finding tables. PyMuPDF
raises ``RuntimeError``, ``pymupdf.FileDataError``, the ``pymupdf.mupdf.FzError*`` classes (which derive from
``Exception`` only) and, for some damage, ``ValueError`` or ``IndexError`` from inside its own code. The guard
turns each into one line with the source and page:

- MuPDF's limit and memory errors (``code=2``, ``code=5``, ``MemoryError``) -> [`PageTooLargeError`][docvlm.errors.PageTooLargeError];
- everything else MuPDF raises -> [`CorruptDocumentError`][docvlm.errors.CorruptDocumentError].

An exception raised by docvlm's own code inside the block (a bug) is left alone, so it is not disguised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docvlm.errors import CorruptDocumentError, DocVLMError, PageTooLargeError

__all__ = ["mupdf_errors", "one_line", "pymupdf", "translate"]

_CODE = re.compile(r"code=(\d+)")
_LIMIT_CODES = {2, 5}  # FZ_ERROR_SYSTEM (malloc failed), FZ_ERROR_LIMIT
_configured = False


def pymupdf() -> Any:
    """The ``pymupdf`` module, with MuPDF's own messages on stderr turned off (docvlm reports them typed)."""
    import pymupdf as module

    global _configured
    if not _configured:
        module.TOOLS.mupdf_display_errors(False)
        module.TOOLS.mupdf_display_warnings(False)
        _configured = True
    return module


def _from_mupdf(exc: BaseException) -> bool:
    """Whether ``exc`` comes from MuPDF / PyMuPDF rather than from docvlm's own code."""
    if type(exc).__module__.split(".")[0] in ("pymupdf", "fitz"):
        return True
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    filename = last.tb_frame.f_code.co_filename
    return f"{os.sep}pymupdf{os.sep}" in filename or f"{os.sep}fitz{os.sep}" in filename


def one_line(exc: BaseException) -> str:
    """An exception's message on one line of at most 200 characters (MuPDF's can span lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def translate(exc: BaseException, source: str | None, page: int | None, doing: str) -> DocVLMError | None:
    """The docvlm error for ``exc`` raised by MuPDF while ``doing`` something, or ``None`` when it is not MuPDF's."""
    if isinstance(exc, DocVLMError):
        return None
    if isinstance(exc, MemoryError):
        return PageTooLargeError(f"out of memory {doing}", source=source, page=page,
                                 hint="lower the resolution, or open the page on a machine with more memory")
    if not isinstance(exc, Exception) or not _from_mupdf(exc):
        return None
    text = one_line(exc)
    code = _CODE.search(text)
    if code is not None and int(code.group(1)) in _LIMIT_CODES:
        return PageTooLargeError(f"MuPDF hit a limit {doing} ({text})", source=source, page=page,
                                 hint="the content is too large to process; lower the resolution or split the file")
    return CorruptDocumentError(f"MuPDF failed {doing} ({text})", source=source, page=page,
                                hint="the file is damaged; re-export it or repair it (e.g. `mutool clean`)")


@contextmanager
def mupdf_errors(source: str | None, page: int | None = None, doing: str = "reading the PDF") -> Iterator[None]:
    """Run the block's MuPDF calls; what MuPDF raises becomes a typed docvlm error (see the module docstring).

    >>> import docvlm as dv
    >>> try:
    ...     with mupdf_errors("x.pdf", 0, "rendering the page"):
    ...         pymupdf().open(stream=b"%PDF-1.4 broken", filetype="pdf").load_page(0)
    ... except dv.DocVLMError as e:
    ...     print(type(e).__name__)
    CorruptDocumentError
    """
    try:
        yield
    except Exception as exc:
        typed = translate(exc, source, page, doing)
        if typed is None:
            raise
        raise typed from exc
