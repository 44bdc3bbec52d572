"""Summaries over several seeds: mean ± sample standard deviation of the headline metrics (SPEC §6)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longtail.errors import LongtailError

SUMMARY_METRICS = ("top1", "top5", "balanced_accuracy", "many", "medium", "few")
COMPARE_COLUMNS = ("balanced_accuracy", "top5", "many", "medium", "few")  # longtail compare


def headline(results: dict[str, Any]) -> dict[str, float | None]:
    """The summarised numbers of one run's ``results.json`` (group accuracies None when empty)."""
    out: dict[str, float | None] = {k: results.get(k) for k in ("top1", "top5", "balanced_accuracy")}
    for group in ("many", "medium", "few"):
        out[group] = results["groups"][group]["accuracy"]
    return out


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n − 1); None when no value, std None for one value."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    mean = sum(present) / len(present)
    if len(present) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in present) / (len(present) - 1)
    return mean, math.sqrt(var)


def summarize(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``{"seeds", "runs": {seed: headline}, "mean": {...}, "std": {...}}`` from seed → results."""
    heads = {seed: headline(res) for seed, res in sorted(runs.items())}
    mean, std = {}, {}
    for key in SUMMARY_METRICS:
        mean[key], std[key] = mean_std([h[key] for h in heads.values()])
    return {"seeds": sorted(runs), "runs": {str(s): h for s, h in heads.items()}, "mean": mean, "std": std,
            "std_kind": "sample (n-1)", "reported": "last_epoch"}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table, in %: one row per seed and a mean ± std row."""
    header = ["seed", *SUMMARY_METRICS]
    rows = [[s, *(_pct(h[k]) for k in SUMMARY_METRICS)] for s, h in summary["runs"].items()]
    ms = []
    for key in SUMMARY_METRICS:
        m, s = summary["mean"][key], summary["std"][key]
        ms.append("—" if m is None else f"{100 * m:.2f}" + ("" if s is None else f" ± {100 * s:.2f}"))
    rows.append(["mean", *ms])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join(lines)


def load_results(directory: str | Path) -> dict[str, Any]:
    from longtail.tracking import read_json

    return read_json(Path(directory) / "results.json")


def load_headline(directory: Path) -> tuple[dict[str, float | None], dict[str, float | None] | None, dict]:
    """(mean headline, std or None, group class counts) of a single run or a --seeds summary."""
    summary = directory / "summary.json"
    results = directory / "results.json"
    from longtail.tracking import read_json

    if summary.is_file():
        data = read_json(summary, ("mean", "std"))
        first = next(iter(sorted(directory.glob("seed-*/results.json"))), None)
        groups = read_json(first, ("groups",))["groups"] if first else {}
        return data["mean"], data["std"], groups
    if results.is_file():
        raw = read_json(results, ())
        if "top1" not in raw and "heldout" in raw:
            raise LongtailError(f"{directory} is a `longtail tune` candidate (eval.test=false): it has held-out "
                                "metrics only, never test metrics; compare the runs under OUT/final/ (or read OUT/tune.md)")
        data = read_json(results, ("groups", "top1", "balanced_accuracy"))
        return headline(data), None, data["groups"]
    raise LongtailError(
        f"{directory} has no results.json: train it first (longtail train CONFIG --out {directory}) "
        "or resume it (longtail train --resume DIR)"
    )


def format_comparison(rows: dict[str, tuple[dict[str, float | None], dict[str, float | None] | None, dict]]) -> str:
    """``longtail compare``'s table: one line per run (``load_headline``), in %, mean ± std for seed summaries."""
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

    header = ["run", *(label(c) for c in COMPARE_COLUMNS)]
    table = [header] + [[run, *(cell(m, s, c) for c in COMPARE_COLUMNS)] for run, (m, s, _) in rows.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("(test set, last epoch; balanced acc = mean per-class accuracy = top-1 on the balanced test set)")
    return "\n".join(lines)
