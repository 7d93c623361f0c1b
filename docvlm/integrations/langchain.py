"""A document's tools as langchain-core tools, and its pages (or extractions) as LangChain documents.

>>> import docvlm as dv
>>> from docvlm.integrations.langchain import tools
>>> by_name = {t.name: t for t in tools(dv.samples.invoice_pdf())}
>>> call = {"name": "read_text", "args": {"page": 0, "box": {"x0": 300, "y0": 380, "x1": 560, "y1": 420}},
...         "id": "1", "type": "tool_call"}
>>> message = by_name["read_text"].invoke(call)
>>> message.content, message.artifact.text
('Total:   EUR 145.78', 'Total:   EUR 145.78')

Each tool is a ``StructuredTool`` with the [`docvlm.workflows.tools`][docvlm.workflows.tools] argument model as its
schema and ``response_format="content_and_artifact"``: invoked with a tool call it returns a ``ToolMessage`` whose
``artifact`` is the typed payload and whose ``content`` is what the model reads. For ``render_page`` and ``zoom``
that is the short text observation *and the image*, as content blocks (``[{"type": "text", ...}, {"type":
"image", "base64": ..., "mime_type": "image/png"}]``, or OpenAI's ``image_url`` form with
``images="image_url"``), so a vision model sees what it zoomed into; the artifact is an
[`ImageArtifact`][docvlm.workflows.tools.ImageArtifact] whose image is in ``toolbox.artifacts``. Other tools answer
text. Bad arguments give a ``ToolMessage`` with ``status="error"`` and the message as content, so an agent loop
can go on.

[`DocvlmLoader`][docvlm.integrations.langchain.DocvlmLoader] is a ``langchain_core`` document loader: one
``Document`` per page (its text, and its lines with their boxes in the metadata) or one per extraction.

langchain-core (the ``langchain`` extra) is imported only when a tool or loader is made.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from docvlm._optional import require
from docvlm.documents import Document, PageImage, Source, open_document, parse_page_range
from docvlm.errors import UsageError
from docvlm.models import Model
from docvlm.workflows.tools import ImageArtifact, Tool, Toolbox, format_validation_error

if TYPE_CHECKING:
    from langchain_core.documents import Document as LCDocument
    from langchain_core.tools import BaseTool
    from pydantic import BaseModel

__all__ = ["DocvlmLoader", "image_block", "to_langchain", "tools"]

ImageFormat = Literal["image", "image_url", "none"]


def tools(document_or_path: Document | Toolbox | Source, model: Model | None = None, *,
          images: ImageFormat = "image") -> list[BaseTool]:
    """The tools of [`Toolbox`][docvlm.workflows.tools.Toolbox] over one document, as langchain-core tools.

    Args:
        document_or_path: a document, a source to open (path, bytes), or a toolbox (to share its artifacts).
        model: a model for the tools that need one (``ground``).
        images: how ``render_page`` and ``zoom`` hand their image to the model: ``"image"`` (LangChain's standard
            content block, which every chat model integration translates), ``"image_url"`` (OpenAI's form, a
            ``data:`` URL) or ``"none"`` (text only).
    """
    box = document_or_path if isinstance(document_or_path, Toolbox) else Toolbox(document_or_path, model)
    return [to_langchain(box, t, images=images) for t in box.tools()]


def image_block(image: PageImage, images: ImageFormat = "image") -> dict[str, Any]:
    """A page image as a LangChain content block (a PNG): ``{"type": "image", "base64": ..., "mime_type": ...}`` or
    ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``."""
    data = base64.b64encode(image.to_png()).decode("ascii")
    if images == "image_url":
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    return {"type": "image", "base64": data, "mime_type": "image/png"}


def to_langchain(toolbox: Toolbox, tool: Tool, *, images: ImageFormat = "image") -> BaseTool:
    """One docvlm tool as a ``StructuredTool`` (``content_and_artifact``); image results carry the image."""
    if images not in ("image", "image_url", "none"):
        raise UsageError(f"images must be 'image', 'image_url' or 'none', got {images!r}")
    from pydantic import ValidationError

    require("langchain_core", "langchain", purpose="LangChain tools")
    from langchain_core.tools import StructuredTool, ToolException

    def run(**kwargs: Any) -> tuple[str | list[dict[str, Any]], Any]:
        result = toolbox.call(tool.name, kwargs)
        if result.is_error:
            raise ToolException(result.text)
        if isinstance(result.payload, ImageArtifact) and images != "none":
            return [{"type": "text", "text": result.text}, image_block(toolbox.image(result.payload.id), images)], \
                result.payload
        return result.text, result.payload

    def on_invalid(e: ValidationError | Any) -> str:
        return f"error: {format_validation_error(e)}" if isinstance(e, ValidationError) else f"error: {e}"

    return StructuredTool.from_function(
        func=run,
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_model,
        response_format="content_and_artifact",
        handle_tool_error=True,
        handle_validation_error=on_invalid,
    )


# ---------------------------------------------------------------------------------------------------
# the document loader
# ---------------------------------------------------------------------------------------------------


def _visual_lines(page: Any, ocr: bool | Literal["auto"]) -> tuple[str, list[dict[str, Any]]]:
    """The page's text as visual lines (as ``dv.read`` gives it) and each line with its box (page space)."""
    from docvlm.tasks.text import group_lines, segments_of, serialize_lines

    lines = group_lines(segments_of(page.words(ocr=ocr).rows, page.index))
    return serialize_lines(lines), [{"text": line.text, "box": _box(line.box)} for line in lines]


def _box(box: Any) -> dict[str, Any]:
    """A box as everywhere in docvlm's JSON (a dumped BoundingBox), coordinates rounded to 0.001."""
    dumped: dict[str, Any] = box.model_dump(mode="json")
    return {k: round(v, 3) if k in ("x0", "y0", "x1", "y1") else v for k, v in dumped.items()}


class DocvlmLoader:
    """A ``langchain_core`` document loader over files, URLs or bytes that docvlm opens (PDFs, images, web pages).

    With ``mode="page"`` (default) it yields one ``Document`` per page: ``page_content`` is the page's text as
    visual lines, as ``dv.read`` gives it (the text layer, or OCR with ``ocr=True`` / ``"auto"``), and ``metadata`` holds ``source``, ``page`` (0-based),
    ``page_count``, ``width``, ``height``, ``units`` and ``lines``, each line ``{"text", "box"}`` with its box in
    page space. With ``mode="extract"`` it yields one ``Document`` per source: ``page_content`` is the extracted
    record as JSON, and ``metadata`` holds ``source``, ``schema``, ``model``, ``value`` and ``evidence`` (per
    field: ``page``, ``quote``, ``box``). Boxes have the one JSON shape docvlm uses everywhere, a dumped
    [`BoundingBox`][docvlm.types.BoundingBox].

    It is a ``langchain_core.document_loaders.BaseLoader`` (``load()``, ``lazy_load()``, ``load_and_split()``).

    Args:
        sources: one source or several (paths, URLs, bytes).
        mode: ``"page"`` or ``"extract"``.
        schema: the pydantic model to extract (``mode="extract"``), or a ``module:Class`` / ``file.py:Class`` spec.
        model: the model for extraction (a model or a spec; default ``"default"``).
        pages: 1-based pages to load, e.g. ``"1-3,7"`` (default: all).
        ocr: read scans with OCR: ``False``, ``True`` or ``"auto"`` (pages without a text layer).
        password: for encrypted PDFs.

    Raises:
        MissingDependencyError: langchain-core is not installed (``pip install 'docvlm[langchain]'``).
        UsageError: a bad mode, or ``mode="extract"`` without a schema.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> DocvlmLoader:
        if cls is DocvlmLoader:
            cls = _loader_class()
        return super().__new__(cls)

    def __init__(self, sources: Source | Sequence[Source], *, mode: Literal["page", "extract"] = "page",
                 schema: type[BaseModel] | str | None = None, model: Model | str | None = "default",
                 pages: str | None = None, ocr: bool | Literal["auto"] = "auto", password: str | None = None) -> None:
        if mode not in ("page", "extract"):
            raise UsageError(f"mode must be 'page' or 'extract', got {mode!r}")
        if mode == "extract" and schema is None:
            raise UsageError("mode='extract' needs a schema", hint="DocvlmLoader(path, mode='extract', schema=Invoice)")
        single = isinstance(sources, (str, bytes, bytearray)) or not isinstance(sources, Sequence)
        self.sources: list[Source] = [sources] if single else list(sources)  # type: ignore[list-item,arg-type]
        self.mode = mode
        self.schema = schema
        self.model = model
        self.pages = pages
        self.ocr = ocr
        self.password = password

    def lazy_load(self) -> Iterator[LCDocument]:
        """One ``Document`` per page (or per source, for extraction), opening one source at a time."""
        from langchain_core.documents import Document as LCDocument

        for source in self.sources:
            name = source if isinstance(source, str) else f"<{type(source).__name__}>"
            with open_document(source, password=self.password) as doc:
                indices = parse_page_range(self.pages, len(doc))
                if self.mode == "extract":
                    yield self._extraction(doc, str(name), indices)
                    continue
                for i in indices:
                    page = doc[i]
                    text, lines = _visual_lines(page, self.ocr)
                    metadata = {"source": str(name), "page": i, "page_count": len(doc), "width": page.width,
                                "height": page.height, "units": page.units, "lines": lines}
                    yield LCDocument(page_content=text, metadata=metadata)

    def load(self) -> list[LCDocument]:
        """Every ``Document`` at once."""
        return list(self.lazy_load())

    def _extraction(self, doc: Document, name: str, indices: list[int]) -> LCDocument:
        from langchain_core.documents import Document as LCDocument

        from docvlm.models import load_model
        from docvlm.schemas import load_schema
        from docvlm.tasks.extract import extract

        if self.model is not None and not isinstance(self.model, Model):
            self.model = load_model(self.model)
        schema = load_schema(self.schema) if isinstance(self.schema, str) else self.schema
        assert schema is not None
        result = extract(self.model, doc, schema, pages=indices)
        evidence = {field: {"page": e.page, "quote": e.quote, "box": None if e.box is None else _box(e.box)}
                    for field, e in result.evidence.items() if e is not None}
        metadata = {"source": name, "schema": schema.__name__, "model": result.model,
                    "value": result.value.model_dump(mode="json"), "evidence": evidence}
        return LCDocument(page_content=result.value.model_dump_json(), metadata=metadata)


_LOADER: list[type[DocvlmLoader]] = []


def _loader_class() -> type[DocvlmLoader]:
    """DocvlmLoader as a subclass of langchain-core's BaseLoader, made once langchain-core is imported."""
    if not _LOADER:
        require("langchain_core", "langchain", purpose="the LangChain document loader")
        from langchain_core.document_loaders import BaseLoader

        loader = type("DocvlmLoader", (DocvlmLoader, BaseLoader), {"__module__": __name__,
                                                                     "__doc__": DocvlmLoader.__doc__})
        _LOADER.append(loader)
    return _LOADER[0]
