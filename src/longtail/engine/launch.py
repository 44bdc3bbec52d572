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


def start(config: Config, out: Path, seeds: list[int] | None = None, overwrite: bool = False,
          pack: int | str = 1) -> None:
    """Train ``config`` into ``out`` (a new directory; replaced with ``overwrite``), or one run per seed
    into ``out/seed-<s>`` and their mean ± std into ``out/summary.json`` (``pack`` seeds at a time as one
    batched model, see :func:`pack_size`).

    Nothing is written before the run is set up: the config is checked (:func:`check_before_writing`)
    and the directory too (:func:`check_out_dir`), then the directory is locked and ``fit`` writes
    ``config.yaml`` once data, model, loss and optimiser are built — a run refused for its input
    leaves no trace in ``out``."""
    check_before_writing(config)
    if rank() != 0:
        _train(config, out, seeds, resume=False, pack=pack)
        return
    check_out_dir(out, overwrite)
    from longtail.engine.lock import RunLock

    with RunLock(out):
        if overwrite:
            clear_run_dir(out)
        _train(config, out, seeds, resume=False, pack=pack)


def _train(config: Config, out: Path, seeds: list[int] | None, resume: bool, pack: int | str = 1) -> None:
    from longtail.engine import preemption
    from longtail.engine.distributed import peer_failures_as_errors
    from longtail.engine.trainer import fit

    with preemption.signals(), peer_failures_as_errors(config.runtime.dist_timeout):
        if seeds:
            if not resume and rank() == 0:  # checked already: what `--resume OUT` reads (each seed's fit writes its own)
                save_config(config, out / "config.yaml")
            train_seeds(config, out, seeds, resume=resume, pack=pack)
        else:
            fit(config, out, resume=resume)


def check_before_writing(config: Config) -> None:
    """Check ``config`` before anything is read or written (``start`` runs it before it locks ``out``):
    names and parameters (:func:`longtail.config.validate`, again for a Config built in code) and what
    only the engine can check (:func:`longtail.engine.trainer.check_engine_choices`: the device, the
    loss's head, the samplers and loss parameters the schedule picks)."""
    from longtail.config import validate
    from longtail.engine.trainer import check_engine_choices

    validate(config)
    check_engine_choices(config)


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file or a non-empty directory (without ``overwrite``); writes nothing."""
    from longtail.engine.lock import LOCK_NAME

    if out.exists() and not out.is_dir():
        raise LongtailError(f"--out {out} exists and is not a directory; choose another path")
    entries = [p for p in out.iterdir() if p.name != LOCK_NAME] if out.is_dir() else []
    if entries and not overwrite:
        raise LongtailError(
            f"--out {out} already exists and is not empty; pass --overwrite to replace it or "
            f"`longtail train --resume {out}` to continue it"
        )


def clear_run_dir(out: Path) -> None:
    """Delete the contents of ``out`` except its lock (held by this process)."""
    import shutil

    from longtail.engine.lock import LOCK_NAME

    for path in out.iterdir():
        if path.name == LOCK_NAME:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def pack_size(pack: int | str, count: int, config: Config) -> int:
    """How many of ``count`` runs of ``config`` to train per pack (``engine.packed``): ``pack`` itself
    (checked: the model must be packable, one process), or for ``"auto"`` all of them on an
    accelerator and 1 on a CPU — there one run already keeps the cores busy and the batched kernels
    are slower than the single ones (``benchmarks/packing.py``: ×0.5-0.8 on the 2-core CPUs)."""
    from longtail.engine.accel import resolve_device
    from longtail.engine.packed import pack_incompatibility
    from longtail.errors import ConfigError

    reason = pack_incompatibility([config, config])
    if reason is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        reason = "packed training runs in one process, not under torchrun"
    if pack == "auto":
        on_cpu = resolve_device(config.runtime.device).type == "cpu"
        return count if count > 1 and reason is None and not on_cpu else 1
    assert isinstance(pack, int)
    if pack > 1 and reason is not None:
        raise ConfigError(f"--pack {pack}: {reason}; use --pack 1")
    return max(pack, 1)


def train_seeds(config: Config, out: Path, seeds: list[int], resume: bool, pack: int | str = 1) -> dict[str, Any]:
    """One run per seed (finished ones reused when resuming), ``pack`` at a time (:func:`pack_size`);
    returns (and on rank 0 writes and prints) the summary over the seeds."""
    from longtail.engine.packed import fit_packed
    from longtail.engine.summary import format_table, load_results, summarize
    from longtail.engine.trainer import fit
    from longtail.tracking import write_json

    runs = {}
    todo = []
    for seed in seeds:
        if resume and (out / f"seed-{seed}" / "results.json").is_file():
            runs[seed] = load_results(out / f"seed-{seed}")
        else:
            todo.append(seed)
    size = pack_size(pack, len(todo), config)
    for first in range(0, len(todo), size):
        group = todo[first : first + size]
        configs = []
        for seed in group:
            seeded = copy.deepcopy(config)
            seeded.train.seed = seed
            configs.append(seeded)
        dirs = [out / f"seed-{seed}" for seed in group]
        if rank() == 0:
            names = ", ".join(map(str, dirs))
            print(f"== seed{'s' if len(group) > 1 else ''} {', '.join(map(str, group))} -> {names}"
                  f"{' (one packed model)' if len(group) > 1 else ''}", flush=True)
        if len(group) == 1:
            runs[group[0]] = fit(configs[0], dirs[0], resume=resume)
        else:
            runs.update(zip(group, fit_packed(configs, dirs, resume=resume)))
    summary = summarize(runs)
    if rank() == 0:
        write_json(out / "summary.json", summary)
        print(format_table(summary), flush=True)
    return summary


def resume(out: Path, config_path: str | None = None, overrides: list[str] | None = None,
           seeds: list[int] | None = None, pack: int | str = 1) -> None:
    """Continue the run (or the seeds' runs) in ``out``; a given config / overrides must equal the saved
    config except in runtime-only keys."""
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
        seeds = seeds or sorted(int(d.name[5:]) for d in seed_dirs)
    if rank() != 0:
        _train(config, out, seeds, resume=True, pack=pack)
        return
    from longtail.engine.lock import RunLock

    with RunLock(out) as lock:
        if lock.took_over:
            print(f"longtail: took over the lock of a dead run (pid {lock.took_over.get('pid')} on "
                  f"{lock.took_over.get('host')})", flush=True)
        _train(config, out, seeds, resume=True, pack=pack)
