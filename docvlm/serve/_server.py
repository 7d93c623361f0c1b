"""The server object: a model, its batcher, the limits, and uvicorn serving the ASGI app on a socket."""

from __future__ import annotations

import concurrent.futures
import contextvars
import ipaddress
import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from docvlm.decoding import compile_budget
from docvlm.errors import ConstraintError, DocVLMError, MissingDependencyError, UsageError
from docvlm.models.base import Model

from ._protocol import Call, HTTPError, ImageBudget, bad, completion, constraint_http_error, parse_call

__all__ = ["API_KEY_ENV", "DocVLMServer", "ServeLimits", "make_server", "serve"]

#: The environment variable ``docvlm serve`` reads its API key from when ``--api-key`` is not given.
API_KEY_ENV = "DOCVLM_API_KEY"

MiB = 2**20


@dataclass(frozen=True)
class ServeLimits:
    """What one client may cost the server: every request over a limit is refused with a 4xx, never run.

    Attributes:
        max_body_bytes: the largest request body (images travel base64-encoded inside it): 413 over it.
        max_json_depth: the deepest nesting of the request's JSON: 400 over it.
        max_image_pixels: pixels of one image (read from its header, before decoding): 413 over it.
        max_request_pixels: pixels of all of one request's images together: 413 over it.
        max_tokens: the largest ``max_tokens`` a request may ask for.
        compile_timeout_s: seconds to convert a request's JSON schema and compile its constraint: 400 over it
            (the automaton's size is bounded too, by [`Limits`][docvlm.decoding.Limits]).
        request_timeout_s: seconds from a request's arrival to its answer: 504 over it. A request still waiting
            for the model is dropped; one the model is decoding finishes, and its answer is discarded.
        header_timeout_s: seconds a connection may take to send a request's headers before it is closed
            (half-open and slow connections).
        body_timeout_s: seconds to receive a request's body once its headers arrived: 408 over it.
        keep_alive_s: seconds an idle keep-alive connection stays open.
        max_concurrency: requests being parsed, compiled or waiting for the model at once (worker threads); the
            rest wait for a slot, within their request timeout.
        max_connections: open connections and requests in flight; past it new requests get 503.
    """

    max_body_bytes: int = 32 * MiB
    max_json_depth: int = 64
    max_image_pixels: int = 25_000_000
    max_request_pixels: int = 50_000_000
    max_tokens: int = 32_768
    compile_timeout_s: float = 10.0
    request_timeout_s: float = 600.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_concurrency: int = 16
    max_connections: int = 512

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise UsageError(f"ServeLimits.{f.name} must be a positive number, got {value!r}")


# ---------------------------------------------------------------------------------------------------
# cancelling a request's work from the event loop: the worker thread reads this event
# ---------------------------------------------------------------------------------------------------

_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("docvlm_serve_cancel", default=None)


@contextmanager
def cancel_scope(event: threading.Event) -> Iterator[None]:
    """Work inside the block (this thread) stops when ``event`` is set: compiling, waiting for the model."""
    token = _CANCEL.set(event)
    try:
        yield
    finally:
        _CANCEL.reset(token)


def _cancel_event() -> threading.Event:
    return _CANCEL.get() or threading.Event()


# ---------------------------------------------------------------------------------------------------
# batching: one thread calls the model, with requests that arrived together
# ---------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    call: Call
    future: Future[Any] = field(default_factory=Future)

    def same_batch(self, other: _Job) -> bool:
        a, b = self.call, other.call
        try:
            same_type = a.output_type is b.output_type or bool(a.output_type == b.output_type)
        except Exception:  # an exotic __eq__
            same_type = False
        return same_type and a.settings == b.settings


class _Batcher:
    def __init__(self, model: Model, max_batch_size: int, window_s: float) -> None:
        self.model = model
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.queue: queue.Queue[_Job | None] = queue.Queue()
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="docvlm-serve-batcher", daemon=True)
        self.thread.start()

    def submit(self, call: Call, cancel: threading.Event, deadline: float) -> Any:
        job = _Job(call)
        with self.lock:
            if self.closed:
                raise HTTPError(503, "the server is shutting down", kind="server_error")
            self.queue.put(job)
        while True:
            try:
                return job.future.result(timeout=0.2)
            except concurrent.futures.TimeoutError:
                if cancel.is_set() or time.monotonic() > deadline:
                    job.future.cancel()  # dropped if the model has not started on it
                    raise HTTPError(504, "the request was cancelled or timed out while waiting for the model",
                                    kind="timeout_error") from None

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.queue.put(None)
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        pending: list[_Job] = []
        stopping = False
        while True:
            if not pending:
                if stopping:
                    return
                first = self.queue.get()
                if first is None:
                    return
                pending.append(first)
            deadline = time.monotonic() + self.window_s
            while not stopping and len(pending) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    job = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                else:
                    pending.append(job)
            group = [j for j in pending if j.same_batch(pending[0])][: self.max_batch_size]
            pending = [j for j in pending if j not in group]
            live = [j for j in group if j.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, group: list[_Job]) -> None:
        call = group[0].call
        try:
            values = self.model.generate_batch([j.call.messages for j in group], call.output_type,
                                               settings=call.settings)
        except Exception as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            for job in group:  # isolate the request that failed from the others
                self._run_one(job)
            return
        for job, value in zip(group, values, strict=True):
            job.future.set_result(value)

    def _run_one(self, job: _Job) -> None:
        try:
            value = self.model.generate_batch([job.call.messages], job.call.output_type, settings=job.call.settings)[0]
        except Exception as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(value)


# ---------------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------------


def _require_serve() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("starlette and uvicorn", "serve", purpose="docvlm serve") from exc


class DocVLMServer:
    """An OpenAI-compatible chat-completions server over a docvlm model (Starlette on uvicorn).

    Build it with [`make_server`][docvlm.serve.make_server]: the socket is bound at once (port 0 picks a free one, see `url`);
    [`serve_forever`][docvlm.serve.DocVLMServer.serve_forever] serves until [`shutdown`][docvlm.serve.DocVLMServer.shutdown] (from another thread) or Ctrl-C; [`server_close`][docvlm.serve.DocVLMServer.server_close]
    frees the socket and the batching thread.

    Args:
        model: the model served.
        address: ``(host, port)`` to listen on.
        model_name: the id ``GET /v1/models`` lists (default: the model's spec).
        max_batch_size: most requests answered by one ``generate_batch`` call.
        batch_window_s: how long the first request waits for others to batch with.
        api_key: when given, every request but ``GET /health`` needs ``Authorization: Bearer <api_key>``.
        limits: what one client may cost ([`ServeLimits`][docvlm.serve.ServeLimits]).
        verbose: log every request on stderr.

    Attributes:
        model: the model served.
        model_name: the id ``GET /v1/models`` lists.
        url: the API root clients use as ``base_url`` (``http://host:port/v1``).
        limits: the [`ServeLimits`][docvlm.serve.ServeLimits] in force.
    """

    def __init__(self, model: Model, address: tuple[str, int], *, model_name: str | None = None,
                 max_batch_size: int = 8, batch_window_s: float = 0.01, api_key: str | None = None,
                 limits: ServeLimits | None = None, verbose: bool = False) -> None:
        _require_serve()
        if max_batch_size < 1:
            raise UsageError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if api_key is not None and not api_key.strip():
            raise UsageError("the API key is empty", hint=f"pass a non-empty --api-key or unset {API_KEY_ENV}")
        self.model = model
        self.model_name = model_name or model.spec or type(model).__name__
        self.verbose = verbose
        self.api_key = api_key
        self.limits = limits or ServeLimits()
        host, port = address
        sock: socket.socket | None = None
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _, sockaddr = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(2048)
        except OSError as exc:
            if sock is not None:
                sock.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             hint="pick another --port, or --port 0 for any free one") from None
        self.socket = sock
        self.socket.setblocking(False)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        bound = self.server_address[0]
        self.loopback = _is_loopback(bound)
        shown = f"[{bound}]" if ":" in bound else bound
        self.url = f"http://{shown}:{self.server_address[1]}/v1"
        self.batcher = _Batcher(model, max_batch_size, batch_window_s)
        self._uvicorn: Any = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._closed = False
        self._exit_requested = False  # shutdown() came before serve_forever() had a server to stop

    # the work of one request (a worker thread) -----------------------------------------------------
    def answer(self, body: Any) -> dict[str, Any]:
        """The ``chat.completion`` object for a request body (raises ``HTTPError`` for requests it refuses).

        Runs in a worker thread: converting the schema and compiling the constraint stop when the request's
        cancel event is set or ``compile_timeout_s`` runs out; waiting for the model stops at the request timeout.
        """
        cancel = _cancel_event()
        started = time.monotonic()
        budget = ImageBudget(self.limits.max_image_pixels, self.limits.max_request_pixels)
        try:
            with compile_budget(self.limits.compile_timeout_s, cancel=cancel):  # schemas -> types, images
                call = parse_call(body, budget, max_tokens_cap=self.limits.max_tokens)
            with compile_budget(self.limits.compile_timeout_s, cancel=cancel):  # the constraint
                self.model.compile(call.output_type)
        except ConstraintError as exc:
            if cancel.is_set():
                raise HTTPError(504, "the request was cancelled", kind="timeout_error") from None
            raise constraint_http_error(exc) from None
        except UsageError as exc:
            raise bad(str(exc)) from None
        try:
            value = self.batcher.submit(call, cancel, started + self.limits.request_timeout_s)
        except ConstraintError as exc:  # e.g. cut off by max_tokens
            raise HTTPError(422, str(exc), kind="constraint_error") from None
        except UsageError as exc:
            raise bad(str(exc)) from None
        except DocVLMError as exc:
            raise HTTPError(500, str(exc), kind="model_error") from None
        name = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else self.model_name
        return completion(call, value, model=name, count=self.count_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's tokenizer if it exposes one, else ``ceil(len(text) / 4)``."""
        tokenizer = getattr(self.model, "tokenizer", None) or getattr(getattr(self.model, "processor", None),
                                                                      "tokenizer", None)
        encode = getattr(tokenizer, "encode", None)
        if callable(encode):
            try:
                return len(encode(text, add_special_tokens=False))
            except Exception:  # a tokenizer with another signature: fall back to the estimate
                pass
        return math.ceil(len(text) / 4)

    # serving ----------------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Serve until [`shutdown`][docvlm.serve.DocVLMServer.shutdown] is called (from another thread) or, in the main thread, Ctrl-C."""
        import uvicorn

        from ._app import build_app, protocol_class

        with self._lock:
            if self._exit_requested:  # shutdown() came before this thread got here (then server_close(), maybe)
                self._exit_requested = False
                return
            if self._closed:
                raise UsageError("the server is closed")
            config = uvicorn.Config(
                build_app(self), lifespan="off", log_config=None, log_level="info" if self.verbose else "warning",
                access_log=self.verbose, proxy_headers=False, server_header=False,
                http=protocol_class(self.limits.header_timeout_s),
                timeout_keep_alive=max(1, round(self.limits.keep_alive_s)),
                limit_concurrency=self.limits.max_connections, timeout_graceful_shutdown=5,
                h11_max_incomplete_event_size=64 * 1024,
            )
            self._uvicorn = uvicorn.Server(config)
            self._stopped.clear()
        if self.verbose:
            _log_to_stderr()
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop [`serve_forever`][docvlm.serve.DocVLMServer.serve_forever] and wait until it returned (requests in flight get up to 5 s).
        Called before ``serve_forever`` has started serving, it returns at once and ``serve_forever`` returns as
        soon as it is called."""
        with self._lock:
            server = self._uvicorn
            if server is None:  # serve_forever has not made its server yet: it stops as soon as it has
                self._exit_requested = True
                return
            server.should_exit = True
        self._stopped.wait(30)

    def server_close(self) -> None:
        """Close the listening socket and stop the batching thread (twice is fine)."""
        with self._lock:
            self._closed = True
        self.socket.close()
        self.batcher.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _log_to_stderr() -> None:
    logger = logging.getLogger("uvicorn")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("docvlm serve: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def make_server(model: Model, host: str = "127.0.0.1", port: int = 0, *, model_name: str | None = None,
                max_batch_size: int = 8, batch_window_s: float = 0.01, api_key: str | None = None,
                limits: ServeLimits | None = None, verbose: bool = False) -> tuple[DocVLMServer, str]:
    """An OpenAI-compatible server for ``model``, bound but not yet serving.

    Args:
        model: any docvlm model (local transformers, a test model, even an [`OpenAIModel`][docvlm.models.openai.OpenAIModel]).
        host: the interface to listen on (``"0.0.0.0"`` for every one).
        port: the port; 0 picks a free one.
        model_name: the id listed by ``GET /v1/models`` (default: the model's spec).
        max_batch_size: most requests answered by one ``generate_batch`` call.
        batch_window_s: how long the first request waits for others to batch with.
        api_key: require ``Authorization: Bearer <api_key>`` on every request but ``GET /health``.
        limits: what one client may cost ([`ServeLimits`][docvlm.serve.ServeLimits]).
        verbose: log every request on stderr.

    Returns:
        The server (call ``serve_forever()``, later ``shutdown()`` and ``server_close()``) and its API
        root URL, ``http://host:port/v1``, to use as a client's ``base_url``.

    Raises:
        MissingDependencyError: the ``serve`` extra (starlette, uvicorn) is not installed.
        UsageError: the address cannot be bound.
    """
    server = DocVLMServer(model, (host, port), model_name=model_name, max_batch_size=max_batch_size,
                          batch_window_s=batch_window_s, api_key=api_key, limits=limits, verbose=verbose)
    return server, server.url


def serve(model: Model, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``model`` until interrupted (Ctrl-C), printing the URL to use as ``base_url``.

    Args:
        model: the model to serve.
        host: the interface to listen on.
        port: the port.
        **options: further [`make_server`][docvlm.serve.make_server] options (``api_key``, ``limits``, ...). Without ``api_key``,
            the ``DOCVLM_API_KEY`` environment variable is used when set.
    """
    if options.get("api_key") is None and os.environ.get(API_KEY_ENV):
        options["api_key"] = os.environ[API_KEY_ENV]
    server, url = make_server(model, host, port, **options)
    auth = ", API key required" if server.api_key else ""
    print(f"docvlm: serving {server.model_name} at {url} (OpenAI-compatible{auth}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
