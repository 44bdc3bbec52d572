"""Optimisers and the learning-rate schedule (SPEC §3).

The learning rate is a pure function of the position in training, so a resumed run needs no
scheduler state beyond the epoch:

- linear warm-up over the first W epochs: lr(e) = lr₀ · t / W with t = e + 1 per epoch (the LDAM
  reference code: lr₀/5, 2lr₀/5, … over 5 epochs) or t = e + (i + 1)/n per iteration;
- then ``multistep``: lr₀ · γ^{#{m ∈ milestones : e ≥ m}} — with milestones (160, 180) and γ = 0.01
  this is the reference ×0.01 after epoch 160 and ×1e-4 after epoch 180 (0-based epoch 160 is the
  161st epoch, as ``epoch + 1 > 160`` in the reference code);
- or ``cosine``: lr_min + (lr₀ − lr_min) · ½(1 + cos(π p)), p = (e + frac − W) / (E − W);
- or ``constant``: lr₀.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from longtail.config import OptimConfig


def build_optimizer(config: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay, nesterov) or Adam over all trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov and config.momentum > 0,
        )
    betas = (float(config.betas[0]), float(config.betas[1]))
    return torch.optim.Adam(params, lr=config.lr, betas=betas, weight_decay=config.weight_decay)


def learning_rate(config: OptimConfig, epochs: int, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """The learning rate of ``step`` (0-based) of 0-based ``epoch``, per the formulas above."""
    per_iteration = config.step_every == "iteration"
    warmup = config.warmup_epochs
    if epoch < warmup:
        t = epoch + ((step + 1) / steps_per_epoch if per_iteration else 1.0)
        return config.lr * t / warmup
    if config.schedule == "multistep":
        decays = sum(1 for m in config.milestones if epoch >= m)
        return config.lr * config.gamma**decays
    if config.schedule == "cosine":
        frac = step / steps_per_epoch if per_iteration else 0.0
        span = max(epochs - warmup, 1)
        progress = min(max((epoch + frac - warmup) / span, 0.0), 1.0)
        return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
