"""Stress run of issue 15's categories: crafted images, bad PDFs, URL vectors. Counts tracebacks, hangs and memory.

Usage: python -m bench.stress [--categories images,pdfs,urls] [--data DIR ...] [--timeout 60] [--max-rss-mb 1024]
                              [--json results.json] [--code CHECKOUT]

Every input runs in a fresh subprocess, as a user would run it: documents through ``python -m docvlm info``,
``words`` and ``render`` (the CLI); URL vectors through ``dv.open(url)`` with the library's defaults (what an
application that passes untrusted URLs gets) or with ``WebOptions(allow_hosts=("127.0.0.1",))`` where the vector
is about the allow-list. Each run is classified:

- ``ok`` (exit 0) or ``typed`` (exit 1 or 2, the CLI's failure and usage statuses, with one ``docvlm: error:``
  line and no traceback; for URL vectors, a typed error from the library);
- ``traceback``: a Python traceback on stderr, or any other exit status;
- ``hang``: still running after ``--timeout`` seconds (then killed);
- ``leak`` (URL vectors): the secret served by the local "other service" or the local file came back.

Peak memory is each subprocess's own ``ru_maxrss`` (from ``wait4``). Documents given with ``--data`` (e.g.
``../shared/realdev/tables-camelot/files``) are run too. Exit status 1 when any run is a traceback, a hang, a leak
or over ``--max-rss-mb``. Prints one line per run and a summary.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

SECRET = "SECRET-OF-THE-OTHER-SERVICE"


# ---------------------------------------------------------------------------------------------------------
# crafted inputs


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png(width: int, height: int, color_type: int, *, bit_depth: int = 8, real: bool = True) -> bytes:
    """A PNG of zeros (real: every row present, compressed) or a header with almost no pixel data."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = b"\x00" * (1 + (width * channels * bit_depth + 7) // 8)
    if real:
        comp = zlib.compressobj(1)
        idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    else:
        idat = zlib.compress(row)
    plte = _png_chunk(b"PLTE", b"\xff\xff\xff\x00\x00\x00") if color_type == 3 else b""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + plte + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _save(img: Any, fmt: str, **kw: Any) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def crafted_images() -> Iterator[tuple[str, bytes]]:
    from PIL import Image

    yield "rgba-12000x12000.png", png(12000, 12000, 6)  # issue 15 finding 4: 560 KB, 2.3 GB decoded before
    yield "palette-12000x12000.png", png(12000, 12000, 3)
    yield "grey-12000x12000.png", png(12000, 12000, 0)  # within the budget: decoded (144 MB)
    yield "grey16-9000x9000.png", png(9000, 9000, 0, bit_depth=16)
    yield "header-100000x100000.png", png(100_000, 100_000, 0, real=False)
    yield "header-rgba-40000x40000.png", png(40_000, 40_000, 6, real=False)
    yield "header-1x2000000000.png", png(1, 2_000_000_000, 0, real=False)
    small = Image.new("L", (1700, 2200), 255)
    yield "tiff-200-pages.tiff", _save(small, "TIFF", save_all=True, append_images=[small] * 199,
                                       compression="tiff_deflate")
    frame = Image.new("P", (400, 300), 0)
    yield "gif-500-frames.gif", _save(frame, "GIF", save_all=True, append_images=[frame.copy() for _ in range(499)])
    jpeg = _save(Image.new("RGB", (64, 64), "white"), "JPEG")
    sof = jpeg.find(b"\xff\xc0")
    if sof > 0:  # the frame header claims 30000 x 30000: 900 megapixels
        yield "jpeg-header-30000x30000.jpg", jpeg[:sof + 5] + struct.pack(">HH", 30000, 30000) + jpeg[sof + 9:]
    yield "jpeg-header-12000x12000.jpg", (jpeg[:sof + 5] + struct.pack(">HH", 12000, 12000) + jpeg[sof + 9:]) \
        if sof > 0 else jpeg
    good = _save(Image.new("RGB", (300, 200), "white"), "PNG")
    yield "truncated.png", good[: len(good) // 2]
    yield "bad-crc.png", good[:30] + bytes([good[30] ^ 0xFF]) + good[31:]
    tiff = _save(Image.new("L", (50, 50)), "TIFF")
    yield "tiff-bad-ifd-offset.tiff", tiff[:4] + struct.pack("<I", 0x7FFFFFF0) + tiff[8:]
    yield "bmp-header-huge.bmp", b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 60000, 60000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    yield "cmyk.jpg", _save(Image.new("CMYK", (300, 200), (0, 0, 0, 0)), "JPEG")


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _image_pdf(width: int, height: int, data: bytes) -> bytes:
    content = b"q 600 0 0 780 6 6 cm /Im1 Do Q"
    return _pdf([
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</XObject<</Im1 5 0 R>>>>/Contents 4 0 R>>",
        b"<</Length %d>>stream\n" % len(content) + content + b"\nendstream",
        b"<</Type/XObject/Subtype/Image/Width %d/Height %d/BitsPerComponent 8/ColorSpace/DeviceRGB"
        b"/Filter/FlateDecode/Length %d>>stream\n" % (width, height, len(data)) + data + b"\nendstream",
    ])


def _page_tree(count: bytes, kids: bytes = b"[3 0 R]") -> bytes:
    return _pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids" + kids + b"/Count " + count + b">>",
                 b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>>"])


def crafted_pdfs() -> Iterator[tuple[str, bytes]]:
    import pymupdf

    yield "invalid-page-count-minus-1.pdf", _page_tree(b"-1")  # issue 15 finding 8
    yield "invalid-page-count-2e31.pdf", _page_tree(b"2147483648")
    yield "page-count-5-of-1.pdf", _page_tree(b"5")
    yield "zero-pages.pdf", _page_tree(b"0", b"[]")
    yield "kids-loop.pdf", _pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[2 0 R 3 0 R]/Count 2>>",
                                 b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>>"])
    depth = 2000  # a page tree 2,000 levels deep
    nodes = [b"<</Type/Catalog/Pages 2 0 R>>"]
    for level in range(depth):
        nodes.append(b"<</Type/Pages/Kids[%d 0 R]/Count 1>>" % (level + 3))
    nodes.append(b"<</Type/Page/MediaBox[0 0 100 100]>>")
    yield "page-tree-2000-deep.pdf", _pdf(nodes)
    yield "mediabox-1e6pt.pdf", _pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
                                      b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 1000000 1000000]>>"])
    yield "mediabox-nan.pdf", _pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
                                    b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 1e400 -1e400]>>"])
    yield "image-header-30000x30000.pdf", _image_pdf(30000, 30000, zlib.compress(b"\x00" * 100))
    comp = zlib.compressobj(1)
    row = b"\x00" * (16000 * 3)
    yield "image-16000x16000-real.pdf", _image_pdf(16000, 16000,
                                                   b"".join(comp.compress(row) for _ in range(16000)) + comp.flush())
    ops = b"0 0 m 1 1 l S\n" * 400_000  # 400,000 path operators on one page
    yield "content-400k-operators.pdf", _pdf([
        b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>",
        b"<</Length %d>>stream\n" % len(ops) + ops + b"\nendstream"])
    doc = pymupdf.open()
    for i in range(3000):
        doc.new_page(width=200, height=200).insert_text((20, 40), f"page {i}")
    yield "3000-pages.pdf", doc.tobytes()
    doc.close()
    yield "garbage-after-header.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 64
    yield "truncated-xref.pdf", _page_tree(b"1")[:-60]
    yield "stream-length-huge.pdf", _pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
                                          b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]/Contents 4 0 R>>",
                                          b"<</Length 99999999999>>stream\nBT ET\nendstream"])


# ---------------------------------------------------------------------------------------------------------
# running one input


@dataclass
class Run:
    category: str
    name: str
    command: str
    outcome: str  # ok | typed | traceback | hang | leak | over-memory
    exit_status: int | None
    seconds: float
    peak_rss_mb: float
    message: str


# Peak memory is read by the child itself (VmHWM of its own address space, at exit): the ru_maxrss that wait4 gives
# counts the parent's memory too, since Linux carries the high-water mark of the address space a child was forked
# with across exec. A child killed on a hang reports nothing; then wait4's figure is used.
_HWM_HOOK = r"""
import atexit, os
def _docvlm_stress_hwm():
    with open("/proc/self/status") as f:
        kb = next((line.split()[1] for line in f if line.startswith("VmHWM:")), "0")
    with open(os.environ["DOCVLM_STRESS_HWM"], "w") as out:
        out.write(kb)
atexit.register(_docvlm_stress_hwm)
"""
_CLI_CHILD = _HWM_HOOK + r"""
import runpy, sys
sys.argv = ["docvlm", *sys.argv[1:]]
runpy.run_module("docvlm", run_name="__main__", alter_sys=True)
"""


def run_child(argv: list[str], timeout_s: float, env: dict[str, str], cwd: Path
              ) -> tuple[int | None, float, float, str, str]:
    """``(exit status or None on a hang, seconds, peak RSS MiB, stdout, stderr)`` of one subprocess."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".hwm") as hwm:
        env = {**env, "DOCVLM_STRESS_HWM": hwm.name}
        start = time.monotonic()
        # cwd: not this checkout, whose docvlm "python -c" would import ahead of PYTHONPATH
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True, cwd=cwd)
        status: int | None = None
        rusage: Any = None
        while True:
            pid, raw, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(raw)
                break
            if time.monotonic() - start > timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)
                _, raw, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = -1  # reaped here; keep Popen from waiting again
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        reported = Path(hwm.name).read_text().strip()
        peak_kb = int(reported) if reported.isdigit() and int(reported) > 0 else rusage.ru_maxrss
        return (status, seconds, peak_kb / 1024, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"))


def classify(status: int | None, stderr: str) -> tuple[str, str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status is None:
        return "hang", ""
    if "Traceback (most recent call last)" in stderr:
        return "traceback", next((line for line in reversed(lines) if line.strip()), "")
    errors = [line for line in lines if line.startswith("docvlm: error:")]
    if status == 0:
        return "ok", ""
    if status in (1, 2) and len(errors) == 1:
        return "typed", errors[0][len("docvlm: error: "):]
    return "traceback", f"exit status {status}: {lines[-1] if lines else ''}"


# ---------------------------------------------------------------------------------------------------------
# URL vectors: a local server, and another service on another port of the same host


class _Pages(http.server.BaseHTTPRequestHandler):
    other_port: ClassVar[int] = 0

    def do_GET(self) -> None:
        other = f"http://127.0.0.1:{self.other_port}"
        routes = {
            "/page": b"<!doctype html><p>An allowed page.</p>",
            "/frame-other-port": (f"<!doctype html><p>Framed.</p><iframe src='{other}/secret'></iframe>"
                                  f"<img src='{other}/secret.png'>").encode(),
            "/fetch-other-port": (f"<!doctype html><p id=o>none</p><script>fetch('{other}/secret').then(r => r.text())"
                                  f".then(t => document.getElementById('o').textContent = t)</script>").encode(),
        }
        if self.path.startswith("/redirect-"):
            where = {"/redirect-other-port": f"{other}/secret", "/redirect-file": "file:///etc/passwd",
                     "/redirect-metadata": "http://169.254.169.254/latest/meta-data/",
                     "/redirect-localhost": f"http://localhost:{self.other_port}/secret"}.get(self.path, "/page")
            self.send_response(302)
            self.send_header("Location", where)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = routes.get(self.path, b"<!doctype html><p>nothing here</p>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Secret(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"<!doctype html><p>{SECRET}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def url_vectors(port: int, other: int, local_pdf: Path) -> list[tuple[str, bool]]:
    """``(url, allow 127.0.0.1)``: every vector must be refused, or read without the secret or local files."""
    page = f"http://127.0.0.1:{port}"
    default = [
        local_pdf.as_uri(), "file:///etc/passwd", "FILE:///etc/passwd", "file://localhost/etc/passwd", "  file:/etc/passwd",
        "file:///proc/self/environ", "ftp://127.0.0.1/x.pdf", "gopher://127.0.0.1:70/_x", "dict://127.0.0.1:11211/",
        "data:text/html,<p>x</p>", "javascript:alert(1)", "jar:file:///x.jar!/a", "ldap://127.0.0.1/",
        f"http://127.0.0.1:{other}/secret", f"http://localhost:{other}/secret", f"http://[::1]:{other}/secret",
        f"http://[::ffff:127.0.0.1]:{other}/secret", f"http://0.0.0.0:{other}/secret", f"http://2130706433:{other}/",
        f"http://0x7f000001:{other}/", f"http://127.1:{other}/", f"http://017700000001:{other}/",
        f"http://user:pw@127.0.0.1:{other}/secret", f"http://127.0.0.1.:{other}/secret",
        f"http://[0:0:0:0:0:ffff:7f00:1]:{other}/", f"http://[2002:7f00:1::]:{other}/", f"http://[64:ff9b::7f00:1]:{other}/",
        "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.0.1/", "http://[fe80::1]/",
        f"{page}/page",
    ]
    allowed = [f"{page}/page", f"{page}/redirect-other-port", f"{page}/redirect-file", f"{page}/redirect-metadata",
               f"{page}/redirect-localhost", f"{page}/frame-other-port", f"{page}/fetch-other-port"]
    return [(u, False) for u in default] + [(u, True) for u in allowed]


_URL_CHILD = _HWM_HOOK + r"""
import sys
import docvlm as dv
from docvlm.documents import WebOptions
url, allow = sys.argv[1], sys.argv[2] == "1"
try:
    doc = dv.open(url, web=WebOptions(allow_hosts=("127.0.0.1",), js_budget_s=1.0) if allow else None)
    print("\n".join(page.text() for page in doc))
    print("BLOCKED:", " | ".join(b.url for b in getattr(doc, "blocked", [])))
except dv.DocVLMError as exc:
    print(f"docvlm: error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


# ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", default="images,pdfs,urls")
    parser.add_argument("--commands", default="info,words,render", help="CLI commands run on each document")
    parser.add_argument("--data", type=Path, action="append", default=[], help="also run every document here")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--max-rss-mb", type=float, default=1024.0)
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout whose docvlm is run (default: this one), e.g. an older one for a baseline")
    args = parser.parse_args(argv)
    categories = {c.strip() for c in args.categories.split(",")}
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_THREAD_LIMIT": "1", "PYTHONWARNINGS": "ignore"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(args.code.resolve()), env.get("PYTHONPATH")) if p)
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="docvlm-stress-"))

    def record(category: str, name: str, command: str, argv: list[str],
               leaked: Callable[[str], bool] | None = None) -> None:
        status, seconds, rss, out, err = run_child(argv, args.timeout, env, work)
        outcome, message = classify(status, err)
        if leaked is not None and leaked(out):
            outcome, message = "leak", out.strip().splitlines()[0][:200] if out.strip() else ""
        if outcome in ("ok", "typed") and rss > args.max_rss_mb:
            outcome = "over-memory"
        run = Run(category, name, command, outcome, status, round(seconds, 2), round(rss, 1), message[:240])
        runs.append(run)
        print(f"{outcome:11s} {rss:7.0f} MiB {seconds:6.1f} s  {category}/{name} [{command}] {run.message[:120]}",
              flush=True)

    def documents(category: str, items: Iterator[tuple[str, bytes]] | list[tuple[str, Path]]) -> None:
        for name, item in items:
            path = item if isinstance(item, Path) else work / name
            if not isinstance(item, Path):
                path.write_bytes(item)
            for command in commands:
                extra = ["-o", str(work / "out")] if command == "render" else []
                record(category, name, command, [sys.executable, "-c", _CLI_CHILD, command, str(path), *extra])

    if "images" in categories:
        documents("images", crafted_images())
    if "pdfs" in categories:
        documents("pdfs", crafted_pdfs())
    for folder in (d.resolve() for d in args.data):  # absolute: the children run in another folder
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".pdf", ".png", ".jpg", ".jpeg", ".tif",
                                                                             ".tiff", ".gif", ".bmp", ".webp"})
        documents(folder.name, [(p.name, p) for p in files])
    if "urls" in categories:
        other = _serve(_Secret)
        _Pages.other_port = other.server_port
        pages = _serve(_Pages)
        passwd = Path("/etc/passwd").read_text(errors="replace").split(":", 1)[0] + ":x:" \
            if Path("/etc/passwd").exists() else "root:x:"
        import pymupdf

        secret_pdf = work / "local-secret.pdf"  # a local file an application's user must not read through file://
        pdf = pymupdf.open()
        pdf.new_page().insert_text((72, 72), SECRET)
        pdf.save(secret_pdf)
        pdf.close()
        for url, allow in url_vectors(pages.server_port, other.server_port, secret_pdf):
            record("urls", url.replace(str(other.server_port), "OTHER").replace(str(pages.server_port), "PAGE")
                   .replace(str(work), "WORK"),
                   "open" + (" allow 127.0.0.1" if allow else ""),
                   [sys.executable, "-c", _URL_CHILD, url, "1" if allow else "0"],
                   leaked=lambda out: SECRET in out or passwd in out)
        pages.shutdown()
        other.shutdown()

    counts: dict[str, int] = {}
    for run in runs:
        counts[run.outcome] = counts.get(run.outcome, 0) + 1
    worst = max(runs, key=lambda r: r.peak_rss_mb) if runs else None
    by_category: dict[str, dict[str, Any]] = {}
    for run in runs:
        cat = by_category.setdefault(run.category, {"runs": 0, "peak_rss_mb": 0.0})
        cat["runs"] += 1
        cat[run.outcome] = cat.get(run.outcome, 0) + 1
        cat["peak_rss_mb"] = max(cat["peak_rss_mb"], run.peak_rss_mb)
    summary = {
        "runs": len(runs), "outcomes": counts, "by_category": by_category,
        "tracebacks": counts.get("traceback", 0), "hangs": counts.get("hang", 0), "leaks": counts.get("leak", 0),
        "over_memory": counts.get("over-memory", 0),
        "peak_rss_mb": worst.peak_rss_mb if worst else 0,
        "peak_rss_input": f"{worst.category}/{worst.name} [{worst.command}]" if worst else None,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": [asdict(r) for r in runs]}, indent=1))
    bad = summary["tracebacks"] + summary["hangs"] + summary["leaks"] + summary["over_memory"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
