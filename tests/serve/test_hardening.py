"""Regression tests for the ``docvlm serve`` findings of issue 15: no request can hang the server, exhaust its
memory or threads, or get a 500 for being malformed.

1. a small json_schema whose automaton explodes (arrays nested 60 deep, ``maxItems: 2``) compiled for 15 minutes;
2. a 140 KB palette PNG of 12000x12000 took the server from 240 MB to 941 MB;
7. ``text/plain`` bodies accepted; no socket timeouts (a bad Content-Length or half-open connections held a thread
   each); a deeply nested body and the pattern ``^(x{1000}){1000}$`` gave 500; ``temperature: NaN`` was accepted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.serve import nested_arrays, palette_bomb
from docvlm.decoding import Limits
from docvlm.serve import DocVLMServer, ServeLimits

from .conftest import Live, ScriptModel, start, stop

USER = [{"role": "user", "content": "x"}]


def _post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("timeout", 30)  # a hang fails the test instead of stalling the suite
    return httpx.post(f"{url}/chat/completions", json=body, **kwargs)


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}


@pytest.fixture(scope="module")
def bomb() -> str:
    data = palette_bomb(12000, 12000)
    assert len(data) < 150_000  # 140 KB, as in the issue
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def strict_server() -> Iterator[Live]:
    """A server with short timeouts and few workers, over a model whose own state bound is lifted (so that the
    server's compile time limit is what stops a slow schema)."""
    backend = ScriptModel()
    backend.limits = Limits(max_states=10**8, max_depth=64)
    limits = ServeLimits(compile_timeout_s=0.1, request_timeout_s=2, header_timeout_s=0.5, body_timeout_s=0.5,
                         max_concurrency=4)
    server, thread = start(backend, model_name="strict", limits=limits)
    yield Live(server, backend)
    stop(server, thread)


@pytest.fixture
def strict(strict_server: Live) -> Live:
    strict_server.backend.reset()
    return strict_server


# ---------------------------------------------------------------------------------------------------
# 1: constraint compilation is bounded
# ---------------------------------------------------------------------------------------------------


def test_arrays_nested_60_deep_answer_400(live: Live) -> None:
    response = _post(live.url, _json_schema(nested_arrays(60)))
    assert response.status_code == 400
    assert "nests more than 32 levels" in response.json()["error"]["message"]
    assert live.backend.requests == []


def test_a_schema_under_the_depth_limit_stops_at_the_state_bound(live: Live) -> None:
    response = _post(live.url, _json_schema(nested_arrays(20)))
    assert response.status_code == 400
    assert "Limits.max_states=200,000" in response.json()["error"]["message"]


def test_compiling_stops_at_the_servers_time_limit(strict: Live) -> None:
    # the model's state bound is lifted: only the server's 0.1 s compile limit stops this (about 1 s of work)
    response = _post(strict.url, _json_schema(nested_arrays(14)))
    assert response.status_code == 400
    assert "longer than its budget of 0.1 s" in response.json()["error"]["message"]
    assert strict.backend.requests == []


def test_the_pattern_x1000_1000_answers_400(live: Live) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(x{1000}){1000}$"}}}
    response = _post(live.url, _json_schema(schema))
    assert response.status_code == 400 and "pydantic cannot build a validator" in response.json()["error"]["message"]
    response = _post(live.url, {"messages": USER, "guided_regex": "^(x{1000}){1000}$"})
    assert response.status_code == 400 and "1,000,000 states" in response.json()["error"]["message"]


def test_a_client_that_leaves_is_not_answered_by_the_model(strict: Live) -> None:
    strict.backend.reset(lambda r, i: "done", delay=1.0)
    first = threading.Thread(target=_post, args=(strict.url, {"messages": USER}))
    first.start()  # occupies the model for 1 s
    time.sleep(0.3)
    with pytest.raises(httpx.ReadTimeout):  # the second client gives up while its request waits for the model
        _post(strict.url, {"messages": [{"role": "user", "content": "second"}], "guided_choice": ["a", "b"]},
              timeout=0.4)
    first.join(10)
    time.sleep(1.2)  # the model is free again: a dropped request would have run by now
    assert [r.messages[-1].text for r in strict.backend.requests] == ["x"]


def test_requests_past_the_timeout_get_504(strict: Live) -> None:
    strict.backend.reset(lambda r, i: "late", delay=2.5)
    response = _post(strict.url, {"messages": USER})
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    time.sleep(0.5)  # let the model finish, so later tests start clean


# ---------------------------------------------------------------------------------------------------
# 2: images are refused from their header
# ---------------------------------------------------------------------------------------------------


def test_a_palette_png_bomb_is_refused_before_decoding(live: Live, bomb: str) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": bomb}}]}]}
    response = _post(live.url, body)
    assert response.status_code == 413
    message = response.json()["error"]["message"]
    assert "12000x12000 = 144 megapixels" in message and "budget of 25,000,000 pixels per image" in message
    assert live.backend.requests == []


def test_an_image_over_the_decode_budget_says_bytes_not_pixels() -> None:
    """Within the pixel budget but over the shared decode budget (bytes): the 413 names that budget."""
    import io

    from PIL import Image

    from docvlm.limits import override_limits
    from docvlm.serve._protocol import HTTPError, ImageBudget, decode_image

    buf = io.BytesIO()
    Image.new("RGB", (800, 800), "white").save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    with override_limits(max_image_bytes=2**20), pytest.raises(HTTPError) as caught:
        decode_image(url, "messages[0].content[0]", ImageBudget(per_image=10**7, per_request=10**7))
    assert caught.value.status == 413
    assert "MiB, over the budget of 1 MiB" in str(caught.value) and "pixels" not in str(caught.value)


def test_images_share_a_per_request_budget() -> None:
    from PIL import Image

    def png(size: tuple[int, int]) -> str:
        import io

        buf = io.BytesIO()
        Image.new("L", size).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    backend = ScriptModel()
    server, thread = start(backend, limits=ServeLimits(max_image_pixels=10_000, max_request_pixels=15_000))
    try:
        part = {"type": "image_url", "image_url": {"url": png((100, 80))}}  # 8,000 pixels
        one = _post(server.url, {"messages": [{"role": "user", "content": [part]}]})
        assert one.status_code == 200
        assert backend.requests[0].images[0].size == (100, 80)
        two = _post(server.url, {"messages": [{"role": "user", "content": [part, part]}]})
        assert two.status_code == 413 and "left for this request's images (7,000)" in two.json()["error"]["message"]
        assert len(backend.requests) == 1
    finally:
        stop(server, thread)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak memory from /proc")
def test_server_memory_stays_flat_under_four_bombs_at_once(bomb: str) -> None:
    """The real ``docvlm serve`` process: its peak memory (VmHWM) after four bombs sent together."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen([sys.executable, "-m", "docvlm", "serve", "--model", "test", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            match = re.search(r"at (http://\S+)", proc.stdout.readline())
            assert match
            url = match.group(1)
            assert httpx.get(f"{url}/models", timeout=30).status_code == 200

            def kib(field: str) -> int:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
                assert found
                return int(found.group(1))

            before = kib("VmRSS")
            body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": bomb}}]}]}
            codes: list[int] = []
            threads = [threading.Thread(target=lambda: codes.append(_post(url, body).status_code)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert codes == [413] * 4
            grown_mib = (kib("VmHWM") - before) / 1024
            assert grown_mib < 150, f"the server's peak memory grew by {grown_mib:.0f} MiB"  # was ~700 MiB per bomb
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------
# 7: content type, lengths, timeouts, malformed bodies, threads
# ---------------------------------------------------------------------------------------------------


def test_text_plain_bodies_get_415(live: Live) -> None:
    """A browser sends text/plain cross-site without a preflight: the server does not read such bodies."""
    response = httpx.post(f"{live.url}/chat/completions", content=json.dumps({"messages": USER}),
                          headers={"Content-Type": "text/plain"}, timeout=30)
    assert response.status_code == 415 and "application/json" in response.json()["error"]["message"]
    assert live.backend.requests == []


def _raw(server: DocVLMServer, head: str, body: bytes = b"", *, wait: float = 10) -> bytes:
    """Send raw bytes and read what comes back until the server closes or ``wait`` seconds pass."""
    with socket.create_connection(server.server_address, timeout=wait) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + body)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and b'"error"' in out and out.rstrip().endswith(b"}"):
                    break
        except TimeoutError:
            pass
        return out


def _head(length: str) -> str:
    return (f"POST /v1/chat/completions HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
            f"Content-Length: {length}\n\n")


def test_bad_content_lengths_are_answered_at_once(strict: Live) -> None:
    assert _raw(strict.server, _head("-5")).startswith(b"HTTP/1.1 400")
    assert _raw(strict.server, _head("12x")).startswith(b"HTTP/1.1 400")
    too_big = _raw(strict.server, _head(str(10**12)))
    assert too_big.startswith(b"HTTP/1.1 413") and b"over the limit of 33,554,432" in too_big


def test_a_body_shorter_than_its_content_length_times_out_with_408(strict: Live) -> None:
    answer = _raw(strict.server, _head("100"), b'{"messages": [')  # then nothing more
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in answer


def test_half_open_connections_are_closed_and_take_no_threads(strict: Live) -> None:
    threads_before = threading.active_count()
    socks = []
    for i in range(300):
        sock = socket.create_connection(strict.server.server_address, timeout=10)
        if i % 2:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
        socks.append(sock)
    try:
        assert threading.active_count() - threads_before <= 2  # connections are tasks on the loop, not threads
        time.sleep(1.5)  # past the 0.5 s header timeout
        closed = 0
        for sock in socks:
            sock.settimeout(5)
            try:
                closed += sock.recv(1) == b""
            except OSError:  # reset by the server
                closed += 1
        assert closed == 300
        assert _post(strict.url, {"messages": USER}).status_code == 200  # and the server still answers
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests deeper than"),
    (b'{"messages": ' + b"[" * 70 + b"]" * 70 + b"}", "nests 71 levels deep, more than 64"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "NaN is not JSON"),
    (b'{"messages": [{"role": "user", "content": "x"}], "top_p": Infinity}', "Infinity is not JSON"),
    (b'{"messages": [{"role": "user", "content": "x"}], "seed": 1' + b"0" * 5000 + b"}", "not JSON"),
    (b"\xff\xfe{", "not JSON"),
])
def test_malformed_bodies_get_400(live: Live, raw: bytes, message: str) -> None:
    response = httpx.post(f"{live.url}/chat/completions", content=raw,
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]
    assert live.backend.requests == []


def test_worker_threads_stay_bounded_under_many_requests(strict: Live) -> None:
    strict.backend.reset(lambda r, i: "ok", delay=0.2)

    def workers() -> set[int]:
        return {t.ident or 0 for t in threading.enumerate() if t.name.startswith("AnyIO worker")}

    before = workers()
    peak: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(len(workers() - before))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    codes: list[int] = []
    clients = [threading.Thread(target=lambda: codes.append(_post(strict.url, {"messages": USER}).status_code))
               for _ in range(24)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(60)
    done.set()
    watcher.join()
    assert codes.count(200) + codes.count(504) == 24 and codes.count(200) >= 4
    assert 1 <= max(peak) <= 4  # max_concurrency=4
