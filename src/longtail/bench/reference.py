"""The straightforward pipeline of the public LDAM-DRW reference code (kaidic/LDAM-DRW), as a baseline.

The reference trains CIFAR with a ``torch.utils.data.Dataset`` that returns a PIL image per index,
the torchvision per-image transforms ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``,
``ToTensor()``, ``Normalize(mean, std)``, a ``DataLoader`` with ``shuffle=True``, float32 and the
default (contiguous, NCHW) memory format. torchvision is not a dependency of longtail, so the four
transforms are written here with PIL and NumPy, following torchvision's definitions:

- RandomCrop(size, padding=p): zero-pad by p on every side (``ImageOps.expand``, fill 0), then crop a
  size×size window at a uniformly drawn top-left (i, j) ∈ [0, H+2p−size] × [0, W+2p−size];
- RandomHorizontalFlip(): mirror left↔right with probability 1/2;
- ToTensor(): uint8 H×W×C → float32 C×H×W in [0, 1] (divide by 255);
- Normalize(mean, std): x_c ← (x_c − mean_c) / std_c per channel.

Randomness comes from a seeded ``numpy.random.Generator`` per transform (re-seeded per DataLoader
worker by :func:`worker_init`), not from global state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps


class RandomCrop:
    """Zero-pad by ``padding`` pixels, then crop ``size``×``size`` at a uniform random offset."""

    def __init__(self, size: int, padding: int, rng: np.random.Generator) -> None:
        self.size = size
        self.padding = padding
        self.rng = rng

    def __call__(self, image: Image.Image) -> Image.Image:
        if self.padding > 0:
            image = ImageOps.expand(image, border=self.padding, fill=0)
        width, height = image.size
        top = int(self.rng.integers(0, height - self.size + 1))
        left = int(self.rng.integers(0, width - self.size + 1))
        return image.crop((left, top, left + self.size, top + self.size))


class RandomHorizontalFlip:
    """Mirror the image left↔right with probability ``p``."""

    def __init__(self, rng: np.random.Generator, p: float = 0.5) -> None:
        self.rng = rng
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        if self.rng.random() < self.p:
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image


def to_tensor(image: Image.Image) -> torch.Tensor:
    """torchvision ``ToTensor`` for 8-bit images: H×W(×C) uint8 → C×H×W float32 / 255."""
    array = np.array(image, dtype=np.uint8, copy=True)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div(255)


class Normalize:
    """Per-channel (x − mean) / std on a C×H×W tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self.mean) / self.std


class Compose:
    """Apply the transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, item: Any) -> Any:
        for transform in self.transforms:
            item = transform(item)
        return item


def train_transform(
    size: int, mean: Sequence[float], std: Sequence[float], seed: int, padding: int = 4
) -> Compose:
    """The reference code's CIFAR training transform, drawing from one generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    return Compose(
        [RandomCrop(size, padding, rng), RandomHorizontalFlip(rng), to_tensor, Normalize(mean, std)]
    )


def test_transform(mean: Sequence[float], std: Sequence[float]) -> Compose:
    """The reference code's evaluation transform: ToTensor + Normalize."""
    return Compose([to_tensor, Normalize(mean, std)])


class PILImageDataset(torch.utils.data.Dataset):
    """Images kept as a NumPy uint8 array N×H×W×C (as torchvision's CIFAR10 keeps them); each item
    is converted to a PIL image and passed through ``transform``, returning ``(tensor, label)``."""

    def __init__(self, images_nhwc: np.ndarray, labels: np.ndarray, transform: Callable[[Any], Any]) -> None:
        self.images = images_nhwc
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        array = self.images[index]
        image = Image.fromarray(array[:, :, 0], mode="L") if array.shape[2] == 1 else Image.fromarray(array)
        return self.transform(image), int(self.labels[index])


def worker_init(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation stream (seed, worker id)."""
    info = torch.utils.data.get_worker_info()
    if info is None:  # pragma: no cover - only called inside workers
        return
    base_seed = int(info.seed) % (2**32)
    for transform in getattr(info.dataset.transform, "transforms", []):
        if hasattr(transform, "rng"):
            transform.rng = np.random.default_rng([base_seed, worker_id])


def make_loader(
    dataset: PILImageDataset, batch_size: int, shuffle: bool, num_workers: int, seed: int
) -> torch.utils.data.DataLoader:
    """The reference DataLoader: shuffled, last partial batch kept, optional worker processes."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=worker_init if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def accuracy_topk(logits: torch.Tensor, targets: torch.Tensor, topk: Sequence[int] = (1, 5)) -> list[float]:
    """Top-k accuracy in percent, as the reference ``accuracy()`` helper computes every step."""
    maxk = min(max(topk), logits.shape[1])
    _, pred = logits.topk(maxk, 1, True, True)
    correct = pred.t().eq(targets.view(1, -1).expand_as(pred.t()))
    return [float(correct[: min(k, maxk)].reshape(-1).float().sum().item()) * 100.0 / targets.shape[0] for k in topk]
