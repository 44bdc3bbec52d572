"""``longtail train CONFIG.yaml [key=value ...] --out DIR [--overwrite] [--seeds 0,1,2]`` and
``longtail train --resume DIR``.

Also under ``torchrun --nproc_per_node=N -m longtail train ...`` (DDP; only rank 0 writes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a long-tailed data set",
        description="Train CONFIG (YAML) with key.sub=value overrides into --out DIR, or continue a "
        "killed run with --resume DIR (exactly: the result equals an uninterrupted run's on CPU).",
    )
    parser.add_argument("config", nargs="?", help="YAML config file (e.g. configs/fashion-mnist-lt/ldam-drw.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, e.g. train.epochs=20")
    parser.add_argument("--out", help="run directory (refused if it exists and is not empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    parser.add_argument("--seeds", help="comma-separated training seeds: runs DIR/seed-<s>/ and DIR/summary.json")
    parser.set_defaults(func=run)


def _parse_seeds(text: str) -> list[int]:
    from longtail.errors import ConfigError

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r} must be comma-separated integers, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must list distinct integers, e.g. --seeds 0,1,2")
    return seeds


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def run(args: argparse.Namespace) -> int:
    from longtail.config import load_config
    from longtail.errors import ConfigError

    overrides = list(args.overrides)
    config_path = args.config
    if config_path is not None and "=" in config_path and not Path(config_path).is_file():
        overrides.insert(0, config_path)  # `longtail train --resume DIR key=value`
        config_path = None
    if args.resume:
        if args.out or args.overwrite:
            raise ConfigError("--resume DIR continues DIR; do not combine it with --out/--overwrite")
        return _resume(Path(args.resume), config_path, overrides, args.seeds)
    if not args.out:
        raise ConfigError("give the run directory with --out DIR (or --resume DIR to continue a run)")
    if config_path is None and not overrides:
        raise ConfigError("give a config file, e.g. `longtail train configs/fashion-mnist-lt/erm.yaml --out runs/erm`")
    config = load_config(config_path, overrides)
    out = Path(args.out)
    if _rank() == 0:
        from longtail.config import save_config
        from longtail.engine.trainer import prepare_run_dir

        prepare_run_dir(out, resume=False, overwrite=args.overwrite)
        save_config(config, out / "config.yaml")  # first, so that a run killed at once can be resumed
    if args.seeds:
        return _train_seeds(config, out, _parse_seeds(args.seeds), resume=False)
    from longtail.engine.trainer import fit

    fit(config, out)
    return 0


def _train_seeds(config: Any, out: Path, seeds: list[int], resume: bool) -> int:
    import copy

    from longtail.engine.summary import format_table, load_results, summarize
    from longtail.engine.trainer import fit
    from longtail.tracking import write_json

    runs = {}
    for seed in seeds:
        seeded = copy.deepcopy(config)
        seeded.train.seed = seed
        run_dir = out / f"seed-{seed}"
        done = (run_dir / "results.json").is_file()
        if done and resume:
            runs[seed] = load_results(run_dir)
            continue
        if _rank() == 0:
            print(f"== seed {seed} -> {run_dir}", flush=True)
        runs[seed] = fit(seeded, run_dir, resume=resume)
    if _rank() == 0:
        summary = summarize(runs)
        write_json(out / "summary.json", summary)
        print(format_table(summary), flush=True)
    return 0


def _resume(out: Path, config_path: str | None, overrides: list[str], seeds_text: str | None) -> int:
    from longtail.config import config_diff, load_config
    from longtail.engine.trainer import fit
    from longtail.errors import LongtailError

    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise LongtailError(f"--resume {out}: no config.yaml there; it is not a `longtail train` run directory")
    saved = load_config(saved_path)
    config = saved
    if config_path is not None or overrides:
        requested = load_config(config_path or saved_path, overrides)
        diff = config_diff(saved, requested)
        if diff:
            raise LongtailError(
                f"--resume {out}: the given config differs from the run's ({'; '.join(diff)}); resume "
                "without a config/overrides, or start a new run with --out"
            )
        config = requested  # may differ in runtime-only keys (device, threads, progress)
    seed_dirs = sorted(out.glob("seed-*"))
    if seeds_text or (seed_dirs and not (out / "checkpoints").exists()):
        seeds = _parse_seeds(seeds_text) if seeds_text else sorted(int(d.name[5:]) for d in seed_dirs)
        return _train_seeds(config, out, seeds, resume=True)
    fit(config, out, resume=True)
    return 0
