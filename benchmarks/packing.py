"""Packing gain: total training images/s of K runs packed in one model vs the same K runs one after another.

    python benchmarks/packing.py --k 2 --precision fp32 --steps 8 --windows 3 --json out.json

Both sides run the engine's own step loops — ``engine.trainer.train_one_epoch`` for each solo run
(with the trainer's runtime defaults: channels-last, the precision asked for) and
``engine.packed.train_packed_epoch`` for the pack — on the Fashion-MNIST-LT recipe (ResNet-32 with a
normed head, LDAM, SGD, batch 128, 1×28×28 uint8 images augmented per batch; synthetic pixels and
long-tailed labels, so no data files are needed). Windows are interleaved (solo × K, pack, solo × K,
pack, …) so that load from other processes hits both alike; the medians are reported. The last line
is ``packing gain: X.XX`` (pack ÷ solo total images/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch


class _Steps:
    """A loader of ``steps`` batches drawn from a uint8 image tensor, augmented as the trainer does."""

    def __init__(self, images, labels, batch, steps, augment, seed):
        self.images, self.labels, self.batch, self.steps, self.augment = images, labels, batch, steps, augment
        self.generator = torch.Generator().manual_seed(seed)
        self.sampler_name = "instance"

    def __len__(self):
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            index = torch.randint(0, self.images.shape[0], (self.batch,), generator=self.generator)
            yield self.augment(self.images[index]), self.labels[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=2, help="runs per pack")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=8, help="steps per run per window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    from longtail.bench.report import machine
    from longtail.config import load_config
    from longtail.data.augment import BatchAugment
    from longtail.data.profiles import longtail_counts
    from longtail.engine import distributed
    from longtail.engine.accel import Accel, apply_allocator, prepare_model
    from longtail.engine.optim import build_optimizer
    from longtail.engine.packed import PackedModel, PackedRun, train_packed_epoch
    from longtail.engine.trainer import build_loss, train_one_epoch
    from longtail.models import create_model
    from longtail.tracking import Progress

    if args.threads:
        torch.set_num_threads(args.threads)
    root = os.path.join(os.path.dirname(__file__), "..", "configs", "fashion-mnist-lt", "ldam-drw.yaml")
    config = load_config(root, [f"runtime.precision={args.precision}", "train.epochs=200"])
    counts = longtail_counts(10, 6000, 100, "exp")
    generator = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
    images = torch.randint(0, 256, (labels.shape[0], 1, 28, 28), dtype=torch.uint8, generator=generator)
    batch = config.optim.batch_size
    dist = distributed.DistInfo()
    progress = Progress("none", 1)
    apply_allocator("tuned", torch.device("cpu"))

    def build(k: int, channels_last: bool):
        accel = Accel(device="cpu", channels_last=channels_last, precision=args.precision)
        model = create_model("resnet32", num_classes=10, in_channels=1, head="normed-linear", seed=k)
        prepare_model(model, accel)
        loss_fn, _ = build_loss(config, counts)
        optimizer = build_optimizer(config.optim, model)
        augment = BatchAugment((0.286,), (0.353,), pad=4, flip=True, seed=k, channels_last=False)
        return accel, model, loss_fn, optimizer, augment

    solo = [build(k, True) for k in range(args.k)]
    pack = [build(k, False) for k in range(args.k)]
    packed = PackedModel([m for _, m, _, _, _ in pack])
    runs = [PackedRun(config, None, None, m, loss, None, opt) for _, m, loss, opt, _ in pack]  # type: ignore[arg-type]
    accel = pack[0][0]

    def solo_window() -> float:
        started = time.perf_counter()
        for k, (acc, model, loss_fn, optimizer, augment) in enumerate(solo):
            loader = _Steps(images, labels, batch, args.steps, augment, k)
            train_one_epoch(model, loss_fn, optimizer, None, loader, acc, config, 5, dist, progress)
        return args.k * args.steps * batch / (time.perf_counter() - started)

    def pack_window() -> float:
        loaders = [_Steps(images, labels, batch, args.steps, p[4], k) for k, p in enumerate(pack)]
        started = time.perf_counter()
        train_packed_epoch(packed, runs, loaders, accel, 5, progress)
        return args.k * args.steps * batch / (time.perf_counter() - started)

    solo_window(), pack_window()  # warm-up: first-call costs out of the windows
    rates: dict[str, list[float]] = {"solo": [], "packed": []}
    for window in range(args.windows):
        rates["solo"].append(solo_window())
        rates["packed"].append(pack_window())
        print(f"window {window + 1}: {args.k} solo in sequence {rates['solo'][-1]:.0f} img/s, "
              f"packed {rates['packed'][-1]:.0f} img/s", flush=True)
    solo_rate, pack_rate = statistics.median(rates["solo"]), statistics.median(rates["packed"])
    figures = {
        "k": args.k,
        "precision": accel.resolved_precision,
        "threads": torch.get_num_threads(),
        "steps_per_window": args.steps,
        "windows": rates,
        "solo_total_img_s": solo_rate,
        "packed_total_img_s": pack_rate,
        "packing_gain": pack_rate / solo_rate,
        "cpu": machine(),
        "torch": torch.__version__,
        "env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
        "python": platform.python_version(),
    }
    print(f"K={args.k} {figures['precision']} {figures['threads']} threads on {figures['cpu']}: "
          f"solo {solo_rate:.0f} img/s, packed {pack_rate:.0f} img/s (medians of {args.windows} windows)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    print(f"packing gain: {pack_rate / solo_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
