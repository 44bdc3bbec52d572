"""Re-balancing schedules driven by the epoch (SPEC §3): RW, CB-RW, RS, DRW, DRS, deferred CDT.

A schedule is built from the training class counts and answers one question, as a pure function
of the epoch (0-based), so that a resumed run needs no schedule state::

    schedule = SCHEDULES.create("drw", class_counts=counts, start_epoch=160)
    state = schedule.at_epoch(epoch)
    loss.set_class_weights(state.class_weights)
    loss.set_params(**state.loss_params)
    sampler = SAMPLERS.create(state.sampler, labels=..., seed=..., **state.sampler_params)

"From epoch E" means epochs ``E, E+1, ...`` (0-based) use the new setting; epochs ``0 .. E-1``
use the plain one. With the reference CIFAR schedule (200 epochs, first lr decay after epoch 160)
``start_epoch=160`` switches exactly when the learning rate first drops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import torch

from longtail.errors import ConfigError
from longtail.rebalance.weights import as_class_counts, effective_number_weights, inverse_power_weights
from longtail.registry import Epoch, Fraction, NonNegative, register_schedule

__all__ = [
    "RebalanceState",
    "Schedule",
    "NoRebalance",
    "ReWeighting",
    "ClassBalancedReWeighting",
    "ReSampling",
    "DeferredReWeighting",
    "DeferredReSampling",
    "DeferredCDT",
    "DRW_PRESETS",
]


@dataclasses.dataclass
class RebalanceState:
    """What the training loop uses during one epoch."""

    class_weights: torch.Tensor | None  # float32 [C] or None (uniform)
    sampler: str  # sampler name for this epoch, e.g. "instance"
    sampler_params: dict = dataclasses.field(default_factory=dict)
    loss_params: dict = dataclasses.field(default_factory=dict)  # e.g. {"gamma": 0.0} for deferred CDT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RebalanceState):
            return NotImplemented
        if (self.class_weights is None) != (other.class_weights is None):
            return False
        if self.class_weights is not None and not torch.equal(self.class_weights, other.class_weights):
            return False
        return (self.sampler, self.sampler_params, self.loss_params) == (
            other.sampler,
            other.sampler_params,
            other.loss_params,
        )


def _check_epoch(epoch: Any) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ConfigError(f"epoch must be an integer >= 0, got {epoch!r}")
    return epoch


class Schedule:
    """Base class: holds the class counts; subclasses implement ``at_epoch``.

    Parameters are declared with their types in ``__init__``; ``SCHEDULES.create`` checks them.
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor) -> None:
        self.class_counts = as_class_counts(class_counts)

    @property
    def num_classes(self) -> int:
        return int(self.class_counts.numel())

    def at_epoch(self, epoch: int) -> RebalanceState:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if k != "class_counts" and not k.startswith("_")}
        inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"


def _weights32(weights: torch.Tensor) -> torch.Tensor:
    return weights.to(torch.float32)


@register_schedule("none")
class NoRebalance(Schedule):
    """No re-balancing: uniform weights and instance sampling at every epoch (ERM)."""

    def at_epoch(self, epoch: int) -> RebalanceState:
        _check_epoch(epoch)
        return RebalanceState(class_weights=None, sampler="instance", sampler_params={}, loss_params={})


@register_schedule("rw")
class ReWeighting(Schedule):
    """RW from epoch 0: class weights w_j ∝ n_j^(−p), Σ w = C (p=1 inverse frequency; p=0.5 CDT paper).

    Cao et al. 2019 §4 (RW baseline, p = 1); Ye et al. 2020 §5 (weights N_c^(−γ)).
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, power: NonNegative = 1.0) -> None:
        super().__init__(class_counts)
        self.power = power
        self._weights = _weights32(inverse_power_weights(self.class_counts, self.power))

    def at_epoch(self, epoch: int) -> RebalanceState:
        _check_epoch(epoch)
        return RebalanceState(self._weights.clone(), "instance", {}, {})


@register_schedule("cb-rw")
class ClassBalancedReWeighting(Schedule):
    """CB-RW from epoch 0: w_j ∝ (1 − β) / (1 − β^{n_j}) (Cui et al. 2019), Σ w = C; β default 0.9999."""

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, beta: Fraction = 0.9999) -> None:
        super().__init__(class_counts)
        self.beta = beta
        self._weights = _weights32(effective_number_weights(self.class_counts, self.beta))

    def at_epoch(self, epoch: int) -> RebalanceState:
        _check_epoch(epoch)
        return RebalanceState(self._weights.clone(), "instance", {}, {})


@register_schedule("rs")
class ReSampling(Schedule):
    """RS from epoch 0: class-balanced sampling (each example drawn with probability ∝ 1/n_y).

    ``sampler`` (default ``"class-balanced"``) names another registered sampler to re-sample with
    from epoch 0, ``sampler_params`` its parameters — e.g. ``sampler="effective-number",
    sampler_params={"beta": 0.9999}`` is CB RS (Cui et al. 2019; the LDAM paper's "CB RS" row).
    Both are checked when the schedule is built (an unknown name or parameter is a ConfigError).
    """

    def __init__(
        self,
        class_counts: Sequence[float] | torch.Tensor,
        sampler: str = "class-balanced",
        sampler_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(class_counts)
        self.sampler, self.sampler_params = sampler, dict(sampler_params or {})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        from longtail.registry import SAMPLERS

        sampler = params.get("sampler", "class-balanced")
        SAMPLERS.check(sampler, params.get("sampler_params"))

    def at_epoch(self, epoch: int) -> RebalanceState:
        _check_epoch(epoch)
        return RebalanceState(None, self.sampler, dict(self.sampler_params), {})


# DRW weights: the LDAM paper's text re-weights by inverse frequency; its reference code uses CB weights.
DRW_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"start_epoch": 160, "weights": "inverse", "power": 1.0},
    "reference-code": {"start_epoch": 160, "weights": "cb", "beta": 0.9999},
}


@register_schedule("drw")
class DeferredReWeighting(Schedule):
    """DRW (Cao et al. 2019, Alg. 1): uniform weights before ``start_epoch``, class weights from it on.

    ``weights="cb"`` (default, the LDAM-DRW reference code): w_j ∝ (1 − β)/(1 − β^{n_j}) with
    β = 0.9999. ``weights="inverse"`` (the paper's text, "re-weighting by frequency"):
    w_j ∝ n_j^(−power), power = 1. Both normalised to Σ w = C; the loss re-normalises within each
    batch (Σ w_{y_i} ℓ_i / Σ w_{y_i}). ``start_epoch`` defaults to 160, the first lr decay of the
    reference 200-epoch CIFAR schedule.
    """

    def __init__(
        self,
        class_counts: Sequence[float] | torch.Tensor,
        start_epoch: Epoch = 160,
        weights: Literal["cb", "inverse"] = "cb",
        beta: Fraction = 0.9999,
        power: NonNegative = 1.0,
    ) -> None:
        super().__init__(class_counts)
        self.start_epoch = start_epoch
        self.weights = weights
        self.beta = beta
        self.power = power
        if weights == "cb":
            full = effective_number_weights(self.class_counts, self.beta)
        else:
            full = inverse_power_weights(self.class_counts, self.power)
        self._weights = _weights32(full)

    def at_epoch(self, epoch: int) -> RebalanceState:
        if _check_epoch(epoch) < self.start_epoch:
            return RebalanceState(None, "instance", {}, {})
        return RebalanceState(self._weights.clone(), "instance", {}, {})


@register_schedule("drs")
class DeferredReSampling(Schedule):
    """DRS (Cao et al. 2019): instance sampling before ``start_epoch`` (default 160), class-balanced from it on."""

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, start_epoch: Epoch = 160) -> None:
        super().__init__(class_counts)
        self.start_epoch = start_epoch

    def at_epoch(self, epoch: int) -> RebalanceState:
        if _check_epoch(epoch) < self.start_epoch:
            return RebalanceState(None, "instance", {}, {})
        return RebalanceState(None, "class-balanced", {}, {})


@register_schedule("deferred-cdt")
class DeferredCDT(Schedule):
    """Deferred CDT (Ye et al. 2020, iNaturalist): loss γ = 0 before ``start_epoch``, the target γ from it on.

    Sets ``loss_params={"gamma": ...}`` for the ``cdt`` loss (overriding the loss's own ``gamma``
    through ``loss.set_params``); weights stay uniform and sampling instance-based. The paper switches at half of training (epoch 45 of 90 on iNaturalist);
    ``start_epoch`` defaults to 100 (half of the 200-epoch CIFAR schedule) and ``gamma`` to 0.1
    (the top of the paper's iNaturalist range [0, 0.1]).
    """

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, start_epoch: Epoch = 100, gamma: NonNegative = 0.1
    ) -> None:
        super().__init__(class_counts)
        self.start_epoch = start_epoch
        self.gamma = gamma

    def at_epoch(self, epoch: int) -> RebalanceState:
        gamma = 0.0 if _check_epoch(epoch) < self.start_epoch else self.gamma
        return RebalanceState(None, "instance", {}, {"gamma": gamma})
