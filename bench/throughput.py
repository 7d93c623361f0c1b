"""Documents/s of ``dv.batch`` against a naive sequential loop, same documents, same model, same run.

Usage: python -m bench.throughput [--n 50] [--workers 2] [--real] [--repeat 1]

The naive loop is what a user writes first: load the model, then for each file ``dv.open`` + ``dv.extract``
and one JSON line. ``dv.batch`` (``run_batch``) does the same work in worker processes, resumable. Both
start from nothing: the batch's time includes starting its workers (each imports docvlm and loads the model),
the loop's includes loading its model. A third figure leaves that start-up out: a batch of 2 documents is
timed too, and the steady rate is ``(n - 2) / (t_n - t_2)``.

``TestModel`` (the default) measures the pipeline overhead: opening, rendering, words, candidates, records.
``--real`` uses the offline default model (SmolLM2-135M on CPU; give a small ``--n``).
Goal: >= 1.8x for the pipeline on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SCHEMA = "docvlm.synth:InvoiceFields"


def make_docs(folder: Path, n: int) -> list[Path]:
    from docvlm.synth import generate_dataset

    paths = []
    for i, doc in enumerate(generate_dataset("invoice", n, 42)):
        p = folder / f"invoice-{i:03d}.pdf"
        p.write_bytes(doc.pdf)
        paths.append(p)
    return paths


def naive(paths: list[Path], model_spec: str, out: Path) -> float:
    import docvlm as dv
    from docvlm.cli import load_schema

    start = time.perf_counter()
    model = dv.load_model(model_spec)
    schema = load_schema(SCHEMA)
    with out.open("w") as fh:
        for p in paths:
            with dv.open(p) as doc:
                try:
                    result = dv.extract(model, doc, schema)
                    line = {"source": str(p), "value": result.value.model_dump(mode="json")}
                except dv.DocVLMError as exc:
                    line = {"source": str(p), "error": str(exc)}
            fh.write(json.dumps(line) + "\n")
    return time.perf_counter() - start


def batched(paths: list[Path], model_spec: str, out: Path, workers: int) -> float:
    from docvlm.batch import run_batch

    out.unlink(missing_ok=True)
    start = time.perf_counter()
    summary = run_batch(paths, schema=SCHEMA, model=model_spec, output=out, workers=workers)
    elapsed = time.perf_counter() - start
    assert summary.written == len(paths), summary
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real", action="store_true", help="the offline default model instead of TestModel")
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs of each")
    args = parser.parse_args()
    spec = "default" if args.real else "test"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        paths = make_docs(tmp, args.n)
        t_naive = min(naive(paths, spec, tmp / "naive.jsonl") for _ in range(args.repeat))
        t_batch = min(batched(paths, spec, tmp / "batch.jsonl", args.workers) for _ in range(args.repeat))
        t_two = min(batched(paths[:2], spec, tmp / "two.jsonl", args.workers) for _ in range(args.repeat))
    n = args.n
    naive_rate, batch_rate = n / t_naive, n / t_batch
    steady = (n - 2) / (t_batch - t_two) if t_batch > t_two else float("nan")
    print(f"model {spec}, {n} documents, {args.workers} workers")
    print(f"naive loop:           {t_naive:7.2f} s  {naive_rate:6.2f} docs/s  1.00x")
    print(f"dv.batch:             {t_batch:7.2f} s  {batch_rate:6.2f} docs/s  {batch_rate / naive_rate:.2f}x")
    print(f"dv.batch, 2 docs:     {t_two:7.2f} s  (start-up: workers import docvlm and load the model)")
    print(f"dv.batch, steady:              {steady:6.2f} docs/s  {steady / naive_rate:.2f}x")


if __name__ == "__main__":
    main()
