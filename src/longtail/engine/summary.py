"""Summaries over several seeds: mean ± sample standard deviation of the headline metrics (SPEC §6)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUMMARY_METRICS = ("top1", "top5", "balanced_accuracy", "many", "medium", "few")


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
    return json.loads((Path(directory) / "results.json").read_text())
