"""Tiny Fashion-MNIST-format data (real gzip IDX files, 8×8 images) and configs for engine tests."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml


def write_idx(path: Path, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def write_tiny_fashion_mnist(root: Path, per_train: int = 30, per_test: int = 6, size: int = 8, seed: int = 0) -> Path:
    """train/t10k IDX files: 10 classes, a fixed prototype image per class plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    prototypes = rng.integers(0, 256, size=(10, size, size))
    for prefix, per in (("train", per_train), ("t10k", per_test)):
        labels = np.repeat(np.arange(10), per)
        rng.shuffle(labels)
        noise = rng.normal(0, 60, size=(labels.size, size, size))
        images = np.clip(prototypes[labels] + noise, 0, 255)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return write_tiny_fashion_mnist(tmp_path_factory.mktemp("fmnist"))


def tiny_config_dict(root: Path, **sections) -> dict:
    """A run of a few steps: ρ=10 on 30..3 examples per class (118 images), ResNet-32 on 8×8."""
    config = {
        "data": {"name": "fashion-mnist", "root": str(root), "imbalance_ratio": 10, "pad": 1},
        "model": {"name": "resnet32"},
        "optim": {"batch_size": 32, "lr": 0.01, "warmup_epochs": 1, "milestones": [2], "gamma": 0.1},
        "train": {"epochs": 3, "checkpoint_keep": 5},
        "eval": {"every": 1, "batch_size": 64},
        "runtime": {"progress": "none", "num_threads": 1},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture
def write_config(tiny_root, tmp_path):
    """``write_config(**sections) -> path`` of a YAML config for the tiny data."""

    def write(name: str = "tiny.yaml", **sections) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, **sections)))
        return path

    return write


def repoint_run(run: Path, root: Path, dest: Path) -> Path:
    """A copy of run directory ``run`` at ``dest`` whose config reads its data from ``root``."""
    shutil.copytree(run, dest)
    config = yaml.safe_load((dest / "config.yaml").read_text())
    config["data"]["root"] = str(root)
    (dest / "config.yaml").write_text(yaml.safe_dump(config))
    return dest


@pytest.fixture
def repoint():
    """``repoint(run, root, dest) -> dest``: :func:`repoint_run` (the same training files elsewhere, another
    test set, or none)."""
    return repoint_run
