"""Images/s of a 32×32 image-folder set: decoded once into memory (uint8 tensor, batched pad-crop)
vs streamed from the PNG files (Pillow per image, the same pad-crop per image).

    OMP_NUM_THREADS=1 python benchmarks/owndata_inmemory.py [--images 2000] [--epochs 2] [--workers 2]

Writes a folder of N 32×32 PNGs (10 classes, ρ = 10 counts) to a temp dir, then for each path
measures (a) the loader alone: one epoch of batches of 128, no model; (b) training: ResNet-32,
batch 128, fp32, ``fit`` for the given epochs, images/s of the last epoch (its ``seconds``, which
include the one evaluation, on 100 test images). Prints one line per path and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_folder(root: Path, images: int, seed: int = 0) -> int:
    from PIL import Image

    rng = np.random.default_rng(seed)
    weights = 10.0 ** (-np.arange(10) / 9)  # ρ = 10
    counts = np.maximum(1, np.round(images * weights / weights.sum())).astype(int)
    prototypes = rng.integers(0, 256, (10, 32, 32, 3))
    for split, per in (("train", counts), ("val", [10] * 10)):
        for c, n in enumerate(per):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(prototypes[c] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return int(counts.sum())


def config(root: Path, in_memory: bool, epochs: int, workers: int):  # noqa: ANN201
    from longtail.config import from_dict

    return from_dict({
        "data": {"name": "imagefolder", "root": str(root), "profile": "none", "image_size": 32,
                 "in_memory": in_memory, "workers": workers},
        "model": {"name": "resnet32"},
        "optim": {"batch_size": 128, "warmup_epochs": 0, "milestones": [epochs]},
        "train": {"epochs": epochs},
        "eval": {"every": 0, "batch_size": 128},
        "runtime": {"progress": "none", "device": "cpu", "precision": "fp32", "compile": False},
    })


def loader_rate(cfg) -> float:  # noqa: ANN001
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo

    data = TrainData(cfg, DistInfo(), torch.device("cpu"))
    loader = data.train_loader(("instance", {}), 0)
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from longtail.engine.trainer import fit

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "folder"
        n = write_folder(root, args.images)
        rows = {}
        for name, in_memory in (("in memory", True), ("streamed", False)):
            cfg = config(root, in_memory, args.epochs, args.workers)
            load = loader_rate(cfg)
            fit(cfg, Path(tmp) / name.replace(" ", "-"))
            last = json.loads((Path(tmp) / name.replace(" ", "-") / "metrics.jsonl").read_text().splitlines()[-1])
            rows[name] = (load, n / last["seconds"])
        print(f"{n} training images 32x32, ResNet-32 fp32 batch 128, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}, streamed workers {args.workers}")
        for name, (load, train) in rows.items():
            print(f"{name:>10}: loader {load:8.0f} img/s   training {train:6.0f} img/s")
        (mem_l, mem_t), (str_l, str_t) = rows["in memory"], rows["streamed"]
        print(f"in memory / streamed: loader x{mem_l / str_l:.1f}, training x{mem_t / str_t:.2f}")


if __name__ == "__main__":
    main()
