"""Evaluation metrics for document understanding, each as defined by the benchmark it comes from.

=======================  ===================================================================================
metric                   definition
=======================  ===================================================================================
[`box_iou`][docvlm.eval.metrics.box_iou]          intersection over union of two boxes in one space
[`detection_map`][docvlm.eval.metrics.detection_map]    COCO-style mean average precision over IoU thresholds ``0.50:0.05:0.95``: per class,
                         detections sorted by score (stable), each matched greedily to the unmatched truth box
                         of highest IoU at or above the threshold; precision made monotone and read at 101
                         recall points (``pycocotools`` ``COCOeval``)
[`mask_iou`][docvlm.eval.metrics.mask_iou]         intersection over union of two [`Mask`][docvlm.types.mask.Mask] foregrounds
[`point_accuracy`][docvlm.eval.metrics.point_accuracy]   share of points that fall inside their truth box (RefCOCO-style pointing)
[`anls`][docvlm.eval.metrics.anls]             Average Normalized Levenshtein Similarity (DocVQA): per question the best
                         ``1 - NL`` over the accepted answers, 0 where ``NL >= 0.5``
[`cer`][docvlm.eval.metrics.cer], [`wer`][docvlm.eval.metrics.wer] character / word error rate: edit distance over reference length, summed over a corpus
[`field_scores`][docvlm.eval.metrics.field_scores]     field-level precision, recall and F1 of an extraction, optionally requiring the
                         evidence box to overlap the truth box (IoU >= 0.5)
[`teds`][docvlm.eval.metrics.teds]             Tree-Edit-Distance-based Similarity of tables (PubTabNet), with or without cell text
[`adjacency_scores`][docvlm.eval.metrics.adjacency_scores] ICDAR-2013 table structure: precision, recall and F1 of the adjacency relations
                         between each non-empty cell and its nearest non-empty neighbour to the right and below
                         (empty cells skipped, text compared without whitespace or case), pooled over the tables given
[`circular_eval`][docvlm.eval.metrics.circular_eval]    MMBench CircularEval: a question counts only if answered right under every rotation
                         of its options
=======================  ===================================================================================

Everything here is pure Python and NumPy; edit distances use a bit-parallel algorithm (Myers 1999, in
Hyyrö's 2003 formulation), with Python integers as bit vectors of any length.
"""

from __future__ import annotations

import html.parser
import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from docvlm._strings import levenshtein
from docvlm.errors import UsageError
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import BoundingBox, Point
from docvlm.types.mask import Mask
from docvlm.types.table import Table, TableCell

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "AdjacencyScores",
    "DetectionScores",
    "FieldScores",
    "adjacency_relations",
    "adjacency_scores",
    "anls",
    "anls_score",
    "box_iou",
    "box_iou_matrix",
    "cer",
    "circular_eval",
    "circular_variants",
    "detection_map",
    "field_scores",
    "flatten_fields",
    "levenshtein",
    "mask_iou",
    "normalize_text",
    "point_accuracy",
    "teds",
    "tree_edit_distance",
    "values_match",
    "wer",
]

T = TypeVar("T", bound=Hashable)

#: IoU thresholds of COCO's mAP: 0.50, 0.55, ..., 0.95.
COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


# edit distance --------------------------------------------------------------------------------------------
def normalize_text(text: str, *, ignore_case: bool = False) -> str:
    """``text`` stripped, with every run of whitespace one space (and lower-cased with ``ignore_case``)."""
    out = " ".join(str(text).split())
    return out.lower() if ignore_case else out


def _rate(distances: Iterable[int], lengths: Iterable[int]) -> float:
    dist, total = sum(distances), sum(lengths)
    if total == 0:
        return 0.0 if dist == 0 else 1.0
    return dist / total


def _pairs(predictions: str | Sequence[str], references: str | Sequence[str]) -> list[tuple[str, str]]:
    if isinstance(predictions, str) != isinstance(references, str):
        raise UsageError("pass two strings or two sequences of strings")
    if isinstance(predictions, str):
        return [(predictions, str(references))]
    if len(predictions) != len(references):
        raise UsageError(f"{len(predictions)} predictions for {len(references)} references")
    return list(zip(predictions, references, strict=True))


def cer(predictions: str | Sequence[str], references: str | Sequence[str]) -> float:
    """Character error rate: the summed edit distances over the summed reference lengths (corpus-level).

    Texts are compared as given (normalize them first if wanted, e.g. with [`normalize_text`][docvlm.eval.metrics.normalize_text]). With
    empty references only, the rate is 0 when every prediction is empty too, else 1.

    >>> cer("abcd", "abce"), cer(["ab", "cd"], ["ab", "xd"])
    (0.25, 0.25)
    """
    pairs = _pairs(predictions, references)
    return _rate((levenshtein(p, r) for p, r in pairs), (len(r) for _, r in pairs))


def wer(predictions: str | Sequence[str], references: str | Sequence[str]) -> float:
    """Word error rate: [`cer`][docvlm.eval.metrics.cer] over whitespace-separated words instead of characters.

    >>> wer("the cat sat", "the cat sat down")
    0.25
    """
    pairs = [(p.split(), r.split()) for p, r in _pairs(predictions, references)]
    return _rate((levenshtein(p, r) for p, r in pairs), (len(r) for _, r in pairs))


def anls_score(prediction: str, answers: Sequence[str], *, threshold: float = 0.5) -> float:
    """ANLS of one question: the best ``1 - NL(prediction, answer)`` over the accepted answers.

    ``NL`` is the edit distance over the longer string's length, after both are lower-cased, stripped and
    their whitespace collapsed (as the DocVQA evaluator does); a similarity whose ``NL`` is at or above
    ``threshold`` counts 0.

    >>> anls_score("Total: 12", ["total: 12"]), anls_score("abcd", ["abce"]), anls_score("ab", ["ac"])
    (1.0, 0.75, 0.0)
    """
    if not answers:
        raise UsageError("ANLS needs at least one accepted answer per question")
    pred = normalize_text(prediction, ignore_case=True)
    best = 0.0
    for answer in answers:
        gold = normalize_text(answer, ignore_case=True)
        longest = max(len(pred), len(gold))
        nl = levenshtein(pred, gold) / longest if longest else 0.0
        best = max(best, 1.0 - nl if nl < threshold else 0.0)
    return best


def anls(predictions: Sequence[str], answers: Sequence[Sequence[str]], *, threshold: float = 0.5) -> float:
    """Mean [`anls_score`][docvlm.eval.metrics.anls_score] over questions (DocVQA's metric); 0 for no questions."""
    if len(predictions) != len(answers):
        raise UsageError(f"{len(predictions)} predictions for {len(answers)} questions")
    if not predictions:
        return 0.0
    return sum(anls_score(p, a, threshold=threshold) for p, a in zip(predictions, answers, strict=True)) / len(predictions)


# geometry -------------------------------------------------------------------------------------------------
def box_iou(a: BoundingBox, b: BoundingBox) -> float:
    """Intersection over union of two boxes in the same space, in ``[0, 1]``.

    Raises:
        UsageError: the boxes are in different spaces.
    """
    return a.iou(b)


def box_iou_matrix(a: Sequence[BoundingBox], b: Sequence[BoundingBox]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """IoU of every box of ``a`` (rows) with every box of ``b`` (columns), vectorized."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    if not a or not b:
        return out
    spaces = {x.space for x in (*a, *b)}
    if len(spaces) > 1:
        raise UsageError("all boxes must be in one space to compare them", hint="convert them with .to(space, frame)")
    pa = np.array([x.xyxy for x in a], dtype=np.float64)
    pb = np.array([x.xyxy for x in b], dtype=np.float64)
    x0 = np.maximum(pa[:, None, 0], pb[None, :, 0])
    y0 = np.maximum(pa[:, None, 1], pb[None, :, 1])
    x1 = np.minimum(pa[:, None, 2], pb[None, :, 2])
    y1 = np.minimum(pa[:, None, 3], pb[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (pa[:, 2] - pa[:, 0]) * (pa[:, 3] - pa[:, 1])
    area_b = (pb[:, 2] - pb[:, 0]) * (pb[:, 3] - pb[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    np.divide(inter, union, out=out, where=union > 0)
    return out


def mask_iou(a: Mask, b: Mask) -> float:
    """Intersection over union of two masks over the same image; 0 when both are empty.

    Raises:
        UsageError: the masks have different sizes.
    """
    return a.iou(b)


def point_accuracy(points: Sequence[Point | None], truths: Sequence[BoundingBox | Sequence[BoundingBox]]) -> float:
    """The share of points inside their truth box (or inside any of several accepted boxes).

    A missing point (``None``) counts as wrong. Points and boxes must share a space.

    >>> box = BoundingBox(x0=0, y0=0, x1=10, y1=10)
    >>> point_accuracy([Point(x=5, y=5), Point(x=20, y=5), None], [box, box, box])
    0.3333333333333333
    """
    if len(points) != len(truths):
        raise UsageError(f"{len(points)} points for {len(truths)} truth boxes")
    if not points:
        return 0.0
    hits = 0
    for p, truth in zip(points, truths, strict=True):
        boxes = [truth] if isinstance(truth, BoundingBox) else list(truth)
        hits += p is not None and any(p.within(b) for b in boxes)
    return hits / len(points)


# detection mAP --------------------------------------------------------------------------------------------
class DetectionScores(BaseModel):
    """Detection quality, COCO-style.

    Attributes:
        map: mean over classes and IoU thresholds of the average precision (COCO "AP").
        map50: the mean AP at IoU 0.5 (PASCAL VOC's metric).
        map75: the mean AP at IoU 0.75.
        per_class: AP of each class, averaged over the thresholds.
        n_true: truth boxes per class.
        n_predicted: detections per class.
    """

    model_config = ConfigDict(frozen=True)

    map: float
    map50: float
    map75: float
    per_class: dict[str, float] = Field(default_factory=dict)
    n_true: dict[str, int] = Field(default_factory=dict)
    n_predicted: dict[str, int] = Field(default_factory=dict)


def _ious(preds: Sequence[Detection], truths: Sequence[Detection], iou_type: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    if iou_type == "bbox":
        return box_iou_matrix([d.box for d in preds], [d.box for d in truths])
    out = np.zeros((len(preds), len(truths)))
    for i, p in enumerate(preds):
        for j, t in enumerate(truths):
            if p.mask is None or t.mask is None:
                raise UsageError("iou_type='segm' needs a mask on every detection and truth object")
            out[i, j] = p.mask.iou(t.mask)
    return out


def _average_precision(scored: list[tuple[float, int, bool]], n_true: int) -> float:
    """COCO's interpolated AP from (score, order, is_tp) of every detection of a class."""
    scored.sort(key=lambda s: (-s[0], s[1]))  # by score, stable in the given order
    tp = np.cumsum([s[2] for s in scored], dtype=np.float64)
    fp = np.cumsum([not s[2] for s in scored], dtype=np.float64)
    recall = tp / n_true
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    # the precision envelope: at each recall, the best precision at that recall or higher
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
    values = [float(precision[i]) if i < len(precision) else 0.0 for i in idx]
    return float(np.mean(values))


def detection_map(
    predictions: Sequence[Detections | Sequence[Detection]],
    truths: Sequence[Detections | Sequence[Detection]],
    *,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    iou_type: Literal["bbox", "segm"] = "bbox",
    max_detections: int = 100,
) -> DetectionScores:
    """COCO-style mean average precision of detections over a set of images.

    For each class and IoU threshold, the detections of all images are ranked by score (highest first; a
    detection without a score counts as 1.0, and ties keep the model's order). Within an image each detection,
    in that order, takes the unmatched truth box of that class with the highest IoU, if that IoU is at least
    the threshold; otherwise it is a false positive. Precision is made monotone and read at the 101 recall
    points ``0, 0.01, ..., 1``. A class with truth boxes but no detections has AP 0; classes without truth
    boxes are left out. Crowd regions are not modelled.

    Args:
        predictions: per image, the detections (only the ``max_detections`` best-scored count).
        truths: per image, the truth objects (scores ignored).
        iou_thresholds: default 0.50, 0.55, ..., 0.95.
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU; every object needs a mask).

    Raises:
        UsageError: different numbers of images, or boxes of one image in different spaces.
    """
    if len(predictions) != len(truths):
        raise UsageError(f"{len(predictions)} images of predictions for {len(truths)} images of truth")
    thresholds = [float(t) for t in iou_thresholds]
    if not thresholds or any(not 0 < t <= 1 for t in thresholds):
        raise UsageError("IoU thresholds must be in (0, 1]")
    classes = sorted({d.label for dets in truths for d in dets})
    scored: dict[tuple[str, float], list[tuple[float, int, bool]]] = {(c, t): [] for c in classes for t in thresholds}
    n_true = {c: 0 for c in classes}
    n_pred = {c: 0 for c in classes}
    order = 0
    for preds_i, truths_i in zip(predictions, truths, strict=True):
        ranked = sorted(enumerate(preds_i), key=lambda p: -(p[1].score if p[1].score is not None else 1.0))
        kept = [d for _, d in ranked[:max_detections]]
        for c in classes:
            ps = [d for d in kept if d.label == c]
            ts = [d for d in truths_i if d.label == c]
            n_true[c] += len(ts)
            n_pred[c] += len(ps)
            ious = _ious(ps, ts, iou_type)
            for t in thresholds:
                taken = [False] * len(ts)
                for i, p in enumerate(ps):
                    best, best_j = t - 1e-10, -1  # COCO: IoU >= threshold, matching the best unmatched truth
                    for j in range(len(ts)):
                        if not taken[j] and ious[i, j] >= best:
                            best, best_j = ious[i, j], j
                    if best_j >= 0:
                        taken[best_j] = True
                    scored[(c, t)].append((p.score if p.score is not None else 1.0, order + i, best_j >= 0))
            order += len(ps)
    per_threshold: dict[float, list[float]] = {t: [] for t in thresholds}
    per_class: dict[str, float] = {}
    for c in classes:
        aps = []
        for t in thresholds:
            ap = _average_precision(scored[(c, t)], n_true[c]) if scored[(c, t)] else 0.0
            aps.append(ap)
            per_threshold[t].append(ap)
        per_class[c] = float(np.mean(aps))

    def mean_at(t: float) -> float:
        vals = next((v for k, v in per_threshold.items() if math.isclose(k, t)), None)
        return float(np.mean(vals)) if vals else float("nan")

    return DetectionScores(
        map=float(np.mean(list(per_class.values()))) if classes else 0.0,
        map50=mean_at(0.5) if classes else 0.0,
        map75=mean_at(0.75) if classes else 0.0,
        per_class=per_class, n_true=n_true, n_predicted=n_pred,
    )


# field extraction -----------------------------------------------------------------------------------------
def flatten_fields(value: BaseModel | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by field path (``"total"``, ``"items[0].amount"``, as in [`FieldEvidence`][docvlm.types.answer.FieldEvidence])."""
    data: Any = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    out: dict[str, Any] = {}

    def walk(v: Any, path: str) -> None:
        if isinstance(v, BaseModel):
            v = v.model_dump(mode="json")
        if isinstance(v, Mapping):
            for k, sub in v.items():
                walk(sub, f"{path}.{k}" if path else str(k))
        elif isinstance(v, list | tuple):
            for i, sub in enumerate(v):
                walk(sub, f"{path}[{i}]")
        else:
            out[path] = v

    walk(data, prefix)
    return out


def values_match(predicted: Any, truth: Any, *, ignore_case: bool = False, tolerance: float = 0.005) -> bool:
    """Whether an extracted value equals the truth: numbers within ``tolerance``, anything else as normalized text.

    >>> values_match("12.50", 12.5), values_match(" ACME  Corp ", "ACME Corp"), values_match(None, "x")
    (True, True, False)
    """
    if predicted is None or truth is None:
        return predicted is None and truth is None
    numeric = (isinstance(truth, int | float) and not isinstance(truth, bool)) or \
        (isinstance(predicted, int | float) and not isinstance(predicted, bool))
    if numeric:
        try:
            return abs(float(predicted) - float(truth)) <= tolerance
        except (TypeError, ValueError):
            return False
    return normalize_text(str(predicted), ignore_case=ignore_case) == normalize_text(str(truth), ignore_case=ignore_case)


class _Counts(BaseModel):
    """Precision, recall and F1 from counts of correct, predicted and expected items."""

    correct: int = 0
    predicted: int = 0
    expected: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.expected if self.expected else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


class FieldScores(_Counts):
    """Field-level extraction scores; add them (``a + b``, `total`) to pool documents (micro average).

    A field is *predicted* when the extraction gives it a value (not ``None``), *expected* when the truth has
    a value, and *correct* when both hold and the values match (and, with ``min_iou``, the evidence box
    overlaps the truth box enough).

    Attributes:
        correct: fields predicted right.
        predicted: fields with a predicted value.
        expected: fields with a true value.
        matched: paths predicted right.
        wrong: paths predicted with a wrong value (or wrong evidence).
        missed: paths expected but not predicted.
        ious: ``(path, evidence IoU)`` of each field with a truth box and a predicted value (IoU 0 without a
            predicted box).
    """

    matched: list[str] = Field(default_factory=list)
    wrong: list[str] = Field(default_factory=list)
    missed: list[str] = Field(default_factory=list)
    ious: list[tuple[str, float]] = Field(default_factory=list)

    def __add__(self, other: FieldScores) -> FieldScores:
        return FieldScores(correct=self.correct + other.correct, predicted=self.predicted + other.predicted,
                           expected=self.expected + other.expected, matched=self.matched + other.matched, wrong=self.wrong + other.wrong,
                           missed=self.missed + other.missed, ious=self.ious + other.ious)

    @classmethod
    def total(cls, scores: Iterable[FieldScores]) -> FieldScores:
        out = cls()
        for s in scores:
            out = out + s
        return out


def field_scores(
    predicted: BaseModel | Mapping[str, Any],
    truth: BaseModel | Mapping[str, Any],
    *,
    predicted_boxes: Mapping[str, BoundingBox | None] | None = None,
    true_boxes: Mapping[str, BoundingBox | None] | None = None,
    min_iou: float | None = None,
    ignore_case: bool = False,
) -> FieldScores:
    """Field-level precision / recall / F1 of one extraction (see [`FieldScores`][docvlm.eval.metrics.FieldScores]).

    Args:
        predicted: the extracted object (a pydantic model or a mapping; nested values become paths).
        truth: the true values, same shape.
        predicted_boxes: evidence box per field path (e.g. ``{p: e.box for p, e in extraction.evidence.items()}``).
        true_boxes: truth box per field path.
        min_iou: when set, a correct value also needs its evidence box to overlap the truth box with at least
            this IoU (fields without a truth box are judged on the value alone).
        ignore_case: compare text case-insensitively.

    >>> s = field_scores({"a": "x", "b": "y", "c": None}, {"a": "x", "b": "z", "c": "w"})
    >>> (s.correct, s.predicted, s.expected), round(s.f1, 3)
    ((1, 2, 3), 0.4)
    """
    pred, gold = flatten_fields(predicted), flatten_fields(truth)
    pboxes, tboxes = predicted_boxes or {}, true_boxes or {}
    out = FieldScores()
    for path in dict.fromkeys([*gold, *pred]):
        p, t = pred.get(path), gold.get(path)
        has_p, has_t = p is not None, t is not None
        out.predicted += has_p
        out.expected += has_t
        pb, tb = pboxes.get(path), tboxes.get(path)
        iou = pb.iou(tb) if pb is not None and tb is not None and pb.space is tb.space else None
        if iou is not None or (tb is not None and has_p):
            out.ious.append((path, iou or 0.0))
        if has_p and has_t and values_match(p, t, ignore_case=ignore_case) and \
                (min_iou is None or tb is None or (iou is not None and iou >= min_iou)):
            out.correct += 1
            out.matched.append(path)
        elif has_p:
            out.wrong.append(path)
        elif has_t:
            out.missed.append(path)
    return out


# tree edit distance and TEDS ------------------------------------------------------------------------------
@dataclass
class TreeNode:
    tag: str
    colspan: int = 1
    rowspan: int = 1
    text: str = ""
    children: list[TreeNode] = field(default_factory=list)


@dataclass
class _Postorder:
    nodes: list[TreeNode]
    leftmost: list[int]
    keyroots: list[int]


def _postorder(root: TreeNode) -> _Postorder:
    nodes: list[TreeNode] = []
    leftmost: list[int] = []

    def walk(node: TreeNode) -> int:
        first = -1
        for child in node.children:
            lm = walk(child)
            if first < 0:
                first = lm
        nodes.append(node)
        idx = len(nodes) - 1
        leftmost.append(first if first >= 0 else idx)
        return leftmost[idx]

    # iterative depth would be nicer, but HTML tables are shallow (table / tbody / tr / td)
    walk(root)
    seen: dict[int, int] = {}
    for i, lm in enumerate(leftmost):
        seen[lm] = i  # the highest node with each leftmost leaf is a keyroot
    return _Postorder(nodes, leftmost, sorted(seen.values()))


def tree_edit_distance(a: TreeNode, b: TreeNode, rename: Callable[[TreeNode, TreeNode], float]) -> float:
    """Zhang-Shasha tree edit distance: deleting or inserting a node costs 1, renaming costs ``rename(x, y)``."""
    ta, tb = _postorder(a), _postorder(b)
    na, nb = len(ta.nodes), len(tb.nodes)
    la, lb = ta.leftmost, tb.leftmost
    dist = [[0.0] * nb for _ in range(na)]
    for i in ta.keyroots:
        for j in tb.keyroots:
            li, lj = la[i], lb[j]
            rows, cols = i - li + 2, j - lj + 2
            fd = [[0.0] * cols for _ in range(rows)]
            for x in range(1, rows):
                fd[x][0] = fd[x - 1][0] + 1
            for y in range(1, cols):
                fd[0][y] = fd[0][y - 1] + 1
            for x in range(1, rows):
                ix = li + x - 1
                row, prev = fd[x], fd[x - 1]
                for y in range(1, cols):
                    jy = lj + y - 1
                    if la[ix] == li and lb[jy] == lj:
                        cost = min(prev[y] + 1, row[y - 1] + 1, prev[y - 1] + rename(ta.nodes[ix], tb.nodes[jy]))
                        row[y] = cost
                        dist[ix][jy] = cost
                    else:
                        px, py = la[ix] - li, lb[jy] - lj
                        row[y] = min(prev[y] + 1, row[y - 1] + 1, fd[px][py] + dist[ix][jy])
    return dist[na - 1][nb - 1]


class _TableHTML(html.parser.HTMLParser):
    """The ``<table>`` tree of an HTML string: table sections, rows and cells with spans and text."""

    _STRUCTURE: ClassVar[set[str]] = {"table", "thead", "tbody", "tfoot", "tr", "td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: TreeNode | None = None
        self.stack: list[TreeNode] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self._STRUCTURE:
            return
        if tag == "table":
            if self.root is None:
                self.root = TreeNode("table")
                self.stack = [self.root]
            return
        if not self.stack or self.stack[-1].tag in ("td", "th"):
            return  # a nested table's parts, or markup outside the table
        spans = {k: v for k, v in attrs}

        def span(name: str) -> int:
            try:
                return max(1, int(spans.get(name) or 1))
            except ValueError:
                return 1

        node = TreeNode("td" if tag == "th" else tag, colspan=span("colspan"), rowspan=span("rowspan"))
        self.stack[-1].children.append(node)
        self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self._STRUCTURE or tag == "table":
            if tag == "table":
                self.stack = []
            return
        want = "td" if tag == "th" else tag
        for k in range(len(self.stack) - 1, 0, -1):
            if self.stack[k].tag == want:
                del self.stack[k:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1].tag == "td":
            self.stack[-1].text += data


def _table_tree(table: Table | str) -> TreeNode:
    source = table.to_html() if isinstance(table, Table) else table
    if not isinstance(source, str):
        raise UsageError(f"TEDS compares Tables or HTML strings, got {type(table).__name__}")
    parser = _TableHTML()
    parser.feed(source)
    parser.close()
    if parser.root is None:
        raise UsageError("no <table> in the HTML given to TEDS")
    return parser.root


def _count(node: TreeNode) -> int:
    return 1 + sum(_count(c) for c in node.children)


def teds(predicted: Table | str, truth: Table | str, *, structure_only: bool = False) -> float:
    """Tree-Edit-Distance-based Similarity of two tables: ``1 - TED / max(nodes)`` (Zhong et al., PubTabNet).

    Each table is the tree of its HTML (``table`` > ``thead`` / ``tbody`` > ``tr`` > ``td``; ``<th>`` counts as
    ``td``, as header-ness is the ``thead`` section; captions and markup inside cells are ignored). Deleting or
    inserting a node costs 1; renaming costs 1 when the tags or spans differ, else for cells the normalized
    edit distance of their texts (0 with ``structure_only``), else 0 — PubTabNet's reference definition.

    Args:
        predicted: a [`Table`][docvlm.types.table.Table] or an HTML string.
        truth: the same.
        structure_only: ignore cell text (TEDS-S).

    >>> teds("<table><tr><td>a</td><td>b</td></tr></table>", "<table><tr><td>a</td><td>c</td></tr></table>")
    0.75
    """
    a, b = _table_tree(predicted), _table_tree(truth)

    def rename(x: TreeNode, y: TreeNode) -> float:
        if x.tag != y.tag or x.colspan != y.colspan or x.rowspan != y.rowspan:
            return 1.0
        if x.tag == "td" and not structure_only:
            s, t = normalize_text(x.text), normalize_text(y.text)
            if s or t:
                return levenshtein(s, t) / max(len(s), len(t))
        return 0.0

    n = max(_count(a), _count(b))
    return 1.0 - tree_edit_distance(a, b, rename) / n


# ICDAR-2013 adjacency relations -------------------------------------------------------------------------
def _adjacency_text(text: str) -> str:
    return "".join(str(text).split()).casefold()


def adjacency_relations(table: Table) -> Counter[tuple[str, str, str]]:
    """The adjacency relations of a table (ICDAR-2013, Göbel et al.), as a multiset of ``(text, text, direction)``.

    Each non-empty cell relates to its nearest non-empty neighbour to the right (``"h"``) in every row it covers,
    and below (``"v"``) in every column it covers; empty cells in between are skipped, and a pair counts once
    however many rows or columns it shares. Texts are compared without whitespace and case (annotators retype
    text: ``Hungary`` printed, ``hungary`` annotated).

    >>> t = Table(cells=[TableCell(row=0, col=0, text="a"), TableCell(row=0, col=2, text="b c"),
    ...                  TableCell(row=1, col=0, text="d", col_span=2)])
    >>> sorted(adjacency_relations(t).items())
    [(('a', 'bc', 'h'), 1), (('a', 'd', 'v'), 1)]
    """
    slots: list[list[TableCell | None]] = [[None] * table.n_cols for _ in range(table.n_rows)]
    for cell in table.cells:
        for r in range(cell.row, cell.row + cell.row_span):
            slots[r][cell.col:cell.col + cell.col_span] = [cell] * cell.col_span
    pairs: set[tuple[int, int, str]] = set()
    ids = {id(c): k for k, c in enumerate(table.cells)}

    def first(cells: Iterable[TableCell | None], own: TableCell) -> TableCell | None:
        for other in cells:
            if other is not None and other is not own and _adjacency_text(other.text):
                return other
        return None

    for cell in table.cells:
        if not _adjacency_text(cell.text):
            continue
        for r in range(cell.row, cell.row + cell.row_span):
            right = first(slots[r][cell.col + cell.col_span:], cell)
            if right is not None:
                pairs.add((ids[id(cell)], ids[id(right)], "h"))
        for c in range(cell.col, cell.col + cell.col_span):
            below = first((slots[r][c] for r in range(cell.row + cell.row_span, table.n_rows)), cell)
            if below is not None:
                pairs.add((ids[id(cell)], ids[id(below)], "v"))
    return Counter((_adjacency_text(table.cells[a].text), _adjacency_text(table.cells[b].text), d) for a, b, d in pairs)


class AdjacencyScores(_Counts):
    """Counts behind the ICDAR-2013 adjacency-relation precision, recall and F1; add them up to pool documents.

    Attributes:
        correct: predicted relations that are also true (as a multiset).
        predicted: relations in the prediction.
        expected: relations in the truth.
    """

    model_config = ConfigDict(frozen=True)

    def __add__(self, other: AdjacencyScores) -> AdjacencyScores:
        return AdjacencyScores(correct=self.correct + other.correct, predicted=self.predicted + other.predicted,
                               expected=self.expected + other.expected)


def adjacency_scores(predicted: Table | Sequence[Table], truth: Table | Sequence[Table]) -> AdjacencyScores:
    """ICDAR-2013 structure scores: the adjacency relations (`adjacency_relations`) of the predicted tables
    against those of the true tables, each side pooled over its tables (so a document is scored whole, whatever
    the tables' order or split).

    >>> truth = Table(cells=[TableCell(row=0, col=0, text="a"), TableCell(row=0, col=1, text="b"),
    ...                      TableCell(row=1, col=0, text="c"), TableCell(row=1, col=1, text="d")])
    >>> merged = Table(cells=[TableCell(row=0, col=0, text="a b"), TableCell(row=1, col=0, text="c"),
    ...                       TableCell(row=1, col=1, text="d")])
    >>> s = adjacency_scores(merged, truth)
    >>> (s.correct, s.predicted, s.expected), round(s.f1, 3)
    ((1, 2, 4), 0.333)
    """
    def pooled(tables: Table | Sequence[Table]) -> Counter[tuple[str, str, str]]:
        out: Counter[tuple[str, str, str]] = Counter()
        for t in [tables] if isinstance(tables, Table) else tables:
            out += adjacency_relations(t)
        return out

    p, t = pooled(predicted), pooled(truth)
    return AdjacencyScores(correct=sum((p & t).values()), predicted=sum(p.values()), expected=sum(t.values()))


# multiple choice ------------------------------------------------------------------------------------------
def circular_variants(choices: Sequence[str], answer: int) -> list[tuple[list[str], int]]:
    """The rotations CircularEval asks: ``len(choices)`` orderings, each with the index of the right answer.

    >>> circular_variants(["x", "y", "z"], 0)
    [(['x', 'y', 'z'], 0), (['y', 'z', 'x'], 2), (['z', 'x', 'y'], 1)]
    """
    n = len(choices)
    if n < 2:
        raise UsageError(f"a multiple-choice question needs at least 2 choices, got {n}")
    if not 0 <= answer < n:
        raise UsageError(f"answer index {answer} is outside the {n} choices")
    return [([*choices[k:], *choices[:k]], (answer - k) % n) for k in range(n)]


def circular_eval(results: Sequence[Sequence[bool]]) -> float:
    """CircularEval accuracy: the share of questions answered right under *every* rotation of their choices.

    Args:
        results: per question, whether each rotation ([`circular_variants`][docvlm.eval.metrics.circular_variants]) was answered right.

    >>> circular_eval([[True, True, True], [True, False, True]])
    0.5
    """
    if not results:
        return 0.0
    if any(len(r) == 0 for r in results):
        raise UsageError("every question needs at least one answered rotation")
    return sum(all(r) for r in results) / len(results)
