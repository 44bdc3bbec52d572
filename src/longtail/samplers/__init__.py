"""Samplers: instance, class-balanced (RS), square-root, power q, progressive, effective-number (CB RS)
— distributed-aware.

``SAMPLERS.create(name, labels=..., seed=..., num_samples=None, rank=0, world_size=1, **params)``;
each draw depends only on ``(seed, epoch)`` (``set_epoch``) and is split into disjoint rank shards.
"""

from __future__ import annotations

from longtail.samplers.base import ClassProbabilitySampler, EpochSampler, epoch_generator, epoch_seed
from longtail.samplers.samplers import (
    ClassBalancedSampler,
    EffectiveNumberSampler,
    InstanceSampler,
    PowerSampler,
    ProgressiveSampler,
    SquareRootSampler,
)

__all__ = [
    "ClassBalancedSampler",
    "ClassProbabilitySampler",
    "EffectiveNumberSampler",
    "EpochSampler",
    "InstanceSampler",
    "PowerSampler",
    "ProgressiveSampler",
    "SquareRootSampler",
    "epoch_generator",
    "epoch_seed",
]
