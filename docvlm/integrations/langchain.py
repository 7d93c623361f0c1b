"""A document's tools as langchain-core tools.

>>> import docvlm as dv
>>> from docvlm.integrations.langchain import tools
>>> by_name = {t.name: t for t in tools(dv.samples.invoice_pdf())}
>>> call = {"name": "read_text", "args": {"page": 0, "box": {"x0": 300, "y0": 380, "x1": 560, "y1": 420}},
...         "id": "1", "type": "tool_call"}
>>> message = by_name["read_text"].invoke(call)
>>> message.content, message.artifact.text
('Total:   EUR 145.78', 'Total:   EUR 145.78')

Each tool is a ``StructuredTool`` with the :mod:`docvlm.workflows.tools` argument model as its schema and
``response_format="content_and_artifact"``: invoked with a tool call it returns a ``ToolMessage`` whose
``content`` is the short text observation and whose ``artifact`` is the typed payload (an
:class:`~docvlm.workflows.tools.ImageArtifact` for renders and crops, whose image is in
``toolbox.artifacts``). Bad arguments give a ``ToolMessage`` with ``status="error"`` and the message as
content, so an agent loop can go on. langchain-core is imported only when :func:`tools` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docvlm._optional import require
from docvlm.documents import Document
from docvlm.documents._open import Source
from docvlm.models import Model
from docvlm.workflows.tools import Tool, Toolbox, format_validation_error

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["to_langchain", "tools"]


def tools(document_or_path: Document | Toolbox | Source, model: Model | None = None) -> list[BaseTool]:
    """The tools of :class:`~docvlm.workflows.tools.Toolbox` over one document, as langchain-core tools.

    Args:
        document_or_path: a document, a source to open (path, bytes), or a toolbox (to share its artifacts).
        model: a model for the tools that need one (``ground``).
    """
    box = document_or_path if isinstance(document_or_path, Toolbox) else Toolbox(document_or_path, model)
    return [to_langchain(box, t) for t in box.tools()]


def to_langchain(toolbox: Toolbox, tool: Tool) -> BaseTool:
    """One docvlm tool as a ``StructuredTool`` (``content_and_artifact``)."""
    from pydantic import ValidationError

    require("langchain_core", "langchain", purpose="LangChain tools")
    from langchain_core.tools import StructuredTool, ToolException

    def run(**kwargs: Any) -> tuple[str, Any]:
        result = toolbox.call(tool.name, kwargs)
        if result.is_error:
            raise ToolException(result.text)
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
