"""Cross-entropy with one margin for every class (the M-DRW ablation of the LDAM paper)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import register_loss


@register_loss("uniform-margin")
class UniformMarginLoss(ClassCountLoss):
    """Uniform-margin CE: L = CE(s · (z − m e_y), y) with one constant margin m for all classes.

    The M-DRW ablation of Cao et al. 2019 (§4.2: "the Δ_j in equation (13) is chosen to be a tuned
    constant that does not depend on the class j", after the large-margin cosine loss [53]).
    Expects cosine logits (``requires_normed_head = True``). Defaults ``margin=0.5`` (LDAM's
    largest margin on CIFAR; tune it) and ``s=30`` (as LDAM's reference code). ``margin=0, s=1`` is
    plain CE. Class weights (DRW) enter as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}.
    """

    requires_normed_head = True
    param_names = ("margin", "s")

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, margin: float = 0.5, s: float = 30.0
    ) -> None:
        super().__init__(class_counts)
        self.margin = margin
        self.s = s
        self._refresh()

    def _refresh(self) -> None:
        self.margin = self._float_param(self.margin, "margin")
        self.s = self._float_param(self.s, "s", strict=True)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        margins = torch.full((self.num_classes,), self.margin, dtype=logits.dtype, device=logits.device)
        per_example = LF.cross_entropy(self.s * LF.subtract_target_margin(logits, targets, margins), targets)
        return LF.weighted_mean(per_example, targets, self._weights_on(logits.device))
