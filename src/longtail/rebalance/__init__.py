"""Re-balancing: per-class weights and epoch-driven schedules (RW, CB-RW, RS, DRW, DRS, deferred CDT).

``SCHEDULES.create(name, class_counts=..., **params).at_epoch(epoch) -> RebalanceState``.
"""

from __future__ import annotations

from longtail.rebalance.schedules import (
    DRW_PRESETS,
    ClassBalancedReWeighting,
    DeferredCDT,
    DeferredReSampling,
    DeferredReWeighting,
    NoRebalance,
    RebalanceState,
    ReSampling,
    ReWeighting,
    Schedule,
)
from longtail.rebalance.weights import effective_number_weights, inverse_power_weights

__all__ = [
    "DRW_PRESETS",
    "ClassBalancedReWeighting",
    "DeferredCDT",
    "DeferredReSampling",
    "DeferredReWeighting",
    "NoRebalance",
    "ReSampling",
    "ReWeighting",
    "RebalanceState",
    "Schedule",
    "effective_number_weights",
    "inverse_power_weights",
]
