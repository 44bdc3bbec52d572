"""``longtail tune``: hyper-parameters chosen on a held-out split, then retrained (CDT appendix B.6).

The protocol (SPEC §10). Every grid point (the product of the grids) × seed is a *candidate run*:
the config with the point's values, ``data.heldout_per_class = K`` (K training images per class held
out as a balanced validation split; classes with K or fewer images are left out of it and named) and
``eval.test = false`` — the engine then never reads the test split, evaluates on the held-out split and
``results.json`` holds held-out metrics only. Each candidate is scored by balanced accuracy on its
held-out split, from its reloaded last checkpoint (fp32 features); with a post-hoc rule (``--posthoc
nc-tau``) the rule's parameter is chosen per candidate on the same split and the candidate's score is
its best (a joint choice of the point and τ). Scores are averaged over seeds; the choice follows
:func:`longtail.selection.choose` (best mean score; ties to the setting closest to neutral, then the
smaller, key by key in grid order, τ last). The chosen point is retrained on the full training set
(``heldout_per_class = 0``, test evaluation on) once per seed, and evaluated on the test set once —
with the chosen τ applied when a post-hoc rule was tuned.

Runs are :class:`longtail.reproduce.runner.PlannedRun` s trained by ``ensure_trained``: finished ones
are reused, killed ones resumed exactly (``fit(resume=True)``). ``jobs > 1`` trains that many runs side
by side in worker processes with ``cores / jobs`` threads each. ``longtail reproduce cdt-table9``
builds its plans with :func:`build_plan` and runs them with :func:`run_tune`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longtail.errors import ConfigError, LongtailError
from longtail.reproduce.runner import PlannedRun, ensure_trained
from longtail.selection import TIE_RULE, choose

# Keys the protocol sets itself; a grid over them would defeat it.
RESERVED_KEYS = ("data.heldout_per_class", "eval.test", "train.seed", "data.root")
DEFAULT_HELDOUT_PER_CLASS = 3  # CDT appendix B.6: K = 3 for CIFAR (10 for iNaturalist)


# ---------------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """One tuned config key and its values (``--grid KEY=V1,V2,...``)."""

    key: str
    values: tuple[Any, ...]


def parse_grid(text: str) -> Grid:
    """``"loss.params.gamma=0,0.1,0.2"`` → ``Grid("loss.params.gamma", (0, 0.1, 0.2))`` (YAML values)."""
    from longtail.config import parse_value

    key, sep, values = text.partition("=")
    key = key.strip()
    parsed = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
    if not sep or not key or not parsed:
        raise ConfigError(f"--grid {text!r}: write KEY=V1,V2,..., e.g. --grid loss.params.gamma=0,0.1,0.2")
    if len(set(map(repr, parsed))) != len(parsed):
        raise ConfigError(f"--grid {text!r} repeats a value; give each value once")
    if key in RESERVED_KEYS:
        raise ConfigError(f"--grid {key}: this key is set by the tuning protocol itself; tune another key "
                          "(use --heldout-per-class / --seeds for K and the seeds)")
    return Grid(key, tuple(parsed))


@dataclass
class Candidate:
    """One grid point and its run per seed."""

    point: tuple[Any, ...]
    runs: dict[int, PlannedRun]


@dataclass
class TunePlan:
    """What :func:`run_tune` trains: the candidates, and how to make the final run of a point."""

    grids: list[Grid]
    seeds: list[int]
    candidates: list[Candidate]
    final_config: Path
    final_prefix: tuple[str, ...]  # overrides before the point's
    final_suffix: tuple[str, ...]  # overrides after the point's
    final_dir: Callable[[tuple[Any, ...], int], Path]
    neutral: list[float]
    posthoc: str | None = None
    posthoc_grid: list[float] | None = None
    config_label: str = ""

    @property
    def keys(self) -> list[str]:
        return [g.key for g in self.grids]

    def point_overrides(self, point: Sequence[Any]) -> tuple[str, ...]:
        return tuple(f"{g.key}={_yaml_value(v)}" for g, v in zip(self.grids, point))

    def final_run(self, point: tuple[Any, ...], seed: int) -> PlannedRun:
        overrides = (*self.final_prefix, *self.point_overrides(point), *self.final_suffix)
        return PlannedRun(self.final_config, overrides, seed, self.final_dir(point, seed))

    def candidate_runs(self) -> list[PlannedRun]:
        return [run for c in self.candidates for run in c.runs.values()]


def _yaml_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)  # numbers, booleans and lists as YAML reads them back


def point_tag(keys: Sequence[str], point: Sequence[Any]) -> str:
    """Directory name of a grid point: ``gamma-0.1`` (``gamma-0.1_max_m-0.5`` for several keys; the
    full key where two keys end alike)."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = [s if short.count(s) == 1 else k for s, k in zip(short, keys)]
    parts = []
    for name, value in zip(names, point):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{name}-{text}".replace("/", "-").replace(" ", ""))
    return "_".join(parts)


def neutral_value(config: Any, key: str) -> float:
    """Neutral value of a tuned key: the loss's / schedule's declared ``neutral_params`` (e.g. LDAM's
    s = 1), else 0 (γ = 0 for CDT, …)."""
    from longtail.registry import LOSSES, SCHEDULES

    section, _, rest = key.partition(".")
    sub, _, name = rest.partition(".")
    if sub == "params" and name and "." not in name:
        registry, chosen = {"loss": (LOSSES, config.loss.name), "rebalance": (SCHEDULES, config.rebalance.name)}.get(
            section, (None, None))
        if registry is not None:
            try:
                declared = getattr(registry.get(chosen), "neutral_params", {}) or {}
            except LongtailError:
                declared = {}
            return float(declared.get(name, 0.0))
    return 0.0


def build_plan(
    grids: Sequence[Grid],
    seeds: Sequence[int],
    candidate_config: Path,
    candidate_prefix: Sequence[str],
    candidate_suffix: Sequence[str],
    candidate_dir: Callable[[tuple[Any, ...], int], Path],
    final_config: Path,
    final_prefix: Sequence[str],
    final_suffix: Sequence[str],
    final_dir: Callable[[tuple[Any, ...], int], Path],
    posthoc: str | None = None,
    posthoc_grid: Sequence[float] | None = None,
    config_label: str = "",
) -> TunePlan:
    """Candidates = product of the grids × seeds, with overrides ``prefix + point + suffix``."""
    import itertools

    from longtail.config import load_config

    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct integers, got {seeds}")
    if not grids:
        raise ConfigError("give at least one --grid KEY=V1,V2,... to tune")
    keys = [g.key for g in grids]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--grid keys repeat ({', '.join(keys)}); give each key once")
    if posthoc is not None:
        from longtail.registry import POSTHOC

        POSTHOC.get(posthoc)  # unknown rule: ConfigError naming the registered ones
    plan = TunePlan(list(grids), seeds, [], Path(final_config), tuple(final_prefix), tuple(final_suffix), final_dir,
                    [], posthoc, list(posthoc_grid) if posthoc_grid is not None else None, config_label)
    base = load_config(candidate_config, list(candidate_prefix))
    plan.neutral = [neutral_value(base, k) for k in keys]
    for point in itertools.product(*(g.values for g in grids)):
        runs = {}
        for seed in seeds:
            overrides = (*candidate_prefix, *plan.point_overrides(point), *candidate_suffix)
            runs[seed] = PlannedRun(Path(candidate_config), overrides, seed, candidate_dir(point, seed))
        plan.candidates.append(Candidate(tuple(point), runs))
    # every config is type-checked now, before anything trains
    for candidate in plan.candidates:
        run = candidate.runs[seeds[0]]
        config = load_config(run.config, list(run.overrides))
        if config.eval.test:
            raise ConfigError(f"candidate config {run.config} must not evaluate on the test set; add eval.test=false")
        if config.data.heldout_per_class <= 0:
            raise ConfigError(f"candidate config {run.config} has no held-out split; set data.heldout_per_class=K "
                              "(K = 3 per class as for CIFAR in CDT appendix B.6)")
        load_config(final_config, list(plan.final_run(candidate.point, seeds[0]).overrides))
    return plan


def make_plan(
    config: str | Path,
    grids: Sequence[Grid],
    out: str | Path,
    seeds: Sequence[int] = (0,),
    overrides: Sequence[str] = (),
    heldout_per_class: int | None = None,
    posthoc: str | None = None,
    posthoc_grid: Sequence[float] | None = None,
) -> TunePlan:
    """The plan of ``longtail tune CONFIG --grid ... --out OUT``: candidates in
    ``OUT/candidates/<point>/seed-<s>``, final runs in ``OUT/final/<point>/seed-<s>``. K =
    ``heldout_per_class``, or the config's ``data.heldout_per_class`` when > 0, or 3."""
    from longtail.config import load_config

    config = Path(config)
    if not config.is_file():
        raise ConfigError(f"no config file {config}; give a YAML file such as configs/fashion-mnist-lt/cdt.yaml")
    out = Path(out)
    if heldout_per_class is None:
        heldout_per_class = load_config(config, list(overrides)).data.heldout_per_class or DEFAULT_HELDOUT_PER_CLASS
    if heldout_per_class < 1:
        raise ConfigError(f"--heldout-per-class {heldout_per_class}: hold out at least 1 image per class")
    keys = [g.key for g in grids]
    return build_plan(
        grids, seeds,
        candidate_config=config, candidate_prefix=tuple(overrides),
        candidate_suffix=(f"data.heldout_per_class={heldout_per_class}", "eval.test=false"),
        candidate_dir=lambda point, seed: out / "candidates" / point_tag(keys, point) / f"seed-{seed}",
        final_config=config, final_prefix=tuple(overrides),
        final_suffix=("data.heldout_per_class=0", "eval.test=true"),
        final_dir=lambda point, seed: out / "final" / point_tag(keys, point) / f"seed-{seed}",
        posthoc=posthoc, posthoc_grid=posthoc_grid, config_label=str(config),
    )


# ---------------------------------------------------------------------------------------------------
# Classes of the held-out split
# ---------------------------------------------------------------------------------------------------


@dataclass
class HeldoutClasses:
    """Which classes the held-out split has (tuned on) and which are too small for it (left out)."""

    per_class: int
    tuned_on: list[dict[str, Any]]  # {"class", "name", "count"} (count: images before the split)
    left_out: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"heldout_per_class": self.per_class, "classes_tuned_on": self.tuned_on,
                "classes_left_out": self.left_out}


def heldout_classes(config: Any) -> HeldoutClasses:
    """The classes of ``config``'s long-tailed training set that can give K = ``data.heldout_per_class``
    held-out images and keep one for training (count > K), and the others (left out and named):
    :func:`longtail.data.build.heldout_classes_for`, the one rule. Reads the training split only. Fewer
    than two classes to tune on is a ``ConfigError`` (:func:`longtail.data.subset.require_tunable`)."""
    from longtail.data.build import heldout_classes_for
    from longtail.data.subset import require_tunable

    classes = heldout_classes_for(config.data)
    require_tunable(classes, f"the held-out split of {config.data.name}")
    return HeldoutClasses(classes["heldout_per_class"], classes["classes_tuned_on"], classes["classes_left_out"])


def check_classes(plan: TunePlan, classes_fn: Callable[[Any], HeldoutClasses] = heldout_classes
                  ) -> dict[tuple[Any, ...], HeldoutClasses]:
    """:func:`heldout_classes` for each candidate (computed once per distinct data section)."""
    from longtail.config import load_config

    by_data: dict[str, HeldoutClasses] = {}
    out = {}
    for candidate in plan.candidates:
        run = next(iter(candidate.runs.values()))
        config = load_config(run.config, list(run.overrides))
        key = json.dumps(config.to_dict()["data"], sort_keys=True, default=str)
        if key not in by_data:
            by_data[key] = classes_fn(config)
        out[candidate.point] = by_data[key]
    return out


# ---------------------------------------------------------------------------------------------------
# Training (reuse, resume, jobs side by side)
# ---------------------------------------------------------------------------------------------------

def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _train_worker(run: PlannedRun, threads: int) -> tuple[str, str | None]:
    """Train one run in a worker process; returns (run_dir, error or None)."""
    import torch

    torch.set_num_threads(threads)
    # runtime.* is not part of the method: a run trained with other threads is still reused.
    run = PlannedRun(run.config, (*run.overrides, f"runtime.num_threads={threads}", "runtime.progress=none"),
                     run.seed, run.run_dir)
    try:
        ensure_trained(run, log=lambda text: print(text, flush=True))
    except LongtailError as error:
        return str(run.run_dir), str(error)
    return str(run.run_dir), None


EnsureFn = Callable[[PlannedRun], dict[str, Any]]


def train_runs(runs: Sequence[PlannedRun], jobs: int = 1, ensure: EnsureFn | None = None,
               log: Callable[[str], None] = print, what: str = "runs") -> dict[Path, str]:
    """Train the unfinished ``runs`` (finished ones reused, killed ones resumed), ``jobs`` at a time in
    worker processes with ``cores() // jobs`` threads each (``jobs = 1`` or a stand-in ``ensure``: one
    after the other in this process). Logs ``done / left`` as runs finish; returns {run_dir: error} of
    the runs that failed."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    todo = [run for run in runs if ensure is not None or not (run.run_dir / "results.json").is_file()]
    total, failed = len(runs), {}
    done = total - len(todo)
    if not todo:
        log(f"{what}: {total}/{total} done")
        return {}
    log(f"{what}: {done}/{total} done, {len(todo)} left" + (f"; {jobs} at a time" if jobs > 1 else ""))
    if jobs == 1 or ensure is not None:
        for run in todo:
            try:
                ensure_trained(run, log=log) if ensure is None else ensure(run)
            except LongtailError as error:
                failed[run.run_dir] = str(error)
                log(f"FAILED {run.run_dir}: {error}")
            done += 1
            log(f"{what}: {done}/{total} done, {total - done} left")
        return failed
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, cores() // jobs)
    log(f"training {len(todo)} run(s), {jobs} at a time, {threads} thread(s) each")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_train_worker, run, threads) for run in todo]
        for future in as_completed(futures):
            run_dir, error = future.result()
            done += 1
            if error is not None:
                failed[Path(run_dir)] = error
                log(f"FAILED {run_dir}: {error}")
            else:
                log(f"done {run_dir}")
            log(f"{what}: {done}/{total} done, {total - done} left")
    return failed


# ---------------------------------------------------------------------------------------------------
# Scores on the held-out split
# ---------------------------------------------------------------------------------------------------


def heldout_features(run_dir: Path) -> Any:
    """Features of a candidate run's training and held-out splits (its test split is not read)."""
    from longtail.reproduce.runner import load_features

    return load_features(run_dir, with_test=False)


def score_features(features: Any, posthoc: str | None = None, grid: Sequence[float] | None = None
                   ) -> list[dict[str, Any]]:
    """Held-out balanced accuracy of a run: ``[{"param": None, "balanced_accuracy"}]`` for the model's
    own logits, or one row per value of the rule's parameter (one row with ``param`` None for a rule
    without a parameter, e.g. NCM)."""
    from longtail.metrics import balanced_accuracy
    from longtail.posthoc.base import head_logits

    if features.heldout is None:
        raise ConfigError("the run has no held-out split; set data.heldout_per_class > 0 in its config")
    f, y = features.heldout
    if posthoc is None:
        return [{"param": None, "balanced_accuracy": balanced_accuracy(y, head_logits(f, features.head).argmax(1))}]
    from longtail.posthoc import tune
    from longtail.registry import POSTHOC

    train_f, train_y = features.train
    if getattr(POSTHOC.get(posthoc), "param_name", None) is None:
        rule = POSTHOC.create(posthoc).fit(train_f, train_y, features.head, features.class_counts)
        return [{"param": None, "balanced_accuracy": balanced_accuracy(y, rule.predict(f, features.head))}]
    _, table = tune(posthoc, grid, train_f, train_y, features.head, features.class_counts, f, y)
    return [{"param": row["param"], "balanced_accuracy": row["balanced_accuracy"]} for row in table]


# ---------------------------------------------------------------------------------------------------
# Running a plan
# ---------------------------------------------------------------------------------------------------


@dataclass
class TuneResult:
    plan: TunePlan
    classes: dict[tuple[Any, ...], HeldoutClasses]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    chosen: tuple[Any, ...] | None = None
    chosen_param: float | None = None
    chosen_score: tuple[float | None, float | None] = (None, None)
    final: dict[int, dict[str, Any]] = field(default_factory=dict)  # seed -> {"run_dir", "results", "posthoc"}
    failed: list[str] = field(default_factory=list)

    @property
    def param_name(self) -> str | None:
        if self.plan.posthoc is None:
            return None
        from longtail.registry import POSTHOC

        return getattr(POSTHOC.get(self.plan.posthoc), "param_name", None)

    def chosen_text(self) -> str:
        """``gamma=0.2`` (``gamma=0.2, τ=0.7`` with a tuned post-hoc parameter)."""
        assert self.chosen is not None
        text = ", ".join(f"{k.rsplit('.', 1)[-1]}={_text(v)}" for k, v in zip(self.plan.keys, self.chosen))
        if self.chosen_param is not None:
            text += f", τ={self.chosen_param:g}" if self.param_name == "tau" else f", {self.param_name}={self.chosen_param:g}"
        return text


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_tune(
    plan: TunePlan,
    jobs: int = 1,
    ensure: EnsureFn | None = None,
    log: Callable[[str], None] = print,
    features_fn: Callable[[Path], Any] = heldout_features,
    posthoc_fn: Callable[..., dict[str, Any]] | None = None,
    classes_fn: Callable[[Any], HeldoutClasses] = heldout_classes,
) -> TuneResult:
    """Check the held-out classes, train the candidates, score them, choose, retrain the choice on the
    full training set and evaluate it on the test set (see the module docstring). A candidate any of
    whose seeds failed (e.g. its loss diverged) is reported as failed and never chosen. ``ensure(run) ->
    results`` replaces ``ensure_trained`` (reproduce's cache, tests' stand-in trainers)."""
    from longtail.engine.summary import mean_std

    classes = check_classes(plan, classes_fn)
    result = TuneResult(plan, classes)
    failed = train_runs(plan.candidate_runs(), jobs, ensure, log, what="candidates")

    # --- score every candidate on its held-out split -------------------------------------------
    per_candidate: list[dict[float | None, list[float]]] = []
    for candidate in plan.candidates:
        entry: dict[str, Any] = {"point": dict(zip(plan.keys, candidate.point)),
                                 "runs": {str(s): str(r.run_dir) for s, r in candidate.runs.items()}}
        errors = [failed[r.run_dir] for r in candidate.runs.values() if r.run_dir in failed]
        tables: dict[float | None, list[float]] = {}
        if errors:
            entry["failed"] = errors[0]
            result.failed.append(f"{point_tag(plan.keys, candidate.point)}: {errors[0]}")
        else:
            entry["scores"] = {}
            for seed, run in candidate.runs.items():
                rows = score_features(features_fn(run.run_dir), plan.posthoc, plan.posthoc_grid)
                entry["scores"][str(seed)] = rows
                for row in rows:
                    tables.setdefault(row["param"], []).append(row["balanced_accuracy"])
        per_candidate.append(tables)
        result.candidates.append(entry)

    # --- the joint choice: (point, τ) with the best mean held-out balanced accuracy ----------------
    settings: list[tuple[tuple[Any, ...], float]] = []
    owners: list[tuple[int, float | None]] = []
    posthoc_neutral = 0.0
    if plan.posthoc is not None:
        from longtail.registry import POSTHOC

        posthoc_neutral = float(getattr(POSTHOC.get(plan.posthoc), "neutral_value", 0.0))
    for index, (candidate, tables) in enumerate(zip(plan.candidates, per_candidate)):
        best_here: list[tuple[tuple[Any, ...], float]] = []
        for param, values in tables.items():
            mean = mean_std(values)[0]
            setting = candidate.point if param is None else (*candidate.point, param)
            settings.append((setting, mean))
            best_here.append(((param,) if param is not None else (), mean))
            owners.append((index, param))
        if best_here:
            i = choose(best_here, [posthoc_neutral] * len(best_here[0][0]))
            param = list(tables)[i]
            entry = result.candidates[index]
            entry["param"] = param
            entry["mean"], entry["std"] = mean_std(tables[param])
            entry["per_seed"] = tables[param]
    if not settings:
        raise LongtailError("every candidate failed to train; nothing to choose from: " + "; ".join(result.failed))
    neutral = list(plan.neutral) + ([posthoc_neutral] if len(settings[0][0]) > len(plan.keys) else [])
    grids = [g.values for g in plan.grids] + [()]
    index, param = owners[choose(settings, neutral, grids)]
    result.chosen, result.chosen_param = plan.candidates[index].point, param
    chosen_entry = result.candidates[index]
    result.chosen_score = (chosen_entry["mean"], chosen_entry["std"])
    chosen_entry["chosen"] = True
    log(f"chosen on the held-out split: {result.chosen_text()} (balanced accuracy "
        f"{100 * chosen_entry['mean']:.2f}%, mean over {len(plan.seeds)} seed(s))")

    # --- retrain the choice on the full training set, evaluate it on the test set once -------------
    finals = [plan.final_run(result.chosen, seed) for seed in plan.seeds]
    final_failed = train_runs(finals, jobs, ensure, log, what="final runs")
    if posthoc_fn is None:
        from longtail.reproduce.runner import evaluate_posthoc as posthoc_fn
    for run in finals:
        if run.run_dir in final_failed:
            result.failed.append(f"final seed {run.seed}: {final_failed[run.run_dir]}")
            continue
        results = ensure_trained(run, log=lambda m: None) if ensure is None else ensure(run)
        entry = {"run_dir": str(run.run_dir), "results": results, "posthoc": None}
        if plan.posthoc is not None:
            entry["posthoc"] = posthoc_fn(run.run_dir, plan.posthoc, param, False)
        result.final[run.seed] = entry
    return result


# ---------------------------------------------------------------------------------------------------
# tune.json, tune.md, the dry-run plan and budget
# ---------------------------------------------------------------------------------------------------

FINAL_METRICS = ("balanced_accuracy", "top1", "top5", "many", "medium", "few")


def _numbers(report: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {k: report.get(k) for k in ("balanced_accuracy", "top1", "top5")}
    for group in ("many", "medium", "few"):
        out[group] = (report.get("groups") or {}).get(group, {}).get("accuracy")
    return out


def final_table(result: TuneResult) -> dict[str, Any]:
    """Per seed and mean ± std of the final run's test metrics (plain, and with the chosen rule)."""
    from longtail.engine.summary import mean_std

    out: dict[str, Any] = {}
    kinds = ["plain"] + (["posthoc"] if result.plan.posthoc else [])
    for kind in kinds:
        per_seed = {str(s): _numbers(e["results"] if kind == "plain" else e["posthoc"])
                    for s, e in sorted(result.final.items())}
        mean, std = {}, {}
        for metric in FINAL_METRICS:
            mean[metric], std[metric] = mean_std([v[metric] for v in per_seed.values()])
        out[kind] = {"per_seed": per_seed, "mean": mean, "std": std}
    return out


def to_json(result: TuneResult) -> dict[str, Any]:
    plan = result.plan
    classes = next(iter(result.classes.values()))
    doc: dict[str, Any] = {
        "config": plan.config_label,
        "grids": [{"key": g.key, "values": list(g.values), "neutral": n} for g, n in zip(plan.grids, plan.neutral)],
        "posthoc": plan.posthoc,
        "posthoc_param": result.param_name,
        "seeds": plan.seeds,
        "selection": "held-out split (never the test set): " + TIE_RULE,
        **classes.to_dict(),
        "candidates": result.candidates,
        "choice": {"point": dict(zip(plan.keys, result.chosen or ())), "posthoc_param": result.chosen_param,
                   "heldout_balanced_accuracy": result.chosen_score[0], "std": result.chosen_score[1]},
        "final": {"runs": {str(s): e["run_dir"] for s, e in sorted(result.final.items())},
                  "test": final_table(result) if result.final else None},
        "failed": result.failed,
    }
    if len({json.dumps(c.to_dict()) for c in result.classes.values()}) > 1:
        for entry, candidate in zip(doc["candidates"], plan.candidates):
            entry.update(result.classes[candidate.point].to_dict())
    return doc


def _pct(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "—"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def markdown(result: TuneResult, command: str = "") -> str:
    """``tune.md``: the candidates' held-out scores, the choice, the final run's test metrics."""
    plan = result.plan
    names = [k.rsplit(".", 1)[-1] for k in plan.keys]
    classes = next(iter(result.classes.values()))
    label = result.param_name and ("τ" if result.param_name == "tau" else result.param_name)
    lines = ["# longtail tune", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    left = ", ".join(f"{e['class']} ({e['name']}, {e['count']} images)" for e in classes.left_out) or "none"
    lines += [
        f"Config `{plan.config_label}`; {len(plan.candidates)} grid point(s) × {len(plan.seeds)} seed(s) "
        f"({','.join(map(str, plan.seeds))}), each trained with {classes.per_class} images per class held out and "
        "scored by balanced accuracy on that held-out split (never the test set)"
        + (f"; post-hoc {plan.posthoc}" + (f" with {label} chosen per candidate on the same split (joint choice)"
                                          if label else "") if plan.posthoc else "") + ".",
        f"Classes tuned on: {len(classes.tuned_on)}; left out (too small to hold out {classes.per_class}): {left}.",
        f"Choice: {TIE_RULE}.", "",
        "| " + " | ".join(names) + (f" | {label}" if label else "") + " | held-out balanced acc. (%) | seeds |  |",
        "|" + "---|" * (len(names) + (1 if label else 0) + 3),
    ]
    for entry in result.candidates:
        cells = [_text(v) for v in entry["point"].values()]
        if label:
            cells.append("—" if entry.get("param") is None else f"{entry['param']:g}")
        if "failed" in entry:
            cells += ["FAILED", "", entry["failed"].replace("|", "\\|")]
        else:
            cells += [_pct(entry["mean"], entry["std"]), str(len(entry["per_seed"])),
                      "**chosen**" if entry.get("chosen") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Chosen: **{result.chosen_text()}**, retrained on the full training set and evaluated on the "
              "test set once (last epoch; mean ± sample std over seeds):", ""]
    if result.final:
        table = final_table(result)
        lines += ["| model | " + " | ".join(m.replace("_", " ") for m in FINAL_METRICS) + " | seeds |",
                  "|---|" + "---|" * (len(FINAL_METRICS) + 1)]
        for kind, numbers in table.items():
            name = "plain" if kind == "plain" else f"+ {plan.posthoc}" + (
                f" ({label}={result.chosen_param:g})" if result.chosen_param is not None else "")
            cells = [_pct(numbers["mean"][m], numbers["std"][m]) for m in FINAL_METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(numbers['per_seed'])} |")
    if result.failed:
        lines += ["", "Failures:", *(f"- {f}" for f in result.failed)]
    return "\n".join(lines) + "\n"


def write_outputs(result: TuneResult, out: Path, command: str = "") -> tuple[Path, Path]:
    from longtail.tracking import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "tune.json", to_json(result))
    (out / "tune.md").write_text(markdown(result, command))
    return out / "tune.json", out / "tune.md"


def budget(plan: TunePlan, classes: dict[tuple[Any, ...], HeldoutClasses] | None = None) -> dict[str, Any]:
    """Training steps per run and in total (candidates + one final run per seed), and seconds where a
    finished run under the plan gives a measured rate (seconds per step)."""
    from longtail.config import load_config
    from longtail.data.datasets import dataset_info  # noqa: F401 - the config's data set must exist

    def steps(run: PlannedRun, images: int | None) -> int | None:
        if images is None:
            return None
        config = load_config(run.config, list(run.overrides))
        per_epoch = images // config.optim.batch_size if config.train.drop_last else -(-images // config.optim.batch_size)
        return config.train.epochs * per_epoch

    rate, rate_from = None, None
    runs: list[tuple[PlannedRun, int | None]] = []
    for candidate in plan.candidates:
        info = classes.get(candidate.point) if classes else None
        images = None if info is None else sum(e["count"] for e in info.tuned_on + info.left_out) - \
            info.per_class * len(info.tuned_on)
        runs += [(run, steps(run, images)) for run in candidate.runs.values()]
    first = next(iter(classes.values())) if classes else None
    full = None if first is None else sum(e["count"] for e in first.tuned_on + first.left_out)
    finals = [(plan.final_run(plan.candidates[0].point, s), None) for s in plan.seeds]
    runs += [(run, steps(run, full)) for run, _ in finals]
    for run, n in runs:
        path = run.run_dir / "results.json"
        if rate is None and n and path.is_file():
            seconds = json.loads(path.read_text()).get("timing", {}).get("train_seconds")
            if seconds:
                rate, rate_from = float(seconds) / n, run.run_dir
    left = [n for run, n in runs[: -len(finals)] if not (run.run_dir / "results.json").is_file()]
    left += [n for _, n in runs[-len(finals):]]  # the final runs' point is not known yet
    known = [n for n in left if n is not None]
    return {
        "runs": len(runs), "candidates": len(plan.candidates) * len(plan.seeds), "final": len(finals),
        "steps_per_candidate": runs[0][1], "steps_per_final": runs[-1][1],
        "steps_left": sum(known) if len(known) == len(left) else None,
        "done": sum(1 for run, _ in runs[: -len(finals)] if (run.run_dir / "results.json").is_file()),
        "seconds_per_step": rate, "measured_on": str(rate_from) if rate_from else None,
    }


def format_plan(plan: TunePlan, classes: dict[tuple[Any, ...], HeldoutClasses] | None = None,
                jobs: int = 1) -> str:
    """The dry-run text: the grid, the candidates' directories, the held-out classes and the budget."""
    lines = [f"tune {plan.config_label}: " + " × ".join(f"{g.key} in [{','.join(_text(v) for v in g.values)}]"
                                                      for g in plan.grids)
             + (f", post-hoc {plan.posthoc} chosen jointly" if plan.posthoc else "")
             + f"; seeds {','.join(map(str, plan.seeds))}", ""]
    first_info = next(iter(classes.values())) if classes else None
    if first_info is not None:
        left = ", ".join(f"{e['class']} ({e['name']}, {e['count']})" for e in first_info.left_out) or "none"
        lines += [f"held-out split: {first_info.per_class} images per class from {len(first_info.tuned_on)} classes; "
                  f"left out (too small): {left}", ""]
    for candidate in plan.candidates:
        for run in candidate.runs.values():
            done = " (done)" if (run.run_dir / "results.json").is_file() else ""
            lines.append(f"  candidate {run.run_dir}{done}  <- {run.config} {' '.join(run.overrides)}")
    final = plan.final_run(plan.candidates[0].point, plan.seeds[0])
    overrides = " ".join((*plan.final_prefix, "<chosen point>", *plan.final_suffix))
    lines += [f"  then the chosen point retrained on the full set, one run per seed: {final.run_dir.parent.parent}"
              f"/<point>/seed-<s>  <- {final.config} {overrides}", ""]
    b = budget(plan, classes)
    steps = (f"{b['steps_per_candidate']} training steps per candidate, {b['steps_per_final']} per final run"
             if b["steps_per_candidate"] is not None else "steps per run unknown (data not read)")
    lines.append(f"budget: {b['runs']} runs ({b['candidates']} candidate runs, {b['done']} done; {b['final']} final); "
                 + steps)
    if b["steps_left"] is not None:
        text = f"{b['steps_left']} steps left"
        if b["seconds_per_step"]:
            seconds = b["steps_left"] * b["seconds_per_step"] / jobs
            text += (f" ≈ {seconds / 60:.0f} min with {jobs} at a time (measured {b['seconds_per_step']:.3f} s per step "
                     f"on {b['measured_on']})")
        else:
            text += " (no finished run yet to measure seconds per step)"
        lines.append(text)
    return "\n".join(lines)
