"""The training loop: one readable :func:`fit` with named phases.

build data → model → loss and re-balancing schedule → optimiser → resume → for each epoch: apply the
schedule's state (class weights, sampler, loss parameters) → train → evaluate (every ``eval.every``
epochs and after the last) → log → checkpoint. Then ``results.json``.

Exact resume. Every random stream is derived from ``(train.seed, epoch)``: the sampler's draw
(``set_epoch``), the augmentation generator (re-seeded at each epoch start) and torch's global
generator (re-seeded at each epoch start, for anything else, e.g. dropout); the model's
initialisation is drawn from ``train.seed``; the learning rate and the re-balancing state are pure
functions of the epoch. A checkpoint written at the end of epoch e therefore holds everything that
epoch e + 1 depends on (parameters, buffers, optimiser moments, loss parameters, best-so-far), and a
run killed at any moment and resumed from its last checkpoint reproduces the uninterrupted run
bit-for-bit on CPU (same thread count). The global RNG states are saved too.

No host sync per step: the epoch's loss sum, correct count and the first non-finite step are kept
as device tensors and read once at the end of the epoch. A NaN/inf loss stops the run at the end of
that epoch with the epoch and step named; no checkpoint is written for it, so the last good one is
kept.

Distributed (``torchrun``): DDP with SyncBatchNorm, ``optim.batch_size`` is the global batch split
evenly between ranks, the samplers shard each epoch's global draw by position, so that step s of
every rank together is exactly step s of a one-process run with the same global batch. DDP averages
the ranks' gradients; since each rank's loss is a weighted mean Σ w ℓ / Σ w over its own shard, the
loss of each rank is rescaled by (its weight sum × world size / the all-reduced weight sum), which
makes the averaged gradient that of the global weighted mean (exactly as one process computes it).
Evaluation shards the test set without padding and sums confusion-matrix counts over ranks.
Augmentation draws per rank, so a distributed run with augmentation is a different (equally valid)
random stream than the one-process run; without augmentation they agree to float tolerance.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from longtail.config import Config, save_config, validate
from longtail.engine import distributed, preemption
from longtail.engine.accel import (
    Accel,
    apply_allocator,
    autocast,
    maybe_compile,
    prepare_input,
    prepare_model,
    resolve_compile,
    resolve_device,
)
from longtail.engine.checkpoint import (
    Checkpointer,
    get_rng_state,
    latest_checkpoint,
    remove_temp_files,
    set_rng_state,
)
from longtail.engine.data import TrainData, build_data, write_data_stats
from longtail.engine.evaluate import evaluate, temperature_scaling
from longtail.engine.optim import build_optimizer, learning_rate, set_lr
from longtail.engine.run import Run
from longtail.errors import ConfigError, LongtailError
from longtail.tracking import MetricsLog, Progress, TensorBoardLog, write_json


class TrainingDiverged(LongtailError):
    """The loss became NaN or infinite."""


def derived_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed for one random stream that depends only on (seed, epoch, stream name)."""
    digest = hashlib.sha256(f"longtail-{stream}:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------


def fit(config: Config, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train ``config`` into ``out_dir`` (or continue the run there with ``resume=True``).

    Returns the content of ``results.json``: the LAST epoch's test metrics (``top1``, ``top5``,
    ``balanced_accuracy``, ``balanced_error``, ``per_class``, ``groups``), ``epochs``, ``seed``,
    ``class_counts``, ``fingerprint``, ``timing``, and ``best_on_test_top1`` only when
    ``train.report_best_on_test`` is set.
    """
    validate(config)  # a Config built in code is checked as a loaded one is, before any data is read
    check_engine_choices(config)
    run = Run(out_dir)
    accel = Accel(
        device=config.runtime.device,
        channels_last=config.runtime.channels_last,
        precision=config.runtime.precision,
    )
    dist = distributed.setup(accel.torch_device, config.runtime.dist_timeout)
    if dist.enabled and accel.torch_device.type == "cuda":
        accel.device = f"cuda:{dist.local_rank}"
    device = accel.torch_device
    if config.runtime.num_threads > 0:
        torch.set_num_threads(config.runtime.num_threads)
    apply_allocator(config.runtime.allocator, device)
    epochs = config.train.epochs
    seed = config.train.seed

    # --- 1. data --------------------------------------------------------------------------------
    # (a resumed run reuses the data statistics it stored: data.mean/std = auto)
    data = build_data(config, dist, device, run_dir=run.root if resume else None)
    class_counts = data.class_counts

    # --- 2. model (initialisation drawn from train.seed; or model.init_from on a fresh start) ----
    model = build_model(config, data)
    if config.model.init_from and not (resume and latest_checkpoint(run.checkpoints) is not None):
        from longtail.models.pretrained import load_init

        init_report = load_init(model, config.model.init_from, head=config.model.init_head)
    else:
        init_report = None
    if config.model.freeze != "none":
        from longtail.models.pretrained import freeze

        freeze(model, config.model.freeze)
    if dist.enabled:
        model = distributed.convert_batchnorm(model, device)
    prepare_model(model, accel)

    # --- 3. loss and re-balancing schedule ------------------------------------------------------
    loss_fn, schedule = build_loss(config, class_counts)
    loss_fn.to(device)

    # --- 4. optimiser (the lr is a pure function of epoch and step, see engine.optim) -----------
    optimizer = build_optimizer(config.optim, model)
    scaler = torch.amp.GradScaler(device.type) if accel.resolved_precision == "fp16" else None

    # --- 5. fresh start or resume (the checkpointer owns every stateful part and `progress`) -----
    checkpointer = Checkpointer(run.checkpoints, config.train.checkpoint_keep, config=config, model=model,
                                optimizer=optimizer, loss_fn=loss_fn, data=data)
    if resume:
        checkpointer.resume(warn=_warn)  # the newest readable checkpoint, epoch-end or mid-epoch
    done = checkpointer.progress  # epoch, best, seconds, last_report: updated below, saved with each checkpoint
    start_epoch, start_step = done.epoch, done.step
    mid_epoch = done.mid_epoch(dist.rank)  # this rank's streams and running sums when resumed mid-epoch
    skipped_before = list(done.bad_files)  # undecodable files skipped before the resumed checkpoint
    if dist.is_main:
        run.root.mkdir(parents=True, exist_ok=True)
        remove_temp_files(run.checkpoints)
        save_config(config, run.config_path)
        if getattr(data, "vocab", None) is not None:  # text sets: the table the ids refer to
            data.vocab.save(run.vocab)
        if "stats" in getattr(data, "geometry", {}):  # data.mean/std = auto: computed once, kept with the run
            write_data_stats(run.root, data.geometry["stats"])
        MetricsLog(run.metrics).truncate_after(start_epoch)
    distributed.barrier(dist)

    # runtime.compile=auto decides by the whole run's training steps (not the steps left), so that a
    # resumed run decides as the uninterrupted one did and resumes exactly
    first_loader = data.train_loader(sampler_choice(config, schedule.at_epoch(start_epoch)), start_epoch)
    planned_steps = epochs * len(first_loader)
    accel.compile, compile_reason = resolve_compile(config.runtime.compile, device, planned_steps)
    train_model = wrap_distributed(maybe_compile(model, accel), dist, device)
    tensorboard = TensorBoardLog(run.events) if dist.is_main else None
    metrics_log = MetricsLog(run.metrics)
    progress = Progress(config.runtime.progress, epochs, enabled=dist.is_main)
    if start_epoch > 0 or start_step > 0:
        at = f", step {start_step}" if start_step else ""
        progress.message(f"resuming {run.root} after epoch {start_epoch}/{epochs}{at}")
    geometry = getattr(data, "geometry", {})
    if geometry and data.info.kind == "stream":  # image-file sets: say how the images are fed
        where = "decoded once into memory" if geometry["in_memory"] else "streamed"
        progress.message(f"data: {geometry['image_size']}×{geometry['image_size']}×{geometry['channels']}, "
                         f"{geometry['train_transform']}, {where} ({geometry['in_memory_reason']})")
    if init_report is not None:
        progress.message(init_report.message(config.model.init_from))
    if accel.compile:
        progress.message(f"torch.compile on ({compile_reason}); the first steps of each batch shape compile")

    # the split evaluated during training: the test set, or with eval.test=false the held-out split
    # (never the test set, which is then not even loaded; None: no held-out split, no evaluation)
    eval_name = "test" if config.eval.test else "heldout"
    eval_split = data.test if config.eval.test else data.heldout

    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()

        # --- re-balancing state of this epoch (a pure function of the epoch) -------------------
        rebalance = schedule.at_epoch(epoch)
        loss_fn.set_class_weights(rebalance.class_weights)
        if rebalance.loss_params:
            loss_fn.set_params(**rebalance.loss_params)
        loader = data.train_loader(sampler_choice(config, rebalance), epoch)

        # --- every random stream of the epoch from (seed, epoch) -------------------------------
        torch.manual_seed(derived_seed(seed, epoch, "global"))
        data.reseed_augment(derived_seed(seed, epoch, "augment"))
        partial = None
        if mid_epoch is not None and epoch == start_epoch:  # resumed mid-epoch: the streams where they were
            data.load_state_dict({"sampler": {"name": loader.sampler_name, "params": sampler_choice(config, rebalance)[1],
                                              "epoch": epoch, "position": start_step},
                                  "augment": mid_epoch["augment"]})  # fmt: skip
            set_rng_state(mid_epoch["rng"])
            partial = mid_epoch["partial"]

        # --- train ------------------------------------------------------------------------------
        stats = train_one_epoch(
            train_model, loss_fn, optimizer, scaler, loader, accel, config, epoch, dist, progress,
            start_step=start_step if partial is not None else 0, partial=partial,
        )
        if config.data.on_bad_file == "skip":
            done.bad_files = skipped_before + gather_bad_files(data, dist)
        if stats["stopped_at"] is not None:  # preempted: a mid-epoch checkpoint, then a distinct exit
            done.step = stats["stopped_at"]
            done.ranks = distributed.all_gather_object(
                {"rng": get_rng_state(), "augment": data.state_dict()["augment"], "partial": stats["partial"]}, dist
            )
            done.seconds += time.perf_counter() - started
            written = checkpointer.save() if dist.is_main else None
            distributed.barrier(dist)
            raise _preempted(epoch, done.step, written, run.root)
        if stats["first_bad_step"] is not None:
            previous = latest_checkpoint(run.checkpoints)
            kept = f"last good checkpoint {previous} kept" if previous else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"the training loss became NaN or infinite at epoch {epoch + 1}, step "
                f"{stats['first_bad_step'] + 1}; stopped ({kept}) — lower optim.lr, check the data, or "
                "use runtime.precision=fp32"
            )

        # --- evaluate ---------------------------------------------------------------------------
        last_epoch = epoch + 1 == epochs
        every = config.eval.every
        report = None
        if eval_split is not None and (last_epoch or (every > 0 and (epoch + 1) % every == 0)):
            report = evaluate(model, eval_split, accel, dist, class_counts, config.eval)
            done.last_report = report
            if config.eval.test and (done.best["top1"] is None or report["top1"] > done.best["top1"]):
                done.best = {"top1": report["top1"], "epoch": epoch + 1}
        seconds = time.perf_counter() - started
        done.seconds += seconds
        done.epoch = epoch + 1

        # --- log --------------------------------------------------------------------------------
        record = {
            "epoch": epoch + 1,
            "lr": stats["lr"],
            "train_loss": stats["loss"],
            "train_acc": stats["accuracy"],
            "sampler": loader.sampler_name,
        }
        if report is not None:
            record.update(
                {
                    f"{eval_name}_top1": report["top1"],
                    f"{eval_name}_top5": report["top5"],
                    f"{eval_name}_balanced_accuracy": report["balanced_accuracy"],
                    **{f"{eval_name}_{g}": v["accuracy"] for g, v in report["groups"].items()},
                }
            )
        record["seconds"] = seconds
        if dist.is_main:
            metrics_log.append(record)
            assert tensorboard is not None
            tensorboard.log(record, epoch + 1)
        progress.end_epoch(record)

        # --- checkpoint and analysis snapshots --------------------------------------------------
        done.step, done.ranks = 0, None
        stop_now = not last_epoch and preemption.agreed(dist, device)  # a signal during evaluation
        if dist.is_main and (last_epoch or stop_now or (epoch + 1) % config.train.checkpoint_every == 0):
            checkpointer.save()
        track = config.analysis.track_every
        if dist.is_main and track > 0 and ((epoch + 1) % track == 0 or last_epoch):
            run.save_snapshot(model, epoch + 1, config, data)
        distributed.barrier(dist)
        if stop_now:
            raise _preempted(epoch + 1, 0, latest_checkpoint(run.checkpoints), run.root)

    if tensorboard is not None:
        tensorboard.close()

    # --- results: the last epoch's evaluation ---------------------------------------------------
    if not done.last_report and eval_split is not None:  # resumed a finished run whose checkpoint predates the report
        done.last_report = evaluate(model, eval_split, accel, dist, class_counts, config.eval)
    results = build_results(config, data, done.last_report, done.best, done.seconds, dist,
                            (accel.compile, compile_reason))
    # reports test calibration: never for a run with eval.test=false (a `longtail tune` candidate)
    results["temperature_scaling"] = (
        temperature_scaling(model, data, accel, dist, class_counts, config.eval) if config.eval.test else None
    )
    if config.data.on_bad_file == "skip":
        results["bad_files"] = {"skipped": len(done.bad_files), "files": sorted(set(done.bad_files))}
    if dist.is_main:
        write_json(run.results, results)
    distributed.barrier(dist)
    return results


def train_one_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    loader: Any,
    accel: Accel,
    config: Config,
    epoch: int,
    dist: distributed.DistInfo,
    progress: Progress,
    start_step: int = 0,
    partial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One pass over ``loader``; returns mean loss, accuracy, lr and the first non-finite step (or None).

    Loss sum, correct count and the first bad step stay on the device; one sync at the end. Resumed
    mid-epoch, the pass starts at ``start_step`` with the running sums ``partial``. When the run is
    preempted (:mod:`longtail.engine.preemption`) it stops after the current step and returns
    ``stopped_at`` (steps done in this epoch) and ``partial`` (the sums so far) instead.
    """
    device = accel.torch_device
    model.train()
    steps = len(loader)
    per_iteration = config.optim.step_every == "iteration"
    lr = learning_rate(config.optim, config.train.epochs, epoch, 0, steps)
    set_lr(optimizer, lr)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.full((), steps, dtype=torch.int64, device=device)
    seen = 0
    if partial is not None:
        loss_sum += partial["loss_sum"].to(device)
        correct += partial["correct"].to(device)
        first_bad.copy_(partial["first_bad"].to(device))
        seen = int(partial["seen"])
    progress.start_epoch(epoch, steps)
    for step, (x, y) in enumerate(loader, start=start_step):
        if per_iteration:
            set_lr(optimizer, learning_rate(config.optim, config.train.epochs, epoch, step, steps))
        x = prepare_input(x, accel)
        y = y.to(device, non_blocking=True)
        with autocast(accel):
            _, logits = model(x)
        loss = loss_fn(logits, y)
        if dist.enabled:
            scale, global_batch = distributed_loss_scale(loss_fn, y, dist)
            objective = loss * scale
            # Σ over ranks of objective / R is the global weighted mean of this step.
            batch_loss = objective.detach().double() / dist.world_size * global_batch
        else:
            objective = loss
            batch_loss = loss.detach().double() * y.shape[0]
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(objective).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            objective.backward()
            optimizer.step()
        loss_sum += batch_loss
        correct += (logits.detach().argmax(dim=1) == y).sum()
        first_bad = torch.where(
            torch.isfinite(batch_loss) | (first_bad < steps), first_bad, torch.full_like(first_bad, step)
        )
        seen += y.shape[0]
        progress.step()
        if step + 1 < steps and preemption.agreed(dist, device):
            sums = {"loss_sum": loss_sum.cpu(), "correct": correct.cpu(), "first_bad": first_bad.cpu(), "seen": seen}
            return {"stopped_at": step + 1, "partial": sums}
    # The one host sync of the epoch (and the cross-rank reduction).
    totals = torch.stack([loss_sum, correct.double(), torch.tensor(float(seen), dtype=torch.float64, device=device)])
    distributed.all_reduce_sum(totals, dist)
    distributed.all_reduce_min(first_bad, dist)
    loss_total, correct_total, count = totals.tolist()
    bad = int(first_bad)
    if per_iteration:
        lr = learning_rate(config.optim, config.train.epochs, epoch, steps - 1, steps)
    return {
        "loss": loss_total / count if count else float("nan"),
        "accuracy": correct_total / count if count else float("nan"),
        "lr": lr,
        "first_bad_step": None if bad >= steps else bad,
        "stopped_at": None,
    }


def _warn(message: str) -> None:
    import sys

    print(f"longtail: warning: {message}", file=sys.stderr, flush=True)


def _preempted(epoch: int, step: int, written: Path | None, root: Path) -> preemption.Preempted:
    where = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
    saved = f"checkpoint {written} written" if written is not None else "rank 0 wrote the checkpoint"
    return preemption.Preempted(
        f"preempted by {preemption.signal_name(preemption.requested())} after {where}; {saved} — continue "
        f"with `longtail train --resume {root}`"
    )


def gather_bad_files(data: TrainData, dist: distributed.DistInfo) -> list[str]:
    """The training files every rank skipped as undecodable so far (``data.on_bad_file=skip``)."""
    mine = data.bad_files() if hasattr(data, "bad_files") else []
    return [path for rank_files in distributed.all_gather_object(mine, dist) for path in rank_files]


def distributed_loss_scale(
    loss_fn: nn.Module, targets: torch.Tensor, dist: distributed.DistInfo
) -> tuple[torch.Tensor, torch.Tensor]:
    """Factor turning this rank's weighted-mean loss into its share of the global weighted mean,
    and the global batch size.

    Rank r's loss is L_r = Σ_{i∈r} w_i ℓ_i / W_r. DDP averages gradients over R ranks, so scaling
    L_r by W_r · R / Σ_r W_r makes the average Σ_all w_i ℓ_i / Σ_all w_i, the loss one process
    computes on the whole global batch. (One all-reduce of two scalars per step; no host sync.)
    """
    weights = effective_class_weights(loss_fn)
    count = torch.tensor(float(targets.numel()), device=targets.device)
    local = count if weights is None else weights.to(targets.device)[targets].sum().float()
    totals = torch.stack([local.detach(), count])
    distributed.all_reduce_sum(totals, dist)
    return (local * dist.world_size / totals[0]).detach(), totals[1]


def effective_class_weights(loss_fn: nn.Module) -> torch.Tensor | None:
    """The per-class weights w with which ``loss_fn`` takes its weighted mean (None = uniform)."""
    if getattr(loss_fn, "variant", None) == "reference-code":
        return None  # the reference-code focal loss takes a plain mean of weighted terms
    weights = getattr(loss_fn, "class_weights", None)
    own = getattr(loss_fn, "own_weights", None)
    if own is not None:
        weights = own if weights is None else weights * own
    return weights


# ---------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------


def build_model(config: Config, data: TrainData) -> nn.Module:
    """The model, initialised from ``train.seed`` (unless ``model.params.seed`` is given)."""
    from longtail.models import create_model

    params = dict(config.model.params)
    if data.channels:
        params.setdefault("in_channels", data.channels)
    if getattr(data, "vocab_size", None):
        params.setdefault("vocab_size", data.vocab_size)
    params.setdefault("seed", config.train.seed)
    # Anything drawn from the global generator during construction is seeded too.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(config.train.seed, 0, "model"))
        return create_model(config.model.name, num_classes=data.num_classes, head=config.model.head, **params)


def check_engine_choices(config: Config) -> None:
    """What :func:`longtail.config.validate` cannot see, checked before any data is read: the device
    exists; a loss on cosine logits (``requires_normed_head``) has ``model.head=normed-linear``; the
    samplers the schedule picks at the first and the last epoch (:func:`sampler_choice`: the schedule's
    ``sampler_params`` merged with ``sampler.params``) and the loss parameters it sets
    (``ClassCountLoss.check_settable``) are accepted. Names and parameters themselves are ``validate``'s."""
    from longtail.registry import LOSSES, SAMPLERS, SCHEDULES

    resolve_device(config.runtime.device)
    loss_cls = LOSSES.get(config.loss.name)
    if getattr(loss_cls, "requires_normed_head", False) and config.model.head != "normed-linear":
        raise ConfigError(f"loss {config.loss.name!r} works on cosine logits; set model.head=normed-linear")
    # placeholder counts: only what the schedule picks is looked at, not its class weights
    schedule = SCHEDULES.create(config.rebalance.name, class_counts=[2, 1], **config.rebalance.params)
    for epoch in sorted({0, config.train.epochs - 1}):
        state = schedule.at_epoch(epoch)
        SAMPLERS.check(*sampler_choice(config, state))
        if state.loss_params:
            loss_cls.check_settable(state.loss_params)


def build_loss(config: Config, class_counts: list[int]) -> tuple[nn.Module, Any]:
    """The loss from the class counts and the re-balancing schedule (their pairing with the model's
    head and with each other is checked before the data, :func:`check_engine_choices`)."""
    from longtail.losses import create_loss
    from longtail.registry import SCHEDULES

    loss_fn = create_loss(config.loss.name, class_counts, **config.loss.params)
    schedule = SCHEDULES.create(config.rebalance.name, class_counts=class_counts, **config.rebalance.params)
    return loss_fn, schedule


def sampler_choice(config: Config, rebalance: Any) -> tuple[str, dict[str, Any]]:
    """The epoch's sampler: the schedule's, or ``sampler.name`` where the schedule says ``instance``."""
    name = rebalance.sampler
    if name == "instance" and config.sampler.name is not None:
        name = config.sampler.name
    params = dict(config.sampler.params) if config.sampler.name in (None, name) else {}
    params.update(rebalance.sampler_params or {})
    if name == "progressive":
        params.setdefault("total_epochs", config.train.epochs)
    return name, params


def wrap_distributed(model: nn.Module, dist: distributed.DistInfo, device: torch.device) -> nn.Module:
    """DDP (the module itself when running one process); batch norm is made global by
    :func:`distributed.convert_batchnorm` before the optimiser is built."""
    if not dist.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def build_results(
    config: Config,
    data: TrainData,
    report: dict[str, Any] | None,
    best: dict[str, Any],
    elapsed: float,
    dist: distributed.DistInfo,
    compiled: tuple[bool, str] = (False, "runtime.compile=false"),
) -> dict[str, Any]:
    """``results.json``: the last epoch's report plus what identifies the run.

    With ``eval.test=false`` the report is the held-out split's, under ``"heldout"`` (None without a
    held-out split), and no test metric appears."""
    metrics = ("top1", "top5", "balanced_accuracy", "balanced_error", "per_class", "groups")
    results: dict[str, Any] = {}
    if config.eval.test:
        assert report is not None
        results.update({key: report[key] for key in metrics}, num_test=report["num_test"],
                       calibration=report.get("calibration"))  # None: a checkpoint written before calibration existed
    else:
        results["heldout"] = (
            {**{key: report[key] for key in metrics}, "num_examples": report["num_test"],
             "calibration": report.get("calibration")} if report else None
        )
    results.update({
        "epochs": config.train.epochs,
        "seed": config.train.seed,
        "data_seed": config.data.seed,
        "class_counts": list(data.class_counts),
        "classes": list(data.classes),
        "fingerprint": data.fingerprint,
        "method": {
            "model": config.model.name,
            "head": config.model.head,
            "loss": config.loss.name,
            "rebalance": config.rebalance.name,
        },
        "reported": "last_epoch",
    })
    if config.train.report_best_on_test:
        results["best_on_test_top1"] = best["top1"]
        results["best_on_test_epoch"] = best["epoch"]
    results["timing"] = {
        "train_seconds": elapsed,
        "seconds_per_epoch": elapsed / config.train.epochs if config.train.epochs else None,
        "world_size": dist.world_size,
        "precision": Accel(device=config.runtime.device, precision=config.runtime.precision).resolved_precision,
        "compile": compiled[0],  # auto decides by the whole run's steps: the same on resume
        "compile_reason": compiled[1],
    }
    return results


def prepare_run_dir(out_dir: str | Path, resume: bool, overwrite: bool) -> Path:
    """Refuse a non-empty ``out_dir`` unless resuming or overwriting; create it."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LongtailError(f"--out {out} exists and is not a directory; choose another path")
    non_empty = out.is_dir() and any(out.iterdir())
    if non_empty and not resume:
        if not overwrite:
            raise LongtailError(
                f"--out {out} already exists and is not empty; pass --overwrite to replace it or "
                f"`longtail train --resume {out}` to continue it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
