"""``docvlm agent``: the agent through the command line, with a scripted model in place of a loaded one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import docvlm as dv
from docvlm import cli
from docvlm.models import FunctionInfo, Message

runner = CliRunner()
TOTAL = {"x0": 470, "y0": 395, "x1": 541, "y1": 408}


def script(messages: list[Message], info: FunctionInfo) -> Any:
    if info.call_index == 0:
        return {"tool": "zoom", "args": {"page": 0, "box": {"x0": 300, "y0": 380, "x1": 560, "y1": 420}, "dpi": 144}}
    if info.call_index == 1:
        return {"tool": "read_text", "args": {"page": 0, "box": {"x0": 300, "y0": 380, "x1": 560, "y1": 420}}}
    return {"tool": "answer", "args": {"text": "EUR 145.78", "citations": [{"page": 0, "box": TOTAL, "quote": "EUR 145.78"}]}}


@pytest.fixture
def invoice(tmp_path: Path) -> Path:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(dv.samples.invoice_pdf())
    return path


def test_agent_prints_the_result_and_writes_the_trace(invoice: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    specs: list[str] = []
    monkeypatch.setattr(cli, "_load", lambda spec: specs.append(spec) or dv.FunctionModel(script))
    out = tmp_path / "trace.html"
    res = runner.invoke(cli.app, ["agent", str(invoice), "What is the total?", "--model", "scripted",
                                  "--max-steps", "4", "--trace", str(out)])
    assert res.exit_code == 0, res.output
    assert specs == ["scripted"]
    result = json.loads(res.stdout)
    assert result["answer"]["text"] == "EUR 145.78"
    assert result["answer"]["citations"][0]["box"]["x0"] == 470
    assert [s["tool"] for s in result["trace"]["steps"]] == ["zoom", "read_text", "answer"]
    assert result["trace"]["steps"][1]["text"] == "Total:   EUR 145.78"
    assert result["steps"] == 3 and result["images"] == 1 and result["trace"]["outcome"] == "answered"
    page = out.read_text()
    assert [m for m in re.findall(r"<code class='tool'>(\w+)</code>", page)] == ["zoom", "read_text", "answer"]
    # zoom: the crop and the page with its region; read_text: its region; answer: the citation, in the step and below
    assert page.count("<img src='data:image/jpeg;base64,") == 5
    assert f"wrote the trace -> {out}" in res.stderr


def test_agent_out_of_steps_exits_1_and_still_writes_the_trace(invoice: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def wandering(messages: list[Message], info: FunctionInfo) -> Any:
        if info.call_index == 0:
            return {"tool": "list_pages", "args": {}}
        return {"tool": "answer", "args": {"text": "?", "citations": [
            {"page": 0, "box": {"x0": 900, "y0": 900, "x1": 950, "y1": 950}, "quote": ""}]}}

    monkeypatch.setattr(cli, "_load", lambda spec: dv.FunctionModel(wandering))
    out = tmp_path / "partial.html"
    res = runner.invoke(cli.app, ["agent", str(invoice), "What is the total?", "--max-steps", "2", "--trace", str(out)])
    assert res.exit_code == 1
    assert res.stdout == ""
    assert "docvlm: error: " in res.stderr and "did not answer within max_steps=2" in res.stderr
    page = out.read_text()
    assert re.findall(r"<code class='tool'>(\w+)</code>", page) == ["list_pages", "answer"]
    assert "is outside page 0" in page and "<dd>steps</dd>" in page


def test_agent_bad_file_is_a_one_line_error(tmp_path: Path) -> None:
    res = runner.invoke(cli.app, ["agent", str(tmp_path / "missing.pdf"), "task", "--model", "test"])
    assert res.exit_code == 1 and res.stderr.startswith("docvlm: error: ") and len(res.stderr.splitlines()) == 1
