"""``longtail compare DIR [DIR ...]``: finished runs side by side (balanced, many/medium/few-shot)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from longtail.errors import LongtailError

COLUMNS = ("balanced_accuracy", "top5", "many", "medium", "few")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="print finished runs side by side (balanced accuracy, shot groups)"
    )
    parser.add_argument("runs", nargs="+", metavar="DIR", help="run directories (with results.json or summary.json)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.set_defaults(func=run)


def _load(directory: Path) -> tuple[dict[str, float | None], dict[str, float | None] | None, dict]:
    """(mean headline, std or None, group class counts) of a single run or a --seeds summary."""
    from longtail.engine.summary import headline

    summary = directory / "summary.json"
    results = directory / "results.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        first = next(iter(sorted(directory.glob("seed-*/results.json"))), None)
        groups = json.loads(first.read_text())["groups"] if first else {}
        return data["mean"], data["std"], groups
    if results.is_file():
        data = json.loads(results.read_text())
        return headline(data), None, data["groups"]
    raise LongtailError(
        f"{directory} has no results.json: train it first (longtail train CONFIG --out {directory}) "
        "or resume it (longtail train --resume DIR)"
    )


def run(args: argparse.Namespace) -> int:
    rows = {}
    for name in args.runs:
        directory = Path(name)
        rows[directory.name or name] = _load(directory)
    if args.json:
        print(json.dumps({k: {"mean": m, "std": s} for k, (m, s, _) in rows.items()}, indent=2))
        return 0
    groups = next(iter(rows.values()))[2]

    def label(column: str) -> str:
        if column in groups:
            return f"{column} ({len(groups[column].get('classes', []))} cl.)"
        return {"balanced_accuracy": "balanced acc", "top5": "top-5"}.get(column, column)

    def cell(mean: dict, std: dict | None, column: str) -> str:
        value = mean.get(column)
        if value is None:
            return "empty"
        text = f"{100 * value:.2f}"
        if std and std.get(column) is not None:
            text += f" ± {100 * std[column]:.2f}"
        return text

    header = ["run", *(label(c) for c in COLUMNS)]
    table = [header] + [[run, *(cell(m, s, c) for c in COLUMNS)] for run, (m, s, _) in rows.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("(test set, last epoch; balanced acc = mean per-class accuracy = top-1 on the balanced test set)")
    return 0
