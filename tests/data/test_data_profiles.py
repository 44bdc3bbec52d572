import math

import pytest

from longtail.data.profiles import longtail_counts
from longtail.errors import ConfigError


def reference_exp(num_classes, n_max, rho):
    # The LDAM-DRW reference code, written out: int(img_max * (1/rho) ** (i / (C - 1.0))).
    return [int(n_max * (1.0 / rho) ** (i / (num_classes - 1.0))) for i in range(num_classes)]


@pytest.mark.parametrize(
    "num_classes, n_max, rho, total",
    [
        (10, 5000, 100, 12406),
        (100, 500, 100, 10847),
        (10, 5000, 10, 20431),
        (100, 500, 10, 19573),
        (10, 6000, 100, 14886),
    ],
)
def test_published_totals(num_classes, n_max, rho, total):
    counts = longtail_counts(num_classes, n_max, rho)
    assert sum(counts) == total
    assert counts[0] == n_max and counts[-1] == n_max // rho


def test_fashion_mnist_counts():
    assert longtail_counts(10, 6000, 100) == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]


def test_cifar10_rho100_counts_and_rho200():
    assert longtail_counts(10, 5000, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(longtail_counts(10, 5000, 200)) == 11203
    assert sum(longtail_counts(100, 500, 200)) == 9502


@pytest.mark.parametrize("num_classes", [2, 3, 7, 10, 37, 100])
@pytest.mark.parametrize("rho", [1, 2, 5, 10, 12.5, 50, 100, 200, 256])
def test_exp_equals_reference_formula(num_classes, rho):
    assert longtail_counts(num_classes, 500, rho) == reference_exp(num_classes, 500, rho)


def test_exp_is_exact_floor():
    # floor(N·rho^(-i/(C-1))) checked against float64 with an independent exp/log formula
    counts = longtail_counts(100, 500, 100)
    for i, n in enumerate(counts):
        value = 500 * math.exp(-i / 99 * math.log(100))
        assert n <= value + 1e-9 < n + 1


def test_step_profile():
    assert longtail_counts(10, 5000, 100, "step") == [5000] * 5 + [50] * 5
    assert longtail_counts(10, 5000, 10, "step", minority_fraction=0.3) == [5000] * 7 + [500] * 3
    # floor(mu*C) read as a decimal: 0.29 * 100 is 28.999999999999996 in binary floating point
    assert longtail_counts(100, 500, 10, "step", 0.29).count(50) == 29
    assert longtail_counts(5, 100, 3, "step") == [100, 100, 100, 33, 33]


def test_balanced_when_rho_is_one():
    assert longtail_counts(10, 500, 1) == [500] * 10


@pytest.mark.parametrize("rho", [0.5, 0.0, -3, float("nan")])
def test_rho_below_one_is_an_error(rho):
    with pytest.raises(ConfigError, match="imbalance ratio must be >= 1"):
        longtail_counts(10, 500, rho)


@pytest.mark.parametrize("mu", [0.0, 1.0, -0.1, 1.5])
def test_minority_fraction_outside_open_interval(mu):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        longtail_counts(10, 500, 10, "step", mu)


def test_other_invalid_arguments():
    with pytest.raises(ConfigError, match="no minority"):
        longtail_counts(10, 500, 10, "step", 0.05)
    with pytest.raises(ConfigError, match="smallest class empty"):
        longtail_counts(10, 50, 100)
    with pytest.raises(ConfigError, match="unknown imbalance profile"):
        longtail_counts(10, 50, 10, "linear")
    with pytest.raises(ConfigError, match="at least 2 classes"):
        longtail_counts(1, 50, 10)
