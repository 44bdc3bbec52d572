"""The two pipelines of the speed benchmark, each in a harness process (:mod:`longtail.bench.harness`).

- (a) :class:`ReferenceRunner`: the pipeline of the public LDAM-DRW code (:mod:`longtail.bench.reference`);
- (b) :class:`LongtailRunner`: what ``longtail train`` runs — the engine's :class:`TrainData` (built
  from the synthetic set), optimiser, :class:`~longtail.engine.accel.Accel` settings and the trainer's
  ``train_one_epoch`` / ``evaluate``.

Both give ``train_window(steps)``, ``eval_window(batch_size, num_images)`` and ``epoch(...)``; (b) also
``profile(steps)`` (torch.profiler: top operators, time per phase, convolution FLOPs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

from longtail.bench.harness import (
    Pipeline,
    Shape,
    SpeedOptions,
    precision_of,
    sync,
    synthetic_balanced,
    synthetic_longtail,
)


def _make_optimizer(model: Any) -> Any:
    """SGD as in SPEC §3 (lr 0.1, momentum 0.9, weight decay 2e-4)."""
    import torch

    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)


class _Runner:
    """What both pipelines share: batches from a persistent loader across epochs and the ``--epoch``
    measurement (each pipeline has ``loader``, ``train_window`` and ``eval_window``)."""

    _iterator: Iterator[Any]

    def next_batch(self) -> tuple[Any, Any]:
        """The next training batch; the first of the next epoch when this one runs out."""
        try:
            return next(self._iterator)
        except StopIteration:
            self.align_to_epoch()
            return next(self._iterator)

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


class ReferenceRunner(_Runner):
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
        sync(self.device)
        images = 0
        data_seconds = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            x, y = self.next_batch()
            data_seconds += time.perf_counter() - t0
            self.step(x, y)
            images += int(y.shape[0])
        sync(self.device)
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
                sync(self.device)
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
                sync(self.device)
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


class LongtailRunner(_Runner):
    """(b) longtail's pipeline: what ``longtail train`` runs — the engine's :class:`TrainData` (uint8
    tensor, ``BatchAugment``, the ``instance`` sampler) built from the synthetic set, its optimiser,
    :class:`Accel` settings and its ``train_one_epoch`` / ``evaluate``."""

    def __init__(self, pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> None:
        import numpy as np
        import torch

        from longtail.config import Config
        from longtail.data import Split
        from longtail.data.build import LongTailData
        from longtail.data.datasets import DatasetInfo
        from longtail.engine.accel import Accel, maybe_compile, prepare_model
        from longtail.engine.data import TrainData
        from longtail.engine.distributed import DistInfo
        from longtail.engine.optim import build_optimizer
        from longtail.losses import create_loss
        from longtail.models import create_model
        from longtail.tracking import Progress

        config = Config()
        config.optim.batch_size = options.batch_size
        config.runtime.channels_last = pipeline.channels_last
        config.runtime.precision = pipeline.precision
        config.runtime.compile = pipeline.compile
        config.runtime.allocator = pipeline.allocator
        config.runtime.device = options.device
        config.train.seed = options.seed
        config.data.workers = 0
        self.config = config
        self.accel = Accel(
            device=options.device,
            channels_last=pipeline.channels_last,
            precision=pipeline.precision,
            compile=pipeline.compile,
        )
        self.device = self.accel.torch_device
        images, labels, counts = synthetic_longtail(shape, options.n_max, options.seed)
        test_images, test_labels = synthetic_balanced(shape, options.eval_images, options.seed)
        self.class_counts = counts
        classes = [str(c) for c in range(shape.num_classes)]
        info = DatasetInfo(f"synthetic-{shape.name}", shape.num_classes, shape.image_size, shape.channels,
                           shape.mean, shape.std, None, "tensor", loader=None)  # type: ignore[arg-type]
        built = LongTailData(Split(labels=labels, classes=classes, images=images), None,
                             Split(labels=test_labels, classes=classes, images=test_images), counts, "synthetic",
                             shape.num_classes, info, np.arange(len(labels)))
        self.dist = DistInfo()
        self.data = TrainData(config, self.dist, self.device if pipeline.data_on_device else torch.device("cpu"),
                              data=built)
        self.test = self.data.test
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
        self.progress = Progress("none", config.train.epochs)
        self._epoch = -1
        self.align_to_epoch()

    def align_to_epoch(self) -> None:
        """The next batch is the first of a new epoch (the sampler's draw for it)."""
        self._epoch += 1
        self.loader = self.data.train_loader(("instance", {}), self._epoch)
        self._iterator = iter(self.loader)

    def train_window(self, steps: int) -> dict[str, float]:
        """``steps`` steps of the trainer's ``train_one_epoch`` (its one host sync at the end included)."""
        from longtail.engine.trainer import train_one_epoch

        window = _WindowLoader(self, steps)
        sync(self.device)
        start = time.perf_counter()
        train_one_epoch(
            self.forward, self.criterion, self.optimizer, self.scaler, window, self.accel, self.config,
            self._epoch, self.dist, self.progress,
        )
        sync(self.device)
        seconds = time.perf_counter() - start
        return {"images": window.images, "seconds": seconds, "data_seconds": window.data_seconds}

    def eval_window(self, batch_size: int, num_images: int) -> dict[str, float]:
        """The trainer's ``evaluate`` (metrics included) on the synthetic test set at ``batch_size``."""
        import dataclasses

        import torch

        from longtail.config import EvalConfig
        from longtail.engine.evaluate import evaluate

        # one untimed batch of this size: kernel set-up
        first = dataclasses.replace(self.test, split=self.test.split.subset(torch.arange(min(batch_size, len(self.test)))))
        eval_config = EvalConfig(batch_size=batch_size)
        try:  # the uncompiled model, as `longtail train` evaluates (no graph per eval batch shape)
            evaluate(self.model, first, self.accel, self.dist, self.class_counts, eval_config)
            sync(self.device)
            start = time.perf_counter()
            evaluate(self.model, self.test, self.accel, self.dist, self.class_counts, eval_config)
            sync(self.device)
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
            sync(self.device)
            t0 = time.perf_counter()
            x, y = self.next_batch()
            x = prepare_input(x, self.accel)
            y = y.to(self.device, non_blocking=True)
            sync(self.device)
            t1 = time.perf_counter()
            with autocast(self.accel):
                _, logits = self.forward(x)
            loss = self.criterion(logits, y)
            sync(self.device)
            t2 = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            sync(self.device)
            t3 = time.perf_counter()
            self.optimizer.step()
            sync(self.device)
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
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        rates.append(2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates[1:])


def make_runner(pipeline: Pipeline, shape: Shape, options: SpeedOptions) -> ReferenceRunner | LongtailRunner:
    if pipeline.kind == "reference":
        return ReferenceRunner(pipeline, shape, options)
    return LongtailRunner(pipeline, shape, options)


def flop_limit(shape: Shape, options: SpeedOptions, pipelines: list[Pipeline]) -> dict[str, Any]:
    """The FLOP-bound limit of training ResNet-32 on ``shape`` here (SPEC §10): GFLOP per training
    image (every convolution, forward + both backward passes, :func:`conv_flops`) and the measured
    2048² matrix-product GFLOP/s (:func:`matmul_peak_gflops`) in each precision the pipelines use, with
    the pipelines' thread count; limit img/s = peak ÷ GFLOP per image."""
    import torch

    from longtail.engine.accel import resolve_device
    from longtail.models import create_model

    device = resolve_device(options.device)
    threads = torch.get_num_threads()
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    try:
        model = create_model("resnet32", num_classes=shape.num_classes, in_channels=shape.channels).to(device)
        batch = 8
        x = torch.zeros(batch, shape.channels, shape.image_size, shape.image_size, device=device)
        gflop = conv_flops(model, x) / batch / 1e9
    finally:
        torch.set_num_threads(threads)
    precisions = sorted({precision_of(p, options.device) for p in pipelines})
    limit = {"gflop_per_image": gflop, "peak_gflops": dict.fromkeys(precisions, 0.0), "device": options.device,
             "limit_img_per_s": {}}
    remeasure_peaks(limit, options)
    return limit


def remeasure_peaks(limit: dict[str, Any], options: SpeedOptions) -> None:
    """Measure the matrix-product peaks of ``limit`` again and keep the highest seen: on a shared
    machine a measurement can only be slowed down by others, so the maximum over the run (the harness
    re-measures between windows) is the best estimate of what the hardware gives."""
    import torch

    from longtail.engine.accel import resolve_device

    device = resolve_device(options.device)
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    threads = torch.get_num_threads()
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    try:
        for name in limit["peak_gflops"]:
            limit["peak_gflops"][name] = max(limit["peak_gflops"][name], matmul_peak_gflops(device, dtypes[name]))
    finally:
        torch.set_num_threads(threads)
    gflop = limit["gflop_per_image"]
    limit["limit_img_per_s"] = {name: peak / gflop for name, peak in limit["peak_gflops"].items()}
