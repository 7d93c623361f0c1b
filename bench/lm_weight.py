"""How much the language model's choice should count beside the learned ranking (``extract.LM_WEIGHT``).

Usage: python -m bench.lm_weight --data ../shared/realdev [--limit N] [--folds 5] [--model default] [--sets sroie]

For each realdev document, the ranker trained without the document's group (grouped folds, as
``bench.train_ranker``) offers each field's best 5 values; the model scores each as the answer to the field's
question (``dv.extract``'s own prompt, `docvlm.tasks.extract.field_prompt`), and the value chosen is the best of
``ranker score + weight x (log-probability - the best log-probability)``. Printed: the share of fields right for
each weight, 0 being the ranking alone. This is the measurement behind ``LM_WEIGHT``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


def main(argv: list[str] | None = None) -> int:
    import docvlm as dv
    from bench import train_ranker as tr
    from docvlm.tasks._context import text_near
    from docvlm.tasks.extract import field_prompt

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sets", default="sroie")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model", default="default")
    ap.add_argument("--choices", type=int, default=5)
    args = ap.parse_args(argv)
    examples = tr.load(args.data, args.sets.split(","), ["given"], args.limit, 0)
    synth = tr.load(args.data, ["invoice", "form"], [], None, 100)
    fold = tr.fold_of(examples, args.folds)
    model = dv.load_model(args.model)
    right: dict[tuple[str, float], list[bool]] = defaultdict(list)
    per_field: dict[tuple[str, float, str], list[bool]] = defaultdict(list)
    seconds = 0.0
    for k in range(args.folds):
        ranker = tr.train([e for e in examples if fold[e.group] != k] + synth, 80, k).ranker
        for ex in (e for e in examples if fold[e.group] == k):
            lines = ex.candidates.contexts[0].lines if ex.candidates.contexts else []
            offers = []
            for spec, truth in ex.fields:
                if truth is None:
                    continue
                scores = ranker.scores(ex.candidates.rows(spec))
                texts: dict[str, float] = {}
                for i in np.argsort(-scores):
                    texts.setdefault(ex.candidates.spans[i].text, float(scores[i]))
                    if len(texts) >= args.choices:
                        break
                offers.append((spec, truth, texts, [ex.candidates.spans[i].segment.id for i in np.argsort(-scores)[:20]]))
            text = text_near(lines, [sid for *_, ids in offers for sid in ids[:args.choices]], max_chars=6000)
            for spec, truth, texts, _ in offers:
                start = time.process_time()
                lm = model.score(field_prompt(text, spec.name.replace("_", " ")), list(texts)) if len(texts) > 1 \
                    else [0.0] * len(texts)
                seconds += time.process_time() - start
                for norm in ("sum", "per char"):
                    vals = lm if norm == "sum" else [v / max(1, len(t)) for v, t in zip(lm, texts, strict=True)]
                    top = max(vals)
                    for w in WEIGHTS:
                        best = max(zip(texts.items(), vals, strict=True), key=lambda t: t[0][1] + w * (t[1] - top))[0][0]
                        ok = tr.matches(spec, best, truth)
                        right[(norm, w)].append(ok)
                        per_field[(norm, w, spec.name)].append(ok)
        print(f"  fold {k + 1}/{args.folds}", flush=True)
    n = len(right[("sum", 0.0)])
    print(f"{n} fields of {len(examples)} documents ({args.sets}), {args.choices} values offered, "
          f"model {args.model}: {seconds / max(1, n):.2f} CPU s per field scored")
    fields = sorted({f for *_, f in per_field})
    print("  log-probability   weight  right   " + "  ".join(f"{f:>8s}" for f in fields))
    for norm in ("sum", "per char"):
        for w in WEIGHTS:
            acc = sum(right[(norm, w)]) / max(1, n)
            print(f"  {norm:16s} {w:6.2f}  {acc:.3f}   " + "  ".join(
                f"{sum(per_field[(norm, w, f)]) / max(1, len(per_field[(norm, w, f)])):8.3f}" for f in fields))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
