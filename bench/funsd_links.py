"""Where FUNSD's question -> answer links are lost: the key detector or the link model.

Usage: python -m bench.funsd_links --data ../shared/realdev [--limit N] [--folds 5]

The models are trained as ``bench.realdata --cv 5`` trains them (grouped folds over SROIE and FUNSD, the generated
documents in every fold; ``bench.train_ranker.train``), and each FUNSD form is read with its fold's models, words as
the annotation gives them and from docvlm's OCR. Printed: links precision, recall and F1 (texts without whitespace,
as ``bench.realdata --sets forms``) for

- ``detected keys``: `dv.key_values(..., pairs=False)`'s reading (the key detector over `KEY_THRESHOLD`, then the
  link model; the pair model that reads on top of both is measured by ``bench.train_pairs``);
- ``without key features``: the key detector trained on the spans' own features alone, without `key_features`
  (what is right of a span and the column under it);
- ``perfect keys``: the annotation's questions as the keys (each spelled by a key-shaped span), the link model
  reading their values: the ceiling of a better key detector with this link model;

and, with perfect keys, why each true link was not read (`miss_reason`): its question or its answer spelled by no
span, the answer outside the spans a key's value is looked for in (`_near`), the answer under the link threshold
(the key read with no value, or with another), or its words given to another key's value.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np


def f1_line(c: np.ndarray[Any, Any]) -> str:
    p, r = c[0] / max(1, c[1]), c[0] / max(1, c[2])
    return f"precision {p:.3f}  recall {r:.3f}  F1 {2 * p * r / max(1e-9, p + r):.3f}"


def main(argv: list[str] | None = None) -> int:
    from bench import train_ranker as tr
    from docvlm.tasks import _rank

    kv = importlib.import_module("docvlm.tasks.key_values")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="at most this many documents per realdev set")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    examples = tr.load(args.data, ["sroie", "funsd"], ["given", "ocr"], args.limit, 0)
    synth = tr.load(args.data, ["invoice", "form"], [], None, 200)
    fold = tr.fold_of(examples, args.folds)
    sq = tr.squash
    counts = {(how, w): np.zeros(3) for how in ("detected keys", "without key features", "perfect keys")
              for w in ("given", "ocr")}
    plain = _rank.key_rows
    reasons: dict[str, Counter[str]] = {"given": Counter(), "ocr": Counter()}
    for k in range(args.folds):
        start = time.perf_counter()
        train = [e for e in examples if fold[e.group] != k] + synth
        models = tr.train(train, 80, k)
        bare = _rank.fit_binary(*tr.key_data(train, _own_rows))  # without key_features, trained and read alike
        readers = {"detected keys": (models.keys, plain), "without key features": (bare, _own_rows)}
        try:
            for ex in (e for e in examples if fold[e.group] == k and e.links):
                w = ex.id.rsplit("/", 1)[1]
                for how, (key_model, key_rows) in readers.items():
                    kv.key_rows = key_rows  # what `link` reads keys with
                    keys, _ = kv.link(ex.candidates, key_model, models.ranker)
                    counts[how, w] += link_count(tr, ex, keys, kv.linked_values(ex.candidates, keys, models.links))
                want = {sq(q) for q in ex.keys}
                keys = []
                taken: set[tuple[int, int]] = set()
                for i, s in enumerate(ex.candidates.spans):
                    if s.kind in kv.KEY_KINDS and sq(s.text) in want and not s.words & taken:
                        keys.append((i, 1.0))
                        taken |= s.words
                values = kv.linked_values(ex.candidates, keys, models.links)
                counts["perfect keys", w] += link_count(tr, ex, keys, values)
                reasons[w] += Counter(miss_reason(kv, tr, ex, keys, values, models.links).values())
        finally:
            kv.key_rows = plain
        print(f"  fold {k + 1}/{args.folds} in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"FUNSD links, {args.folds}-fold models (bench.realdata's split), texts without whitespace:")
    for (how, w), c in counts.items():
        print(f"  {how:22s} {'annotation words' if w == 'given' else 'docvlm OCR':17s} {f1_line(c)}")
    print("True links with perfect keys, by what became of them (annotation words / docvlm OCR):")
    for reason in ("read", *MISSES):
        print(f"  {reason:48s} {reasons['given'][reason]:6d} {reasons['ocr'][reason]:6d}")
    return 0


#: Why a true link is not read with perfect keys (`miss_reason`), in the order they are checked.
MISSES = ("question spelled by no key-shaped span", "answer spelled by no span", "answer not near its question",
          "answer inside another key", "under the threshold, the key read empty",
          "under the threshold, the key read another value", "over the threshold, its words given to another")


def miss_reason(kv: Any, tr: Any, ex: Any, keys: list[tuple[int, float]], values: list[list[tuple[int, float]]],
                links: Any) -> dict[tuple[str, str], str]:
    """What became of each true link of a page (its texts without whitespace) with these keys and the values this link
    model read for them (`dv.key_values`' `linked_values`): ``read`` or one of `MISSES`."""
    from docvlm.tasks._rank import link_rows

    spans = ex.candidates.spans
    texts = [tr.squash(s.text) for s in spans]
    read, _ = tr.links_read(ex, keys, values)
    by_key = {texts[ki]: n for n, (ki, _) in enumerate(keys)}
    words = [s.words for s in spans]
    key_words = set().union(*(words[ki] for ki, _ in keys)) if keys else set()
    boxes = [s.box for s in spans]
    out = {}
    for q, a in {(tr.squash(q), tr.squash(a)) for q, a in ex.links}:
        spelled = [i for i, t in enumerate(texts) if t == a]
        if (q, a) in read:
            out[q, a] = "read"
        elif q not in by_key:
            out[q, a] = MISSES[0]
        elif not spelled:
            out[q, a] = MISSES[1]
        else:
            n = by_key[q]
            near = set(kv._near(spans[keys[n][0]], boxes))
            inside = [i for i in spelled if i in near]
            free = [i for i in inside if not words[i] & key_words]
            if not inside:
                out[q, a] = MISSES[2]
            elif not free:
                out[q, a] = MISSES[3]
            elif links.probabilities(link_rows(ex.candidates, keys[n][0], free)).max() < kv.LINK_THRESHOLD:
                out[q, a] = MISSES[5] if values[n] else MISSES[4]
            else:
                out[q, a] = MISSES[6]
    return out


def _own_rows(cands: Any, indices: Any) -> list[Any]:
    """Key rows without `key_features`: the spans' own features and the bias."""
    from docvlm.tasks import _rank

    return _rank.with_bias([cands.base[i] & np.uint64(_rank.DIM - 1) for i in indices])


def link_count(tr: Any, ex: Any, keys: list[tuple[int, float]], values: list[list[tuple[int, float]]]) -> np.ndarray[Any, Any]:
    """(links found, links read, true links) of one page with these keys and the values read for them."""
    predicted, truth = tr.links_read(ex, keys, values)
    return np.array([len(predicted & truth), len(predicted), len(truth)], dtype=float)


if __name__ == "__main__":
    import sys

    sys.exit(main())
