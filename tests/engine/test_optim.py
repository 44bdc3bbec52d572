import math

import pytest
import torch

from longtail.config import OptimConfig
from longtail.engine.optim import build_optimizer, learning_rate


def reference_adjust_learning_rate(epoch: int, base: float) -> float:
    """The LDAM-DRW reference code's adjust_learning_rate (cifar_train.py), 0-based epoch."""
    epoch = epoch + 1
    if epoch <= 5:
        return base * epoch / 5
    if epoch > 180:
        return base * 0.0001
    if epoch > 160:
        return base * 0.01
    return base


def test_default_schedule_is_ldam_reference():
    config = OptimConfig()  # lr 0.1, warm-up 5, milestones 160/180, gamma 0.01
    for epoch in range(200):
        assert learning_rate(config, 200, epoch) == pytest.approx(reference_adjust_learning_rate(epoch, 0.1), rel=1e-12)


def test_iteration_warmup_and_cosine():
    config = OptimConfig(lr=1.0, warmup_epochs=2, schedule="cosine", step_every="iteration", min_lr=0.1)
    # warm-up: lr = lr0 * (e + (i+1)/n) / W
    assert learning_rate(config, 10, 0, 0, 4) == pytest.approx(0.25 / 2)
    assert learning_rate(config, 10, 1, 3, 4) == pytest.approx(1.0)
    # cosine: p = (e + i/n - W) / (E - W)
    for epoch, step in ((2, 0), (5, 2), (9, 3)):
        p = (epoch + step / 4 - 2) / 8
        expected = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))
        assert learning_rate(config, 10, epoch, step, 4) == pytest.approx(expected, rel=1e-12)


def test_constant_and_per_epoch_cosine():
    assert learning_rate(OptimConfig(lr=0.3, warmup_epochs=0, schedule="constant"), 5, 4) == 0.3
    config = OptimConfig(lr=1.0, warmup_epochs=0, schedule="cosine")
    assert learning_rate(config, 4, 0, 3, 10) == pytest.approx(1.0)  # per epoch: the step is ignored
    assert learning_rate(config, 4, 2) == pytest.approx(0.5)


def test_optimizers():
    model = torch.nn.Linear(3, 2)
    sgd = build_optimizer(OptimConfig(nesterov=True, weight_decay=1e-3), model)
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9 and group["weight_decay"] == 1e-3
    adam = build_optimizer(OptimConfig(name="adam", lr=1e-3, betas=[0.8, 0.99], weight_decay=0.0), model)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.8, 0.99)
