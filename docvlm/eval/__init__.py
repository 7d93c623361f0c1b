"""Evaluation: metrics, dataset loaders and the runner behind ``dv.evaluate`` and ``docvlm eval``.

>>> from docvlm.eval import anls, teds
>>> anls(["12.50"], [["12.50", "$12.50"]])
1.0
"""

from docvlm.eval.datasets import (
    ChoiceSample,
    Dataset,
    DatasetError,
    DetectionSample,
    FieldsSample,
    QASample,
    SkippedRecord,
    TableSample,
    TrueField,
    load_dataset,
    synthetic_dataset,
    table_from_html,
)
from docvlm.eval.metrics import (
    AdjacencyScores,
    DetectionScores,
    FieldScores,
    adjacency_scores,
    anls,
    anls_score,
    box_iou,
    cer,
    circular_eval,
    circular_variants,
    detection_map,
    field_scores,
    levenshtein,
    mask_iou,
    point_accuracy,
    teds,
    values_match,
    wer,
)
from docvlm.eval.runner import TASKS, EvalReport, SampleResult, evaluate

__all__ = [
    "TASKS",
    "AdjacencyScores",
    "ChoiceSample",
    "Dataset",
    "DatasetError",
    "DetectionSample",
    "DetectionScores",
    "EvalReport",
    "FieldScores",
    "FieldsSample",
    "QASample",
    "SampleResult",
    "SkippedRecord",
    "TableSample",
    "TrueField",
    "adjacency_scores",
    "anls",
    "anls_score",
    "box_iou",
    "cer",
    "circular_eval",
    "circular_variants",
    "detection_map",
    "evaluate",
    "field_scores",
    "levenshtein",
    "load_dataset",
    "mask_iou",
    "point_accuracy",
    "synthetic_dataset",
    "table_from_html",
    "teds",
    "values_match",
    "wer",
]
