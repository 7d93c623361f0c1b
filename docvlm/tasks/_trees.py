"""Gradient-boosted regression trees over dense features, in numpy: the non-linear half of the link model.

The hashed linear models of `docvlm.tasks._rank` score each feature on its own; whether a span is a key's value
depends on how several measures combine (right of the key *and* nearer than any other key, under it *and* in its
column with no key between). `fit_trees` learns such combinations (binary log-loss, depth-wise trees on binned
features, second-order leaf values with an L2 penalty, as XGBoost and LightGBM do) and `Trees` reads them with a
few vectorised lookups per tree level. Trained by ``python -m bench.train_ranker`` and shipped in ``docvlm/data``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Trees", "fit_trees"]

_Array = np.ndarray[Any, Any]


class Trees:
    """An ensemble of regression trees: ``logit = base + sum of each tree's leaf``.

    The nodes of all trees are stored flat: ``feature`` (-1 at a leaf), ``threshold`` (go left when the feature's value
    is at most it), ``left`` and ``right`` (node numbers), ``value`` (a leaf's contribution); ``roots`` are the first
    node of each tree and ``depth`` the deepest path. ``names`` name the feature columns a caller must give, in order."""

    def __init__(self, feature: _Array, threshold: _Array, left: _Array, right: _Array, value: _Array, roots: _Array,
                 depth: int, base: float, names: Sequence[str] = (), info: Mapping[str, Any] | None = None) -> None:
        self.feature = np.asarray(feature, dtype=np.int32)
        self.threshold = np.asarray(threshold, dtype=np.float32)
        self.left = np.asarray(left, dtype=np.int32)
        self.right = np.asarray(right, dtype=np.int32)
        self.value = np.asarray(value, dtype=np.float32)
        self.roots = np.asarray(roots, dtype=np.int32)
        self.depth = int(depth)
        self.base = float(base)
        self.names = tuple(names)
        self.info = dict(info or {})

    def logits(self, x: Any) -> _Array:
        """The ensemble's log-odds of each row of ``x`` (rows x features, in the order of `names`)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or (self.names and x.shape[1] != len(self.names)):
            raise ValueError(f"expected rows of {len(self.names)} features, got an array of shape {x.shape}")
        if not len(x):
            return np.zeros(0)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        for _ in range(self.depth):
            feature = self.feature[node]
            leaf = feature < 0
            go_left = x[rows, np.maximum(feature, 0)] <= self.threshold[node]
            node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
        out: _Array = self.base + self.value[node].astype(np.float64).sum(axis=1)
        return out

    def probabilities(self, x: Any) -> _Array:
        """The probability of each row of ``x``."""
        out: _Array = 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -50.0, 50.0)))
        return out

    def save(self, path: str | Path) -> None:
        """Write the ensemble and ``info`` to an ``.npz`` file."""
        meta = {"depth": self.depth, "base": self.base, "names": list(self.names), "info": self.info}
        np.savez_compressed(path, feature=self.feature, threshold=self.threshold, left=self.left, right=self.right,
                            value=self.value, roots=self.roots,
                            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: str | Path | None = None, *, name: str = "") -> Trees:
        """An ensemble written by `save`, or (``path=None``) the one named ``name`` shipped in ``docvlm/data``."""
        source: Any = path if path is not None else io.BytesIO(resources.files("docvlm.data").joinpath(name).read_bytes())
        with np.load(source) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            return cls(data["feature"], data["threshold"], data["left"], data["right"], data["value"], data["roots"],
                       meta["depth"], meta["base"], meta.get("names", ()), meta.get("info"))


def fit_trees(x: Any, y: Any, *, trees: int = 200, depth: int = 5, lr: float = 0.1, l2: float = 1.0,
              min_leaf: int = 20, bins: int = 64, names: Sequence[str] = ()) -> Trees:
    """Gradient boosting of depth-limited regression trees for binary log-loss.

    Each feature is cut at up to ``bins - 1`` of its quantiles; each tree grows level by level to ``depth``, every node
    split where the second-order gain (``G_l^2 / (H_l + l2) + G_r^2 / (H_r + l2) - G^2 / (H + l2)``) is largest with at
    least ``min_leaf`` rows on each side; a leaf adds ``-lr * G / (H + l2)``. Deterministic: no rows or features are
    sampled."""
    x = np.asarray(x, dtype=np.float32)
    target = np.asarray(y, dtype=np.float64)
    n, width = x.shape
    edges = []
    binned = np.empty((n, width), dtype=np.int64)
    for f in range(width):
        cuts = np.unique(np.quantile(x[:, f], np.linspace(0.0, 1.0, bins + 1)[1:-1]).astype(np.float32))
        edges.append(cuts)
        binned[:, f] = np.searchsorted(cuts, x[:, f], side="left")  # bin b: x <= cuts[b] (b < len(cuts))
    cells = binned + np.arange(width) * bins  # each feature's bins in a range of their own: one bincount for all
    valid = np.zeros((width, bins), dtype=bool)
    for f, cuts in enumerate(edges):
        valid[f, :len(cuts)] = True
    rate = float(np.clip(target.mean(), 1e-6, 1 - 1e-6))
    base = float(np.log(rate / (1 - rate)))
    raw = np.full(n, base)
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots: list[int] = []
    for _ in range(trees):
        p = 1.0 / (1.0 + np.exp(-raw))
        g, h = p - target, p * (1.0 - p)
        roots.append(len(feature))
        frontier = [(len(feature), np.arange(n))]
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        value.append(0.0)
        for level in range(depth + 1):
            grown = []
            for node, idx in frontier:
                gs, hs = g[idx].sum(), h[idx].sum()
                split = _best_split(cells, idx, width, bins, g, h, valid, gs, hs, l2, min_leaf) \
                    if level < depth and len(idx) >= 2 * min_leaf else None
                if split is None:
                    value[node] = float(-lr * gs / (hs + l2))
                    raw[idx] += value[node]
                    continue
                f, b = split
                goes_left = binned[idx, f] <= b
                feature[node], threshold[node] = f, float(edges[f][b])
                for side, rows in ((0, idx[goes_left]), (1, idx[~goes_left])):
                    child = len(feature)
                    feature.append(-1)
                    threshold.append(0.0)
                    left.append(-1)
                    right.append(-1)
                    value.append(0.0)
                    if side == 0:
                        left[node] = child
                    else:
                        right[node] = child
                    grown.append((child, rows))
            frontier = grown
            if not frontier:
                break
    return Trees(np.array(feature), np.array(threshold), np.array(left), np.array(right), np.array(value),
                 np.array(roots), depth, base, names)


def _best_split(cells: _Array, idx: _Array, width: int, bins: int, g: _Array, h: _Array, valid: _Array, gs: float,
                hs: float, l2: float, min_leaf: int) -> tuple[int, int] | None:
    """The (feature, bin) split of the rows ``idx`` with the largest gain, or ``None`` when no split gains."""
    rows = cells[idx].ravel()
    size = width * bins
    hist_g = np.bincount(rows, weights=np.repeat(g[idx], width), minlength=size).reshape(width, bins).cumsum(axis=1)
    hist_h = np.bincount(rows, weights=np.repeat(h[idx], width), minlength=size).reshape(width, bins).cumsum(axis=1)
    count = np.bincount(rows, minlength=size).reshape(width, bins).cumsum(axis=1)
    ok = valid & (count >= min_leaf) & (len(idx) - count >= min_leaf)
    if not ok.any():
        return None
    gain = hist_g ** 2 / (hist_h + l2) + (gs - hist_g) ** 2 / (hs - hist_h + l2) - gs ** 2 / (hs + l2)
    gain = np.where(ok, gain, -np.inf)
    f, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
    if not gain[f, b] > 1e-9:
        return None
    return int(f), int(b)
