"""Multi-class hinge with one margin for every class (HG, the HG-DRS row of the LDAM paper)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import register_loss


@register_loss("hinge")
class HingeLoss(ClassCountLoss):
    """Multi-class hinge (HG): ℓ_i = s · max(max_{j≠y} z_j − z_y + Δ, 0) with ONE margin Δ for all classes.

    Cao et al. 2019, Table 2 "HG-DRS" (with deferred re-sampling): the uniform-margin counterpart
    of LDAM-HG (eq. 10, ``ldam-hinge``), where "the Δ_j [...] is chosen to be a tuned constant that
    does not depend on the class j" (§4.2). Parameterised exactly as ``ldam-hinge``: cosine logits
    from a normed-linear head (``requires_normed_head = True``), the margin ``margin`` on the
    cosine scale, and the paper's scale ``s`` (default 10), which — the hinge being positively
    homogeneous — only multiplies the loss and its gradient: s·z_j − (s·z_y − s·Δ) = s·(z_j − z_y + Δ).
    Default ``margin=0.5``, the largest LDAM margin on CIFAR (``ldam-hinge`` ``max_m``), so the two
    hinge rows differ only in how the margin depends on the class; the paper tunes Δ and does not
    print it. ``margin=0, s=1`` is the plain Crammer–Singer multi-class hinge. Class weights enter
    as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}. The paper runs it on CIFAR-10 only ("hinge loss suffers from
    optimization issues with 100 classes").
    """

    requires_normed_head = True
    param_names = ("margin", "s")

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, margin: float = 0.5, s: float = 10.0
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
        per_example = self.s * LF.multiclass_hinge(logits, targets, margins)
        return LF.weighted_mean(per_example, targets, self._weights_on(logits.device))
