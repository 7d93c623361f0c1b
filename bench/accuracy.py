"""Extraction accuracy on generated documents, born-digital and scanned (OCR), with per-field evidence IoU.

Usage: python -m bench.accuracy [--n 50] [--kinds invoice,form] [--model default|layout] [--max-choices 5|all]
                                [--seed 0] [--no-scan] [--json out.json]

``--model layout`` is the layout-only baseline (``dv.extract(None, ...)``: the learned ranker's best value for each
field), so the difference to ``--model default`` is what the language model adds; ``--max-choices all`` offers the
model every printed value of the right type.

These are generated documents (:mod:`docvlm.synth`): the ranker was trained on generated documents of the same
generator with other seeds (1000 and up), so use seeds below 1000 here. Real-document figures come from
``python -m bench.realdata``.

For each generated document (seeded, exact ground truth from the generator) the schema is extracted with
``docvlm.tasks.extract.extract`` and every field is scored:

- value accuracy: the extracted value equals the truth (numbers within 0.005, strings exactly);
- evidence IoU >= 0.5: the field's evidence box overlaps the truth box (the printed value's words);
- scanned: the same documents through the scan simulator (slight rotation, noise, blur) and OCR.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

from pydantic import BaseModel


def same(value: Any, truth: Any) -> bool:
    if isinstance(truth, float) or isinstance(value, float):
        try:
            return abs(float(value) - float(truth)) < 0.005
        except (TypeError, ValueError):
            return False
    return str(value).strip() == str(truth).strip()


def first_choice_model() -> Any:
    """The layout-only baseline: a model that answers each field with the first value offered."""
    import typing

    from docvlm.models import FunctionInfo, FunctionModel, Message

    def first(messages: list[Message], info: FunctionInfo) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for name, f in info.output_type.model_fields.items():
            args = [a for a in typing.get_args(f.annotation) if a is not type(None)]
            options = typing.get_args(args[0]) if args and typing.get_origin(args[0]) is typing.Literal else ()
            answer[f.alias or name] = options[0] if options else None
        return answer

    return FunctionModel(first)


def score_document(model: Any, doc: Any, truth_fields: dict[str, Any], schema: type[BaseModel],
                   max_choices: int | None = 5) -> dict[str, Any]:
    from docvlm.tasks.extract import extract

    start = time.perf_counter()
    try:
        result = extract(model, doc, schema, max_choices=max_choices)
        values = result.value.model_dump()
        evidence = result.evidence
        error = None
    except Exception as exc:  # a failed document counts every field wrong, and is reported
        values, evidence, error = {}, {}, f"{type(exc).__name__}: {exc}"
    fields = {}
    for name, truth in truth_fields.items():
        if name not in schema.model_fields:
            continue
        ev = evidence.get(name)
        iou = ev.box.iou(truth.box) if ev is not None and ev.box is not None and truth.box is not None else 0.0
        fields[name] = {"ok": same(values.get(name), truth.value), "iou": iou,
                        "got": values.get(name), "want": truth.value}
    return {"fields": fields, "seconds": time.perf_counter() - start, "error": error}


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    scored = [f for r in rows for f in r["fields"].values()]
    n = max(1, len(scored))
    return {
        "documents": len(rows),
        "fields": len(scored),
        "field_accuracy": sum(f["ok"] for f in scored) / n,
        "evidence_iou50": sum(f["iou"] >= 0.5 for f in scored) / n,
        "seconds_per_document": sum(r["seconds"] for r in rows) / max(1, len(rows)),
        "failed_documents": sum(r["error"] is not None for r in rows),
    }


def run(n: int, kinds: list[str], model_spec: str, scan: bool, seed: int = 0,
        max_choices: int | None = 5) -> dict[str, Any]:
    import docvlm as dv
    from docvlm.synth import FormFields, InvoiceFields, generate_dataset
    from docvlm.synth.scan import scan as simulate_scan

    schemas: dict[str, type[BaseModel]] = {"invoice": InvoiceFields, "form": FormFields}
    model = None if model_spec == "layout" else first_choice_model() if model_spec == "first" \
        else dv.load_model(model_spec)
    report: dict[str, Any] = {"model": model_spec, "n": n, "max_choices": max_choices}
    for kind in kinds:
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        per_field: dict[str, list[bool]] = defaultdict(list)
        for synthetic in generate_dataset(kind, n, seed=seed):  # type: ignore[arg-type]
            row = score_document(model, synthetic.open(), synthetic.fields, schemas[kind], max_choices)
            rows["born-digital"].append(row)
            for name, f in row["fields"].items():
                per_field[name].append(f["ok"])
            if scan:
                scanned = simulate_scan(synthetic, dpi=200, seed=synthetic.seed)
                rows["scanned"].append(score_document(model, dv.open(scanned.image_bytes), scanned.fields, schemas[kind],
                                                      max_choices))
        report[kind] = {path: summarize(r) for path, r in rows.items()}
        report[kind]["per_field_accuracy"] = {k: sum(v) / len(v) for k, v in per_field.items()}
        report[kind]["examples_wrong"] = [
            {"field": name, "got": f["got"], "want": f["want"]}
            for r in rows["born-digital"] for name, f in r["fields"].items() if not f["ok"]
        ][:10]
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--kinds", default="invoice,form")
    ap.add_argument("--model", default="default")
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-choices", default="5", help="values offered per field, or 'all'")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    max_choices = None if args.max_choices == "all" else int(args.max_choices)
    report = run(args.n, args.kinds.split(","), args.model, not args.no_scan, args.seed, max_choices)
    print(f"model {args.model}, max choices {args.max_choices}, {args.n} documents per kind, seed {args.seed}")
    for kind in args.kinds.split(","):
        for path in ("born-digital", "scanned"):
            if path in report[kind]:
                s = report[kind][path]
                print(f"{kind:8s} {path:13s} docs {s['documents']:3d}  field accuracy {s['field_accuracy']:.3f}  "
                      f"evidence IoU>=0.5 {s['evidence_iou50']:.3f}  {s['seconds_per_document']:.1f} s/doc  "
                      f"failed {s['failed_documents']}")
        print(f"{kind:8s} per field: " + ", ".join(f"{k} {v:.2f}" for k, v in report[kind]["per_field_accuracy"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
