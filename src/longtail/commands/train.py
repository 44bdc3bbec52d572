"""``longtail train CONFIG.yaml [key=value ...] --out DIR [--overwrite] [--seeds 0,1,2 [--pack K|auto]]`` and
``longtail train --resume DIR``.

Also under ``torchrun --nproc_per_node=N -m longtail train ...`` (DDP; only rank 0 writes).
"""

from __future__ import annotations

import argparse
from pathlib import Path


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
    parser.add_argument(
        "--pack",
        default="1",
        metavar="K",
        help="with --seeds: train K seeds at a time in one process as one batched model (engine.packed); "
        "'auto' packs all seeds on a GPU and none on a CPU, where it is slower (default 1: one run after another)",
    )
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


def _parse_pack(text: str) -> int | str:
    from longtail.errors import ConfigError

    if text == "auto":
        return text
    try:
        pack = int(text)
    except ValueError:
        pack = 0
    if pack < 1:
        raise ConfigError(f"--pack {text!r} must be a positive integer or 'auto', e.g. --pack 3")
    return pack


def run(args: argparse.Namespace) -> int:
    from longtail.config import load_config
    from longtail.engine import launch
    from longtail.errors import ConfigError

    overrides = list(args.overrides)
    config_path = args.config
    if config_path is not None and "=" in config_path and not Path(config_path).is_file():
        overrides.insert(0, config_path)  # `longtail train --resume DIR key=value`
        config_path = None
    seeds = _parse_seeds(args.seeds) if args.seeds else None
    pack = _parse_pack(args.pack)
    if args.resume:
        if args.out or args.overwrite:
            raise ConfigError("--resume DIR continues DIR; do not combine it with --out/--overwrite")
        launch.resume(Path(args.resume), config_path, overrides, seeds, pack=pack)
        return 0
    if not args.out:
        raise ConfigError("give the run directory with --out DIR (or --resume DIR to continue a run)")
    if config_path is None and not overrides:
        raise ConfigError("give a config file, e.g. `longtail train configs/fashion-mnist-lt/erm.yaml --out runs/erm`")
    if pack != 1 and not seeds:
        raise ConfigError("--pack K packs the runs of --seeds; give --seeds too (e.g. --seeds 0,1,2 --pack 3)")
    launch.start(load_config(config_path, overrides), Path(args.out), seeds, overwrite=args.overwrite, pack=pack)
    return 0
