"""Samplers: class frequencies vs their targets (5σ binomial tolerance), determinism, rank shards."""

from __future__ import annotations

import math

import pytest
import torch

from longtail.errors import ConfigError, DataError
from longtail.registry import SAMPLERS

# A small long-tailed training set: 4 classes, 200/60/20/5 examples, labels shuffled.
COUNTS = [200, 60, 20, 5]


def _labels(counts=COUNTS, seed=0) -> torch.Tensor:
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    g = torch.Generator().manual_seed(seed)
    return labels[torch.randperm(labels.numel(), generator=g)]


def _params(name: str) -> dict:
    return {"power": {"q": 0.3}, "progressive": {"total_epochs": 10}, "effective-number": {"beta": 0.99}}.get(name, {})


def _assert_frequencies(drawn_labels: torch.Tensor, target: list[float], sigmas: float = 5.0) -> None:
    """Each class count within `sigmas` binomial standard deviations of n·p (p=0 → never drawn)."""
    n = drawn_labels.numel()
    counts = torch.bincount(drawn_labels, minlength=len(target)).tolist()
    for c, p in enumerate(target):
        if p == 0.0:
            assert counts[c] == 0, f"class {c} has probability 0 but was drawn {counts[c]} times"
            continue
        std = math.sqrt(n * p * (1.0 - p))
        assert abs(counts[c] - n * p) <= sigmas * std, (c, counts[c], n * p, std)


def _power_target(counts: list[int], q: float) -> list[float]:
    w = [float(n) ** q if n > 0 else 0.0 for n in counts]
    return [x / sum(w) for x in w]


def _effective_number_target(counts: list[int], beta: float) -> list[float]:
    # Cui et al.: E_c = (1 − β^{n_c}) / (1 − β); each example drawn ∝ 1/E_y, so class c ∝ n_c / E_c
    w = [n * (1.0 - beta) / (1.0 - beta**n) if beta > 0 else float(n) for n in counts]
    return [x / sum(w) for x in w]


@pytest.mark.parametrize(
    "name, params, target",
    [
        ("class-balanced", {}, [0.25, 0.25, 0.25, 0.25]),
        ("effective-number", {"beta": 0.99}, _effective_number_target(COUNTS, 0.99)),
        ("effective-number", {"beta": 0.9}, _effective_number_target(COUNTS, 0.9)),
        ("effective-number", {"beta": 0.0}, [n / sum(COUNTS) for n in COUNTS]),
        ("square-root", {}, _power_target(COUNTS, 0.5)),
        ("power", {"q": 0.0}, [0.25, 0.25, 0.25, 0.25]),
        ("power", {"q": 0.3}, _power_target(COUNTS, 0.3)),
        ("power", {"q": 1.0}, [n / sum(COUNTS) for n in COUNTS]),
        ("power", {"q": 1.5}, _power_target(COUNTS, 1.5)),
    ],
)
def test_class_frequencies_match_target(name, params, target):
    labels = _labels()
    sampler = SAMPLERS.create(name, labels=labels, seed=3, num_samples=20000, **params)
    sampler.set_epoch(2)
    torch.testing.assert_close(sampler.class_probabilities(), torch.tensor(target, dtype=torch.float64))
    _assert_frequencies(labels[sampler.epoch_indices()], target)


def test_class_balanced_examples_uniform_within_class():
    # Per-example probability (1/C) / n_c: each of the 5 tail examples ≈ 1/20 of the draw.
    labels = _labels()
    sampler = SAMPLERS.create("class-balanced", labels=labels, seed=1, num_samples=20000)
    drawn = sampler.epoch_indices()
    per_example = torch.bincount(drawn, minlength=labels.numel())
    for c, n_c in enumerate(COUNTS):
        p = 0.25 / n_c
        std = math.sqrt(20000 * p * (1 - p))
        members = (labels == c).nonzero().flatten()
        assert (per_example[members] - 20000 * p).abs().max() <= 5 * std
    assert int(per_example.sum()) == 20000


def test_instance_is_a_permutation_each_epoch():
    labels = _labels()
    sampler = SAMPLERS.create("instance", labels=labels, seed=0)
    assert len(sampler) == labels.numel()
    first = list(sampler)
    assert sorted(first) == list(range(labels.numel()))
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(labels.numel())) and second != first


def test_instance_more_samples_concatenates_permutations():
    labels = _labels()
    n = labels.numel()
    sampler = SAMPLERS.create("instance", labels=labels, seed=0, num_samples=2 * n + 7)
    draw = sampler.global_draw()
    assert draw.numel() == 2 * n + 7
    assert sorted(draw[:n].tolist()) == list(range(n))
    assert sorted(draw[n : 2 * n].tolist()) == list(range(n))
    assert len(set(draw[2 * n :].tolist())) == 7


@pytest.mark.parametrize(
    "name", ["instance", "class-balanced", "square-root", "power", "progressive", "effective-number"]
)
def test_same_seed_epoch_same_stream_other_epoch_differs(name):
    labels = _labels()
    a = SAMPLERS.create(name, labels=labels, seed=7, **_params(name))
    b = SAMPLERS.create(name, labels=labels.clone(), seed=7, **_params(name))
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b)
    assert list(a) == list(a)  # iterating again replays the epoch
    b.set_epoch(5)
    assert list(a) != list(b)
    c = SAMPLERS.create(name, labels=labels, seed=8, **_params(name))
    c.set_epoch(4)
    assert list(a) != list(c)
    # The draw does not depend on the global RNG.
    torch.manual_seed(123)
    x = list(a)
    torch.manual_seed(456)
    assert list(a) == x


@pytest.mark.parametrize("name", ["instance", "class-balanced", "progressive", "effective-number"])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("num_samples", [None, 37, 40])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shards_disjoint_and_cover_the_epoch_draw(name, world_size, num_samples, drop_last):
    labels = _labels()
    n = labels.numel() if num_samples is None else num_samples
    shards = []
    for rank in range(world_size):
        s = SAMPLERS.create(
            name,
            labels=labels,
            seed=11,
            num_samples=num_samples,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last,
            **_params(name),
        )
        s.set_epoch(3)
        shards.append(s.epoch_indices())
        assert len(s) == shards[-1].numel() == len(list(s))
    reference = SAMPLERS.create(name, labels=labels, seed=11, num_samples=num_samples, **_params(name))
    reference.set_epoch(3)
    draw = reference.global_draw()  # the epoch's draw does not depend on rank or world size
    assert draw.numel() == n
    total = (n // world_size) * world_size if drop_last else math.ceil(n / world_size) * world_size
    # Interleave the shards back by position: exactly the global draw, padded with its head or truncated.
    rebuilt = torch.empty(total, dtype=torch.int64)
    positions = set()
    for rank, shard in enumerate(shards):
        assert shard.numel() == total // world_size
        pos = list(range(rank, total, world_size))
        assert positions.isdisjoint(pos)
        positions.update(pos)
        rebuilt[pos] = shard
    assert positions == set(range(total))
    if drop_last:
        torch.testing.assert_close(rebuilt, draw[:total])
    else:
        torch.testing.assert_close(rebuilt[:n], draw)
        torch.testing.assert_close(rebuilt[n:], draw[: total - n])
        assert total - n < world_size


@pytest.mark.parametrize("mode", ["probability", "exponent"])
def test_progressive_endpoints_and_midpoint(mode):
    labels = _labels()
    sampler = SAMPLERS.create("progressive", labels=labels, seed=0, total_epochs=10, mode=mode)
    total = sum(COUNTS)
    instance = torch.tensor([n / total for n in COUNTS], dtype=torch.float64)
    balanced = torch.full((4,), 0.25, dtype=torch.float64)
    torch.testing.assert_close(sampler.class_probabilities(0), instance)
    torch.testing.assert_close(sampler.class_probabilities(10), balanced)
    torch.testing.assert_close(sampler.class_probabilities(25), balanced)
    if mode == "probability":
        mid = 0.5 * instance + 0.5 * balanced
    else:
        mid = torch.tensor(_power_target(COUNTS, 0.5), dtype=torch.float64)
    torch.testing.assert_close(sampler.class_probabilities(5), mid)
    big = SAMPLERS.create("progressive", labels=labels, seed=0, total_epochs=10, mode=mode, num_samples=20000)
    for epoch, target in [(0, instance), (5, mid), (10, balanced)]:
        big.set_epoch(epoch)
        _assert_frequencies(labels[big.epoch_indices()], target.tolist())


def test_effective_number_sampler_between_instance_and_class_balanced():
    labels = _labels()
    target = _effective_number_target(COUNTS, 0.99)
    # the 5σ check can fail: this target is far from both neighbours it interpolates between
    sampler = SAMPLERS.create("effective-number", labels=labels, seed=5, num_samples=20000, beta=0.99)
    drawn = labels[sampler.epoch_indices()]
    _assert_frequencies(drawn, target)
    for other in ([0.25] * 4, [n / sum(COUNTS) for n in COUNTS]):
        with pytest.raises(AssertionError):
            _assert_frequencies(drawn, other)
    # β → 1: E_c → n_c, the class-balanced sampler (RS); default β = 0.9999 is close to it here
    near_one = SAMPLERS.create("effective-number", labels=labels, seed=0, beta=1.0 - 1e-9)
    torch.testing.assert_close(near_one.class_probabilities(), torch.full((4,), 0.25, dtype=torch.float64))
    default = SAMPLERS.create("effective-number", labels=labels, seed=0)
    assert default.beta == 0.9999
    torch.testing.assert_close(
        default.class_probabilities(), torch.tensor(_effective_number_target(COUNTS, 0.9999), dtype=torch.float64)
    )


def test_effective_number_examples_uniform_within_class():
    # per-example probability ∝ 1/E_y: p_c / n_c for each member of class c
    labels = _labels()
    target = _effective_number_target(COUNTS, 0.9)
    sampler = SAMPLERS.create("effective-number", labels=labels, seed=2, num_samples=20000, beta=0.9)
    per_example = torch.bincount(sampler.epoch_indices(), minlength=labels.numel())
    for c, n_c in enumerate(COUNTS):
        p = target[c] / n_c
        std = math.sqrt(20000 * p * (1 - p))
        members = (labels == c).nonzero().flatten()
        assert (per_example[members] - 20000 * p).abs().max() <= 5 * std


def test_effective_number_empty_class_and_bad_beta():
    labels = torch.tensor([0] * 30 + [2] * 3)  # class 1 has no examples
    sampler = SAMPLERS.create("effective-number", labels=labels, seed=0, num_samples=5000, beta=0.9)
    w0, w2 = 30 * 0.1 / (1 - 0.9**30), 3 * 0.1 / (1 - 0.9**3)
    expected = [w0 / (w0 + w2), 0.0, w2 / (w0 + w2)]
    torch.testing.assert_close(sampler.class_probabilities(), torch.tensor(expected, dtype=torch.float64))
    _assert_frequencies(labels[sampler.epoch_indices()], expected)
    for beta in (1.0, -0.1, float("nan"), "0.9", True):
        with pytest.raises(ConfigError, match="beta"):
            SAMPLERS.create("effective-number", labels=labels, seed=0, beta=beta)


def test_empty_class_is_never_drawn():
    labels = torch.tensor([0] * 30 + [2] * 3)  # class 1 has no examples
    sampler = SAMPLERS.create("class-balanced", labels=labels, seed=0, num_samples=5000)
    torch.testing.assert_close(
        sampler.class_probabilities(), torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    )
    _assert_frequencies(labels[sampler.epoch_indices()], [0.5, 0.0, 0.5])


def test_invalid_arguments_raise_clear_errors():
    labels = _labels()
    with pytest.raises(ConfigError, match="rank"):
        SAMPLERS.create("instance", labels=labels, seed=0, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="world_size"):
        SAMPLERS.create("instance", labels=labels, seed=0, world_size=0)
    with pytest.raises(ConfigError, match="num_samples"):
        SAMPLERS.create("instance", labels=labels, seed=0, num_samples=0)
    with pytest.raises(DataError, match="integers"):
        SAMPLERS.create("instance", labels=labels.float(), seed=0)
    with pytest.raises(DataError, match=">= 0"):
        SAMPLERS.create("instance", labels=torch.tensor([0, -1]), seed=0)
    with pytest.raises(ConfigError, match="q"):
        SAMPLERS.create("power", labels=labels, seed=0, q=float("nan"))
    with pytest.raises(ConfigError, match="total_epochs"):
        SAMPLERS.create("progressive", labels=labels, seed=0, total_epochs=0)
    with pytest.raises(ConfigError, match="did you mean"):
        SAMPLERS.create("class-balance", labels=labels, seed=0)
    with pytest.raises(ConfigError, match="epoch"):
        SAMPLERS.create("instance", labels=labels, seed=0).set_epoch(-1)


def test_every_registered_sampler_has_a_summary():
    for name in SAMPLERS.names():
        assert SAMPLERS.summary(name)


def test_usable_as_a_torch_dataloader_sampler():
    labels = _labels()
    sampler = SAMPLERS.create("square-root", labels=labels, seed=2, world_size=2, rank=0)
    sampler.set_epoch(1)
    dataset = torch.utils.data.TensorDataset(torch.arange(labels.numel()))
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=16)
    seen = torch.cat([batch[0] for batch in loader])
    assert seen.tolist() == sampler.epoch_indices().tolist() and len(seen) == len(sampler)


def test_unknown_parameter_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown parameter.*q"):
        SAMPLERS.create("instance", labels=_labels(), seed=0, q=0.5)
