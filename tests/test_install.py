"""The slim install: docvlm's wheel with its core dependencies only (no torch, no extras) in a fresh venv.

The wheel is built from the sources and installed with ``pip install --no-deps``; its core dependencies (the
closure of the wheel's own ``Requires-Dist`` without extras) are linked in from this environment, so the test
needs no network and proves that what the wheel declares is enough: the CLI runs, ``import docvlm`` works, a
call to an OpenAI-compatible server works, and every optional feature tried says which extra to install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from email.parser import Parser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from zipfile import ZipFile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import docvlm

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: Never part of the slim install.
HEAVY = ("torch", "transformers", "outlines", "outlines_core", "langchain_core", "pandas", "mcp", "playwright",
         "ray", "supervision", "starlette", "uvicorn", "accelerate", "gguf", "numba", "llama_cpp")


def core_closure(requirements: list[str]) -> dict[str, Distribution]:
    """The installed distributions that ``requirements`` (without extras) need, transitively."""
    found: dict[str, Distribution] = {}
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:  # pragma: no cover - the dev environment lacks a core dependency
            pytest.fail(f"core dependency {req} is not installed here")
        assert req.specifier.contains(dist.version, prereleases=True), f"{req} but {dist.version} is installed"
        found[name] = dist
        todo.extend(dist.requires or [])
    return found


def link_distribution(dist: Distribution, site: Path) -> None:
    """Make ``dist`` importable in ``site`` by linking its top-level files and folders (and its metadata)."""
    source = Path(str(dist.locate_file("")))
    tops = {Path(str(f)).parts[0] for f in dist.files or []}
    for top in tops - {"..", "__pycache__"}:
        target = site / top
        if (source / top).exists() and not target.exists():
            target.symlink_to(source / top)


class FakeServer(ThreadingHTTPServer):
    """An OpenAI-compatible server that answers every chat completion with ``answer`` and keeps the requests."""

    answer = '{"total": 145.78, "currency": "EUR"}'

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append(body)
        data = json.dumps({"id": "1", "object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": self.server.answer}, "finish_reason": "stop"}]})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def slim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the fresh venv's bin folder, the wheel)."""
    tmp = tmp_path_factory.mktemp("slim")
    src = tmp / "src"  # build from a copy: setuptools writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT / "docvlm", src / "docvlm", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, timeout=300, capture_output=True)
    (wheel,) = (tmp / "dist").glob("docvlm-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    with ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(zf.read(meta).decode()).get_all("Requires-Dist") or []
    closure = core_closure(requires)
    assert not set(closure) & {canonicalize_name(h) for h in HEAVY}, sorted(closure)
    for dist in closure.values():
        link_distribution(dist, site)
    yield venv / "bin", wheel


def run(bin_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                          cwd=bin_dir.parent, check=False)


def test_the_wheel_declares_a_slim_core_and_ships_license_and_types(slim: tuple[Path, Path]) -> None:
    _, wheel = slim
    with ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(zf.read(meta).decode())
    assert "docvlm/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert any(u.startswith("Repository, https://") for u in metadata.get_all("Project-URL") or [])
    core = {canonicalize_name(Requirement(r).name) for r in metadata.get_all("Requires-Dist") or []
            if "extra ==" not in r}
    assert core == {"pydantic", "typing-extensions", "numpy", "pillow", "pymupdf", "opencv-python-headless",
                    "httpx", "typer", "rich"}
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"local", "langchain", "mcp", "web", "ray", "serve", "ocr", "eval", "finetune", "docs", "dev", "all"} <= extras


def test_the_cli_runs_without_torch(slim: tuple[Path, Path]) -> None:
    bin_dir, _ = slim
    res = run(bin_dir, "python", "-c", f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])")
    assert res.stdout.strip() == "[]", res.stdout + res.stderr  # none of them is installed in the venv
    res = run(bin_dir, "docvlm", "--version")
    assert res.returncode == 0 and res.stdout.strip() == f"docvlm {docvlm.__version__}", res.stderr
    res = run(bin_dir, "docvlm", "--help")
    assert res.returncode == 0 and "extract" in res.stdout, res.stderr


def test_a_slim_install_calls_a_server_and_names_the_extra_it_lacks(slim: tuple[Path, Path]) -> None:
    bin_dir, _ = slim
    server = FakeServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    code = textwrap.dedent(f"""
        import sys
        from typing import Literal
        from pydantic import BaseModel
        import docvlm as dv

        class Total(BaseModel):
            total: float
            currency: Literal["EUR", "USD"]

        model = dv.load_model("openai:fake@http://127.0.0.1:{server.server_port}/v1")
        print("ANSWER", model.generate("What is the total?", Total).model_dump_json())
        doc = dv.open(dv.samples.invoice_pdf())
        print("WORDS", len(doc[0].words()))
        table = dv.find_tables(doc[0])[0]
        from docvlm.integrations import langchain
        boxes = dv.Detections(detections=[dv.Detection(label="x", box=dv.BoundingBox(x0=0, y0=0, x1=1, y1=1, space="pixel"))])
        for attempt in (lambda: dv.load_model("default"), table.to_pandas, lambda: langchain.tools(doc),
                        lambda: langchain.DocvlmLoader(dv.samples.invoice_pdf()), boxes.to_supervision):
            try:
                attempt()
            except dv.MissingDependencyError as exc:
                print("MISSING", exc.extra, str(exc))
        assert not [m for m in sys.modules if m.split(".")[0] in {list(HEAVY)!r}]
    """)
    try:
        res = run(bin_dir, "python", "-c", code)
    finally:
        server.shutdown()
        server.server_close()
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == 'ANSWER {"total":145.78,"currency":"EUR"}'
    assert int(lines[1].split()[1]) > 40
    assert [line.split()[1] for line in lines[2:]] == ["local", "pandas", "langchain", "langchain", "supervision"]
    assert "pip install 'docvlm[local]'" in lines[2] and "torch" in lines[2]
    (request,) = server.requests
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"]["properties"]["currency"]["enum"] == ["EUR", "USD"]


def test_a_missing_extra_is_one_line_from_the_cli(slim: tuple[Path, Path], tmp_path: Path) -> None:
    bin_dir, _ = slim
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(docvlm.samples.invoice_pdf())
    schema = tmp_path / "schema.py"
    schema.write_text("from pydantic import BaseModel\nclass Invoice(BaseModel):\n    total: float\n")
    res = run(bin_dir, "docvlm", "extract", str(pdf), "--schema", f"{schema}:Invoice")
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        "docvlm: error: the offline default model needs the package 'torch', which is not installed "
        "(pip install 'docvlm[local]')"]
