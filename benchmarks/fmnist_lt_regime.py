"""Fashion-MNIST-LT in the papers' regime (issue 14): the set made small, the schedule kept.

    python benchmarks/fmnist_lt_regime.py [--runs-root runs/fmnist-lt-500] [--tune-root runs/fmnist-lt-500-tune]
                                          [--seeds 0,1,2] [--jobs J] [--out DIR] [--dry-run | --report-only]

Every run of the benchmark (``configs/fashion-mnist-lt-500``: N_max = 500, ρ = 100, exp profile, 200
epochs, the reference recipe unscaled; see that folder's ``base.yaml``):

- plain rows, one run per seed in ``RUNS_ROOT/<order>/<method>/seed-<s>`` — reversed class order: ERM,
  RW, RS, LDAM, LDAM-DRW; natural order: ERM, LDAM-DRW (``configs/fashion-mnist-lt-500/natural``);
- CDT with γ chosen by ``longtail tune`` (:mod:`longtail.tune`) per class order, in
  ``TUNE_ROOT/cdt-<order>``: γ ∈ {0, 0.1, 0.2, 0.3, 0.4} × seeds trained with 3 images per class held out
  and ``eval.test=false`` (``candidates/gamma-<γ>/seed-<s>``), the best mean held-out balanced accuracy
  retrained on the full set (``final/gamma-<γ>/seed-<s>``);
- post-hoc rows ERM / CDT + N_c^τ, τ-norm (‖w‖^τ) and NCM: the rule fitted on the FULL run's training
  split and scored on the test set, τ chosen by balanced accuracy on the held-out split of the run's
  held-out twin and applied, fixed, to the full run (the library's ``--tau-from HELDOUT_RUN`` meaning,
  :func:`longtail.inference.decision.build_decision`); the twin of CDT is the chosen γ's candidate, the
  twin of ERM the γ = 0 candidate (CDT with γ = 0 is cross-entropy: ERM with 3 images per class held
  out). NCM has no parameter. The results are cached in ``OUT/posthoc`` (the run directories are only read).

Finished runs are reused and killed ones resumed (``ensure_trained`` via :func:`longtail.tune.train_runs`
and :func:`longtail.tune.run_tune`); ``--jobs J`` trains J at once. ``--dry-run`` prints the plan and the
budget; ``--report-only`` trains nothing and writes the tables from whatever is finished (a row with
missing seeds shows how many it has).

Writes ``OUT/fmnist-lt-regime.md`` and ``OUT/fmnist-lt-regime.json`` (default OUT = RUNS_ROOT): per class
order, balanced accuracy, many / medium / few, the training accuracy at the last epoch (``train_acc`` of
the last line of ``metrics.jsonl``), mean ± sample std over seeds, and the wall time per run (``results.json``
timing) as median (min–max) over seeds — a run that shared the machine is slower, and one such run must not
smear the row; each of the papers' orderings (ERM < LDAM < LDAM-DRW, ERM < CDT, ERM < ERM + N_c^τ) stated as
held / not held with the gap in units of the pooled std; the CDT tune table (held-out score per γ); the CPU.

Diagnostics (the issue's "``longtail analyze`` on the ERM and CDT runs next to it"): in the report step
(after training and with ``--report-only``), per class order whose ERM run and CDT final run of the FIRST
seed are finished, the library's analysis (:func:`longtail.analysis.collect.analyze_run` per run, then
:func:`longtail.analysis.report.write_report`, the code behind ``longtail analyze ERM CDT``) of the two runs
overlaid is written to ``OUT/analysis-<order>/`` (``report.html``, ``analysis.json``, PNGs). It is cached:
skipped while ``analysis.json`` and ``report.html`` exist, ``analysis.json`` is newer than both runs'
``results.json`` and names the same two run directories. The markdown gets one "Diagnostics (seed s, ERM vs
CDT)" section per order read from that ``analysis.json`` — per class from head to tail with its training
count: the classifier norm ‖w_c‖ and the feature deviation dis(c) (CDT paper §3.3, Fig. 2/3) of ERM and CDT,
Spearman's ρ of each with N_c, a link to the report — and the .json the same numbers (``diagnostics``);
a missing run gives a line naming it. Options: the ``longtail analyze`` defaults (R = 1000 sub-sampling
rounds, t-SNE with 25 images per class; no probe and no along-epochs statistics since these runs save no
snapshots): measured 26 s of wall time for two finished runs of this benchmark (ResNet-32, 1,236 training
and 10,000 test images) with one thread on the AMD EPYC Zen 5 (2 cores, with the background runs going),
of which ~3 s per run are the t-SNE — cheap next to a 58-min run, so nothing is cut.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist_lt  # noqa: E402 - numbers(), label(), the step-cost estimate

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
ORDERS = {"reversed": "fashion-mnist-lt-500", "natural": "fashion-mnist-lt-500/natural"}
ORDER_TITLES = {"reversed": "reversed class order (tail: T-shirt/top, trouser, pullover, dress, coat)",
                "natural": "natural class order (tail: sneaker, bag, ankle boot)"}
PLAIN = {"reversed": ("erm", "rw", "rs", "ldam", "ldam-drw"), "natural": ("erm", "ldam-drw")}
RULES = ("nc-tau", "tau-norm", "ncm")
POSTHOC_METHODS = ("erm", "cdt")
GAMMA_KEY = "loss.params.gamma"
GAMMAS = (0, 0.1, 0.2, 0.3, 0.4)
HELDOUT_PER_CLASS = 3  # CDT appendix B.6, K = 3 as for CIFAR
RUN_OVERRIDES = ("runtime.num_threads=1", "runtime.progress=none")
METRICS = ("balanced_accuracy", "many", "medium", "few")
ANALYSIS_ROUNDS = 1000  # feature-deviation sub-sampling rounds R (the `longtail analyze` default)
ANALYSIS_NAMES = ("ERM", "CDT")  # run labels in OUT/analysis-<order>/ (plots, analysis.json), in this order
COLUMNS = {"balanced_accuracy": "balanced acc.", "many": "many", "medium": "medium", "few": "few",
           "train_acc": "train acc. (last epoch)", "minutes": "wall min / run: median (min–max)"}


# ---------------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------------


@dataclass
class RegimePlan:
    seeds: list[int]
    runs_root: Path
    tune_root: Path
    plain: list[tuple[str, str, Any]] = field(default_factory=list)  # (order, method, PlannedRun)
    tunes: dict[str, Any] = field(default_factory=dict)  # order -> longtail.tune.TunePlan

    def tune_dir(self, order: str) -> Path:
        return self.tune_root / f"cdt-{order}"


def config_path(order: str, method: str, configs: Path = CONFIGS) -> Path:
    from longtail.errors import ConfigError

    path = configs / ORDERS[order] / f"{method}.yaml"
    if not path.is_file():
        raise ConfigError(f"no config {path}; the regime benchmark needs configs/{ORDERS[order]}/{method}.yaml")
    return path


def make_plan(runs_root: Path, tune_root: Path, seeds: Sequence[int], configs: Path = CONFIGS,
              overrides: Sequence[str] = ()) -> RegimePlan:
    """Every run: the plain rows' runs and, per class order, the CDT tune plan (candidates + finals)."""
    from longtail import tune
    from longtail.reproduce.runner import PlannedRun

    every = (*RUN_OVERRIDES, *overrides)
    plan = RegimePlan(list(seeds), Path(runs_root), Path(tune_root))
    for order, methods in PLAIN.items():
        for method in methods:
            path = config_path(order, method, configs)
            plan.plain += [(order, method, PlannedRun(path, every, s, plan.runs_root / order / method / f"seed-{s}"))
                           for s in plan.seeds]
    for order in ORDERS:
        plan.tunes[order] = tune.make_plan(config_path(order, "cdt", configs), [tune.Grid(GAMMA_KEY, GAMMAS)],
                                           plan.tune_dir(order), plan.seeds, every, HELDOUT_PER_CLASS)
    return plan


def _done(run_dir: Path) -> bool:
    return (run_dir / "results.json").is_file()


def format_plan(plan: RegimePlan, jobs: int = 1) -> str:
    """The dry-run text: every run (done or not), the post-hoc evaluations, and the budget."""
    lines = [f"Fashion-MNIST-LT regime benchmark: seeds {','.join(map(str, plan.seeds))}", ""]
    for order, method, run in plan.plain:
        lines.append(f"  {order:8s} {method:9s} {run.run_dir}{' (done)' if _done(run.run_dir) else ''}"
                     f"  <- {run.config} train.seed={run.seed}")
    for order, tplan in plan.tunes.items():
        lines.append(f"  {order:8s} cdt       longtail tune {tplan.config_label} --grid {GAMMA_KEY}="
                     f"{','.join(map(str, GAMMAS))} --heldout-per-class {HELDOUT_PER_CLASS} --out {plan.tune_dir(order)}")
        for candidate in tplan.candidates:
            for run in candidate.runs.values():
                lines.append(f"      candidate {run.run_dir}{' (done)' if _done(run.run_dir) else ''}")
        lines.append(f"      then the chosen γ retrained per seed: {plan.tune_dir(order)}/final/gamma-<chosen>/seed-<s>")
    lines += ["", "Post-hoc rows (evaluations of finished runs, no training): "
              + ", ".join(fmnist_lt.label(m, r) for m in POSTHOC_METHODS for r in RULES)]
    for order in ORDERS:
        lines.append(f"  {order}: ERM = {plan.runs_root / order / 'erm'}/seed-<s>, τ from "
                     f"{plan.tune_dir(order)}/candidates/gamma-0/seed-<s>; CDT = the tune's final run, τ from the "
                     "chosen γ's candidate")
    b = budget(plan)
    lines += ["", f"Budget: {b['runs']} training runs ({b['done']} done), {b['steps_left']:,} training steps left, "
              f"~{b['seconds_left'] / 3600:.1f} h of one-thread runs at {b['seconds_per_step']:.3f} s per step "
              f"({b['rate_from']}), ~{b['seconds_left'] / jobs / 3600:.1f} h of wall time with {jobs} at a time"]
    return "\n".join(lines)


def _steps(run: Any, heldout: int) -> int:
    from longtail.data.profiles import longtail_counts
    from longtail.reproduce.runner import run_config

    config = run_config(run)
    d = config.data
    counts = longtail_counts(10, d.n_max, d.imbalance_ratio, d.profile, d.minority_fraction)
    images = sum(counts) - sum(min(heldout, max(0, n - 1)) for n in counts if n > heldout)
    return config.train.epochs * math.ceil(images / config.optim.batch_size)


def budget(plan: RegimePlan) -> dict[str, Any]:
    """Runs (plain + candidates + one final per seed and order), steps left, and seconds at the measured
    seconds per step of the finished runs (``timing.train_seconds`` / steps), else
    ``fmnist_lt.STEP_CPU_SECONDS`` (one thread, so × 2 cores).

    Finished runs may have shared the machine, so the rate is the fastest finished run's (the idle figure
    a budget is for) and the median is reported beside it: a single loaded run does not inflate the plan
    ×8, as the first run found used to."""
    runs = [(run, 0) for _, _, run in plan.plain]
    for tplan in plan.tunes.values():
        runs += [(run, HELDOUT_PER_CLASS) for run in tplan.candidate_runs()]
        runs += [(tplan.final_run(tplan.candidates[0].point, s), 0) for s in plan.seeds]
    rates, left, done = [], 0, 0
    for run, k in runs:
        steps = _steps(run, k)
        if _done(run.run_dir):
            done += 1
            seconds = json.loads((run.run_dir / "results.json").read_text()).get("timing", {}).get("train_seconds")
            if seconds:
                rates.append(float(seconds) / steps)
        else:
            left += steps
    if rates:
        rate, median = min(rates), statistics.median(rates)
        rate_from = (f"the fastest of {len(rates)} finished runs; their median {median:.3f} s per step would "
                     f"make it ~{left * median / 3600:.1f} h")
    else:
        rate, rate_from = fmnist_lt.STEP_CPU_SECONDS * fmnist_lt.CORES, "estimate"
    return {"runs": len(runs), "done": done, "steps_left": left, "seconds_per_step": rate,
            "seconds_left": left * rate, "rate_from": rate_from}


# ---------------------------------------------------------------------------------------------------
# Reading finished runs
# ---------------------------------------------------------------------------------------------------


def run_numbers(run_dir: Path) -> dict[str, float | None] | None:
    """A finished full run's test numbers in %, the training accuracy of its last epoch in % and its
    wall minutes; None when it has no ``results.json``."""
    path = run_dir / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    out = fmnist_lt.numbers(results)
    out["train_acc"] = last_train_acc(run_dir)
    seconds = (results.get("timing") or {}).get("train_seconds")
    out["minutes"] = None if seconds is None else float(seconds) / 60.0
    return out


def last_train_acc(run_dir: Path) -> float | None:
    """``train_acc`` of the last line of ``metrics.jsonl``, in %."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        return None
    value = json.loads(lines[-1]).get("train_acc")
    return None if value is None else 100.0 * float(value)


def tune_table(tune_dir: Path, seeds: Sequence[int]) -> dict[str, Any]:
    """The CDT tune table: ``tune.json`` when the tune finished; else the finished candidates' held-out
    balanced accuracy (their ``results.json``, no choice yet)."""
    from longtail.engine.summary import mean_std

    path = tune_dir / "tune.json"
    if path.is_file():
        doc = json.loads(path.read_text())
        rows = [{"gamma": c["point"][GAMMA_KEY], "mean": c.get("mean"), "std": c.get("std"),
                 "seeds": len(c.get("per_seed") or []), "chosen": bool(c.get("chosen")), "failed": c.get("failed")}
                for c in doc["candidates"]]
        return {"finished": True, "rows": rows, "chosen": doc["choice"]["point"].get(GAMMA_KEY)}
    rows = []
    for gamma in GAMMAS:
        from longtail.tune import point_tag

        values = []
        for seed in seeds:
            results = tune_dir / "candidates" / point_tag([GAMMA_KEY], [gamma]) / f"seed-{seed}" / "results.json"
            if results.is_file():
                held = json.loads(results.read_text()).get("heldout") or {}
                values.append(held.get("balanced_accuracy"))
        mean, std = mean_std(values)
        rows.append({"gamma": gamma, "mean": mean, "std": std, "seeds": len(values), "chosen": False, "failed": None})
    return {"finished": False, "rows": rows, "chosen": None}


def posthoc_numbers(full_dir: Path, rule: str, heldout_dir: Path, cache: Path) -> dict[str, Any]:
    """The full run evaluated on the test set with ``rule`` fitted on its training split, τ chosen on the
    held-out split of ``heldout_dir`` (``--tau-from``); cached in ``cache`` (reused while newer than both
    runs' results)."""
    from longtail.registry import POSTHOC

    has_param = getattr(POSTHOC.get(rule), "param_name", None) is not None  # NCM: no twin read
    sources = [full_dir / "results.json"] + ([heldout_dir / "results.json"] if has_param else [])
    if cache.is_file() and all(cache.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return json.loads(cache.read_text())
    import torch

    from longtail.inference.decision import build_decision
    from longtail.inference.loading import load_trained_run
    from longtail.metrics import EvalAccumulator

    run = load_trained_run(full_dir)
    decision = build_decision(run, rule, tau_from=load_trained_run(heldout_dir) if has_param else None)
    features, logits, labels = run.outputs("test")
    accumulator = EvalAccumulator(len(run.class_counts))
    with torch.no_grad():
        accumulator.update(decision.scores(features, logits), labels)
    report = accumulator.report(run.class_counts, run.config.eval.many_threshold, run.config.eval.few_threshold)
    meta = decision.metadata
    result = {"balanced_accuracy": report["balanced_accuracy"], "groups": report["groups"], "top1": report["top1"],
              "param": meta.get("param"), "param_source": meta.get("param_source"),
              "tuning": (meta.get("tuning") or {}).get("table"),
              "full_run": str(full_dir), "heldout_run": str(heldout_dir) if has_param else None}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=1))
    return result


def collect(plan: RegimePlan, out: Path, log: Callable[[str], None] = print,
            posthoc_fn: Callable[[Path, str, Path, Path], dict[str, Any]] = posthoc_numbers) -> dict[str, Any]:
    """Every finished number: ``rows[order][key][seed]`` (key ``method`` or ``method+rule``), the tune
    tables, and what is missing."""
    from longtail.errors import LongtailError
    from longtail.tune import point_tag

    rows: dict[str, dict[str, dict[str, dict[str, float | None]]]] = {o: {} for o in ORDERS}
    params: list[dict[str, Any]] = []
    missing: list[str] = []
    for order, method, run in plan.plain:
        rows[order].setdefault(method, {})
        values = run_numbers(run.run_dir)
        if values is None:
            missing.append(f"{order} {method} seed {run.seed}: {run.run_dir} not finished")
        else:
            rows[order][method][str(run.seed)] = values
    tunes = {order: tune_table(plan.tune_dir(order), plan.seeds) for order in ORDERS}
    for order in ORDERS:
        rows[order].setdefault("cdt", {})
        chosen = tunes[order]["chosen"]
        tag0 = point_tag([GAMMA_KEY], [0])
        if chosen is None:
            missing.append(f"{order} cdt: the γ tune in {plan.tune_dir(order)} has not finished (no choice yet)")
        for seed in plan.seeds:
            full = {"erm": plan.runs_root / order / "erm" / f"seed-{seed}"}
            held = {"erm": plan.tune_dir(order) / "candidates" / tag0 / f"seed-{seed}"}
            if chosen is not None:
                tag = point_tag([GAMMA_KEY], [chosen])
                full["cdt"] = plan.tune_dir(order) / "final" / tag / f"seed-{seed}"
                held["cdt"] = plan.tune_dir(order) / "candidates" / tag / f"seed-{seed}"
                values = run_numbers(full["cdt"])
                if values is None:
                    missing.append(f"cdt {order} seed {seed}: final run {full['cdt']} not finished")
                else:
                    rows[order]["cdt"][str(seed)] = values
            for method in POSTHOC_METHODS:
                for rule in RULES:
                    key = f"{method}+{rule}"
                    rows[order].setdefault(key, {})
                    if method not in full:
                        continue
                    needs = [full[method]] + ([held[method]] if rule != "ncm" else [])
                    absent = [str(p) for p in needs if not _done(p)]
                    if absent:
                        missing.append(f"{order} {key} seed {seed}: needs {', '.join(absent)}")
                        continue
                    cache = out / "posthoc" / order / key / f"seed-{seed}.json"
                    try:
                        result = posthoc_fn(full[method], rule, held[method], cache)
                    except LongtailError as error:
                        missing.append(f"{order} {key} seed {seed}: {error}")
                        log(f"FAILED {order} {key} seed {seed}: {error}")
                        continue
                    base = run_numbers(full[method]) or {}
                    rows[order][key][str(seed)] = {**fmnist_lt.numbers(result), "train_acc": base.get("train_acc"),
                                                   "minutes": base.get("minutes")}
                    params.append({"order": order, "key": key, "seed": seed, "param": result.get("param"),
                                   "param_source": result.get("param_source")})
    return {"rows": rows, "tunes": tunes, "posthoc_params": params, "missing": missing}


# ---------------------------------------------------------------------------------------------------
# Diagnostics: `longtail analyze` of ERM vs CDT (first seed), cached in OUT/analysis-<order>
# ---------------------------------------------------------------------------------------------------


def analysis_runs(plan: RegimePlan, order: str, chosen: float | None) -> tuple[dict[str, Path | None], list[str]]:
    """The first seed's ERM run and CDT final run of ``order`` (None when the tune has no choice yet) and
    what keeps them from being analysed (empty when both are finished)."""
    from longtail.tune import point_tag

    seed = plan.seeds[0]
    erm = plan.runs_root / order / "erm" / f"seed-{seed}"
    cdt = None if chosen is None else plan.tune_dir(order) / "final" / point_tag([GAMMA_KEY], [chosen]) / f"seed-{seed}"
    missing = [] if _done(erm) else [f"the ERM run {erm} is not finished"]
    if cdt is None:
        missing.append(f"the CDT γ tune in {plan.tune_dir(order)} has not chosen γ yet, so there is no CDT final run")
    elif not _done(cdt):
        missing.append(f"the CDT final run {cdt} is not finished")
    return {"erm": erm, "cdt": cdt}, missing


def analysis_fresh(out_dir: Path, run_dirs: Sequence[Path]) -> bool:
    """True when ``out_dir`` holds a finished analysis (``analysis.json`` and ``report.html``) of exactly
    ``run_dirs``, in order, written after each run's ``results.json``."""
    path = out_dir / "analysis.json"
    if not path.is_file() or not (out_dir / "report.html").is_file():
        return False
    if any(path.stat().st_mtime < (d / "results.json").stat().st_mtime for d in run_dirs):
        return False
    try:
        runs = json.loads(path.read_text())["runs"]
    except (ValueError, KeyError):
        return False
    return [Path(r.get("run_dir") or "").resolve() for r in runs] == [Path(d).resolve() for d in run_dirs]


def analyze_pair(run_dirs: Sequence[Path], names: Sequence[str], out_dir: Path, data_root: str | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """``longtail analyze RUN... --name NAME... --out OUT_DIR`` with its defaults (see the module docstring),
    in this process; returns ``report.html``."""
    from longtail.analysis.collect import analyze_run
    from longtail.analysis.report import write_report as write_analysis

    analyses = [analyze_run(d, name=name, rounds=ANALYSIS_ROUNDS, data_root=data_root, log=log)
                for d, name in zip(run_dirs, names)]
    return write_analysis(analyses, out_dir)


def diagnostics(plan: RegimePlan, out: Path, tunes: dict[str, Any], log: Callable[[str], None] = print,
                analysis_fn: Callable[..., Path] = analyze_pair, data_root: str | None = None) -> dict[str, Any]:
    """Per class order: ERM vs CDT of the first seed analysed into ``OUT/analysis-<order>`` (cached, see
    :func:`analysis_fresh`) and the per-class numbers read back from its ``analysis.json``; or what is
    missing."""
    from longtail.analysis.report import spearman
    from longtail.errors import LongtailError

    result: dict[str, Any] = {}
    for order in ORDERS:
        chosen = tunes[order]["chosen"]
        runs, missing = analysis_runs(plan, order, chosen)
        out_dir = out / f"analysis-{order}"
        entry: dict[str, Any] = {"seed": plan.seeds[0], "gamma": chosen,
                                 "runs": {k: None if v is None else str(v) for k, v in runs.items()},
                                 "missing": missing, "error": None, "report": None, "analysis": None, "classes": []}
        result[order] = entry
        if missing:
            continue
        run_dirs = [runs["erm"], runs["cdt"]]
        if analysis_fresh(out_dir, run_dirs):
            log(f"diagnostics {order}: {out_dir / 'analysis.json'} is up to date (cached)")
        else:
            log(f"diagnostics {order}: analysing {run_dirs[0]} and {run_dirs[1]} into {out_dir}")
            try:
                analysis_fn(run_dirs, ANALYSIS_NAMES, out_dir, data_root=data_root, log=log)
            except LongtailError as error:
                entry["error"] = str(error)
                log(f"FAILED diagnostics {order}: {error}")
                continue
        erm, cdt = json.loads((out_dir / "analysis.json").read_text())["runs"]
        counts = erm["class_counts"]
        head_to_tail = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
        entry.update({
            "report": f"{out_dir.name}/report.html", "analysis": f"{out_dir.name}/analysis.json",
            "deviation_K": erm["deviation_K"], "deviation_rounds": erm["deviation_rounds"],
            "classes": [{"class": c, "name": erm["class_names"][c], "train_count": counts[c],
                         "norm": {"erm": erm["classifier_norms"][c], "cdt": cdt["classifier_norms"][c]},
                         "feature_deviation": {"erm": erm["feature_deviation"][c], "cdt": cdt["feature_deviation"][c]}}
                        for c in head_to_tail],
            "spearman": {stat: {"erm": spearman(counts, erm[key]), "cdt": spearman(cdt["class_counts"], cdt[key])}
                         for stat, key in (("norm", "classifier_norms"), ("feature_deviation", "feature_deviation"))},
        })
    return result


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def diagnostics_markdown(order: str, entry: dict[str, Any]) -> list[str]:
    """The "Diagnostics (seed s, ERM vs CDT)" section of one class order."""
    gamma = "" if entry["gamma"] is None else f" (γ = {entry['gamma']:g})"
    lines = [f"## Diagnostics (seed {entry['seed']}, ERM vs CDT{gamma}), {order}", ""]
    if entry["missing"]:
        return lines + [f"Not analysed: {'; '.join(entry['missing'])}.", ""]
    if entry["error"]:
        return lines + [f"Not analysed: `longtail analyze` failed: {entry['error']}", ""]
    rho = entry["spearman"]
    lines += [f"`longtail analyze` of {entry['runs']['erm']} (ERM) and {entry['runs']['cdt']} (CDT) overlaid: "
              f"[report]({entry['report']}) (plots, decision values, t-SNE, calibration; numbers in "
              f"`{entry['analysis']}`). ‖w_c‖ = L2 norm of class c's classifier row (CDT Fig. 3c: ERM's grows with "
              f"N_c). dis(c) = distance between the mean of K = {entry['deviation_K']} sub-sampled training features "
              f"and the mean of the test features of class c (ℓ2-normalised, mean over R = {entry['deviation_rounds']} "
              "draws): how far a class's test features lie from where training put them (CDT Fig. 2/3d: larger for "
              "tail classes, whose few training images are over-fitted).", "",
              "| class | N_c (train) | ‖w_c‖ ERM | ‖w_c‖ CDT | dis(c) ERM | dis(c) CDT |", "|---|---|---|---|---|---|"]
    for row in entry["classes"]:
        lines.append(f"| {row['name']} | {row['train_count']} | {_num(row['norm']['erm'])} | {_num(row['norm']['cdt'])} "
                     f"| {_num(row['feature_deviation']['erm'])} | {_num(row['feature_deviation']['cdt'])} |")
    lines += ["", f"Spearman ρ with N_c: ‖w_c‖ ERM {_num(rho['norm']['erm'], 2)}, CDT {_num(rho['norm']['cdt'], 2)}; "
              f"dis(c) ERM {_num(rho['feature_deviation']['erm'], 2)}, CDT {_num(rho['feature_deviation']['cdt'], 2)}.", ""]
    return lines


# ---------------------------------------------------------------------------------------------------
# Orderings and the report
# ---------------------------------------------------------------------------------------------------

CLAIMS = (("ERM < LDAM < LDAM-DRW", ("erm", "ldam", "ldam-drw")),
          ("ERM < CDT", ("erm", "cdt")),
          ("ERM < ERM + N_c^τ", ("erm", "erm+nc-tau")))


def pooled_std(a: Sequence[float], b: Sequence[float]) -> float | None:
    """√(((n_a − 1)s_a² + (n_b − 1)s_b²) / (n_a + n_b − 2)); None with fewer than two seeds in either."""
    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    ss = sum((x - ma) ** 2 for x in a) + sum((x - mb) ** 2 for x in b)
    return math.sqrt(ss / (len(a) + len(b) - 2))


def claim_line(order: str, name: str, chain: Sequence[str], rows: dict[str, dict[str, dict[str, Any]]]) -> str:
    """``HELD`` when the mean balanced accuracies strictly increase along ``chain``; each step's gap in
    points and in pooled stds. With fewer than 2 seeds in a row there is no spread: the line says the
    direction holds (or not) "on the means only (not judged ...)"."""
    values = {k: [v["balanced_accuracy"] for v in rows.get(k, {}).values() if v.get("balanced_accuracy") is not None]
              for k in chain}
    absent = [k for k in chain if not values[k]]
    if absent:
        return f"- {order}: {name}: not measured (no finished runs of {', '.join(_key_label(k) for k in absent)})"
    means = {k: sum(v) / len(v) for k, v in values.items()}
    steps = []
    for low, high in zip(chain, chain[1:]):
        gap = means[high] - means[low]
        pooled = pooled_std(values[low], values[high])
        in_std = "pooled std n/a (fewer than 2 seeds)" if pooled is None else (
            f"{gap / pooled:+.1f} pooled std" if pooled > 0 else "pooled std 0")
        steps.append(f"{_key_label(high)} − {_key_label(low)} = {gap:+.2f} pts ({in_std})")
    held = all(means[b] > means[a] for a, b in zip(chain, chain[1:]))
    seeds = "/".join(str(len(values[k])) for k in chain)
    verdict = "HELD" if held else "NOT HELD"
    if any(len(values[k]) < 2 for k in chain):  # a direction, not a verdict: no spread to weigh the gap
        verdict += " on the means only (not judged: fewer than 2 seeds)"
    return f"- {order}: {name}: {verdict} — " + "; ".join(steps) + f" [seeds {seeds}]"


def order_claims(order: str) -> list[tuple[str, tuple[str, ...]]]:
    """The papers' orderings that ``order`` trains: a plain method the order does not train (LDAM in the
    natural order) drops out of the chain, so the natural order states ERM < LDAM-DRW instead of "not
    measured"."""
    trained = set(PLAIN[order]) | {"cdt"}
    claims = []
    for _, chain in CLAIMS:
        kept = tuple(k for k in chain if k.partition("+")[0] in trained)
        if len(kept) >= 2:
            claims.append((" < ".join(_key_label(k) for k in kept), kept))
    return claims


def orderings(rows: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> list[str]:
    return [claim_line(order, name, chain, rows[order]) for order in ORDERS for name, chain in order_claims(order)]


def minutes_cell(values: list[float | None]) -> str:
    """Wall minutes as median (min–max): runs of one row may have shared the machine with other jobs (×8
    slower), which a mean ± std would smear over the row; the min is the idle cost, the spread shows load."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return "—"
    median = statistics.median(known)
    return f"{median:.1f}" if len(known) == 1 else f"{median:.1f} ({known[0]:.1f}–{known[-1]:.1f})"


def _key_label(key: str) -> str:
    method, _, rule = key.partition("+")
    return fmnist_lt.label(method, rule or None)


def markdown(collected: dict[str, Any], seeds: Sequence[int], command: str, cpu: str) -> str:
    rows = collected["rows"]
    n = len(seeds)
    lines = ["# Fashion-MNIST-LT in the papers' regime (N_max = 500, ρ = 100, exp, 200 epochs)", "",
             f"CPU: {cpu}. Command: `{command}`", "",
             "Test set: the full balanced 10,000, last epoch, accuracy in %, mean ± sample std over seeds "
             f"{','.join(map(str, seeds))} (a row with fewer shows `k/{n}` seeds). Train acc. = `train_acc` of the "
             "last epoch (metrics.jsonl); wall min = `timing.train_seconds` of the run as median (min–max) over "
             "seeds (post-hoc rows: their full run's; a run that shared the machine is slower, the min is the idle "
             f"cost). CDT's γ chosen by `longtail tune` on {HELDOUT_PER_CLASS} held-out images per class; post-hoc "
             "τ chosen on the held-out split of the run's held-out twin (γ = 0 candidate for ERM, the chosen γ's "
             "candidate for CDT) and applied to the full run (`--tau-from`): nothing selected on the test set.", ""]
    metrics = (*METRICS, "train_acc", "minutes")
    for order in ORDERS:
        lines += [f"## {ORDER_TITLES[order]}", "",
                  "| method | " + " | ".join(COLUMNS[m] for m in metrics) + " | seeds |",
                  "|---|" + "---|" * (len(metrics) + 1)]
        for key, per_seed in rows[order].items():
            cells = [(minutes_cell if m == "minutes" else fmnist_lt._cell)([v.get(m) for v in per_seed.values()])
                     for m in metrics]
            count = len(per_seed)
            lines.append(f"| {_key_label(key)} | " + " | ".join(cells) + f" | {count if count == n else f'{count}/{n}'} |")
        lines.append("")
    lines += ["## The papers' orderings (mean balanced accuracy; gap in pooled sample std)", "",
              *orderings(rows), ""]
    for order in ORDERS:
        table = collected["tunes"][order]
        state = "" if table["finished"] else " — tune not finished: finished candidates' results.json, no choice yet"
        lines += [f"## CDT γ tune, {order} (held-out balanced accuracy %, {HELDOUT_PER_CLASS} images per class){state}",
                  "", "| γ | held-out balanced acc. | seeds |  |", "|---|---|---|---|"]
        for row in table["rows"]:
            mean, std = row["mean"], row["std"]
            cell = "FAILED" if row.get("failed") else ("—" if mean is None else
                                                       f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}"))
            lines.append(f"| {row['gamma']:g} | {cell} | {row['seeds']}/{n} | {'**chosen**' if row['chosen'] else ''} |")
        lines.append("")
    for order, entry in (collected.get("diagnostics") or {}).items():
        lines += diagnostics_markdown(order, entry)
    if collected["missing"]:
        lines += ["## Not finished / missing", "", *(f"- {m}" for m in collected["missing"]), ""]
    return "\n".join(lines)


def write_report(plan: RegimePlan, out: Path, command: str = "", log: Callable[[str], None] = print,
                 posthoc_fn: Callable[..., dict[str, Any]] = posthoc_numbers, cpu: str | None = None,
                 analysis_fn: Callable[..., Path] = analyze_pair, data_root: str | None = None) -> Path:
    collected = collect(plan, out, log, posthoc_fn)
    collected["diagnostics"] = diagnostics(plan, out, collected["tunes"], log, analysis_fn, data_root)
    if cpu is None:
        from longtail.bench.report import machine

        cpu = machine()
    out.mkdir(parents=True, exist_ok=True)
    (out / "fmnist-lt-regime.md").write_text(markdown(collected, plan.seeds, command, cpu))
    doc = {"cpu": cpu, "seeds": plan.seeds, "runs_root": str(plan.runs_root), "tune_root": str(plan.tune_root),
           **collected, "orderings": orderings(collected["rows"])}
    (out / "fmnist-lt-regime.json").write_text(json.dumps(doc, indent=1))
    log(f"wrote {out / 'fmnist-lt-regime.md'}")
    return out / "fmnist-lt-regime.md"


def train_all(plan: RegimePlan, jobs: int, log: Callable[[str], None] = print,
              ensure: Callable[[Any], dict[str, Any]] | None = None, **tune_kwargs: Any) -> list[str]:
    """Train (reuse / resume) the plain runs, then each order's CDT tune (candidates, choice, finals;
    ``tune.json`` / ``tune.md`` written); returns the failures."""
    from longtail import tune
    from longtail.errors import LongtailError

    failures = [f"{path}: {error}" for path, error in
                tune.train_runs([run for _, _, run in plan.plain], jobs, ensure, log, what="plain runs").items()]
    for order, tplan in plan.tunes.items():
        try:
            result = tune.run_tune(tplan, jobs, ensure, log, **tune_kwargs)
            tune.write_outputs(result, plan.tune_dir(order))
            failures += result.failed
        except LongtailError as error:
            failures.append(f"cdt {order} tune: {error}")
            log(f"FAILED cdt {order} tune: {error}")
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    from longtail.errors import ConfigError, LongtailError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-root", default="runs/fmnist-lt-500", help="directory of the plain rows' runs")
    parser.add_argument("--tune-root", help="directory of the CDT tunes (default: RUNS_ROOT-tune)")
    parser.add_argument("--out", help="directory of fmnist-lt-regime.md/.json and the post-hoc cache (default RUNS_ROOT)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at once (cores / J threads each)")
    parser.add_argument("--data-root", help="folder of the Fashion-MNIST IDX files (data.root)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan and the budget, train nothing")
    mode.add_argument("--report-only", action="store_true", help="train nothing; tables from the finished runs")
    args = parser.parse_args(argv)
    try:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r} must be comma-separated integers, e.g. 0,1,2") from None
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"--seeds {args.seeds!r} must be distinct integers, e.g. 0,1,2")
        if args.jobs < 1:
            raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
        runs_root = Path(args.runs_root)
        tune_root = Path(args.tune_root) if args.tune_root else runs_root.with_name(runs_root.name + "-tune")
        overrides = [f"data.root={args.data_root}"] if args.data_root else []
        plan = make_plan(runs_root, tune_root, seeds, overrides=overrides)
        print(format_plan(plan, args.jobs))
        if args.dry_run:
            return 0
        if not args.report_only:
            for failure in train_all(plan, args.jobs):
                print(f"FAILED {failure}")
        command = "python benchmarks/fmnist_lt_regime.py " + " ".join(sys.argv[1:] if argv is None else argv)
        write_report(plan, Path(args.out) if args.out else runs_root, command.strip(), data_root=args.data_root)
    except LongtailError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
