"""The ASGI side of ``docvlm serve``: Starlette routes, request checks, worker threads, server-sent events.

Everything here runs on the event loop except the work of a request (parsing images, converting schemas,
compiling constraints, waiting for the model), which runs in at most ``max_concurrency`` worker threads, each
with a cancel event the loop sets when the client goes away or the request times out.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._protocol import HTTPError, parse_json, stream_chunks
from ._server import cancel_scope

if TYPE_CHECKING:
    from ._server import DocVLMServer

__all__ = ["build_app", "protocol_class"]

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _error(exc: HTTPError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def build_app(server: DocVLMServer) -> Starlette:
    """The Starlette application of ``server``."""
    limits = server.limits
    workers = anyio.CapacityLimiter(limits.max_concurrency)

    def check_access(request: Request, *, auth: bool = True) -> None:
        if server.loopback:  # DNS rebinding: a page whose name resolves to 127.0.0.1 must not reach the server
            host = _host_name(request.headers.get("host", ""))
            if host not in _LOOPBACK_NAMES and not host.startswith("127."):
                raise HTTPError(403, f"the Host header {host[:60]!r} is not a loopback name; this server listens on "
                                     "loopback only", kind="permission_error")
        if auth and server.api_key is not None:
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), server.api_key.encode()):
                raise HTTPError(401, "a valid API key is required: send 'Authorization: Bearer <key>'",
                                kind="authentication_error", headers={"WWW-Authenticate": "Bearer"})

    async def read_body(request: Request) -> bytes:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPError(415, f"the request body must be JSON sent as Content-Type: application/json, "
                                 f"got {content_type[:60] or 'none'!r}", kind="invalid_request_error")
        declared = request.headers.get("content-length")
        if declared is not None and int(declared) > limits.max_body_bytes:  # h11 has checked it is a number
            raise HTTPError(413, f"the request body is {int(declared):,} bytes, over the limit of "
                                 f"{limits.max_body_bytes:,}", headers={"Connection": "close"})
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(limits.body_timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limits.max_body_bytes:
                        raise HTTPError(413, f"the request body is over the limit of {limits.max_body_bytes:,} bytes",
                                        headers={"Connection": "close"})
                    chunks.append(chunk)
        except TimeoutError:
            raise HTTPError(408, f"the request body did not arrive within {limits.body_timeout_s:g} s",
                            headers={"Connection": "close"}) from None
        except ClientDisconnect:  # nobody is left to read an answer
            raise HTTPError(499, "the client went away while sending the body") from None
        return b"".join(chunks)

    async def in_worker(fn: Callable[[], Any], cancel: threading.Event) -> Any:
        def work() -> Any:
            with cancel_scope(cancel):
                return fn()

        return await anyio.to_thread.run_sync(work, limiter=workers, abandon_on_cancel=True)

    async def until_disconnected(request: Request, cancel: threading.Event, scope: anyio.CancelScope) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                cancel.set()
                scope.cancel()
                return

    def parse_and_answer(raw: bytes) -> tuple[Any, dict[str, Any]]:
        body = parse_json(raw, max_depth=limits.max_json_depth)
        return body, server.answer(body)

    async def answer(request: Request, raw: bytes) -> tuple[Any, dict[str, Any]] | None:
        """The body and its completion, or ``None`` when the client went away first. The request timeout
        covers the wait for a worker thread too."""
        cancel = threading.Event()
        outcome: dict[str, Any] = {}

        async def work(scope: anyio.CancelScope) -> None:
            try:
                outcome["value"] = await in_worker(lambda: parse_and_answer(raw), cancel)
            except Exception as exc:  # HTTPError and the like: raised below, outside the task group
                outcome["error"] = exc
            finally:
                scope.cancel()

        try:
            with anyio.fail_after(limits.request_timeout_s):
                async with anyio.create_task_group() as group:
                    group.start_soon(until_disconnected, request, cancel, group.cancel_scope)
                    group.start_soon(work, group.cancel_scope)
        except TimeoutError:
            raise HTTPError(504, f"the request took longer than the server's limit of {limits.request_timeout_s:g} s",
                            kind="timeout_error") from None
        finally:
            if "value" not in outcome:
                cancel.set()  # the worker thread stops compiling / waiting for the model
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    async def chat_completions(request: Request) -> Response:
        check_access(request)
        raw = await read_body(request)
        answered = await answer(request, raw)
        if answered is None:  # the client is gone: nobody reads the answer
            return Response(status_code=499)
        body, result = answered
        if isinstance(body, dict) and body.get("stream"):
            include_usage = bool(isinstance(body.get("stream_options"), dict)
                                 and body["stream_options"].get("include_usage"))
            return StreamingResponse(_events(result, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return JSONResponse(result)

    async def models(request: Request) -> Response:
        check_access(request)
        entry = {"id": server.model_name, "object": "model", "created": 0, "owned_by": "docvlm"}
        name = request.path_params.get("name")
        if name is not None:
            if name != server.model_name:
                raise HTTPError(404, f"no model {name[:80]!r} (this server has {server.model_name!r})",
                                kind="not_found_error")
            return JSONResponse(entry)
        return JSONResponse({"object": "list", "data": [entry]})

    async def health(request: Request) -> Response:
        check_access(request, auth=False)
        return JSONResponse({"status": "ok"})

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return _error(exc)

    async def on_starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path[:80]} (try /v1/chat/completions or /v1/models)"
            return _error(HTTPError(404, message, kind="not_found_error"))
        if exc.status_code == 405:
            return _error(HTTPError(405, f"{request.method} is not allowed on {request.url.path[:80]}",
                                    headers=dict(exc.headers or {})))
        return _error(HTTPError(exc.status_code, str(exc.detail)))

    async def on_crash(request: Request, exc: Exception) -> Response:
        return _error(HTTPError(500, f"{type(exc).__name__}: {str(exc)[:300]}", kind="server_error"))

    routes = [
        Route(path, chat_completions, methods=["POST"]) for path in ("/v1/chat/completions", "/chat/completions")
    ] + [
        Route(path, models, methods=["GET"]) for path in ("/v1/models", "/models", "/v1/models/{name:path}")
    ] + [
        Route(path, health, methods=["GET"]) for path in ("/health", "/v1/health")
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPError: on_http_error, HTTPException: on_starlette_error, Exception: on_crash,
    }
    return Starlette(routes=routes, exception_handlers=handlers)


def _host_name(header: str) -> str:
    """The host of a Host header, without the port: ``[::1]:8000`` -> ``[::1]``, ``localhost:80`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


async def _events(answer: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    for chunk in stream_chunks(answer, include_usage=include_usage):
        yield f"data: {json.dumps(chunk, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def protocol_class(header_timeout_s: float) -> type[Any]:
    """uvicorn's h11 protocol, closing a connection that does not send a request's headers within the timeout.

    uvicorn itself waits forever for the first request of a connection (and for the next one only
    ``timeout_keep_alive``, reset by every byte): half-open and trickling connections would pile up.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class _Protocol(H11Protocol):
        _head_timer: Any = None
        _waiting_after: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._waiting_after = self.cycle
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_timer is not None and self.cycle is not self._waiting_after:
                self._disarm()  # a request's headers arrived

        def on_response_complete(self) -> None:
            before = self.cycle
            super().on_response_complete()
            if not self.transport.is_closing() and self.cycle is before:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _head_expired(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return _Protocol
