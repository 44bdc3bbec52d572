"""Fixtures that write tiny data sets in exactly the real on-disk formats."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest


def write_cifar10(root: Path, per_class: int = 4, test_per_class: int = 2, seed: int = 0) -> Path:
    """cifar-10-batches-py/ with 5 training batches, a test batch and batches.meta (bytes keys,
    as the real python-2 pickles load with ``encoding='bytes'``)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    data = rng.integers(0, 256, size=(labels.size, 3072), dtype=np.uint8)
    for i, chunk in enumerate(np.array_split(np.arange(labels.size), 5), 1):
        batch = {
            b"batch_label": b"training batch",
            b"labels": labels[chunk].tolist(),
            b"data": data[chunk],
            b"filenames": [b"x.png"] * chunk.size,
        }
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    test_labels = np.repeat(np.arange(10), test_per_class)
    test = {
        b"labels": test_labels.tolist(),
        b"data": rng.integers(0, 256, size=(test_labels.size, 3072), dtype=np.uint8),
    }
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))
    return root


def write_cifar100(root: Path, per_class: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", per_class), ("test", 1)):
        fine = np.repeat(np.arange(100), n)
        entry = {
            b"fine_labels": fine.tolist(),
            b"coarse_labels": (fine // 5).tolist(),
            b"data": rng.integers(0, 256, size=(fine.size, 3072), dtype=np.uint8),
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {
        b"fine_label_names": [f"c{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"s{i}".encode() for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written out from the format description (magic 0 0 0x08 ndim, big-endian dims)."""
    assert array.dtype == np.uint8
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_set(
    root: Path, per_class: int = 5, test_per_class: int = 2, compress: bool = True, seed: int = 0
) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        rng.shuffle(labels)
        images = rng.integers(0, 256, size=(labels.size, 28, 28), dtype=np.uint8)
        arrays[f"{prefix}-images"], arrays[f"{prefix}-labels"] = images, labels
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            payload = idx_bytes(array)
            if compress:
                (root / f"{stem}.gz").write_bytes(gzip.compress(payload))
            else:
                (root / stem).write_bytes(payload)
    return root, arrays


def write_image(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def write_imagefolder(
    root: Path, classes=("cat", "dog", "emu"), per_class=(5, 3, 2), size=12, seed=0
) -> Path:
    rng = np.random.default_rng(seed)
    for split, counts in (("train", per_class), ("val", (2,) * len(classes))):
        for name, n in zip(classes, counts):
            for i in range(n):
                write_image(
                    root / split / name / f"{i:03d}.png",
                    rng.integers(0, 256, size=(size, size + 3, 3), dtype=np.uint8),
                )
    return root


def write_tiny_imagenet(root: Path, wnids=("n01443537", "n01629819", "n01641577"), per_class=3) -> Path:
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))
    for label, wnid in enumerate(wnids):
        for i in range(per_class):
            # flat colours survive JPEG compression almost exactly
            write_image(
                folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG",
                np.full((64, 64, 3), 40 * label + 10 * i, np.uint8),
                "JPEG",
            )
    lines = []
    for i, wnid in enumerate(list(wnids) * 2):
        write_image(
            folder / "val" / "images" / f"val_{i}.JPEG", np.full((64, 64, 3), 7 * i, np.uint8), "JPEG"
        )
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def write_inaturalist(root: Path, counts=(6, 3, 1), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    categories = [{"id": c, "name": f"species {c}", "supercategory": "Plantae"} for c in range(len(counts))]
    for split, per in (("train", counts), ("val", (1,) * len(counts))):
        images, annotations = [], []
        for c, n in enumerate(per):
            for i in range(n):
                image_id = 1000 * (split == "val") + 10 * c + i
                name = f"train_val2018/Plantae/{c}/{split}_{i}.jpg"
                write_image(root / name, rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8), "JPEG")
                images.append({"id": image_id, "file_name": name, "width": 30, "height": 20})
                annotations.append({"id": image_id, "image_id": image_id, "category_id": c})
        (root / f"{split}2018.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": categories})
        )
    return root


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    return write_cifar10(tmp_path / "cifar")


@pytest.fixture
def cifar100_root(tmp_path: Path) -> Path:
    return write_cifar100(tmp_path / "cifar100")


@pytest.fixture
def fmnist_root(tmp_path: Path) -> Path:
    return write_idx_set(tmp_path / "fmnist")[0]


@pytest.fixture
def imagefolder_root(tmp_path: Path) -> Path:
    return write_imagefolder(tmp_path / "folder")


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return write_tiny_imagenet(tmp_path / "tiny")


@pytest.fixture
def inat_root(tmp_path: Path) -> Path:
    return write_inaturalist(tmp_path / "inat")


@pytest.fixture
def writers():
    """The writer functions, for tests that need a variant (corrupt, truncated, other sizes)."""
    import types

    return types.SimpleNamespace(
        cifar10=write_cifar10,
        cifar100=write_cifar100,
        idx_set=write_idx_set,
        idx_bytes=idx_bytes,
        image=write_image,
        imagefolder=write_imagefolder,
        tiny_imagenet=write_tiny_imagenet,
        inaturalist=write_inaturalist,
    )
