"""Packed training: K independent runs of the same network trained in one process as one batched model.

Seeds of one config, the grid points of a search and the rows of a benchmark are independent trainings
of the same small network. :func:`fit_packed` trains K of them at once: each run keeps its own model
(parameters and batch-norm statistics), optimiser and its state, loss and re-balancing schedule,
sampler and augmentation streams — built by the trainer's own building blocks
(:func:`~longtail.engine.trainer.build_model`, :func:`~longtail.engine.trainer.build_loss`,
:func:`~longtail.engine.optim.build_optimizer`, :class:`~longtail.engine.data.TrainData`) from its
own config — and only the forward and backward passes are batched: at every step the K runs'
parameters are stacked (``torch.stack``, differentiable, so each run's gradient lands in its own
leaf tensors) and the network runs once under ``torch.func.vmap`` on the K batches
``[K, B, C, H, W]``; convolutions become one grouped convolution, batch norm one normalisation over
K × C channels (each run's statistics stay its own). The objective is Σ_k L_k: the runs share no
parameter, so ∂(Σ_k L_k)/∂θ_k = ∂L_k/∂θ_k, the gradient run k gets alone. Then each run's optimiser
steps its own parameters with its own learning rate (a pure function of its own config).

So a packed run's directory is what the run writes alone: the same ``config.yaml``, ``metrics.jsonl``
(with the pack's wall time per epoch), checkpoints with the same keys (a packed run can be resumed
packed or alone) and ``results.json`` whose metrics equal the solo run's within float tolerance (the
grouped kernels round differently from the single ones; tested: parameters within 1e-4 relative
after 20 fp32 steps). Resume is exact: every random stream is still derived from (run seed, epoch).

What can be packed (:func:`pack_incompatibility`): runs of the same model (name, head and parameters
apart from the seed), batch size, number of epochs and ``drop_last`` and runtime settings, on data
with as many training batches per epoch; the network must not draw random numbers in its forward
pass (dropout: under ``vmap`` the draws could not be each run's own stream) and the precision must not
be fp16 (its loss scaler is per run); not under ``torchrun``. Runs may differ in everything else: seed,
loss, re-balancing, sampler, optimiser and its hyper-parameters, data profile and seed.

Throughput: K runs share every kernel launch, so the gain is largest where one run leaves the
device under-used (a GPU with ResNet-32 at batch 128) and smallest on a CPU whose cores one run
already keeps busy (README "Speed", ``benchmarks/packing.py``). ``runtime.compile`` is not applied
to a pack (``timing.compile_reason`` says so).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from longtail.config import Config, save_config, validate
from longtail.engine import distributed
from longtail.engine.accel import Accel, apply_allocator, autocast, prepare_input, prepare_model
from longtail.engine.checkpoint import (
    Checkpointer,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_temp_files,
)
from longtail.engine.data import TrainData, build_data
from longtail.engine.evaluate import evaluate
from longtail.engine.optim import build_optimizer, learning_rate, set_lr
from longtail.engine.run import Run
from longtail.engine.trainer import (
    TrainingDiverged,
    build_loss,
    build_model,
    build_results,
    check_engine_choices,
    derived_seed,
    sampler_choice,
)
from longtail.errors import ConfigError, LongtailError
from longtail.tracking import MetricsLog, Progress, write_json

# Modules whose forward draws random numbers (or that vmap cannot batch): not packable.
_UNPACKABLE = (nn.modules.dropout._DropoutNd, nn.RNNBase)


def pack_incompatibility(configs: list[Config]) -> str | None:
    """Why ``configs`` cannot be trained as one pack, in one line; None when they can."""
    if not configs:
        return "no runs to pack"
    first = configs[0]
    model_params = {k: v for k, v in first.model.params.items() if k != "seed"}
    for index, config in enumerate(configs[1:], start=1):
        if (config.model.name, config.model.head) != (first.model.name, first.model.head):
            return f"run {index} trains model {config.model.name}/{config.model.head}, run 0 {first.model.name}/{first.model.head}"
        if {k: v for k, v in config.model.params.items() if k != "seed"} != model_params:
            return f"run {index} has model.params {dict(config.model.params)}, run 0 {dict(first.model.params)}"
        for key in ("optim.batch_size", "train.epochs", "train.drop_last", "data.name"):
            section, name = key.split(".")
            mine, theirs = getattr(getattr(config, section), name), getattr(getattr(first, section), name)
            if mine != theirs:
                return f"run {index} has {key}={mine}, run 0 {theirs}"
        if _runtime(config) != _runtime(first):
            return f"run {index} has other runtime settings than run 0 ({_runtime(config)} vs {_runtime(first)})"
    for index, config in enumerate(configs):
        if config.model.init_from or config.model.freeze != "none":
            return f"run {index} starts from model.init_from / model.freeze, which fit_packed does not apply"
    accel = Accel(device=first.runtime.device, precision=first.runtime.precision)
    if accel.resolved_precision == "fp16":
        return "runtime.precision=fp16 needs a loss scaler per run; use bf16 or fp32"
    if first.model.name == "bilstm":  # (checked on the built modules too, see PackedModel)
        return "model bilstm draws dropout masks in its forward pass"
    return None


def _runtime(config: Config) -> tuple[Any, ...]:
    r = config.runtime
    return (r.device, r.precision, r.channels_last, r.num_threads)


@dataclass
class PackedRun:
    """One run of a pack: its config, directory, data, model, loss, optimiser and checkpointer (whose
    ``progress`` holds the epochs done, best, seconds and last report, as in ``fit``)."""

    config: Config
    run: Run | None
    data: TrainData
    model: nn.Module
    loss_fn: nn.Module
    schedule: Any
    optimizer: torch.optim.Optimizer
    checkpointer: Checkpointer | None = None


class PackedModel:
    """K models of one architecture evaluated as one: ``__call__(x [K, B, ...]) -> (features, logits)``
    with a leading K dimension, through ``torch.func.vmap`` over the stacked parameters and buffers.

    The parameters stay the K models' own leaf tensors (stacked afresh at each call, so gradients
    flow back to them); the buffers (batch-norm running statistics) are stacked by
    :meth:`load_buffers`, updated in place by the batched forward, and written back to the models by
    :meth:`store_buffers`.
    """

    def __init__(self, models: list[nn.Module]) -> None:
        for model in models:
            bad = next((m for m in model.modules() if isinstance(m, _UNPACKABLE)), None)
            if bad is not None:
                raise ConfigError(
                    f"{type(bad).__name__} draws random numbers in the forward pass; such a model cannot be "
                    "packed — train its runs one at a time (--pack 1)"
                )
        self.models = models
        self.template = copy.deepcopy(models[0]).to("meta")
        self.param_names = [name for name, _ in models[0].named_parameters()]
        self.buffer_names = [name for name, _ in models[0].named_buffers()]
        self.buffers: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> None:
        self.template.train(mode)
        for model in self.models:
            model.train(mode)

    def load_buffers(self) -> None:
        owned = [dict(m.named_buffers()) for m in self.models]
        self.buffers = {name: torch.stack([b[name] for b in owned]) for name in self.buffer_names}

    @torch.no_grad()
    def store_buffers(self) -> None:
        for index, model in enumerate(self.models):
            owned = dict(model.named_buffers())
            for name in self.buffer_names:
                owned[name].copy_(self.buffers[name][index])

    def _one(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
        return torch.func.functional_call(self.template, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        owned = [dict(m.named_parameters()) for m in self.models]
        params = {name: torch.stack([p[name] for p in owned]) for name in self.param_names}
        return torch.func.vmap(self._one, randomness="error")(params, self.buffers, x)


def fit_packed(
    configs: list[Config],
    out_dirs: list[str | Path],
    resume: bool = False,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """Train the K runs ``configs`` into ``out_dirs`` as one pack (or continue them, ``resume=True``).

    Returns each run's ``results.json`` content, in order (an empty list when ``stop_after`` — a
    number of epochs — ends the call before the last epoch: checkpoints are written there). Resumed
    runs whose last checkpoints are at different epochs (killed between two runs' checkpoints) go on
    from the latest epoch all of them have a checkpoint for, which replays the pack exactly; when one
    has none there, the runs behind are first trained, as their own pack, up to the one ahead.
    """
    if len(configs) != len(out_dirs):
        raise ValueError(f"{len(configs)} configs for {len(out_dirs)} run directories")
    for config in configs:  # checked as `fit` checks a config built in code, before any data is read
        validate(config)
        check_engine_choices(config)
    reason = pack_incompatibility(configs)
    if reason is not None:
        raise ConfigError(f"these runs cannot be trained as one pack: {reason}; train them one at a time")
    resume_at: list[Path | None] = [None] * len(configs)
    if resume:
        saved = [dict(list_checkpoints(Run(d).checkpoints)) for d in out_dirs]
        low = min(max(s, default=0) for s in saved)
        if low > 0 and all(low in s for s in saved):
            # the runs ahead go back to the epoch all have: the same pack then replays exactly
            resume_at = [s[low] for s in saved]
        else:
            # a run without that checkpoint: the ones behind catch up as a pack of their own (equal to
            # the uninterrupted runs within float tolerance, not bit for bit: another pack size)
            ahead = max(max(s, default=0) for s in saved)
            behind = [i for i, s in enumerate(saved) if max(s, default=0) < ahead]
            if behind:
                fit_packed([configs[i] for i in behind], [out_dirs[i] for i in behind], True, stop_after=ahead)
            resume_at = [latest_checkpoint(Run(d).checkpoints) for d in out_dirs]

    first = configs[0]
    # channels_last is not applied: vmap moves the run dimension into the channels of each grouped
    # kernel, so the layout would not reach the kernels, and its as_strided fallbacks cost accuracy
    accel = Accel(device=first.runtime.device, channels_last=False, precision=first.runtime.precision)
    dist = distributed.setup(accel.torch_device)
    if dist.enabled:
        raise ConfigError("packed training runs in one process; do not start it under torchrun (use --pack 1)")
    device = accel.torch_device
    if first.runtime.num_threads > 0:
        torch.set_num_threads(first.runtime.num_threads)
    apply_allocator(first.runtime.allocator, device)
    epochs = first.train.epochs
    end = epochs if stop_after is None else min(stop_after, epochs)

    # --- 1. each run's data, model, loss, schedule and optimiser (the trainer's building blocks) --
    runs: list[PackedRun] = []
    for config, out_dir in zip(configs, out_dirs):
        data = build_data(config, dist, device)
        model = build_model(config, data)
        prepare_model(model, accel)
        loss_fn, schedule = build_loss(config, data.class_counts)
        loss_fn.to(device)
        optimizer = build_optimizer(config.optim, model)
        run_dir = Run(out_dir)
        checkpointer = Checkpointer(run_dir.checkpoints, config.train.checkpoint_keep, config=config, model=model,
                                    optimizer=optimizer, loss_fn=loss_fn, data=data)
        runs.append(PackedRun(config, run_dir, data, model, loss_fn, schedule, optimizer, checkpointer))
    packed = PackedModel([run.model for run in runs])

    # --- 2. fresh start or resume, each run from its own checkpoint --------------------------------
    for run, ckpt in zip(runs, resume_at):
        assert run.run is not None and run.checkpointer is not None
        if ckpt is not None:
            run.checkpointer.load_state_dict(load_checkpoint(ckpt), source=f"checkpoint {ckpt}")
        run.run.root.mkdir(parents=True, exist_ok=True)
        remove_temp_files(run.run.checkpoints)
        save_config(run.config, run.run.config_path)
        MetricsLog(run.run.metrics).truncate_after(run.checkpointer.progress.epoch)
    done = [run.checkpointer.progress for run in runs]  # type: ignore[union-attr]
    start = done[0].epoch
    if any(d.epoch != start for d in done):  # pragma: no cover - levelled above
        raise LongtailError("the runs of a pack resumed at different epochs; resume them with --pack 1")

    K = len(runs)
    compiled = (False, f"packed: {K} runs trained as one model, not compiled")
    progress = Progress(first.runtime.progress, epochs)
    if start > 0:
        progress.message(f"resuming {K} packed runs after epoch {start}/{epochs}")

    for epoch in range(start, end):
        started = time.perf_counter()
        loaders = []
        for run in runs:
            # --- each run's re-balancing state and random streams, from (its seed, epoch) -------
            rebalance = run.schedule.at_epoch(epoch)
            run.loss_fn.set_class_weights(rebalance.class_weights)
            if rebalance.loss_params:
                run.loss_fn.set_params(**rebalance.loss_params)
            loaders.append(run.data.train_loader(sampler_choice(run.config, rebalance), epoch))
            run.data.reseed_augment(derived_seed(run.config.train.seed, epoch, "augment"))
        lengths = sorted({len(loader) for loader in loaders})
        if len(lengths) > 1:
            raise ConfigError(
                f"epoch {epoch + 1}: the packed runs have {lengths} training batches per epoch; pack runs whose "
                "data and samplers give as many batches (or train them one at a time)"
            )

        # nothing in a packable model draws from the global generator (vmap refuses it); seeded anyway
        torch.manual_seed(derived_seed(first.train.seed, epoch, "global"))
        stats = train_packed_epoch(packed, runs, loaders, accel, epoch, progress)
        train_seconds = time.perf_counter() - started
        last_epoch = epoch + 1 == epochs
        for index, run in enumerate(runs):
            bad = stats["first_bad_step"][index]
            if bad is not None:
                previous = latest_checkpoint(run.run.checkpoints)  # type: ignore[union-attr]
                kept = f"last good checkpoint {previous} kept" if previous else "no checkpoint was written yet"
                raise TrainingDiverged(
                    f"{run.run.root}: the training loss became NaN or infinite at epoch {epoch + 1}, step "
                    f"{bad + 1}; stopped ({kept}) — lower optim.lr, check the data, or use runtime.precision=fp32"
                )
        for index, run in enumerate(runs):
            assert run.run is not None and run.checkpointer is not None
            progress_k = run.checkpointer.progress
            eval_started = time.perf_counter()
            every = run.config.eval.every
            report = None
            if last_epoch or (every > 0 and (epoch + 1) % every == 0):
                report = evaluate(run.model, run.data.test, accel, dist, run.data.class_counts, run.config.eval)
                progress_k.last_report = report
                if progress_k.best["top1"] is None or report["top1"] > progress_k.best["top1"]:
                    progress_k.best = {"top1": report["top1"], "epoch": epoch + 1}
            seconds = train_seconds + time.perf_counter() - eval_started
            progress_k.seconds += seconds
            progress_k.epoch = epoch + 1
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "lr": stats["lr"][index],
                "train_loss": stats["loss"][index],
                "train_acc": stats["accuracy"][index],
                "sampler": loaders[index].sampler_name,
            }
            if report is not None:
                record.update(
                    test_top1=report["top1"],
                    test_top5=report["top5"],
                    test_balanced_accuracy=report["balanced_accuracy"],
                    **{f"test_{g}": v["accuracy"] for g, v in report["groups"].items()},
                )
            record["seconds"] = seconds
            MetricsLog(run.run.metrics).append(record)
            if index == 0 or progress.mode == "line":
                progress.end_epoch(record)
            if last_epoch or epoch + 1 == end or (epoch + 1) % run.config.train.checkpoint_every == 0:
                # the global RNG state its solo run would save (seeded at the epoch start, not drawn from)
                torch.manual_seed(derived_seed(run.config.train.seed, epoch, "global"))
                run.checkpointer.save()
            track = run.config.analysis.track_every
            if track > 0 and ((epoch + 1) % track == 0 or last_epoch):
                run.run.save_snapshot(run.model, epoch + 1, run.config, run.data)

    if end < epochs:
        return []
    results = []
    for run, progress_k in zip(runs, done):
        assert run.run is not None
        if progress_k.last_report is None:  # resumed a finished run whose checkpoint predates the report
            progress_k.last_report = evaluate(run.model, run.data.test, accel, dist, run.data.class_counts,
                                              run.config.eval)
        result = build_results(run.config, run.data, progress_k.last_report, progress_k.best, progress_k.seconds,
                               dist, compiled)
        result["timing"]["packed"] = K
        write_json(run.run.results, result)
        results.append(result)
    return results


def train_packed_epoch(
    packed: PackedModel,
    runs: list[PackedRun],
    loaders: list[Any],
    accel: Accel,
    epoch: int,
    progress: Progress,
) -> dict[str, list[Any]]:
    """One pass of the K runs over their loaders, step by step together; per run the mean loss,
    accuracy, last lr and first non-finite step (or None). One host sync at the end."""
    device = accel.torch_device
    K = len(runs)
    steps = len(loaders[0])
    packed.train()
    packed.load_buffers()
    epochs = [run.config.train.epochs for run in runs]
    per_iteration = [run.config.optim.step_every == "iteration" for run in runs]
    for run, e in zip(runs, epochs):
        set_lr(run.optimizer, learning_rate(run.config.optim, e, epoch, 0, steps))
    loss_sum = torch.zeros(K, dtype=torch.float64, device=device)
    correct = torch.zeros(K, dtype=torch.int64, device=device)
    first_bad = torch.full((K,), steps, dtype=torch.int64, device=device)
    seen = 0
    progress.start_epoch(epoch, steps)
    for step, batches in enumerate(zip(*loaders)):
        for run, e, iteration in zip(runs, epochs, per_iteration):
            if iteration:
                set_lr(run.optimizer, learning_rate(run.config.optim, e, epoch, step, steps))
        x = torch.stack([prepare_input(b[0], accel) for b in batches])
        y = torch.stack([b[1].to(device, non_blocking=True) for b in batches])
        with autocast(accel):
            _, logits = packed(x)
        losses = torch.stack([run.loss_fn(logits[k], y[k]) for k, run in enumerate(runs)])
        for run in runs:
            run.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # Σ_k L_k: run k's parameters get ∂L_k/∂θ_k only
        for run in runs:
            run.optimizer.step()
        batch_loss = losses.detach().double() * y.shape[1]
        loss_sum += batch_loss
        correct += (logits.detach().argmax(dim=2) == y).sum(dim=1)
        first_bad = torch.where(torch.isfinite(batch_loss) | (first_bad < steps), first_bad, torch.full_like(first_bad, step))
        seen += y.shape[1]
        progress.step()
    packed.store_buffers()
    loss_total, correct_total, bad = loss_sum.tolist(), correct.tolist(), first_bad.tolist()
    lrs = [
        learning_rate(run.config.optim, e, epoch, steps - 1, steps) if iteration else run.optimizer.param_groups[0]["lr"]
        for run, e, iteration in zip(runs, epochs, per_iteration)
    ]
    return {
        "loss": [s / seen if seen else math.nan for s in loss_total],
        "accuracy": [c / seen if seen else math.nan for c in correct_total],
        "lr": lrs,
        "first_bad_step": [None if b >= steps else b for b in bad],
    }
