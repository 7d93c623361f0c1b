"""Batch extraction at scale that loses nothing: ``run_batch(inputs, schema=..., model=..., output=...)``.

Every document becomes exactly one JSON line in the output (one per page with ``per="page"``)::

    {"source", "sha256", "task", "model", "schema", "status": "ok" | "error",
     "value", "evidence", "error": {"type", "message", "page", "hint"} | null, "seconds"}

Guarantees:

- **Nothing lost.** A document that fails (corrupt file, a required field not found, a model error, any
  exception) gets an ``"error"`` record and the job goes on.
- **Nothing twice.** Each record is appended with a single ``write`` of the whole line, then flushed and
  fsynced, under an exclusive ``fcntl.flock`` on the output. On start the output is read: a document whose
  ``(sha256, task, model, schema)`` already has a complete record (ok or error) is skipped, and a partial last
  line left by a killed run is truncated away. So a job killed at any moment and started again with the
  same arguments ends with one record per document. Files with the same content (same sha256) are one
  document: the first path found is processed, the others are counted as skipped.
- **Parallel.** Documents are opened, rendered and extracted in a process pool (``fork`` where that is safe:
  one thread and no CUDA in the parent, which never loads the model itself; ``spawn`` otherwise, so a GPU
  context is never forked); each worker loads the model once, from its spec string. With ``per="page"``
  the pages of one document are split into tasks of a few pages, so a 1,000-page PDF uses every worker. The
  parent hashes the files, writes the records as they complete and is the only writer.
- **Bounded concurrency for servers.** With a server backend (``openai:<model>@<url>``: vLLM, SGLang, Ollama,
  ``docvlm serve``) each worker runs several documents at once in threads, and a semaphore shared by all
  workers keeps at most ``concurrency`` documents (so at most ``concurrency`` requests) in flight; the
  server batches what arrives together (vLLM's continuous batching, ``docvlm serve``'s batcher). A local
  model gets one document per worker at a time: ``extract`` constrains each field to the values printed in
  *that* document, so two documents never share an output type and cannot share a ``generate_batch`` call;
  to batch a GPU model across documents, serve it (``docvlm serve`` or vLLM) and batch against the server.
- **Workers die with the job.** A worker ends when its parent does, even by ``kill -9`` (a parent-death signal
  on Linux, a watchdog thread elsewhere), so a killed job leaves no process working on, or holding memory.

Two jobs writing the same output at once do not corrupt it (the lock) but may both process a document;
run one job per output file. To retry the documents that failed, filter their lines out of the output
(``status == "error"``) and run again.

Test hook: the environment variable ``DOCVLM_BATCH_TEST_DELAY`` (seconds) makes each worker sleep that long
per document, so tests can kill a job in the middle.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import fcntl
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from docvlm.errors import DocVLMError, UsageError

__all__ = [
    "DOCUMENT_SUFFIXES",
    "BatchSummary",
    "Output",
    "error_info",
    "error_record",
    "expand_inputs",
    "page_count",
    "process_document",
    "read_records",
    "record_key",
    "record_line",
    "run_batch",
    "schema_name",
    "sha256_of",
]

#: File name endings a folder or glob expands to (files named explicitly are taken whatever their name).
DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"})

_TASKS = ("extract",)
_PER = ("document", "page")
_DELAY_ENV = "DOCVLM_BATCH_TEST_DELAY"
_PAGES_PER_TASK = 8  # with per="page", pages of one document per worker task
_SERVER_CONCURRENCY = 8  # default requests in flight for a server backend
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass
class BatchSummary:
    """What a batch run did.

    Attributes:
        done: records written with status ``"ok"`` in this run.
        failed: records written with status ``"error"`` in this run.
        skipped: documents (pages, with ``per="page"``) that already had a record, or repeated the content
            of another input.
        output: the JSON-lines file.
        seconds: wall time of the run.
    """

    done: int = 0
    failed: int = 0
    skipped: int = 0
    output: Path = field(default_factory=Path)
    seconds: float = 0.0

    @property
    def written(self) -> int:
        """Records written in this run."""
        return self.done + self.failed

    def __str__(self) -> str:
        return (f"{self.done} ok, {self.failed} failed, {self.skipped} skipped in {self.seconds:.1f}s "
                f"-> {self.output}")


# ---------------------------------------------------------------- inputs


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files, folders (recursive) and globs (``**`` recursive) to a sorted-per-input, de-duplicated list of files.

    Folders and globs keep only `DOCUMENT_SUFFIXES`; a file named explicitly is always kept (a wrong or
    damaged one then gets an error record).

    Raises:
        UsageError: an input that is no file or folder and matches nothing.
    """
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            found += _folder_files(p)
        elif p.is_file():
            found.append(p)
        elif _is_glob(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files: list[Path] = []
            for m in matches:
                if m.is_dir():
                    files += _folder_files(m)
                elif m.is_file() and m.suffix.lower() in DOCUMENT_SUFFIXES:
                    files.append(m)
            if not files:
                raise UsageError(f"no documents match {text!r}")
            found += files
        else:
            raise UsageError(f"no such file or folder: {text!r}", hint="check the path")
    seen: set[Path] = set()
    unique: list[Path] = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's content, hex (the identity of a document in the records)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- output


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a record the same work: (sha256, task, model, schema, page)."""
    return (record.get("sha256"), record.get("task"), record.get("model"), record.get("schema"),
            record.get("page"))


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The complete records of a batch output (a partial last line and lines that are not JSON objects are skipped)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is partial (or empty)
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def record_line(record: dict[str, Any]) -> str:
    """A record as its JSON line (without the newline)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False, default=str)


class Output:
    """An append-only JSON-lines file, one atomic ``write`` per record under ``flock``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def recover(self) -> set[tuple[Any, ...]]:
        """Truncate a partial last line and return the keys of the complete records."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self.fd).st_size
            data = os.pread(self.fd, size, 0) if size else b""
            end = data.rfind(b"\n") + 1
            if end < len(data):
                os.ftruncate(self.fd, end)
                os.fsync(self.fd)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        keys: set[tuple[Any, ...]] = set()
        for line in data[:end].split(b"\n"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("status") in ("ok", "error"):
                keys.add(record_key(record))
        return keys

    def append(self, record: dict[str, Any]) -> None:
        line = (record_line(record) + "\n").encode()
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            view = memoryview(line)
            while view:  # a regular file takes the whole line in one write; loop only for safety
                n = os.write(self.fd, view)
                view = view[n:]
            os.fsync(self.fd)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


# ---------------------------------------------------------------- the work of one document


def error_info(exc: BaseException) -> dict[str, Any]:
    """The ``"error"`` object of an error record: type, message, page and hint of ``exc``."""
    if isinstance(exc, DocVLMError):
        return {"type": type(exc).__name__, "message": exc.message, "page": exc.page, "hint": exc.hint}
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc), "page": None, "hint": None}


def error_record(base: dict[str, Any], exc: BaseException, *, per: str, seconds: float = 0.0) -> dict[str, Any]:
    """The record of a document that could not be read at all (``"page": null`` with ``per="page"``)."""
    extra: dict[str, Any] = {"page": None} if per == "page" else {}
    return {**base, **extra, "status": "error", "value": None, "evidence": {}, "error": error_info(exc),
            "seconds": round(seconds, 4)}


def process_document(
    model: Any,
    schema: type[BaseModel],
    source: str,
    base: dict[str, Any],
    *,
    per: str = "document",
    pages: Sequence[int] | None = None,
    data: bytes | None = None,
    slot: AbstractContextManager[Any] | None = None,
) -> list[dict[str, Any]]:
    """The records of one document (or of some of its pages): what a worker of `run_batch` computes.

    Shared with `docvlm.integrations.ray`, so both write the same records.

    Args:
        model: a loaded model.
        schema: the pydantic model to fill.
        source: the file's path (kept in the records and in error messages).
        base: the fields every record starts with (source, sha256, task, model, schema).
        per: ``"document"`` (one record) or ``"page"`` (one record per page in ``pages``).
        pages: with ``per="page"``, the 0-based pages to do (default: all).
        data: the file's bytes, when the caller has them already (else ``source`` is read).
        slot: held around each extraction (a semaphore bounding the requests in flight).

    Returns:
        The records; every failure is an error record, never an exception.
    """
    import io

    from docvlm.documents import open_document
    from docvlm.models import TestModel
    from docvlm.tasks.extract import extract

    delay = float(os.environ.get(_DELAY_ENV) or 0)
    records: list[dict[str, Any]] = []

    def run(doc: Any, page_list: list[int] | None, extra: dict[str, Any]) -> None:
        start = time.perf_counter()
        record = {**base, **extra, "status": "ok", "value": None, "evidence": {}, "error": None}
        try:
            with slot or contextlib.nullcontext():
                result = extract(model, doc, schema, pages=page_list)
            record["value"] = result.value.model_dump(mode="json")
            record["evidence"] = {k: v.model_dump(mode="json") for k, v in result.evidence.items()}
        except Exception as exc:  # any failure of one document is its error record
            record["status"], record["error"] = "error", error_info(exc)
        record["seconds"] = round(time.perf_counter() - start, 4)
        records.append(record)

    start = time.perf_counter()
    if delay:
        time.sleep(delay)
    try:
        if data is None:
            doc = open_document(source)
        else:
            buffer = io.BytesIO(data)
            buffer.name = source  # the label error messages use
            doc = open_document(buffer)
    except Exception as exc:
        return [error_record(base, exc, per=per, seconds=time.perf_counter() - start)]
    with doc:
        if per == "document":
            run(doc, None, {})
        else:
            for i in range(len(doc)) if pages is None else pages:
                run(doc, [i], {"page": i})
    if isinstance(model, TestModel):
        # the fake logs every request (page images included) for assertions in unit tests; over a batch
        # of thousands of pages that log was the only thing growing (~4 MB a page, bench/memory.py)
        model.requests.clear()
    return records


def page_count(source: str, data: bytes | None = None) -> int:
    """Pages of a document (opens it; raises what [`docvlm.open`][docvlm.documents._open.open_document] raises)."""
    import io

    from docvlm.documents import open_document

    if data is None:
        doc = open_document(source)
    else:
        buffer = io.BytesIO(data)
        buffer.name = source
        doc = open_document(buffer)
    with doc:
        return len(doc)


# ---------------------------------------------------------------- workers

_worker: dict[str, Any] = {}


def _die_with_parent(parent_pid: int) -> None:
    """End this worker when its parent process ends, however it ends (``kill -9`` included).

    On Linux the kernel sends the worker SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere,
    or if that call fails, a watchdog thread checks twice a second whether the worker was re-parented. A parent
    that died before the signal was armed is caught by the first check.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="docvlm-parent-watchdog").start()


def _watch_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init_worker(model_spec: str, schema_spec: str, threads: int, slots: Any, compute: int = 1,
                 parent_pid: int | None = None) -> None:
    """Load the model and the schema once per worker; a failure is kept and raised by the first task."""
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    _worker["slots"] = slots
    _worker["threads"] = threads
    # every library in the worker (torch, onnxruntime, Tesseract) uses the worker's share of the CPUs
    os.environ["DOCVLM_NUM_THREADS"] = str(compute)
    try:
        from docvlm.models import load_model
        from docvlm.schemas import load_schema

        _worker["schema"] = load_schema(schema_spec)
        # a server client gets one connection per thread, so no request waits for a connection
        options: dict[str, Any] = {"concurrency": threads} if _is_server(model_spec) else {"threads": compute}
        _worker["model"] = load_model(model_spec, **options)
    except BaseException as exc:  # re-raised in _work, where the parent sees it
        _worker["error"] = exc


def _work(items: list[_Item], per: str) -> list[list[dict[str, Any]]]:
    """Process a few documents (page ranges) in a worker, concurrently when the worker has threads."""
    if "error" in _worker:
        raise _worker["error"]
    model, schema, slots = _worker["model"], _worker["schema"], _worker["slots"]

    def one(item: _Item) -> list[dict[str, Any]]:
        return process_document(model, schema, item.source, item.base, per=per, pages=item.pages, slot=slots)

    if len(items) == 1:
        return [one(items[0])]
    with cf.ThreadPoolExecutor(len(items), thread_name_prefix="docvlm-batch") as threads:
        return list(threads.map(one, items))


def _is_server(model_spec: str) -> bool:
    return model_spec.startswith("openai:")


@dataclass(frozen=True)
class _Item:
    """One unit of work: a document, or some pages of one."""

    source: str
    base: dict[str, Any]
    pages: tuple[int, ...] | None
    units: int  # progress units: 1 document, or the number of pages


# ---------------------------------------------------------------- the job


def _schema_spec(schema: str | type[BaseModel]) -> tuple[str, str]:
    """(spec a worker can load, qualified name for the records)."""
    from docvlm.schemas import load_schema

    if isinstance(schema, str):
        cls = load_schema(schema)
        spec = schema
    elif isinstance(schema, type) and issubclass(schema, BaseModel):
        cls = schema
        spec = f"{schema.__module__}:{schema.__qualname__}"
        if schema.__module__ == "__main__" or "<locals>" in schema.__qualname__:
            raise UsageError(f"the schema {schema.__qualname__} cannot be imported by the worker processes",
                             hint="define it in an importable module, or pass 'path/to/file.py:Class'")
    else:
        raise UsageError(f"schema must be a pydantic model class or 'module:Class', got {schema!r}")
    return spec, schema_name(cls)


def schema_name(schema: type[BaseModel]) -> str:
    """The schema's name in the records: ``module.Class``."""
    return f"{schema.__module__}.{schema.__qualname__}"


def run_batch(
    inputs: Sequence[str | Path],
    *,
    task: Literal["extract"] = "extract",
    schema: str | type[BaseModel],
    model: str = "default",
    output: str | Path,
    per: Literal["document", "page"] = "document",
    workers: int | None = None,
    concurrency: int | None = None,
    progress: bool = False,
    threads: int | None = None,
    timeout: float | None = None,
) -> BatchSummary:
    """Run ``task`` on every input document in a process pool, appending one JSON line per document to ``output``.

    Args:
        inputs: files, folders (searched recursively) and globs (``**`` recursive) of PDFs and images.
        task: ``"extract"``: fill ``schema`` with per-field evidence ([`docvlm.extract`][docvlm.tasks.extract]).
        schema: a pydantic model class (importable by module name) or ``"module:Class"`` /
            ``"path/to/file.py:Class"``.
        model: a model spec ([`docvlm.load_model`][docvlm.models.load_model]); each worker loads it once.
        output: the JSON-lines file, created or resumed.
        per: ``"document"`` (one record per file) or ``"page"`` (one record per page, with a ``"page"`` key).
        workers: worker processes (default: ``os.cpu_count()``, at most one per task to do).
        concurrency: documents in extraction at once over all workers, hence model requests in flight at
            most. Default: 8 for a server spec (``openai:...``), else one per worker. More than one per
            worker runs threads in the workers; use it with server backends.
        progress: show a progress bar (rate and time left) on stderr.
        threads: CPU threads of each worker's local model (default: docvlm's thread policy shares the CPUs
            free at the start between the workers, at least one each).
        timeout: seconds for the whole run; past it the workers are terminated, the records written so far
            are kept and [`TimeLimitError`][docvlm.errors.TimeLimitError] is raised (run again to resume).

    Returns:
        How many records were written ok / with an error, and how many documents were skipped.

    Raises:
        UsageError: a bad task, schema, ``per``, ``workers``, ``concurrency`` or an input that matches nothing.
        DocVLMError: the model cannot be loaded (raised by the first worker task; the job stops).
        TimeLimitError: ``timeout`` passed.
    """
    from docvlm._deadline import deadline
    from docvlm._threads import check_threads

    check_threads(threads)
    with deadline(timeout, "batch"):
        return _run_batch(inputs, task=task, schema=schema, model=model, output=output, per=per, workers=workers,
                          concurrency=concurrency, progress=progress, threads=threads)


def _run_batch(inputs: Sequence[str | Path], *, task: str, schema: str | type[BaseModel], model: str,
               output: str | Path, per: str, workers: int | None, concurrency: int | None, progress: bool,
               threads: int | None) -> BatchSummary:
    t0 = time.perf_counter()
    if task not in _TASKS:
        raise UsageError(f"unknown batch task {task!r}", hint=f"use one of {', '.join(_TASKS)}")
    if per not in _PER:
        raise UsageError(f"per must be 'document' or 'page', got {per!r}")
    if not isinstance(model, str):
        raise UsageError("a batch model is a spec string (it is loaded again in each worker process)")
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    if concurrency is not None and concurrency < 1:
        raise UsageError(f"concurrency must be >= 1, got {concurrency}")
    schema_spec, name = _schema_spec(schema)
    files = expand_inputs(inputs)
    out = Output(Path(output))
    summary = BatchSummary(output=Path(output))
    try:
        done_keys = out.recover()
        base_of = {"task": task, "model": model, "schema": name}
        todo: list[_Item] = []
        seen: set[str] = set()
        done_pages: dict[str, set[int]] = {}
        if per == "page":
            for sha, t, m, s, page in done_keys:
                if (t, m, s) == (task, model, name) and isinstance(page, int):
                    done_pages.setdefault(sha, set()).add(page)

        def record(r: dict[str, Any]) -> None:
            out.append(r)
            if r["status"] == "ok":
                summary.done += 1
            else:
                summary.failed += 1

        for f in files:
            try:
                sha = sha256_of(f)
            except OSError as exc:
                record({"source": str(f), "sha256": None, **base_of, "status": "error", "value": None,
                        "evidence": {}, "error": error_info(exc), "seconds": 0.0})
                continue
            if sha in seen:
                summary.skipped += 1
                continue
            seen.add(sha)
            base = {"source": str(f), "sha256": sha, **base_of}
            if per == "document":
                if record_key(base) in done_keys:
                    summary.skipped += 1
                else:
                    todo.append(_Item(str(f), base, None, 1))
                continue
            if (sha, task, model, name, None) in done_keys:  # the file could not be opened
                summary.skipped += 1
                continue
            try:
                n_pages = page_count(str(f))
            except Exception as exc:
                record(error_record(base, exc, per=per))
                continue
            done = done_pages.get(sha, set())
            summary.skipped += len(done & set(range(n_pages)))
            left = [i for i in range(n_pages) if i not in done]
            for k in range(0, len(left), _PAGES_PER_TASK):  # a long document is shared between workers
                chunk = tuple(left[k:k + _PAGES_PER_TASK])
                todo.append(_Item(str(f), base, chunk, len(chunk)))
        if todo:
            _run_pool(todo, per, model, schema_spec, workers, concurrency, progress, record, threads)
    finally:
        out.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _rate_column() -> Any:
    """A progress column: units per second, as rich measures it over the last half minute."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- /s" if speed is None else f"{speed:.2f}/s", style="progress.data.speed")

    return RateColumn()


def _plan(n_todo: int, workers: int | None, concurrency: int | None, model: str) -> tuple[int, int, int]:
    """(worker processes, threads per worker, documents in flight at most)."""
    n_workers = max(1, min(workers or os.cpu_count() or 1, n_todo))
    if concurrency is None:
        concurrency = _SERVER_CONCURRENCY if _is_server(model) else n_workers
    n_workers = min(n_workers, concurrency)
    threads = min(-(-concurrency // n_workers), -(-n_todo // n_workers))  # ceil
    return n_workers, max(1, threads), concurrency


def _start_method() -> str:
    """``fork`` where it is safe (Linux, one thread, no CUDA in this process): workers start in milliseconds,
    with docvlm already imported; else ``spawn`` (a GPU context or other threads must never be forked)."""
    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform == "darwin" \
            or threading.active_count() > 1:
        return "spawn"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "spawn"
    return "fork"


def _run_pool(todo: list[_Item], per: str, model: str, schema_spec: str, workers: int | None,
              concurrency: int | None, progress: bool, record: Callable[[dict[str, Any]], None],
              model_threads: int | None = None) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from docvlm import _deadline
    from docvlm._threads import threads_for

    n_workers, threads, limit = _plan(len(todo), workers, concurrency, model)
    # each worker's model gets its share of the free CPUs (one thread each on a small or busy machine)
    compute = threads_for(n_workers, threads=model_threads)
    ctx = multiprocessing.get_context(_start_method())
    # threads in several workers could exceed the limit together: a semaphore shared by all bounds them
    slots = ctx.BoundedSemaphore(limit) if n_workers * threads > limit else None
    unit = "pages" if per == "page" else "docs"
    bar = Progress(TextColumn(f"[bold]batch {unit}"), BarColumn(), MofNCompleteColumn(), _rate_column(),
                   TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                   disable=not progress)
    pending = iter(todo)
    in_flight: dict[cf.Future[list[list[dict[str, Any]]]], list[_Item]] = {}
    others = set(multiprocessing.active_children())  # children that are not this pool's workers
    with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_init_worker,
                                initargs=(model, schema_spec, threads, slots, compute, os.getpid())) as pool:
        task_id = bar.add_task("batch", total=sum(item.units for item in todo))

        def submit(k: int) -> None:
            for _ in range(k):
                items = list(itertools.islice(pending, threads))
                if not items:
                    return
                in_flight[pool.submit(_work, items, per)] = items

        submit(n_workers * 4)  # bounded look-ahead: a million inputs are not a million futures
        bar.start()  # after the workers started: its refresh thread must not exist when they fork
        try:
            while in_flight:
                left = _deadline.remaining()
                finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED,
                                      timeout=None if left is None else max(0.0, left))
                if not finished:
                    _deadline.check("batch")
                for fut in finished:
                    items = in_flight.pop(fut)
                    for records in fut.result():  # raises: model load failure, or a worker that died
                        for r in records:
                            record(r)
                    bar.advance(task_id, sum(item.units for item in items))
                submit(len(finished))
        except cf.process.BrokenProcessPool as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            raise DocVLMError("a worker process died (out of memory, or a crash in a native library); "
                              "the records written so far are kept",
                              hint="run the same command again to resume") from exc
        except BaseException:
            _terminate(pool, others)
            raise
        finally:
            bar.stop()


def _terminate(pool: cf.ProcessPoolExecutor, others: set[Any] | None = None) -> None:
    """Stop a pool now: cancel what has not started and end the workers (a timeout or an interrupt): those the pool
    lists, and any other child started since the pool was made (``others``: the children there were before), so a
    worker the pool was still starting is not left running.

    Returns once every worker is dead and reaped (SIGTERM, then SIGKILL after 5 s; 15 s at most in all). The pool's
    own manager thread reaps the workers too, and when it wins that race a ``join`` here returns with the exit code
    still unset for a moment; so the wait is on the exit codes, not on ``join`` alone.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    if others is not None:
        processes += [p for p in multiprocessing.active_children() if p not in others and p not in processes]
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    if not _wait_ended(processes, 5.0):
        for proc in processes:
            if proc.exitcode is None:
                proc.kill()
        _wait_ended(processes, 10.0)


def _wait_ended(processes: list[Any], seconds: float) -> bool:
    """Wait until every process has an exit code (dead and reaped, by this thread or the pool's); False at the
    time limit."""
    deadline = time.monotonic() + seconds
    for proc in processes:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    while any(proc.exitcode is None for proc in processes):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
