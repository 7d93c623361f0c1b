"""The pair model of ``dv.key_values``: which (key, value) pairs of a page are printed as one, read jointly.

The key detector and the link model (`docvlm.tasks._rank`) score each key and each value on its own, and a key
under the detector's threshold loses every value it has. The pair model scores each (key, span) pair of a page with
gradient-boosted trees (`docvlm.tasks._trees`) over dense measures of the pair (`PAIR_FEATURES`): where the span sits
from the key (right of it, under it, how far, aligned how, how many starting points and other keys are nearer), what
both look like, the key detector's probability of the key and of the span, the link model's log-odds of the pair and
how it ranks among the key's spans and among the keys of the span. The candidate keys are the detected ones and every
other span the detector gives at least `POOL_THRESHOLD`: a likely key with a clear value is read even when the
detector alone would not report it. `read_pairs` then takes pairs best first: a key's words are never a value, a
value's words go to one key, keys never overlap.

Trained by ``python -m bench.train_ranker`` on FUNSD's links, the linear models' inputs computed out of fold (as they
are on a page they never saw), and shipped in ``docvlm/data/pairs.npz``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from docvlm.tasks._rank import (
    MAX_KEY_CHARS,
    Candidates,
    Ranker,
    _start_distance,
    key_rows,
    link_rows,
    start_distances,
    start_rank,
)
from docvlm.tasks._spans import Span
from docvlm.tasks._trees import Trees

__all__ = ["PAIR_FEATURES", "POOL_THRESHOLD", "default_pair_model", "pair_table", "read_pairs"]

_PAIRS = "pairs.npz"
#: How likely (0..1) the key detector must find a span a key for the pair model to read its pairs (besides the keys
#: over `docvlm.tasks.key_values.KEY_THRESHOLD`).
POOL_THRESHOLD = 0.05
_KINDS = ("seg", "pre", "suf", "mid", "line", "run", "block", "lines", "date", "num")

#: The pair model's input columns, in order.
PAIR_FEATURES = (
    "relation", "dx_start", "dy_start", "dy_top", "dx_left", "dx_center", "x_overlap", "y_overlap", "start_rank",
    "value_lines", "key_lines", "value_kind", "key_kind", "value_chars", "value_words", "value_digits",
    "value_upper", "value_colon_end", "key_colon_end", "value_colon", "value_width", "value_line_height",
    "key_prob", "value_key_prob", "link_logit", "keys_nearer", "keys_between", "value_in_key", "key_detected",
    "value_cut_before", "value_cut_after", "key_chars", "dx_right", "key_best_logit", "rank_in_key", "rank_in_value",
    "logit_to_key_best", "logit_to_value_best", "key_page_rank",
)


@functools.lru_cache(maxsize=1)
def default_pair_model() -> Trees:
    """The pair model shipped with docvlm (trained by ``python -m bench.train_ranker``)."""
    return Trees.load(name=_PAIRS)


def _relation(k: Any, v: Any, h: float) -> int:
    """0 another page, 1 over the key, 2 right of it, 3 below, 4 above, 5 left (as `docvlm.tasks._rank.pair_features`)."""
    overlap = min(k.y1, v.y1) - max(k.y0, v.y0)
    if min(k.x1, v.x1) - max(k.x0, v.x0) > 0 and overlap > 0:
        return 1
    if overlap > 0.3 * h and v.x0 >= k.x1 - 0.5 * h:
        return 2
    if v.y0 >= k.y1 - 0.3 * h:
        return 3
    if v.y1 <= k.y0 + 0.3 * h:
        return 4
    return 5


def _start_cost(key: Span, x: float, y: float) -> float:
    """How far a span starting at (x, y) is from the key (right of it nearer than under it), 99 above or left."""
    where = _start_distance(key, x, y)
    if where is None:
        return 99.0
    return where[1] if where[0] == "right" else where[1] + 0.5


def _start_costs(boxes: np.ndarray[Any, Any], x: float, y: float) -> np.ndarray[Any, Any]:
    """`_start_cost` from each of several keys (rows ``x0, y0, x1, y1, line height``) at once."""
    x0, y0, x1, y1, h = boxes.T
    right = np.where(x >= x1 - 0.5 * h, (x - x1) / h, 99.0)
    below = (y - y1) / h + np.abs(x - x0) / (3 * h) + 0.5
    return np.where(y < y0 - 0.5 * h, 99.0, np.where(y < y1 - 0.5 * h, right, below))


def pair_table(cands: Candidates, detected: Sequence[tuple[int, float]], key_model: Ranker, link_model: Ranker,
               near: Any, key_kinds: Collection[str], *,
               pool_threshold: float = POOL_THRESHOLD) -> tuple[list[tuple[int, int]], np.ndarray[Any, Any]]:
    """The candidate (key, value) pairs of a page and their `PAIR_FEATURES` rows.

    ``detected`` are the keys `docvlm.tasks.key_values.link` reports; the other candidate keys are key-shaped spans the
    detector gives at least ``pool_threshold`` whose words no detected key holds and whose kind is one of ``key_kinds``.
    ``near(key_span, boxes)`` gives the spans a key's value may be (`docvlm.tasks.key_values._near`)."""
    spans = cands.spans
    words = [s.words for s in spans]
    boxes = [s.box for s in spans]
    pool = [i for i, s in enumerate(spans) if len(s.text) <= MAX_KEY_CHARS]
    kprob = np.full(len(spans), -1.0)
    if pool:
        kprob[pool] = key_model.probabilities(key_rows(cands, pool))
    detected_ids = {ki for ki, _ in detected}
    key_words = set().union(*(words[ki] for ki in detected_ids)) if detected_ids else set()
    keys = sorted(detected_ids | {i for i in pool if spans[i].kind in key_kinds and kprob[i] >= pool_threshold
                                  and not words[i] & key_words})
    page_rank = {ki: r for r, ki in enumerate(sorted(keys, key=lambda i: -kprob[i]))}
    # the detected keys' boxes and line heights (x0, y0, x1, y1, h), for the measures against the other keys
    detected_order = np.array(sorted(detected_ids), dtype=np.int64)
    others_box = np.array([[spans[kk].box.x0, spans[kk].box.y0, spans[kk].box.x1, spans[kk].box.y1,
                            max(spans[kk].box.height / spans[kk].lines, 1e-6)] for kk in detected_order],
                          dtype=np.float64).reshape(-1, 5)
    starts_of: dict[int, set[tuple[int, int]]] = {}
    pairs: list[tuple[int, int]] = []
    rows: list[list[float]] = []
    logits: list[float] = []
    for ki in keys:
        key = spans[ki]
        k = key.box
        h = max(k.height / key.lines, 1e-6)
        values = [i for i in near(key, boxes) if not words[i] & words[ki]]
        if not values:
            continue
        logit = link_model.scores(link_rows(cands, ki, values))
        starts = starts_of.setdefault(key.page, {(round(s.box.x0), round(s.box.y0)) for s in spans if s.page == key.page})
        dists = start_distances(key, starts)
        others = others_box[detected_order != ki]
        for n, i in enumerate(values):
            span = spans[i]
            v = span.box
            rel = _relation(k, v, h) if span.page == key.page else 0
            rank = start_rank(key, span, dists)
            cost = _start_cost(key, v.x0, v.y0)
            nearer = int((_start_costs(others, v.x0, v.y0) < cost).sum())
            between = 0
            if rel == 2:
                between = int(((np.minimum(others[:, 3], v.y1) - np.maximum(others[:, 1], v.y0) > 0)
                               & (others[:, 0] >= k.x1 - 1) & (others[:, 2] <= v.x0 + 1)).sum())
            elif rel == 3:
                between = int(((others[:, 1] >= k.y1 - 1) & (others[:, 3] <= v.y0 + 1)
                               & (np.minimum(others[:, 2], v.x1) - np.maximum(others[:, 0], v.x0) > 0)).sum())
            text = span.text
            letters = [ch for ch in text if ch.isalpha()]
            rows.append([
                rel, (v.x0 - k.x1) / h, (v.y0 - k.y1) / h, (v.y0 - k.y0) / h, (v.x0 - k.x0) / h,
                ((v.x0 + v.x1) - (k.x0 + k.x1)) / 2 / h,
                max(0.0, min(k.x1, v.x1) - max(k.x0, v.x0)) / max(1e-6, min(k.width, v.width)),
                max(0.0, min(k.y1, v.y1) - max(k.y0, v.y0)) / max(1e-6, min(k.height, v.height)),
                99 if rank is None else min(rank, 99), span.lines, key.lines, _KINDS.index(span.kind) if span.kind in _KINDS else -1,
                _KINDS.index(key.kind) if key.kind in _KINDS else -1, len(text), len(text.split()),
                sum(ch.isdigit() for ch in text) / max(1, len(text)),
                sum(ch.isupper() for ch in letters) / max(1, len(letters)),
                text.rstrip().endswith(":"), key.text.rstrip().endswith(":"), ":" in text,
                v.width / h, v.height / span.lines / h, kprob[ki], kprob[i], logit[n], nearer, between,
                bool(words[i] & key_words), ki in detected_ids, bool(span.cut_before), bool(span.cut_after),
                len(key.text), (v.x1 - k.x1) / h])
            pairs.append((ki, i))
            logits.append(float(logit[n]))
    if not pairs:
        return [], np.zeros((0, len(PAIR_FEATURES)), dtype=np.float32)
    table = np.asarray(rows, dtype=np.float64)
    score = np.asarray(logits)
    key_of = np.array([ki for ki, _ in pairs])
    value_of = np.array([i for _, i in pairs])
    key_best, rank_in_key = _group_stats(key_of, score)
    value_best, rank_in_value = _group_stats(value_of, score)
    ranks = np.array([page_rank[ki] for ki in key_of], dtype=np.float64)
    table = np.column_stack([table, key_best, np.minimum(rank_in_key, 20), np.minimum(rank_in_value, 20),
                             score - key_best, score - value_best, np.minimum(ranks, 50)])
    return pairs, table.astype(np.float32)


def _group_stats(group: np.ndarray[Any, Any], score: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per row: the best score of its group, and its rank in the group (0: the best)."""
    order = np.lexsort((-score, group))
    g = group[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    sizes = np.diff(np.r_[start, len(order)])
    rank = np.empty(len(score))
    rank[order] = np.arange(len(order)) - np.repeat(start, sizes)
    best = np.empty(len(score))
    best[order] = np.repeat(score[order][start], sizes)
    return best, rank


def read_pairs(cands: Candidates, pairs: Sequence[tuple[int, int]], probs: Any,
               threshold: float) -> dict[int, list[tuple[int, float]]]:
    """The pairs read, best first, each at least ``threshold`` likely: key span -> its values (span, probability). A
    pair is skipped when its value's words went to another value or are a key's, or its key's words are a value's
    or another key's."""
    words = [s.words for s in cands.spans]
    out: dict[int, list[tuple[int, float]]] = {}
    values_taken: set[tuple[int, int]] = set()
    keys_taken: set[tuple[int, int]] = set()
    for n in sorted(range(len(pairs)), key=lambda n: -float(probs[n])):
        p = float(probs[n])
        if p < threshold:
            break
        ki, vi = pairs[n]
        if words[vi] & values_taken or words[vi] & keys_taken:
            continue
        if ki not in out:
            if words[ki] & (values_taken | keys_taken):
                continue
            out[ki] = []
            keys_taken |= words[ki]
            if words[vi] & keys_taken:
                continue
        out[ki].append((vi, p))
        values_taken |= words[vi]
    return out
