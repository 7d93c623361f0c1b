"""``docvlm finetune`` trains an adapter from a labelled dataset; ``docvlm eval --adapter`` scores the adapted model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docvlm.cli import app

pytest.importorskip("trl")
pytestmark = pytest.mark.slow
runner = CliRunner()


def test_finetune_then_eval_with_the_adapter(tiny_model: Callable[[str], Path], tmp_path: Path,
                                             torch_one_thread: None) -> None:
    folder = str(tiny_model("llama"))
    out = tmp_path / "adapter"
    res = runner.invoke(app, ["-q", "finetune", "--task", "extract", "--data", "invoice:1", "--format", "synthetic",
                              "--base", folder, "-o", str(out), "--max-steps", "3", "--lr", "0.02"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["adapter"] == str(out) and summary["steps"] == 3 and summary["examples"] >= 6
    assert (out / "adapter_model.safetensors").is_file() and len((out / "loss.jsonl").read_text().splitlines()) == 3
    report = tmp_path / "report"
    res = runner.invoke(app, ["-q", "eval", "--task", "extract", "--data", "invoice:1", "--format", "synthetic",
                              "--model", folder, "--adapter", str(out), "-o", str(report)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == f"transformers:{folder}+adapter:{out}"
    res = runner.invoke(app, ["eval", "--task", "extract", "--data", "invoice:1", "--format", "synthetic",
                              "--model", folder, "--adapter", str(tmp_path / "nowhere"), "-o", str(report)])
    assert res.exit_code == 1 and "no adapter folder" in res.output


def test_finetune_rejects_an_unknown_task(tmp_path: Path) -> None:
    res = runner.invoke(app, ["finetune", "--task", "summarize", "--data", "invoice:1", "--format", "synthetic",
                              "--base", "test", "-o", str(tmp_path / "a")])
    assert res.exit_code == 2 and "unknown fine-tuning task" in res.output
