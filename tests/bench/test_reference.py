"""The baseline pipeline's per-image transforms against torchvision's definitions, written out in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from longtail.bench import reference

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


def _image(seed: int, channels: int = 3, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)


def _pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array[:, :, 0], mode="L") if array.shape[2] == 1 else Image.fromarray(array)


@pytest.mark.parametrize("channels", [3, 1])
def test_random_crop_is_zero_pad_then_window_at_drawn_offset(channels):
    array = _image(0, channels)
    size, pad = array.shape[0], 4
    crop = reference.RandomCrop(size, pad, np.random.default_rng(7))
    twin = np.random.default_rng(7)  # the same draws, in torchvision's order: top (i), then left (j)
    padded = np.zeros((size + 2 * pad, size + 2 * pad, channels), dtype=np.uint8)
    padded[pad : pad + size, pad : pad + size] = array
    offsets = set()
    for _ in range(20):
        out = np.asarray(crop(_pil(array)))
        top, left = int(twin.integers(0, 2 * pad + 1)), int(twin.integers(0, 2 * pad + 1))
        offsets.add((top, left))
        expected = padded[top : top + size, left : left + size]
        np.testing.assert_array_equal(out.reshape(expected.shape), expected)
    assert len(offsets) > 5


def test_flip_mirrors_columns_with_probability_half():
    array = _image(1)
    flip = reference.RandomHorizontalFlip(np.random.default_rng(3))
    twin = np.random.default_rng(3)
    flipped = 0
    for _ in range(40):
        out = np.asarray(flip(_pil(array)))
        if twin.random() < 0.5:
            flipped += 1
            np.testing.assert_array_equal(out, array[:, ::-1])
        else:
            np.testing.assert_array_equal(out, array)
    assert 5 < flipped < 35


@pytest.mark.parametrize("channels", [3, 1])
def test_to_tensor_and_normalize_match_formula_in_float64(channels):
    array = _image(2, channels, 28)
    mean, std = MEAN[:channels], STD[:channels]
    out = reference.test_transform(mean, std)(_pil(array))
    expected = (array.transpose(2, 0, 1).astype(np.float64) / 255.0 - np.array(mean)[:, None, None]) / np.array(
        std
    )[:, None, None]
    assert out.dtype == torch.float32 and tuple(out.shape) == (channels, 28, 28)
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), rtol=0, atol=1e-5)


def test_dataset_and_loader_yield_normalised_batches_and_labels():
    images = np.stack([_image(i) for i in range(10)])
    labels = np.arange(10) % 3
    dataset = reference.PILImageDataset(images, labels, reference.train_transform(32, MEAN, STD, seed=0))
    loader = reference.make_loader(dataset, batch_size=4, shuffle=True, num_workers=0, seed=0)
    batches = list(loader)
    assert [int(y.shape[0]) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == (4, 3, 32, 32)
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted(labels.tolist())


def test_accuracy_topk_counts_hits_in_percent():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    targets = torch.tensor([1, 2, 2, 1])
    # top-1 hits: rows 0, 2; top-2 hits: rows 0, 2, 3 (row 1's class 2 is ranked last)
    top1, top2 = reference.accuracy_topk(logits, targets, topk=(1, 2))
    assert top1 == pytest.approx(50.0)
    assert top2 == pytest.approx(75.0)
