"""Batch extraction against a real ``docvlm serve`` on 127.0.0.1: requests overlap, and never more than asked.

The count is taken on the server side: the server increments a counter when a chat completion request
arrives and decrements it when the answer is ready, under a lock, and keeps the highest value seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from docvlm.batch import read_records, run_batch
from docvlm.models import TestModel
from docvlm.serve import DocVLMServer
from docvlm.synth import generate_dataset

SCHEMA = '''
from pydantic import BaseModel


class Loose(BaseModel):
    invoice_number: str | None = None
    total: float | None = None
'''


class SlowModel(TestModel):
    """A TestModel that takes 0.15 s per batch, so that requests from several clients overlap."""

    def generate_batch(self, prompts: Sequence[Any], output_type: Any = str, **kwargs: Any) -> list[Any]:
        time.sleep(0.15)
        return super().generate_batch(prompts, output_type, **kwargs)


class CountingServer(DocVLMServer):
    """``docvlm serve`` that records how many chat completions are being answered at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count_lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.answered = 0

    def answer(self, body: Any) -> dict[str, Any]:
        with self.count_lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        try:
            return super().answer(body)
        finally:
            with self.count_lock:
                self.current -= 1
                self.answered += 1

    def reset(self) -> None:
        with self.count_lock:
            self.current = self.peak = self.answered = 0


@pytest.fixture(scope="module")
def server() -> Iterator[CountingServer]:
    srv = CountingServer(SlowModel(), ("127.0.0.1", 0), model_name="slow-test", max_batch_size=8)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("served")
    for i, doc in enumerate(generate_dataset("invoice", 12, 3)):
        (root / f"invoice-{i:02d}.pdf").write_bytes(doc.pdf)
    schema_file = root / "served_schema.py"
    schema_file.write_text(SCHEMA)
    return root, f"{schema_file}:Loose"


@pytest.mark.parametrize(("workers", "concurrency"), [(2, 3), (2, 1)])
def test_requests_in_flight_overlap_and_stay_bounded(server: CountingServer, inputs: tuple[Path, str],
                                                     tmp_path: Path, workers: int, concurrency: int) -> None:
    folder, schema = inputs
    server.reset()
    spec = f"openai:slow-test@{server.url}"
    out = tmp_path / "out.jsonl"
    summary = run_batch([folder], schema=schema, model=spec, output=out, workers=workers, concurrency=concurrency)
    assert (summary.done, summary.failed) == (12, 0)
    records = list(read_records(out))
    assert len({r["sha256"] for r in records}) == 12
    assert all(r["model"] == spec and set(r["value"]) == {"invoice_number", "total"} for r in records)
    assert server.answered == 12  # one request per document (no tables in the schema)
    assert server.current == 0
    if concurrency == 1:
        assert server.peak == 1
    else:
        # 2 workers x 2 threads could send 4 at once: the shared semaphore holds them to 3
        assert 1 < server.peak <= concurrency
