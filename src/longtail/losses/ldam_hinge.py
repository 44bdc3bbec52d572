"""LDAM with the multi-class hinge loss (LDAM-HG, Cao et al. 2019, eq. 10)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.ldam import LDAMLoss
from longtail.registry import NonNegative, Positive, register_loss


@register_loss("ldam-hinge")
class LDAMHingeLoss(LDAMLoss):
    """LDAM-HG: ℓ_i = s · max(max_{j≠y} z_j − z_y + Δ_y, 0), Δ_j = C'/n_j^(1/4), max_j Δ_j = max_m.

    Cao et al. 2019, eq. 10–11. The paper introduces the logit normalisation with this loss ("we
    normalise the logits [...] and then scale the logits by a constant s = 10"), so it expects
    cosine logits from a normed-linear head (``requires_normed_head = True``) and the margin is
    on the cosine scale, as in the LDAM CE loss: s · z_j − s · (z_y − Δ_y) = s · (z_j − z_y + Δ_y).
    The hinge is positively homogeneous, so ``s`` (default 10, the paper) only multiplies the
    loss and its gradient. Not a cross-entropy: with ``max_m=0, s=1`` it is the plain
    Crammer–Singer multi-class hinge. Class weights enter as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}.
    """

    # Same margins and parameters as LDAM (see LDAMLoss); only the default s and the loss differ.
    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, max_m: NonNegative = 0.5, s: Positive = 10.0
    ) -> None:
        super().__init__(class_counts, max_m=max_m, s=s)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        per_example = self.s * LF.multiclass_hinge(logits, targets, self.margins.to(logits.device))
        return LF.weighted_mean(per_example, targets, self._weights_on(logits.device))
