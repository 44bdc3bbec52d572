"""Re-balancing schedules: switch epochs, weights against their formulas, purity of ``at_epoch``."""

from __future__ import annotations

import pytest
import torch

from longtail import create_loss
from longtail.errors import ConfigError
from longtail.rebalance import RebalanceState
from longtail.registry import SCHEDULES

COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10, rho = 100
C = len(COUNTS)
NAMES = SCHEDULES.names()


def by_hand_inverse(power: float) -> torch.Tensor:
    raw = [n ** (-power) for n in COUNTS]
    return torch.tensor([C * v / sum(raw) for v in raw], dtype=torch.float32)


def by_hand_cb(beta: float) -> torch.Tensor:
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    return torch.tensor([C * v / sum(raw) for v in raw], dtype=torch.float32)


def test_registered_names():
    assert set(NAMES) >= {"none", "rw", "cb-rw", "rs", "drw", "drs", "deferred-cdt"}


@pytest.mark.parametrize("name", NAMES)
def test_at_epoch_is_pure_and_well_formed(name):
    schedule = SCHEDULES.create(name, class_counts=COUNTS)
    epochs = [0, 1, 44, 45, 99, 100, 101, 159, 160, 161, 199, 250]
    first = {e: schedule.at_epoch(e) for e in epochs}
    for e in reversed(epochs):  # same epoch -> same state, whatever was asked in between
        again = schedule.at_epoch(e)
        assert again == first[e]
        assert isinstance(again, RebalanceState)
        assert isinstance(again.sampler, str) and isinstance(again.sampler_params, dict)
        assert isinstance(again.loss_params, dict)
        if again.class_weights is not None:
            assert again.class_weights.dtype == torch.float32 and again.class_weights.shape == (C,)
            assert again.class_weights.sum().item() == pytest.approx(C, rel=1e-5)
            again.class_weights.mul_(0)  # a caller mutating its state must not change the schedule
    assert all(schedule.at_epoch(e) == first[e] for e in epochs)
    # a fresh schedule from the same arguments agrees (resume needs no state)
    fresh = SCHEDULES.create(name, class_counts=COUNTS)
    assert all(fresh.at_epoch(e) == first[e] for e in epochs)


def test_none():
    state = SCHEDULES.create("none", class_counts=COUNTS).at_epoch(7)
    assert state == RebalanceState(None, "instance", {}, {})


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_rw_from_epoch_zero(power):
    schedule = SCHEDULES.create("rw", class_counts=COUNTS, power=power)
    for epoch in (0, 100, 199):
        state = schedule.at_epoch(epoch)
        torch.testing.assert_close(state.class_weights, by_hand_inverse(power))
        assert state.sampler == "instance"


def test_cb_rw_from_epoch_zero():
    state = SCHEDULES.create("cb-rw", class_counts=COUNTS, beta=0.999).at_epoch(0)
    torch.testing.assert_close(state.class_weights, by_hand_cb(0.999))
    assert SCHEDULES.create("cb-rw", class_counts=COUNTS).beta == 0.9999


def test_rs_class_balanced_from_epoch_zero():
    schedule = SCHEDULES.create("rs", class_counts=COUNTS)
    assert all(schedule.at_epoch(e) == RebalanceState(None, "class-balanced", {}, {}) for e in (0, 1, 200))


def test_rs_can_resample_with_another_sampler():
    # CB RS: the effective-number sampler from epoch 0, its beta passed through to the sampler
    schedule = SCHEDULES.create(
        "rs", class_counts=COUNTS, sampler="effective-number", sampler_params={"beta": 0.999}
    )
    expected = RebalanceState(None, "effective-number", {"beta": 0.999}, {})
    assert all(schedule.at_epoch(e) == expected for e in (0, 1, 200))
    schedule.at_epoch(0).sampler_params["beta"] = 0.5  # a caller mutating its state changes nothing
    assert schedule.at_epoch(3) == expected
    with pytest.raises(ConfigError, match="did you mean 'effective-number'"):
        SCHEDULES.create("rs", class_counts=COUNTS, sampler="effective-numbr")
    with pytest.raises(ConfigError, match="beta"):
        SCHEDULES.create("rs", class_counts=COUNTS, sampler="effective-number", sampler_params={"beta": 1.0})
    with pytest.raises(ConfigError, match="unknown parameter"):
        SCHEDULES.create("rs", class_counts=COUNTS, sampler="class-balanced", sampler_params={"beta": 0.9})
    with pytest.raises(ConfigError, match="sampler_params must be a mapping"):
        SCHEDULES.create("rs", class_counts=COUNTS, sampler="effective-number", sampler_params=[0.9])


@pytest.mark.parametrize(
    "params,expected",
    [
        ({}, by_hand_cb(0.9999)),  # default: reference code, CB β = 0.9999
        ({"weights": "cb", "beta": 0.999}, by_hand_cb(0.999)),
        ({"weights": "inverse"}, by_hand_inverse(1.0)),  # the paper's text
        ({"weights": "inverse", "power": 0.5}, by_hand_inverse(0.5)),
    ],
)
@pytest.mark.parametrize("start_epoch", [None, 3, 0])
def test_drw_switches_exactly_at_start_epoch(params, expected, start_epoch):
    kwargs = dict(params)
    if start_epoch is not None:
        kwargs["start_epoch"] = start_epoch
    schedule = SCHEDULES.create("drw", class_counts=COUNTS, **kwargs)
    start = 160 if start_epoch is None else start_epoch
    for epoch in range(0, start):
        assert schedule.at_epoch(epoch).class_weights is None
    for epoch in (start, start + 1, start + 39):
        state = schedule.at_epoch(epoch)
        torch.testing.assert_close(state.class_weights, expected)
        assert state.sampler == "instance" and state.loss_params == {}


def test_drw_weights_change_the_loss_exactly_at_the_switch():
    schedule = SCHEDULES.create("drw", class_counts=COUNTS, start_epoch=2, weights="inverse")
    loss_fn = create_loss("ldam", COUNTS)
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.rand(16, C, generator=g) * 2 - 1, torch.randint(0, C, (16,), generator=g)
    values = []
    for epoch in range(4):
        loss_fn.set_class_weights(schedule.at_epoch(epoch).class_weights)
        values.append(loss_fn(logits, targets).item())
    assert values[0] == values[1] and values[2] == values[3] and values[1] != values[2]
    w = by_hand_inverse(1.0)[targets].double()
    per_example = torch.nn.functional.cross_entropy(
        30 * (logits - torch.nn.functional.one_hot(targets, C) * loss_fn.margins[targets, None]),
        targets,
        reduction="none",
    ).double()
    assert values[2] == pytest.approx(((w * per_example).sum() / w.sum()).item(), rel=1e-5)


def test_drs_switches_sampler():
    schedule = SCHEDULES.create("drs", class_counts=COUNTS, start_epoch=5)
    assert [schedule.at_epoch(e).sampler for e in range(4, 7)] == [
        "instance",
        "class-balanced",
        "class-balanced",
    ]
    assert all(schedule.at_epoch(e).class_weights is None for e in range(10))
    assert SCHEDULES.create("drs", class_counts=COUNTS).start_epoch == 160


def test_deferred_cdt_sets_gamma():
    schedule = SCHEDULES.create("deferred-cdt", class_counts=COUNTS, start_epoch=45, gamma=0.1)
    assert schedule.at_epoch(44).loss_params == {"gamma": 0.0}
    assert schedule.at_epoch(45).loss_params == {"gamma": 0.1}
    loss_fn = create_loss("cdt", COUNTS, gamma=0.1)
    for epoch, gamma in ((0, 0.0), (45, 0.1), (3, 0.0)):
        loss_fn.set_params(**schedule.at_epoch(epoch).loss_params)
        expected = [(5000 / n) ** gamma for n in COUNTS]
        assert loss_fn.temperatures.tolist() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ConfigError, match="deferred-cdt needs the cdt loss"):
        create_loss("ce", COUNTS).set_params(**schedule.at_epoch(0).loss_params)


def test_schedule_errors():
    with pytest.raises(ConfigError, match="did you mean 'start_epoch'"):
        SCHEDULES.create("drw", class_counts=COUNTS, start=3)
    with pytest.raises(ConfigError, match="weights must be one of cb, inverse"):
        SCHEDULES.create("drw", class_counts=COUNTS, weights="effective")
    with pytest.raises(ConfigError, match="start_epoch"):
        SCHEDULES.create("drs", class_counts=COUNTS, start_epoch=-1)
    with pytest.raises(ConfigError, match="start_epoch"):
        SCHEDULES.create("drs", class_counts=COUNTS, start_epoch=1.5)
    with pytest.raises(ConfigError, match="beta"):
        SCHEDULES.create("cb-rw", class_counts=COUNTS, beta=1.5)
    with pytest.raises(ConfigError, match="gamma"):
        SCHEDULES.create("deferred-cdt", class_counts=COUNTS, gamma=-0.1)
    with pytest.raises(ConfigError, match="epoch"):
        SCHEDULES.create("none", class_counts=COUNTS).at_epoch(-1)
    with pytest.raises(ConfigError, match="unknown schedule"):
        SCHEDULES.create("drww", class_counts=COUNTS)


def test_drw_presets():
    from longtail.rebalance import DRW_PRESETS

    paper = SCHEDULES.create("drw", class_counts=COUNTS, **DRW_PRESETS["paper"])
    reference = SCHEDULES.create("drw", class_counts=COUNTS, **DRW_PRESETS["reference-code"])
    torch.testing.assert_close(paper.at_epoch(160).class_weights, by_hand_inverse(1.0))
    torch.testing.assert_close(reference.at_epoch(160).class_weights, by_hand_cb(0.9999))
    assert paper.at_epoch(159).class_weights is None and reference.at_epoch(159).class_weights is None


def test_cb_rs_config_reaches_the_engine_as_the_effective_number_sampler():
    # the generated CB-RS config → rs schedule → the engine's sampler choice → a working sampler
    from pathlib import Path

    from longtail.config import load_config
    from longtail.engine.trainer import sampler_choice
    from longtail.registry import SAMPLERS

    path = Path(__file__).resolve().parents[2] / "configs" / "cifar10-lt" / "exp100" / "cb-rs.yaml"
    config = load_config(path, ["rebalance.params.sampler_params.beta=0.99"])
    schedule = SCHEDULES.create(config.rebalance.name, class_counts=COUNTS, **config.rebalance.params)
    name, params = sampler_choice(config, schedule.at_epoch(0))
    assert (name, params) == ("effective-number", {"beta": 0.99})
    assert load_config(path).rebalance.params["sampler_params"] == {"beta": 0.9999}
    labels = torch.repeat_interleave(torch.arange(C), torch.tensor(COUNTS))
    sampler = SAMPLERS.create(name, labels=labels, seed=0, **params)
    raw = [n * (1 - 0.99) / (1 - 0.99**n) for n in COUNTS]
    torch.testing.assert_close(
        sampler.class_probabilities(), torch.tensor([v / sum(raw) for v in raw], dtype=torch.float64)
    )
