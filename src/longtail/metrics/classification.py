"""Classification metrics from a confusion matrix: top-1/top-5, per-class and shot-group accuracy.

The one place metrics are computed (training evaluation, ``longtail eval``, post-hoc tuning,
analysis). Arguments always come in the order ``(targets, predictions)``, as in scikit-learn.

Everything is computed from integer counts, so sharded evaluation is exact: each rank counts its
own (disjoint, unpadded) part of the test set and the counts are summed (SPEC §6).

- top-k accuracy: fraction of test examples whose label is among the k largest logits;
- per-class accuracy of class c: C[c, c] / Σ_j C[c, j] (recall), ``None`` if class c has no test
  examples;
- balanced accuracy: mean of the per-class accuracies (= top-1 on a balanced test set), balanced
  error = 1 − balanced accuracy;
- shot groups (LDAM / CDT papers): many-shot classes have more than ``many_threshold`` training
  examples, few-shot classes fewer than ``few_threshold``, medium-shot the rest; a group's accuracy
  is the mean per-class accuracy of its classes, reported as ``None`` with ``count`` 0 when the
  group is empty (never NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """int64 [C, C] counts M[c, c'] = |{i : y_i = c, ŷ_i = c'}| (rows true class, columns predicted)."""
    index = targets.reshape(-1).to(torch.int64) * num_classes + predictions.reshape(-1).to(torch.int64)
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Number of rows whose target is among the ``min(k, C)`` largest logits (int64 scalar tensor)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == targets.unsqueeze(1)).any(dim=1).sum()


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall of each class from a confusion matrix; ``None`` for a class without test examples."""
    confusion = confusion.to(torch.float64)
    totals = confusion.sum(dim=1)
    correct = confusion.diagonal()
    return [None if t == 0 else float(c / t) for c, t in zip(correct.tolist(), totals.tolist())]


def balanced_accuracy(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int | None = None) -> float:
    """Mean over the classes present in ``targets`` of the per-class accuracy (recall)."""
    targets, predictions = targets.long().cpu(), predictions.long().cpu()
    if num_classes is None:
        num_classes = int(max(int(targets.max()), int(predictions.max()))) + 1
    measured = [a for a in per_class_accuracy(confusion_matrix(targets, predictions, num_classes)) if a is not None]
    return sum(measured) / len(measured)


def shot_groups(class_counts: Sequence[int], many_threshold: int = 100, few_threshold: int = 20) -> dict[str, list[int]]:
    """Classes by training count: many (n > many_threshold), few (n < few_threshold), medium (rest)."""
    groups: dict[str, list[int]] = {"many": [], "medium": [], "few": []}
    for c, n in enumerate(class_counts):
        if n > many_threshold:
            groups["many"].append(c)
        elif n < few_threshold:
            groups["few"].append(c)
        else:
            groups["medium"].append(c)
    return groups


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def group_accuracies(per_class: Sequence[float | None], groups: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    """Mean per-class accuracy of each group: ``{"many": {"accuracy": a|None, "count": k, "classes": [...]}}``.

    Classes without test examples are left out of the mean (``count`` is the number of classes in
    the group; ``accuracy`` is ``None`` when none of them could be measured).
    """
    out = {}
    for name, classes in groups.items():
        measured = [per_class[c] for c in classes if per_class[c] is not None]
        out[name] = {"accuracy": _mean(measured), "count": len(classes), "classes": list(classes)}  # type: ignore[arg-type]
    return out


def classification_report(
    confusion: torch.Tensor,
    top5_correct: int,
    class_counts: Sequence[int],
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> dict[str, Any]:
    """All reported numbers from summed counts: top1, top5, balanced accuracy/error, per-class, groups."""
    confusion = confusion.to("cpu", torch.int64)
    total = int(confusion.sum())
    correct = int(confusion.diagonal().sum())
    per_class = per_class_accuracy(confusion)
    balanced = _mean([a for a in per_class if a is not None])
    return {
        "top1": correct / total if total else None,
        "top5": int(top5_correct) / total if total else None,
        "balanced_accuracy": balanced,
        "balanced_error": None if balanced is None else 1.0 - balanced,
        "per_class": per_class,
        "groups": group_accuracies(per_class, shot_groups(class_counts, many_threshold, few_threshold)),
        "num_test": total,
    }


class EvalAccumulator:
    """Running counts of one evaluation pass (kept on the device; no host sync until :meth:`report`).

    ``update(logits, targets)`` adds a batch; ``all_reduce()`` sums the counts over distributed
    ranks (exact, since the shards are disjoint and unpadded).
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.top5 = torch.zeros((), dtype=torch.int64, device=device)

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        predictions = logits.argmax(dim=1)
        self.confusion += confusion_matrix(targets, predictions, self.num_classes)
        self.top5 += topk_correct(logits, targets, 5)

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.confusion)
            dist.all_reduce(self.top5)

    def report(self, class_counts: Sequence[int], many_threshold: int = 100, few_threshold: int = 20) -> dict[str, Any]:
        return classification_report(self.confusion, int(self.top5), class_counts, many_threshold, few_threshold)
