"""Calibration of predicted probabilities: ECE, NLL, Brier score, reliability bins (SPEC §10).

With p = softmax(z) the predicted distribution of an example with label y, confidence = max_c p_c and
ŷ = argmax_c p_c:

- **ECE** (Guo et al., ICML 2017; Naeini et al., 2015) with B = 15 equal-width bins
  I_b = ((b − 1)/B, b/B] on [0, 1] (a confidence of exactly b/B falls in bin b):
  ECE = Σ_b (|I_b| / N) · |acc(I_b) − conf(I_b)|, acc = fraction correct, conf = mean confidence;
- **NLL** = mean over examples of −log p_y (computed with ``log_softmax``, so it stays finite);
- **Brier** = mean over examples of Σ_c (p_c − 1[c = y])² (the multi-class sum, range [0, 2]).

Per shot group (many / medium / few, :func:`longtail.metrics.shot_groups`) the same numbers over the
test examples whose *label* is in the group. Everything is computed from per-class sums
(:class:`CalibrationAccumulator`): per label class c and bin b the count, the summed confidence and
the number correct, and per class the summed NLL and Brier terms. Those sums add over batches and
over distributed ranks, so sharded evaluation gives the numbers of the whole split, and any group of
classes is a sum over its rows. Sums are float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

NUM_BINS = 15


def bin_edges(num_bins: int = NUM_BINS) -> torch.Tensor:
    """float64 [B + 1] edges 0, 1/B, …, 1 of the equal-width confidence bins."""
    return torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64)


def confidence_bins(confidences: torch.Tensor, num_bins: int = NUM_BINS) -> torch.Tensor:
    """int64 bin index of each confidence: bin b (0-based) holds (b/B, (b + 1)/B]; 0 goes to bin 0."""
    inner = bin_edges(num_bins)[1:-1].to(confidences.device)
    return torch.bucketize(confidences.to(torch.float64), inner, right=False)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """softmax in float64."""
    return torch.softmax(logits.to(torch.float64), dim=1)


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, num_bins: int = NUM_BINS) -> float:
    """ECE of softmax(``logits``) against ``labels`` with ``num_bins`` equal-width bins."""
    return ece_from_bins(*_bin_sums(logits, labels, num_bins))


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean −log softmax(z)_y (float64)."""
    log_p = torch.log_softmax(logits.to(torch.float64), dim=1)
    return float(-log_p.gather(1, labels.long().view(-1, 1)).mean())


def brier_score(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean Σ_c (p_c − 1[c = y])² of p = softmax(``logits``) (float64)."""
    p = probabilities(logits)
    onehot = torch.nn.functional.one_hot(labels.long(), p.shape[1]).to(p)
    return float(((p - onehot) ** 2).sum(dim=1).mean())


def _bin_sums(logits: torch.Tensor, labels: torch.Tensor, num_bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = probabilities(logits)
    confidence, predicted = p.max(dim=1)
    correct = (predicted == labels.to(predicted.device)).to(torch.float64)
    index = confidence_bins(confidence, num_bins)
    count = torch.zeros(num_bins, dtype=torch.float64, device=p.device).index_add_(0, index, torch.ones_like(confidence))
    conf_sum = torch.zeros_like(count).index_add_(0, index, confidence)
    correct_sum = torch.zeros_like(count).index_add_(0, index, correct)
    return count, conf_sum, correct_sum


def ece_from_bins(count: torch.Tensor, conf_sum: torch.Tensor, correct_sum: torch.Tensor) -> float:
    """Σ_b |I_b|/N · |acc_b − conf_b| = Σ_b |correct_b − conf_sum_b| / N from the per-bin sums."""
    total = float(count.sum())
    if total == 0:
        return float("nan")
    return float((correct_sum - conf_sum).abs().sum() / total)


class CalibrationAccumulator:
    """Per-class sums for calibration over batches (and ranks): ``update(logits, labels)``, then
    :meth:`report` (overall and per shot group) or :meth:`summary` for any set of classes.

    Held on ``device`` (no host sync per batch): ``bins`` float64 [C, B, 3] = (count, Σ confidence,
    Σ correct) of the examples of label c in bin b; ``nll`` / ``brier`` float64 [C] = Σ −log p_y and
    Σ_c' (p_c' − 1[c' = y])² over the examples of label c.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", num_bins: int = NUM_BINS) -> None:
        self.num_classes, self.num_bins = num_classes, num_bins
        self.bins = torch.zeros(num_classes, num_bins, 3, dtype=torch.float64, device=device)
        self.nll = torch.zeros(num_classes, dtype=torch.float64, device=device)
        self.brier = torch.zeros(num_classes, dtype=torch.float64, device=device)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        z = logits.to(torch.float64)
        labels = labels.long().to(z.device)
        log_p = torch.log_softmax(z, dim=1)
        p = log_p.exp()
        confidence, predicted = p.max(dim=1)
        correct = (predicted == labels).to(torch.float64)
        onehot = torch.nn.functional.one_hot(labels, self.num_classes).to(p)
        cell = labels * self.num_bins + confidence_bins(confidence, self.num_bins)
        values = torch.stack([torch.ones_like(confidence), confidence, correct], dim=1)
        self.bins.view(-1, 3).index_add_(0, cell, values)
        self.nll.index_add_(0, labels, -log_p.gather(1, labels.view(-1, 1)).squeeze(1))
        self.brier.index_add_(0, labels, ((p - onehot) ** 2).sum(dim=1))

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            for tensor in (self.bins, self.nll, self.brier):
                dist.all_reduce(tensor)

    def summary(self, classes: Sequence[int] | None = None) -> dict[str, Any]:
        """``{"ece", "nll", "brier", "num_examples", "bins": {"count", "confidence", "accuracy"}}`` over
        the examples whose label is in ``classes`` (all when ``None``); ``None`` values when there are none.
        ``bins`` holds per-bin counts, mean confidence and accuracy (``None`` for an empty bin): the
        reliability diagram."""
        index = torch.arange(self.num_classes) if classes is None else torch.as_tensor(list(classes), dtype=torch.int64)
        index = index.to(self.bins.device)
        bins = self.bins.index_select(0, index).sum(dim=0).cpu()
        count, conf_sum, correct_sum = bins.unbind(dim=1)
        total = float(count.sum())
        nll = float(self.nll.index_select(0, index).sum()) if total else None
        brier = float(self.brier.index_select(0, index).sum()) if total else None
        return {
            "ece": ece_from_bins(count, conf_sum, correct_sum) if total else None,
            "nll": nll / total if nll is not None else None,
            "brier": brier / total if brier is not None else None,
            "num_examples": int(total),
            "bins": {
                "count": [int(n) for n in count.tolist()],
                "confidence": [s / n if n else None for s, n in zip(conf_sum.tolist(), count.tolist())],
                "accuracy": [s / n if n else None for s, n in zip(correct_sum.tolist(), count.tolist())],
            },
        }

    def report(self, groups: dict[str, list[int]]) -> dict[str, Any]:
        """``{"num_bins", "overall": summary, "groups": {name: summary}}`` for shot ``groups``."""
        return {
            "num_bins": self.num_bins,
            "overall": self.summary(),
            "groups": {name: self.summary(classes) for name, classes in groups.items()},
        }


def calibration_report(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_counts: Sequence[int],
    many_threshold: int = 100,
    few_threshold: int = 20,
    num_bins: int = NUM_BINS,
) -> dict[str, Any]:
    """ECE, NLL, Brier and reliability bins of softmax(``logits``), overall and per shot group
    (groups by the training ``class_counts``, as :func:`longtail.metrics.shot_groups`)."""
    from longtail.metrics.classification import shot_groups

    accumulator = CalibrationAccumulator(len(class_counts), logits.device, num_bins)
    accumulator.update(logits, labels)
    return accumulator.report(shot_groups(class_counts, many_threshold, few_threshold))
