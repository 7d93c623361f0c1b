"""The ``docvlm`` command line: a thin face over the library, JSON on stdout, one-line errors on stderr.

Exit status: 0 on success, 1 when the work failed (a bad document, a model or server failure, a missing extra,
a batch with failed records), 2 for a usage error (bad options, page ranges or schema specs, including a schema
file that does not run). Every box in the JSON output has one shape, a [`BoundingBox`][docvlm.types.geometry.BoundingBox]:
``{"space": "page", "image_size": null, "x0": ..., "y0": ..., "x1": ..., "y1": ...}`` with coordinates
rounded to 0.001.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from docvlm.documents import Document, open_document, parse_page_range
from docvlm.documents.base import DEFAULT_MAX_PIXELS
from docvlm.errors import DocVLMError, UsageError
from docvlm.schemas import load_schema

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "app", "main"]

#: Exit status of a run whose work failed.
EXIT_FAILURE = 1
#: Exit status of a command given wrong options or arguments (as for click's own usage errors).
EXIT_USAGE = 2

app = typer.Typer(
    name="docvlm",
    help="Document understanding with vision-language models: typed, validated, grounded.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True)
_state: dict[str, Any] = {"debug": False, "quiet": False}

FileArg = Annotated[str, typer.Argument(help="a PDF or image file")]
PasswordOpt = Annotated[str | None, typer.Option("--password", help="password of an encrypted PDF")]
PagesOpt = Annotated[str | None, typer.Option("--pages", help="1-based pages, e.g. '1-3,7' (default: all)")]
WebFileArg = Annotated[str, typer.Argument(help="a PDF, image or HTML file, or an http(s) URL")]
AllowHostOpt = Annotated[list[str] | None, typer.Option(
    "--allow-host", help="for web pages: a host, IP or CIDR network the page may reach although it is "
                         "loopback/private (repeatable; e.g. 127.0.0.1 for a local server)")]


def _fail(exc: BaseException) -> NoReturn:
    """One line on stderr; exit 2 for a usage error, 1 for any other failure."""
    if _state["debug"]:
        traceback.print_exception(exc)
    msg = str(exc).replace("\n", " ")
    print(f"docvlm: error: {msg}", file=sys.stderr)
    raise typer.Exit(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURE)


def _open(path: str, password: str | None, allow_hosts: list[str] | None = None) -> Document:
    # the command line is the user's own: a file:// URL names a file they may read
    try:
        if allow_hosts:
            from pydantic import ValidationError

            from docvlm.documents.web import WebOptions

            try:
                web = WebOptions(allow_hosts=tuple(allow_hosts))
            except ValidationError as exc:
                raise UsageError(f"--allow-host: {exc.errors()[0]['msg']}",
                                 hint="write a host, host:port, an origin like http://host:8000, or a network") from None
            return open_document(path, password=password, web=web, allow_local_files=True)
        return open_document(path, password=password, allow_local_files=True)
    except DocVLMError as exc:
        _fail(exc)


@contextmanager
def _document(path: str, password: str | None, allow_hosts: list[str] | None = None) -> Iterator[Document]:
    """The opened document for a command; any docvlm error inside becomes the one-line exit-2 failure."""
    with _open(path, password, allow_hosts) as doc:
        try:
            yield doc
        except DocVLMError as exc:
            _fail(exc)


def _show_progress() -> bool:
    from docvlm._progress import progress_enabled

    return progress_enabled(_state["quiet"]) and bool(_err.is_terminal)


def _progress(total: int, what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=_err, transient=True, disable=total < 2 or not _show_progress(),
    )


_BOX_KEYS = frozenset({"space", "x0", "y0", "x1", "y1"})


def _plain(obj: Any) -> Any:
    """JSON data with every box (a BoundingBox, or its dump) as a dumped BoundingBox with rounded coordinates."""
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    if isinstance(obj, dict):
        if obj.keys() >= _BOX_KEYS:
            return {k: round(v, 3) if k in ("x0", "y0", "x1", "y1") and isinstance(v, float) else _plain(v)
                    for k, v in obj.items()}
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _status(what: str) -> Any:
    """A spinner with elapsed time on stderr while a long step runs (quiet when piped or with --quiet)."""
    from docvlm._progress import status

    return status(what, enabled=_show_progress())


def _timed(timeout: float | None, what: str) -> Any:
    """The command's --timeout as a deadline around its work (ends in TimeLimitError, exit 1)."""
    from docvlm._deadline import deadline

    return deadline(timeout, what)


def _dump(obj: Any) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(_plain(obj), ensure_ascii=False) + "\n")


def _dump_pretty(obj: Any) -> None:
    """A JSON document on stdout, indented."""
    sys.stdout.write(json.dumps(_plain(obj), ensure_ascii=False, indent=2) + "\n")


def _print_version(value: bool) -> None:
    if value:
        from docvlm._version import __version__

        print(f"docvlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks of errors")] = False,
    version: Annotated[bool, typer.Option("--version", help="print docvlm's version and exit", is_eager=True,
                                          callback=_print_version)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display on stderr")] = False,
) -> None:
    _state["debug"] = debug
    _state["quiet"] = quiet


@app.command()
def info(file: WebFileArg, password: PasswordOpt = None, allow_host: AllowHostOpt = None) -> None:
    """Print a document's format, pages, sizes, rotation and text-layer presence as JSON."""
    with _document(file, password, allow_host) as doc:
        print(doc.info().model_dump_json(indent=2))


@app.command()
def render(
    file: WebFileArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for page-0001.png, ...")],
    pages: PagesOpt = None,
    dpi: Annotated[float | None, typer.Option("--dpi", help="resolution (default 144 for PDF, native for images, 96 for web pages)")] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="pixel budget per page")] = DEFAULT_MAX_PIXELS,
    password: PasswordOpt = None,
    allow_host: AllowHostOpt = None,
) -> None:
    """Render pages to PNG files named page-0001.png (1-based); a web page's pages are viewport-height tiles."""
    with _open(file, password, allow_host) as doc:
        try:
            indices = parse_page_range(pages, len(doc))
            out.mkdir(parents=True, exist_ok=True)
            with _progress(len(indices), "rendering") as bar:
                task = bar.add_task("render", total=len(indices))
                for i in indices:
                    image = doc[i].render(dpi=dpi, max_pixels=max_pixels)
                    target = out / f"page-{i + 1:04d}.png"
                    image.to_png(target)
                    _dump({"page": i, "path": str(target), "width": image.width, "height": image.height, "dpi": round(image.dpi, 3)})
                    bar.advance(task)
        except DocVLMError as exc:
            _fail(exc)
        except OSError as exc:
            _fail(exc)


@app.command()
def words(file: WebFileArg, pages: PagesOpt = None, password: PasswordOpt = None,
          allow_host: AllowHostOpt = None) -> None:
    """Print the text layer as JSON lines {"page", "text", "box"}; page is 0-based, box in page units."""
    with _document(file, password, allow_host) as doc:
        for i in parse_page_range(pages, len(doc)):
            for w in doc[i].words():
                _dump({"page": w.page, "text": w.text, "box": w.box})


ModelOpt = Annotated[str, typer.Option("--model", help="model spec: default, transformers:<folder>, openai:<m>@<url>, test")]
DrawOpt = Annotated[Path | None, typer.Option("--draw", help="write the page with the result drawn on it (PNG)")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for the model and OCR (default: the CPUs free now; or OMP_NUM_THREADS)")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", min=0.001, help="stop with an error (exit 1) after this many seconds")]


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="folder for the demo's files (default: a new temporary folder)")] = None,
    model: Annotated[str, typer.Option("--model", help="model spec (default: the offline default model)")] = "default",
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Extract a typed invoice (fields + line items) from a PDF and a scan of it, with evidence boxes in an HTML report."""
    import tempfile

    from docvlm import demo as demo_module

    _use_threads(threads)
    folder = out if out is not None else Path(tempfile.mkdtemp(prefix="docvlm-demo-"))
    try:
        with _timed(timeout, "demo"):
            demo_module.run(folder, console=Console(), model=model)
    except DocVLMError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(exc)


def _use_threads(threads: int | None) -> None:
    """--threads for everything in this process: torch (through load_model), Tesseract and onnxruntime."""
    if threads is not None:
        import os

        os.environ["DOCVLM_NUM_THREADS"] = str(threads)
        _state["threads"] = threads


def _load(spec: str, **extra: Any) -> Any:
    from docvlm.models import load_model

    options = {"threads": _state["threads"]} if _state.get("threads") else {}
    options.update({k: v for k, v in extra.items() if v is not None})
    with _status(f"loading model {spec}"):
        try:
            return load_model(spec, **options)
        except DocVLMError as exc:
            _fail(exc)


def _draw(doc: Document, page_index: int, result: Any, target: Path | None) -> None:
    if target is None:
        return
    from docvlm.draw import draw

    draw(doc[page_index], result, dpi=100).to_png(target)
    print(f"docvlm: drew the result on page {page_index} -> {target}", file=sys.stderr)


@app.command()
def read(file: FileArg, pages: PagesOpt = None, model: Annotated[str | None, typer.Option(
        "--model", help="a vision model transcribes; without one the text layer (or OCR) is read")] = None,
         password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Print the text of each page as JSON lines {"page", "text"}."""
    from docvlm.tasks.ask import read as read_task

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "read"):
        m = _load(model) if model else None
        indices = parse_page_range(pages, len(doc))
        with _progress(len(indices), "reading pages") as bar:
            task = bar.add_task("read", total=len(indices))
            for i in indices:
                _dump({"page": i, "text": read_task(m, doc[i])})
                bar.advance(task)


@app.command()
def extract(
    file: FileArg,
    schema: Annotated[str, typer.Option("--schema", help="module:Class or file.py:Class of a pydantic model")],
    model: ModelOpt = "default",
    pages: PagesOpt = None,
    draw: DrawOpt = None,
    password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Fill a pydantic schema from the document and print it with per-field evidence (page, box, quote)."""
    from docvlm.tasks.extract import extract as extract_task

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "extract"):
        cls = load_schema(schema)
        indices = parse_page_range(pages, len(doc)) if pages else None
        m = _load(model)
        with _status(f"extracting {cls.__name__} from {len(indices) if indices else len(doc)} page(s)"):
            result = extract_task(m, doc, cls, pages=indices)
        _dump_pretty(result)
        _draw(doc, min((e.page or 0 for e in result.evidence.values()), default=0), result, draw)


@app.command()
def tables(
    file: FileArg,
    pages: PagesOpt = None,
    model: Annotated[str | None, typer.Option("--model", help="a model for images and scans (default: classical)")] = None,
    draw: DrawOpt = None,
    password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Print the tables of each page as JSON lines (cells with boxes and spans, plus Markdown)."""
    from docvlm._deadline import check
    from docvlm.tasks import tables as tables_module

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "tables"):
        m = _load(model) if model else None
        drawn = False
        indices = parse_page_range(pages, len(doc))
        with _progress(len(indices), "tables: pages") as bar:
            task = bar.add_task("tables", total=len(indices))
            for i in indices:
                check(f"page {i}")
                found = tables_module.extract_tables(m, doc[i]) if hasattr(tables_module, "extract_tables") \
                    else tables_module.find_tables(doc[i])
                for t in found:
                    _dump({"page": i, "shape": list(t.shape), "markdown": t.to_markdown(), "table": t})
                if found and not drawn:
                    _draw(doc, i, found, draw)
                    drawn = True
                bar.advance(task)


@app.command()
def ask(
    file: FileArg,
    question: Annotated[str, typer.Argument(help="the question")],
    model: ModelOpt = "default",
    pages: PagesOpt = None,
    draw: DrawOpt = None,
    password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Answer a question about the document, with citations (page, box, quote)."""
    from docvlm.tasks.ask import ask as ask_task

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "ask"):
        indices = parse_page_range(pages, len(doc)) if pages else None
        m = _load(model)
        with _status("answering"):
            answer = ask_task(m, doc, question, pages=indices)
        _dump_pretty(answer)
        _draw(doc, answer.citations[0].page if answer.citations else 0, answer, draw)


PageOpt = Annotated[int, typer.Option("--page", help="1-based page to look at")]


@app.command()
def detect(
    file: FileArg,
    labels: Annotated[str, typer.Option("--labels", help="comma-separated labels, e.g. 'signature,logo,table'")],
    model: ModelOpt = "default",
    page: PageOpt = 1,
    draw: DrawOpt = None,
    password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Detect labelled regions on a page with a vision model; JSON lines {"label", "box"} in page units."""
    from docvlm.tasks.vision import detect as detect_task

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "detect"):
        (i,) = parse_page_range(str(page), len(doc))
        m = _load(model)
        with _status("detecting"):
            found = detect_task(m, doc[i], [x.strip() for x in labels.split(",") if x.strip()])
        for d in found:
            _dump({"page": i, "label": d.label, "score": d.score, "box": d.box})
        _draw(doc, i, found, draw)


@app.command()
def ground(
    file: FileArg,
    phrase: Annotated[str, typer.Argument(help="what to find, e.g. 'the invoice total'")],
    model: ModelOpt = "default",
    page: PageOpt = 1,
    draw: DrawOpt = None,
    password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Find where a phrase is on a page; JSON lines {"page", "box"} (empty output: not there)."""
    from docvlm.tasks.vision import ground as ground_task

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "ground"):
        (i,) = parse_page_range(str(page), len(doc))
        m = _load(model)
        with _status("grounding"):
            boxes = ground_task(m, doc[i], phrase)
        for b in boxes:
            _dump({"page": i, "box": b})
        _draw(doc, i, boxes, draw)


@app.command()
def batch(
    inputs: Annotated[list[str], typer.Argument(help="files, folders (recursive) or globs of PDFs and images")],
    schema: Annotated[str, typer.Option("--schema", help="module:Class or file.py:Class of a pydantic model")],
    out: Annotated[Path, typer.Option("-o", "--out", help="JSON-lines output, created or resumed")],
    model: ModelOpt = "default",
    workers: Annotated[int | None, typer.Option("--workers", help="worker processes (default: CPU count)")] = None,
    per: Annotated[str, typer.Option("--per", help="one record per 'document' or per 'page'")] = "document",
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", help="documents (model requests) in flight at most (default: 8 for openai: servers, "
                              "else one per worker)")] = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Extract a schema from many documents into JSON lines; a killed run resumes where it stopped (exit 1 if any failed)."""
    from docvlm.batch import run_batch

    _use_threads(threads)
    try:
        summary = run_batch(inputs, schema=schema, model=model, output=out, workers=workers,
                            concurrency=concurrency, per=per, progress=_show_progress(),  # type: ignore[arg-type]
                            threads=threads, timeout=timeout)
    except DocVLMError as exc:
        _fail(exc)
    print(f"docvlm: batch: {summary}", file=sys.stderr)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", help="model spec: default, transformers:<folder>, test, ...")] = "default",
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port (0: any free port)")] = 8000,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="DOCVLM_API_KEY", show_envvar=True,
        help="require 'Authorization: Bearer <key>' on every request (default: no key)")] = None,
    model_name: Annotated[str | None, typer.Option("--model-name", help="the id /v1/models lists (default: the spec)")] = None,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", min=1, help="requests decoded together at most")] = 8,
    max_concurrency: Annotated[int, typer.Option("--max-concurrency", min=1,
                                                 help="requests being prepared or waiting for the model at once")] = 16,
    request_timeout: Annotated[float, typer.Option("--request-timeout", min=0.001, help="seconds per request (504 past it)")] = 600.0,
    compile_timeout: Annotated[float, typer.Option("--compile-timeout", min=0.001,
                                                   help="seconds to compile a request's schema (400 past it)")] = 10.0,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="largest request body (413 past it)")] = 32.0,
    max_image_pixels: Annotated[int, typer.Option("--max-image-pixels", min=1,
                                                  help="pixels of one image, read from its header (413 past it)")] = 25_000_000,
    verbose: Annotated[bool, typer.Option("--verbose", help="log every request on stderr")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Serve a model as an OpenAI-compatible API (chat completions, streaming, tools) whose structured outputs are always valid."""
    from docvlm.serve import ServeLimits
    from docvlm.serve import serve as run_server

    _use_threads(threads)
    try:
        limits = ServeLimits(request_timeout_s=request_timeout, compile_timeout_s=compile_timeout,
                             max_body_bytes=int(max_body_mb * 2**20), max_image_pixels=max_image_pixels,
                             max_request_pixels=max(2 * max_image_pixels, ServeLimits().max_request_pixels),
                             max_concurrency=max_concurrency)
        run_server(_load(model), host, port, api_key=api_key, model_name=model_name,
                   max_batch_size=max_batch_size, limits=limits, verbose=verbose)
    except DocVLMError as exc:
        _fail(exc)


@app.command()
def mcp(
    file: FileArg,
    model: Annotated[str | None, typer.Option("--model", help="a model for the ground tool (optional)")] = None,
    cache_mb: Annotated[float, typer.Option("--cache-mb", min=1,
                                            help="memory for the session's renders and zooms (least recently used out)")] = 256,
) -> None:
    """Serve the document's tools (pages, render, zoom, read, tables, ground, answer) over MCP on stdio."""
    from docvlm.integrations.mcp import run_stdio

    try:
        run_stdio(file, model=_load(model) if model else None, cache_bytes=int(cache_mb * 2**20))
    except DocVLMError as exc:
        _fail(exc)


@app.command()
def agent(
    file: FileArg,
    task: Annotated[str, typer.Argument(help="what to find out, e.g. 'What is the invoice total?'")],
    model: ModelOpt = "default",
    max_steps: Annotated[int, typer.Option("--max-steps", help="most tool calls; the last one must answer")] = 8,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="wall-clock seconds the agent may take (default 120; 0: no limit)")] = 120.0,
    trace: Annotated[Path | None, typer.Option("--trace", help="write every step as one HTML file")] = None,
    password: PasswordOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Let a model answer a task by calling the document's tools; print the answer with citations and the trace as JSON."""
    from docvlm.errors import AgentBudgetError
    from docvlm.workflows import Agent

    _use_threads(threads)
    with _document(file, password) as doc, _timed(timeout, "agent"):
        runner = Agent(_load(model), max_steps=max_steps, budget=budget or None)
        try:
            with _status("agent at work"):
                result = runner.run(doc, task)
        except AgentBudgetError as exc:
            if trace is not None and exc.trace is not None:
                exc.trace.to_html(trace)
                print(f"docvlm: wrote the partial trace -> {trace}", file=sys.stderr)
            raise
        _dump_pretty(result)
        if trace is not None:
            result.to_html(trace)
            print(f"docvlm: wrote the trace -> {trace}", file=sys.stderr)


@app.command("eval")
def eval_(
    task: Annotated[str, typer.Option("--task", help="extract, key_values, tables, ground, qa or mcq")],
    data: Annotated[str, typer.Option("--data", help="dataset file or folder (synthetic: kind[:n[:seed]])")],
    format: Annotated[str, typer.Option("--format", help="funsd, sroie, invoice2data, docvqa, coco, icdar2013, pubtabnet, camelot, mcq, synthetic")],
    model: Annotated[str | None, typer.Option(
        "--model", help="model spec (default: 'default'; tables: classical); 'none': the layout ranking alone "
                        "(extract, key_values, qa)")] = None,
    adapter: Annotated[Path | None, typer.Option(
        "--adapter", help="a LoRA adapter folder (docvlm finetune -o) to put on the model")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="only the first N samples")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for results.jsonl, metrics.json, report.html")] = Path("report"),
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Evaluate a model on a dataset: per-sample results, pooled metrics and an HTML report (metrics JSON on stdout)."""
    from docvlm.eval.datasets import load_dataset
    from docvlm.eval.runner import evaluate as run_eval

    _use_threads(threads)
    try:
        dataset = load_dataset(data, format, limit=limit)
        if adapter is not None and (model == "none" or (model is None and task == "tables")):
            raise UsageError("--adapter needs a --model to put it on", hint="e.g. --model transformers:<folder>")
        if model == "none" or (model is None and task == "tables"):
            m = None
        else:
            m = _load(model or "default", adapter=adapter)
        with _progress(len(dataset), f"eval {task}") as bar:
            job = bar.add_task("eval", total=len(dataset))
            report = run_eval(m, dataset, task, out=out, progress=lambda done, total: bar.update(job, completed=done),
                              timeout=timeout)
    except DocVLMError as exc:
        _fail(exc)
    print(json.dumps(report.summary(), indent=2))
    if report.skipped:
        print(f"docvlm: eval: {len(report.skipped)} bad records skipped (listed in {report.files['report']})",
              file=sys.stderr)
    print(f"docvlm: eval: wrote {', '.join(report.files.values())}", file=sys.stderr)


@app.command()
def finetune(
    task: Annotated[str, typer.Option("--task", help="extract, key_values, ask, ground, detect or tables")],
    data: Annotated[str, typer.Option("--data", help="labelled data: a dataset file or folder (synthetic: kind[:n[:seed]])")],
    format: Annotated[str, typer.Option("--format", help="funsd, sroie, docvqa, coco, icdar2013, pubtabnet, synthetic")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for the adapter, checkpoints and loss.jsonl")],
    base: Annotated[str, typer.Option("--base", help="the model to adapt: default, default-base, transformers:<folder>")] = "default",
    limit: Annotated[int | None, typer.Option("--limit", help="only the first N labelled examples")] = None,
    epochs: Annotated[float, typer.Option("--epochs", help="passes over the examples")] = 1.0,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="optimizer steps in all (overrides --epochs)")] = None,
    learning_rate: Annotated[float, typer.Option("--lr", help="learning rate")] = 2e-4,
    lora_r: Annotated[int, typer.Option("--lora-r", help="LoRA rank")] = 8,
    top_layers: Annotated[int | None, typer.Option(
        "--top-layers", help="LoRA on the last N layers only (faster on a CPU; default: all)")] = None,
    max_length: Annotated[int, typer.Option("--max-length", help="leave out examples longer than this (tokens)")] = 2048,
    seed: Annotated[int, typer.Option("--seed", help="seed of the training run")] = 0,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="continue from the last checkpoint in -o")] = True,
    threads: ThreadsOpt = None,
) -> None:
    """Fine-tune a model on labelled documents: the task's own requests and true answers, a LoRA adapter (TRL)."""
    from docvlm.eval.datasets import load_dataset
    from docvlm.finetune import build_dataset, train

    _use_threads(threads)
    try:
        labelled = load_dataset(data, format, limit=limit)
        spec = base.strip()
        model = _load(spec, runtime="transformers") if spec in ("default", "default-base") else _load(spec)
        with _status(f"building {task} training examples from {len(labelled)} labelled examples"):
            dataset = build_dataset(task, labelled, model)
        print(f"docvlm: finetune: {json.dumps(dataset.summary())}", file=sys.stderr)
        result = train(model, dataset, out, epochs=epochs, max_steps=max_steps, learning_rate=learning_rate,
                       lora_r=lora_r, lora_alpha=2 * lora_r, top_layers=top_layers, max_length=max_length, seed=seed,
                       resume=resume, progress=_show_progress())
    except DocVLMError as exc:
        _fail(exc)
    print(json.dumps({"adapter": str(result.adapter), "steps": result.steps, "examples": result.examples,
                      "dropped": result.dropped, "first_loss": result.losses[0] if result.losses else None,
                      "last_loss": result.losses[-1] if result.losses else None,
                      "seconds": round(result.seconds, 1)}, indent=2))
    print(f"docvlm: finetune: wrote {out} (use it: --model {spec} --adapter {out})", file=sys.stderr)


def main() -> None:
    """Entry point of the ``docvlm`` script."""
    try:
        app()
    except DocVLMError as exc:  # anything a command did not catch itself
        _fail(exc)
