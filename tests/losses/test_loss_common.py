"""Shared checks run over EVERY registered loss (a new loss is picked up automatically).

A newly registered loss must get an entry in ``NEUTRAL`` (its neutral parameters and the plain
loss it reduces to there), otherwise ``test_every_loss_has_a_neutral_entry`` fails.
"""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from longtail import create_loss
from longtail.losses import ClassCountLoss
from longtail.registry import LOSSES

COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10, rho = 100
C = len(COUNTS)
NAMES = LOSSES.names()


def plain_ce(logits, targets, weights):
    return F.cross_entropy(logits.double(), targets, weight=None if weights is None else weights.double())


def plain_hinge(logits, targets, weights):
    # Crammer–Singer multi-class hinge, written out: max(max_{j≠y} z_j − z_y, 0)
    rows = []
    for row, y in zip(logits.double(), targets.tolist()):
        others = torch.cat([row[:y], row[y + 1 :]])
        rows.append(torch.clamp_min(others.max() - row[y], 0.0))
    per_example = torch.stack(rows)
    if weights is None:
        return per_example.mean()
    w = weights.double()[targets]
    return (w * per_example).sum() / w.sum()


# name -> (neutral parameters, the plain loss it equals there)
NEUTRAL = {
    "ce": ({}, plain_ce),
    "weighted-ce": ({"power": 0.0}, plain_ce),
    "class-balanced": ({"beta": 0.0, "base": "softmax"}, plain_ce),
    "focal": ({"gamma": 0.0}, plain_ce),
    "ldam": ({"max_m": 0.0, "s": 1.0}, plain_ce),
    "uniform-margin": ({"margin": 0.0, "s": 1.0}, plain_ce),
    "cdt": ({"gamma": 0.0}, plain_ce),
    "logit-adjusted": ({"tau": 0.0}, plain_ce),
    # a hinge is not a cross-entropy: at its neutral setting it is the plain multi-class hinge
    "ldam-hinge": ({"max_m": 0.0, "s": 1.0}, plain_hinge),
    "hinge": ({"margin": 0.0, "s": 1.0}, plain_hinge),
}

# non-default parameters for the state_dict round trip (every parameter moved off its default)
NON_DEFAULT = {
    "ce": {},
    "weighted-ce": {"power": 0.5},
    "class-balanced": {"beta": 0.999, "base": "focal", "gamma": 2.0},
    "focal": {"gamma": 2.0, "variant": "reference-code"},
    "ldam": {"max_m": 0.3, "s": 10.0},
    "uniform-margin": {"margin": 0.2, "s": 16.0},
    "cdt": {"gamma": 0.2},
    "logit-adjusted": {"tau": 0.7},
    "ldam-hinge": {"max_m": 0.3, "s": 2.0},
    "hinge": {"margin": 0.3, "s": 2.0},
}


def batch(seed: int, batch_size: int = 32, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.rand(batch_size, C, generator=g) * 2 - 1) * scale
    targets = torch.randint(0, C, (batch_size,), generator=g)
    weights = torch.rand(C, generator=g) + 0.1
    return logits, targets, weights


def test_every_loss_has_a_neutral_entry():
    missing = sorted(set(NAMES) - set(NEUTRAL))
    assert not missing, f"add neutral parameters for {missing} to NEUTRAL in this file"
    assert not sorted(set(NAMES) - set(NON_DEFAULT)), "add non-default parameters to NON_DEFAULT"
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_declared_neutral_params_match_the_neutral_setting(name):
    # `longtail tune` breaks ties toward the loss's neutral_params (0 where none is declared)
    declared = LOSSES.get(name).neutral_params
    for key, value in NEUTRAL[name][0].items():
        if isinstance(value, float):
            assert declared.get(key, 0.0) == value, f"{name}.neutral_params[{key!r}] should be {value}"


@pytest.mark.parametrize("name", NAMES)
def test_is_a_class_count_loss(name):
    loss_fn = create_loss(name, COUNTS)
    assert isinstance(loss_fn, ClassCountLoss)
    assert loss_fn.class_counts.dtype == torch.float64
    assert loss_fn.class_counts.tolist() == COUNTS
    assert loss_fn.class_weights is None
    assert LOSSES.summary(name)  # `longtail list losses` has a line to show


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", NAMES)
def test_equals_plain_loss_at_neutral_setting(name, weighted):
    if name not in NEUTRAL:
        pytest.fail(f"registered loss {name!r} has no entry in NEUTRAL")
    params, reference = NEUTRAL[name]
    loss_fn = create_loss(name, COUNTS, **params)
    for seed in range(3):
        logits, targets, weights = batch(seed, scale=4.0)
        w = weights if weighted else None
        loss_fn.set_class_weights(w)
        torch.testing.assert_close(
            loss_fn(logits, targets).double(), reference(logits, targets, w), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", NAMES)
def test_default_setting_differs_from_neutral(name):
    # the shared neutral check above would pass trivially for a loss that ignored its parameters
    params, _ = NEUTRAL[name]
    if not params:
        pytest.skip(f"{name} has no parameters")
    logits, targets, _ = batch(11)
    default = create_loss(name, COUNTS)(logits, targets)
    neutral = create_loss(name, COUNTS, **params)(logits, targets)
    assert abs(default.item() - neutral.item()) > 1e-3


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("scale", [1.0, 60.0], ids=["cosine", "large"])
@pytest.mark.parametrize("name", NAMES)
def test_finite_gradients(name, scale, weighted):
    loss_fn = create_loss(name, COUNTS, **NON_DEFAULT[name])
    logits, targets, weights = batch(3, scale=scale)
    loss_fn.set_class_weights(weights if weighted else None)
    logits.requires_grad_(True)
    value = loss_fn(logits, targets)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_invariant_to_batch_order(name):
    loss_fn = create_loss(name, COUNTS, **NON_DEFAULT[name])
    logits, targets, weights = batch(5)
    perm = torch.randperm(len(targets), generator=torch.Generator().manual_seed(9))
    for w in (None, weights):
        loss_fn.set_class_weights(w)
        torch.testing.assert_close(loss_fn(logits[perm], targets[perm]), loss_fn(logits, targets))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    source = create_loss(name, COUNTS, **NON_DEFAULT[name])
    _, _, weights = batch(6)
    source.set_class_weights(weights)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)

    target = create_loss(name, COUNTS)  # default parameters, no weights
    target.load_state_dict(state)
    assert target.params == source.params
    torch.testing.assert_close(target.class_weights, source.class_weights)
    logits, targets, _ = batch(7)
    torch.testing.assert_close(target(logits, targets), source(logits, targets))

    # and back to uniform weights when the saved loss had none
    source.set_class_weights(None)
    target.load_state_dict(source.state_dict())
    assert target.class_weights is None
    torch.testing.assert_close(target(logits, targets), source(logits, targets))


@pytest.mark.parametrize("name", NAMES)
def test_bf16_logits_give_fp32_loss(name):
    loss_fn = create_loss(name, COUNTS, **NON_DEFAULT[name])
    logits, targets, weights = batch(8)
    loss_fn.set_class_weights(weights)
    low = logits.bfloat16().requires_grad_(True)
    value = loss_fn(low, targets)
    assert value.dtype == torch.float32
    # computed in fp32 on the bf16 values, not in bf16
    torch.testing.assert_close(value, loss_fn(low.detach().float(), targets))
    value.backward()
    assert (
        low.grad is not None and low.grad.dtype == torch.bfloat16 and torch.isfinite(low.grad.float()).all()
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert loss_fn(low.detach(), targets).dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_weights_are_scale_free_and_uniform_weights_change_nothing(name):
    # Σ w ℓ / Σ w: multiplying every weight by a constant, or setting them all equal, is a no-op —
    # except the focal reference-code variant, whose plain mean is documented to depend on the scale.
    params = dict(NON_DEFAULT[name])
    if name == "focal":
        params["variant"] = "paper"
    loss_fn = create_loss(name, COUNTS, **params)
    logits, targets, weights = batch(10)
    unweighted = loss_fn(logits, targets)
    loss_fn.set_class_weights(torch.full((C,), 3.0))
    torch.testing.assert_close(loss_fn(logits, targets), unweighted)
    loss_fn.set_class_weights(weights)
    scaled = create_loss(name, COUNTS, **params)
    scaled.set_class_weights(weights * 7.0)
    torch.testing.assert_close(scaled(logits, targets), loss_fn(logits, targets))
    assert abs(loss_fn(logits, targets).item() - unweighted.item()) > 1e-4
