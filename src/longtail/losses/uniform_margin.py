"""Losses with one margin for every class: uniform-margin CE (M-DRW) and the multi-class hinge (HG-DRS)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import NonNegative, Positive, register_loss


class OneMarginLoss(ClassCountLoss):
    """Base of the LDAM paper's uniform-margin rows: ONE margin ``margin`` for every class on cosine logits,
    scale ``s``; a subclass writes ``per_example(logits, targets, margins)``. Class weights enter as
    Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}.
    """

    requires_normed_head = True
    neutral_params = {"s": 1.0}  # unit scale (the margin's neutral value is 0)
    param_names = ("margin", "s")

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, margin: NonNegative = 0.5, s: Positive = 30.0
    ) -> None:
        super().__init__(class_counts)
        self.margin = margin
        self.s = s

    def per_example(self, logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        margins = torch.full((self.num_classes,), self.margin, dtype=logits.dtype, device=logits.device)
        return LF.weighted_mean(self.per_example(logits, targets, margins), targets, self._weights_on(logits.device))


@register_loss("uniform-margin")
class UniformMarginLoss(OneMarginLoss):
    """Uniform-margin CE: L = CE(s · (z − m e_y), y) with one constant margin m for all classes.

    The M-DRW ablation of Cao et al. 2019 (§4.2: "the Δ_j in equation (13) is chosen to be a tuned
    constant that does not depend on the class j", after the large-margin cosine loss [53]).
    Expects cosine logits (``requires_normed_head = True``). Defaults ``margin=0.5`` (LDAM's
    largest margin on CIFAR; tune it) and ``s=30`` (as LDAM's reference code). ``margin=0, s=1`` is
    plain CE. Class weights (DRW) enter as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}.
    """

    def per_example(self, logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        return LF.cross_entropy(self.s * LF.subtract_target_margin(logits, targets, margins), targets)


@register_loss("hinge")
class HingeLoss(OneMarginLoss):
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

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, margin: NonNegative = 0.5, s: Positive = 10.0
    ) -> None:
        super().__init__(class_counts, margin, s)

    def per_example(self, logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        return self.s * LF.multiclass_hinge(logits, targets, margins)
