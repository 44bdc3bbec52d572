"""The registered samplers: instance, class-balanced (RS), square-root, power q, progressive,
effective-number (CB RS).

``SAMPLERS.create(name, labels=<int64 tensor>, seed=int, num_samples=None, rank=0, world_size=1,
**params)``. All are deterministic in ``(seed, epoch)`` and split across ranks as described in
:mod:`longtail.samplers.base`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from longtail.registry import Fraction, PositiveInt, register_sampler
from longtail.samplers.base import ClassProbabilitySampler, EpochSampler


@register_sampler("instance")
class InstanceSampler(EpochSampler):
    """Instance-balanced: a seeded random permutation of the training set each epoch (no replacement).

    Every example is seen once per epoch (class c with probability n_c / N). With ``num_samples``
    larger than N, consecutive independent permutations are concatenated and cut.
    """

    def _draw(self, generator: torch.Generator, epoch: int) -> torch.Tensor:
        size = int(self.labels.numel())
        rounds = -(-self.num_samples // size)
        perms = [torch.randperm(size, generator=generator) for _ in range(rounds)]
        return torch.cat(perms)[: self.num_samples]


class PowerSampler(ClassProbabilitySampler):
    """Class c drawn with probability p_c = n_c^q / Σ_j n_j^q, then an example of c uniformly.

    q = 1: instance-balanced proportions (but with replacement); q = 0: class-balanced;
    q = 0.5: square-root sampling (Mahajan et al. 2018; Kang et al. 2020).
    """

    def __init__(self, labels: torch.Tensor, q: float = 1.0, **kwargs: Any) -> None:
        super().__init__(labels, **kwargs)
        self.q = q

    def class_probabilities(self, epoch: int | None = None) -> torch.Tensor:
        counts = self.class_counts.to(torch.float64)
        return self._normalise(counts.clamp_min(1.0) ** self.q)


register_sampler("power")(PowerSampler)


@register_sampler("class-balanced")
class ClassBalancedSampler(PowerSampler):
    """Class-balanced re-sampling (RS): each example drawn with probability ∝ 1/n_y, with replacement.

    Classes are equally likely (p_c = 1/C over non-empty classes); the power sampler at q = 0.
    """

    q = 0.0
    __init__ = EpochSampler.__init__  # no q parameter: it is fixed


@register_sampler("square-root")
class SquareRootSampler(PowerSampler):
    """Square-root sampling: class probability p_c ∝ n_c^(1/2), with replacement (power q = 0.5)."""

    q = 0.5
    __init__ = EpochSampler.__init__  # no q parameter: it is fixed


@register_sampler("effective-number")
class EffectiveNumberSampler(ClassProbabilitySampler):
    """CB re-sampling: each example drawn with probability ∝ 1/E_y, E_c = (1 − β^{n_c}) / (1 − β).

    Cui et al., CVPR 2019, as the "CB RS" baseline of Cao et al. 2019 (§4: "the examples are
    re-weighted or re-sampled according to the inverse of the effective number of samples in each
    class", beside RS: "each example is sampled with probability proportional to the inverse sample
    size of its class"). Per example ∝ 1/E_y means class c is drawn with probability
    p_c = (n_c / E_c) / Σ_j (n_j / E_j), then one of its n_c examples uniformly, with replacement.
    β = 0 (E_c = 1) gives instance proportions p_c ∝ n_c; β → 1 (E_c → n_c) gives class-balanced
    sampling (the ``class-balanced`` sampler, RS). ``beta`` in [0, 1), default 0.9999 (Cui et al.);
    on CIFAR-10 ρ = 100 that makes the largest class ≈ 1.27× as likely as the smallest. This is the
    LDAM-DRW reference code's only re-sampler, ``ImbalancedDatasetSampler`` (its ``Resample`` rule:
    per-example weights (1 − β)/(1 − β^{n_y}), β = 0.9999, ``torch.multinomial`` with replacement) —
    not ∝ 1/n_y, which is the ``class-balanced`` sampler.
    """

    def __init__(self, labels: torch.Tensor, beta: Fraction = 0.9999, **kwargs: Any) -> None:
        super().__init__(labels, **kwargs)
        self.beta = beta

    def class_probabilities(self, epoch: int | None = None) -> torch.Tensor:
        counts = self.class_counts.to(torch.float64).clamp_min(1.0)  # empty classes are zeroed below
        if self.beta == 0.0:
            effective = torch.ones_like(counts)
        else:  # 1 − β^n as −expm1(n·log β): exact when β is close to 1
            effective = -torch.expm1(counts * math.log(self.beta)) / (1.0 - self.beta)
        return self._normalise(counts / effective)


@register_sampler("progressive")
class ProgressiveSampler(ClassProbabilitySampler):
    """Progressively-balanced sampling (Kang et al., ICLR 2020): instance → class-balanced over T epochs.

    ``mode="probability"`` (default, Kang et al. eq. in §3):
    p_c(t) = (1 − t/T) · n_c/N + (t/T) · 1/C.
    ``mode="exponent"``: p_c(t) ∝ n_c^{q(t)} with q(t) = 1 − t/T.
    t is the epoch (0-based), T = ``total_epochs``; t/T is clamped to [0, 1], so epoch 0 is
    instance-balanced proportions and every epoch ≥ T is class-balanced. Drawn with replacement.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        total_epochs: PositiveInt = 200,
        mode: Literal["probability", "exponent"] = "probability",
        **kwargs: Any,
    ) -> None:
        super().__init__(labels, **kwargs)
        self.total_epochs = total_epochs
        self.mode = mode

    def progress(self, epoch: int | None = None) -> float:
        """t/T clamped to [0, 1]."""
        epoch = self.epoch if epoch is None else epoch
        return min(max(epoch / self.total_epochs, 0.0), 1.0)

    def class_probabilities(self, epoch: int | None = None) -> torch.Tensor:
        alpha = self.progress(epoch)
        counts = self.class_counts.to(torch.float64)
        if self.mode == "exponent":
            return self._normalise(counts.clamp_min(1.0) ** (1.0 - alpha))
        instance = self._normalise(counts)
        balanced = self._normalise(torch.ones_like(counts))
        return (1.0 - alpha) * instance + alpha * balanced
