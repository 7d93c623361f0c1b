"""The CLI through a real subprocess (the installed ``docvlm`` entry point) and typer's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docvlm.cli import app

runner = CliRunner()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docvlm", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_info_json(files: dict[str, Path]) -> None:
    res = runner.invoke(app, ["info", str(files["rotated90.pdf"])])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["format"] == "pdf" and info["page_count"] == 1
    assert info["pages"][0]["rotation"] == 90 and info["pages"][0]["has_text_layer"] is True
    assert (info["pages"][0]["width"], info["pages"][0]["height"]) == (300.0, 200.0)


def test_info_encrypted_with_password(files: dict[str, Path]) -> None:
    res = runner.invoke(app, ["info", str(files["encrypted.pdf"]), "--password", "s3cret"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["encrypted"] is True


def test_render_pages_and_names(files: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(app, ["render", str(files["multi.pdf"]), "--pages", "1-2,5", "--dpi", "72", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page-0001.png", "page-0002.png", "page-0005.png"]
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["page"], r["width"], r["height"]) for r in lines] == [(0, 300, 200), (1, 300, 200), (4, 300, 200)]


def test_render_max_pixels(files: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(app, ["render", str(files["huge.pdf"]), "--max-pixels", "1000000", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (row,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert row["width"] * row["height"] <= 1_000_000 and row["width"] > 900


def test_words_json_lines(files: dict[str, Path]) -> None:
    res = runner.invoke(app, ["words", str(files["multi.pdf"]), "--pages", "2-3"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["page"], r["text"]) for r in rows] == [(1, "Hello1"), (2, "Hello2")]
    box = rows[0]["box"]
    assert box["space"] == "page" and box["image_size"] is None
    assert box["x0"] == pytest.approx(50, abs=0.01) and box["y0"] < 60 < box["y1"] and box["x1"] > box["x0"]
    assert all(round(box[k], 3) == box[k] for k in ("x0", "y0", "x1", "y1"))


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        # the work failed: the document is missing, unreadable or too big (exit 1)
        (["info", "{missing}"], 1, "no such file"),
        (["info", "{notes.txt}"], 1, "not a PDF or a supported image"),
        (["info", "{truncated.pdf}"], 1, "not a readable PDF"),
        (["info", "{encrypted.pdf}"], 1, "needs a password"),
        (["info", "{encrypted.pdf}", "--password", "bad"], 1, "password is wrong"),
        (["words", "{bomb.png}"], 1, "megapixels, over the limit"),
        (["info", "{zero-pages.pdf}"], 1, "no pages"),
        (["render", "{huge.pdf}", "--dpi", "600", "-o", "{tmp}"], 1, "over the budget"),
        # the command was used wrongly (exit 2)
        (["render", "{multi.pdf}", "--pages", "7", "-o", "{tmp}"], 2, "outside the document's pages 1-5"),
        (["render", "{multi.pdf}", "--pages", "x-2", "-o", "{tmp}"], 2, "bad page range"),
    ],
)
def test_bad_input_is_one_line_with_its_exit_status(files: dict[str, Path], tmp_path: Path, args: list[str],
                                                    status: int, message: str) -> None:
    def fill(a: str) -> str:
        if a == "{missing}":
            return str(tmp_path / "missing.pdf")
        if a == "{tmp}":
            return str(tmp_path / "out")
        if a.startswith("{"):
            return str(files[a[1:-1]])
        return a

    res = run_cli(*[fill(a) for a in args])
    assert res.returncode == status, (res.stdout, res.stderr)
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("docvlm: error: "), res.stderr
    assert message in err[0]
    assert "Traceback" not in res.stderr


def test_debug_shows_traceback(files: dict[str, Path]) -> None:
    res = run_cli("--debug", "info", str(files["truncated.pdf"]))
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "CorruptDocumentError" in res.stderr


@pytest.mark.slow
def test_demo(tmp_path: Path) -> None:
    """The README's main job: typed extraction with evidence from a PDF and a scan, offline, with an HTML report."""
    res = runner.invoke(app, ["demo", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "default"
    born = summary["documents"][str(tmp_path / "invoice.pdf")]
    assert born["value"]["invoice_number"] == "INV-2026-0042" and born["value"]["total"] == 145.78
    assert [i["description"] for i in born["value"]["items"]] == ["Torque wrench", "Socket set, 40 pieces", "Safety gloves"]
    assert born["evidence"]["total"]["quote"] == "145.78" and born["evidence"]["total"]["box"]["space"] == "page"
    scanned = summary["documents"][str(tmp_path / "invoice-scan.png")]
    assert scanned["value"]["invoice_number"] == "INV-2026-0042"  # read by OCR from the scan
    # line items come from a table found in the OCR words (RapidOCR reads every row of the scan; a row whose
    # required cell does not read is left out with a warning: tests/tasks/test_extract.py)
    assert [i["amount"] for i in scanned["value"]["items"]] == [37.5, 64.0, 21.0]
    assert scanned["warnings"] == [] and born["warnings"] == []
    assert scanned["evidence"]["invoice_number"]["box"]["x1"] > 0
    report = (tmp_path / "report.html").read_text()
    assert report.count("<img src='data:image/png;base64,") == 2 and "INV-2026-0042" in report
    assert "report with every field's evidence box drawn" in res.stdout


def test_serve_runs_an_openai_compatible_server_process() -> None:
    """`docvlm serve` in its own process, called over real HTTP by OpenAIModel."""
    with subprocess.Popen([sys.executable, "-m", "docvlm", "serve", "--model", "test:3", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        _talk_to_server(proc)


def _talk_to_server(proc: subprocess.Popen[str]) -> None:
    import re
    from typing import Literal

    from docvlm.models.openai import OpenAIModel

    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"at (http://\S+)", line)
        assert match, line
        with OpenAIModel("test", base_url=match.group(1), api_key="none") as model:
            assert model.generate("is it?", Literal["yes", "no"]) in ("yes", "no")
            assert isinstance(model.generate("a number", int), int)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_task_commands_with_a_scripted_model(files: dict[str, Path], tmp_path: Path) -> None:
    """extract / ask / ground / tables / read through the CLI, JSON out, --draw writes a PNG."""
    pdf = tmp_path / "invoice.pdf"
    import docvlm as dv

    pdf.write_bytes(dv.samples.invoice_pdf())
    schema = tmp_path / "schema.py"
    schema.write_text("from pydantic import BaseModel\nclass Inv(BaseModel):\n    invoice_number: str | None = None\n")
    res = runner.invoke(app, ["extract", str(pdf), "--schema", f"{schema}:Inv", "--model", "test:2",
                              "--draw", str(tmp_path / "ex.png")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"value", "evidence", "model"} and out["model"] == "test"
    assert (tmp_path / "ex.png").read_bytes()[:4] == b"\x89PNG"
    res = runner.invoke(app, ["tables", str(pdf)])
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout.splitlines()[0])
    assert first["shape"] == [4, 4] and "| Torque wrench | 2 | 18.75 | 37.50 |" in first["markdown"]
    res = runner.invoke(app, ["read", str(pdf)])
    assert json.loads(res.stdout)["text"].startswith("Acme Tools GmbH")
    res = runner.invoke(app, ["ground", str(pdf), "the total", "--model", "test:1"])
    assert res.exit_code == 0, res.output
    for line in res.stdout.splitlines():
        box = json.loads(line)["box"]
        assert box["space"] == "page" and 0 <= box["x0"] <= box["x1"] <= 595 and 0 <= box["y0"] <= box["y1"] <= 842
    res = run_cli("detect", str(pdf), "--labels", "logo", "--model", "test", "--page", "3")
    assert res.returncode == 2 and "outside the document's pages 1-1" in res.stderr
