"""Classifier re-training on frozen features with class-balanced sampling (Kang et al., ICLR 2020).

``crt`` re-initialises a linear classifier (W, b) and trains it; ``lws`` keeps the head and learns
one scale per class. Both: mini-batches drawn by the ``class-balanced`` sampler (seeded from
(seed, epoch)), cross-entropy, SGD with momentum and a cosine learning-rate decay to 0 over all
steps, on CPU or the features' device. Deterministic for a given ``seed``.

``sampler="instance"`` draws plain random permutations instead: the CDT paper's Table 5 re-trains
the linear classifier of a network on another training set (balanced or long-tailed) as it is.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from longtail.errors import ConfigError
from longtail.posthoc.base import PosthocRule, head_bias, head_logits, head_weight
from longtail.registry import NonNegative, PositiveInt, register_posthoc
from longtail.samplers.samplers import ClassBalancedSampler, InstanceSampler

RETRAIN_SAMPLERS = {"class-balanced": ClassBalancedSampler, "instance": InstanceSampler}


RetrainSampler = Literal["class-balanced", "instance"]


class _BalancedRetraining(PosthocRule):
    """Shared training loop: mini-batches of frozen inputs (class-balanced by default, or instance), SGD +
    cosine decay."""

    param_name = None
    default_grid = ()
    _rule_name = ""

    def __init__(
        self, epochs: int, lr: float, batch_size: int, seed: int, momentum: float, weight_decay: float,
        sampler: str = "class-balanced",
    ) -> None:
        super().__init__()  # the parameters were checked against the subclass's signature
        self.sampler, self.epochs, self.batch_size, self.seed = sampler, epochs, batch_size, seed
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.losses: list[float] = []  # mean training loss per epoch

    def _train(
        self, inputs: torch.Tensor, labels: torch.Tensor, params: list[torch.Tensor], logits_fn: Any
    ) -> None:
        sampler = RETRAIN_SAMPLERS[self.sampler](labels.cpu(), seed=self.seed)
        steps_per_epoch = -(-len(sampler) // self.batch_size)
        total_steps = self.epochs * steps_per_epoch
        optimizer = torch.optim.SGD(
            params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        step = 0
        self.losses = []
        with torch.enable_grad():
            for epoch in range(self.epochs):
                sampler.set_epoch(epoch)
                order = sampler.epoch_indices().to(inputs.device)
                epoch_loss = 0.0
                for start in range(0, order.numel(), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    for group in optimizer.param_groups:
                        group["lr"] = 0.5 * self.lr * (1.0 + math.cos(math.pi * step / total_steps))
                    loss = F.cross_entropy(logits_fn(inputs[batch]), labels[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    epoch_loss += float(loss.detach()) * batch.numel()
                    step += 1
                self.losses.append(epoch_loss / order.numel())


@register_posthoc("crt")
class ClassifierRetraining(_BalancedRetraining):
    """cRT (Kang et al., ICLR 2020): a linear classifier re-trained on frozen features with class-balanced sampling
    (``sampler="instance"``: plain permutations, as the CDT paper's Table 5 re-trains on a given set).

    s_c = w'_cᵀ f(x) + b'_c with (W', b') learned from scratch (``init="random"``: PyTorch's
    ``nn.Linear`` initialisation, U(−1/√D, 1/√D), drawn from a generator seeded with ``seed``) or
    starting from the trained head (``init="head"``). The new classifier has a bias unless
    ``bias=False``; the original head's bias is not used. After ``fit`` the rule exposes ``weight``
    [C, D], ``bias`` and ``class_weight_matrix()`` like a head; ``scores`` ignores its ``head``.
    """

    _rule_name = "crt"
    needs_head = False

    def __init__(
        self,
        epochs: PositiveInt = 10,
        lr: NonNegative = 0.1,
        batch_size: PositiveInt = 128,
        seed: int = 0,
        momentum: NonNegative = 0.9,
        weight_decay: NonNegative = 5e-4,
        bias: bool = True,
        init: Literal["random", "head"] = "random",
        sampler: RetrainSampler = "class-balanced",
    ) -> None:
        super().__init__(epochs, lr, batch_size, seed, momentum, weight_decay, sampler)
        self.init = init
        self.use_bias = bias
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def _fit(self, features: torch.Tensor, labels: torch.Tensor, head: Any, counts: torch.Tensor) -> None:
        num_classes, dim = counts.numel(), features.shape[1]
        generator = torch.Generator().manual_seed(self.seed)
        bound = 1.0 / math.sqrt(dim)
        weight = (torch.rand(num_classes, dim, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        bias = (torch.rand(num_classes, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        if self.init == "head":
            if head is None:
                raise ConfigError(
                    "post-hoc rule 'crt' with init='head' needs the model's head; pass head=model.head"
                )
            weight = head_weight(head).to(torch.float64).clone()
            head_b = head_bias(head)
            bias = (
                torch.zeros(num_classes, dtype=torch.float64) if head_b is None else head_b.double().clone()
            )
        weight = weight.to(features).requires_grad_(True)
        bias = bias.to(features).requires_grad_(self.use_bias)
        params = [weight, bias] if self.use_bias else [weight]

        def logits_fn(x: torch.Tensor) -> torch.Tensor:
            return x @ weight.t() + bias if self.use_bias else x @ weight.t()

        self._train(features, labels, params, logits_fn)
        self.weight = weight.detach()
        self.bias = bias.detach() if self.use_bias else None

    def class_weight_matrix(self) -> torch.Tensor:
        """The re-trained class weight rows [C, D]."""
        if self.weight is None:
            raise ConfigError("crt.class_weight_matrix() called before fit(); call fit(...) first")
        return self.weight

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        assert self.weight is not None
        scores = features @ self.weight.to(features).t()
        return scores if self.bias is None else scores + self.bias.to(features)


@register_posthoc("lws")
class LearnableWeightScaling(_BalancedRetraining):
    """LWS (Kang et al., ICLR 2020): s_c = a_c · z_c, one learned scale a_c per class, head frozen.

    z_c = w_cᵀ f(x) + b_c are the model's logits, so the scale multiplies w_c and the bias alike
    (as Kang et al.'s code scales the classifier output). a is initialised to 1 and learned with
    class-balanced sampling; weight decay defaults to 0 (it would pull the scales towards 0).
    ``scales`` holds a after ``fit``; ``scores`` uses the ``head`` given (default: the fitted one).
    """

    _rule_name = "lws"

    def __init__(
        self,
        epochs: PositiveInt = 10,
        lr: NonNegative = 0.1,
        batch_size: PositiveInt = 128,
        seed: int = 0,
        momentum: NonNegative = 0.9,
        weight_decay: NonNegative = 0.0,
        sampler: RetrainSampler = "class-balanced",
    ) -> None:
        super().__init__(epochs, lr, batch_size, seed, momentum, weight_decay, sampler)
        self.scales: torch.Tensor | None = None

    def _fit(self, features: torch.Tensor, labels: torch.Tensor, head: Any, counts: torch.Tensor) -> None:
        logits = head_logits(features, head)
        scales = torch.ones(counts.numel(), dtype=logits.dtype, device=logits.device, requires_grad=True)
        self._train(logits, labels, [scales], lambda z: z * scales)
        self.scales = scales.detach()

    def _scores(self, features: torch.Tensor, head: Any) -> torch.Tensor:
        assert self.scales is not None
        return head_logits(features, head) * self.scales.to(features)
