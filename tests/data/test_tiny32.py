"""``tiny-imagenet-32``: Tiny-ImageNet halved to the CIFAR size (CDT ERM-PD pre-training)."""

from __future__ import annotations

import numpy as np
import torch

from longtail.data.datasets import DATASET_INFO, load_split


def test_tiny_imagenet_32_is_the_2x2_mean_of_the_64px_images(tiny_root):
    full = load_split("tiny-imagenet", tiny_root, train=True)
    small = load_split("tiny-imagenet-32", tiny_root, train=True)
    assert small.images.shape[-2:] == (32, 32) and small.images.dtype == torch.uint8
    assert torch.equal(small.labels, full.labels) and small.classes == full.classes
    big = full.images.numpy().astype(np.float64)
    n, c, h, w = big.shape
    means = big.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    assert np.array_equal(small.images.numpy(), np.floor(means + 0.5).astype(np.uint8))
    test = load_split("tiny-imagenet-32", tiny_root, train=False)
    assert test.images.shape[-1] == 32
    assert DATASET_INFO["tiny-imagenet-32"].image_size == 32
