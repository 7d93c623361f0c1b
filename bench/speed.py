"""Speed of the default extraction on a CPU, as ratios measured in one run.

Usage: python -m bench.speed --data ../shared/realdev [--limit 20] [--busy-limit 5]
                             [--runtimes transformers,transformers-bf16,onnxruntime,onnxruntime-fp32,llama.cpp]
                             [--json out.json]

Prints, for real SROIE receipts from ``<data>/sroie`` (nothing is copied into the repository):

1. **CPU ratio**: the CPU-seconds of ``dv.extract`` with ``dv.load_model("default")`` (opening, OCR and the
   model) per receipt over the CPU-seconds of opening and OCR alone of the same receipts (goal <= 3x). CPU
   time is this process's plus its finished children's (Tesseract), so threads count in full. The untuned
   default model's ``choice_weight`` is 0 (the learned ranking decides alone), so the same is also timed with
   weight 1.0, where the model scores each field's best values.
2. **Busy ratio**: the wall time of the same extractions on ``--busy-limit`` receipts beside a busy-loop
   process (one core kept busy) over their wall time without it (goal <= 2.5x), with docvlm's default thread
   policy. The quiet time is the mean of a run before and a run after the busy one.
3. **Scoring, fp32 against bf16**: each receipt's OCR segments are the candidates of each field, scored with
   ``Model.score`` after the receipt's text and ``{"<field>": "`` (each candidate closed by ``"``); printed are
   the top-1 accuracy against the truth (text equal, whitespace-normalized), how often bf16 picks what fp32
   picks, the mean |difference| of the scores, and the CPU-seconds of scoring per receipt. This is the
   measurement behind "bf16 where it is as accurate" (the scoring twin's dtype).
4. **Runtimes**: for each runtime of the default model, field F1 on the receipts (``docvlm.eval``'s
   extraction scores), CPU-seconds per receipt, and constrained generation speed (tokens/s of a JSON
   invoice schema on the sample invoice, prompt prefill included, no KV reuse).

The machine's load average at the start and end is printed: on a shared machine the absolute times move,
the ratios much less. Runtimes that are not installed are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

RUNTIMES = ("transformers", "transformers-bf16", "onnxruntime", "onnxruntime-int4", "onnxruntime-fp32", "llama.cpp")


class Invoice(BaseModel):
    """The schema of the tokens/s measurement."""

    vendor: str = Field(max_length=40)
    invoice_number: str = Field(max_length=20)
    date: str = Field(max_length=20)
    total: float = Field(ge=0, le=100_000)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load_runtime(name: str) -> Any:
    """The default model on one runtime (``transformers-bf16``: bfloat16 weights; ``onnxruntime-fp32``/``-int8``:
    those exports)."""
    import docvlm as dv

    if name == "transformers":
        return dv.load_model("default", runtime="transformers", dtype="float32")
    if name == "transformers-bf16":
        return dv.load_model("default", runtime="transformers", dtype="bfloat16")
    if name.startswith("onnxruntime"):
        precision = name.partition("-")[2] or "int8"
        return dv.load_model("default", runtime="onnxruntime", precision=precision)
    if name == "llama.cpp":
        return dv.load_model("default", runtime="llama.cpp")
    raise SystemExit(f"bench.speed: unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")


def installed(name: str) -> bool:
    from docvlm.models.runtimes import llama_cpp_available, onnx_genai_available

    if name.startswith("onnxruntime"):
        return onnx_genai_available()
    if name == "llama.cpp":
        return llama_cpp_available()
    return True


def ocr_cpu(samples: list[Any]) -> list[float]:
    """CPU-seconds of opening each receipt and reading its words (OCR)."""
    import docvlm as dv

    out = []
    for sample in samples:
        start = cpu_seconds()
        with dv.open(sample.document) as doc:
            doc[0].words(ocr="auto")
        out.append(cpu_seconds() - start)
    return out


def extract_all(model: Any, samples: list[Any]) -> tuple[list[float], list[float], dict[str, float]]:
    """(CPU-seconds, wall seconds) per receipt of the default extraction, and the pooled field scores."""
    from docvlm.eval import Dataset
    from docvlm.eval.runner import evaluate

    cpus, walls, results = [], [], []
    for sample in samples:
        start_cpu, start_wall = cpu_seconds(), time.perf_counter()
        report = evaluate(model, Dataset(format="sroie", path="", samples=[sample]), "extract")
        walls.append(time.perf_counter() - start_wall)
        cpus.append(cpu_seconds() - start_cpu)
        results += report.results
    from docvlm.eval.runner import _pool

    return cpus, walls, _pool("extract", results)


def tokens_per_second(model: Any) -> dict[str, float]:
    """Constrained generation of :class:`Invoice` on the sample invoice's text (no KV reuse between tries)."""
    import docvlm as dv

    text = dv.open(dv.samples.invoice_pdf())[0].text()
    prompt = f"Document:\n{text}\n\nExtract the vendor, invoice number, date and total as JSON."
    requests = model.prepare([prompt], Invoice)
    model._complete(requests)  # warm: the constraint's index, first-call costs
    best = None
    for _ in range(2):
        if hasattr(model, "_tokens"):
            model._tokens = []  # a step runtime would otherwise reuse the prompt's KV cache
        start_cpu, start = cpu_seconds(), time.perf_counter()
        raw = model._complete(requests)[0]
        wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        if best is None or wall < best[0]:
            best = (wall, cpu, raw)
    assert best is not None
    wall, cpu, raw = best
    tokenizer = model.tokenizer
    n_out = len(tokenizer(raw, add_special_tokens=False)["input_ids"]) + 1  # + EOS
    chat = [{"role": "user", "content": prompt}]
    n_in = len(tokenizer(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))["input_ids"])
    Invoice.model_validate_json(raw)
    return {"prompt_tokens": n_in, "output_tokens": n_out, "seconds": wall, "cpu_seconds": cpu,
            "tokens_per_s": n_out / wall}


def scoring_fidelity(samples: list[Any], limit_candidates: int = 40) -> dict[str, Any]:
    """Top-1 of each field among the receipt's segments, scored by the default model in fp32 and in bf16."""
    import docvlm as dv
    from docvlm.eval.metrics import normalize_text
    from docvlm.tasks.text import document_segments, group_lines, serialize_lines

    models = {dtype: dv.load_model("default", runtime="transformers", dtype=dtype) for dtype in ("float32", "bfloat16")}
    picks: dict[str, list[str]] = {d: [] for d in models}
    scores: dict[str, list[list[float]]] = {d: [] for d in models}
    cpu = dict.fromkeys(models, 0.0)
    right = dict.fromkeys(models, 0)
    fields = 0
    for sample in samples:
        with dv.open(sample.document) as doc:
            segments = document_segments([doc[0]])
            text = serialize_lines(group_lines(segments), max_chars=3000)
        candidates = list(dict.fromkeys(seg.text for seg in segments))[:limit_candidates]
        if not candidates:
            continue
        for field in sample.fields:
            fields += 1
            prompt = f"Receipt:\n{text}\n\nWhat is the {field.label} of this receipt? Answer in JSON."
            for dtype, model in models.items():
                start = cpu_seconds()
                got = model.score(prompt, [c + '"' for c in candidates], assistant_prefix=f'{{"{field.label}": "')
                cpu[dtype] += cpu_seconds() - start
                best = candidates[max(range(len(got)), key=got.__getitem__)]
                picks[dtype].append(best)
                scores[dtype].append(got)
                right[dtype] += normalize_text(best) == normalize_text(str(field.value))
    diffs = [abs(a - b) for x, y in zip(scores["float32"], scores["bfloat16"], strict=True)
             for a, b in zip(x, y, strict=True)]
    agree = sum(a == b for a, b in zip(picks["float32"], picks["bfloat16"], strict=True))
    n = max(1, len(samples))
    return {"fields": fields, "top1_fp32": right["float32"] / max(1, fields),
            "top1_bf16": right["bfloat16"] / max(1, fields), "agreement": agree / max(1, fields),
            "mean_abs_diff": sum(diffs) / max(1, len(diffs)), "cpu_per_receipt_fp32": cpu["float32"] / n,
            "cpu_per_receipt_bf16": cpu["bfloat16"] / n}


def busy_ratio(model: Any, samples: list[Any]) -> dict[str, float]:
    """Wall time of the extractions beside a busy-loop process over the quiet wall time (mean of before/after)."""
    _, before, _ = extract_all(model, samples)
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let it take its core
        _, busy, _ = extract_all(model, samples)
    finally:
        loop.kill()
        loop.wait()
    time.sleep(1.0)
    _, after, _ = extract_all(model, samples)
    quiet = (sum(before) + sum(after)) / 2
    return {"quiet_s": quiet, "busy_s": sum(busy), "ratio": sum(busy) / quiet,
            "quiet_before_s": sum(before), "quiet_after_s": sum(after)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="a realdev-shaped folder (uses <data>/sroie)")
    ap.add_argument("--limit", type=int, default=20, help="receipts for the CPU ratio and field scores")
    ap.add_argument("--busy-limit", type=int, default=5, help="receipts for the busy-loop ratio")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated: " + ", ".join(RUNTIMES))
    ap.add_argument("--json", type=Path, default=None, help="write every figure here as JSON")
    args = ap.parse_args(argv)
    sroie = args.data / "sroie"
    if not sroie.is_dir():
        print(f"bench.speed: no SROIE folder at {sroie} (give --data ../shared/realdev)", file=sys.stderr)
        return 2
    import docvlm as dv
    from docvlm._threads import available_cpus, threads_for
    from docvlm.eval import load_dataset
    from docvlm.models.default import installed_runtimes

    samples = load_dataset(sroie, "sroie", limit=args.limit).samples
    print(f"data {sroie}  receipts {len(samples)}  cpus {available_cpus()}  load {os.getloadavg()[0]:.2f}  "
          f"threads now {threads_for()}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}  "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    report: dict[str, Any] = {"receipts": len(samples), "load_start": os.getloadavg()[0]}

    # 1. the default model as dv.load_model("default") picks it, against opening + OCR
    start = time.perf_counter()
    model = dv.load_model("default")
    load_s = time.perf_counter() - start
    auto = installed_runtimes()[0]
    ocr = ocr_cpu(samples)
    extract_all(model, samples[:1])  # first-use costs (constraint index, vocabulary) are not per receipt
    cpus, walls, scores = extract_all(model, samples)
    ratio = sum(cpus) / sum(ocr)
    report["default"] = {"runtime": auto, "load_s": load_s, "ocr_cpu_per_receipt": sum(ocr) / len(ocr),
                         "extract_cpu_per_receipt": sum(cpus) / len(cpus),
                         "extract_wall_per_receipt": sum(walls) / len(walls), "cpu_ratio": ratio, **scores}
    print(f"\ndefault model -> runtime {auto} (loaded in {load_s:.1f} s)")
    print(f"  opening + OCR          : {sum(ocr) / len(ocr):6.2f} CPU-s per receipt")
    print(f"  dv.extract (with OCR)  : {sum(cpus) / len(cpus):6.2f} CPU-s per receipt, "
          f"{sum(walls) / len(walls):.2f} s wall")
    print(f"  CPU ratio extract/OCR  : {ratio:6.2f}x  (goal <= 3x)   field F1 {scores.get('f1', float('nan')):.3f}"
          f"  (model weight {model.choice_weight}; F1 in-sample: the shipped ranker was trained on realdev)",
          flush=True)
    if not model.choice_weight:  # the default model's own weight is 0: time it also when its scores count
        saved = model.choice_weight
        model.choice_weight = 1.0
        extract_all(model, samples[:1])
        asked, _, asked_scores = extract_all(model, samples)
        model.choice_weight = saved
        report["default_scoring"] = {"choice_weight": 1.0, "extract_cpu_per_receipt": sum(asked) / len(asked),
                                     "cpu_ratio": sum(asked) / sum(ocr), **asked_scores}
        print(f"  ... the model asked    : {sum(asked) / len(asked):6.2f} CPU-s per receipt, CPU ratio "
              f"{sum(asked) / sum(ocr):.2f}x, field F1 {asked_scores.get('f1', float('nan')):.3f} "
              f"(choice_weight 1.0: it scores each field's best values)", flush=True)

    # 2. beside a busy loop
    if args.busy_limit > 0:
        busy = busy_ratio(model, samples[:args.busy_limit])
        report["busy"] = busy
        print(f"  busy-loop wall ratio   : {busy['ratio']:6.2f}x  (goal <= 2.5x)  quiet {busy['quiet_s']:.1f} s "
              f"(before {busy['quiet_before_s']:.1f}, after {busy['quiet_after_s']:.1f}), busy {busy['busy_s']:.1f} s "
              f"on {min(args.busy_limit, len(samples))} receipts", flush=True)
    del model

    # 3. scoring in fp32 and bf16
    fidelity = scoring_fidelity(samples)
    report["scoring"] = fidelity
    print(f"\nscoring each field's candidates (the receipt's segments), {fidelity['fields']} fields:")
    print(f"  top-1 = truth        : fp32 {fidelity['top1_fp32']:.3f}   bf16 {fidelity['top1_bf16']:.3f}")
    print(f"  bf16 picks as fp32   : {fidelity['agreement']:.3f}   mean |score difference| "
          f"{fidelity['mean_abs_diff']:.3f} nats")
    print(f"  CPU-s per receipt    : fp32 {fidelity['cpu_per_receipt_fp32']:.2f}   "
          f"bf16 {fidelity['cpu_per_receipt_bf16']:.2f}", flush=True)

    # 4. every runtime
    print("\nruntime              load s  field F1  CPU-s/receipt  tok/s (constrained)  prompt+out tokens")
    report["runtimes"] = {}
    for name in [r.strip() for r in args.runtimes.split(",") if r.strip()]:
        if not installed(name):
            print(f"{name:20s} skipped: not installed")
            report["runtimes"][name] = None
            continue
        start = time.perf_counter()
        m = load_runtime(name)
        loaded = time.perf_counter() - start
        speed = tokens_per_second(m)
        extract_all(m, samples[:1])
        cpus, _, scores = extract_all(m, samples)
        row = {"load_s": loaded, "cpu_per_receipt": sum(cpus) / len(cpus), **scores, **speed}
        report["runtimes"][name] = row
        print(f"{name:20s} {loaded:6.1f}  {scores.get('f1', float('nan')):8.3f}  {row['cpu_per_receipt']:13.2f}  "
              f"{speed['tokens_per_s']:19.1f}  {speed['prompt_tokens']}+{speed['output_tokens']}", flush=True)
        del m
    report["load_end"] = os.getloadavg()[0]
    print(f"\nload average: {report['load_start']:.2f} at the start, {report['load_end']:.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
