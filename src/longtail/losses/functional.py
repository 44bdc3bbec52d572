"""The pure math of the losses: margins, temperatures, priors and per-example loss terms.

Every function here is stateless and works on tensors; the ``nn.Module`` wrappers in this package
only hold the class counts and call these. Per-example functions return a tensor [B] so that the
per-class weighting Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i} (:func:`weighted_mean`) is applied in one place.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from longtail.errors import ConfigError

__all__ = [
    "ldam_margins",
    "cdt_temperatures",
    "log_priors",
    "weighted_mean",
    "cross_entropy",
    "subtract_target_margin",
    "focal",
    "focal_reference_code",
    "multiclass_hinge",
    "sigmoid_cross_entropy",
    "sigmoid_focal",
]


# --- class-count dependent constants -------------------------------------------------------------


def ldam_margins(class_counts: torch.Tensor, max_m: float) -> torch.Tensor:
    """LDAM margins Δ_j = C' / n_j^(1/4) with C' chosen so that max_j Δ_j = max_m (Cao et al. 2019, eq. 13).

    Equivalently Δ_j = max_m · (n_min / n_j)^(1/4). Returns float64 [C]. CIFAR-10 ρ=100
    (5000 … 50), max_m = 0.5: Δ runs from 0.5 · 0.01^(1/4) ≈ 0.158 (head) to 0.5 (tail).
    """
    if not math.isfinite(max_m) or max_m < 0:
        raise ConfigError(f"LDAM max_m must be a finite number >= 0, got {max_m}")
    counts = class_counts.to(torch.float64)
    inv_root4 = counts.pow(-0.25)
    return inv_root4 * (max_m / inv_root4.max())


def cdt_temperatures(class_counts: torch.Tensor, gamma: float) -> torch.Tensor:
    """CDT temperatures a_c = (N_max / n_c)^γ (Ye et al. 2020, §4). Returns float64 [C]; γ = 0 gives ones."""
    if not math.isfinite(gamma) or gamma < 0:
        raise ConfigError(f"CDT gamma must be a finite number >= 0, got {gamma}")
    counts = class_counts.to(torch.float64)
    return (counts.max() / counts).pow(gamma)


def log_priors(class_counts: torch.Tensor) -> torch.Tensor:
    """Log class priors log π_c with π_c = n_c / Σ_j n_j (float64 [C])."""
    counts = class_counts.to(torch.float64)
    return torch.log(counts) - torch.log(counts.sum())


# --- reduction -----------------------------------------------------------------------------------


def weighted_mean(
    per_example: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor | None
) -> torch.Tensor:
    """Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i} (plain mean when ``class_weights`` is None).

    The LDAM paper's "re-normalise so the weights average 1 in the mini-batch" (Alg. 1) and what
    ``F.cross_entropy(..., weight=w)`` computes.
    """
    if class_weights is None:
        return per_example.mean()
    w = class_weights.to(per_example.dtype)[targets]
    return (w * per_example).sum() / w.sum()


# --- per-example loss terms (logits [B, C], targets [B] -> [B]) ----------------------------------


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ℓ_i = −log softmax(z_i)_{y_i} = logsumexp_j z_ij − z_{i,y_i}."""
    return F.cross_entropy(logits, targets, reduction="none")


def subtract_target_margin(
    logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor
) -> torch.Tensor:
    """z − Δ_y · e_y: subtract the target class's margin from the target logit only."""
    batch_margins = margins.to(logits.dtype)[targets]
    return logits - F.one_hot(targets, logits.shape[1]).to(logits.dtype) * batch_margins[:, None]


def _one_minus_exp_neg(x: torch.Tensor) -> torch.Tensor:
    # 1 − e^{−x} without cancellation; clamped away from 0 so (·)^γ with 0 < γ < 1 keeps a finite
    # gradient when the example is fitted exactly (the clamp changes the loss by < 1e-30).
    return (-torch.expm1(-x)).clamp_min(1e-30)


def focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) per example: FL_i = (1 − p_t)^γ · CE_i, p_t = softmax(z_i)_{y_i}."""
    ce = cross_entropy(logits, targets)
    return _one_minus_exp_neg(ce).pow(gamma) * ce


def focal_reference_code(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, class_weights: torch.Tensor | None
) -> torch.Tensor:
    """The LDAM-DRW reference code's focal loss, already reduced to a scalar.

    With c_i = w_{y_i} · CE_i (the class-weighted CE, ``F.cross_entropy(weight=w, reduction="none")``)
    and p = e^{−c_i}: L = mean_i (1 − p)^γ · c_i — a plain mean over the batch, and p_t computed
    from the weighted CE. Without weights it equals the paper's focal loss.
    """
    ce = cross_entropy(logits, targets)
    if class_weights is not None:
        ce = class_weights.to(ce.dtype)[targets] * ce
    return (_one_minus_exp_neg(ce).pow(gamma) * ce).mean()


def multiclass_hinge(logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
    """Multi-class hinge (Crammer–Singer) with per-class margins: max(max_{j≠y} z_j − z_y + Δ_y, 0)."""
    target_logit = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(targets, logits.shape[1]).bool(), float("-inf"))
    runner_up = others.max(dim=1).values
    return torch.clamp_min(runner_up - target_logit + margins.to(logits.dtype)[targets], 0.0)


def _signed_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # z^t_j = z_j for the target class, −z_j for the others (Cui et al. 2019, eq. 6)
    sign = 2.0 * F.one_hot(targets, logits.shape[1]).to(logits.dtype) - 1.0
    return sign * logits


def sigmoid_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One-vs-all sigmoid CE summed over classes: Σ_j −log σ(z^t_j) (Cui et al. 2019, eq. 6)."""
    return F.softplus(-_signed_logits(logits, targets)).sum(dim=1)


def sigmoid_focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Sigmoid focal loss summed over classes: Σ_j (1 − p^t_j)^γ · (−log p^t_j), p^t_j = σ(z^t_j).

    Cui et al. 2019, eq. 7 (their CB-Focal base, following Lin et al.'s sigmoid focal loss).
    (1 − σ(x))^γ = exp(−γ · softplus(x)) keeps it finite for large |z|.
    """
    signed = _signed_logits(logits, targets)
    return (torch.exp(-gamma * F.softplus(signed)) * F.softplus(-signed)).sum(dim=1)
