"""Closed-form post-hoc rules (SPEC §4): τ-normalisation, N_c^τ, nearest class mean, logit adjustment."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from longtail.errors import DataError
from longtail.posthoc.base import PosthocRule, head_bias, head_logits, head_weight, tau_grid
from longtail.registry import register_posthoc

BiasMode = Literal["drop", "keep", "scale"]

def _positive_counts(rule: str, counts: torch.Tensor) -> None:
    if bool((counts <= 0).any()):
        empty = (counts <= 0).nonzero().flatten().tolist()
        raise DataError(
            f"post-hoc rule {rule!r} needs every class count > 0, classes {empty} have none; drop those classes "
            "or pass the counts of the set the model was trained on"
        )


@register_posthoc("tau-norm")
class TauNorm(PosthocRule):
    """τ-normalised classifier (Kang et al., ICLR 2020): s_c = (w_c / ‖w_c‖₂^τ)ᵀ f(x).

    τ = 0 is the raw linear classifier, τ = 1 fully normalises the class weight norms. Bias:
    ``bias="drop"`` (default, as Kang et al.'s code: the τ-normalised scores use W only),
    ``"keep"`` adds b_c unchanged, ``"scale"`` adds b_c / ‖w_c‖^τ. For a normed-linear head
    (no bias) τ = 1 ranks classes exactly as the model's cosine logits.
    """

    param_name = "tau"
    default_grid = tau_grid(1.0, 0.05)
    neutral_value = 0.0

    def __init__(self, tau: float = 1.0, bias: BiasMode = "drop") -> None:
        super().__init__()
        self.tau, self.bias = tau, bias

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        weight = head_weight(head).to(features)
        divisor = weight.norm(dim=1).clamp_min(torch.finfo(features.dtype).tiny) ** self.tau
        scores = features @ (weight / divisor[:, None]).t()
        bias = head_bias(head)
        if bias is None or self.bias == "drop":
            return scores
        bias = bias.to(features)
        return scores + (bias if self.bias == "keep" else bias / divisor)


@register_posthoc("nc-tau")
class NcTau(PosthocRule):
    """N_c^τ rule of the CDT paper (Ye et al., eq. 5): s_c = z_c / n_c^τ, i.e. (w_c / n_c^τ)ᵀ f(x).

    n_c is the training count of class c; τ = 0 is the model unchanged, larger τ favours minor
    classes. Bias: ``bias="scale"`` (default) divides the whole logit z_c = w_cᵀ f + b_c by n_c^τ
    (so τ = 0 reproduces the model's logits exactly); ``"drop"`` uses (w_cᵀ f) / n_c^τ (eq. 5, which
    omits the bias); ``"keep"`` uses (w_cᵀ f) / n_c^τ + b_c. With a normed-linear head z_c is its
    cosine.
    """

    param_name = "tau"
    default_grid = tau_grid(1.0, 0.05)
    neutral_value = 0.0

    def __init__(self, tau: float = 0.5, bias: BiasMode = "scale") -> None:
        super().__init__()
        self.tau, self.bias = tau, bias

    def _fit(self, features: torch.Tensor, labels: torch.Tensor, head: Any, counts: torch.Tensor) -> None:
        _positive_counts("nc-tau", counts)

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        assert self.class_counts is not None
        divisor = (self.class_counts**self.tau).to(features)
        logits = head_logits(features, head)
        bias = head_bias(head)
        if bias is None or self.bias == "scale":
            return logits / divisor
        bias = bias.to(features)
        scores = (logits - bias) / divisor
        return scores if self.bias == "drop" else scores + bias


@register_posthoc("logit-adjust")
class LogitAdjust(PosthocRule):
    """Post-hoc logit adjustment (Menon et al., ICLR 2021): s_c = z_c − τ · log π_c, π_c = n_c / Σ_j n_j.

    z includes the head's bias (the model's own logits). τ = 0 is the model unchanged; τ = 1 is the
    Bayes-optimal correction for the balanced error when the model fits the training prior.
    """

    param_name = "tau"
    default_grid = tau_grid(2.0, 0.1)
    neutral_value = 0.0

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        self.tau = tau

    def _fit(self, features: torch.Tensor, labels: torch.Tensor, head: Any, counts: torch.Tensor) -> None:
        _positive_counts("logit-adjust", counts)

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        assert self.class_counts is not None
        log_prior = torch.log(self.class_counts / self.class_counts.sum()).to(features)
        return head_logits(features, head) - self.tau * log_prior


@register_posthoc("ncm")
class NearestClassMean(PosthocRule):
    """Nearest class mean on ℓ2-normalised features (CDT paper suppl.; Kang et al. 2020).

    f̂ = f / ‖f‖₂; μ_c = mean of f̂ over the training examples of class c (not re-normalised).
    ``metric="euclidean"`` (default): s_c = −‖f̂(x) − μ_c‖₂; ``metric="cosine"``:
    s_c = f̂(x)ᵀ μ_c / ‖μ_c‖₂. The head and its bias are not used. A class with no training
    example gets s_c = −∞ (never predicted).
    """

    param_name = None
    default_grid = ()
    needs_head = False

    def __init__(self, metric: Literal["euclidean", "cosine"] = "euclidean") -> None:
        super().__init__()
        self.metric = metric
        self.means: torch.Tensor | None = None
        self.present: torch.Tensor | None = None

    def _fit(self, features: torch.Tensor, labels: torch.Tensor, head: Any, counts: torch.Tensor) -> None:
        num_classes = counts.numel()
        normed = F.normalize(features, dim=1)
        sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
        sums.index_add_(0, labels, normed)
        sizes = torch.bincount(labels, minlength=num_classes).to(features)
        self.present = sizes > 0
        self.means = sums / sizes.clamp_min(1.0)[:, None]

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        assert self.means is not None and self.present is not None
        means = self.means.to(features)
        normed = F.normalize(features, dim=1)
        if self.metric == "euclidean":
            scores = -torch.cdist(normed, means, compute_mode="donot_use_mm_for_euclid_dist")
        else:
            scores = normed @ F.normalize(means, dim=1).t()
        return scores.masked_fill(~self.present.to(features.device)[None, :], float("-inf"))
