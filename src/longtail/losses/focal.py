"""Focal loss (Lin et al. 2017), softmax form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import NonNegative, register_loss


@register_loss("focal")
class FocalLoss(ClassCountLoss):
    """Focal loss: FL_i = (1 − p_t)^γ · CE_i with p_t the softmax probability of the target (Lin et al. 2017).

    ``variant="paper"`` (default): p_t = softmax(z_i)_{y_i} from the unweighted logits and class
    weights enter as Σ_i w_{y_i} FL_i / Σ_i w_{y_i}, like every other loss here.
    ``variant="reference-code"`` (LDAM-DRW code, used for the LDAM paper's Focal / CB-Focal rows):
    c_i = w_{y_i} · CE_i, p = e^{−c_i}, L = mean_i (1 − p)^γ · c_i — p_t from the class-weighted CE
    and a plain mean. Without class weights the two are identical. γ = 1.0 by default (the
    reference code's setting); γ = 0 is plain CE.
    """

    param_names = ("gamma", "variant")

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, gamma: NonNegative = 1.0,
        variant: Literal["paper", "reference-code"] = "paper",
    ) -> None:
        super().__init__(class_counts)
        self.gamma = gamma
        self.variant = variant
        self._refresh()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weights = self._weights_on(logits.device)
        if self.variant == "reference-code":
            return LF.focal_reference_code(logits, targets, self.gamma, weights)
        return LF.weighted_mean(LF.focal(logits, targets, self.gamma), targets, weights)
