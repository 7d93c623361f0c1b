"""How strongly the value ranker's weights are held to zero (its L2 penalty), measured out of sample.

Usage: python -m bench.ranker_l2 --data ../shared/realdev [--l2 1e-5,1e-4,1e-3] [--folds 5]

For each penalty, models are trained as ``bench.realdata --cv 5`` trains them (grouped folds over SROIE and FUNSD,
words as given and from docvlm's OCR, the generated documents in every fold; ``bench.train_ranker.train``) with that
penalty for the ranker, and each document is read with its fold's models: SROIE receipts with the dataset's own
lines (``dv.extract`` of company, date, address and total, exact match as ``bench.realdata --sets receipts``) and
FUNSD forms with the annotation's words (question -> answer links F1, as ``bench.realdata --sets forms``). About
12 minutes a penalty on 2 cores. The ranker learns from every field of every document; a penalty too weak lets it
learn one vendor's words (in-sample figures far above these), too strong and it cannot weigh the features at all.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import docvlm as dv
    from bench import train_ranker as tr
    from bench.real_fields import Receipt, is_exact
    from docvlm.tasks.extract import extract

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--l2", default=f"{tr.RANKER_L2:g}", help="penalties, comma-separated")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    examples = tr.load(args.data, ["sroie", "funsd"], ["given", "ocr"], None, 0)
    synth = tr.load(args.data, ["invoice", "form"], [], None, 200)
    fold = tr.fold_of(examples, args.folds)
    root = args.data / "sroie"
    receipts = {}  # each receipt read once with the dataset's lines, for every penalty: (its page, its truth)
    for ex in (e for e in examples if e.source == "sroie" and e.id.endswith("/given")):
        stem = ex.id.split("/")[1]
        page = dv.open(next((root / "img").glob(f"{stem}.*")), words={0: tr.sroie_items(root, stem)})[0]
        receipts[ex.id] = (page, json.loads((root / "key" / f"{stem}.json").read_text()))
    fields = tuple(Receipt.model_fields)
    print(f"{'ranker L2':>10s} " + " ".join(f"{f:>8s}" for f in fields) + "   exact   FUNSD links F1", flush=True)
    for l2 in (float(v) for v in args.l2.split(",")):
        start = time.perf_counter()
        hits = dict.fromkeys(fields, 0)
        links = np.zeros(3)
        for k in range(args.folds):
            models = tr.train([e for e in examples if fold[e.group] != k] + synth, 80, k, l2=l2)
            for ex in (e for e in examples if fold[e.group] == k and e.id.endswith("/given")):
                if ex.id in receipts:
                    page, truth = receipts[ex.id]
                    got: dict[str, Any] = extract(None, page, Receipt, ranker=models.ranker).value.model_dump()
                    for f in fields:
                        hits[f] += is_exact(got.get(f), truth[f])
                elif ex.links:
                    links += tr.link_counts(models, ex)[2:]  # links found, read, true
        n = max(1, len(receipts))
        p, r = links[0] / max(1, links[1]), links[0] / max(1, links[2])
        print(f"{l2:10g} " + " ".join(f"{hits[f] / n:8.3f}" for f in fields)
              + f"  {sum(hits.values()) / (len(fields) * n):6.3f}   {2 * p * r / max(1e-9, p + r):.3f}"
              + f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    import sys

    from bench import ranker_l2

    sys.exit(ranker_l2.main())
