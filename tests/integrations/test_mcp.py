from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import docvlm as dv

pytest.importorskip("mcp")

TOTAL = {"x0": 300, "y0": 380, "x1": 560, "y1": 420}


async def _session_run(path: Path) -> dict[str, Any]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "docvlm.integrations.mcp", str(path)])
    out: dict[str, Any] = {}
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            out["tools"] = (await session.list_tools()).tools
            out["read"] = await session.call_tool("read_text", {"page": 0, "box": TOTAL})
            out["zoom"] = await session.call_tool("zoom", {"page": 0, "box": TOTAL, "dpi": 72})
            out["bad"] = await session.call_tool("read_text", {"page": 7})
    return out


def test_mcp_client_over_stdio(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(dv.samples.invoice_pdf())
    out = anyio.run(_session_run, path)
    tools = {t.name: t for t in out["tools"]}
    assert list(tools) == ["list_pages", "render_page", "zoom", "read_text", "find_tables", "answer"]
    assert tools["read_text"].input_schema["properties"]["page"]["minimum"] == 0

    read = out["read"]
    assert not read.is_error
    assert read.content[0].text == "Total:   EUR 145.78"
    assert read.structured_content["text"] == "Total:   EUR 145.78"

    zoom = out["zoom"]
    assert [c.type for c in zoom.content] == ["text", "image"]
    assert base64.b64decode(zoom.content[1].data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert (zoom.structured_content["width"], zoom.structured_content["height"]) == (260, 40)

    bad = out["bad"]
    assert bad.is_error
    assert bad.content[0].text == "error: page 7 is out of range: the document has 1 page (0..0)"
