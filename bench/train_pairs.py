"""Train (and cross-validate) the pair model of ``dv.key_values`` that ships in ``docvlm/data/pairs.npz``.

Usage: python -m bench.train_pairs --data ../shared/realdev [--folds 5] [--limit N] [--out docvlm/data]

The pair model (`docvlm.tasks._pairs`) scores each (key, span) pair of a page with gradient-boosted trees over dense
measures of the pair, among them the key detector's probabilities and the link model's log-odds. Those two linear
models are trained on the same FUNSD forms, so their outputs on a form they were trained on are better than on a
new one: the pair model learns from their outputs *out of fold* (each form's pairs computed with key and link models
trained without its group, `bench.train_ranker`'s grouped folds), as they are on a page they never saw.

Printed (``--folds``): FUNSD question -> answer links (texts without whitespace, as ``bench.realdata --sets forms``
scores them), words as the annotation gives them and from docvlm's OCR, for the link model alone (``dv.key_values(...,
pairs=False)``, the reading before the pair model) and the pair model at several thresholds, each form read with
models trained without its group (the pair model on the other folds' out-of-fold pairs). The value ranker that
`dv.key_values` uses to drop keys that are another key's value is the shipped one in both readings.

``--out`` trains the pair model on every form's out-of-fold pairs and writes ``pairs.npz`` with its recipe. Retrain it
after the key detector or the link model (``bench.train_ranker --out``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Wrong pairs kept for training (a sample: most of a page's pairs are wrong); the model's bias is corrected for it.
NEGATIVE_RATE = 0.2
#: The boosting recipe (`docvlm.tasks._trees.fit_trees`).
TREES = {"trees": 200, "depth": 6, "lr": 0.1, "min_leaf": 40, "l2": 1.0}
THRESHOLDS = (0.1, 0.15, 0.2, 0.3)


def fold_models(examples: list[Any], folds: int, ranker: Any) -> dict[str, Any]:
    """Each FUNSD form's key detector and link model, trained on the forms of the other folds (as
    ``bench.train_ranker.train`` trains them), with the given value ranker."""
    from bench import train_ranker as tr
    from docvlm.tasks._rank import fit_binary

    fold = tr.fold_of(examples, folds)
    out: dict[str, Any] = {}
    for k in range(folds):
        train = [e for e in examples if fold[e.group] != k and e.links]
        rows, labels = tr.key_data(train)
        link_rows, link_labels = tr.link_data(train, tr.LINK_NEGATIVES, k)
        models = tr.Models(ranker, fit_binary(rows, labels), fit_binary(link_rows, link_labels))
        for e in examples:
            if fold[e.group] == k and e.links:
                out[e.id] = models
    return out


def page_pairs(ex: Any, models: Any) -> tuple[list[tuple[int, float]], list[tuple[int, int]], Any, Any]:
    """A form's detected keys, its candidate pairs, their `PAIR_FEATURES` rows and whether each is a true link."""
    from bench.train_ranker import squash
    from docvlm.tasks._pairs import pair_table

    kv = importlib.import_module("docvlm.tasks.key_values")
    with ex.candidates.caching():
        keys, _ = kv.link(ex.candidates, models.keys, models.ranker)
        pairs, table = pair_table(ex.candidates, keys, models.keys, models.links, kv._near, kv.KEY_KINDS)
    truth = {(squash(q), squash(a)) for q, a in ex.links}
    spans = ex.candidates.spans
    labels = np.array([(squash(spans[k].text), squash(spans[v].text)) in truth for k, v in pairs], dtype=bool)
    return keys, pairs, table, labels


def fit_pairs(tables: list[Any], labels: list[Any], seed: int = 0) -> Any:
    """The pair model from pages' pair rows: every true pair and a `NEGATIVE_RATE` sample of the others."""
    from docvlm.tasks._pairs import PAIR_FEATURES
    from docvlm.tasks._trees import fit_trees

    x = np.concatenate(tables)
    y = np.concatenate(labels)
    rng = np.random.default_rng(seed)
    keep = y | (rng.random(len(y)) < NEGATIVE_RATE)
    model = fit_trees(x[keep], y[keep], names=PAIR_FEATURES, **TREES)  # type: ignore[arg-type]
    model.base += float(np.log(NEGATIVE_RATE))  # the wrong pairs were sampled: their odds back to the page's
    return model


def main(argv: list[str] | None = None) -> int:
    from bench import train_ranker as tr
    from bench.funsd_links import f1_line, link_count
    from docvlm.tasks._rank import default_ranker

    kv = importlib.import_module("docvlm.tasks.key_values")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents per realdev set")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="a folder: writes pairs.npz")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    examples = tr.load(args.data, ["sroie", "funsd"], ["given", "ocr"], args.limit, 0)
    fold = tr.fold_of(examples, args.folds)  # bench.realdata's split: SROIE's groups too, so the same folds
    forms = [e for e in examples if e.links]
    models = fold_models(examples, args.folds, default_ranker())
    print(f"{len(forms)} forms; out-of-fold key and link models in {time.perf_counter() - start:.0f} s", flush=True)
    pages = {}
    for n, ex in enumerate(forms):
        pages[ex.id] = page_pairs(ex, models[ex.id])
        if n % 50 == 49:
            print(f"  pairs of {n + 1} forms in {time.perf_counter() - start:.0f} s", flush=True)
    figures: dict[str, Any] = {}
    if args.folds > 1:
        result = {(how, w): np.zeros(3) for how in ("link model", *THRESHOLDS) for w in ("given", "ocr")}
        for k in range(args.folds):
            train = [pages[e.id] for e in forms if fold[e.group] != k]
            pair_model = fit_pairs([p[2] for p in train], [p[3] for p in train], seed=k)
            for ex in (e for e in forms if fold[e.group] == k):
                w = ex.id.rsplit("/", 1)[1]
                keys, pairs, table, _ = pages[ex.id]
                result["link model", w] += link_count(tr, ex, keys, kv.linked_values(ex.candidates, keys, models[ex.id].links))
                probs = pair_model.probabilities(table) if len(table) else np.zeros(0)
                for t in THRESHOLDS:
                    result[t, w] += link_count(tr, ex, *kv.joint_read(ex.candidates, keys, pairs, probs, t))
            print(f"  fold {k + 1}/{args.folds} in {time.perf_counter() - start:.0f} s", flush=True)
        print(f"FUNSD links, {args.folds}-fold models (bench.realdata's split), texts without whitespace:")
        for (how, w), c in result.items():
            name = "link model alone" if how == "link model" else f"pair model >= {how}"
            words = "annotation words" if w == "given" else "docvlm OCR"
            print(f"  {name:20s} {words:17s} {f1_line(c)}")
            p, r = c[0] / max(1, c[1]), c[0] / max(1, c[2])
            figures[f"{name} / {words}"] = round(2 * p * r / max(1e-9, p + r), 4)
    if args.out is not None:
        pair_model = fit_pairs([p[2] for p in pages.values()], [p[3] for p in pages.values()])
        pair_model.info = {"forms": len(forms), "folds": args.folds, "negative_rate": NEGATIVE_RATE, **TREES,
                           "figures": figures, "trained": time.strftime("%Y-%m-%d"),
                           "seconds": round(time.perf_counter() - start, 1)}
        args.out.mkdir(parents=True, exist_ok=True)
        pair_model.save(args.out / "pairs.npz")
        print(f"wrote {args.out / 'pairs.npz'} ({(args.out / 'pairs.npz').stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    from bench import train_pairs

    sys.exit(train_pairs.main())
