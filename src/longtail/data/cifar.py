"""CIFAR-10 / CIFAR-100 in their python pickle format (Krizhevsky, 2009).

``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` with keys ``data`` (uint8
N×3072, the red, green and blue 32×32 planes in turn) and ``labels``; ``cifar-100-python/{train,
test, meta}`` with ``fine_labels`` and ``fine_label_names``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longtail.data.split import Split
from longtail.errors import DataError

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"


def _find_dir(root: Path, name: str, marker: str) -> Path:
    """``root/name`` or ``root`` itself when it already is that folder."""
    for candidate in (root / name, root):
        if (candidate / marker).is_file():
            return candidate
    raise DataError(
        f"no {name}/ folder with {marker!r} under {root}; download it with "
        f"`longtail data {'cifar10' if '10-' in name else 'cifar100'} --root {root} --download` "
        "or pass --root to the folder that holds it"
    )


def _unpickle(path: Path) -> dict[Any, Any]:
    if not path.is_file():
        raise DataError(f"missing CIFAR file {path}; the data set folder is incomplete — download it again")
    try:
        with path.open("rb") as handle:
            obj = pickle.load(handle, encoding="bytes")
    except Exception as error:  # truncated pickles raise EOFError, UnpicklingError, ValueError...
        raise DataError(
            f"cannot read CIFAR file {path}: truncated or corrupt ({error.__class__.__name__}); "
            "download it again"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR file {path} does not hold a dict; it is not a CIFAR python pickle")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    if "data" not in entry or label_key not in entry:
        raise DataError(f"CIFAR file {path} has no 'data' or {label_key!r} entry; wrong file or corrupt")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"CIFAR file {path}: 'data' must be uint8 N×3072, got {data.dtype} {data.shape}; corrupt file"
        )
    if labels.shape != (data.shape[0],):
        raise DataError(
            f"CIFAR file {path}: {labels.shape[0]} labels for {data.shape[0]} images; corrupt file"
        )
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise DataError(
            f"CIFAR file {path}: label {int(labels[bad][0])} outside the class range 0..{num_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _names(path: Path, key: str, num_classes: int) -> list[str]:
    if not path.is_file():
        return [str(i) for i in range(num_classes)]
    names = _unpickle(path).get(key)
    if names is None or len(names) != num_classes:
        raise DataError(f"CIFAR meta file {path}: expected {num_classes} names under {key!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def load_cifar10(root: str | Path, train: bool) -> Split:
    """CIFAR-10: 50,000 training / 10,000 test images of 10 classes, 32×32 RGB."""
    folder = _find_dir(Path(root), CIFAR10_DIR, "test_batch")
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    parts = [_batch(folder / f, "labels", 10) for f in files]
    return Split(
        labels=torch.from_numpy(np.concatenate([p[1] for p in parts])),
        classes=_names(folder / "batches.meta", "label_names", 10),
        images=torch.from_numpy(np.ascontiguousarray(np.concatenate([p[0] for p in parts]))),
    )


def load_cifar100(root: str | Path, train: bool) -> Split:
    """CIFAR-100: 50,000 training / 10,000 test images of 100 (fine) classes, 32×32 RGB."""
    folder = _find_dir(Path(root), CIFAR100_DIR, "test")
    data, labels = _batch(folder / ("train" if train else "test"), "fine_labels", 100)
    return Split(
        labels=torch.from_numpy(labels),
        classes=_names(folder / "meta", "fine_label_names", 100),
        images=torch.from_numpy(np.ascontiguousarray(data)),
    )
