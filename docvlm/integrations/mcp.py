"""A document's tools as a Model Context Protocol server (stdio transport).

Serve one document to an MCP client (Claude Desktop, an IDE, an agent)::

    docvlm mcp invoice.pdf            # or: python -m docvlm.integrations.mcp invoice.pdf

or build the server yourself: ``docvlm.integrations.mcp.server(document)`` returns an ``mcp`` low-level
``Server`` and [`run_stdio`][docvlm.integrations.mcp.run_stdio] serves it over stdin/stdout. The tools are those of
[`Toolbox`][docvlm.workflows.tools.Toolbox]: each lists its pydantic argument schema as ``inputSchema``;
a call answers the text observation, the typed payload as structured content, and for ``render_page`` /
``zoom`` the image itself as PNG (``ImageContent``), so a vision model on the client side sees it. Bad
arguments answer ``isError`` with the message.

A session keeps its renders and zooms in a cache bounded by bytes (least recently used out first,
`DEFAULT_CACHE_BYTES`), so a long session cannot grow without end; asking again for a dropped image
renders it again. A line on stdin that is not JSON is answered with a JSON-RPC parse error (``-32700``), one
that is JSON but no JSON-RPC message with an invalid-request error (``-32600``).

Needs the ``mcp`` extra (``pip install 'docvlm[mcp]'``: ``mcp>=2``), imported only when a server is made.
"""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING, Any

from docvlm.documents import Document, PageImage, Source
from docvlm.errors import MissingDependencyError
from docvlm.models import Model
from docvlm.workflows.tools import ImageArtifact, Toolbox

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

__all__ = ["DEFAULT_CACHE_BYTES", "run_stdio", "server"]

#: The bytes of renders and zooms an MCP session keeps (decoded pixels, 4 bytes each): about eight pages at 288 dpi.
DEFAULT_CACHE_BYTES = 256 * 2**20


def _require_mcp() -> None:
    try:
        import mcp.server.lowlevel  # noqa: F401
        import mcp_types  # noqa: F401  (mcp >= 2; mcp 1.x has no such module)
    except ImportError as e:
        raise MissingDependencyError("mcp>=2", "mcp", purpose="the MCP server") from e


def server(document: Document | Toolbox | Source, model: Model | None = None, *, name: str = "docvlm",
           cache_bytes: int = DEFAULT_CACHE_BYTES) -> Server[Any]:
    """An MCP server whose tools are the [`Toolbox`][docvlm.workflows.tools.Toolbox] tools over one document.

    Args:
        document: the document, a source to open, or a toolbox (used as it is, with its own artifact store).
        model: a model for the tools that need one (``ground``).
        name: the server's name in the MCP handshake.
        cache_bytes: the bytes of renders and zooms the session keeps (least recently used out first).
    """
    _require_mcp()
    import mcp_types as types
    from mcp.server.lowlevel import Server

    box = document if isinstance(document, Toolbox) else Toolbox(document, model, max_artifact_bytes=cache_bytes)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.json_schema()) for t in box.tools()
        ])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        result = box.call(params.name, params.arguments or {})
        content: list[Any] = [types.TextContent(text=result.text)]
        if isinstance(result.payload, ImageArtifact):
            image = box.artifacts.get(result.payload.id)
            assert isinstance(image, PageImage)
            content.append(types.ImageContent(data=base64.b64encode(image.to_png()).decode("ascii"),
                                              mime_type="image/png"))
        return types.CallToolResult(content=content, structured_content=result.payload.model_dump(mode="json"),
                                    is_error=result.is_error)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


class _ParseErrors:
    """The read stream of a stdio transport that answers the lines it could not read, instead of dropping them.

    ``mcp``'s stdio transport hands such lines on as exceptions, which the server only logs; JSON-RPC wants a
    parse error (``-32700``) for a line that is not JSON and an invalid-request error (``-32600``) for JSON that
    is no JSON-RPC message, each with ``id: null``.
    """

    def __init__(self, inner: Any, write: Any) -> None:
        self.inner = inner
        self.write = write
        self.last_context: Any = None

    async def receive(self) -> Any:
        import mcp_types as types
        from mcp.shared.message import SessionMessage
        from pydantic import ValidationError

        while True:
            item = await self.inner.receive()
            self.last_context = getattr(self.inner, "last_context", None)
            if not isinstance(item, Exception):
                return item
            errors = item.errors(include_url=False) if isinstance(item, ValidationError) else []
            if errors and errors[0]["type"] == "json_invalid":
                error = types.ErrorData(code=types.PARSE_ERROR, message="Parse error: the line is not JSON")
            else:
                error = types.ErrorData(code=types.INVALID_REQUEST,
                                        message="Invalid Request: the line is JSON but not a JSON-RPC 2.0 message")
            await self.write.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=None, error=error)))

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __aiter__(self) -> _ParseErrors:
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _ParseErrors:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def run_stdio(document: Document | Toolbox | Source, model: Model | None = None, *,
              cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
    """Serve one document's tools over stdin/stdout until the client disconnects."""
    import anyio

    app = server(document, model, cache_bytes=cache_bytes)

    async def main() -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await app.run(_ParseErrors(read, write), write, app.create_initialization_options())

    anyio.run(main)


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    if len(sys.argv) != 2:
        sys.exit("usage: python -m docvlm.integrations.mcp DOCUMENT")
    run_stdio(sys.argv[1])
