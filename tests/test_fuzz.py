"""The fuzz run in CI (issue 15): a bounded, derandomized run of every target, and the crashers it found replayed.

The fuzzing itself lives in ``tests/fuzz`` (``python -m tests.fuzz --minutes N`` for a longer run); here it runs in
a subprocess so that its watchdog (a hang ends the process) and its memory check (the peak RSS of a process that
does nothing else) hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGRESSIONS = ROOT / "tests" / "regressions"

# every file the fuzzer (or the stress run) found, and what docvlm now answers: a result or a typed error
EXPECTED = {
    "invalid-page-count.pdf": "CorruptDocumentError",  # issue 15 finding 8 (a traceback and exit 1 before)
    # fuzzer: a 10^11 x 150 pt MediaBox rendered within the pixel budget was 0 pixels high (a pydantic traceback)
    "fuzz-pdf-elongated-mediabox.pdf": "PageTooLargeError",
    "story-inline-svg.html": "ok",  # fuzzer: MuPDF's HTML layout placed an unsized <svg> on page after page, forever
    "story-deep-nesting.html": "PageTooLargeError",  # MuPDF's HTML parser: 12,000 nested <b><i><u> took 1.2 GB
    "story-table-staircase.html": "ok",  # rows of colspan=1000 rowspan=1000: MuPDF asked for 3 GB, docvlm's grid 1 GB
    "story-unclosed-tags.html": "ok",  # "<a x " repeated: quadratic in a regex and in HTMLParser (100 KB: minutes)
}


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tests.fuzz", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, check=False)


def test_every_regression_file_is_listed_and_replays_to_its_outcome() -> None:
    files = sorted(REGRESSIONS.iterdir())
    assert sorted(p.name for p in files) == sorted(EXPECTED), "list a new crasher's outcome in EXPECTED"
    res = _run("--replay", *map(str, files), "--timeout", "60", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout) == EXPECTED


def test_the_invalid_page_count_pdf_is_one_line_and_a_failed_run_from_every_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from docvlm.cli import EXIT_FAILURE, app

    pdf = str(REGRESSIONS / "invalid-page-count.pdf")
    expected = f"docvlm: error: {pdf}: MuPDF failed counting the pages (code=7: Invalid number of pages)"
    # the real process: its exit status and its whole stderr
    res = subprocess.run([sys.executable, "-m", "docvlm", "info", pdf], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert res.returncode == EXIT_FAILURE and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(expected)
    for command in (["words", pdf], ["render", pdf, "-o", str(tmp_path)]):
        out = CliRunner().invoke(app, command)
        assert out.exit_code == EXIT_FAILURE and out.output.startswith(expected), out.output


@pytest.mark.slow
def test_a_bounded_derandomized_fuzz_run_finds_nothing() -> None:
    examples = 100
    res = _run("--examples", str(examples), "--derandomize", "--timeout", "120", "--max-rss-mb", "1024", timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-6000:]
    summary = json.loads(res.stdout)
    assert summary["status"] == "ok" and summary["peak_rss_mb"] < 1024
    targets = summary["targets"]
    assert sorted(targets) == ["html", "image", "pdf", "tools"]
    for name, found in targets.items():
        assert found["examples"] == examples, name
    # the mutations reach both sides: inputs that still open and inputs refused with a typed error
    for name in ("pdf", "image"):
        outcomes = targets[name]["outcomes"]
        assert outcomes.get("ok", 0) > 0 and sum(v for k, v in outcomes.items() if k != "ok") > 0, (name, outcomes)
    assert targets["tools"]["outcomes"] == {"ok": examples}  # a tool call never raises
