"""Image geometry and statistics chosen by the user: size, channels, mean/std, training transform,
and decoding image files once into the in-memory uint8 path.

* **Size** (``data.image_size`` = S): a streamed or folder image is brought to S×S by
  :func:`fit_square` — shorter side resized to S (bilinear), centre S×S crop; an S×S image is taken
  as it is (no resampling). Tensor sets (CIFAR, MNIST, …) keep their native size.
* **Channels** (``data.channels``): 1 = grey (Pillow ``L``: L = (299 R + 587 G + 114 B) / 1000),
  3 = RGB; files are converted when decoded, tensor sets by :func:`convert_channels`.
* **Training transform** (``data.train_transform``): ``pad-crop`` (pad p, random S×S crop, flip:
  the CIFAR recipe), ``random-resized-crop`` (torchvision's, the ImageNet recipe), ``resize-crop``
  (resize to (S·256/224)² then a random S×S crop and a flip: CDT appendix A.4 for iNaturalist, 256²
  and 224 at S = 224); ``auto`` = ``pad-crop`` for tensor sets and images of side ≤ 64, else
  ``random-resized-crop``.
* **Statistics** (``data.mean`` / ``data.std`` = ``auto``): per channel, over every pixel of every
  training image (the training subset after the held-out split, at S×S, values in [0, 1]):
  mean_c = Σ x / M, std_c = √(Σ x² / M − mean_c²) (population std, M pixels per channel).
* **In memory** (``data.in_memory``): image-file sets with the ``pad-crop`` transform whose decoded
  bytes (N · C · S · S over train, held-out and test) fit ``data.memory_budget_mb`` are decoded once
  (``auto``; ``true`` requires it) into the uint8 tensor path, augmented per batch like CIFAR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from longtail.data.images import open_image
from longtail.data.split import Split
from longtail.errors import ConfigError

TRAIN_TRANSFORMS = ("auto", "pad-crop", "random-resized-crop", "resize-crop")
SMALL_IMAGE_SIDE = 64  # auto transform: pad-crop up to this side


def fit_square(image: Any, size: int) -> Any:
    """The Pillow ``image`` at ``size``×``size``: shorter side to ``size``, centre crop (as is if already)."""
    from PIL import Image

    if image.width == size and image.height == size:
        return image
    scale = size / min(image.width, image.height)
    new_w, new_h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_chw(image: Any) -> np.ndarray:
    """uint8 ``[C, H, W]`` of a Pillow ``L`` or ``RGB`` image."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None].copy() if array.ndim == 2 else array.transpose(2, 0, 1).copy()


def pil_mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def decode_fixed(path: str, size: int, channels: int) -> np.ndarray:
    """uint8 ``[C, S, S]`` of the image file at ``path`` (:func:`fit_square`, channel conversion)."""
    return to_chw(fit_square(open_image(path, pil_mode(channels)), size))


def decode_split(split: Split, size: int, channels: int) -> Split:
    """The same split with every image decoded once into a uint8 ``[N, C, S, S]`` tensor."""
    assert split.paths is not None
    images = torch.empty((len(split), channels, size, size), dtype=torch.uint8)
    for i, path in enumerate(split.paths):
        images[i] = torch.from_numpy(decode_fixed(path, size, channels))
    return Split(labels=split.labels, classes=list(split.classes), images=images)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` with ``channels`` channels: grey → RGB repeats, RGB → grey as Pillow ``L``."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([299, 587, 114], dtype=torch.int32).view(1, 3, 1, 1)
        grey = (images.to(torch.int32) * weights).sum(dim=1, keepdim=True)
        return torch.div(grey + 500, 1000, rounding_mode="floor").to(torch.uint8)  # Pillow rounds
    raise ConfigError(f"cannot convert {have}-channel images to {channels} channels; use data.channels 1 or 3")


def default_stats(values: Sequence[float] | None, channels: int) -> tuple[float, ...]:
    """A data set's mean or std for ``channels`` channels (averaged to grey, repeated to RGB)."""
    values = tuple(values or (0.5,))
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    return (values[0],) * channels if len(values) == 1 else tuple(values[:channels])


class _Moments:
    def __init__(self, channels: int) -> None:
        self.total = np.zeros(channels, dtype=np.float64)
        self.squares = np.zeros(channels, dtype=np.float64)
        self.count = 0

    def add(self, images: np.ndarray) -> None:  # uint8 [N, C, H, W]
        x = images.astype(np.float64) / 255.0
        self.total += x.sum(axis=(0, 2, 3))
        self.squares += (x * x).sum(axis=(0, 2, 3))
        self.count += images.shape[0] * images.shape[2] * images.shape[3]

    def result(self) -> dict[str, list[float]]:
        mean = self.total / self.count
        var = np.maximum(self.squares / self.count - mean * mean, 0.0)
        return {"mean": mean.tolist(), "std": np.sqrt(var).tolist()}


def compute_stats(split: Split, size: int, channels: int, chunk: int = 1024) -> dict[str, Any]:
    """Per-channel mean and std of ``split``'s images at S×S in [0, 1] (module docstring)."""
    moments = _Moments(channels)
    if split.images is not None:
        for start in range(0, len(split), chunk):
            moments.add(split.images[start : start + chunk].numpy())
    else:
        assert split.paths is not None
        for path in split.paths:
            moments.add(decode_fixed(path, size, channels)[None])
    stats = moments.result()
    if any(s <= 0 or not math.isfinite(s) for s in stats["std"]):
        stats["std"] = [s if s > 0 else 1.0 for s in stats["std"]]  # constant channel: no rescaling
    stats.update(images=len(split), image_size=size, channels=channels)
    return stats


def resolve_transform(name: str, kind: str, size: int) -> str:
    """The training transform ``auto`` stands for (module docstring)."""
    if name != "auto":
        return name
    return "pad-crop" if kind == "tensor" or size <= SMALL_IMAGE_SIDE else "random-resized-crop"


def decoded_bytes(counts: Sequence[int], size: int, channels: int) -> int:
    return sum(counts) * channels * size * size


def decide_in_memory(setting: bool | str, transform: str, nbytes: int, budget_mb: int) -> tuple[bool, str]:
    """(decode once into memory?, why) for an image-file set."""
    fits = nbytes <= budget_mb * 2**20
    size_text = f"{nbytes / 2**20:,.1f} MiB decoded, budget {budget_mb:,} MiB"
    if setting is False:
        return False, "data.in_memory=false"
    if transform != "pad-crop":
        if setting is True:
            raise ConfigError(
                f"data.in_memory=true needs data.train_transform=pad-crop (the batched uint8 path), not "
                f"{transform!r}; set data.in_memory=auto or false"
            )
        return False, f"train_transform {transform} is per-image (streamed)"
    if setting is True:
        if not fits:
            raise ConfigError(f"data.in_memory=true but the images need {size_text}; raise "
                              "data.memory_budget_mb or set data.in_memory=auto")
        return True, size_text
    return fits, size_text
