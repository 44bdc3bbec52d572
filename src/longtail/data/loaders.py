"""Batch loaders that accept any sampler (an iterable of indices with ``set_epoch``).

* :class:`TensorLoader` — small images held as one uint8 tensor; a batch is one gather and one
  :class:`~longtail.data.augment.BatchAugment` call, no per-image Python.
* :class:`StreamingLoader` — image files decoded with Pillow in ``DataLoader`` workers; only the
  paths are held, so memory does not grow with the number of images. Per-image randomness comes
  from ``SeedSequence([seed, epoch, position])``: the same batches whatever the number of workers.

Both yield ``(x float32 [B, C, H, W] normalised, y int64 [B])``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from longtail.data.augment import BatchAugment
from longtail.data.images import open_image
from longtail.errors import DataError


class _EpochPosition:
    """The epoch and the batches of it already yielded (``position``), as a state dict: after
    ``load_state_dict`` the next pass starts at batch ``position`` (mid-epoch resume: the epoch's draw is
    a function of (seed, epoch), so the skipped batches are the ones already trained); later passes start at 0."""

    sampler: Any
    epoch = position = _resume_at = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position, self._resume_at = int(epoch), 0, 0
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(int(state["epoch"]))
        self.position = self._resume_at = int(state["position"])


def _num_batches(count: int, batch_size: int, drop_last: bool) -> int:
    return count // batch_size if drop_last else math.ceil(count / batch_size)


class TensorLoader(_EpochPosition):
    """Batches of an in-memory uint8 image tensor, augmented on ``device`` by ``augment``.

    ``sampler=None`` visits the examples in order. Without ``augment`` the images are only
    scaled to [0, 1]. An int64 ``[N, L]`` tensor of token ids (text sets, see
    :func:`longtail.data.imdb.encode`) is also accepted, without ``augment``: its rows are
    yielded unchanged.
    """

    def __init__(
        self,
        images_uint8: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        sampler: Iterable[int] | None = None,
        augment: BatchAugment | None = None,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
    ) -> None:
        token_ids = images_uint8.dtype == torch.int64 and images_uint8.dim() == 2
        if not token_ids and (images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4):
            raise ValueError(
                f"images must be uint8 [N, C, H, W] (or int64 [N, L] token ids), got "
                f"{images_uint8.dtype} {tuple(images_uint8.shape)}"
            )
        if token_ids and augment is not None:
            raise ValueError("token ids cannot be augmented; pass augment=None")
        if labels.shape[0] != images_uint8.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {images_uint8.shape[0]} images")
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        # Small sets live on the device once; a batch is then a gather there.
        self.images = images_uint8.to(self.device)
        self.labels = labels.to(torch.int64).to(self.device)
        self.batch_size = batch_size
        self.sampler = sampler if sampler is not None else range(images_uint8.shape[0])
        self.augment = augment
        self.drop_last = drop_last

    def __len__(self) -> int:
        return _num_batches(len(self.sampler), self.batch_size, self.drop_last)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.as_tensor(np.fromiter(iter(self.sampler), dtype=np.int64), device=self.device)
        stop = (order.shape[0] // self.batch_size) * self.batch_size if self.drop_last else order.shape[0]
        first, self._resume_at = self._resume_at, 0
        for position, start in enumerate(range(first * self.batch_size, stop, self.batch_size), first + 1):
            self.position = position
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment is not None:
                x = self.augment(images)
            elif images.dtype == torch.uint8:
                x = images.float().div_(255.0)
            else:  # token ids
                x = images
            yield x, self.labels[index]


class StreamTransform:
    """Per-image transform of a Pillow image to uint8 ``[channels, size, size]``.

    Training, by ``mode``: ``random-resized-crop`` (area fraction U(scale), log-aspect U(log
    ratio), 10 tries then a centre crop — torchvision's ``RandomResizedCrop``); ``resize-crop``
    (resize to R×R, R = round(size · resize_ratio) — 256 for 224 —, then a uniform random size×size
    crop; CDT appendix A.4); ``pad-crop`` (:func:`~longtail.data.geometry.fit_square` to size×size,
    zero-pad ``pad``, random size×size crop: the CIFAR recipe, same offsets law as ``BatchAugment``);
    each followed by a horizontal flip with probability ½ when ``flip``.
    Evaluation: ``pad-crop`` — ``fit_square`` only; otherwise resize the shorter side to
    ``size · resize_ratio`` and take the centre ``size × size``.
    """

    MODES = ("random-resized-crop", "resize-crop", "pad-crop")

    def __init__(
        self,
        size: int = 224,
        train: bool = True,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        resize_ratio: float = 256 / 224,
        *,
        mode: str = "random-resized-crop",
        pad: int = 4,
        flip: bool = True,
        channels: int = 3,
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown stream transform {mode!r}; use one of {', '.join(self.MODES)}")
        self.size, self.train = int(size), bool(train)
        self.mean, self.std = tuple(mean), tuple(std)
        self.scale, self.ratio, self.resize_ratio = scale, ratio, resize_ratio
        self.mode, self.pad, self.flip, self.channels = mode, int(pad), bool(flip), int(channels)

    @property
    def pil_mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def crop_box(self, width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the random-resized crop."""
        area = width * height
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return left, top, left + w, top + h
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        top, left = (height - h) // 2, (width - w) // 2
        return left, top, left + w, top + h

    def __call__(self, image: Any, rng: np.random.Generator) -> np.ndarray:
        from PIL import Image

        from longtail.data.geometry import fit_square, to_chw

        size = self.size
        if image.mode != self.pil_mode:
            image = image.convert(self.pil_mode)
        if self.mode == "pad-crop":
            array = to_chw(fit_square(image, size))
            if not self.train:
                return array
            p = self.pad
            if p > 0:
                dy, dx = int(rng.integers(0, 2 * p + 1)), int(rng.integers(0, 2 * p + 1))
                padded = np.pad(array, ((0, 0), (p, p), (p, p)))
                array = padded[:, dy : dy + size, dx : dx + size]
            if self.flip and rng.random() < 0.5:
                array = array[:, :, ::-1]
            return np.ascontiguousarray(array)
        if self.train:
            if self.mode == "resize-crop":
                side = int(round(size * self.resize_ratio))
                image = image.resize((side, side), Image.BILINEAR)
                top, left = int(rng.integers(0, side - size + 1)), int(rng.integers(0, side - size + 1))
                image = image.crop((left, top, left + size, top + size))
            else:
                box = self.crop_box(image.width, image.height, rng)
                image = image.resize((size, size), Image.BILINEAR, box=box)
            if self.flip and rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            short = int(round(size * self.resize_ratio))
            scale = short / min(image.width, image.height)
            new_w, new_h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
            image = image.resize((new_w, new_h), Image.BILINEAR)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            image = image.crop((left, top, left + size, top + size))
        return to_chw(image)


class _FileDataset(torch.utils.data.Dataset):
    """Keys are (index, epoch, position); only paths are held. ``skip_bad``: an undecodable file
    gives ``(None, label, path)`` instead of raising, and the batch goes on without it."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: StreamTransform, seed: int,
                 skip_bad: bool = False):  # fmt: skip
        self.paths, self.labels, self.transform, self.seed = paths, labels, transform, seed
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[np.ndarray | None, int, str | None]:
        index, epoch, position = key
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, epoch, position])))
        try:
            image = open_image(self.paths[index], self.transform.pil_mode)
        except DataError:
            if not self.skip_bad:
                raise
            return None, int(self.labels[index]), str(self.paths[index])
        return self.transform(image, rng), int(self.labels[index]), None


class _BatchKeys:
    def __init__(self, loader: StreamingLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        loader = self.loader
        batch: list[tuple[int, int, int]] = []
        skip, loader._resume_at = loader._resume_at * loader.batch_size, 0
        for position, index in enumerate(loader.sampler):
            if position < skip:
                continue
            batch.append((int(index), loader.epoch, position))
            if len(batch) == loader.batch_size:
                yield batch
                batch = []
        if batch and not loader.drop_last:
            yield batch


def _collate(items: list[tuple[np.ndarray | None, int, str | None]]) -> tuple[torch.Tensor | None, torch.Tensor, list[str]]:
    """The decoded images of a batch, their labels, and the paths of the files skipped as undecodable."""
    good = [(a, y) for a, y, _ in items if a is not None]
    skipped = [path for _, _, path in items if path is not None]
    if not good:
        return None, torch.zeros(0, dtype=torch.int64), skipped
    return torch.from_numpy(np.stack([a for a, _ in good])), torch.tensor([y for _, y in good], dtype=torch.int64), skipped


def _worker_errors_as_one_line(loader: Iterable[Any]) -> Iterator[Any]:
    """Re-raise a worker's DataError (which DataLoader wraps with the worker's traceback) as one line."""
    try:
        yield from loader
    except DataError as error:
        lines = str(error).strip().splitlines()
        prefix = f"{DataError.__module__}.{DataError.__qualname__}: "
        original = next((line[len(prefix) :] for line in reversed(lines) if line.startswith(prefix)), None)
        if original is None:
            raise
        raise DataError(original) from None


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


class StreamingLoader(_EpochPosition):
    """Batches decoded from image files by ``workers`` DataLoader processes (Pillow).

    Memory holds the path list and the batches in flight (``workers × prefetch``), not the images:
    it does not grow with the number of images. Normalisation is applied to the uint8 batch in the
    main process: ``x = (u8 / 255 − mean) / std``.

    A file that cannot be decoded (``on_bad_file``): ``"stop"`` raises a DataError naming the file,
    the epoch and the step; ``"skip"`` drops it from its batch (a batch of only bad files is skipped)
    and appends its path to ``bad_files`` (one entry per time it was met).
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: torch.Tensor | Sequence[int],
        batch_size: int,
        sampler: Iterable[int] | None = None,
        transform: StreamTransform | None = None,
        workers: int = 0,
        drop_last: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        on_bad_file: str = "stop",
    ) -> None:
        if on_bad_file not in ("stop", "skip"):
            raise ValueError(f"on_bad_file must be 'stop' or 'skip', got {on_bad_file!r}")
        if len(paths) != len(labels):
            raise ValueError(f"{len(labels)} labels for {len(paths)} paths")
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.transform = transform or StreamTransform()
        label_list = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
        self.dataset = _FileDataset(paths, label_list, self.transform, seed, skip_bad=on_bad_file == "skip")
        self.bad_files: list[str] = []
        self.batch_size, self.drop_last, self.workers = batch_size, drop_last, workers
        self.sampler = sampler if sampler is not None else range(len(paths))
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.mean = torch.tensor(self.transform.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(self.transform.std, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return _num_batches(len(self.sampler), self.batch_size, self.drop_last)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=_BatchKeys(self),
            num_workers=self.workers,
            collate_fn=_collate,
            worker_init_fn=_worker_init if self.workers else None,
            pin_memory=self.device.type == "cuda",
        )
        mean, std = self.mean.to(self.device), self.std.to(self.device)
        first = self._resume_at  # read before the DataLoader's first batch resets it
        try:
            for position, (images, labels, skipped) in enumerate(_worker_errors_as_one_line(loader), first + 1):
                self.position = position
                self.bad_files.extend(skipped)
                if images is None:
                    continue
                x = images.to(self.device, non_blocking=True).float().div_(255.0).sub_(mean).div_(std)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                yield x, labels.to(self.device, non_blocking=True)
        except DataError as error:
            raise DataError(
                f"{error}, at epoch {self.epoch + 1}, step {self.position + 1}; stopped (the last checkpoint is "
                "kept) — replace or remove the file and continue with `longtail train --resume`, or set "
                "data.on_bad_file=skip"
            ) from None
