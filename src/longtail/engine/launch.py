"""Starting and continuing ``longtail train`` runs: one run or one per seed (with ``summary.json``), and
resuming a run directory. Under ``torchrun`` only rank 0 writes."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from longtail.config import Config, config_diff, load_config, save_config
from longtail.errors import LongtailError


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def start(config: Config, out: Path, seeds: list[int] | None = None, overwrite: bool = False) -> None:
    """Train ``config`` into ``out`` (a new directory; replaced with ``overwrite``), or one run per seed
    into ``out/seed-<s>`` and their mean ± std into ``out/summary.json``."""
    from longtail.engine.trainer import fit, prepare_run_dir

    if rank() == 0:
        prepare_run_dir(out, resume=False, overwrite=overwrite)
        save_config(config, out / "config.yaml")  # first, so that a run killed at once can be resumed
    if seeds:
        train_seeds(config, out, seeds, resume=False)
    else:
        fit(config, out)


def train_seeds(config: Config, out: Path, seeds: list[int], resume: bool) -> dict[str, Any]:
    """One run per seed (finished ones reused when resuming); returns (and on rank 0 writes and prints)
    the summary over the seeds."""
    from longtail.engine.summary import format_table, load_results, summarize
    from longtail.engine.trainer import fit
    from longtail.tracking import write_json

    runs = {}
    for seed in seeds:
        seeded = copy.deepcopy(config)
        seeded.train.seed = seed
        run_dir = out / f"seed-{seed}"
        if resume and (run_dir / "results.json").is_file():
            runs[seed] = load_results(run_dir)
            continue
        if rank() == 0:
            print(f"== seed {seed} -> {run_dir}", flush=True)
        runs[seed] = fit(seeded, run_dir, resume=resume)
    summary = summarize(runs)
    if rank() == 0:
        write_json(out / "summary.json", summary)
        print(format_table(summary), flush=True)
    return summary


def resume(out: Path, config_path: str | None = None, overrides: list[str] | None = None,
           seeds: list[int] | None = None) -> None:
    """Continue the run (or the seeds' runs) in ``out``; a given config / overrides must equal the saved
    config except in runtime-only keys."""
    from longtail.engine.trainer import fit

    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise LongtailError(f"--resume {out}: no config.yaml there; it is not a `longtail train` run directory")
    config = load_config(saved_path)
    if config_path is not None or overrides:
        requested = load_config(config_path or saved_path, overrides or [])
        diff = config_diff(config, requested)
        if diff:
            raise LongtailError(
                f"--resume {out}: the given config differs from the run's ({'; '.join(diff)}); resume "
                "without a config/overrides, or start a new run with --out"
            )
        config = requested  # may differ in runtime-only keys (device, threads, progress)
    seed_dirs = sorted(out.glob("seed-*"))
    if seeds or (seed_dirs and not (out / "checkpoints").exists()):
        train_seeds(config, out, seeds or sorted(int(d.name[5:]) for d in seed_dirs), resume=True)
    else:
        fit(config, out, resume=True)
