"""Tiny-ImageNet-200 (Stanford CS231n): 200 classes, 500 training and 50 validation 64×64 images each.

Layout ``tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG,
val/val_annotations.txt}``; the validation set (labels in ``val_annotations.txt``) serves as the
test set, as in the LDAM and CDT papers. The images are small: they are decoded once and held as one
uint8 tensor.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from longtail.data.images import read_rgb_array
from longtail.data.split import Split
from longtail.errors import DataError

FOLDER = "tiny-imagenet-200"
SIZE = (64, 64)


def _find(root: Path) -> Path:
    for candidate in (root / FOLDER, root):
        if (candidate / "wnids.txt").is_file():
            return candidate
    raise DataError(f"no {FOLDER}/wnids.txt under {root}; pass --root to the folder holding {FOLDER}/")


def _decode_all(paths: list[str]) -> torch.Tensor:
    """Decode every image into one uint8 array; Pillow releases the GIL while decoding, so a few
    threads share the work (the result does not depend on their number)."""
    images = np.empty((len(paths), 3, *SIZE), dtype=np.uint8)

    def decode(i: int) -> None:
        images[i] = read_rgb_array(paths[i], SIZE)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for _ in pool.map(decode, range(len(paths)), chunksize=256):
            pass
    return torch.from_numpy(images)


def tiny_imagenet_files(root: str | Path, train: bool) -> tuple[list[str], list[int], list[str]]:
    """(paths, labels, wnids) of one split, without decoding."""
    folder = _find(Path(root))
    wnids = [line.strip() for line in (folder / "wnids.txt").read_text().splitlines() if line.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    paths: list[str] = []
    labels: list[int] = []
    if train:
        for label, wnid in enumerate(wnids):
            images_dir = folder / "train" / wnid / "images"
            if not images_dir.is_dir():
                raise DataError(f"missing Tiny-ImageNet folder {images_dir}; the data set is incomplete")
            files = sorted(e.name for e in os.scandir(images_dir) if e.name.upper().endswith(".JPEG"))
            if not files:
                raise DataError(f"Tiny-ImageNet folder {images_dir} holds no .JPEG image")
            paths.extend(str(images_dir / f) for f in files)
            labels.extend([label] * len(files))
    else:
        annotations = folder / "val" / "val_annotations.txt"
        if not annotations.is_file():
            raise DataError(f"missing Tiny-ImageNet file {annotations}; the data set is incomplete")
        for number, line in enumerate(annotations.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise DataError(f"{annotations} line {number}: expected '<file>\\t<wnid>\\t…', got {line!r}")
            if fields[1] not in index:
                raise DataError(
                    f"{annotations} line {number}: class {fields[1]!r} is not in wnids.txt "
                    f"(label outside the {len(wnids)} classes)"
                )
            paths.append(str(folder / "val" / "images" / fields[0]))
            labels.append(index[fields[1]])
    return paths, labels, wnids


def load_tiny_imagenet(root: str | Path, train: bool) -> Split:
    """Tiny-ImageNet-200: 100,000 training / 10,000 validation images of 200 classes, 64×64 RGB."""
    paths, labels, wnids = tiny_imagenet_files(root, train)
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=wnids, images=_decode_all(paths))


def halve(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, C, 2H, 2W]`` → ``[N, C, H, W]``: the mean of each 2×2 block, rounded half up (a box filter
    at exactly half the size: (a + b + c + d + 2) // 4)."""
    wide = images.to(torch.int32)
    blocks = wide[..., 0::2, 0::2] + wide[..., 0::2, 1::2] + wide[..., 1::2, 0::2] + wide[..., 1::2, 1::2]
    return ((blocks + 2) // 4).to(torch.uint8)


def load_tiny_imagenet_32(root: str | Path, train: bool) -> Split:
    """Tiny-ImageNet-200 at 32×32 (each 64×64 image halved by 2×2 averaging): CIFAR-sized, for CDT's ERM-PD."""
    split = load_tiny_imagenet(root, train)
    assert split.images is not None
    split.images = halve(split.images)
    return split
