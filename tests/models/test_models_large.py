"""ResNet-10, ResNet-152 and ResNeXt-50 32×4d: parameter counts against the published / hand-computed
totals, torchvision-layout names, grouped convolutions, forward shapes."""

from __future__ import annotations

import pytest
import torch

from longtail.models import count_parameters, create_model


def _resnet10_backbone() -> int:
    """BasicBlock net with one block per stage, written out: conv + BN (2 per channel) + downsamples."""
    total = 3 * 64 * 49 + 2 * 64  # stem
    in_planes = 64
    for planes in (64, 128, 256, 512):
        total += in_planes * planes * 9 + 2 * planes + planes * planes * 9 + 2 * planes
        if in_planes != planes:
            total += in_planes * planes + 2 * planes
        in_planes = planes
    return total


@pytest.mark.parametrize(
    ("name", "total_1000", "feature_dim"),
    [
        ("resnet152", 60_192_808, 2048),  # torchvision resnet152 (He et al. 2016)
        ("resnext50_32x4d", 25_028_904, 2048),  # torchvision resnext50_32x4d (Xie et al. 2017)
        ("resnet10", _resnet10_backbone() + 512 * 1000 + 1000, 512),
    ],
)
def test_parameter_counts(name, total_1000, feature_dim):
    model = create_model(name, num_classes=1000)
    assert count_parameters(model) == total_1000
    assert model.feature_dim == feature_dim


def test_resnext_grouped_convolutions_and_names():
    model = create_model("resnext50_32x4d", num_classes=5)
    conv = model.backbone.layer1[0].conv2
    assert conv.groups == 32 and tuple(conv.weight.shape) == (128, 4, 3, 3)  # width 4 per group
    assert tuple(model.backbone.layer4[0].conv2.weight.shape) == (1024, 32, 3, 3)
    names = set(model.state_dict())
    assert {"backbone.layer4.2.bn3.running_var", "backbone.layer1.0.downsample.0.weight", "head.weight"} <= names


@pytest.mark.parametrize("name", ["resnet10", "resnext50_32x4d"])
def test_forward_shapes(name):
    model = create_model(name, num_classes=7, in_channels=1, stem="cifar").eval()
    with torch.no_grad():
        features, logits = model(torch.randn(2, 1, 16, 16))
    assert logits.shape == (2, 7) and features.shape == (2, model.feature_dim)


def test_freeze_backbone_keeps_eval_mode():
    model = create_model("resnet10", num_classes=3, stem="cifar")
    model.freeze_backbone()
    model.train()
    assert model.training and not model.backbone.training and model.head.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
