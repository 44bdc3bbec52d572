"""Class-dependent temperatures (Ye et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import NonNegative, register_loss


@register_loss("cdt")
class CDTLoss(ClassCountLoss):
    """CDT: in training, CE on z_c / a_c with a_c = (N_max / n_c)^γ (Ye et al. 2020, eq. 3).

    Minor classes get larger temperatures, so the network must make their decision values larger
    by a factor a_c. Only the loss divides: the model's logits are never changed, and prediction
    at test time is argmax_c z_c (the paper removes the artificial factor). Accordingly, in eval
    mode (``loss.eval()``, ``self.training == False``) this loss is plain CE on z — so a validation
    loss is the loss of the logits actually used for prediction. γ = 0 is ERM; the paper uses
    γ = 0.3 on CIFAR-10 ρ=100 (range [0, 0.4] CIFAR-10, [0, 0.2] CIFAR-100 / Tiny-ImageNet,
    [0, 0.1] iNaturalist); default 0.3. ``gamma`` can be changed with ``set_params`` (deferred CDT).
    Class weights enter as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}.
    """

    param_names = ("gamma",)

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, gamma: NonNegative = 0.3) -> None:
        super().__init__(class_counts)
        self.gamma = gamma
        self._refresh()

    def _refresh(self) -> None:
        temperatures = LF.cdt_temperatures(self.class_counts, self.gamma).to(torch.float32)
        self.register_buffer("temperatures", temperatures, persistent=False)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.training:
            logits = logits / self.temperatures.to(logits.device)
        return LF.weighted_mean(LF.cross_entropy(logits, targets), targets, self._weights_on(logits.device))
