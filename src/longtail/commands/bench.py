"""``longtail bench speed [...]``: the training-speed benchmark (same code as ``benchmarks/speed.py``)."""

from __future__ import annotations

import argparse

from longtail.bench.harness import PRECISION_CHOICES, RECIPE_STEPS, SHAPES, SpeedOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks: training speed against the reference pipeline")
    kinds = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    speed = kinds.add_parser(
        "speed",
        help="training/evaluation images/s of longtail's pipeline vs the reference code's, interleaved",
        description="Training and evaluation images/s, peak memory and the effect of each optimisation, "
        "longtail's default pipeline (b) against the straightforward reference pipeline (a), measured "
        "interleaved in one run. The last line is 'ratio: X.XX' (b / a training images/s).",
    )
    add_arguments(speed)
    speed.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.bench.speed import options_from_args, run_speed

    run_speed(options_from_args(args))
    return 0


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

    runtime = RuntimeConfig()
    defaults = SpeedOptions(channels_last=runtime.channels_last, allocator=runtime.allocator)
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
    add("--precision", choices=PRECISION_CHOICES, default=None,
        help=f"(b) autocast precision (default: runtime.precision={runtime.precision} resolved for this machine)")
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
