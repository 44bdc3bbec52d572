"""Each loss against its formula written out again here, in float64, with explicit loops.

Nothing in this file calls ``longtail.losses.functional`` or ``longtail.rebalance.weights``: the
reference values are recomputed from the papers' equations with Python floats and ``math``.
"""

from __future__ import annotations

import math

import pytest
import torch

from longtail import create_loss
from longtail.errors import ConfigError, LongtailError
from longtail.losses import functional as LF

COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10, rho = 100
C = len(COUNTS)
B = 24


# --- the formulas, by hand ----------------------------------------------------------------------


def logsumexp(row: list[float]) -> float:
    m = max(row)
    return m + math.log(sum(math.exp(v - m) for v in row))


def ce_row(row: list[float], y: int) -> float:
    return logsumexp(row) - row[y]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def reduce_weighted(losses: list[float], ys: list[int], weights: list[float] | None) -> float:
    if weights is None:
        return sum(losses) / len(losses)
    return sum(weights[y] * v for v, y in zip(losses, ys)) / sum(weights[y] for y in ys)


def times(a: list[float] | None, b: list[float] | None) -> list[float] | None:
    if a is None:
        return b
    if b is None:
        return a
    return [x * y for x, y in zip(a, b)]


def ldam_deltas(max_m: float) -> list[float]:
    # Δ_j = C' / n_j^(1/4), C' chosen so that max_j Δ_j = max_m
    c_prime = max_m / max(n**-0.25 for n in COUNTS)
    return [c_prime / n**0.25 for n in COUNTS]


def ref_ce(z, ys, w):
    return reduce_weighted([ce_row(r, y) for r, y in zip(z, ys)], ys, w)


def ref_weighted_ce(z, ys, w, power):
    raw = [n ** (-power) for n in COUNTS]
    own = [C * v / sum(raw) for v in raw]
    return ref_ce(z, ys, times(own, w))


def ref_class_balanced(z, ys, w, beta, base, gamma):
    effective = [(1 - beta**n) / (1 - beta) for n in COUNTS]
    raw = [1 / e for e in effective]
    own = [C * v / sum(raw) for v in raw]
    losses = []
    for row, y in zip(z, ys):
        if base == "softmax":
            losses.append(ce_row(row, y))
            continue
        total = 0.0
        for j, v in enumerate(row):
            p_t = sigmoid(v if j == y else -v)
            term = -math.log(p_t)
            if base == "focal":
                term *= (1 - p_t) ** gamma
            total += term
        losses.append(total)
    return reduce_weighted(losses, ys, times(own, w))


def ref_focal(z, ys, w, gamma, variant):
    losses = []
    for row, y in zip(z, ys):
        p_t = math.exp(row[y]) / sum(math.exp(v) for v in row)
        ce = -math.log(p_t)
        if variant == "paper":
            losses.append((1 - p_t) ** gamma * ce)
        else:  # reference code: p from the class-weighted CE, plain mean
            cw = (w[y] if w is not None else 1.0) * ce
            losses.append((1 - math.exp(-cw)) ** gamma * cw)
    if variant == "paper":
        return reduce_weighted(losses, ys, w)
    return sum(losses) / len(losses)


def ref_ldam(z, ys, w, max_m, s):
    deltas = ldam_deltas(max_m)
    losses = []
    for row, y in zip(z, ys):
        shifted = [s * (v - (deltas[y] if j == y else 0.0)) for j, v in enumerate(row)]
        losses.append(ce_row(shifted, y))
    return reduce_weighted(losses, ys, w)


def ref_ldam_hinge(z, ys, w, max_m, s):
    deltas = ldam_deltas(max_m)
    losses = []
    for row, y in zip(z, ys):
        runner_up = max(v for j, v in enumerate(row) if j != y)
        losses.append(s * max(runner_up - row[y] + deltas[y], 0.0))
    return reduce_weighted(losses, ys, w)


def ref_hinge(z, ys, w, margin, s):
    # HG: s · max(max_{j≠y} z_j − z_y + Δ, 0), the same Δ for every class
    losses = []
    for row, y in zip(z, ys):
        runner_up = max(v for j, v in enumerate(row) if j != y)
        losses.append(s * max(runner_up - row[y] + margin, 0.0))
    return reduce_weighted(losses, ys, w)


def ref_uniform_margin(z, ys, w, margin, s):
    losses = []
    for row, y in zip(z, ys):
        losses.append(ce_row([s * (v - (margin if j == y else 0.0)) for j, v in enumerate(row)], y))
    return reduce_weighted(losses, ys, w)


def ref_cdt(z, ys, w, gamma, training):
    n_max = max(COUNTS)
    a = [(n_max / n) ** gamma for n in COUNTS] if training else [1.0] * C
    return ref_ce([[v / a[j] for j, v in enumerate(row)] for row in z], ys, w)


def ref_logit_adjusted(z, ys, w, tau):
    total = sum(COUNTS)
    return ref_ce([[v + tau * math.log(COUNTS[j] / total) for j, v in enumerate(row)] for row in z], ys, w)


# --- fixtures -------------------------------------------------------------------------------------


def assert_matches(actual: torch.Tensor, expected: float) -> None:
    assert actual.dtype == torch.float32  # computed in fp32 ...
    # ... and equal to the float64 formula to fp32 rounding
    torch.testing.assert_close(
        actual.double(), torch.tensor(expected, dtype=torch.float64), rtol=2e-6, atol=1e-6
    )


def batch(seed: int, cosine: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if cosine:  # cosine logits of a normed head lie in [-1, 1]
        logits = torch.rand(B, C, generator=g, dtype=torch.float64) * 2 - 1
    else:
        logits = torch.randn(B, C, generator=g, dtype=torch.float64) * 3
    targets = torch.randint(0, C, (B,), generator=g)
    return logits, targets


def random_weights(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(C, generator=g, dtype=torch.float64) * 2 + 0.1


CASES = [
    ("ce", {}, lambda z, y, w, p: ref_ce(z, y, w), False),
    ("weighted-ce", {"power": 1.0}, lambda z, y, w, p: ref_weighted_ce(z, y, w, **p), False),
    ("weighted-ce", {"power": 0.5}, lambda z, y, w, p: ref_weighted_ce(z, y, w, **p), False),
    *[
        (
            "class-balanced",
            {"beta": beta, "base": base, "gamma": gamma},
            lambda z, y, w, p: ref_class_balanced(z, y, w, **p),
            False,
        )
        for beta in (0.9999, 0.999, 0.9)
        for base, gamma in (("softmax", 1.0), ("sigmoid", 1.0), ("focal", 0.5), ("focal", 2.0))
    ],
    *[
        ("focal", {"gamma": gamma, "variant": variant}, lambda z, y, w, p: ref_focal(z, y, w, **p), False)
        for gamma in (0.5, 1.0, 2.0)
        for variant in ("paper", "reference-code")
    ],
    ("ldam", {"max_m": 0.5, "s": 30.0}, lambda z, y, w, p: ref_ldam(z, y, w, **p), True),
    ("ldam", {"max_m": 0.3, "s": 10.0}, lambda z, y, w, p: ref_ldam(z, y, w, **p), True),
    ("ldam-hinge", {"max_m": 0.5, "s": 10.0}, lambda z, y, w, p: ref_ldam_hinge(z, y, w, **p), True),
    ("ldam-hinge", {"max_m": 0.5, "s": 1.0}, lambda z, y, w, p: ref_ldam_hinge(z, y, w, **p), True),
    ("hinge", {"margin": 0.5, "s": 10.0}, lambda z, y, w, p: ref_hinge(z, y, w, **p), True),
    ("hinge", {"margin": 0.2, "s": 1.0}, lambda z, y, w, p: ref_hinge(z, y, w, **p), True),
    ("hinge", {"margin": 0.0, "s": 3.0}, lambda z, y, w, p: ref_hinge(z, y, w, **p), True),
    ("uniform-margin", {"margin": 0.4, "s": 30.0}, lambda z, y, w, p: ref_uniform_margin(z, y, w, **p), True),
    ("cdt", {"gamma": 0.3}, lambda z, y, w, p: ref_cdt(z, y, w, **p, training=True), False),
    ("cdt", {"gamma": 0.1}, lambda z, y, w, p: ref_cdt(z, y, w, **p, training=True), False),
    ("logit-adjusted", {"tau": 1.0}, lambda z, y, w, p: ref_logit_adjusted(z, y, w, **p), False),
    ("logit-adjusted", {"tau": 0.5}, lambda z, y, w, p: ref_logit_adjusted(z, y, w, **p), False),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "name,params,reference,cosine", CASES, ids=[f"{c[0]}-{'-'.join(map(str, c[1].values()))}" for c in CASES]
)
def test_loss_matches_formula(name, params, reference, cosine, weighted):
    loss_fn = create_loss(name, COUNTS, **params)
    for seed in range(3):
        logits, targets = batch(seed, cosine)
        weights = random_weights(100 + seed) if weighted else None
        loss_fn.set_class_weights(weights)
        expected = reference(
            logits.tolist(), targets.tolist(), None if weights is None else weights.tolist(), params
        )
        assert_matches(loss_fn(logits, targets), expected)


def test_hinge_cases_cover_active_and_inactive_examples():
    # the hinge reference is only meaningful if both branches of max(·, 0) occur in the test batches
    deltas = ldam_deltas(0.5)
    signs = set()
    for seed in range(3):
        logits, targets = batch(seed, cosine=True)
        for row, y in zip(logits.tolist(), targets.tolist()):
            signs.add(max(v for j, v in enumerate(row) if j != y) - row[y] + deltas[y] > 0)
    assert signs == {True, False}


@pytest.mark.parametrize("margin", [0.2, 0.0])
def test_uniform_hinge_cases_cover_active_and_inactive_examples(margin):
    # (with margin 0.5 every cosine example of these batches is inside the margin, so the clamp is
    # exercised by the 0.2 and 0.0 cases)
    signs = set()
    for seed in range(3):
        logits, targets = batch(seed, cosine=True)
        for row, y in zip(logits.tolist(), targets.tolist()):
            signs.add(max(v for j, v in enumerate(row) if j != y) - row[y] + margin > 0)
    assert signs == {True, False}


def test_hinge_margin_is_the_same_for_every_class():
    # with all class counts equal, LDAM's margins are all max_m and the two hinges agree exactly;
    # on long-tailed counts they differ (LDAM's margins shrink for the frequent classes).
    equal_counts = [100] * C
    logits, targets = batch(4, cosine=True)
    uniform = create_loss("hinge", equal_counts, margin=0.5, s=10.0)
    ldam = create_loss("ldam-hinge", equal_counts, max_m=0.5, s=10.0)
    torch.testing.assert_close(uniform(logits, targets), ldam(logits, targets))
    long_tailed = create_loss("ldam-hinge", COUNTS, max_m=0.5, s=10.0)
    assert abs(create_loss("hinge", COUNTS)(logits, targets).item() - long_tailed(logits, targets).item()) > 1e-3
    with pytest.raises(ConfigError, match="margin"):
        create_loss("hinge", COUNTS, margin=-0.1)
    with pytest.raises(ConfigError, match="> 0"):
        create_loss("hinge", COUNTS, s=0.0)


def test_cdt_eval_mode_is_plain_ce_and_train_mode_divides():
    loss_fn = create_loss("cdt", COUNTS, gamma=0.3)
    logits, targets = batch(7, cosine=False)
    weights = random_weights(8)
    loss_fn.set_class_weights(weights)
    z, y, w = logits.tolist(), targets.tolist(), weights.tolist()
    loss_fn.eval()
    assert_matches(loss_fn(logits, targets), ref_cdt(z, y, w, 0.3, False))
    loss_fn.train()
    assert_matches(loss_fn(logits, targets), ref_cdt(z, y, w, 0.3, True))
    assert abs(ref_cdt(z, y, w, 0.3, True) - ref_cdt(z, y, w, 0.3, False)) > 1e-2


def test_cdt_set_params_changes_gamma():
    loss_fn = create_loss("cdt", COUNTS, gamma=0.0)
    logits, targets = batch(3, cosine=False)
    loss_fn.set_params(gamma=0.2)
    expected = ref_cdt(logits.tolist(), targets.tolist(), None, 0.2, True)
    assert_matches(loss_fn(logits, targets), expected)
    with pytest.raises(ConfigError, match="gamma"):
        loss_fn.set_params(gamma=-1.0)
    assert loss_fn.gamma == 0.2  # a rejected change leaves the loss as it was
    with pytest.raises(ConfigError, match="no parameter 'beta'"):
        loss_fn.set_params(beta=0.9)


# --- the pure helpers -----------------------------------------------------------------------------


def test_ldam_margins_cifar10_rho100():
    margins = LF.ldam_margins(torch.tensor(COUNTS, dtype=torch.float64), 0.5)
    assert margins.dtype == torch.float64
    torch.testing.assert_close(margins, torch.tensor(ldam_deltas(0.5), dtype=torch.float64))
    assert margins[0].item() == pytest.approx(0.5 * 0.01**0.25, rel=1e-12)  # 0.1581...
    assert round(margins[0].item(), 3) == 0.158
    assert margins[-1].item() == pytest.approx(0.5, rel=1e-12)
    assert torch.all(margins[1:] > margins[:-1])  # the rarer the class, the larger the margin


def test_cdt_temperatures_formula():
    for gamma in (0.0, 0.1, 0.3, 1.0):
        temps = LF.cdt_temperatures(torch.tensor(COUNTS, dtype=torch.float64), gamma)
        expected = [(max(COUNTS) / n) ** gamma for n in COUNTS]
        torch.testing.assert_close(temps, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)
    assert LF.cdt_temperatures(torch.tensor(COUNTS, dtype=torch.float64), 0.3)[0].item() == 1.0


def test_log_priors_formula():
    got = LF.log_priors(torch.tensor(COUNTS, dtype=torch.float64))
    expected = [math.log(n / sum(COUNTS)) for n in COUNTS]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_loss_buffers_hold_the_constants():
    assert create_loss("ldam", COUNTS, max_m=0.5).margins.tolist() == pytest.approx(
        ldam_deltas(0.5), rel=1e-6
    )
    temps = create_loss("cdt", COUNTS, gamma=0.3).temperatures.tolist()
    assert temps == pytest.approx([(5000 / n) ** 0.3 for n in COUNTS], rel=1e-6)


def test_requires_normed_head():
    flags = {
        name: create_loss(name, COUNTS).requires_normed_head
        for name in (
            "ce",
            "weighted-ce",
            "class-balanced",
            "focal",
            "ldam",
            "ldam-hinge",
            "hinge",
            "uniform-margin",
            "cdt",
            "logit-adjusted",
        )
    }
    assert {n for n, f in flags.items() if f} == {"ldam", "ldam-hinge", "hinge", "uniform-margin"}


# --- user errors ----------------------------------------------------------------------------------


def test_user_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'ldam'"):
        create_loss("ldamm", COUNTS)
    with pytest.raises(ConfigError, match="did you mean 'max_m'"):
        create_loss("ldam", COUNTS, max_n=0.5)
    with pytest.raises(ConfigError, match="> 0"):
        create_loss("ldam", COUNTS, s=0)
    with pytest.raises(ConfigError, match="base must be one of"):
        create_loss("class-balanced", COUNTS, base="softmaxx")
    with pytest.raises(ConfigError, match="beta must be in"):
        create_loss("class-balanced", COUNTS, beta=1.0)
    with pytest.raises(ConfigError, match="class_counts must all be > 0"):
        create_loss("ce", [10, 0, 3])
    with pytest.raises(ConfigError, match="1-D"):
        create_loss("ce", [[1, 2]])
    loss_fn = create_loss("ce", COUNTS)
    with pytest.raises(ConfigError, match="one entry per class"):
        loss_fn.set_class_weights([1.0, 2.0])
    with pytest.raises(ConfigError, match=">= 0"):
        loss_fn.set_class_weights([-1.0] * C)
    with pytest.raises(LongtailError, match=r"\[batch, 10\]"):
        loss_fn(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(LongtailError, match="integer targets"):
        loss_fn(torch.zeros(4, C), torch.zeros(4))
    with pytest.raises(ConfigError) as info:
        create_loss("ldam", COUNTS, max_n=0.5)
    assert "\n" not in str(info.value)


def test_ldam_presets():
    from longtail.losses import LDAM_PRESETS

    assert create_loss("ldam", COUNTS, **LDAM_PRESETS["paper"]).params == {"max_m": 0.5, "s": 10.0}
    assert create_loss("ldam", COUNTS, **LDAM_PRESETS["reference-code"]).params == {"max_m": 0.5, "s": 30.0}
    assert create_loss("ldam", COUNTS).params == LDAM_PRESETS["reference-code"]
