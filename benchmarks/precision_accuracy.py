"""Does bf16 autocast change what LDAM-DRW learns? fp32 vs bf16 on real Fashion-MNIST-LT, same seeds.

bf16 may become longtail's default precision only if the final balanced accuracy on
Fashion-MNIST-LT (ρ=100, natural class order) stays within the seed-to-seed noise of fp32. This
trains the same short LDAM-DRW schedule with ``longtail.engine.fit`` — the real data layer, model,
loss, sampler and trainer — once per (seed, precision), seeds interleaved (fp32, bf16, fp32, bf16, …)
so load on a shared machine hits both alike, and prints per run: balanced accuracy (= top-1 on the
balanced test set), accuracy of the three tail classes, seconds per epoch; then per precision the
mean ± std over seeds, and the paired differences bf16 − fp32 against the fp32 seed-to-seed std.

Short schedule: E epochs (default 5), batch 128, lr 0.1 with 1 warm-up epoch, lr × 0.01 for the last
epoch, where DRW switches the class weights on (the ``drw`` schedule's default: the reference
code's class-balanced weights, β = 0.9999); normed-linear head, LDAM (max margin 0.5, s = 30).
Channels-last in both; only ``runtime.precision`` differs.

    python benchmarks/precision_accuracy.py --seeds 0,1 --epochs 5 --out /tmp/precision
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def make_config(seed: int, precision: str, epochs: int, data_root: str | None, threads: int = 0) -> Any:
    from longtail.config import Config, validate

    config = Config()
    config.data.name = "fashion-mnist"
    config.data.root = data_root
    config.data.imbalance_ratio = 100.0
    config.model.name = "resnet32"
    config.model.head = "normed-linear"
    config.loss.name = "ldam"
    config.rebalance.name = "drw"
    config.rebalance.params = {"start_epoch": epochs - 1}
    config.optim.warmup_epochs = 1
    config.optim.milestones = [epochs - 1]
    config.optim.gamma = 0.01
    config.train.epochs = epochs
    config.train.seed = seed
    config.train.checkpoint_every = epochs
    config.train.checkpoint_keep = 1
    config.eval.every = 0
    config.runtime.precision = precision
    config.runtime.channels_last = True
    config.runtime.progress = "none"
    config.runtime.num_threads = threads
    validate(config)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds (default 0,1)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated (default fp32,bf16)")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST IDX folder (default: the data set's)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--out", default="/tmp/longtail-precision", help="directory for the run folders")
    parser.add_argument("--json", default="", help="also write the table as JSON to this path")
    args = parser.parse_args(argv)

    from longtail.engine.trainer import fit

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (DRW starts at the last epoch)")
    out = Path(args.out)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for precision in precisions:
            run_dir = out / f"seed{seed}-{precision}"
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            config = make_config(seed, precision, args.epochs, args.data_root, args.threads)
            started = time.perf_counter()
            results = fit(config, run_dir)
            wall = time.perf_counter() - started
            tail = results["per_class"][-3:]
            row = {
                "seed": seed,
                "precision": precision,
                "balanced_accuracy": float(results["balanced_accuracy"]),
                "tail3": [float("nan") if v is None else float(v) for v in tail],
                "seconds_per_epoch": results["timing"]["seconds_per_epoch"],
                "wall_seconds": wall,
            }
            rows.append(row)
            print(
                f"seed {seed} {precision}: balanced accuracy {100 * row['balanced_accuracy']:.2f}%  "
                f"tail classes {', '.join(f'{100 * t:.1f}' for t in row['tail3'])}  "
                f"{row['seconds_per_epoch']:.1f} s/epoch (wall {wall:.0f} s)",
                flush=True,
            )
    print(f"\nFashion-MNIST-LT ρ=100, LDAM-DRW, {args.epochs} epochs, seeds {seeds}")
    summary: dict[str, Any] = {}
    for precision in precisions:
        accs = [100 * r["balanced_accuracy"] for r in rows if r["precision"] == precision]
        std = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        speed = statistics.mean(r["seconds_per_epoch"] for r in rows if r["precision"] == precision)
        summary[precision] = {"mean": statistics.mean(accs), "std": std, "seconds_per_epoch": speed}
        print(f"  {precision}: {statistics.mean(accs):.2f} ± {std:.2f} %  ({speed:.1f} s/epoch)")
    if "fp32" in precisions and len(precisions) > 1:
        for precision in precisions:
            if precision == "fp32":
                continue
            diffs = [
                100 * (r["balanced_accuracy"] - f["balanced_accuracy"])
                for r in rows
                if r["precision"] == precision
                for f in rows
                if f["precision"] == "fp32" and f["seed"] == r["seed"]
            ]
            print(
                f"  {precision} − fp32 per seed: {', '.join(f'{d:+.2f}' for d in diffs)} points "
                f"(fp32 seed-to-seed std {summary['fp32']['std']:.2f})"
            )
            summary[precision]["paired_differences"] = diffs
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
