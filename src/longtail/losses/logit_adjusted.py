"""Logit-adjusted loss / balanced softmax (Menon et al. 2021; Ren et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from longtail.losses import functional as LF
from longtail.losses.base import ClassCountLoss
from longtail.registry import register_loss


@register_loss("logit-adjusted")
class LogitAdjustedLoss(ClassCountLoss):
    """Logit-adjusted CE: L = CE(z + τ · log π, y), π_c = n_c / Σ_j n_j (balanced softmax at τ = 1).

    Menon et al., "Long-tail learning via logit adjustment" (ICLR 2021), eq. 10; τ = 1 is the
    balanced softmax of Ren et al. (NeurIPS 2020). The adjustment lives only in the loss (train
    and eval mode alike); predictions use the plain logits z. τ = 0 is plain CE; default τ = 1.
    Class weights enter as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}.
    """

    param_names = ("tau",)

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, tau: float = 1.0) -> None:
        super().__init__(class_counts)
        self.tau = tau
        self._refresh()

    def _refresh(self) -> None:
        self.register_buffer(
            "log_priors", LF.log_priors(self.class_counts).to(torch.float32), persistent=False
        )

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        adjusted = logits + self.tau * self.log_priors.to(logits.device)
        return LF.weighted_mean(LF.cross_entropy(adjusted, targets), targets, self._weights_on(logits.device))
