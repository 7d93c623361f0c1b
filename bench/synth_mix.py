"""Which generated documents help the ranker on real ones: out-of-fold top-1 on realdev for each mix of synthetic sets.

Usage: python -m bench.synth_mix --data ../shared/realdev [--mixes "invoice,form;invoice-en,form;form"]
                                 [--folds 5] [--synth 200] [--weight 1.0] [--seed 0]

The folds are `bench.realdata --cv`'s (realdev's documents split by vendor / form template, `bench.train_ranker.fold_of`
over the real examples alone, so every mix is tested on the same folds); each fold's value ranker is trained, as the
shipped one is, on the other folds' real documents (SROIE and FUNSD, the dataset's words and docvlm's OCR) plus the
whole of one mix of generated sets (`bench.train_ranker.INVOICE_VARIANTS` names the invoice sets that hold one part
of the generator's variation fixed). It prints the ceiling first (the share of SROIE fields some span spells), then
per mix the share of SROIE fields (per field, per words) and of FUNSD questions whose top-ranked span is the value
(texts compared without whitespace, as `bench.train_ranker` trains and counts them). Only the value ranker is
trained (no key, link or pair model), so a mix costs about 12 minutes, not `bench.realdata --cv`'s hour and more;
the figure to confirm a choice with is that one.
``--weight`` counts each generated field's group that many times (below 1: a random share of them).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from bench import train_ranker as tr
    from docvlm.tasks._rank import fit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--mixes", default="invoice,form;invoice-en,form",
                    help="';'-separated mixes, each a ','-separated list of synthetic sets ('none': real data only)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--synth", type=int, default=200, help="generated documents per synthetic set")
    ap.add_argument("--weight", type=float, default=1.0, help="how many times each generated field's group counts")
    ap.add_argument("--seed", type=int, default=0,
                    help="seeds the sampled wrong spans (run a mix under two seeds to see the figures' spread)")
    args = ap.parse_args(argv)

    real = tr.load(args.data, ["sroie", "funsd"], ["given", "ocr"], None, 0)
    print_ceilings([e for e in real if e.source == "sroie"])
    fold = tr.fold_of(real, args.folds)
    start = time.perf_counter()
    # each document's training groups, made once (their feature rows are most of a fold's cost)
    real_groups = {e.id: tr.groups_of([e], 80, args.seed * 100_000 + n) for n, e in enumerate(real)}
    print(f"  real documents' groups in {time.perf_counter() - start:.0f} s", flush=True)
    for mix in args.mixes.split(";"):
        sets = [s for s in mix.split(",") if s and s != "none"]
        synth = tr.load(args.data, sets, [], None, args.synth) if sets else []
        start = time.perf_counter()
        synth_groups = tr.groups_of(synth, 80, args.seed)
        results: dict[str, list[bool]] = defaultdict(list)
        for k in range(args.folds):
            groups = [g for e in real if fold[e.group] != k for g in real_groups[e.id]]
            groups += weighted(synth_groups, args.weight, args.seed * 100 + k)
            ranker = fit(groups, l2=tr.RANKER_L2, seed=args.seed)
            test = [e for e in real if fold[e.group] == k]
            for e in test:  # each field by the words it was read from: the dataset's and docvlm's OCR apart
                for name, oks in tr.top1(ranker, [e]).items():
                    results[f"{name}/{e.id.rsplit('/', 1)[1]}"] += oks
        print(f"{mix or 'none'} ({time.perf_counter() - start:.0f} s):", flush=True)
        print("  " + "  ".join(f"{n} {np.mean(v):.3f}" for n, v in sorted(results.items())), flush=True)
        for source in ("sroie", "funsd"):
            for words in ("given", "ocr"):
                oks = [ok for n, v in results.items() if n.startswith(source) and n.endswith("/" + words) for ok in v]
                print(f"  {source} {words}: {np.mean(oks):.3f} of {len(oks)} fields", flush=True)
    return 0


def print_ceilings(examples: list[Any]) -> None:
    """Per field and words, the share of SROIE fields that some candidate span spells: compared without whitespace
    (what the top-1 figures count as right) and with whitespace collapsed (what ``bench.realdata``'s exact match
    needs). The gap is the annotation's spacing against the printed lines' ("NO.53, JALAN" / "NO. 53, JALAN")."""
    from bench import train_ranker as tr
    from bench.real_fields import collapse

    counts: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)
    for e in examples:
        for spec, truth in e.fields:
            texts = [s.text for s in e.candidates.spans]
            counts[(e.id.rsplit("/", 1)[1], spec.name)].append(
                (any(tr.squash(t) == tr.squash(truth) for t in texts), any(collapse(t) == collapse(truth) for t in texts)))
    print("sroie fields some span spells (without whitespace / whitespace collapsed):", flush=True)
    for (words, name), hits in sorted(counts.items()):
        print(f"  {words:5s} {name:8s} {np.mean([a for a, _ in hits]):.3f} / {np.mean([b for _, b in hits]):.3f}",
              flush=True)


def weighted(groups: list[Any], weight: float, seed: int) -> list[Any]:
    """``groups`` counted ``weight`` times: whole copies, then a random share for the fraction."""
    whole, part = int(weight), weight - int(weight)
    rng = np.random.default_rng(seed)
    picked = [g for g in groups if rng.random() < part] if part else []
    return groups * whole + picked


if __name__ == "__main__":
    from bench import synth_mix

    sys.exit(synth_mix.main())
