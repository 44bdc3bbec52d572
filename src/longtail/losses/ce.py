"""Plain cross-entropy (ERM)."""

from __future__ import annotations

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import register_loss


@register_loss("ce")
class CrossEntropyLoss(ClassCountLoss):
    """Cross-entropy (ERM): ℓ_i = −log softmax(z_i)_{y_i}; with class weights Σ w_{y_i} ℓ_i / Σ w_{y_i}.

    The ERM baseline of both papers (Cao et al. 2019; Ye et al. 2020). The class counts are not
    used by the formula; they fix the number of classes and let a schedule (RW, DRW) set weights.
    """

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return LF.weighted_mean(LF.cross_entropy(logits, targets), targets, self._weights_on(logits.device))
