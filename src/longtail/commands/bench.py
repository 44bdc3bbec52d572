"""``longtail bench speed [...]``: the training-speed benchmark (same code as ``benchmarks/speed.py``)."""

from __future__ import annotations

import argparse


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
    from longtail.bench.speed import add_arguments

    add_arguments(speed)
    speed.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.bench.speed import options_from_args, run_speed

    run_speed(options_from_args(args))
    return 0
