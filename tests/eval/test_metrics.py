"""Every metric against cases computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from docvlm.errors import UsageError
from docvlm.eval.metrics import (
    AdjacencyScores,
    FieldScores,
    TreeNode,
    adjacency_relations,
    adjacency_scores,
    anls,
    anls_score,
    box_iou,
    box_iou_matrix,
    cer,
    circular_eval,
    circular_variants,
    detection_map,
    field_scores,
    levenshtein,
    mask_iou,
    point_accuracy,
    teds,
    tree_edit_distance,
    values_match,
    wer,
)
from docvlm.types import BoundingBox, Detection, Detections, Mask, Point, Space, Table, TableCell


def box(x0: float, y0: float, x1: float, y1: float) -> BoundingBox:
    return BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1)


def det(label: str, b: BoundingBox, score: float | None = None) -> Detection:
    return Detection(label=label, box=b, score=score)


# edit distance ---------------------------------------------------------------------------------------------
def _dp(a: list[object] | str, b: list[object] | str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize(("a", "b", "d"), [
    ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("flaw", "lawn", 2),
    ("abc", "abc", 0), ("abc", "cba", 2), ("a" * 70, "a" * 69 + "b", 1),
])
def test_levenshtein_known_cases(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d == levenshtein(b, a)


def test_levenshtein_matches_dynamic_programming_on_random_strings_and_word_lists() -> None:
    rng = random.Random(0)
    for _ in range(300):
        # short and long (over 64 items: the bit vector spans several machine words), small alphabets collide often
        n, m = rng.randrange(0, 150), rng.randrange(0, 150)
        a = "".join(rng.choice("abcd") for _ in range(n))
        b = "".join(rng.choice("abcd") for _ in range(m))
        assert levenshtein(a, b) == _dp(a, b)
        wa, wb = a.split("a"), b.split("a")  # lists of hashable tokens
        assert levenshtein(wa, wb) == _dp(wa, wb)  # type: ignore[arg-type]


def test_cer_and_wer_are_corpus_level_rates() -> None:
    assert cer("abcd", "abce") == 0.25                      # 1 substitution / 4 characters
    assert cer(["ab", "cd"], ["ab", "xd"]) == 0.25          # (0 + 1) / (2 + 2)
    assert cer(["abc", ""], ["abd", "xy"]) == 3 / 5         # (1 + 2) / (3 + 2): pooled, not averaged
    assert wer("the cat sat", "the cat sat down") == 0.25   # 1 deletion / 4 words
    assert wer("a b c", "a x c") == pytest.approx(1 / 3)
    assert cer("", "") == 0.0 and cer("x", "") == 1.0
    with pytest.raises(UsageError):
        cer(["a"], ["a", "b"])


def test_anls_threshold_and_normalization() -> None:
    assert anls_score("Total: 12", ["total:  12 "]) == 1.0  # case and whitespace are normalized
    assert anls_score("abcd", ["abce"]) == 0.75             # NL 1/4 -> 0.75
    assert anls_score("ab", ["ac"]) == 0.0                  # NL 1/2 is not < 0.5 -> 0
    assert anls_score("abcde", ["abcxy", "zzzzz", "abcdf"]) == 0.8  # best answer: NL 1/5
    assert anls(["abcd", "x", "ab"], [["abce"], ["x"], ["cd"]]) == pytest.approx((0.75 + 1 + 0) / 3)
    with pytest.raises(UsageError):
        anls_score("a", [])


# geometry --------------------------------------------------------------------------------------------------
def test_box_iou_and_matrix() -> None:
    a, b = box(0, 0, 10, 10), box(5, 0, 15, 10)
    assert box_iou(a, b) == pytest.approx(50 / 150)  # overlap 5x10 = 50, union 100 + 100 - 50
    m = box_iou_matrix([a, b], [b, box(20, 20, 30, 30)])
    assert m.shape == (2, 2)
    assert np.allclose(m, [[1 / 3, 0.0], [1.0, 0.0]])
    with pytest.raises(UsageError):
        box_iou_matrix([a], [BoundingBox(x0=0, y0=0, x1=1, y1=1, space=Space.NORMALIZED)])


def test_mask_iou() -> None:
    top = np.zeros((10, 10), bool)
    top[:5, :] = True   # 50 pixels
    left = np.zeros((10, 10), bool)
    left[:, :5] = True  # 50 pixels, 25 shared
    assert mask_iou(Mask.from_array(top), Mask.from_array(left)) == pytest.approx(25 / 75)
    assert mask_iou(Mask.empty(4, 4), Mask.empty(4, 4)) == 0.0


def test_point_accuracy() -> None:
    b = box(0, 0, 10, 10)
    pts = [Point(x=5, y=5), Point(x=20, y=5), None, Point(x=25, y=25)]
    assert point_accuracy(pts, [b, b, b, [b, box(20, 20, 30, 30)]]) == 0.5  # 2 of 4


# detection mAP ---------------------------------------------------------------------------------------------
def test_map_hand_computed_with_a_false_positive_between_two_hits() -> None:
    g1, g2 = box(0, 0, 10, 10), box(20, 0, 30, 10)
    truth = [Detections(detections=[det("a", g1), det("a", g2)])]
    preds = [Detections(detections=[det("a", g1, 0.9), det("a", box(50, 50, 60, 60), 0.8), det("a", g2, 0.7)])]
    # ranked: TP, FP, TP -> recall .5 .5 1, precision 1 .5 .667; envelope 1 .667 .667
    # recall points 0..0.50 (51 of them) read precision 1, 0.51..1.00 (50) read 2/3
    ap = (51 * 1 + 50 * 2 / 3) / 101
    scores = detection_map(preds, truth)
    assert scores.map == pytest.approx(ap)
    assert scores.map50 == pytest.approx(ap) and scores.map75 == pytest.approx(ap)  # IoU 1 at every threshold
    assert scores.n_true == {"a": 2} and scores.n_predicted == {"a": 3}


def test_map_counts_only_the_thresholds_a_box_passes() -> None:
    truth = [Detections(detections=[det("a", box(0, 0, 10, 6))])]
    preds = [Detections(detections=[det("a", box(0, 0, 10, 10), 0.5)])]  # IoU 60/100 = 0.6
    scores = detection_map(preds, truth)
    assert scores.map50 == 1.0 and scores.map75 == 0.0
    assert scores.map == pytest.approx(0.3)  # AP 1 at 0.50, 0.55, 0.60; 0 at the 7 thresholds above


def test_map_score_order_greedy_matching_and_missing_classes() -> None:
    g = box(0, 0, 10, 10)
    truth = [Detections(detections=[det("a", g), det("b", box(40, 40, 50, 50))]), Detections(detections=[det("a", g)])]
    # image 0: two exact boxes; the higher score (0.9) takes the truth box, the 0.4 duplicate is a false
    # positive although the model listed it first. Image 1: a box in the wrong place, a false positive.
    preds = [Detections(detections=[det("a", g, 0.4), det("a", g, 0.9)]),
             Detections(detections=[det("a", box(60, 60, 70, 70), 0.6)])]
    # class a ranked by score: 0.9 TP, 0.6 FP, 0.4 FP; 2 truth boxes -> recall .5 .5 .5, precision 1 .5 .33
    # recall points 0..0.5 read 1 (51 points), above 0.5 never reached -> AP = 51 / 101
    # class b has a truth box and no detection -> AP 0
    scores = detection_map(preds, truth)
    assert scores.per_class["a"] == pytest.approx(51 / 101)
    assert scores.per_class["b"] == 0.0
    assert scores.map == pytest.approx(51 / 101 / 2)


def test_map_without_scores_keeps_the_model_order() -> None:
    g1, g2 = box(0, 0, 10, 10), box(20, 0, 30, 10)
    truth = [Detections(detections=[det("a", g1), det("a", g2)])]
    first_right = detection_map([Detections(detections=[det("a", g1), det("a", box(80, 80, 90, 90))])], truth)
    first_wrong = detection_map([Detections(detections=[det("a", box(80, 80, 90, 90)), det("a", g1)])], truth)
    assert first_right.map == pytest.approx(51 / 101)  # TP then FP: precision 1 up to recall .5
    assert first_wrong.map == pytest.approx(51 / 2 / 101)  # FP then TP: precision .5 up to recall .5


def test_map_segm_uses_masks() -> None:
    a = np.zeros((10, 10), bool)
    a[:, :5] = True
    b = np.zeros((10, 10), bool)
    b[:, :4] = True  # IoU 40/50 = 0.8
    truth = [Detections(detections=[Detection(label="x", box=box(0, 0, 5, 10), mask=Mask.from_array(a))])]
    preds = [Detections(detections=[Detection(label="x", box=box(0, 0, 5, 10), mask=Mask.from_array(b), score=1)])]
    assert detection_map(preds, truth).map == 1.0  # boxes agree exactly
    assert detection_map(preds, truth, iou_type="segm").map == pytest.approx(0.7)  # 0.50 ... 0.80 pass: 7 of 10


# extraction fields -----------------------------------------------------------------------------------------
def test_field_scores_precision_recall_f1() -> None:
    s = field_scores({"a": "x", "b": "y", "c": None}, {"a": "x", "b": "z", "c": "w"})
    assert (s.correct, s.predicted, s.expected) == (1, 2, 3)
    assert s.precision == 0.5 and s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(0.4)  # 2 * (1/2 * 1/3) / (1/2 + 1/3)
    assert s.matched == ["a"] and s.wrong == ["b"] and s.missed == ["c"]


def test_field_scores_with_evidence_iou() -> None:
    truth_boxes = {"a": box(0, 0, 10, 10), "b": box(0, 20, 10, 30)}
    pred_boxes = {"a": box(5, 5, 15, 15), "b": box(0, 20, 10, 30)}  # a: IoU 25/175; b: exact
    values = {"a": "x", "b": "y"}
    plain = field_scores(values, values, predicted_boxes=pred_boxes, true_boxes=truth_boxes)
    grounded = field_scores(values, values, predicted_boxes=pred_boxes, true_boxes=truth_boxes, min_iou=0.5)
    assert plain.correct == 2 and grounded.correct == 1 and grounded.wrong == ["a"]
    assert dict(plain.ious) == pytest.approx({"a": 25 / 175, "b": 1.0})
    total = FieldScores.total([plain, grounded])
    assert (total.correct, total.predicted, total.expected) == (3, 4, 4)


def test_field_scores_nested_values_and_numbers() -> None:
    pred = {"total": "12.50", "items": [{"qty": 2}, {"qty": 3}]}
    truth = {"total": 12.5, "items": [{"qty": 2}, {"qty": 4}]}
    s = field_scores(pred, truth)
    assert (s.correct, s.predicted, s.expected) == (2, 3, 3)
    assert s.wrong == ["items[1].qty"]
    assert values_match("ACME  Corp", "ACME Corp") and not values_match("acme corp", "ACME Corp")
    assert values_match("acme corp", "ACME Corp", ignore_case=True)
    assert not values_match("abc", 3.0) and values_match(None, None)


# tables ----------------------------------------------------------------------------------------------------
def one_row(*texts: str) -> Table:
    return Table(cells=[TableCell(row=0, col=c, text=t) for c, t in enumerate(texts)])


def test_teds_on_tiny_tables() -> None:
    a = one_row("a", "b")  # table > tbody > tr > td td: 5 nodes
    assert teds(a, a) == 1.0
    assert teds(one_row("a", "c"), a) == pytest.approx(1 - 1 / 5)   # one cell renamed: text distance 1
    assert teds(one_row("a", "bc"), a) == pytest.approx(1 - 0.5 / 5)  # NL("bc", "b") = 1/2
    assert teds(one_row("a", "c"), a, structure_only=True) == 1.0
    two_rows = Table(cells=[*one_row("a", "b").cells, TableCell(row=1, col=0, text="c"), TableCell(row=1, col=1, text="d")])
    assert teds(two_rows, a) == pytest.approx(1 - 3 / 8)  # insert tr + 2 td into 5 nodes; the larger tree has 8
    spanned = Table(cells=[TableCell(row=0, col=0, col_span=2, text="a")])  # 4 nodes
    assert teds(spanned, one_row("a", "")) == pytest.approx(1 - 2 / 5)  # rename (span differs) + insert one td


def test_teds_reads_html_and_treats_th_as_a_header_cell() -> None:
    header = Table(cells=[TableCell(row=0, col=0, text="h", is_header=True), TableCell(row=1, col=0, text="v")])
    html = "<table><thead><tr><td>h</td></tr></thead><tbody><tr><td>v</td></tr></tbody></table>"
    assert teds(header, html) == 1.0
    no_sections = "<table><tr><td>h</td></tr><tr><td>v</td></tr></table>"  # 5 nodes vs 7: delete thead, tbody
    assert teds(header, no_sections) == pytest.approx(1 - 2 / 7)
    with pytest.raises(UsageError):
        teds("<p>no table</p>", html)


def test_zhang_shasha_classic_example() -> None:
    def n(tag: str, *children: TreeNode) -> TreeNode:
        return TreeNode(tag, children=list(children))

    # Zhang & Shasha (1989), figure 2: f(d(a c(b)) e) -> f(c(d(a b)) e) takes 2 edits
    t1 = n("f", n("d", n("a"), n("c", n("b"))), n("e"))
    t2 = n("f", n("c", n("d", n("a"), n("b"))), n("e"))
    assert tree_edit_distance(t1, t2, lambda x, y: float(x.tag != y.tag)) == 2
    assert tree_edit_distance(t1, t1, lambda x, y: float(x.tag != y.tag)) == 0
    assert tree_edit_distance(n("a"), n("b", n("c")), lambda x, y: float(x.tag != y.tag)) == 2


# multiple choice -------------------------------------------------------------------------------------------
def test_circular_variants_and_eval() -> None:
    variants = circular_variants(["w", "x", "y", "z"], 2)
    assert [v[0] for v in variants] == [["w", "x", "y", "z"], ["x", "y", "z", "w"], ["y", "z", "w", "x"],
                                        ["z", "w", "x", "y"]]
    assert all(choices[i] == "y" for choices, i in variants)
    assert circular_eval([[True] * 4, [True, False, True, True], [True, True]]) == pytest.approx(2 / 3)
    with pytest.raises(UsageError):
        circular_variants(["only"], 0)
    with pytest.raises(UsageError):
        circular_variants(["a", "b"], 2)


# ICDAR-2013 adjacency relations --------------------------------------------------------------------------------
def grid(rows: list[list[str]]) -> Table:
    return Table(cells=[TableCell(row=r, col=c, text=t) for r, row in enumerate(rows) for c, t in enumerate(row)])


def test_adjacency_relations_of_a_full_grid() -> None:
    # a b      horizontal: a-b, c-d; vertical: a-c, b-d
    # c d
    assert adjacency_relations(grid([["a", "b"], ["c", "d"]])) == {
        ("a", "b", "h"): 1, ("c", "d", "h"): 1, ("a", "c", "v"): 1, ("b", "d", "v"): 1}


def test_adjacency_skips_empty_cells_and_ignores_whitespace_and_case() -> None:
    # "Total  EU" | "" | "7"   -> one horizontal relation, across the empty cell
    # ""          | "" | "8"   -> 7 over 8; nothing under "Total EU" (the cell below is empty, then the table ends)
    relations = adjacency_relations(grid([["Total  EU", "", "7"], ["", "", "8"]]))
    assert relations == {("totaleu", "7", "h"): 1, ("7", "8", "v"): 1}


def test_adjacency_of_a_cell_spanning_rows_counts_each_neighbour_once() -> None:
    # A spans rows 0-1 in column 0; b over c in column 1: A-b, A-c (h), b-c (v)
    table = Table(cells=[TableCell(row=0, col=0, row_span=2, text="A"), TableCell(row=0, col=1, text="b"),
                         TableCell(row=1, col=1, text="c"), TableCell(row=2, col=0, col_span=2, text="d")])
    # and d (spanning both columns below) is under A once and under c once
    assert adjacency_relations(table) == {
        ("a", "b", "h"): 1, ("a", "c", "h"): 1, ("b", "c", "v"): 1, ("a", "d", "v"): 1, ("c", "d", "v"): 1}


def test_adjacency_scores_hand_computed() -> None:
    truth = grid([["x", "1", "2"], ["y", "3", "4"]])  # 4 horizontal + 3 vertical = 7 relations
    # the second row read as one cell "y 3 4" spanning the three columns: x-1, 1-2 (h), and x, 1 and 2 each
    # over "y34" (v) = 5 relations, of which the two horizontal ones are true
    merged = Table(cells=[*grid([["x", "1", "2"]]).cells, TableCell(row=1, col=0, col_span=3, text="y 3 4")])
    s = adjacency_scores(merged, truth)
    assert (s.correct, s.predicted, s.expected) == (2, 5, 7)
    assert s.precision == pytest.approx(2 / 5) and s.recall == pytest.approx(2 / 7)
    assert s.f1 == pytest.approx(2 * (2 / 5) * (2 / 7) / (2 / 5 + 2 / 7))  # 1/3


def test_adjacency_scores_pool_tables_in_any_order_and_count_duplicates_once_each() -> None:
    a, b = grid([["p", "q"]]), grid([["p", "q"], ["r", "s"]])
    # truth: p-q twice (one per table), r-s, p-r, q-s; predicted: one table b only
    s = adjacency_scores([b], [b, a])
    assert (s.correct, s.predicted, s.expected) == (4, 4, 5)
    assert adjacency_scores([a, b], [b, a]) == adjacency_scores([b, a], [a, b])
    assert adjacency_scores([], a) == AdjacencyScores(correct=0, predicted=0, expected=1)
    assert (AdjacencyScores(correct=1, predicted=2, expected=3) + AdjacencyScores(correct=1, predicted=1,
                                                                                    expected=1)).f1 == pytest.approx(
        2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))
