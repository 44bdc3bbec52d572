"""``longtail compare DIR [DIR ...]``: finished runs side by side (balanced, many/medium/few-shot)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="print finished runs side by side (balanced accuracy, shot groups)"
    )
    parser.add_argument("runs", nargs="+", metavar="DIR", help="run directories (with results.json or summary.json)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.engine.summary import format_comparison, load_headline

    rows = {Path(name).name or name: load_headline(Path(name)) for name in args.runs}
    if args.json:
        print(json.dumps({k: {"mean": m, "std": s} for k, (m, s, _) in rows.items()}, indent=2))
        return 0
    print(format_comparison(rows))
    return 0
