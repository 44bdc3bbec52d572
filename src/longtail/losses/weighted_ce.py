"""Re-weighted cross-entropy with weights ∝ n_j^(−p)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.rebalance.weights import inverse_power_weights
from longtail.registry import NonNegative, register_loss


@register_loss("weighted-ce")
class WeightedCrossEntropyLoss(ClassCountLoss):
    """Re-weighted CE (RW): w_j ∝ n_j^(−p), Σ_j w_j = C; L = Σ_i w_{y_i} CE_i / Σ_i w_{y_i}.

    p = 1 (default) is inverse class frequency, the LDAM paper's RW baseline (Cao et al. 2019 §4);
    p = 0.5 is the CDT paper's RW baseline (Ye et al. 2020 §5, weights N_c^(−γ)); p = 0 is plain CE.
    The weights are normalised to sum to C as in the LDAM-DRW reference code; the batch
    re-normalisation makes that scale irrelevant. Weights set by a schedule multiply these.
    """

    param_names = ("power",)

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, power: NonNegative = 1.0) -> None:
        super().__init__(class_counts)
        self.power = power
        self._refresh()

    def _refresh(self) -> None:
        weights = inverse_power_weights(self.class_counts.cpu(), self.power).to(torch.float32)
        self.register_buffer("own_weights", weights.to(self.class_counts.device), persistent=False)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weights = self.own_weights.to(logits.device)
        if self.class_weights is not None:
            weights = weights * self.class_weights.to(logits.device)
        return LF.weighted_mean(LF.cross_entropy(logits, targets), targets, weights)
