"""Metrics: confusion matrix, top-k, per-class accuracy, balanced accuracy, many/medium/few groups."""

from longtail.metrics.classification import (
    EvalAccumulator,
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    group_accuracies,
    per_class_accuracy,
    shot_groups,
    topk_correct,
)

__all__ = [
    "EvalAccumulator",
    "balanced_accuracy",
    "classification_report",
    "confusion_matrix",
    "group_accuracies",
    "per_class_accuracy",
    "shot_groups",
    "topk_correct",
]
