"""Batch extraction on Ray Data: the records of `docvlm.batch.run_batch`, on one machine or a cluster.

The pipeline (`build_dataset`) is plain Ray Data::

    read_binary_files(paths)                      file bytes and paths, read by Ray tasks
      -> map_batches(_plan)                       hash each file; with per="page", open it and split its pages
                                                  into rows of a few pages; unreadable files become error rows
      -> map_batches(_Extractor, concurrency=N)   an actor pool: each actor loads the model once, then opens,
                                                  renders, reads the words and extracts (docvlm.batch's code)
      -> rows {"source", "sha256", "page", "status", "record"}

and `run` writes it: a ``.jsonl`` output is appended record by record on the driver, with the same
resume and de-duplication rules as ``docvlm batch`` (a re-run skips the work already in the file); any other
output is a folder of Parquet files (``Dataset.write_parquet``), one row per record, whose ``record`` column
is the JSON line.

Rendering runs in the actors, next to the model, because extraction needs the page objects (words, images
and transforms) that a rendered row cannot carry; the actors are the pool that scales. With a served model
(``openai:<model>@http://vllm:8000/v1``) the actors are CPU actors and the GPU work is the server's; with a
local GPU model give ``num_gpus=1`` so each actor holds one GPU.

On a cluster, call ``ray.init(address="auto")`` (or set ``RAY_ADDRESS``) before `run`, and give paths
every node can read (a shared file system, or ``s3://`` / ``gs://`` URIs, which are passed to Ray as they are).
Requires the extra ``docvlm[ray]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from docvlm.batch import (
    BatchSummary,
    Output,
    error_record,
    expand_inputs,
    page_count,
    process_document,
    record_key,
    record_line,
    schema_name,
)
from docvlm.errors import MissingDependencyError, UsageError

__all__ = ["build_dataset", "run"]

#: With ``per="page"``, pages of one document per row given to an actor.
PAGES_PER_ROW = 8


def _ray_data() -> Any:
    try:
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", purpose="batch extraction on Ray Data") from exc
    return ray.data


def _pyarrow() -> Any:
    import importlib

    return importlib.import_module("pyarrow")  # comes with ray[data]


def _schema_class(schema: str | type[BaseModel]) -> type[BaseModel]:
    from docvlm.schemas import load_schema

    if isinstance(schema, str):
        cls: type[BaseModel] = load_schema(schema)
        return cls
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema
    raise UsageError(f"schema must be a pydantic model class or 'module:Class', got {schema!r}")


def _is_uri(text: str) -> bool:
    return "://" in text


def _paths(inputs: Sequence[str | Path]) -> tuple[list[str], dict[str, str]]:
    """(paths for Ray, Ray's path -> the path as the records show it)."""
    paths: list[str] = []
    shown: dict[str, str] = {}
    uris = [str(i) for i in inputs if _is_uri(str(i))]
    local = [i for i in inputs if not _is_uri(str(i))]
    for f in expand_inputs(local) if local else []:
        absolute = str(f.resolve())
        paths.append(absolute)
        shown[absolute] = str(f)
    paths += uris
    return paths, shown


def _table(rows: list[dict[str, Any]]) -> Any:
    pa = _pyarrow()
    schema = pa.schema([("source", pa.string()), ("sha256", pa.string()), ("page", pa.int64()),
                        ("status", pa.string()), ("record", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def _plan(batch: Any, *, base: dict[str, Any], per: str, shown: dict[str, str],
          done: frozenset[tuple[str, int | None]]) -> Any:
    """Hash the files; with ``per="page"`` split each into rows of pages. Rows carry the bytes on."""
    import hashlib

    pa = _pyarrow()

    out: dict[str, list[Any]] = {"source": [], "sha256": [], "pages": [], "data": [], "record": []}

    def add(source: str, sha: str, pages: list[int] | None, data: bytes | None, record: str | None) -> None:
        out["source"].append(source)
        out["sha256"].append(sha)
        out["pages"].append(pages)
        out["data"].append(data)
        out["record"].append(record)

    for path, data in zip(batch.column("path").to_pylist(), batch.column("bytes").to_pylist(), strict=True):
        source = shown.get(path, shown.get("/" + path, path))
        sha = hashlib.sha256(data).hexdigest()
        if (sha, None) in done:  # done: the document (per="document"), or the file could not be opened
            add(source, sha, None, None, "")
            continue
        if per == "document":
            add(source, sha, None, data, None)
            continue
        try:
            n = page_count(source, data)
        except Exception as exc:
            rec = error_record({"source": source, "sha256": sha, **base}, exc, per=per)
            add(source, sha, None, None, record_line(rec))
            continue
        left = [i for i in range(n) if (sha, i) not in done]
        if len(left) < n:
            add(source, sha, [i for i in range(n) if (sha, i) in done], None, "")
        for k in range(0, len(left), PAGES_PER_ROW):
            add(source, sha, left[k:k + PAGES_PER_ROW], data, None)
    return pa.table({
        "source": pa.array(out["source"], pa.string()),
        "sha256": pa.array(out["sha256"], pa.string()),
        "pages": pa.array(out["pages"], pa.list_(pa.int64())),
        "data": pa.array(out["data"], pa.binary()),
        "record": pa.array(out["record"], pa.string()),
    })


class _Extractor:
    """A Ray actor: loads the model once and turns rows of documents (or pages) into records."""

    def __init__(self, model: str, schema: str | type[BaseModel], base: dict[str, Any], per: str) -> None:
        from docvlm.models import load_model

        self.model = load_model(model)
        self.schema = _schema_class(schema)
        self.base = base
        self.per = per

    def __call__(self, batch: Any) -> Any:
        rows: list[dict[str, Any]] = []
        for row in batch.to_pylist():
            if row["record"] == "":  # work already in the output
                rows += [{"source": row["source"], "sha256": row["sha256"], "page": page, "status": "skipped",
                          "record": ""} for page in row["pages"] or [None]]
                continue
            if row["record"] is not None:  # an error found while planning
                records = [json.loads(row["record"])]
            else:
                base = {"source": row["source"], "sha256": row["sha256"], **self.base}
                records = process_document(self.model, self.schema, row["source"], base, per=self.per,
                                           pages=row["pages"], data=row["data"])
            rows += [{"source": r["source"], "sha256": r["sha256"], "page": r.get("page"), "status": r["status"],
                      "record": record_line(r)} for r in records]
        return _table(rows)


def build_dataset(
    inputs: Sequence[str | Path],
    *,
    schema: str | type[BaseModel],
    model: str = "default",
    task: Literal["extract"] = "extract",
    per: Literal["document", "page"] = "document",
    concurrency: int = 2,
    batch_size: int = 4,
    num_cpus: float = 1,
    num_gpus: float = 0,
    skip: frozenset[tuple[str, int | None]] = frozenset(),
) -> Any:
    """The Ray Data pipeline of a batch job, not yet run (Ray Data is lazy).

    Args:
        inputs: files, folders and globs (expanded here, as by ``docvlm batch``), or URIs (``s3://...``)
            given to Ray as they are.
        schema: a pydantic model class or ``"module:Class"`` / ``"path/to/file.py:Class"``.
        model: a model spec each actor loads once (``"openai:<model>@<url>"`` for a served model).
        task: ``"extract"``.
        per: ``"document"`` or ``"page"`` records.
        concurrency: actors in the model pool.
        batch_size: rows given to an actor at once.
        num_cpus: CPUs reserved per actor. Leave CPUs for Ray's read tasks: on a 2-CPU machine,
            ``concurrency=2`` needs ``num_cpus=0.5`` (two 1-CPU actors would hold both CPUs and the reads
            could never run).
        num_gpus: GPUs reserved per actor (1 for a local GPU model).
        skip: ``(sha256, page)`` pairs already done (``page`` is ``None`` with ``per="document"``).

    Returns:
        A ``ray.data.Dataset`` of rows ``{"source", "sha256", "page", "status", "record"}``, ``record`` being the JSON line
        of `docvlm.batch.run_batch`; work in ``skip`` gives rows with status ``"skipped"`` and no record.

    Raises:
        UsageError: bad arguments, or inputs that match nothing.
        MissingDependencyError: Ray Data is not installed.
    """
    rd = _ray_data()
    if task != "extract":
        raise UsageError(f"unknown batch task {task!r}", hint="use extract")
    if per not in ("document", "page"):
        raise UsageError(f"per must be 'document' or 'page', got {per!r}")
    if concurrency < 1 or batch_size < 1:
        raise UsageError("concurrency and batch_size must be >= 1")
    if not isinstance(model, str):
        raise UsageError("a batch model is a spec string (each actor loads it)")
    base = {"task": task, "model": model, "schema": schema_name(_schema_class(schema))}
    paths, shown = _paths(inputs)
    if not paths:
        raise UsageError("no documents to process")
    # about one block per actor batch, so that every actor gets work (Ray would make one block of few files)
    ds = rd.read_binary_files(paths, include_paths=True, override_num_blocks=-(-len(paths) // batch_size))
    ds = ds.map_batches(_plan, batch_format="pyarrow", batch_size=16,
                        fn_kwargs={"base": base, "per": per, "shown": shown, "done": skip})
    return ds.map_batches(_Extractor, batch_format="pyarrow", batch_size=batch_size, concurrency=concurrency,
                          num_cpus=num_cpus, num_gpus=num_gpus,
                          fn_constructor_kwargs={"model": model, "schema": schema, "base": base, "per": per})


def run(
    inputs: Sequence[str | Path],
    *,
    schema: str | type[BaseModel],
    output: str | Path,
    model: str = "default",
    per: Literal["document", "page"] = "document",
    concurrency: int = 2,
    batch_size: int = 4,
    num_cpus: float = 1,
    num_gpus: float = 0,
) -> BatchSummary:
    """Run a batch job on Ray (the cluster ``ray.init`` connected to; a local one if none).

    A ``.jsonl`` / ``.json`` output gets the records of ``docvlm batch``, appended atomically by the driver as
    they come, resumable (work already in the file is skipped) and one per document content. Any other
    output is a folder of Parquet files written by Ray (no resume: write to a new folder).

    Args:
        inputs, schema, model, per, concurrency, batch_size, num_cpus, num_gpus: as for `build_dataset`.
        output: the JSON-lines file or the Parquet folder.

    Returns:
        Counts of records written ok / with an error, and of work skipped.
    """
    import time

    start = time.perf_counter()
    out_path = Path(output)
    summary = BatchSummary(output=out_path)
    options: dict[str, Any] = {"schema": schema, "model": model, "per": per, "concurrency": concurrency,
                               "batch_size": batch_size, "num_cpus": num_cpus, "num_gpus": num_gpus}
    if out_path.suffix.lower() not in (".jsonl", ".json"):
        ds = build_dataset(inputs, **options)
        ds = ds.materialize()
        ds.write_parquet(str(out_path))
        counts = {row["status"]: row["count()"] for row in ds.groupby("status").count().take_all()}
        summary.done, summary.failed = counts.get("ok", 0), counts.get("error", 0)
        summary.seconds = time.perf_counter() - start
        return summary
    out = Output(out_path)
    try:
        base = {"task": "extract", "model": model, "schema": schema_name(_schema_class(schema))}
        done_keys = out.recover()
        wanted = (base["task"], base["model"], base["schema"])
        skip = frozenset((k[0], k[4]) for k in done_keys if (k[1], k[2], k[3]) == wanted)
        written: set[tuple[Any, ...]] = set()
        for row in build_dataset(inputs, skip=skip, **options).iter_rows():
            if row["status"] == "skipped":
                summary.skipped += 1
                continue
            record = json.loads(row["record"])
            key = record_key(record)
            if key in written or key in done_keys:  # a file with the content of another one
                summary.skipped += 1
                continue
            written.add(key)
            out.append(record)
            if record["status"] == "ok":
                summary.done += 1
            else:
                summary.failed += 1
    finally:
        out.close()
    summary.seconds = time.perf_counter() - start
    return summary
