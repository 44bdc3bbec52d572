"""The model contract shared by every architecture: ``forward(x) -> (features, logits)``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Classifier(nn.Module):
    """A feature extractor followed by a classifier head: logits = head(backbone(x)).

    Attributes: ``backbone`` (x → features [B, D]), ``head`` (features → logits [B, C], float32
    even under autocast), ``feature_dim`` = D, ``num_classes`` = C. ``forward`` returns
    ``(features, logits)`` with the features cast to float32, so analysis and post-hoc rules
    see the same numbers the head saw.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.backbone_frozen = False

    def freeze_backbone(self) -> None:
        """Backbone parameters stop learning; its batch norms keep their running statistics (the
        backbone stays in eval mode under ``train()``), so the features are exactly fixed."""
        self.backbone_frozen = True
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x, *args, **kwargs).float()
        logits = self.head(features)
        return features, logits


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for parameter initialisation (parameters are created on the CPU)."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def init_batchnorm_(module: nn.Module, zero: bool = False) -> None:
    """γ = 1 (or 0 for a zero-initialised residual branch), β = 0; running stats reset."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.constant_(module.weight, 0.0 if zero else 1.0)
        nn.init.zeros_(module.bias)
        module.reset_running_stats()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
