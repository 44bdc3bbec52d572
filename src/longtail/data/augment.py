"""Batched augmentation of uint8 image tensors: pad-and-crop, horizontal flip, normalise.

The CIFAR recipe of the LDAM-DRW reference code (``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip()``, ``Normalize(mean, std)``) applied to a whole ``[B, C, H, W]`` uint8
batch at once, as airbench does: each image gets offsets (dy, dx) ∈ [0, 2p]² and a flip bit, and
the output is one gather

    out[b, c, i, j] = padded[b, c, dy_b + i, dx_b + (W − 1 − j if flip_b else j)]

from the zero-padded batch (zero padding before normalisation, like torchvision). Randomness comes
from an explicit CPU ``torch.Generator`` whose state is saved in ``state_dict()`` for exact resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


class BatchAugment:
    """Pad-and-crop + horizontal flip + normalisation on a uint8 batch (LDAM-DRW CIFAR recipe).

    ``x = (crop_flip(pad(u8, p)) / 255 − mean) / std``; ``pad=0`` turns the crop off, ``flip=False``
    the flip; with both off it only normalises (evaluation). ``padding`` is an alias of ``pad``;
    ``image_size``, if given, is checked against every batch.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        pad: int = 4,
        flip: bool = True,
        seed: int = 0,
        channels_last: bool = False,
        *,
        padding: int | None = None,
        image_size: int | None = None,
    ) -> None:
        if padding is not None:
            pad = padding
        self.image_size = image_size
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.pad = int(pad)
        self.flip = bool(flip)
        self.channels_last = channels_last
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def random(self) -> bool:
        return self.pad > 0 or self.flip

    def draw(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image (dy, dx, flip) for a batch, from the generator (always in this order)."""
        g = self.generator
        if self.pad > 0:
            dy = torch.randint(0, 2 * self.pad + 1, (batch,), generator=g)
            dx = torch.randint(0, 2 * self.pad + 1, (batch,), generator=g)
        else:
            dy = dx = torch.zeros(batch, dtype=torch.int64)
        flips = torch.rand(batch, generator=g) < 0.5 if self.flip else torch.zeros(batch, dtype=torch.bool)
        return dy, dx, flips

    def crop_flip(
        self, images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flips: torch.Tensor
    ) -> torch.Tensor:
        """The uint8 crops/flips for given offsets — one ``gather`` on the flattened padded planes."""
        b, c, h, w = images.shape
        device = images.device
        dy, dx, flips = dy.to(device), dx.to(device), flips.to(device)
        padded = F.pad(images, (self.pad,) * 4) if self.pad > 0 else images
        padded_w = w + 2 * self.pad
        rows = dy[:, None] + torch.arange(h, device=device)[None, :]  # [B, H]
        cols_fwd = torch.arange(w, device=device)[None, :]
        cols = dx[:, None] + torch.where(flips[:, None], (w - 1) - cols_fwd, cols_fwd)  # [B, W]
        flat = (rows[:, :, None] * padded_w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        return padded.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)
        x = x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float32 ``[B, C, H, W]`` normalised (and augmented) from a uint8 batch on any device."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected a uint8 [B, C, H, W] batch, got {images.dtype} {tuple(images.shape)}")
        if self.image_size is not None and tuple(images.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"expected {self.image_size}×{self.image_size} images, got {tuple(images.shape[2:])}"
            )
        if self.random:
            images = self.crop_flip(images, *self.draw(images.shape[0]))
        return self.normalize(images)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
