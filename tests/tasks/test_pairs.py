"""The pair model of dv.key_values (docvlm.tasks._pairs): every likely key's pairs scored together, read best first."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

import docvlm as dv
from docvlm.tasks._pairs import PAIR_FEATURES, default_pair_model, pair_table, read_pairs
from docvlm.tasks._rank import default_key_model, default_link_model, default_ranker
from tests.tasks.test_key_values import form_pdf, pairs

kv = importlib.import_module("docvlm.tasks.key_values")


def _table() -> tuple[Any, list[tuple[int, float]], list[tuple[int, int]], np.ndarray]:
    cands = kv.page_candidates(dv.open(form_pdf())[0])
    keys, _ = kv.link(cands, default_key_model(), default_ranker())
    found, table = pair_table(cands, keys, default_key_model(), default_link_model(), kv._near, kv.KEY_KINDS)
    return cands, keys, found, table


def test_each_pair_is_one_row_of_every_feature_and_a_keys_words_are_never_its_value() -> None:
    cands, keys, found, table = _table()
    spans = cands.spans
    assert table.shape == (len(found), len(PAIR_FEATURES)) and len(found) > 0
    assert all(not spans[k].words & spans[v].words for k, v in found)
    assert {k for k, _ in keys} <= {k for k, _ in found}  # every detected key has its pairs (a value is near each)
    column = {name: i for i, name in enumerate(PAIR_FEATURES)}
    row = next(table[n] for n, (k, v) in enumerate(found) if spans[k].text == "Name:" and spans[v].text == "Maria Rossi")
    assert row[column["relation"]] == 2  # right of the key
    assert row[column["key_detected"]] == 1 and row[column["key_colon_end"]] == 1
    assert 0 < row[column["dx_start"]] < 15 and row[column["y_overlap"]] > 0.5


def test_pairs_are_read_best_first_and_no_words_are_given_twice() -> None:
    cands, _, found, _ = _table()
    spans = cands.spans
    rng = np.random.default_rng(0)
    for _ in range(5):
        read = read_pairs(cands, found, rng.random(len(found)), 0.3)
        key_words = [spans[k].words for k in read]
        value_words = [spans[v].words for values in read.values() for v, _ in values]
        everything = key_words + value_words
        assert sum(len(w) for w in everything) == len(set().union(*everything))  # disjoint
        assert all(p >= 0.3 for values in read.values() for _, p in values)


def test_a_key_the_detector_alone_misses_is_read_with_its_value() -> None:
    page = dv.open(form_pdf())[0]
    assert dv.key_values(None, page, threshold=1.01, pairs=False) == []  # no key over the threshold: nothing
    got = pairs(dv.key_values(None, page, threshold=1.01))  # the pair model reads the likely keys' pairs
    assert got.get("Name:") == "Maria Rossi" and got.get("Date of birth:") == "04/11/1987"


def test_the_shipped_pair_model_was_chosen_out_of_fold_over_the_link_model_alone() -> None:
    model = default_pair_model()
    assert model.names == PAIR_FEATURES
    figures = model.info["figures"]  # printed by `python -m bench.train_pairs --out docvlm/data`
    for words in ("annotation words", "docvlm OCR"):
        chosen = figures[f"pair model >= {kv.PAIR_THRESHOLD} / {words}"]
        assert chosen > figures[f"link model alone / {words}"]
        assert chosen >= max(v for k, v in figures.items() if k.endswith(words) and k.startswith("pair")) - 0.005


def test_the_other_keys_start_costs_at_once_equal_one_by_one() -> None:
    """`_start_costs` (numpy, every detected key at once) gives what `_start_cost` gives key by key: above, right of,
    on and below keys of one and several lines."""
    from docvlm.tasks._pairs import _start_cost, _start_costs

    cands = kv.page_candidates(dv.open(form_pdf())[0])
    keys = [s for s in cands.spans if s.lines <= 2][:40]
    boxes = np.array([[s.box.x0, s.box.y0, s.box.x1, s.box.y1, max(s.box.height / s.lines, 1e-6)] for s in keys])
    points = [(s.box.x0, s.box.y0) for s in cands.spans]
    for x, y in points:
        assert _start_costs(boxes, x, y).tolist() == [_start_cost(k, x, y) for k in keys]
    # every case is met: above or left (99), right of a key, below one
    costs = np.array([_start_costs(boxes, x, y) for x, y in points])
    assert (costs == 99).any() and ((costs < 99) & (costs >= 0.5)).any()


def test_the_similarity_cache_lives_for_one_reading_gives_the_same_rows_and_is_not_pickled() -> None:
    import pickle

    from docvlm.tasks._rank import FieldSpec

    cands = kv.page_candidates(dv.open(form_pdf())[0])
    spec, other = FieldSpec("Name"), FieldSpec("Date of birth")
    plain = cands.rows(spec)
    assert cands._sims == {}  # outside a reading nothing is kept (candidates of a training set stay small)
    with cands.caching():
        first = cands.rows(spec)
        cands.rows(other)
        assert {(f.trigrams, f.alias_trigrams) for f in (spec, other)} <= set(cands._sims)
        again = cands.rows(spec)
        fresh = pickle.loads(pickle.dumps(cands))
        assert fresh._sims == {} and fresh._caching == 0  # pickled without the cache
    assert cands._sims == {}  # the reading is over: dropped
    for rows in (first, again, fresh.rows(spec)):
        assert all((a == b).all() for a, b in zip(plain, rows, strict=True))
    assert (cands.none_row(spec) == fresh.none_row(spec)).all()
