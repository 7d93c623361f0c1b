"""Headless Chromium through playwright: one browser per process, one fresh context per web document.

The browser runs in a background thread with its own asyncio loop, so web documents work from any thread
(and inside Jupyter, where playwright's sync API refuses to run) and every call can be bounded by a
timeout, even when a hostile page hangs its renderer. The browser is launched on first use and closed at
interpreter exit.

Safety: every request of the page is intercepted and answered by `docvlm.documents._web_net`
(address checks, redirects hop by hop, byte and request budgets); the browser itself is pointed at a proxy
that refuses connections, so nothing that escapes interception (a WebSocket, a preconnect, a redirect the
browser follows) reaches the network. Downloads, pop-ups, service workers and permissions are off.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from docvlm.documents._web_dom import EAGER_SCRIPT, EXTRACT_SCRIPT
from docvlm.documents._web_net import AddressPolicy, Blocked, BlockReason, FetchBudget, Response, fetch

__all__ = ["BrowserService", "LoadSettings", "Session", "chromium_path", "service"]

T = TypeVar("T")

#: Host of the origin an HTML file or string is served from (``.invalid`` never resolves).
LOCAL_HOST = "docvlm.invalid"
LOCAL_ORIGIN = f"http://{LOCAL_HOST}/"
#: The page counts as settled when no request was in flight for this long.
_IDLE_S = 0.25
_DROP_RESPONSE = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive"})
_NOT_ALLOWED_LOCAL = "Not allowed to load local resource:"


def chromium_path() -> str | None:
    """The Chromium executable: ``$DOCVLM_CHROMIUM``, else ``chromium`` (or a sibling name) on PATH, else ``/usr/bin/chromium``."""
    env = os.environ.get("DOCVLM_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


@dataclass
class LoadSettings:
    """What one page load may do (built from `docvlm.documents.web.WebOptions`)."""

    viewport: tuple[int, int]
    device_scale: float
    javascript: bool
    js_budget_s: float
    timeout_s: float
    policy: AddressPolicy
    max_bytes: int
    max_requests: int
    resource_dir: Path | None = None


@dataclass
class BlockedEvent:
    url: str
    reason: BlockReason
    detail: str
    resource_type: str


@dataclass
class _State:
    """The bookkeeping of one page load, touched only from the service loop (and fetch threads via budget)."""

    settings: LoadSettings
    budget: FetchBudget
    main_url: str
    main: Response
    main_served: bool = False
    page: Any = None
    tasks: set[asyncio.Future[Any]] = field(default_factory=set)
    captured: bool = False
    inflight: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    blocked: list[BlockedEvent] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def block(self, url: str, reason: BlockReason, detail: str, resource_type: str = "") -> None:
        if not any(b.url == url and b.reason is reason for b in self.blocked):
            self.blocked.append(BlockedEvent(url, reason, detail, resource_type))


class Session:
    """A loaded page kept open for rendering: its context, a CDP session, and what was read from its DOM."""

    def __init__(self, service: BrowserService, context: Any, page: Any, cdp: Any, state: _State,
                 dom: dict[str, Any], world: int) -> None:
        self._world = world
        self._service = service
        self._context = context
        self._page = page
        self._cdp = cdp
        self.state = state
        self.dom = dom
        self.closed = False

    def capture(self, x: float, y: float, width: float, height: float, scale: float, timeout_s: float = 30.0) -> bytes:
        """PNG of the document region ``(x, y, width, height)`` (CSS pixels) at ``scale`` output pixels per CSS pixel."""
        async def shot() -> bytes:
            result = await self._cdp.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True, "fromSurface": True,
                "clip": {"x": x, "y": y, "width": width, "height": height, "scale": scale},
            })
            return base64.b64decode(result["data"])

        return self._service.call(shot, timeout_s)

    def evaluate(self, expression: str, timeout_s: float = 10.0) -> Any:
        """The JSON value of ``expression`` run in docvlm's isolated world of the page (the page's scripts are off)."""
        cdp, world = self._cdp, self._world

        async def run() -> Any:
            return await BrowserService._evaluate(cdp, world, expression, timeout_s)

        return self._service.call(run, timeout_s + 5.0)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self._service.alive:  # at exit, after the browser was closed: the context went with it
            return
        context = self._context

        async def close() -> None:
            await context.close()

        # when the browser is gone or the page hung, the context dies with the browser
        with contextlib.suppress(Exception):
            self._service.call(close, 10.0)


class BrowserService:
    """The process's browser: a loop thread that owns playwright, launching Chromium on first use."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.pid = os.getpid()
        self.sandbox = False
        self.version = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="docvlm-chromium", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        self._launch_lock: asyncio.Lock | None = None
        # a port that refuses connections: the browser's proxy, so traffic that escapes interception goes nowhere
        self._dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._dead.bind(("127.0.0.1", 0))
        self._dead_port = self._dead.getsockname()[1]

    @property
    def alive(self) -> bool:
        return os.getpid() == self.pid and self._thread.is_alive() and not self._loop.is_closed()

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout_s: float) -> T:
        """Run ``fn()`` on the browser's loop and wait at most ``timeout_s`` seconds for it."""
        future = asyncio.run_coroutine_threadsafe(fn(), self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the browser did not answer within {timeout_s:g} s") from None

    async def browser(self) -> Any:
        if self._launch_lock is None:
            self._launch_lock = asyncio.Lock()
        async with self._launch_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            options: dict[str, Any] = {
                "executable_path": self.executable,
                "headless": True,
                "proxy": {"server": f"http://127.0.0.1:{self._dead_port}"},
                "args": [
                    "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
                    "--disable-domain-reliability", "--disable-sync", "--no-first-run", "--no-pings",
                    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
                    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
                ],
            }
            sandbox = os.environ.get("DOCVLM_CHROMIUM_SANDBOX", "1" if os.geteuid() != 0 else "0") == "1"
            try:
                self._browser = await self._playwright.chromium.launch(chromium_sandbox=sandbox, **options)
            except Exception:
                if not sandbox:
                    raise
                # no usable sandbox (containers without user namespaces): run without it rather than not at all
                sandbox = False
                self._browser = await self._playwright.chromium.launch(chromium_sandbox=False, **options)
            self.sandbox = sandbox
            self.version = str(self._browser.version)
            return self._browser

    async def _shutdown(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:  # route handlers of pages that were never closed
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def shutdown(self) -> None:
        """Close the browser and stop the loop thread (registered to run at exit)."""
        if os.getpid() != self.pid or not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self._shutdown, 10.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._dead.close()

    # loading ---------------------------------------------------------------------------------------------
    def load(self, main_url: str, main: Response, settings: LoadSettings) -> Session:
        """Open a fresh context, load the page (its main document already fetched as ``main``) and read its DOM."""
        budget = FetchBudget(max_bytes=settings.max_bytes, max_requests=settings.max_requests,
                             timeout_s=settings.timeout_s)
        budget.bytes = len(main.body)
        state = _State(settings=settings, budget=budget, main_url=main_url, main=main)
        holder: dict[str, Any] = {}

        async def run() -> Session:
            return await self._load(state, holder)

        try:
            return self.call(run, settings.timeout_s + 15.0)
        except BaseException:
            context = holder.get("context")
            if context is not None:
                async def close() -> None:
                    await context.close()

                with contextlib.suppress(Exception):
                    self.call(close, 10.0)
            raise

    async def _load(self, state: _State, holder: dict[str, Any]) -> Session:
        s = state.settings
        browser = await self.browser()
        context = await browser.new_context(
            viewport={"width": s.viewport[0], "height": s.viewport[1]}, device_scale_factor=s.device_scale,
            java_script_enabled=s.javascript, accept_downloads=False, service_workers="block", permissions=[],
            reduced_motion="reduce", color_scheme="light", locale="en-US",
        )
        holder["context"] = context
        await context.route("**/*", lambda route: self._handle(state, route))
        page = await context.new_page()
        state.page = page
        context.on("page", lambda popup: self._popup(state, popup))  # after new_page: only the page's own pop-ups
        page.on("console", lambda msg: self._console(state, msg))
        page.on("websocket", lambda ws: state.block(ws.url, BlockReason.WEBSOCKET, "pages may not open WebSockets",
                                                    "websocket"))
        page.on("download", lambda d: state.block(d.url, BlockReason.DOWNLOAD, "downloads are off", "download"))
        holder["page"] = page
        cdp = await context.new_cdp_session(page)
        deadline = time.monotonic() + s.timeout_s
        budget_end = time.monotonic() + s.js_budget_s

        def left(until: float) -> float:
            return max(0.05, min(until, deadline) - time.monotonic())

        await page.goto(state.main_url, wait_until="commit", timeout=left(deadline) * 1000)
        loaded = await self._wait_load(page, left(budget_end))
        await self._wait_idle(state, budget_end if s.javascript else min(deadline, time.monotonic() + 2.0))
        if s.javascript:
            hung = not await self._responsive(cdp)
            if hung:
                for _ in range(20):  # terminate the running script, again if the parser starts another one
                    await cdp.send("Runtime.terminateExecution")
                    await cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
                    if await self._responsive(cdp):
                        break
                state.notes["javascript"] = (
                    f"stopped: a script was still running when the {s.js_budget_s:g} s JavaScript budget ran out")
            else:
                await cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
                if not loaded:
                    state.notes["javascript"] = (
                        f"stopped after the {s.js_budget_s:g} s JavaScript budget (the page had not finished loading)")
            if not loaded:
                loaded = await self._wait_load(page, min(1.0, left(deadline)))
        frame_tree = await cdp.send("Page.getFrameTree")
        world = await cdp.send("Page.createIsolatedWorld", {
            "frameId": frame_tree["frameTree"]["frame"]["id"], "worldName": "docvlm"})
        context_id = world["executionContextId"]
        await self._evaluate(cdp, context_id, "document.fonts.ready.then(() => 1)", min(2.0, left(deadline)), True)
        if await self._evaluate(cdp, context_id, EAGER_SCRIPT, left(deadline)):
            await asyncio.sleep(0.05)
            await self._wait_idle(state, min(deadline, time.monotonic() + 2.0))
        dom = await self._evaluate(cdp, context_id, EXTRACT_SCRIPT, left(deadline))
        if not isinstance(dom, dict):
            raise TimeoutError("the page could not be read within its time budget")
        state.captured = True
        return Session(self, context, page, cdp, state, dom, context_id)

    @staticmethod
    async def _wait_load(page: Any, seconds: float) -> bool:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            await page.wait_for_load_state("load", timeout=seconds * 1000)
            return True
        except PlaywrightTimeout:
            return False

    @staticmethod
    async def _wait_idle(state: _State, until: float) -> None:
        while time.monotonic() < until:
            if state.inflight == 0 and time.monotonic() - state.last_activity >= _IDLE_S:
                return
            await asyncio.sleep(0.05)

    @staticmethod
    async def _responsive(cdp: Any) -> bool:
        try:
            await asyncio.wait_for(cdp.send("Runtime.evaluate", {"expression": "0", "returnByValue": True}), 0.5)
            return True
        except asyncio.TimeoutError:
            return False

    @staticmethod
    async def _evaluate(cdp: Any, context_id: int, expression: str, seconds: float, promise: bool = False) -> Any:
        try:
            result = await asyncio.wait_for(cdp.send("Runtime.evaluate", {
                "expression": expression, "contextId": context_id, "returnByValue": True, "awaitPromise": promise,
            }), seconds)
        except asyncio.TimeoutError:
            return None
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"reading the page failed: {details.get('exception', {}).get('description', details)}")
        return result.get("result", {}).get("value")

    # events ------------------------------------------------------------------------------------------------
    @staticmethod
    def _console(state: _State, msg: Any) -> None:
        text = str(msg.text)
        if text.startswith(_NOT_ALLOWED_LOCAL):  # the browser refused a file:// frame or resource itself
            url = text[len(_NOT_ALLOWED_LOCAL):].strip()
            state.block(url, BlockReason.FILE_ACCESS, "pages may not read local files")

    @staticmethod
    def _popup(state: _State, popup: Any) -> None:
        if popup.url and popup.url != "about:blank":
            state.block(popup.url, BlockReason.POPUP, "pop-up windows are closed")
        task = asyncio.ensure_future(popup.close())
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _handle(self, state: _State, route: Any) -> None:
        request = route.request
        url = str(request.url)
        kind = str(request.resource_type)
        state.inflight += 1
        state.last_activity = time.monotonic()
        try:
            await self._answer(state, route, request, url, kind)
        except Exception:  # the page or context closed while the answer was on its way, or a bug: never hang
            with contextlib.suppress(Exception):
                await route.abort("failed")
        finally:
            state.inflight -= 1
            state.last_activity = time.monotonic()

    async def _answer(self, state: _State, route: Any, request: Any, url: str, kind: str) -> None:
        if state.captured:
            state.block(url, BlockReason.AFTER_CAPTURE, "the page was already read; later requests are refused", kind)
            await route.abort("blockedbyclient")
            return
        if request.is_navigation_request():
            try:
                frame = request.frame
            except Exception:  # the first request of a pop-up comes before its frame exists
                frame = None
            if frame is None or frame.page is not state.page:
                state.block(url, BlockReason.POPUP, "pop-up windows are closed", kind)
                await route.fulfill(status=204)
                return
        if request.is_navigation_request() and request.frame.parent_frame is None:
            if state.main_served or url.split("#", 1)[0] != state.main_url.split("#", 1)[0]:
                state.block(url, BlockReason.NAVIGATION, "the page tried to navigate away", kind)
                await route.fulfill(status=204)  # "no content": the browser stays on the page (an abort would not)
                return
            state.main_served = True
            await self._fulfill(route, state.main)
            return
        parts = urlsplit(url)
        if parts.hostname == LOCAL_HOST:
            await self._local(state, route, url, kind)
            return
        try:
            response = await asyncio.to_thread(
                fetch, url, policy=state.settings.policy, budget=state.budget, method=str(request.method),
                headers=list(request.headers.items()), body=request.post_data_buffer,
            )
        except Blocked as exc:
            state.block(exc.url, exc.reason, exc.detail, kind)
            await route.abort("blockedbyclient")
            return
        disposition = (response.header("content-disposition") or "").lower()
        if disposition.startswith("attachment"):
            state.block(url, BlockReason.DOWNLOAD, "downloads are off", kind)
            await route.abort("blockedbyclient")
            return
        await self._fulfill(route, response)

    @staticmethod
    async def _fulfill(route: Any, response: Response) -> None:
        headers: dict[str, str] = {}
        for k, v in response.headers:
            key = k.lower()
            if key in _DROP_RESPONSE:
                continue
            headers[key] = f"{headers[key]}\n{v}" if key in headers and key == "set-cookie" else v
        await route.fulfill(status=response.status, headers=headers, body=response.body)

    @staticmethod
    async def _local(state: _State, route: Any, url: str, kind: str) -> None:
        """A resource of an HTML file or string: from ``resource_dir`` when one was given, never elsewhere."""
        folder = state.settings.resource_dir
        path = urlsplit(url).path.lstrip("/")
        target = (folder / path).resolve() if folder is not None else None
        if folder is None or target is None or not target.is_relative_to(folder.resolve()) or not target.is_file():
            detail = ("local resources are not loaded (pass resource_dir=... to serve a folder)" if folder is None
                      else f"no such file in {folder}")
            state.block(url, BlockReason.FILE_ACCESS, detail, kind)
            await route.abort("blockedbyclient")
            return
        data = target.read_bytes()
        try:
            state.budget.take_bytes(len(data), url)
        except Blocked as exc:
            state.block(url, exc.reason, exc.detail, kind)
            await route.abort("blockedbyclient")
            return
        import mimetypes

        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        await route.fulfill(status=200, headers={"content-type": mime}, body=data)


_SERVICE: BrowserService | None = None
_SERVICE_LOCK = threading.Lock()


def service(executable: str) -> BrowserService:
    """The process's browser service (a new one after a fork: threads do not survive it)."""
    global _SERVICE
    with _SERVICE_LOCK:
        if _SERVICE is None or _SERVICE.pid != os.getpid() or _SERVICE.executable != executable:
            if _SERVICE is not None and _SERVICE.pid == os.getpid():
                _SERVICE.shutdown()
            _SERVICE = BrowserService(executable)
            atexit.register(_SERVICE.shutdown)
        return _SERVICE
