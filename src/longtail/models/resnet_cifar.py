"""ResNet-32 for small images (He et al., CVPR 2016, §4.2), as in the LDAM-DRW reference code.

3 stages × 5 basic blocks with 16/32/64 channels, option-A shortcuts (identity; when the shape
changes: subsample by 2 and zero-pad the new channels), global average pooling → 64-d features.
≈0.46 M parameters with a 10-class linear head (464,154). Works on 32×32 (CIFAR) and, thanks to
the global pooling, on 28×28 (Fashion-MNIST: 28 → 14 → 7) without padding the images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from longtail.models.base import Classifier, init_batchnorm_, seeded_generator
from longtail.models.heads import HeadName, make_head
from longtail.registry import PositiveInt, register_model


class ShortcutA(nn.Module):
    """Option-A shortcut: x[:, :, ::s, ::s], then zero channels appended on both sides."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        self.pad_front = extra // 2
        self.pad_back = extra - extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back), "constant", 0.0)


class CifarBasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = (
            ShortcutA(in_planes, planes, stride) if stride != 1 or in_planes != planes else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNetBackbone(nn.Module):
    """conv3×3(16) → 3 stages of basic blocks (strides 1, 2, 2) → global average pool."""

    def __init__(
        self, blocks_per_stage: int = 5, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        in_planes = widths[0]
        for index, planes in enumerate(widths):
            first_stride = 1 if index == 0 else 2
            blocks = []
            for stride in [first_stride] + [1] * (blocks_per_stage - 1):
                blocks.append(CifarBasicBlock(in_planes, planes, stride))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.feature_dim = in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)


@register_model("resnet32")
def resnet32(
    num_classes: PositiveInt, in_channels: PositiveInt = 3, head: HeadName = "linear", seed: int = 0
) -> Classifier:
    """ResNet-32 (CIFAR variant, option-A shortcuts, 64-d features; He et al. 2016, LDAM-DRW code).

    Initialisation as the reference code: every conv (and the linear head's weight)
    kaiming_normal (fan_in, gain √2), BatchNorm γ=1 β=0; drawn from a generator seeded ``seed``.
    """
    generator = seeded_generator(seed)
    with torch.random.fork_rng(devices=[]):  # construction must not disturb the global RNG
        backbone = CifarResNetBackbone(5, in_channels)
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, generator=generator)
        init_batchnorm_(module)
    classifier = make_head(head, backbone.feature_dim, num_classes, generator, linear_init="kaiming-normal")
    return Classifier(backbone, classifier, backbone.feature_dim, num_classes)
