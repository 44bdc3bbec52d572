"""Losses built from the training class counts, each usable alone in any PyTorch loop.

``create_loss(name, class_counts, **params)`` returns a :class:`ClassCountLoss` (an ``nn.Module``)
whose ``forward(logits, targets)`` returns the mean loss. ``longtail list losses`` shows the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from longtail.losses import functional
from longtail.losses.base import ClassCountLoss
from longtail.losses.cdt import CDTLoss
from longtail.losses.ce import CrossEntropyLoss
from longtail.losses.class_balanced import ClassBalancedLoss
from longtail.losses.focal import FocalLoss
from longtail.losses.ldam import LDAM_PRESETS, LDAMLoss
from longtail.losses.ldam_hinge import LDAMHingeLoss
from longtail.losses.logit_adjusted import LogitAdjustedLoss
from longtail.losses.uniform_margin import HingeLoss, UniformMarginLoss
from longtail.losses.weighted_ce import WeightedCrossEntropyLoss
from longtail.registry import LOSSES

__all__ = [
    "CDTLoss",
    "ClassBalancedLoss",
    "ClassCountLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "HingeLoss",
    "LDAMHingeLoss",
    "LDAMLoss",
    "LDAM_PRESETS",
    "LogitAdjustedLoss",
    "UniformMarginLoss",
    "WeightedCrossEntropyLoss",
    "create_loss",
    "functional",
]


def create_loss(name: str, class_counts: Sequence[float] | torch.Tensor, **params: Any) -> ClassCountLoss:
    """Build the registered loss ``name`` from the training class counts: ``create_loss("ldam", counts, s=30)``.

    Unknown names and parameters raise :class:`~longtail.errors.ConfigError` naming the fix.
    """
    return LOSSES.create(name, class_counts=class_counts, **params)
