"""Training-speed benchmark: longtail's default pipeline against the straightforward one, interleaved.

What is compared (same ResNet-32 with the normed-linear head, LDAM loss, SGD lr 0.1 momentum 0.9
weight decay 2e-4, batch 128, on synthetic long-tailed data of CIFAR-10 ρ=100 shape — 12,406 images
3×32×32 — and of Fashion-MNIST ρ=100 shape — 14,886 images 1×28×28):

- (a) ``reference``: the pipeline of the public LDAM-DRW code (:mod:`longtail.bench.reference`):
  a Dataset returning PIL images, per-image RandomCrop/flip/ToTensor/Normalize, a shuffled
  ``DataLoader`` (``--workers``, 0 by default), float32, contiguous NCHW, ``loss.item()`` and
  top-1/top-5 accuracy every step as the reference loop does;
- (b) ``longtail``: what ``longtail train`` runs — uint8 tensor data augmented a whole batch at a
  time (``BatchAugment`` + ``TensorLoader``), the ``instance`` sampler, the engine's optimiser, the
  :class:`~longtail.engine.accel.Accel` settings (channels_last, autocast precision, torch.compile,
  data on the device), the process's allocator (``runtime.allocator``) and the trainer's own
  ``train_one_epoch`` (no host sync per step) and ``evaluate`` (all metrics, uncompiled model) — on
  synthetic data. Its defaults are the trainer's ``runtime`` defaults, ``runtime.compile=auto``
  resolved for the 200-epoch CIFAR-10-LT recipe (:data:`RECIPE_STEPS`); ``--precision bf16``,
  ``--no-compile``, ``--allocator system`` etc. switch them.

Method: every pipeline runs in its own spawned process (so its peak resident memory is its own) and
holds its data, model and optimiser for the whole run. The parent sends "train ``steps`` steps" to
each in turn — a, b, a, b, … for ``windows`` rounds — so that load from other processes on a shared
machine hits all pipelines alike; training images/s is the median over the windows. Each window
times the whole loop (fetching and augmenting the batch, forward, backward, optimiser step).
Evaluation images/s is measured the same way at several batch sizes (one untimed warm-up batch
per size; (a) as the reference ``validate()``, (b) with the engine's ``evaluate``), and the fastest
size is reported. Peak memory is the process's
``ru_maxrss`` at the end, and its growth since the process had imported torch and longtail (before
any data was made): the Δ column. On CUDA the peak of the torch allocator is reported too.

The ablation (``--ablation``) adds one process per step of a ladder from the tensor pipeline in fp32
and contiguous memory up to (b) — then every further optimisation on top — interleaved with (a) and
(b), so the effect of each switch is measured in the same run. ``--profile`` runs torch.profiler
on (b) and prints the operators that take the time and the time per phase (data, forward, backward,
optimiser step).

Threads: torch's default (all cores) unless ``--threads``. On a CPU shared with other busy
processes, one thread per process gives steadier figures (two OpenMP threads wait on each other
when either is descheduled).

The last line printed is ``ratio: X.XX`` — (b) ÷ (a) training images/s of the first shape —, the one
before it ``limit: a X%, b Y%``: each pipeline's training rate as a fraction of the FLOP-bound limit
(SPEC §10: images/s × GFLOP per training image ÷ the 2048² matrix-product GFLOP/s measured here in
the pipeline's precision, with the pipelines' thread count, before their processes start and again between
the windows, the highest kept).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from longtail.bench.harness import RECIPE_STEPS, SHAPES, ShapeResult, SpeedOptions, pipelines_for, run_shape
from longtail.bench.report import format_shape, machine, percent, write_json


def options_from_args(args: Any) -> SpeedOptions:
    """The checked :class:`SpeedOptions` of ``longtail bench speed``'s parsed arguments; what the command
    leaves open (precision, compile) is resolved as ``longtail train`` resolves its runtime defaults."""
    from longtail.config import RuntimeConfig
    from longtail.engine.accel import Accel, resolve_compile, resolve_device
    from longtail.errors import ConfigError

    names = {f.name for f in dataclasses.fields(SpeedOptions)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if values.get("precision") is None:  # runtime.precision "auto" resolved for this machine
        values["precision"] = Accel(device="cpu", precision=RuntimeConfig().precision).resolved_precision
    if values.get("compile") is None:  # what `longtail train` decides for the paper's recipe here
        device = resolve_device(values.get("device", "auto"))
        values["compile"], values["compile_reason"] = resolve_compile(RuntimeConfig().compile, device, RECIPE_STEPS)
    else:
        values["compile_reason"] = "--compile" if values["compile"] else "--no-compile"
    options = SpeedOptions(**values)
    for name in ("batch_size", "steps", "windows", "eval_images", "eval_windows"):
        if getattr(options, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(options, name)}")
    if options.warmup < 1:
        raise ConfigError(f"--warmup must be at least 1 (kernel set-up is not timed), got {options.warmup}")
    if options.n_max < 0 or (0 < options.n_max < 100):
        raise ConfigError(f"--n-max must be 0 (real size) or at least 100 (ρ=100), got {options.n_max}")
    if options.workers < 0 or options.threads < 0:
        raise ConfigError("--workers and --threads must be >= 0")
    return options


def _say(line: str) -> None:
    print(line, flush=True)


def run_speed(options: SpeedOptions, say: Callable[[str], None] = _say) -> list[ShapeResult]:
    """Run the benchmark on every shape in ``options.shapes``; prints as it goes, ends with
    ``ratio: X.XX`` (b ÷ a training images/s of the first shape)."""
    from longtail.engine.accel import resolve_device

    device = resolve_device(options.device)
    say(f"longtail bench speed — device {device}; {machine()}")
    b = pipelines_for(options)[1]
    reason = f" ({options.compile_reason})" if options.compile_reason else ""
    say(f"(b) = {b.describe()}; torch.compile {'on' if b.compile else 'off'}{reason}")
    results = []
    for name in options.shapes:
        shape = SHAPES[name]
        say(f"measuring {name} ...")
        result = run_shape(options, shape, say)
        for line in format_shape(result, options):
            say(line)
        results.append(result)
    if options.json_path:
        write_json(options, results, options.json_path)
        say(f"results written to {options.json_path}")
    first = results[0]
    say(f"limit: a {percent(first.limit_fraction(first.results[0]))}, b {percent(first.limit_fraction(first.results[1]))} "
        f"of the FLOP-bound limit ({first.shape.name})")
    say(f"ratio: {first.ratio:.2f}")
    return results
