"""Class-balanced loss of Cui et al. (CVPR 2019) with softmax, sigmoid or focal base."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.rebalance.weights import effective_number_weights
from longtail.registry import Fraction, NonNegative, register_loss


@register_loss("class-balanced")
class ClassBalancedLoss(ClassCountLoss):
    """Class-balanced loss (Cui et al. 2019): w_j ∝ (1 − β)/(1 − β^{n_j}) times a softmax, sigmoid or focal loss.

    Effective number E_j = (1 − β^{n_j})/(1 − β); w_j ∝ 1/E_j, normalised to Σ_j w_j = C;
    β = 0.9999 by default (β = 0: uniform, β → 1: inverse frequency). Per-example base losses,
    as in Cui et al.'s equations 5–7:

    - ``base="softmax"`` (default): ℓ_i = −log softmax(z_i)_{y_i}.
    - ``base="sigmoid"``: one-vs-all sigmoid CE over the one-hot target, summed over classes,
      ℓ_i = Σ_j −log σ(z^t_ij) with z^t_ij = z_ij if j = y_i else −z_ij.
    - ``base="focal"``: sigmoid focal loss summed over classes,
      ℓ_i = Σ_j (1 − p^t_ij)^γ · (−log p^t_ij), p^t_ij = σ(z^t_ij); the class weight w_{y_i}
      multiplies the whole focal term (CB-Focal). ``gamma`` (default 1.0) only matters here.

    Reduction: Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}, the toolkit-wide convention. Cui et al.'s code divides
    the weighted sum by the batch size instead (for the sigmoid base by batch size × C), which
    differs from this by the batch's mean weight (a per-batch gradient scale). Cui et al. also
    initialise the last-layer bias to −log((1 − π)/π), π = 0.1, for the sigmoid/focal bases — that
    is a model choice, not part of this loss. Weights set by a schedule multiply w.
    """

    param_names = ("beta", "base", "gamma")

    def __init__(
        self,
        class_counts: Sequence[float] | torch.Tensor,
        beta: Fraction = 0.9999,
        base: Literal["softmax", "sigmoid", "focal"] = "softmax",
        gamma: NonNegative = 1.0,
    ) -> None:
        super().__init__(class_counts)
        self.beta = beta
        self.base = base
        self.gamma = gamma
        self._refresh()

    def _refresh(self) -> None:
        weights = effective_number_weights(self.class_counts.cpu(), self.beta).to(torch.float32)
        self.register_buffer("own_weights", weights.to(self.class_counts.device), persistent=False)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.base == "softmax":
            per_example = LF.cross_entropy(logits, targets)
        elif self.base == "sigmoid":
            per_example = LF.sigmoid_cross_entropy(logits, targets)
        else:
            per_example = LF.sigmoid_focal(logits, targets, self.gamma)
        weights = self.own_weights.to(logits.device)
        if self.class_weights is not None:
            weights = weights * self.class_weights.to(logits.device)
        return LF.weighted_mean(per_example, targets, weights)
