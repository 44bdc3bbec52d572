"""The Fashion-MNIST-LT benchmark of every method (issue 6, item 4).

    python benchmarks/fmnist_lt.py [--out runs/fmnist-lt-bench] [--seeds 0,1,2] [--profiles exp,step]
                                   [--epochs N] [--jobs J] [--dry-run]

Trains ERM, RW, RS, CB-Focal, LDAM, LDAM-DRW and CDT on Fashion-MNIST-LT ρ = 100, long-tailed
(``exp``, ``configs/fashion-mnist-lt/*.yaml``) and step with μ = 0.5 (``step``,
``configs/fashion-mnist-lt/step100/*.yaml``), one run per seed, then evaluates ERM and CDT with the
post-hoc rules τ-norm (‖w‖^τ), N_c^τ and NCM, each rule's τ chosen by balanced accuracy on the run's
held-out split (3 images per class; ``longtail eval RUN --posthoc RULE --tune heldout``), never on
the test set. Finished runs are reused and killed runs resumed (``longtail.reproduce.runner.ensure_trained``).

Writes ``OUT/fmnist-lt.md`` (mean ± sample std over seeds of balanced accuracy and many / medium /
few-shot accuracy, last epoch, in %, per profile × method × post-hoc rule, plus the papers' orderings
checked on these numbers) and ``OUT/fmnist-lt.json`` (every per-seed number).

``--epochs N`` compresses the configs' 12-epoch recipe to N epochs the way the configs compress the
papers' 200: every epoch milestone (warm-up, lr decays, DRW / DRS / deferred start) is scaled by
N / 12 and rounded; lr decays that land on or after the last epoch, or on the same epoch as an
earlier one, are dropped. ``--jobs J`` trains J runs at once, each with ``cores / J`` threads (two
one-thread runs train ~10% more images per second on this 2-core CPU than one two-thread run).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
PROFILE_DIRS = {"exp": "fashion-mnist-lt", "step": "fashion-mnist-lt/step100"}
PROFILE_TITLES = {"exp": "long-tailed (exp) ρ=100", "step": "step ρ=100, μ=0.5"}
METHODS = ("erm", "rw", "rs", "cb-focal", "ldam", "ldam-drw", "cdt")
POSTHOC_METHODS = ("erm", "cdt")
POSTHOC_RULES = ("tau-norm", "nc-tau", "ncm")
METRICS = ("balanced_accuracy", "many", "medium", "few")
METRIC_TITLES = {"balanced_accuracy": "balanced acc.", "many": "many", "medium": "medium", "few": "few"}
# configs/fashion-mnist-lt/base.yaml on this 2-core CPU when idle (2026-12-01, bf16 + channels-last):
# one batch-128 ResNet-32 step costs 0.23 CPU-s (117 steps in 13.5 s on two threads; two one-thread
# runs side by side: 26 s each); a test evaluation (10,000 images) ~3 s of both cores.
STEP_CPU_SECONDS = 0.23
EVAL_SECONDS = 3.0
CORES = 2
# The config keys that count epochs, scaled by --epochs (rebalance.params keys by schedule).
EPOCH_PARAMS = ("start_epoch",)


def config_path(profile: str, method: str, configs: Path = CONFIGS) -> Path:
    """``configs/fashion-mnist-lt[/step100]/<method>.yaml``."""
    from longtail.errors import ConfigError

    if profile not in PROFILE_DIRS:
        raise ConfigError(f"unknown profile {profile!r}; choose from {', '.join(PROFILE_DIRS)}")
    path = configs / PROFILE_DIRS[profile] / f"{method}.yaml"
    if not path.is_file():
        raise ConfigError(f"no config {path} for method {method!r}; choose from {', '.join(METHODS)}")
    return path


def scaled_schedule(path: Path, overrides: Sequence[str], epochs: int) -> list[str]:
    """Overrides that compress the config's epoch schedule to ``epochs`` (see the module docstring).

    With the 12-epoch configs and ``epochs=6``: warm-up 1 → 1, lr decays (10, 11) → (5,) (11 · 6/12
    rounds to 6 = the number of epochs: dropped), DRW start 10 → 5."""
    from longtail.config import load_config
    from longtail.errors import ConfigError

    if epochs < 1:
        raise ConfigError(f"--epochs {epochs}: must be at least 1")
    config = load_config(path, list(overrides))
    factor = epochs / config.train.epochs

    def scale(value: int) -> int:
        return int(math.floor(value * factor + 0.5))

    milestones: list[int] = []
    for m in config.optim.milestones:
        scaled = scale(m)
        if 0 < scaled < epochs and scaled not in milestones:
            milestones.append(scaled)
    warmup = config.optim.warmup_epochs
    result = [f"train.epochs={epochs}",
              f"optim.warmup_epochs={max(1, scale(warmup)) if warmup > 0 else 0}",
              "optim.milestones=[" + ", ".join(map(str, milestones)) + "]"]
    for key in EPOCH_PARAMS:
        if key in config.rebalance.params:
            result.append(f"rebalance.params.{key}={scale(int(config.rebalance.params[key]))}")
    return result


def plan_runs(out: Path, profiles: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
              overrides: Sequence[str], configs: Path = CONFIGS, epochs: int | dict[str, int] | None = None,
              extra: Sequence[str] = ()) -> list[Any]:
    """One :class:`longtail.reproduce.runner.PlannedRun` per (profile, method, seed) under
    ``OUT/<profile>/<method>/seed-<s>``: ``overrides``, then the schedule compressed to ``epochs``
    (when given), then ``extra``."""
    from longtail.reproduce.runner import PlannedRun

    runs = []
    for p in profiles:
        for m in methods:
            path = config_path(p, m, configs)
            n = epochs.get(p) if isinstance(epochs, dict) else epochs
            schedule = scaled_schedule(path, overrides, n) if n is not None else []
            every = (*overrides, *schedule, *extra)
            runs += [PlannedRun(path, every, s, out / p / m / f"seed-{s}") for s in seeds]
    return runs


def train_parallel(runs: Sequence[Any], jobs: int, log: Callable[[str], None] = print) -> dict[str, str]:
    """Train the unfinished ``runs``, ``jobs`` at a time in worker processes with ``cores // jobs``
    threads each (:func:`longtail.tune.train_runs`); returns {run_dir: error} for the runs that failed."""
    from longtail.tune import train_runs

    return {str(path): error for path, error in train_runs(runs, jobs, log=log).items()}


def estimate_budget(runs: Sequence[Any], out: Path, jobs: int = 1) -> dict[str, Any]:
    """Total epochs and estimated wall seconds: per run, epochs × steps/epoch × STEP_CPU_SECONDS
    / (threads per job) + evaluations × EVAL_SECONDS, or the measured ``seconds_per_epoch`` of a
    finished run of the same profile and method found under ``out``; the runs' sum divided by
    ``jobs`` run at once."""
    from longtail.data.profiles import longtail_counts
    from longtail.reproduce.runner import run_config

    total_epochs, total_seconds, lines = 0, 0.0, []
    schedule: dict[str, set[tuple[int, int, int]]] = {}
    for run in runs:
        config = run_config(run)
        d = config.data
        finished = run.run_dir / "results.json"
        if finished.is_file():  # the counts it trained on (held-out split already taken out)
            n_train = sum(json.loads(finished.read_text())["class_counts"])
        else:  # Fashion-MNIST's N_max = 6000
            counts = longtail_counts(10, 6000, d.imbalance_ratio, d.profile, d.minority_fraction)
            n_train = sum(counts) - 10 * d.heldout_per_class
        steps = math.ceil(n_train / config.optim.batch_size)
        epochs = config.train.epochs
        schedule.setdefault(run.run_dir.parent.parent.name, set()).add((epochs, steps, config.optim.batch_size))
        evals = sum(1 for e in range(1, epochs + 1)
                    if e == epochs or (config.eval.every > 0 and e % config.eval.every == 0))
        per_epoch, source = steps * STEP_CPU_SECONDS / max(1, CORES // jobs), "estimated"
        measured = sorted(run.run_dir.parent.glob("seed-*/results.json"))
        if measured:
            timing = json.loads(measured[0].read_text()).get("timing", {})
            if timing.get("seconds_per_epoch"):
                per_epoch, source = float(timing["seconds_per_epoch"]), "measured"
        seconds = 0.0 if (run.run_dir / "results.json").is_file() else epochs * per_epoch + evals * EVAL_SECONDS
        total_epochs += epochs
        total_seconds += seconds
        lines.append(f"  {run.run_dir.relative_to(out)}: {epochs} ep × {steps} steps, "
                     f"{per_epoch:.0f} s/epoch ({source}), {'done' if seconds == 0 else f'~{seconds / 60:.0f} min'}")
    first = run_config(runs[0]) if runs else None
    total_seconds /= jobs
    return {"runs": len(runs), "epochs": total_epochs, "seconds": total_seconds, "lines": lines,
            "schedule": {p: sorted(v) for p, v in schedule.items()}, "jobs": jobs,
            "heldout": first.data.heldout_per_class if first else None,
            "many": first.eval.many_threshold if first else None, "few": first.eval.few_threshold if first else None}


def posthoc_result(run_dir: Path, rule: str) -> dict[str, Any]:
    """``longtail eval RUN --posthoc RULE [--tune heldout]``; an ``eval-<rule>.json`` newer than the
    run's ``results.json`` and tuned on the held-out split is reused."""
    from longtail.posthoc.evaluate import evaluate_run
    from longtail.registry import POSTHOC

    has_param = getattr(POSTHOC.get(rule), "param_name", None) is not None
    cached = run_dir / f"eval-{rule}.json"
    if cached.is_file() and cached.stat().st_mtime >= (run_dir / "results.json").stat().st_mtime:
        saved = json.loads(cached.read_text())
        if not has_param or saved.get("tuning", {}).get("split") == "heldout":
            return saved
    return evaluate_run(run_dir, rule, None, "heldout" if has_param else None)


def numbers(result: dict[str, Any]) -> dict[str, float | None]:
    """Balanced accuracy and many / medium / few-shot accuracy in % (None for an empty group)."""
    out: dict[str, float | None] = {"balanced_accuracy": 100.0 * result["balanced_accuracy"]}
    for group in ("many", "medium", "few"):
        acc = result["groups"][group]["accuracy"]
        out[group] = None if acc is None else 100.0 * acc
    return out


def label(method: str, rule: str | None) -> str:
    from longtail.reproduce.tables import METHOD_LABELS, POSTHOC_LABELS

    return METHOD_LABELS.get(method, method) + (f" + {POSTHOC_LABELS.get(rule, rule)}" if rule else "")


def _mean(per_seed: dict[str, dict[str, float | None]], metric: str = "balanced_accuracy") -> float | None:
    from longtail.reproduce.runner import mean_std

    return mean_std([v[metric] for v in per_seed.values()])[0]


def orderings(rows: dict[str, dict[str, dict[str, dict[str, float | None]]]], profiles: Sequence[str]) -> list[str]:
    """The papers' claims checked on the mean balanced accuracies: LDAM-DRW > LDAM > ERM, CDT > ERM,
    and every post-hoc rule applied to ERM beats plain ERM. ``rows[profile][key][seed][metric]`` with
    key ``method`` or ``method+rule``."""
    lines = []
    for profile in profiles:
        means = {key: _mean(per_seed) for key, per_seed in rows.get(profile, {}).items()}

        lines.append(_claim(profile, means, ("ldam-drw", "ldam", "erm"), "LDAM-DRW > LDAM > ERM"))
        lines.append(_claim(profile, means, ("cdt", "erm"), "CDT > ERM"))
        for rule in POSTHOC_RULES:
            lines.append(_claim(profile, means, (f"erm+{rule}", "erm"), f"{label('erm', rule)} > ERM"))
    return lines


def _claim(profile: str, means: dict[str, float | None], chain: Sequence[str], name: str) -> str:
    """One ordering line: HOLDS when the mean balanced accuracies strictly decrease along ``chain``."""
    values = [means.get(k) for k in chain]
    if any(v is None for v in values):
        missing = [k for k, v in zip(chain, values) if v is None]
        return f"- {PROFILE_TITLES[profile]}: {name}: not measured (no runs of {', '.join(missing)})"
    holds = all(a > b for a, b in zip(values, values[1:]))
    shown = " vs ".join(f"{_key_label(k)} {v:.2f}" for k, v in zip(chain, values))
    return f"- {PROFILE_TITLES[profile]}: {name}: {'HOLDS' if holds else 'DOES NOT HOLD'} ({shown})"


def _key_label(key: str) -> str:
    method, _, rule = key.partition("+")
    return label(method, rule or None)


def _cell(values: list[float | None]) -> str:
    from longtail.reproduce.runner import mean_std

    mean, std = mean_std(values)
    if mean is None:
        return "—"
    return f"{mean:.2f}" + ("" if std is None else f" ± {std:.2f}")


def budget_text(budget: dict[str, Any], trained_seconds: float) -> str:
    """The budget sentence of ``fmnist-lt.md``: epochs and steps per profile, runs at once, and the
    training time measured (sum of the runs' ``timing.train_seconds``)."""
    parts = [f"{PROFILE_TITLES[p].split(' ρ')[0]} {e} epochs × {n} steps of {b}"
             for p, triples in budget["schedule"].items() for e, n, b in triples]
    threads = max(1, CORES // budget["jobs"])
    return (f"Budget: {budget['runs']} training runs of ResNet-32 — {'; '.join(parts)} — {budget['jobs']} at a time "
            f"with {threads} thread(s) each on this {CORES}-core CPU: {trained_seconds / 3600:.1f} h of training "
            f"measured (sum over runs, evaluations included), ~{trained_seconds / budget['jobs'] / 3600:.1f} h of wall time.")


def markdown(rows: dict[str, dict[str, dict[str, dict[str, float | None]]]], profiles: Sequence[str],
             seeds: Sequence[int], budget: dict[str, Any], command: str, failures: list[str],
             trained_seconds: float = 0.0) -> str:
    """``fmnist-lt.md``: one table per profile, then the orderings."""
    lines = ["# Fashion-MNIST-LT benchmark", "",
             f"Command: `{command}`", "",
             budget_text(budget, trained_seconds) + " Last epoch, mean ± sample std over seeds "
             f"{','.join(map(str, seeds))}, accuracy in % on the balanced test set. Post-hoc τ chosen by "
             f"balanced accuracy on the held-out split ({budget['heldout']} images per class), never on the test set. "
             f"Groups by training-set size: many > {budget['many']}, few < {budget['few']} images. "
             "An ordering HOLDS when the means are strictly ordered (the std is in the tables).", ""]
    for profile in profiles:
        lines += [f"## {PROFILE_TITLES[profile]}", "",
                  "| method | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " | seeds |",
                  "|---|" + "---|" * (len(METRICS) + 1)]
        for key, per_seed in rows.get(profile, {}).items():
            cells = [_cell([v[m] for v in per_seed.values()]) for m in METRICS]
            lines.append(f"| {_key_label(key)} | " + " | ".join(cells) + f" | {len(per_seed)} |")
        lines.append("")
    lines += ["## The papers' orderings, as measured (mean balanced accuracy)", "", *orderings(rows, profiles), ""]
    if failures:
        lines += ["## Failures", "", *(f"- {f}" for f in failures), ""]
    return "\n".join(lines)


def run_benchmark(out: Path, seeds: Sequence[int], profiles: Sequence[str], methods: Sequence[str] = METHODS,
                  rules: Sequence[str] = POSTHOC_RULES, overrides: Sequence[str] = (), dry_run: bool = False,
                  command: str = "", log: Callable[[str], None] = print,
                  train: Callable[..., dict[str, Any]] | None = None, epochs: int | dict[str, int] | None = None,
                  extra: Sequence[str] = (), jobs: int = 1) -> Path | None:
    """Plan, state the budget, train (reusing / resuming; ``jobs`` runs at once), evaluate, write
    ``OUT/fmnist-lt.md``."""
    from longtail.errors import ConfigError, LongtailError
    from longtail.reproduce.runner import ensure_trained

    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    runs = plan_runs(out, profiles, methods, seeds, overrides, epochs=epochs, extra=extra)
    budget = estimate_budget(runs, out, jobs)
    post = [m for m in POSTHOC_METHODS if m in methods]
    log(f"Fashion-MNIST-LT benchmark: {len(profiles)} profile(s) × {len(methods)} method(s) × {len(seeds)} seed(s) "
        f"= {budget['runs']} runs, {budget['epochs']} epochs; post-hoc {', '.join(rules) or 'none'} on "
        f"{', '.join(post) or 'none'} (τ tuned on the held-out split)")
    log(f"Budget: ~{budget['seconds'] / 3600:.1f} h of training left on this {CORES}-core CPU, {jobs} run(s) at once "
        f"({STEP_CPU_SECONDS} CPU-s per batch-128 step, {EVAL_SECONDS:.0f} s per test evaluation, or the "
        "measured s/epoch of finished runs):")
    for line in budget["lines"]:
        log(line)
    if dry_run:
        return None
    rows: dict[str, dict[str, dict[str, dict[str, float | None]]]] = {}
    per_seed_raw: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.perf_counter()
    failed = train_parallel(runs, jobs, log) if jobs > 1 and train is None else {}
    trained_seconds = 0.0
    for run in runs:
        profile, method = run.run_dir.parent.parent.name, run.run_dir.parent.name
        if str(run.run_dir) in failed:
            failures.append(f"{profile} {method} seed {run.seed}: {failed[str(run.run_dir)]}")
            continue
        try:
            results = ensure_trained(run, log=log) if train is None else ensure_trained(run, train, log)
            trained_seconds += float(results.get("timing", {}).get("train_seconds") or 0.0)
            entries = [(method, numbers(results))]
            if method in POSTHOC_METHODS:
                for rule in rules:
                    tuned = posthoc_result(run.run_dir, rule)
                    entries.append((f"{method}+{rule}", numbers(tuned)))
                    per_seed_raw.append({"profile": profile, "key": f"{method}+{rule}", "seed": run.seed,
                                         "param": tuned.get("param")})
        except LongtailError as error:
            failures.append(f"{profile} {method} seed {run.seed}: {error}")
            log(f"FAILED {run.run_dir}: {error}")
            continue
        for key, values in entries:
            rows.setdefault(profile, {}).setdefault(key, {})[str(run.seed)] = values
    log(f"finished in {time.perf_counter() - started:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, profiles, seeds, budget, command, failures, trained_seconds)
    (out / "fmnist-lt.md").write_text(text)
    (out / "fmnist-lt.json").write_text(json.dumps({"rows": rows, "posthoc_params": per_seed_raw,
                                                    "seeds": list(seeds), "profiles": list(profiles),
                                                    "orderings": orderings(rows, profiles)}, indent=1))
    log(f"wrote {out / 'fmnist-lt.md'}")
    return out / "fmnist-lt.md"


def _list(text: str, allowed: Sequence[str] | None, what: str) -> list[str]:
    from longtail.errors import ConfigError

    items = [t.strip() for t in text.split(",") if t.strip()]
    if allowed is not None:
        bad = [t for t in items if t not in allowed]
        if bad or not items:
            raise ConfigError(f"--{what} {text!r}: choose from {', '.join(allowed)} (comma-separated)")
    return items


def parse_epochs(text: str | None, profiles: Sequence[str]) -> int | dict[str, int] | None:
    """``--epochs``: ``8`` (every profile) or ``exp=12,step=6`` (profiles not named keep the configs' 12)."""
    from longtail.errors import ConfigError

    if text is None:
        return None
    hint = "give a positive integer (--epochs 8) or one per profile (--epochs exp=12,step=6)"
    try:
        if "=" not in text:
            value = int(text)
            if value < 1:
                raise ValueError
            return value
        result = {}
        for part in text.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in PROFILE_DIRS or int(value) < 1:
                raise ValueError
            result[name] = int(value)
        return result
    except ValueError:
        raise ConfigError(f"--epochs {text!r}: {hint}; profiles are {', '.join(PROFILE_DIRS)}") from None


def main(argv: Sequence[str] | None = None) -> int:
    from longtail.errors import ConfigError, LongtailError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/fmnist-lt-bench", help="directory of the runs and the tables")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--profiles", default="exp,step", help="exp (long-tailed), step, or both")
    parser.add_argument("--methods", default=",".join(METHODS), help="subset of the methods")
    parser.add_argument("--posthoc", default=",".join(POSTHOC_RULES), help="post-hoc rules for ERM/CDT ('' = none)")
    parser.add_argument("--epochs",
                        help="compress the 12-epoch recipe to N epochs (warm-up, lr decays, DRW start scaled); "
                             "N for every profile or per profile, e.g. exp=12,step=6")
    parser.add_argument("--jobs", type=int, default=1,
                        help=f"training runs at once, each with {CORES} / J threads (default 1)")
    parser.add_argument("--data-root", help="folder of the Fashion-MNIST IDX files (data.root)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and budget, train nothing")
    args = parser.parse_args(argv)
    try:
        try:
            seeds = [int(s) for s in _list(args.seeds, None, "seeds")]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r} must be comma-separated integers, e.g. 0,1,2") from None
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"--seeds {args.seeds!r} must be distinct integers, e.g. 0,1,2")
        profiles = _list(args.profiles, tuple(PROFILE_DIRS), "profiles")
        methods = _list(args.methods, METHODS, "methods")
        rules = _list(args.posthoc, POSTHOC_RULES, "posthoc") if args.posthoc.strip() else []
        epochs = parse_epochs(args.epochs, profiles)
        overrides = [f"data.root={args.data_root}"] if args.data_root else []
        command = "python benchmarks/fmnist_lt.py " + " ".join(sys.argv[1:] if argv is None else argv)
        run_benchmark(Path(args.out), seeds, profiles, methods, rules, overrides, args.dry_run, command.strip(),
                      epochs=epochs, extra=args.set, jobs=args.jobs)
    except LongtailError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
