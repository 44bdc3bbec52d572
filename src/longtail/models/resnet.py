"""ResNet-10/18/50/152 and ResNeXt-50 (32×4d) in the torchvision layout (He et al., CVPR 2016;
Xie et al., CVPR 2017), written out here. Parameter names are torchvision's under ``backbone.``, so a
torchvision checkpoint maps onto them (``longtail.models.pretrained``).

Stem ``"imagenet"`` (default, torchvision): conv7×7/2 (64) → BN → ReLU → maxpool3×3/2.
Stem ``"cifar"``: conv3×3/1 (64) → BN → ReLU, no max-pool — keeps 4× more resolution, the usual
choice for 32×32/64×64 inputs at 16× the compute. Then 4 stages (64, 128, 256, 512 planes;
strides 1, 2, 2, 2), downsampling shortcuts conv1×1 + BN (option B), stride on the 3×3 conv of a
bottleneck (torchvision "v1.5"), global average pool → 512 (ResNet-18) or 2048 (ResNet-50)
features. Backbone parameters (3 input channels): ResNet-10 4,905,792; ResNet-18 11,176,512;
ResNet-50 23,508,032; ResNet-152 58,143,808; ResNeXt-50 32×4d 22,979,904. ResNet-10 is the
decoupling code's (Kang et al., ICLR 2020) BasicBlock net with one block per stage.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from longtail.errors import ConfigError
from longtail.models.base import Classifier, init_batchnorm_, seeded_generator
from longtail.models.heads import HeadName, make_head
from longtail.registry import PositiveInt, register_model

STEMS = ("imagenet", "cifar")


def _conv_bn(in_planes: int, planes: int, kernel: int, stride: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    conv = nn.Conv2d(in_planes, planes, kernel, stride=stride, padding=kernel // 2, bias=False)
    return conv, nn.BatchNorm2d(planes)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_planes, planes, 3, stride)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, 1)
        self.downsample = _downsample(in_planes, planes * self.expansion, stride)
        self.last_bn_name = "bn2"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carries the stride) → 1×1 expand ×4, with a residual (ResNet-50/152).

    ResNeXt (Xie et al., CVPR 2017): the 3×3 is a grouped convolution of ``groups`` groups and the
    inner width is ⌊planes · width_per_group / 64⌋ · groups (torchvision's rule; 32×4d at planes 64: 128).
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, groups: int = 1, width_per_group: int = 64) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1, self.bn1 = _conv_bn(in_planes, width, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = _conv_bn(width, planes * self.expansion, 1, 1)
        self.downsample = _downsample(in_planes, planes * self.expansion, stride)
        self.last_bn_name = "bn3"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.downsample(x))


def _downsample(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
    )


class ResNetBackbone(nn.Module):
    """Stem → 4 stages → global average pool → features [B, 512·expansion]."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        in_channels: int = 3,
        stem: str = "imagenet",
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"unknown ResNet stem {stem!r}; use one of: {', '.join(STEMS)}")
        self.stem_kind = stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if index == 0 else 2
            blocks = []
            for block_stride in [stride] + [1] * (count - 1):
                grouped = {"groups": groups, "width_per_group": width_per_group} if block is Bottleneck else {}
                blocks.append(block(in_planes, planes, block_stride, **grouped))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feature_dim = in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)


def _build(
    block: type[BasicBlock] | type[Bottleneck],
    layers: tuple[int, int, int, int],
    num_classes: int,
    in_channels: int,
    head: str,
    stem: str,
    zero_init_residual: bool,
    seed: int,
    groups: int = 1,
    width_per_group: int = 64,
) -> Classifier:
    generator = seeded_generator(seed)
    with torch.random.fork_rng(devices=[]):  # construction must not disturb the global RNG
        backbone = ResNetBackbone(block, layers, in_channels, stem, groups, width_per_group)
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
        init_batchnorm_(module)
    if zero_init_residual:
        for module in backbone.modules():
            if isinstance(module, (BasicBlock, Bottleneck)):
                init_batchnorm_(getattr(module, module.last_bn_name), zero=True)
    classifier = make_head(head, backbone.feature_dim, num_classes, generator)
    return Classifier(backbone, classifier, backbone.feature_dim, num_classes)


@register_model("resnet18")
def resnet18(
    num_classes: PositiveInt,
    in_channels: PositiveInt = 3,
    head: HeadName = "linear",
    stem: Literal["imagenet", "cifar"] = "imagenet",
    zero_init_residual: bool = False,
    seed: int = 0,
) -> Classifier:
    """ResNet-18 (torchvision layout, 512-d features; Tiny-ImageNet). stem: imagenet | cifar.

    Init as torchvision: conv kaiming_normal (fan_out, ReLU), BN γ=1 β=0 (γ=0 on each block's last
    BN if ``zero_init_residual``), head ``nn.Linear`` default; drawn from a generator seeded ``seed``.
    """
    return _build(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, head, stem, zero_init_residual, seed)


@register_model("resnet50")
def resnet50(
    num_classes: PositiveInt,
    in_channels: PositiveInt = 3,
    head: HeadName = "linear",
    stem: Literal["imagenet", "cifar"] = "imagenet",
    zero_init_residual: bool = False,
    seed: int = 0,
) -> Classifier:
    """ResNet-50 (torchvision layout, bottlenecks, 2048-d features; iNaturalist 224×224).

    Init as torchvision: conv kaiming_normal (fan_out, ReLU), BN γ=1 β=0 (γ=0 on each block's last
    BN if ``zero_init_residual``), head ``nn.Linear`` default; drawn from a generator seeded ``seed``.
    """
    return _build(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, head, stem, zero_init_residual, seed)



@register_model("resnet10")
def resnet10(
    num_classes: int,
    in_channels: int = 3,
    head: str = "linear",
    stem: str = "imagenet",
    zero_init_residual: bool = False,
    seed: int = 0,
) -> Classifier:
    """ResNet-10 (one BasicBlock per stage, 512-d features; the decoupling code's ImageNet-LT net).

    Init as torchvision: conv kaiming_normal (fan_out, ReLU), BN γ=1 β=0 (γ=0 on each block's last
    BN if ``zero_init_residual``), head ``nn.Linear`` default; drawn from a generator seeded ``seed``.
    """
    return _build(BasicBlock, (1, 1, 1, 1), num_classes, in_channels, head, stem, zero_init_residual, seed)


@register_model("resnet152")
def resnet152(
    num_classes: int,
    in_channels: int = 3,
    head: str = "linear",
    stem: str = "imagenet",
    zero_init_residual: bool = False,
    seed: int = 0,
) -> Classifier:
    """ResNet-152 (bottlenecks 3-8-36-3, 2048-d features; Places-LT, from ImageNet-pretrained weights).

    Init as torchvision: conv kaiming_normal (fan_out, ReLU), BN γ=1 β=0 (γ=0 on each block's last
    BN if ``zero_init_residual``), head ``nn.Linear`` default; drawn from a generator seeded ``seed``.
    """
    return _build(Bottleneck, (3, 8, 36, 3), num_classes, in_channels, head, stem, zero_init_residual, seed)


@register_model("resnext50_32x4d")
def resnext50_32x4d(
    num_classes: int,
    in_channels: int = 3,
    head: str = "linear",
    stem: str = "imagenet",
    zero_init_residual: bool = False,
    seed: int = 0,
) -> Classifier:
    """ResNeXt-50 32×4d (grouped 3×3 convolutions, 2048-d features; the decoupling recipe's ImageNet-LT net).

    Init as torchvision: conv kaiming_normal (fan_out, ReLU), BN γ=1 β=0 (γ=0 on each block's last
    BN if ``zero_init_residual``), head ``nn.Linear`` default; drawn from a generator seeded ``seed``.
    """
    return _build(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, head, stem, zero_init_residual, seed,
                  groups=32, width_per_group=4)

