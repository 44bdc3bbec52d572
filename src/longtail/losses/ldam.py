"""Label-distribution-aware margin loss (Cao et al., NeurIPS 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import NonNegative, Positive, register_loss

# s: the LDAM paper's text says 10 (§3.2, "following [53]"); the reference code uses 30.
LDAM_PRESETS: dict[str, dict[str, float]] = {
    "paper": {"max_m": 0.5, "s": 10.0},
    "reference-code": {"max_m": 0.5, "s": 30.0},
}


@register_loss("ldam")
class LDAMLoss(ClassCountLoss):
    """LDAM: L = CE(s · (z − Δ_y e_y), y), Δ_j = C'/n_j^(1/4) with max_j Δ_j = max_m (Cao et al. 2019, eq. 13).

    ``z`` must be cosine logits from a normed-linear head (features and weight rows ℓ2-normalised,
    no bias): ``requires_normed_head = True``. The margin is subtracted from the target logit only,
    then everything is scaled by ``s``. Defaults: ``max_m=0.5`` (CIFAR; 0.3 is recommended for
    iNaturalist) and ``s=30`` (reference code; the paper's text says s=10 — presets
    :data:`LDAM_PRESETS` "paper" and "reference-code"). Class weights (DRW) enter as
    Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}. ``max_m=0, s=1`` is plain CE.
    """

    requires_normed_head = True
    neutral_params = {"s": 1.0}  # unit scale (the margin's neutral value is 0)
    param_names = ("max_m", "s")

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, max_m: NonNegative = 0.5, s: Positive = 30.0
    ) -> None:
        super().__init__(class_counts)
        self.max_m = max_m
        self.s = s
        self._refresh()

    def _refresh(self) -> None:
        margins = LF.ldam_margins(self.class_counts, self.max_m).to(torch.float32)
        self.register_buffer("margins", margins, persistent=False)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        margin_logits = LF.subtract_target_margin(logits, targets, self.margins.to(logits.device))
        per_example = LF.cross_entropy(self.s * margin_logits, targets)
        return LF.weighted_mean(per_example, targets, self._weights_on(logits.device))
