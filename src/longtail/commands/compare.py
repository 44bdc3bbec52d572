"""``longtail compare DIR [DIR ...]``: finished runs side by side (balanced, many/medium/few-shot); a run
without test metrics (``eval.test=false``) shows "—", and at least one run must have them."""

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
    from longtail.engine.summary import NO_TEST, format_comparison, load_headline, run_labels

    rows = {label: load_headline(Path(name)) for label, name in zip(run_labels(args.runs), args.runs)}
    text = format_comparison(rows)  # refuses when no run has test metrics (all eval.test=false)
    if args.json:
        print(json.dumps({k: {"mean": m, "std": s} if m is not None else {"mean": None, "std": None, "note": NO_TEST}
                          for k, (m, s, _) in rows.items()}, indent=2))
        return 0
    print(text)
    return 0
