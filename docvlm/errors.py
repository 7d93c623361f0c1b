"""The exceptions docvlm raises.

Every error a caller can act on derives from [`DocVLMError`][docvlm.errors.DocVLMError] and says what went wrong,
where (path, page) and what to do about it::

    DocVLMError
    ├── UsageError              a call with arguments that cannot work (bad page range, region off the page)
    │   └── PageIndexError      a page index outside the document (also an IndexError)
    ├── DocumentError           the input document itself is the problem
    │   ├── DocumentNotFoundError    no file at the path given (also a FileNotFoundError)
    │   ├── UnsupportedFormatError   not a PDF or a supported image
    │   ├── CorruptDocumentError     truncated or damaged bytes
    │   ├── EncryptedDocumentError   a password is needed, or the one given is wrong
    │   ├── EmptyDocumentError       a document with zero pages
    │   ├── PageTooLargeError        a page or image over the pixel budget (decompression bombs too)
    │   ├── BlockedURLError          a URL refused by the web safety rules (local file, private address)
    │   └── DatasetError             an evaluation dataset file that cannot be read (has .file, .record)
    ├── ModelError              a model backend failed or answered something unusable
    │   ├── ConstraintError     an output type cannot be compiled, an answer does not validate, or decoding was cut off
    │   ├── FieldNotFoundError  extraction found no value for required fields (has .fields)
    │   ├── AgentBudgetError    an agent hit max_steps or its time budget before answering (has .trace)
    │   └── ScoringNotSupportedError  the backend cannot score continuations (check model.supports_scoring)
    ├── TimeLimitError          a call given timeout= ran past it (also a TimeoutError); nothing is left running
    └── MissingDependencyError  an optional extra is not installed (also an ImportError)

Warnings derive from [`DocVLMWarning`][docvlm.errors.DocVLMWarning] (e.g. [`DocumentRepairedWarning`][docvlm.errors.DocumentRepairedWarning] when a damaged PDF was
opened by repairing it, so content may be missing; [`RowsSkippedWarning`][docvlm.errors.RowsSkippedWarning] when extraction left out table
rows whose required cells do not read as their type).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = [
    "AgentBudgetError",
    "BlockedURLError",
    "ConstraintError",
    "CorruptDocumentError",
    "DatasetError",
    "DocVLMError",
    "DocVLMWarning",
    "DocumentError",
    "DocumentNotFoundError",
    "DocumentRepairedWarning",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "FieldNotFoundError",
    "MissingDependencyError",
    "ModelError",
    "PageIndexError",
    "PageTooLargeError",
    "RowsSkippedWarning",
    "ScoringNotSupportedError",
    "TimeLimitError",
    "UnsupportedFormatError",
    "UsageError",
]


class DocVLMError(Exception):
    """Root of every docvlm error.

    Args:
        message: what went wrong, one line.
        source: the document (path or a short description of bytes / file object), if any.
        page: the 0-based page index concerned, if any.
        hint: what the caller can do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        page: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.page = page
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.source is not None:
            where.append(self.source)
        if self.page is not None:
            where.append(f"page {self.page}")
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(DocVLMError, ValueError):
    """A call whose arguments cannot work, e.g. a malformed page range or a region off the page."""


class PageIndexError(UsageError, IndexError):
    """A page index outside the document."""


class DocumentError(DocVLMError):
    """The input document is the problem (format, damage, encryption, size)."""


class DocumentNotFoundError(DocumentError, FileNotFoundError):
    """There is no file at the path given."""


class UnsupportedFormatError(DocumentError):
    """The input is not a PDF or an image format docvlm reads."""


class CorruptDocumentError(DocumentError):
    """The input is truncated or damaged beyond repair."""


class EncryptedDocumentError(DocumentError):
    """The document is encrypted and no password, or a wrong one, was given."""


class EmptyDocumentError(DocumentError):
    """The document has no pages."""


class PageTooLargeError(DocumentError):
    """A page or image would exceed the pixel budget (including image decompression bombs)."""


class BlockedURLError(DocumentError):
    """The page's own URL is refused by the safety rules (a local file, a private address, another scheme)."""


class DatasetError(DocumentError):
    """A dataset file cannot be read, or (with ``strict=True``) one of its records is bad.

    Attributes:
        file: the file concerned.
        record: the index (or id) of the bad record inside it, if the problem is one record.
    """

    def __init__(self, message: str, *, file: str | os.PathLike[str], record: int | str | None = None,
                 hint: str | None = None) -> None:
        where = str(file) if record is None else f"{file}, record {record}"
        super().__init__(message, source=where, hint=hint)
        self.file = str(file)
        self.record = record


class ModelError(DocVLMError):
    """A model backend failed or answered something that cannot be used."""


class ConstraintError(ModelError):
    """An output type cannot be compiled to a constraint, an answer does not validate against it, or constrained
    output was cut off."""


class FieldNotFoundError(ModelError):
    """Required fields of the schema have no value in the document."""

    def __init__(self, fields: Sequence[str], source: str | None = None) -> None:
        super().__init__(
            f"required field{'s' if len(fields) > 1 else ''} not found in the document: {', '.join(fields)}",
            source=source, hint="make the field Optional if it may be absent, or check the document",
        )
        self.fields = list(fields)


class AgentBudgetError(ModelError):
    """An agent run hit ``max_steps`` or its wall-clock budget before the model gave a valid answer.

    Attributes:
        reason: ``"steps"`` or ``"time"``.
        trace: the partial [`Trace`][docvlm.workflows.trace.Trace] (every step so far; ``trace.to_html(path)`` shows it).
    """

    def __init__(self, message: str, *, reason: str, trace: Any = None, source: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, source=source, hint=hint)
        self.reason = reason
        self.trace = trace


class ScoringNotSupportedError(ModelError):
    """The model backend cannot score continuations ([`score`][docvlm.models.base.Model.score]); check
    ``model.supports_scoring`` first, or generate under a choice constraint instead."""


class TimeLimitError(DocVLMError, TimeoutError):
    """A call given ``timeout=`` (CLI ``--timeout``) ran past it. The work was stopped where it stood: no thread
    or process it started is left running.

    Attributes:
        seconds: the time limit that was exceeded.
        what: what was running (``"generate"``, ``"extract"``, ``"batch"``, ...).
    """

    def __init__(self, message: str, *, seconds: float, what: str, source: str | None = None,
                 page: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, source=source, page=page,
                         hint=hint or "pass a larger timeout=, fewer pages, or a faster model")
        self.seconds = seconds
        self.what = what


class MissingDependencyError(DocVLMError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, *, purpose: str, hint: str | None = None) -> None:
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed",
            hint=hint or f"pip install 'docvlm[{extra}]'",
        )
        self.package = package
        self.extra = extra


class DocVLMWarning(UserWarning):
    """Root of docvlm's warnings."""


class DocumentRepairedWarning(DocVLMWarning):
    """A damaged document was opened by repairing it; some content may be missing."""


class RowsSkippedWarning(DocVLMWarning):
    """Table rows were left out of an extracted list because a required field of the row could not be read
    (e.g. OCR misread a number); the message names the field, page and rows."""
