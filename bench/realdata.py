"""docvlm on real documents with human ground truth, beside the peers measured in the same run.

Usage: python -m bench.realdata --data ../shared/realdev [--sets receipts,forms,questions,ocr,tables,table-images]
                                [--limit N] [--cv 5] [--model default] [--json out.json]

``--data`` is a folder laid out as ``realdev`` is (``sroie/``, ``funsd/train/``, ``icdar2013-eu/``,
``pubtabnet-examples/``, ``tables-camelot/``, and where there are real invoices ``invoices/`` or
``invoice2data/``: each PDF beside invoice2data's expected JSON of the same stem); the same command scores the held-out set when pointed at it.
Nothing is copied into the repository. Each set prints docvlm's figures, the baselines and peers measured in
the same run, and seconds per page.

The sets live in two modules: `bench.real_fields` (receipts, forms, questions: fields, key-value links,
answers; ocr: engines against SROIE's line truth) and `bench.real_tables` (ICDAR-2013 PDFs, table images,
camelot's expected tables).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SETS = ("receipts", "forms", "questions", "invoices", "ocr", "tables", "table-images")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="a realdev-shaped folder")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents per set")
    ap.add_argument("--model", default="default", help="model spec for the model rows (default: 'default')")
    ap.add_argument("--cv", type=int, default=0,
                    help="receipts/forms/questions: read each document with ranker and key models trained (K-fold, "
                         "grouped) without it; use on realdev, which the shipped models were trained on")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here as JSON")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench.realdata: {args.data} is not a folder (give --data ../shared/realdev)", file=sys.stderr)
        return 2
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SETS]
    if unknown:
        print(f"bench.realdata: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}", file=sys.stderr)
        return 2
    print(f"data {args.data}  cpus {len(os.sched_getaffinity(0))}  load {os.getloadavg()[0]:.2f}  "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    report: dict[str, Any] = {}
    for name in wanted:
        start = time.perf_counter()
        if name in ("tables", "table-images"):
            from bench import real_tables

            report[name] = real_tables.run(name, args.data, limit=args.limit, model_spec=args.model)
        else:
            from bench import real_fields

            report[name] = real_fields.run(name, args.data, limit=args.limit, model_spec=args.model, cv=args.cv)
        print(f"  ({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
