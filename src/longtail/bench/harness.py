"""The speed benchmark's harness: what is measured (shapes, pipelines, options), the synthetic data, one
spawned process per pipeline driven through a pipe, and the interleaved timing windows.

Every pipeline runs in its own spawned process (so its peak resident memory is its own) and holds its
data, model and optimiser for the whole run. The parent sends "train ``steps`` steps" to each in turn —
a, b, a, b, … for ``windows`` rounds — so that load from other processes on a shared machine hits all
pipelines alike; training images/s is the median over the windows. Evaluation images/s is measured the
same way at several batch sizes and the fastest size is reported. Peak memory is the process's
``ru_maxrss`` at the end, and its growth since the process had imported torch and longtail (before any
data was made). The pipelines themselves are in :mod:`longtail.bench.pipelines`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
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


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
        from longtail.bench.pipelines import make_runner

        runner = make_runner(pipeline, shape, options)
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
    limit: dict[str, Any] | None = None  # pipelines.flop_limit(): GFLOP per training image, peak GFLOP/s

    @property
    def ratio(self) -> float:
        return self.results[1].train_median / self.results[0].train_median

    def limit_fraction(self, result: PipelineResult) -> float | None:
        """``result``'s training rate as a fraction of the FLOP-bound limit (SPEC §10): images/s ×
        GFLOP per training image ÷ the measured matrix-product GFLOP/s in the pipeline's precision."""
        if not self.limit:
            return None
        peak = self.limit["peak_gflops"].get(precision_of(result.pipeline, self.limit["device"]))
        return result.train_median * self.limit["gflop_per_image"] / peak if peak else None


def precision_of(pipeline: Pipeline, device: str) -> str:
    """The precision ``pipeline`` trains in on ``device`` (the reference pipeline: fp32)."""
    from longtail.engine.accel import Accel

    if pipeline.kind == "reference":
        return "fp32"
    return Accel(device=device, precision=pipeline.precision).resolved_precision


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
    from longtail.bench.pipelines import flop_limit, remeasure_peaks
    from longtail.data.profiles import longtail_counts

    context = mp.get_context("spawn")
    pipelines = pipelines_for(options)
    results = [PipelineResult(p) for p in pipelines]
    limit = flop_limit(shape, options, pipelines)  # measured before the pipelines' processes exist
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
            remeasure_peaks(limit, options)  # between the windows too: the highest is kept
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
    return ShapeResult(shape, num_images, results, profile, limit)
