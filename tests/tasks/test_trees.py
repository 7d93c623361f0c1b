"""Gradient-boosted trees in numpy (docvlm.tasks._trees): the non-linear half of the pair model of dv.key_values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from docvlm.tasks._rank import fit_binary
from docvlm.tasks._trees import Trees, fit_trees


def _xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two features whose signs agree or not: the label is their interaction, which no linear model can read."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0) ^ (x[:, 1] > 0)


def test_trees_learn_an_interaction_a_linear_model_cannot() -> None:
    x, y = _xor(4000, 0)
    test_x, test_y = _xor(2000, 1)
    trees = fit_trees(x, y, trees=30, depth=3, min_leaf=10)
    accuracy = float(((trees.probabilities(test_x) > 0.5) == test_y).mean())
    # the same data as hashed sign features for the linear model of the key detector: it stays near chance
    def rows(a: np.ndarray) -> list[np.ndarray]:
        return [np.array([2 * j + int(v > 0) for j, v in enumerate(r)], dtype=np.int64) for r in a]
    linear = fit_binary(rows(x), list(y))
    linear_accuracy = float(((linear.probabilities(rows(test_x)) > 0.5) == test_y).mean())
    assert accuracy > 0.95
    assert linear_accuracy < 0.65


def test_trees_round_trip_through_npz_and_check_the_width_of_their_rows(tmp_path: Path) -> None:
    x, y = _xor(1000, 2)
    trees = fit_trees(x, y, trees=10, depth=3, names=("a", "b", "c", "d"))
    trees.info = {"recipe": "test"}
    trees.save(tmp_path / "t.npz")
    back = Trees.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.logits(x), trees.logits(x))
    assert back.names == ("a", "b", "c", "d") and back.info == {"recipe": "test"}
    with pytest.raises(ValueError, match="rows of 4 features"):
        back.logits(x[:, :3])
    assert back.logits(np.zeros((0, 4))).shape == (0,)


def test_the_bias_starts_at_the_base_rate_and_a_constant_feature_is_never_split() -> None:
    x = np.zeros((500, 2), dtype=np.float32)
    y = np.arange(500) < 100  # 20 % positive, nothing to split on
    trees = fit_trees(x, y, trees=5, depth=2)
    assert (trees.feature < 0).all()  # every node a leaf
    assert trees.probabilities(x[:1])[0] == pytest.approx(0.2, abs=1e-3)
