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

The last line printed is ``ratio: X.XX`` — (b) ÷ (a) training images/s of the first shape.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

PRECISION_CHOICES = ("fp32", "bf16", "fp16")
# Training steps of the CIFAR-10-LT recipe (200 epochs of 12,406 images in batches of 128), for which
# the benchmark resolves runtime.compile=auto: (b) is what `longtail train` runs for the paper's table.
RECIPE_STEPS = 200 * 97


@dataclass(frozen=True)
class Shape:
    """A synthetic long-tailed training set shaped like a real one (exponential profile)."""

    name: str
    num_classes: int
    channels: int
    image_size: int
    n_max: int
    imbalance_ratio: float
    mean: tuple[float, ...]
    std: tuple[float, ...]


SHAPES: dict[str, Shape] = {
    "cifar10": Shape(
        "cifar10", 10, 3, 32, 5000, 100.0, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    ),
    "fmnist": Shape("fmnist", 10, 1, 28, 6000, 100.0, (0.2860,), (0.3530,)),
}


@dataclass(frozen=True)
class Pipeline:
    """One pipeline to measure: ``kind`` "reference" (a) or "longtail" (b and the ablation)."""

    label: str
    kind: str
    channels_last: bool = False
    precision: str = "fp32"
    compile: bool = False
    data_on_device: bool = True
    workers: int = 0
    allocator: str = "system"  # runtime.allocator of the process: "tuned" or "system" (glibc defaults)

    def settings_key(self) -> tuple[Any, ...]:
        return (self.kind, self.channels_last, self.precision, self.compile, self.data_on_device, self.workers,
                self.allocator)

    def describe(self) -> str:
        if self.kind == "reference":
            tuned = ", tuned malloc" if self.allocator == "tuned" else ""
            return f"PIL + per-image transforms + DataLoader({self.workers} workers), fp32, NCHW{tuned}"
        parts = ["uint8 tensor + batch augment", "channels_last" if self.channels_last else "NCHW", self.precision]
        if self.allocator == "tuned":
            parts.append("tuned malloc")
        if self.compile:
            parts.append("compile")
        if not self.data_on_device:
            parts.append("data on host")
        return ", ".join(parts)


@dataclass
class SpeedOptions:
    """Settings of one benchmark run (the command-line options)."""

    shapes: tuple[str, ...] = ("cifar10", "fmnist")
    batch_size: int = 128
    steps: int = 30
    windows: int = 3
    warmup: int = 5
    eval_batch_sizes: tuple[int, ...] = (64, 128, 256, 1024)
    eval_images: int = 2048
    eval_windows: int = 3
    n_max: int = 0  # 0 = the shape's real N_max; smaller for quick runs
    device: str = "auto"
    channels_last: bool = True
    precision: str = "fp32"
    compile: bool = False
    compile_reason: str = ""  # why (b) compiles or not (runtime.compile=auto resolved for the recipe)
    allocator: str = "tuned"
    data_on_device: bool = True
    workers: int = 0
    threads: int = 0
    ablation: bool = False
    ablation_compile: bool = True
    profile: bool = False
    profile_steps: int = 5
    epoch: bool = False  # also time two whole epochs (train + a 10,000-image evaluation) of a and b
    epoch_test_images: int = 10000
    seed: int = 0
    json_path: str = ""


# ----------------------------------------------------------------------------------------- data


def synthetic_longtail(shape: Shape, n_max: int, seed: int) -> tuple[Any, Any, list[int]]:
    """Random uint8 images [N, C, H, W] with labels following the exponential long-tailed profile
    n_i = floor(N_max · ρ^(−i/(C−1))) (SPEC §1), classes in order; returns (images, labels, counts)."""
    import torch

    from longtail.data.profiles import longtail_counts

    counts = longtail_counts(shape.num_classes, n_max or shape.n_max, shape.imbalance_ratio)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.repeat_interleave(torch.arange(shape.num_classes), torch.tensor(counts))
    size = (int(labels.shape[0]), shape.channels, shape.image_size, shape.image_size)
    images = torch.randint(0, 256, size, generator=generator, dtype=torch.uint8)
    return images, labels, counts


def synthetic_balanced(shape: Shape, num_images: int, seed: int) -> tuple[Any, Any]:
    """A balanced synthetic test set of ``num_images`` images (labels cycle through the classes)."""
    import torch

    generator = torch.Generator().manual_seed(seed + 1)
    labels = torch.arange(num_images) % shape.num_classes
    size = (num_images, shape.channels, shape.image_size, shape.image_size)
    return torch.randint(0, 256, size, generator=generator, dtype=torch.uint8), labels


# ------------------------------------------------------------------------------------ pipelines


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make_optimizer(model: Any) -> Any:
    """SGD as in SPEC §3 (lr 0.1, momentum 0.9, weight decay 2e-4)."""
    import torch

    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)


class _WholeEpoch:
    """The ``--epoch`` measurement, shared by both pipelines (each has ``loader``, ``train_window``
    and ``eval_window``)."""

    def epoch(self, eval_batch_size: int, test_images: int) -> dict[str, float]:
        """Two whole training epochs (every batch of the loader, data included), each followed by
        evaluations of the test set until ``test_images`` images are evaluated, timed end to end.
        The second is the steady state; the first also pays what a run pays once — compiling the
        graph of the epoch's last, smaller batch (``first_seconds``)."""
        timings = []
        for _ in range(2):
            self.align_to_epoch()
            train = self.train_window(len(self.loader))
            evaluated, eval_seconds = 0, 0.0
            while evaluated < test_images:
                window = self.eval_window(eval_batch_size, test_images - evaluated)
                evaluated += int(window["images"])
                eval_seconds += window["seconds"]
            timings.append({"train_images": train["images"], "train_seconds": train["seconds"],
                            "eval_images": evaluated, "eval_seconds": eval_seconds,
                            "seconds": train["seconds"] + eval_seconds})
        return {**timings[1], "first_seconds": timings[0]["seconds"], "first_train_seconds": timings[0]["train_seconds"]}

    def align_to_epoch(self) -> None:
        """Start the next batches at the beginning of an epoch (so that an epoch's worth of batches
        is exactly one epoch, its last, smaller batch included)."""
        self._iterator = iter(self.loader)


class ReferenceRunner(_WholeEpoch):
    """(a) The LDAM-DRW reference code's pipeline (see :mod:`longtail.bench.reference`): its
    ``train()`` loop body — forward, loss, top-1/top-5 accuracy, ``loss.item()``, zero_grad,
    backward, step — and its ``validate()`` (no_grad, predictions collected on the host)."""

    def __init__(self, pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> None:
        from longtail.bench import reference
        from longtail.engine.accel import resolve_device
        from longtail.losses import create_loss
        from longtail.models import create_model

        self.device = resolve_device(options.device)
        images, labels, counts = synthetic_longtail(shape, options.n_max, options.seed)
        test_images, test_labels = synthetic_balanced(shape, options.eval_images, options.seed)
        # torchvision's CIFAR10 keeps N×H×W×C uint8 NumPy arrays and int labels.
        train_set = reference.PILImageDataset(
            images.permute(0, 2, 3, 1).numpy().copy(),
            labels.numpy().copy(),
            reference.train_transform(shape.image_size, shape.mean, shape.std, options.seed),
        )
        self.test_set = reference.PILImageDataset(
            test_images.permute(0, 2, 3, 1).numpy().copy(),
            test_labels.numpy().copy(),
            reference.test_transform(shape.mean, shape.std),
        )
        del images, labels, test_images, test_labels
        self.loader = reference.make_loader(
            train_set, options.batch_size, shuffle=True, num_workers=pipeline.workers, seed=options.seed
        )
        self.workers = pipeline.workers
        self.seed = options.seed
        self.model = create_model(
            "resnet32", num_classes=shape.num_classes, in_channels=shape.channels, head="normed-linear",
            seed=options.seed,
        ).to(self.device)
        self.criterion = create_loss("ldam", counts).to(self.device)
        self.optimizer = _make_optimizer(self.model)
        self._iterator: Iterator[Any] = iter(self.loader)
        self._accuracy = reference.accuracy_topk
        self.losses: list[float] = []

    def next_batch(self) -> tuple[Any, Any]:
        try:
            return next(self._iterator)
        except StopIteration:
            self.align_to_epoch()
            return next(self._iterator)

    def step(self, x: Any, y: Any) -> None:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        _, output = self.model(x)
        loss = self.criterion(output, y)
        self._accuracy(output, y, topk=(1, 5))
        self.losses.append(loss.item())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def train_window(self, steps: int) -> dict[str, float]:
        """Run ``steps`` training steps; seconds in total and waiting for batches, images done."""
        self.model.train()
        _sync(self.device)
        images = 0
        data_seconds = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            x, y = self.next_batch()
            data_seconds += time.perf_counter() - t0
            self.step(x, y)
            images += int(y.shape[0])
        _sync(self.device)
        return {"images": images, "seconds": time.perf_counter() - start, "data_seconds": data_seconds}

    def eval_window(self, batch_size: int, num_images: int) -> dict[str, float]:
        """The test set in batches of ``batch_size`` (one untimed warm-up batch first)."""
        import torch

        from longtail.bench import reference

        loader = reference.make_loader(self.test_set, batch_size, False, self.workers, self.seed)
        self.model.eval()
        try:
            with torch.no_grad():
                x, _ = next(iter(loader))
                self.model(x.to(self.device))  # warm-up: kernels for this batch size
                _sync(self.device)
                predictions: list[Any] = []
                images = 0
                start = time.perf_counter()
                for x, y in loader:
                    x = x.to(self.device, non_blocking=True)
                    _, output = self.model(x)
                    predictions.extend(output.argmax(1).cpu().numpy())
                    images += int(y.shape[0])
                    if images >= num_images:
                        break
                _sync(self.device)
                seconds = time.perf_counter() - start
        finally:
            self.model.train()
        return {"images": images, "seconds": seconds}


class _WindowLoader:
    """``steps`` batches from a persistent loader (next epoch's draw when one runs out), timing the
    waits for batches; what ``train_one_epoch`` iterates over in one window."""

    def __init__(self, runner: LongtailRunner, steps: int) -> None:
        self.runner = runner
        self.steps = steps
        self.data_seconds = 0.0
        self.images = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for _ in range(self.steps):
            t0 = time.perf_counter()
            batch = self.runner.next_batch()
            self.data_seconds += time.perf_counter() - t0
            self.images += int(batch[1].shape[0])
            yield batch


class LongtailRunner(_WholeEpoch):
    """(b) longtail's pipeline: what ``longtail train`` runs — the engine's data loader (uint8 tensor,
    ``BatchAugment``, the ``instance`` sampler), optimiser, :class:`Accel` settings and its
    ``train_one_epoch`` / ``evaluate`` — on synthetic data."""

    def __init__(self, pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> None:
        import torch

        from longtail.config import Config
        from longtail.data import Split
        from longtail.data.augment import BatchAugment
        from longtail.data.loaders import TensorLoader
        from longtail.engine.accel import Accel, maybe_compile, prepare_model
        from longtail.engine.data import EvalData
        from longtail.engine.distributed import DistInfo
        from longtail.engine.optim import build_optimizer
        from longtail.losses import create_loss
        from longtail.models import create_model
        from longtail.registry import SAMPLERS
        from longtail.tracking import Progress

        config = Config()
        config.optim.batch_size = options.batch_size
        config.runtime.channels_last = pipeline.channels_last
        config.runtime.precision = pipeline.precision
        config.runtime.compile = pipeline.compile
        config.runtime.allocator = pipeline.allocator
        config.runtime.device = options.device
        config.train.seed = options.seed
        self.config = config
        self.accel = Accel(
            device=options.device,
            channels_last=pipeline.channels_last,
            precision=pipeline.precision,
            compile=pipeline.compile,
        )
        self.device = self.accel.torch_device
        data_device = self.device if pipeline.data_on_device else torch.device("cpu")
        images, labels, counts = synthetic_longtail(shape, options.n_max, options.seed)
        test_images, test_labels = synthetic_balanced(shape, options.eval_images, options.seed)
        self.class_counts = counts
        sampler = SAMPLERS.create("instance", labels=labels, seed=options.seed)
        augment = BatchAugment(shape.mean, shape.std, pad=4, flip=True, seed=options.seed)
        self.loader = TensorLoader(
            images, labels, options.batch_size, sampler, augment, data_device, config.train.drop_last
        )
        info = dataclasses.make_dataclass("Info", ["mean", "std", "image_size"])(
            shape.mean, shape.std, shape.image_size
        )
        classes = [str(c) for c in range(shape.num_classes)]
        self.test = EvalData(
            Split(labels=test_labels, classes=classes, images=test_images), info, data_device, 0, pipeline.channels_last
        )
        self._eval_args = (classes, info, data_device, pipeline.channels_last, test_images, test_labels)
        self.model = prepare_model(
            create_model(
                "resnet32", num_classes=shape.num_classes, in_channels=shape.channels, head="normed-linear",
                seed=options.seed,
            ),
            self.accel,
        )
        self.forward = maybe_compile(self.model, self.accel)
        self.criterion = create_loss("ldam", counts).to(self.device)
        self.optimizer = build_optimizer(config.optim, self.model)
        self.scaler = torch.amp.GradScaler(self.device.type) if pipeline.precision == "fp16" else None
        self.dist = DistInfo()
        self.progress = Progress("none", config.train.epochs)
        self._epoch = 0
        self.loader.set_epoch(self._epoch)
        self._iterator: Iterator[Any] = iter(self.loader)

    def next_batch(self) -> tuple[Any, Any]:
        try:
            return next(self._iterator)
        except StopIteration:
            self.align_to_epoch()
            return next(self._iterator)

    def align_to_epoch(self) -> None:
        """The next batch is the first of a new epoch (the sampler's draw for it)."""
        self._epoch += 1
        self.loader.set_epoch(self._epoch)
        self._iterator = iter(self.loader)

    def train_window(self, steps: int) -> dict[str, float]:
        """``steps`` steps of the trainer's ``train_one_epoch`` (its one host sync at the end included)."""
        from longtail.engine.trainer import train_one_epoch

        window = _WindowLoader(self, steps)
        _sync(self.device)
        start = time.perf_counter()
        train_one_epoch(
            self.forward, self.criterion, self.optimizer, self.scaler, window, self.accel, self.config,
            self._epoch, self.dist, self.progress,
        )
        _sync(self.device)
        seconds = time.perf_counter() - start
        return {"images": window.images, "seconds": seconds, "data_seconds": window.data_seconds}

    def eval_window(self, batch_size: int, num_images: int) -> dict[str, float]:
        """The trainer's ``evaluate`` (metrics included) on the synthetic test set at ``batch_size``."""
        from longtail.config import EvalConfig
        from longtail.data import Split
        from longtail.engine.data import EvalData
        from longtail.engine.evaluate import evaluate

        classes, info, data_device, channels_last, images, labels = self._eval_args
        first = EvalData(  # one untimed batch of this size: kernel set-up
            Split(labels=labels[:batch_size], classes=classes, images=images[:batch_size]),
            info, data_device, 0, channels_last,
        )
        eval_config = EvalConfig(batch_size=batch_size)
        try:  # the uncompiled model, as `longtail train` evaluates (no graph per eval batch shape)
            evaluate(self.model, first, self.accel, self.dist, self.class_counts, eval_config)
            _sync(self.device)
            start = time.perf_counter()
            evaluate(self.model, self.test, self.accel, self.dist, self.class_counts, eval_config)
            _sync(self.device)
            seconds = time.perf_counter() - start
        finally:
            self.model.train()
        return {"images": len(self.test), "seconds": seconds}

    def profile(self, steps: int) -> dict[str, Any]:
        """Top operators by self time over ``steps`` training steps, and the time per phase."""
        from torch.profiler import ProfilerActivity, profile

        from longtail.engine.accel import autocast, prepare_input

        phases = {"data": 0.0, "forward+loss": 0.0, "backward": 0.0, "optimizer": 0.0}
        for _ in range(steps):
            _sync(self.device)
            t0 = time.perf_counter()
            x, y = self.next_batch()
            x = prepare_input(x, self.accel)
            y = y.to(self.device, non_blocking=True)
            _sync(self.device)
            t1 = time.perf_counter()
            with autocast(self.accel):
                _, logits = self.forward(x)
            loss = self.criterion(logits, y)
            _sync(self.device)
            t2 = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _sync(self.device)
            t3 = time.perf_counter()
            self.optimizer.step()
            _sync(self.device)
            t4 = time.perf_counter()
            for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[name] += seconds
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            self.train_window(steps)
        sort_key = "self_cuda_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        averages = prof.key_averages()
        table = averages.table(sort_by=sort_key, row_limit=18)
        categories: dict[str, float] = dict.fromkeys(PROFILE_CATEGORIES, 0.0)
        for event in averages:
            self_us = event.self_device_time_total if self.device.type == "cuda" else event.self_cpu_time_total
            categories[profile_category(event.key)] += self_us / 1000.0 / steps
        x, _ = self.next_batch()
        return {
            "phases": phases, "steps": steps, "table": table, "ms_per_step": categories,
            "conv_gflop_per_step": conv_flops(self.model, prepare_input(x, self.accel)) / 1e9,
            "peak_gflops": matmul_peak_gflops(self.device, self.accel.autocast_dtype),
        }


PROFILE_CATEGORIES = (
    "convolutions",  # oneDNN (CPU) / cuDNN convolution kernels, forward and both backward passes
    "compiled kernels",  # inductor's fused batch-norm / ReLU / add / cast kernels (torch.compile)
    "batch norm",  # eager batch-norm forward and backward
    "ReLU, add, casts",  # eager element-wise kernels: ReLU and its backward, residual add, dtype copies
    "other",  # optimiser, loss, head, autograd and dispatch overhead, data
)


def profile_category(name: str) -> str:
    """The :data:`PROFILE_CATEGORIES` entry of a profiler event (by operator name)."""
    if "convolution" in name or "conv2d" in name or name.startswith(("mkldnn", "cudnn")):
        return "convolutions"
    if "CompiledFxGraph" in name or name.startswith(("graph_", "cpp_fused", "triton_")):
        return "compiled kernels"
    if "batch_norm" in name:
        return "batch norm"
    if name in ELEMENTWISE_OPS:
        return "ReLU, add, casts"
    return "other"


ELEMENTWISE_OPS = frozenset({
    "aten::relu", "aten::relu_", "aten::clamp_min", "aten::clamp_min_", "aten::threshold_backward",
    "aten::add", "aten::add_", "aten::copy_", "aten::_to_copy", "aten::constant_pad_nd", "aten::fill_",
})


def conv_flops(model: Any, x: Any) -> float:
    """Floating-point operations of every Conv2d in one training step on batch ``x``: 2·MACs for the
    forward pass, and twice that for the backward (input and weight gradients)."""
    import torch

    total = [0.0]

    def hook(module: Any, _inputs: Any, output: Any) -> None:
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total[0] += 2.0 * output.numel() * kernel

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return 3.0 * total[0]


def matmul_peak_gflops(device: Any, dtype: Any) -> float:
    """Measured GFLOP/s of a 2048² matrix product in the training precision on ``device`` — what
    the hardware's matrix units give when nothing else limits them (median of 5)."""
    import torch

    dtype = dtype or torch.float32
    a = torch.randn(2048, 2048, device=device).to(dtype)
    b = torch.randn(2048, 2048, device=device).to(dtype)
    rates = []
    for _ in range(6):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        rates.append(2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates[1:])


def _make_runner(pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> ReferenceRunner | LongtailRunner:
    if pipeline.kind == "reference":
        return ReferenceRunner(pipeline, shape, options)
    return LongtailRunner(pipeline, shape, options)


def _maxrss_mib() -> float:
    """Peak resident set size of this process, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _worker_main(conn: Any, pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> None:
    """A pipeline's process: build, warm up, then answer the parent's commands until "stop"."""
    try:
        import torch

        import longtail.bench.reference  # noqa: F401  (same imports in every process before the baseline)
        import longtail.data  # noqa: F401
        import longtail.losses  # noqa: F401
        import longtail.models  # noqa: F401
        from longtail.engine.accel import apply_allocator, resolve_device

        if options.threads > 0:
            torch.set_num_threads(options.threads)
        apply_allocator(pipeline.allocator, resolve_device(options.device))  # before any data is made
        rss_start = _maxrss_mib()
        start = time.perf_counter()
        parent = os.getppid()
        runner = _make_runner(pipeline, shape, options)
        runner.train_window(options.warmup)
        conn.send(("ok", {"setup_seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))
        while True:
            while not conn.poll(1.0):
                if os.getppid() != parent or parent == 1:  # the parent died: stop, do not linger
                    return
            command, argument = conn.recv()
            if command == "train":
                conn.send(("ok", runner.train_window(argument)))
            elif command == "eval":
                conn.send(("ok", runner.eval_window(*argument)))
            elif command == "epoch":
                conn.send(("ok", runner.epoch(*argument)))
            elif command == "profile":
                conn.send(("ok", runner.profile(argument)))  # type: ignore[attr-defined]
            elif command == "stop":
                memory = {"peak_rss_mib": _maxrss_mib(), "rss_start_mib": rss_start}
                if runner.device.type == "cuda":
                    memory["cuda_peak_mib"] = torch.cuda.max_memory_allocated(runner.device) / 2**20
                conn.send(("ok", memory))
                return
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))


class _Worker:
    """The parent's handle on one pipeline process."""

    def __init__(self, context: Any, pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> None:
        self.pipeline = pipeline
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, pipeline, shape, options), name=f"bench-{pipeline.label}"
        )
        self.process.start()
        child.close()

    def call(self, command: str, argument: Any = None) -> Any:
        if command != "ready":
            self.conn.send((command, argument))
        try:
            status, value = self.conn.recv()
        except EOFError as error:
            raise RuntimeError(
                f"benchmark process {self.pipeline.label!r} died (exit code {self.process.exitcode})"
            ) from error
        if status == "error":
            raise RuntimeError(f"benchmark process {self.pipeline.label!r} failed:\n{value}")
        return value

    def close(self) -> None:
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


# -------------------------------------------------------------------------------------- running


@dataclass
class PipelineResult:
    pipeline: Pipeline
    setup_seconds: float = 0.0
    threads: int = 0
    train: list[dict[str, float]] = field(default_factory=list)
    eval: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    epoch: dict[str, float] = field(default_factory=dict)

    @property
    def train_rates(self) -> list[float]:
        return [w["images"] / w["seconds"] for w in self.train]

    @property
    def train_median(self) -> float:
        return statistics.median(self.train_rates)

    @property
    def data_fraction(self) -> float:
        return sum(w["data_seconds"] for w in self.train) / sum(w["seconds"] for w in self.train)

    def eval_medians(self) -> dict[int, float]:
        return {bs: statistics.median(w["images"] / w["seconds"] for w in runs) for bs, runs in self.eval.items()}

    def best_eval(self) -> tuple[int, float]:
        medians = self.eval_medians()
        best = max(medians, key=lambda bs: medians[bs])
        return best, medians[best]


@dataclass
class ShapeResult:
    shape: Shape
    num_images: int
    results: list[PipelineResult]
    profile: dict[str, Any] | None = None

    @property
    def ratio(self) -> float:
        return self.results[1].train_median / self.results[0].train_median


def pipelines_for(options: SpeedOptions) -> list[Pipeline]:
    """(a), (b), then — with ``ablation`` — the ladder from the plain tensor pipeline to every
    optimisation switched on, skipping settings already in the list."""
    reference = Pipeline("a", "reference", workers=options.workers)
    longtail = Pipeline(
        "b",
        "longtail",
        channels_last=options.channels_last,
        precision=options.precision,
        compile=options.compile,
        data_on_device=options.data_on_device,
        allocator=options.allocator,
    )
    pipelines = [reference, longtail]
    if options.ablation:
        seen = {p.settings_key() for p in pipelines}
        for label, pipeline in ablation_rows(options):
            if pipeline.settings_key() not in seen:
                seen.add(pipeline.settings_key())
                pipelines.append(dataclasses.replace(pipeline, label=label))
    return pipelines


def ablation_rows(options: SpeedOptions) -> list[tuple[str, Pipeline]]:
    """(row label, pipeline) of the ablation in order: a, the tensor pipeline in fp32 and NCHW, then
    one optimisation more per row; "data on host" only where it differs (a CUDA device). The last row,
    "a, tuned malloc", is outside the ladder: the allocator setting alone, given to the reference."""
    from longtail.engine.accel import resolve_device

    low_precision = options.precision if options.precision != "fp32" else "bf16"
    on_device = options.data_on_device
    workers = options.workers
    rows = [
        ("a (reference)", Pipeline("a", "reference", workers=workers)),
        ("tensor data", Pipeline("", "longtail", data_on_device=on_device)),
        ("+channels_last", Pipeline("", "longtail", channels_last=True, data_on_device=on_device)),
        (f"+{low_precision} autocast", Pipeline("", "longtail", True, low_precision, data_on_device=on_device)),
        ("+tuned malloc", Pipeline("", "longtail", True, low_precision, data_on_device=on_device, allocator="tuned")),
    ]
    if options.ablation_compile or options.compile:
        rows.append(("+torch.compile", Pipeline("", "longtail", True, low_precision, True, data_on_device=on_device,
                                                allocator="tuned")))
    if on_device and resolve_device(options.device).type != "cpu":
        rows.append(("b, data on host", Pipeline("", "longtail", options.channels_last, options.precision,
                                                 options.compile, data_on_device=False, allocator=options.allocator)))
    rows.append(("a, tuned malloc", Pipeline("", "reference", workers=workers, allocator="tuned")))
    return rows


def run_shape(options: SpeedOptions, shape: Shape, say: Callable[[str], None]) -> ShapeResult:
    """Measure every pipeline on ``shape``, interleaved (see the module docstring)."""
    from longtail.data.profiles import longtail_counts

    context = mp.get_context("spawn")
    pipelines = pipelines_for(options)
    results = [PipelineResult(p) for p in pipelines]
    workers: list[_Worker] = []
    profile = None
    try:
        for result in results:  # one at a time: warm-up (and compilation) never overlap
            worker = _Worker(context, result.pipeline, shape, options)
            workers.append(worker)
            ready = worker.call("ready")
            result.setup_seconds = ready["setup_seconds"]
            result.threads = ready["threads"]
        for window in range(options.windows):
            for worker, result in zip(workers, results):
                result.train.append(worker.call("train", options.steps))
            rates = ", ".join(f"{r.pipeline.label} {r.train_rates[-1]:.0f}" for r in results)
            say(f"  window {window + 1}/{options.windows}: {rates} img/s")
        for batch_size in options.eval_batch_sizes:
            for _ in range(options.eval_windows):
                for worker, result in zip(workers, results):
                    result.eval.setdefault(batch_size, []).append(
                        worker.call("eval", (batch_size, options.eval_images))
                    )
        if options.epoch:  # a, then b: two whole epochs each, evaluation at its fastest batch size
            for worker, result in zip(workers[:2], results[:2]):
                result.epoch = worker.call("epoch", (result.best_eval()[0], options.epoch_test_images))
        if options.profile:
            profile = workers[1].call("profile", options.profile_steps)
        for worker, result in zip(workers, results):
            result.memory = worker.call("stop")
    finally:
        for worker in workers:
            worker.close()
    num_images = sum(longtail_counts(shape.num_classes, options.n_max or shape.n_max, shape.imbalance_ratio))
    return ShapeResult(shape, num_images, results, profile)


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability"):
        flags = f", {torch.backends.cpu.get_cpu_capability()}"
    return f"{cpu} ({os.cpu_count()} cpus{flags}), torch {torch.__version__}"


def format_shape(result: ShapeResult, options: SpeedOptions) -> list[str]:
    """The tables of one shape: pipelines, ablation (if measured), profile (if measured)."""
    shape = result.shape
    lines = [
        f"{shape.name}-LT shape: {result.num_images:,} training images {shape.channels}×{shape.image_size}×"
        f"{shape.image_size} (ρ={shape.imbalance_ratio:g}), batch {options.batch_size}, "
        f"{options.windows} windows × {options.steps} steps, interleaved; "
        f"{result.results[0].threads} threads",
        f"  {'':15} {'pipeline':<68} {'train img/s':>11} {'min–max':>11} {'data%':>6} "
        f"{'eval img/s':>10} {'@bs':>5} {'peak MiB':>9} {'Δ MiB':>7}",
    ]
    for r in result.results:
        rates = r.train_rates
        eval_bs, eval_rate = r.best_eval()
        delta = r.memory["peak_rss_mib"] - r.memory["rss_start_mib"]
        lines.append(
            f"  {r.pipeline.label[:15]:15} {r.pipeline.describe()[:68]:<68} {r.train_median:11.1f} "
            f"{min(rates):5.0f}–{max(rates):<5.0f} {100 * r.data_fraction:5.1f}% {eval_rate:10.0f} {eval_bs:5d} "
            f"{r.memory['peak_rss_mib']:9.0f} {delta:7.0f}"
        )
    for r in result.results[:2]:
        medians = ", ".join(f"bs {bs}: {rate:.0f}" for bs, rate in r.eval_medians().items())
        lines.append(f"  eval img/s of {r.pipeline.label}: {medians}")
    lines.append("  setup s (data, model, warm-up; compilation included): "
                 + ", ".join(f"{r.pipeline.label or '?'} {r.setup_seconds:.1f}" for r in result.results))
    a_epoch, b_epoch = result.results[0].epoch, result.results[1].epoch
    if a_epoch and b_epoch:
        for label, e in (("a", a_epoch), ("b", b_epoch)):
            lines.append(
                f"  whole epoch of {label}: {e['seconds']:.1f} s = train {e['train_images']:,} images in "
                f"{e['train_seconds']:.1f} s + evaluate {e['eval_images']:,} in {e['eval_seconds']:.1f} s "
                f"(the first epoch: {e['first_seconds']:.1f} s)"
            )
        lines.append(f"  whole-epoch ratio a/b ({shape.name}): {a_epoch['seconds'] / b_epoch['seconds']:.2f}")
    lines.append(f"  ratio b/a ({shape.name}): {result.ratio:.2f}")
    if len(result.results) > 2:
        base = result.results[0].train_median
        by_key = {r.pipeline.settings_key(): r for r in result.results}
        b_key = result.results[1].pipeline.settings_key()
        lines.append(f"  ablation ({shape.name}), median train img/s in the same run (b = the row marked *):")
        previous = None
        for label, pipeline in ablation_rows(options):
            key = pipeline.settings_key()
            r = by_key[key]
            outside = label.startswith("a, ")  # outside the ladder: against a only
            step = "" if previous is None or outside else f"  ×{r.train_median / previous:.2f} vs previous row"
            mark = "*" if key == b_key else " "
            lines.append(
                f"   {mark}{label:<20} {r.train_median:8.1f}  ×{r.train_median / base:.2f} vs a{step}"
            )
            previous = r.train_median
        if b_key not in {p.settings_key() for _, p in ablation_rows(options)}:
            lines.append(f"    b: {result.results[1].pipeline.describe()}: {result.results[1].train_median:.1f}")
    if result.profile is not None:
        lines.extend(format_profile(result, options))
    return lines


def format_profile(result: ShapeResult, options: SpeedOptions, target: float = 4.0) -> list[str]:
    """Where (b)'s step time goes, and what a (b)/(a) ratio of ``target`` would need."""
    profile = result.profile
    assert profile is not None
    phases = profile["phases"]
    total = sum(phases.values())
    split = ", ".join(f"{name} {100 * s / total:.0f}%" for name, s in phases.items())
    lines = [f"  profile of b ({profile['steps']} steps, profiler on): {split}"]
    lines.extend("  " + line for line in profile["table"].splitlines())
    ms = profile["ms_per_step"]
    step_ms = sum(ms.values())
    lines.append(f"  where b's step goes (profiler self time, ms per batch-{options.batch_size} step, "
                 f"{step_ms:.1f} in all):")
    for name, value in ms.items():
        lines.append(f"    {name:<18} {value:7.1f} ms  {100 * value / step_ms:5.1f}%")
    conv_ms = ms["convolutions"]
    gflop = profile["conv_gflop_per_step"]
    peak = profile["peak_gflops"]
    a_rate, b_rate = result.results[0].train_median, result.results[1].train_median
    now_ms = 1000 * options.batch_size / b_rate
    scale = now_ms / step_ms  # the profiler's own overhead taken out: shares of the unprofiled step
    conv_now, rest_now = conv_ms * scale, (step_ms - conv_ms) * scale
    achieved = gflop / (conv_now / 1000) if conv_now > 0 else float("nan")
    lines.append(
        f"  convolutions: {gflop:.1f} GFLOP per step in {conv_now:.1f} ms = {achieved:.0f} GFLOP/s; "
        f"a 2048² matrix product in the same precision runs at {peak:.0f} GFLOP/s here "
        f"({100 * achieved / peak:.0f}% of it reached)"
    )
    if b_rate >= target * a_rate:
        lines.append(f"  ratio ×{target:g} reached")
        return lines
    need_ms = 1000 * options.batch_size / (target * a_rate)
    lines.append(f"  ×{target:g} needs {target * a_rate:.0f} img/s = {need_ms:.0f} ms per step (now {now_ms:.0f}: "
                 f"convolutions {conv_now:.0f} + the rest {rest_now:.0f})")
    if need_ms > conv_now:
        lines.append(f"    at today's convolution speed: the rest from {rest_now:.0f} to {need_ms - conv_now:.0f} ms "
                     f"(×{rest_now / (need_ms - conv_now):.1f} faster)")
    else:
        lines.append(f"    the convolutions alone ({conv_now:.0f} ms) already take longer")
    if need_ms > rest_now:
        conv_needed = gflop / ((need_ms - rest_now) / 1000)
        lines.append(f"    with the rest unchanged: convolutions at {conv_needed:.0f} GFLOP/s "
                     f"({100 * conv_needed / peak:.0f}% of the matrix-product rate)")
    else:
        lines.append(f"    the rest alone ({rest_now:.0f} ms) already takes longer: both must shrink")
    return lines


def _say(line: str) -> None:
    print(line, flush=True)


def run_speed(options: SpeedOptions, say: Callable[[str], None] = _say) -> list[ShapeResult]:
    """Run the benchmark on every shape in ``options.shapes``; prints as it goes, ends with
    ``ratio: X.XX`` (b ÷ a training images/s of the first shape)."""
    from longtail.engine.accel import resolve_device

    device = resolve_device(options.device)
    say(f"longtail bench speed — device {device}; {_machine()}")
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
    say(f"ratio: {results[0].ratio:.2f}")
    return results


def write_json(options: SpeedOptions, results: Sequence[ShapeResult], path: str) -> None:
    payload = {
        "options": dataclasses.asdict(options),
        "machine": _machine(),
        "shapes": [
            {
                "shape": r.shape.name,
                "num_images": r.num_images,
                "ratio": r.ratio,
                "pipelines": [
                    {
                        "label": p.pipeline.label,
                        "settings": dataclasses.asdict(p.pipeline),
                        "train_img_per_s": p.train_rates,
                        "train_median": p.train_median,
                        "data_fraction": p.data_fraction,
                        "eval_img_per_s": p.eval_medians(),
                        "memory": p.memory,
                        "setup_seconds": p.setup_seconds,
                        "epoch": p.epoch,
                    }
                    for p in r.results
                ],
            }
            for r in results
        ],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)


# ------------------------------------------------------------------------------ command line


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _shape_list(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in SHAPES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown shape {', '.join(unknown) or text!r}; use a comma-separated subset of {', '.join(SHAPES)}"
        )
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options; the defaults of (b) are the trainer's ``runtime`` defaults."""
    from longtail.config import RuntimeConfig
    from longtail.engine.accel import Accel

    runtime = RuntimeConfig()
    # "auto" resolved for this machine, so the table names what (b) actually ran.
    precision = Accel(device="cpu", precision=runtime.precision).resolved_precision
    defaults = SpeedOptions(channels_last=runtime.channels_last, precision=precision, allocator=runtime.allocator)
    add = parser.add_argument
    add("--shapes", type=_shape_list, default=defaults.shapes, help="comma-separated: cifar10, fmnist")
    add("--batch-size", type=int, default=defaults.batch_size, help="training batch size (default 128)")
    add("--steps", type=int, default=defaults.steps, help="training steps per window (default 30)")
    add("--windows", type=int, default=defaults.windows, help="windows per pipeline, interleaved (default 3)")
    add("--warmup", type=int, default=defaults.warmup, help="untimed steps before the first window (default 5)")
    add("--eval-batch-sizes", type=_int_list, default=defaults.eval_batch_sizes,
        help="evaluation batch sizes to measure (default 64,128,256,1024)")
    add("--epoch", action="store_true",
        help="also time two whole epochs of a and b (the first, with any compilation of the last batch's shape, "
        "and the steady state): every training batch, then a 10,000-image evaluation")
    add("--epoch-test-images", type=int, default=defaults.epoch_test_images,
        help="images evaluated in the --epoch measurement (default 10000, a CIFAR / Fashion-MNIST test set)")
    add("--eval-images", type=int, default=defaults.eval_images, help="test images per evaluation window")
    add("--eval-windows", type=int, default=defaults.eval_windows, help="evaluation windows per batch size (default 3)")
    add("--n-max", type=int, default=0, help="largest class size (default: the real one, 5000 / 6000)")
    add("--device", default=defaults.device, help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    add("--channels-last", action=argparse.BooleanOptionalAction, default=defaults.channels_last,
        help=f"(b) channels-last memory format (default {defaults.channels_last})")
    add("--precision", choices=PRECISION_CHOICES, default=defaults.precision,
        help=f"(b) autocast precision (default {defaults.precision})")
    add("--compile", action=argparse.BooleanOptionalAction, default=None,
        help="(b) torch.compile the model (default: runtime.compile=auto for the 200-epoch CIFAR-10-LT recipe, "
        f"{RECIPE_STEPS:,} steps: on where a C++ compiler / Triton is found)")
    add("--allocator", choices=("tuned", "system"), default=defaults.allocator,
        help=f"(b) runtime.allocator (default {defaults.allocator}; (a) always runs with the system's)")
    add("--data-on-device", action=argparse.BooleanOptionalAction, default=defaults.data_on_device,
        help="(b) keep the uint8 data on the device (default True; no effect on cpu)")
    add("--workers", type=int, default=defaults.workers, help="(a) DataLoader worker processes (default 0)")
    add("--threads", type=int, default=defaults.threads, help="torch threads per process (default: torch's)")
    add("--ablation", action="store_true", help="also measure each optimisation switched on one at a time")
    add("--ablation-compile", action=argparse.BooleanOptionalAction, default=defaults.ablation_compile,
        help="include the torch.compile row in the ablation (compiling takes minutes on a busy CPU)")
    add("--profile", action="store_true", help="profile (b): top operators and time per phase")
    add("--profile-steps", type=int, default=defaults.profile_steps, help="steps profiled (default 5)")
    add("--seed", type=int, default=defaults.seed, help="seed of the synthetic data, model and draws")
    add("--json", dest="json_path", default="", metavar="PATH", help="also write the figures as JSON")


def options_from_args(args: argparse.Namespace) -> SpeedOptions:
    from longtail.config import RuntimeConfig
    from longtail.engine.accel import resolve_compile, resolve_device
    from longtail.errors import ConfigError

    names = {f.name for f in dataclasses.fields(SpeedOptions)}
    values = {k: v for k, v in vars(args).items() if k in names}
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


def main(argv: Sequence[str] | None = None) -> int:
    """``benchmarks/speed.py`` entry point (same options as ``longtail bench speed``)."""
    from longtail.errors import LongtailError

    parser = argparse.ArgumentParser(prog="speed.py", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_speed(options_from_args(args))
    except LongtailError as error:
        print(f"speed.py: error: {error}", file=sys.stderr)
        return 2
    return 0


__all__ = [
    "SHAPES",
    "LongtailRunner",
    "Pipeline",
    "ReferenceRunner",
    "SpeedOptions",
    "add_arguments",
    "main",
    "options_from_args",
    "pipelines_for",
    "run_speed",
    "synthetic_balanced",
    "synthetic_longtail",
]
