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
    """Resolve the names and parameters ``fit`` builds from, before any data is read or file written.

    The loss is built from placeholder class counts of the data set's class number (its parameters
    are checked, not its values); model, schedule and sampler names must be registered and the
    samplers of the first and last epoch must accept their parameters; the device must exist."""
    import torch

    from longtail.data.datasets import dataset_info
    from longtail.engine.accel import resolve_device
    from longtail.engine.trainer import sampler_choice
    from longtail.errors import ConfigError
    from longtail.losses import create_loss
    from longtail.registry import MODELS, SAMPLERS, SCHEDULES

    info = dataset_info(config.data.name)
    for registry, name, key in ((MODELS, config.model.name, "model.name"),
                                (SCHEDULES, config.rebalance.name, "rebalance.name"),
                                (SAMPLERS, config.sampler.name, "sampler.name")):  # fmt: skip
        if name is not None and name not in registry:
            raise ConfigError(f"{key}={name!r} is not registered; choose one of {', '.join(registry.names())}")
    num_classes = info.num_classes or 2
    counts = [max(1, 100 // (i + 1)) for i in range(num_classes)]
    loss = create_loss(config.loss.name, counts, **config.loss.params)
    if getattr(loss, "requires_normed_head", False) and config.model.head != "normed-linear":
        raise ConfigError(f"loss {config.loss.name!r} works on cosine logits; set model.head=normed-linear")
    schedule = SCHEDULES.create(config.rebalance.name, class_counts=counts, **config.rebalance.params)
    resolve_device(config.runtime.device)
    labels = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    for epoch in sorted({0, config.train.epochs - 1}):  # the samplers of the first and the last epoch
        name, params = sampler_choice(config, schedule.at_epoch(epoch))
        SAMPLERS.create(name, labels=labels, seed=0, **params)


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
