"""What hostile requests cost a real ``docvlm serve`` process: peak memory under image bombs, time to refuse
schemas whose constraint explodes.

Usage: python -m bench.serve [--bombs 1,4] [--timeout 120]

Starts ``python -m docvlm serve --model test --port 0`` (the code on ``PYTHONPATH``) once per measurement and

- sends N copies at once of a 140 KB, 12000 x 12000 palette PNG as a ``data:`` URL, then reads the server's
  resident memory before and its peak (``VmHWM``) after from ``/proc`` (Linux);
- times the answer to a 2.3 KB ``json_schema`` of arrays nested 60 deep (``maxItems: 2``), the same nested 16
  deep (under the depth limit: the automaton bound stops it), the pattern ``^(x{1000}){1000}$``, and, as the
  baseline, a plain request, on the same server.

Prints one JSON object. The statuses say what the server answered (``413`` / ``400`` when it refuses;
``timeout`` when no answer came within ``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def palette_bomb(width: int, height: int) -> bytes:
    """An all-black 8-bit palette PNG: a few hundred KB that decode to ``width * height`` bytes and more."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + one palette index per pixel
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(6)) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def nested_arrays(depth: int) -> dict[str, Any]:
    """``{"type": "array", "items": ..., "maxItems": 2}`` nested ``depth`` times around an integer."""
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema, "maxItems": 2}
    return schema


@contextmanager
def served() -> Iterator[tuple[str, int]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with subprocess.Popen([sys.executable, "-m", "docvlm", "serve", "--model", "test", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            match = re.search(r"at (http://\S+)", proc.stdout.readline())
            if match is None:
                raise SystemExit("docvlm serve did not start")
            url = match.group(1)
            httpx.get(f"{url}/models", timeout=60).raise_for_status()
            yield url, proc.pid
        finally:
            proc.kill()
            proc.wait(timeout=10)


def _mib(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else float("nan")


def _post(url: str, body: dict[str, Any], timeout: float) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        status = str(httpx.post(f"{url}/chat/completions", json=body, timeout=timeout).status_code)
    except httpx.TimeoutException:
        status = "timeout"
    return status, round(time.perf_counter() - start, 3)


def bombs(n: int, timeout: float) -> dict[str, Any]:
    url_data = "data:image/png;base64," + base64.b64encode(palette_bomb(12000, 12000)).decode()
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url_data}}]}]}
    with served() as (url, pid):
        before = _mib(pid, "VmRSS")
        statuses: list[str] = []
        threads = [threading.Thread(target=lambda: statuses.append(_post(url, body, timeout)[0])) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"bombs": n, "statuses": statuses, "rss_before_mib": round(before),
                "peak_mib": round(_mib(pid, "VmHWM")), "rss_after_mib": round(_mib(pid, "VmRSS"))}


def schemas(timeout: float) -> dict[str, Any]:
    user = [{"role": "user", "content": "x"}]

    def fmt(schema: dict[str, Any]) -> dict[str, Any]:
        return {"messages": user, "response_format": {"type": "json_schema",
                                                      "json_schema": {"name": "s", "schema": schema}}}

    cases = {
        "plain request (baseline)": {"messages": user},
        "arrays nested 60 deep": fmt(nested_arrays(60)),
        "arrays nested 16 deep": fmt(nested_arrays(16)),
        "pattern ^(x{1000}){1000}$": fmt({"type": "object", "properties": {
            "a": {"type": "string", "pattern": "^(x{1000}){1000}$"}}}),
    }
    out: dict[str, Any] = {"schema_bytes_60_deep": len(json.dumps(nested_arrays(60), separators=(",", ":")))}
    with served() as (url, _):
        for name, body in cases.items():
            status, seconds = _post(url, body, timeout)
            out[name] = {"status": status, "seconds": seconds}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bombs", default="1,4", help="how many bombs at once, per run (comma-separated)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for each answer")
    args = parser.parse_args()
    report: dict[str, Any] = {"python_path": os.environ.get("PYTHONPATH", "")}
    if Path("/proc/self/status").exists():
        report["image_bombs"] = [bombs(int(n), args.timeout) for n in args.bombs.split(",")]
    report["schemas"] = schemas(args.timeout)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
