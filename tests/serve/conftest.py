"""A live ``docvlm serve`` on 127.0.0.1 over a scripted model, shared by the serve tests."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from docvlm.models.base import Model, Request
from docvlm.serve import DocVLMServer, ServeLimits, make_server

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

Script = Callable[[Request, int], str]


class ScriptModel(Model):
    """Answers each request with ``script(request, index)``; records requests and batch sizes."""

    def __init__(self) -> None:
        self.spec = "script"
        self.supports_images = True
        self.reset()

    def reset(self, script: Script | None = None, delay: float = 0.0) -> None:
        self.script: Script = script or (lambda r, i: "ok")
        self.delay = delay
        self.requests: list[Request] = []
        self.batches: list[int] = []

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        self.batches.append(len(requests))
        if self.delay:
            time.sleep(self.delay)  # one model call, whatever the batch size: like a GPU batch
        out = []
        for r in requests:
            self.requests.append(r)
            out.append(self.script(r, len(self.requests) - 1))
        return out


class Live:
    """A server running in a thread, its URL and its scripted model."""

    def __init__(self, server: DocVLMServer, backend: ScriptModel) -> None:
        self.server, self.url, self.backend = server, server.url, backend
        self.root = server.url.removesuffix("/v1")


def start(backend: Model, **options: Any) -> tuple[DocVLMServer, threading.Thread]:
    server, _ = make_server(backend, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def stop(server: DocVLMServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(10)
    assert not thread.is_alive(), f"the server thread did not end; it waits in:\n{_stack_of(thread)}"


def _stack_of(thread: threading.Thread) -> str:
    """Where a thread is now (a teardown that fails says what the server still waits for)."""
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"


@pytest.fixture(scope="session")
def live_server() -> Iterator[Live]:
    backend = ScriptModel()
    server, thread = start(backend, model_name="scripted", limits=ServeLimits(request_timeout_s=30))
    yield Live(server, backend)
    stop(server, thread)


@pytest.fixture
def live(live_server: Live) -> Live:
    live_server.backend.reset()
    return live_server
