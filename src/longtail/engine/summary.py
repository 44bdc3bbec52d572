"""Summaries over several seeds: mean ± sample standard deviation of the headline metrics (SPEC §6)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longtail.errors import LongtailError

SUMMARY_METRICS = ("top1", "top5", "balanced_accuracy", "many", "medium", "few")
COMPARE_COLUMNS = ("balanced_accuracy", "top5", "many", "medium", "few")  # longtail compare


# What stands in for the numbers of a run trained with eval.test=false (a -heldout run, a tune candidate)
NO_TEST = "no test metrics: eval.test=false"
NO_TEST_WHY = ("a -heldout run or a `longtail tune` candidate never reads the test set: its held-out split only "
               "chooses τ or a tuned value; compare the run trained on the full set")


def has_test_metrics(results: dict[str, Any]) -> bool:
    """False for the ``results.json`` of a run trained with ``eval.test=false`` (held-out metrics only)."""
    return "top1" in results


def headline(results: dict[str, Any]) -> dict[str, float | None]:
    """The summarised numbers of one run's ``results.json`` (group accuracies None when empty; every
    number None for a run without test metrics, ``eval.test=false``). Also reads the ``heldout`` report."""
    if not has_test_metrics(results):
        return dict.fromkeys(SUMMARY_METRICS)
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


def _mean_std(heads: dict[int, dict[str, float | None]]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    mean, std = {}, {}
    for key in SUMMARY_METRICS:
        mean[key], std[key] = mean_std([h[key] for h in heads.values()])
    return mean, std


def summarize(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``{"seeds", "runs": {seed: headline}, "mean": {...}, "std": {...}}`` from seed → results.

    Runs trained with ``eval.test=false`` have no test metrics: their ``mean`` / ``std`` / ``runs`` numbers
    are None, ``note`` says why, and ``heldout`` holds the same summary of their held-out split's report."""
    heads = {seed: headline(res) for seed, res in sorted(runs.items())}
    mean, std = _mean_std(heads)
    out = {"seeds": sorted(runs), "runs": {str(s): h for s, h in heads.items()}, "mean": mean, "std": std,
           "std_kind": "sample (n-1)", "reported": "last_epoch"}
    if not all(has_test_metrics(res) for res in runs.values()):
        held = {seed: headline(res["heldout"]) for seed, res in sorted(runs.items()) if res.get("heldout")}
        held_mean, held_std = _mean_std(held)
        out["note"] = NO_TEST
        out["heldout"] = {"runs": {str(s): h for s, h in held.items()}, "mean": held_mean, "std": held_std}
    return out


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table, in %: one row per seed and a mean ± std row (for runs without test metrics,
    ``eval.test=false``: the held-out split's, titled so)."""
    part = summary
    title = []
    if "heldout" in summary and all(v is None for v in summary["mean"].values()):
        part = summary["heldout"]
        title = [f"held-out split ({NO_TEST})"]
    header = ["seed", *SUMMARY_METRICS]
    rows = [[s, *(_pct(h[k]) for k in SUMMARY_METRICS)] for s, h in part["runs"].items()]
    ms = []
    for key in SUMMARY_METRICS:
        m, s = part["mean"][key], part["std"][key]
        ms.append("—" if m is None else f"{100 * m:.2f}" + ("" if s is None else f" ± {100 * s:.2f}"))
    rows.append(["mean", *ms])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join(title + lines)


def load_results(directory: str | Path) -> dict[str, Any]:
    from longtail.tracking import read_json

    return read_json(Path(directory) / "results.json")


def load_headline(directory: Path) -> tuple[dict[str, float | None] | None, dict[str, float | None] | None, dict]:
    """(mean headline, std or None, group class counts) of a single run or a --seeds summary; the mean is
    None for a run trained with ``eval.test=false`` (held-out metrics only, no test metrics)."""
    summary = directory / "summary.json"
    results = directory / "results.json"
    from longtail.tracking import read_json

    if summary.is_file():
        data = read_json(summary, ("mean", "std"))
        if "heldout" in data and all(v is None for v in data["mean"].values()):
            return None, None, {}
        first = next(iter(sorted(directory.glob("seed-*/results.json"))), None)
        groups = read_json(first, ("groups",))["groups"] if first else {}
        return data["mean"], data["std"], groups
    if results.is_file():
        raw = read_json(results, ())
        if isinstance(raw, dict) and not has_test_metrics(raw) and "heldout" in raw:
            return None, None, {}
        data = read_json(results, ("groups", "top1", "balanced_accuracy"))
        return headline(data), None, data["groups"]
    raise LongtailError(
        f"{directory} has no results.json: train it first (longtail train CONFIG --out {directory}) "
        "or resume it (longtail train --resume DIR)"
    )


def run_labels(paths: list[str]) -> list[str]:
    """``compare``'s row names: each path's shortest trailing part that no other path shares, so
    ``a/seed-0 b/seed-0`` are two rows ``a/seed-0`` and ``b/seed-0`` (the last component alone merged them
    into one); a directory given twice is one row per argument (``x``, ``x (2)``)."""
    parts = [Path(p).parts or (p,) for p in paths]
    depth = [1] * len(paths)

    def label(i: int) -> str:
        return "/".join(parts[i][-depth[i]:])

    while True:
        labels = [label(i) for i in range(len(paths))]
        clashes = [i for i, lab in enumerate(labels) if labels.count(lab) > 1 and depth[i] < len(parts[i])]
        if not clashes:
            break
        for i in clashes:
            depth[i] += 1
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


def format_comparison(rows: dict[str, tuple[dict[str, float | None] | None, dict[str, float | None] | None, dict]]) -> str:
    """``longtail compare``'s table: one line per run (``load_headline``), in %, mean ± std for seed summaries;
    "—" in every column of a run without test metrics (``eval.test=false``), with a footnote. At least one
    run must have test metrics (else ``LongtailError``)."""
    with_test = [row for row in rows.values() if row[0] is not None]
    if not with_test:
        raise LongtailError(f"{', '.join(rows)}: no test metrics to compare (eval.test=false; {NO_TEST_WHY}; for a tune candidate "
                            "the runs under OUT/final/, or read OUT/tune.md)")
    groups = with_test[0][2]

    def label(column: str) -> str:
        if column in groups:
            return f"{column} ({len(groups[column].get('classes', []))} cl.)"
        return {"balanced_accuracy": "balanced acc", "top5": "top-5"}.get(column, column)

    def cell(mean: dict | None, std: dict | None, column: str) -> str:
        if mean is None:
            return "—"
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
    missing = [run for run, (mean, _, _) in rows.items() if mean is None]
    if missing:
        lines.append(f"— {', '.join(missing)}: {NO_TEST} ({NO_TEST_WHY})")
    return "\n".join(lines)
