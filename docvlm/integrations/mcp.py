"""A document's tools as a Model Context Protocol server (stdio transport).

Serve one document to an MCP client (Claude Desktop, an IDE, an agent)::

    python -m docvlm.integrations.mcp invoice.pdf

or build the server yourself: ``docvlm.integrations.mcp.server(document)`` returns an ``mcp`` low-level
``Server`` and :func:`run_stdio` serves it over stdin/stdout. The tools are those of
:class:`~docvlm.workflows.tools.Toolbox`: each lists its pydantic argument schema as ``inputSchema``;
a call answers the text observation, the typed payload as structured content, and for ``render_page`` /
``zoom`` the image as PNG. Bad arguments answer ``isError`` with the message. Needs the ``mcp`` package
(``pip install mcp``), imported only when a server is made.
"""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING, Any

from docvlm.documents import Document, PageImage
from docvlm.documents._open import Source
from docvlm.errors import MissingDependencyError
from docvlm.models import Model
from docvlm.workflows.tools import ImageArtifact, Toolbox

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

__all__ = ["run_stdio", "server"]


def _require_mcp() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("mcp", "mcp", purpose="the MCP server") from e


def server(document: Document | Toolbox | Source, model: Model | None = None, *, name: str = "docvlm") -> Server[Any]:
    """An MCP server whose tools are the :class:`~docvlm.workflows.tools.Toolbox` tools over one document."""
    _require_mcp()
    import mcp_types as types
    from mcp.server.lowlevel import Server

    box = document if isinstance(document, Toolbox) else Toolbox(document, model)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.json_schema()) for t in box.tools()
        ])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        result = box.call(params.name, params.arguments or {})
        content: list[Any] = [types.TextContent(text=result.text)]
        if isinstance(result.payload, ImageArtifact):
            image = box.artifacts[result.payload.id]
            assert isinstance(image, PageImage)
            content.append(types.ImageContent(data=base64.b64encode(image.to_png()).decode("ascii"),
                                              mime_type="image/png"))
        return types.CallToolResult(content=content, structured_content=result.payload.model_dump(mode="json"),
                                    is_error=result.is_error)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


def run_stdio(document: Document | Toolbox | Source, model: Model | None = None) -> None:
    """Serve one document's tools over stdin/stdout until the client disconnects."""
    import anyio

    app = server(document, model)

    async def main() -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await app.run(read, write, app.create_initialization_options())

    anyio.run(main)


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    if len(sys.argv) != 2:
        sys.exit("usage: python -m docvlm.integrations.mcp DOCUMENT")
    run_stdio(sys.argv[1])
