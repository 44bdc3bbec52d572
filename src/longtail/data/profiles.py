"""Class-count profiles that turn a balanced data set into a long-tailed one (SPEC §1).

Two profiles from Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin
Loss" (NeurIPS 2019), section 4 / reference code ``imbalance_cifar.py``:

* **exponential** ("long-tailed"): ``n_i = floor(N_max · ρ^(−i/(C−1)))`` for ``i = 0 … C−1``;
* **step**: the last ``floor(μ·C)`` classes are minority classes with ``floor(N_max/ρ)`` examples,
  the others keep ``N_max``.

Class 0 is the largest (which *label* gets which count is decided by the class order in
:mod:`longtail.data.subset`).

Rounding. Every floor is computed exactly in integer arithmetic (ρ and μ read as the decimals
they print as), so the counts never depend on floating-point rounding; the float formula of the
reference code, ``int(N_max * (1/ρ) ** (i / (C - 1)))``, gives the same numbers on every published
setting (tested: CIFAR-10/100 at ρ = 10, 50, 100, 200, Fashion-MNIST at ρ = 100). The number of
minority classes of the step profile is ``floor(μ·C)``, as ``int(C*μ)`` would give; the reference
code hard-codes μ = ½ as ``C // 2`` (the same for even C).
"""

from __future__ import annotations

import math
from fractions import Fraction

from longtail.errors import ConfigError

PROFILES = ("exp", "step")


def _decimal(value: float) -> Fraction:
    # ``Fraction(str(x))`` reads 0.29 as 29/100, not as the binary float 0.28999999999999998.
    return Fraction(str(float(value)))


def validate_profile_args(imbalance_ratio: float, minority_fraction: float, profile: str) -> None:
    """Raise :class:`ConfigError` for ρ < 1, μ outside (0, 1) or an unknown profile."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown imbalance profile {profile!r}; use one of: {', '.join(PROFILES)}")
    if not math.isfinite(imbalance_ratio) or imbalance_ratio < 1:
        raise ConfigError(
            f"imbalance ratio must be >= 1 (N_max / N_min), got {imbalance_ratio:g}; "
            "use 1 for a balanced set, e.g. 100 for the long-tailed CIFAR benchmarks"
        )
    if not (0.0 < minority_fraction < 1.0):
        raise ConfigError(
            f"minority fraction must be strictly between 0 and 1, got {minority_fraction:g}; "
            "0.5 (half of the classes are minority classes) is the usual step profile"
        )


def _exact_floor_power(n_max: int, ratio: Fraction, i: int, c_minus_1: int) -> int:
    """floor(n_max · ratio^(−i/c_minus_1)), exactly.

    k ≤ n·ρ^(−i/m)  ⇔  k^m · ρ^i ≤ n^m  (all terms positive), checked with integers around the float
    estimate so the result is exact even when the float lands just below an integer.
    """
    if i == 0:
        return n_max
    estimate = int(n_max * float(ratio) ** (-i / c_minus_1))
    num, den = ratio.numerator, ratio.denominator
    lhs_scale = num**i
    rhs = n_max**c_minus_1 * den**i

    def fits(k: int) -> bool:
        return k**c_minus_1 * lhs_scale <= rhs

    k = max(estimate, 0)
    while fits(k + 1):
        k += 1
    while k > 0 and not fits(k):
        k -= 1
    return k


def longtail_counts(
    num_classes: int,
    n_max: int,
    imbalance_ratio: float,
    profile: str = "exp",
    minority_fraction: float = 0.5,
) -> list[int]:
    """Per-class example counts of a long-tailed set, largest first (SPEC §1).

    ``exp``: n_i = floor(N_max · ρ^(−i/(C−1))); ``step``: n_i = N_max for the first
    C − floor(μ·C) classes and floor(N_max/ρ) for the last floor(μ·C). ρ = N_max / N_min ≥ 1;
    μ ∈ (0, 1) is only used by ``step``. Raises :class:`ConfigError` on invalid arguments or when a
    class would get no example at all.
    """
    validate_profile_args(imbalance_ratio, minority_fraction, profile)
    if num_classes < 2:
        raise ConfigError(f"a long-tailed profile needs at least 2 classes, got {num_classes}")
    if n_max < 1:
        raise ConfigError(f"the largest class must have at least one example, got N_max={n_max}")
    ratio = _decimal(imbalance_ratio)
    if profile == "exp":
        counts = [_exact_floor_power(n_max, ratio, i, num_classes - 1) for i in range(num_classes)]
    else:
        num_minority = math.floor(_decimal(minority_fraction) * num_classes)
        if num_minority < 1:
            raise ConfigError(
                f"minority fraction {minority_fraction:g} of {num_classes} classes gives no minority "
                f"class; use a fraction >= {1 / num_classes:g}"
            )
        n_min = math.floor(Fraction(n_max) / ratio)
        counts = [n_max] * (num_classes - num_minority) + [n_min] * num_minority
    if counts[-1] < 1:
        raise ConfigError(
            f"imbalance ratio {imbalance_ratio:g} leaves the smallest class empty "
            f"(N_max = {n_max}); use a ratio <= {n_max}"
        )
    return counts
