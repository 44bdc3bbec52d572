"""``longtail list losses|schedules|samplers|posthoc|models|datasets``."""

from __future__ import annotations

import argparse

from longtail.registry import REGISTRIES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list what is registered (losses, models, ...)")
    parser.add_argument("kind", choices=sorted(REGISTRIES), help="which registry to list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    entries = REGISTRIES[args.kind].catalog()  # read from the source: no torch
    width = max((len(n) for n in entries), default=0)
    for name, summary in entries.items():
        print(f"{name:<{width}}  {summary}".rstrip())
    return 0
