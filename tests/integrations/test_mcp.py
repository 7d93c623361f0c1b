from __future__ import annotations

import base64
import io
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

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
            out["render"] = await session.call_tool("render_page", {"page": 0, "dpi": 50})
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

    render = out["render"]  # tool results carry the image itself, for render_page as for zoom
    assert [c.type for c in render.content] == ["text", "image"] and render.content[1].mime_type == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(render.content[1].data)))
    assert image.size == (render.structured_content["width"], render.structured_content["height"])
    assert image.size == dv.open(path)[0].render(dpi=50).image.size

    bad = out["bad"]
    assert bad.is_error
    assert bad.content[0].text == "error: page 7 is out of range: the document has 1 page (0..0)"


def test_a_sessions_renders_and_zooms_stay_within_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, finding 3: 60 renders and 46 zooms took a session from 225 MB to 3 GB; now they are an LRU by bytes."""
    from mcp import Client

    import docvlm.integrations.mcp as dv_mcp
    from docvlm.workflows.tools import Toolbox, artifact_bytes

    made: list[Toolbox] = []

    class Recorded(Toolbox):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(dv_mcp, "Toolbox", Recorded)
    budget = 8 * 2**20
    app = dv_mcp.server(dv.samples.invoice_pdf(), cache_bytes=budget)

    async def session() -> list[Any]:
        async with Client(app) as client:
            out = [await client.call_tool("render_page", {"page": 0, "dpi": 72 + i}) for i in range(30)]
            out += [await client.call_tool("zoom", {"page": 0, "dpi": 144, "box": {
                "x0": 10 * i, "y0": 10, "x1": 10 * i + 200, "y1": 300}}) for i in range(20)]
            out.append(await client.call_tool("render_page", {"page": 0, "dpi": 72}))  # dropped long ago: again
            return out

    results = anyio.run(session)
    assert all(not r.is_error and r.content[1].type == "image" for r in results)
    ids = [r.structured_content["id"] for r in results]
    assert len(set(ids)) == len(ids)  # a re-render gets a new id, never a reused one
    (toolbox,) = made
    assert toolbox.artifacts.nbytes <= budget
    assert sum(artifact_bytes(toolbox.artifacts[a]) for a in toolbox.artifacts) == toolbox.artifacts.nbytes
    assert ids[-1] in toolbox.artifacts and ids[0] not in toolbox.artifacts
    made_bytes = sum(r.structured_content["width"] * r.structured_content["height"] * 4 for r in results)
    assert made_bytes > 8 * budget  # the session made far more than it keeps


def test_lines_that_are_not_json_rpc_get_json_rpc_errors(tmp_path: Path) -> None:
    """Issue 15, finding 9: a line that is not JSON was answered with nothing."""
    import json
    import subprocess

    path = tmp_path / "invoice.pdf"
    path.write_bytes(dv.samples.invoice_pdf())
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    lines = ["this is not json", '{"hello": "world"}', json.dumps(init)]
    with subprocess.Popen([sys.executable, "-m", "docvlm.integrations.mcp", str(path)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("\n".join(lines) + "\n")
            proc.stdin.flush()
            answers = [json.loads(proc.stdout.readline()) for _ in lines]
        finally:
            proc.kill()
            proc.wait(10)
    assert answers[0] == {"jsonrpc": "2.0", "id": None,
                          "error": {"code": -32700, "message": "Parse error: the line is not JSON"}}
    assert answers[1]["id"] is None and answers[1]["error"]["code"] == -32600
    assert answers[2]["id"] == 1 and answers[2]["result"]["serverInfo"]["name"] == "docvlm"  # still serving


def test_mcp_is_version_2() -> None:
    from importlib.metadata import version

    assert int(version("mcp").split(".")[0]) >= 2
