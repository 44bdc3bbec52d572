"""Per-class weights from the training class counts (pure functions, float64 in, float64 out).

Both weightings are normalised so that the weights sum to the number of classes C, as in the
LDAM-DRW reference code and Cui et al.'s code. The normalisation does not matter to a loss that
averages as Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i} (every loss in ``longtail.losses``); it keeps the
numbers readable (uniform weights are all 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from longtail.errors import ConfigError

__all__ = ["as_class_counts", "inverse_power_weights", "effective_number_weights", "normalise_to_sum_c"]


def as_class_counts(class_counts: Sequence[float] | torch.Tensor, positive: bool = True) -> torch.Tensor:
    """Validate training class counts and return them as a float64 CPU tensor [C].

    The one check of class counts (losses, schedules, post-hoc rules). Raises
    :class:`~longtail.errors.ConfigError` unless the counts are a non-empty 1-D list of finite
    numbers > 0 (a class with no training example has no defined weight, margin or prior);
    ``positive=False`` also accepts empty classes (0), for post-hoc rules that can skip them.
    """
    try:
        counts = torch.as_tensor(class_counts, dtype=torch.float64).detach().cpu().clone()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"class_counts must be a list of per-class training counts, got {class_counts!r} ({exc})"
        ) from None
    if counts.ndim != 1 or counts.numel() == 0:
        raise ConfigError(
            f"class_counts must be a non-empty 1-D list (one count per class), got shape {tuple(counts.shape)}"
        )
    bad = [i for i, v in enumerate(counts.tolist()) if not math.isfinite(v) or v < 0 or (positive and v == 0)]
    if bad:
        raise ConfigError(
            f"class_counts must all be {'> 0' if positive else '>= 0'}; classes {bad[:10]} have "
            f"{[counts[i].item() for i in bad[:10]]} (drop empty classes or fix the counts)"
        )
    return counts


def normalise_to_sum_c(weights: torch.Tensor) -> torch.Tensor:
    """Scale positive weights so that they sum to C = len(weights)."""
    return weights * (weights.numel() / weights.sum())


def inverse_power_weights(class_counts: Sequence[float] | torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Re-weighting weights w_j ∝ n_j^(−p), normalised so Σ_j w_j = C (float64 [C]).

    p = 1 is inverse class frequency (LDAM paper's RW, Cao et al. 2019 §4); p = 0.5 is the CDT
    paper's RW baseline "every instance has a weight N_c^(−γ)" (Ye et al. 2020 §5); p = 0 gives
    uniform weights (all 1).
    """
    counts = as_class_counts(class_counts)
    power = float(power)
    if not math.isfinite(power) or power < 0:
        raise ConfigError(f"re-weighting power must be a finite number >= 0, got {power}")
    # log-space keeps large powers of large counts from overflowing float64
    log_w = -power * torch.log(counts)
    weights = torch.exp(log_w - log_w.max())
    return normalise_to_sum_c(weights)


def effective_number_weights(
    class_counts: Sequence[float] | torch.Tensor, beta: float = 0.9999
) -> torch.Tensor:
    """Class-balanced weights of Cui et al. (CVPR 2019): w_j ∝ 1 / E_j, E_j = (1 − β^{n_j}) / (1 − β).

    Normalised so Σ_j w_j = C (float64 [C]). β = 0 gives E_j = 1 (uniform weights); β → 1 tends
    to inverse frequency. The LDAM-DRW reference code uses β = 0.9999 for its DRW weights.
    """
    counts = as_class_counts(class_counts)
    beta = float(beta)
    if not (0.0 <= beta < 1.0):
        raise ConfigError(f"class-balanced beta must be in [0, 1), got {beta}")
    # 1 − β^n computed as −expm1(n·log β) keeps precision when β is close to 1
    if beta == 0.0:
        effective = torch.ones_like(counts)
    else:
        effective = -torch.expm1(counts * math.log(beta)) / (1.0 - beta)
    return normalise_to_sum_c(1.0 / effective)
