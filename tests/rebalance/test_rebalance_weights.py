"""Class-weight functions against their formulas written out again (float64, Python floats)."""

from __future__ import annotations

import math

import pytest
import torch

from longtail.errors import ConfigError
from longtail.rebalance import effective_number_weights, inverse_power_weights

COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10, rho = 100
C = len(COUNTS)


def by_hand_inverse(power: float) -> list[float]:
    raw = [n ** (-power) for n in COUNTS]
    return [C * v / sum(raw) for v in raw]


def by_hand_effective(beta: float) -> list[float]:
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    return [C * v / sum(raw) for v in raw]


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0, 2.0])
def test_inverse_power_weights(power):
    weights = inverse_power_weights(COUNTS, power)
    assert weights.dtype == torch.float64 and weights.shape == (C,)
    torch.testing.assert_close(
        weights, torch.tensor(by_hand_inverse(power), dtype=torch.float64), rtol=1e-12, atol=0
    )
    assert weights.sum().item() == pytest.approx(C, rel=1e-12)


def test_inverse_frequency_ratio():
    weights = inverse_power_weights(COUNTS, 1.0)
    assert (weights[-1] / weights[0]).item() == pytest.approx(100.0, rel=1e-12)
    assert inverse_power_weights(COUNTS, 0.0).tolist() == [1.0] * C


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999, 0.9999])
def test_effective_number_weights(beta):
    weights = effective_number_weights(COUNTS, beta)
    torch.testing.assert_close(
        weights, torch.tensor(by_hand_effective(beta), dtype=torch.float64), rtol=1e-10, atol=0
    )
    assert weights.sum().item() == pytest.approx(C, rel=1e-12)


def test_effective_number_limits():
    assert effective_number_weights(COUNTS, 0.0).tolist() == [1.0] * C
    # β → 1: E_j → n_j, i.e. inverse frequency
    torch.testing.assert_close(
        effective_number_weights(COUNTS, 1 - 1e-9), inverse_power_weights(COUNTS, 1.0), rtol=1e-4, atol=0
    )
    # the reference-code DRW weights at β = 0.9999 on CIFAR-10 ρ=100: E_0 = (1 − 0.9999^5000)/1e-4
    e_head = (1 - 0.9999**5000) / 1e-4
    e_tail = (1 - 0.9999**50) / 1e-4
    weights = effective_number_weights(COUNTS, 0.9999)
    assert (weights[-1] / weights[0]).item() == pytest.approx(e_head / e_tail, rel=1e-10)
    assert math.isclose(e_head, 3934.8, rel_tol=1e-4)


def test_weight_errors():
    with pytest.raises(ConfigError, match="beta"):
        effective_number_weights(COUNTS, 1.0)
    with pytest.raises(ConfigError, match="beta"):
        effective_number_weights(COUNTS, -0.1)
    with pytest.raises(ConfigError, match="power"):
        inverse_power_weights(COUNTS, -1.0)
    with pytest.raises(ConfigError, match="class_counts"):
        inverse_power_weights([3, 0, 1], 1.0)
    with pytest.raises(ConfigError, match="class_counts"):
        inverse_power_weights([], 1.0)
