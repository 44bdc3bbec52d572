"""``longtail reproduce``: plan, train (reusing finished runs), apply post-hoc rules, write markdown.

Plan. Each row of a table names a config; for every seed s the run directory is
``OUT/<config path without .yaml>/seed-<s>`` (rows sharing a config share its runs: the vanilla and
the post-hoc rows of one training objective are one training run). User overrides
(``train.epochs=2``) and the data root apply to every run; the training seed is ``train.seed = s``
(the long-tailed subset, ``data.seed``, stays the config's, as in the reference code).

Reuse. A run directory with ``results.json`` whose saved config equals the requested one is
skipped; one with checkpoints but no results is resumed (exactly, see ``longtail.engine.trainer``);
one whose config differs is an error (use another ``--out``) — except a held-out run trained with
``eval.test=true`` where its config now says false (the ``-heldout`` configs before they set it): the
same training, kept as it was started.

Post-hoc rows (CDT appendix B.6) evaluate the run of the row's config, trained on the FULL training
set — the same run as the row without post-processing. A rule with a parameter (τ of ‖w‖^τ and N_c^τ)
takes it from the held-out split of the row's ``tau_from`` run (the same config with K images per class
held out and ``eval.test: false``, ``<stem>-heldout.yaml``: it never reads the test set): ``longtail eval FULL_RUN --posthoc RULE --tau-from HELDOUT_RUN``
through its Python function ``longtail.posthoc.evaluate.evaluate_run`` (τ by balanced accuracy on the
held-out split, the rule fitted on the full run's training features and scored on the test set). Rules
without a parameter (NCM, cRT) are fitted on the full run directly. The classes the held-out split
tunes on and leaves out (too small to give K) are in the row's notes.

Tuned rows (CDT Table 9) go through ``longtail tune``'s code (:func:`longtail.tune.run_tune`): every
value of the grid is trained per seed with the held-out config and ``eval.test=false`` (the candidates
never read the test set); the value whose model has the best held-out balanced accuracy, averaged over
the seeds — for a post-hoc row jointly with the rule's τ, chosen on the same split — is retrained with
the row's config on the full training set (one run per seed) and the chosen τ applied, fixed, to it.
Ties follow :func:`longtail.selection.choose` (closest to γ = 0 / τ = 0, then the smaller).

Reported numbers: the LAST epoch, top-1 / top-5 accuracy in % on the (balanced) test set, mean ± sample
standard deviation over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longtail.engine.summary import mean_std
from longtail.errors import ConfigError, LongtailError
from longtail.reproduce.tables import TABLE_TITLES, TABLES, Row, paper_number, table_rows, variant_path

DEFAULT_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


# ---------------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------------


@dataclass
class PlannedRun:
    """One training run: a config file plus overrides, into ``run_dir``."""

    config: Path
    overrides: tuple[str, ...]
    seed: int
    run_dir: Path


@dataclass
class PlannedRow:
    row: Row
    config: Path | None  # resolved file (variant applied), None when the row cannot run
    variant_used: bool
    runs: list[PlannedRun]  # one per seed (for tuned rows: the grid runs, the final run comes later)
    skip_reason: str = ""
    pretrain_runs: list[PlannedRun] = field(default_factory=list)  # one per seed: trained first (``row.pretrain``)
    # the runs whose held-out split chooses the post-hoc parameter (one per seed; ``row.tau_from``)
    tau_runs: list[PlannedRun] = field(default_factory=list)


@dataclass
class Plan:
    table: str
    seeds: list[int]
    out: Path
    rows: list[PlannedRow]
    variant: str | None = None
    overrides: tuple[str, ...] = ()
    configs_dir: Path = DEFAULT_CONFIGS
    data_root: str | Path | None = None

    def unique_runs(self) -> list[PlannedRun]:
        seen: dict[Path, PlannedRun] = {}
        for planned in self.rows:
            for run in (*planned.pretrain_runs, *planned.runs, *planned.tau_runs):
                seen.setdefault(run.run_dir, run)
        return list(seen.values())


def data_root_override(config: Path, data_root: str | Path | None) -> list[str]:
    """``data.root=DIR`` (``DIR/inaturalist2018`` for iNaturalist when that folder exists)."""
    if data_root is None:
        return []
    from longtail.config import load_yaml

    name = (load_yaml(config).get("data") or {}).get("name")
    root = Path(data_root)
    if name == "inaturalist2018" and (root / "inaturalist2018").is_dir():
        root = root / "inaturalist2018"
    return [f"data.root={root}"]


def _run_dir(out: Path, configs_dir: Path, config: Path, seed: int, tag: str = "") -> Path:
    rel = config.resolve().relative_to(configs_dir.resolve()).with_suffix("")
    directory = out / rel
    return (directory / tag if tag else directory) / f"seed-{seed}"


def tune_tag(key: str, value: float) -> str:
    return f"{key.rsplit('.', 1)[-1]}-{value:g}"


def overrides_tag(overrides: Sequence[str]) -> str:
    """``("analysis.track_every=160",)`` → ``track_every-160``: the run directory of a row's own overrides."""
    return "+".join(f"{key.rsplit('.', 1)[-1]}-{value}" for key, value in (o.split("=", 1) for o in overrides))


def make_plan(
    table: str,
    seeds: Sequence[int] = (0,),
    out: str | Path = "runs/reproduce",
    configs_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    overrides: Sequence[str] = (),
    variant: str | None = None,
) -> Plan:
    """The runs behind every row of ``table`` (nothing is trained or read besides the config files)."""
    configs = Path(configs_dir) if configs_dir is not None else DEFAULT_CONFIGS
    out = Path(out)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct integers, got {seeds}")
    planned_rows = []
    for row in table_rows(table):
        if row.config is None:
            planned_rows.append(PlannedRow(row, None, False, [], skip_reason=row.note or "no config"))
            continue
        path, used = configs / row.config, False
        if variant:
            candidate = configs / variant_path(row.config, variant)
            if candidate.is_file():
                path, used = candidate, True
        if not path.is_file():
            planned_rows.append(PlannedRow(row, None, False, [], skip_reason=f"configs/{row.config} missing: {row.note}"))
            continue
        runs, pretrain_runs, tau_runs = [], [], []
        tau_cfg = _variant_file(configs, row.tau_from, variant) if row.tau_from and _has_param(row.posthoc) else None
        for seed in seeds:
            if tau_cfg is not None:
                tau_runs.append(PlannedRun(tau_cfg, (*data_root_override(tau_cfg, data_root), *overrides), seed,
                                           _run_dir(out, configs, tau_cfg, seed)))
            if row.tune is None:
                extra = (*data_root_override(path, data_root), *row.overrides, *overrides)
                if row.pretrain is not None:  # trained first; its weights start this run (model.init_from)
                    pre_cfg = configs / row.pretrain
                    pre = PlannedRun(pre_cfg, (*data_root_override(pre_cfg, data_root), *overrides), seed,
                                     _run_dir(out, configs, pre_cfg, seed))
                    pretrain_runs.append(pre)
                    extra = (*extra, f"model.init_from={pre.run_dir}")
                runs.append(PlannedRun(path, extra, seed, _run_dir(out, configs, path, seed, overrides_tag(row.overrides))))
            else:
                tune_cfg = _variant_file(configs, row.tune.heldout_config, variant)
                for value in row.tune.grid:
                    extra = (*data_root_override(tune_cfg, data_root), *overrides, f"{row.tune.key}={value}",
                             "eval.test=false")  # candidates never evaluate on the test set
                    runs.append(PlannedRun(tune_cfg, extra, seed,
                                           _run_dir(out, configs, tune_cfg, seed, tune_tag(row.tune.key, value))))
        planned_rows.append(PlannedRow(row, path, used, runs, pretrain_runs=pretrain_runs, tau_runs=tau_runs))
    return Plan(table, seeds, out, planned_rows, variant, tuple(overrides), configs, data_root)


def _variant_file(configs: Path, config: str, variant: str | None) -> Path:
    """``configs/<config>``, or its ``variant`` file where that exists."""
    if variant and (configs / variant_path(config, variant)).is_file():
        return configs / variant_path(config, variant)
    return configs / config


def format_plan(plan: Plan) -> str:
    """The dry-run text: per row, the runs it trains and evaluates (per seed) and the run each tuned value
    is chosen on; then the unique runs."""
    configs = plan.configs_dir

    def rel(path: Path) -> str:
        return f"configs/{path.resolve().relative_to(configs.resolve())}"

    lines = [f"{plan.table}: {TABLE_TITLES.get(plan.table, '')}",
             f"seeds {','.join(map(str, plan.seeds))}; runs under {plan.out}"
             + (f"; variant {plan.variant}" if plan.variant else "")
             + (f"; overrides {' '.join(plan.overrides)}" if plan.overrides else ""), ""]
    for planned in plan.rows:
        row = planned.row
        head = f"- {row.setting:18s} {row.label:22s}"
        if planned.config is None:
            lines.append(f"{head} NOT RUN: {planned.skip_reason}")
            continue
        post = ""
        if row.posthoc:
            post = f"; post-hoc {row.posthoc}" + "".join(f" {k}={v}" for k, v in row.posthoc_params)
            post += f", fitted on the training split of configs/{row.fit_on}" if row.fit_on else ""
        if row.diagnostic:
            post += f"; diagnostic {row.diagnostic} of the finished run"
        if row.overrides:
            post += f" (with {' '.join(row.overrides)})"
        if row.pretrain:
            post += f"; starts from the run of configs/{row.pretrain} (model.init_from)"
        if row.tune is not None:
            grid = ",".join(f"{v:g}" for v in row.tune.grid)
            joint = f" jointly with the {row.posthoc} parameter" if row.posthoc and _has_param(row.posthoc) else ""
            lines.append(f"{head} tune {row.tune.key} in [{grid}]{joint} with configs/{row.tune.heldout_config}, "
                         f"then retrain {rel(planned.config)} with the best value{post}")
            name = row.tune.key.rsplit(".", 1)[-1]
            for seed in plan.seeds:
                candidates = [r for r in planned.runs if r.seed == seed]
                final = _run_dir(plan.out, configs, planned.config, seed, tune_tag(row.tune.key, 0.0)).parent.parent
                lines.append(f"    seed {seed}: trains {candidates[0].run_dir.parent.parent}/{name}-<v>/seed-{seed} for each "
                             f"v (held-out split, value chosen there); retrains {final}/{name}-<chosen>/seed-{seed} "
                             "(full training set)" + (", evaluated with the chosen τ" if joint else ""))
            continue
        lines.append(f"{head} {rel(planned.config)}{post}")
        for seed in plan.seeds:
            (run,) = [r for r in planned.runs if r.seed == seed]
            text = f"    seed {seed}: {'evaluates' if row.posthoc else 'trains'} {run.run_dir} (full training set)"
            tau = [r for r in planned.tau_runs if r.seed == seed]
            if tau:
                text += f"; τ chosen on the held-out split of {tau[0].run_dir} <- {rel(tau[0].config)}"
            lines.append(text)
    runs = plan.unique_runs()
    lines += ["", f"{len(runs)} training runs (before any tuned retraining; pre-training runs first):"]
    lines += [f"  {run.run_dir}  <- {rel(run.config)}" + (f" {' '.join(run.overrides)}" if run.overrides else "")
              for run in runs]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Training (reusing finished runs)
# ---------------------------------------------------------------------------------------------------

TrainFn = Callable[[Any, Path, bool], dict[str, Any]]


def _default_fit(config: Any, run_dir: Path, resume: bool) -> dict[str, Any]:
    from longtail.engine.trainer import fit

    return fit(config, run_dir, resume=resume)


def run_config(run: PlannedRun):  # noqa: ANN201 - a longtail.config.Config
    from longtail.config import load_config

    config = load_config(run.config, list(run.overrides))
    config.train.seed = run.seed
    return config


def ensure_trained(run: PlannedRun, train: TrainFn = _default_fit, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``results.json`` of ``run``: read when finished with the same config, else trained or resumed."""
    from longtail.config import config_diff, load_config

    config = run_config(run)
    results_path = run.run_dir / "results.json"
    saved_path = run.run_dir / "config.yaml"
    if saved_path.is_file():
        saved = load_config(saved_path)
        diff = config_diff(saved, config)
        if diff == ["eval.test: True -> False"]:
            # a -heldout run trained before its config set eval.test=false: the same training (the test
            # evaluation changes no weight and no random stream), finished or resumed as it was started;
            # nothing reads its test metrics (post-hoc rows take only τ from it)
            log(f"{run.run_dir} was trained with eval.test=true: kept (its test metrics are not used)")
            config.eval.test, diff = True, []
        if diff:
            raise LongtailError(
                f"{run.run_dir} holds a run with another config ({'; '.join(diff[:3])}); pass another --out "
                "or delete that directory"
            )
        if results_path.is_file():
            log(f"reuse {run.run_dir}")
            return json.loads(results_path.read_text())
        log(f"resume {run.run_dir}")
        return train(config, run.run_dir, True)
    log(f"train {run.run_dir}")
    run.run_dir.mkdir(parents=True, exist_ok=True)
    return train(config, run.run_dir, False)


# ---------------------------------------------------------------------------------------------------
# Post-hoc evaluation of a finished run
# ---------------------------------------------------------------------------------------------------


@dataclass
class Features:
    """Penultimate features of a run's splits and the model's head."""

    head: Any
    class_counts: list[int]
    train: tuple[Any, Any]
    heldout: tuple[Any, Any] | None
    test: tuple[Any, Any] | None


def load_features(run_dir: Path, with_test: bool | None = None) -> Features:
    """Reload a finished run (:meth:`Run.load_trained <longtail.engine.run.Run.load_trained>`, fp32) and
    extract the features of its splits. ``with_test`` (default: the run's ``eval.test``) False leaves the
    test split unread (``test`` is None): a `longtail tune` candidate's features."""
    from longtail.engine.run import Run

    trained = Run.load_trained(run_dir, precision="fp32", with_test=with_test)
    splits = ("train",) + (("test",) if trained.data.test is not None else ()) \
        + (("heldout",) if trained.data.heldout is not None else ())
    feats = {split: trained.outputs(split)[::2] for split in splits}  # (features, labels)
    return Features(trained.model.head.cpu().float(), trained.class_counts, feats["train"], feats.get("heldout"),
                    feats.get("test"))


def heldout_balanced_accuracy(features: Features) -> float:
    """Balanced accuracy of the model's own logits on the held-out split (for tuning training γ)."""
    from longtail.tune import score_features

    return score_features(features)[0]["balanced_accuracy"]


PosthocFn = Callable[[Path, str, "float | None", bool], dict[str, Any]]
DiagnosticFn = Callable[[Path, str], dict[str, Any]]


def evaluate_diagnostic(run_dir: Path, name: str) -> dict[str, Any]:
    """A diagnostic of a finished run (:func:`longtail.analysis.probes.run_diagnostic`): ``top1`` etc. as fractions."""
    from longtail.analysis.probes import run_diagnostic

    return run_diagnostic(run_dir, name)


def evaluate_posthoc(run_dir: Path, rule: str, param: float | None, tune: bool,
                     rule_params: dict[str, Any] | None = None, fit_on: Path | None = None,
                     fit_overrides: Sequence[str] = (), tau_from: Path | None = None) -> dict[str, Any]:
    """``longtail eval RUN --posthoc RULE [--param P | --tune heldout | --tau-from HELDOUT_RUN] [--rule-param
    K=V] [--fit-on CONFIG]`` through its Python function: test ``top1``/``top5`` (fractions), the ``param``
    used and, when it was chosen on a held-out split, ``tuning`` (with the classes tuned on / left out)."""
    from longtail.posthoc.evaluate import evaluate_run

    return evaluate_run(run_dir, rule, param, "heldout" if tune else None, rule_params=rule_params, fit_on=fit_on,
                        fit_overrides=tuple(fit_overrides), tau_from=tau_from)


def heldout_text(tuning: dict[str, Any]) -> str:
    """``3 per class, 50 classes tuned on, 50 left out (50-99)``: the classes behind a chosen value."""
    from longtail.data.subset import format_classes

    left = tuning["classes_left_out"]
    return (f"{tuning['heldout_per_class']} per class, {len(tuning['classes_tuned_on'])} classes tuned on, "
            f"{len(left)} left out" + (f" ({format_classes(left)})" if left else ""))


def _has_param(rule: str | None) -> bool:
    if rule is None:
        return False
    from longtail.registry import POSTHOC

    return getattr(POSTHOC.get(rule), "param_name", None) is not None


# ---------------------------------------------------------------------------------------------------
# Executing a plan
# ---------------------------------------------------------------------------------------------------


@dataclass
class RowResult:
    row: Row
    per_seed: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> {"top1": %, "top5": %}
    budget: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""
    failed: str = ""  # the error that stopped this row (the other rows still ran)
    chosen: dict[int, str] = field(default_factory=dict)  # seed -> chosen hyper-parameters (text)
    heldout: dict[int, str] = field(default_factory=dict)  # seed -> the held-out split's classes (text)


def _pct(results: dict[str, Any], metric: str) -> float | None:
    value = results.get(metric)
    return None if value is None else 100.0 * float(value)


def execute(plan: Plan, train: TrainFn = _default_fit, log: Callable[[str], None] = print,
            features_fn: Callable[[Path], Features] | None = None,
            posthoc_fn: PosthocFn = evaluate_posthoc,
            classes_fn: Callable[[Any], Any] | None = None,
            diagnostic_fn: DiagnosticFn = evaluate_diagnostic) -> list[RowResult]:
    """Train what is missing, evaluate every row; returns one :class:`RowResult` per row.

    ``features_fn`` (default: the run's features, its test split unread) scores the tuned rows'
    candidates; ``classes_fn`` (default :func:`longtail.tune.heldout_classes`) checks their held-out
    classes before training; ``diagnostic_fn`` evaluates the analysis rows (CDT Table 1, LDAM Fig. 6)."""
    from longtail import tune

    features_fn = features_fn or tune.heldout_features
    classes_fn = classes_fn or tune.heldout_classes
    cache: dict[Path, dict[str, Any]] = {}
    feature_cache: dict[Path, Features] = {}

    def trained(run: PlannedRun) -> dict[str, Any]:
        if run.run_dir not in cache:
            cache[run.run_dir] = ensure_trained(run, train, log)
        return cache[run.run_dir]

    def features(run_dir: Path) -> Features:
        if run_dir not in feature_cache:
            feature_cache[run_dir] = features_fn(run_dir)
        return feature_cache[run_dir]

    out = []
    for planned in plan.rows:
        row = planned.row
        result = RowResult(row)
        if planned.config is None:
            result.skipped = planned.skip_reason
            out.append(result)
            continue
        try:
            result.budget = budget(planned.config, plan.overrides)
            _evaluate_row(plan, planned, result, trained, features, posthoc_fn, log, classes_fn, diagnostic_fn)
        except LongtailError as error:  # one broken row must not lose the others' numbers
            result.failed = str(error)
            log(f"FAILED {row.table} {row.setting} {row.label}: {error}")
        out.append(result)
    return out


def _evaluate_row(plan: Plan, planned: PlannedRow, result: RowResult,
                  trained: Callable[[PlannedRun], dict[str, Any]], features: Callable[[Path], Features],
                  posthoc_fn: PosthocFn, log: Callable[[str], None] = print,
                  classes_fn: Callable[[Any], Any] | None = None,
                  diagnostic_fn: DiagnosticFn = evaluate_diagnostic) -> None:
    row = planned.row
    assert planned.config is not None
    if row.tune is not None:
        _evaluate_tuned_row(plan, planned, result, trained, features, posthoc_fn, log, classes_fn)
        return
    for seed in plan.seeds:
        (run,) = [r for r in planned.runs if r.seed == seed]
        for pre in planned.pretrain_runs:
            if pre.seed == seed:
                trained(pre)
        results = trained(run)
        if row.diagnostic is not None:
            diag = diagnostic_fn(run.run_dir, row.diagnostic)
            result.per_seed[seed] = {m: 100.0 * diag[m] for m in row.metrics}
            if diag.get("epoch") is not None:
                result.chosen[seed] = f"snapshot epoch {diag['epoch']}"
            continue
        if row.posthoc is None:
            result.per_seed[seed] = {m: _pct(results, m) for m in row.metrics}
            continue
        extra: dict[str, Any] = {}
        if row.posthoc_params:
            extra["rule_params"] = dict(row.posthoc_params)
        if row.fit_on:  # the other training set, with the user's overrides (data.n_max=...)
            extra["fit_on"] = plan.configs_dir / row.fit_on
            extra["fit_overrides"] = (*data_root_override(extra["fit_on"], plan.data_root), *plan.overrides)
        tau = [r for r in planned.tau_runs if r.seed == seed]
        if tau:  # τ chosen on the held-out run's held-out split, applied to the full run
            trained(tau[0])
            extra["tau_from"] = tau[0].run_dir
        elif _has_param(row.posthoc):
            raise ConfigError(f"row {row.setting} {row.label} names no held-out run to choose "
                              f"{row.posthoc}'s parameter on (tau_from)")
        post = posthoc_fn(run.run_dir, row.posthoc, None, False, **extra)
        result.per_seed[seed] = {m: 100.0 * post[m] for m in row.metrics}
        if post.get("param") is not None:
            result.chosen[seed] = f"τ={post['param']:g}"
        if post.get("tuning"):
            result.heldout[seed] = heldout_text(post["tuning"])


def tuned_row_plan(plan: Plan, planned: PlannedRow) -> Any:
    """The :class:`longtail.tune.TunePlan` of a tuned row: the grid on the row's held-out config (with
    ``eval.test=false``) under ``<held-out config>/<key>-<v>/seed-<s>``, the chosen value retrained with the
    row's config under ``<config>/<key>-<v>/seed-<s>``."""
    from longtail import tune

    row, configs = planned.row, plan.configs_dir
    assert row.tune is not None and planned.config is not None and planned.runs
    tune_cfg, key = planned.runs[0].config, row.tune.key
    return tune.build_plan(
        [tune.Grid(key, tuple(row.tune.grid))], plan.seeds,
        candidate_config=tune_cfg, candidate_prefix=(*data_root_override(tune_cfg, plan.data_root), *plan.overrides),
        candidate_suffix=("eval.test=false",),
        candidate_dir=lambda point, seed: _run_dir(plan.out, configs, tune_cfg, seed, tune_tag(key, point[0])),
        final_config=planned.config,
        final_prefix=(*data_root_override(planned.config, plan.data_root), *plan.overrides), final_suffix=(),
        final_dir=lambda point, seed: _run_dir(plan.out, configs, planned.config, seed, tune_tag(key, float(point[0]))),
        posthoc=row.posthoc, config_label=str(planned.config),
    )


def _evaluate_tuned_row(plan: Plan, planned: PlannedRow, result: RowResult,
                        trained: Callable[[PlannedRun], dict[str, Any]], features: Callable[[Path], Features],
                        posthoc_fn: PosthocFn, log: Callable[[str], None],
                        classes_fn: Callable[[Any], Any] | None) -> None:
    """A tuned row through ``longtail tune``'s code: one choice for all seeds, a final run per seed."""
    from longtail import tune

    row = planned.row
    kwargs: dict[str, Any] = {} if classes_fn is None else {"classes_fn": classes_fn}
    outcome = tune.run_tune(tuned_row_plan(plan, planned), ensure=trained, log=log,
                            features_fn=features, posthoc_fn=posthoc_fn, **kwargs)
    if outcome.failed:
        raise LongtailError("; ".join(outcome.failed))
    chosen = outcome.chosen_text()
    classes = heldout_text(next(iter(outcome.classes.values())).to_dict())
    for seed, final in outcome.final.items():
        result.heldout[seed] = classes
        if row.posthoc is None:
            result.per_seed[seed] = {m: _pct(final["results"], m) for m in row.metrics}
        else:
            result.per_seed[seed] = {m: 100.0 * final["posthoc"][m] for m in row.metrics}
        result.chosen[seed] = chosen


# ---------------------------------------------------------------------------------------------------
# Budget and markdown
# ---------------------------------------------------------------------------------------------------


def _augmentation(config: Any, kind: str | None) -> str:
    data = config.data
    if not data.augment:
        return "none"
    if kind == "stream":
        crop = {"resize-crop": "resize + random crop", "pad-crop": f"pad {data.pad} + crop"}.get(
            getattr(data, "train_transform", "auto"), "random resized crop")
        return f"{crop} + flip" if data.flip else crop
    if kind == "text":
        return "none"
    parts = []
    if data.pad:
        parts.append(f"pad {data.pad} + crop")
    if data.flip:
        parts.append("flip")
    return " + ".join(parts) or "none"


_PARAM_CACHE: dict[tuple[str, str, int, str], int | None] = {}


def model_parameters(config: Any, num_classes: int | None, channels: int | None) -> int | None:
    """Number of trainable parameters of the configured model (None when it depends on the data, e.g.
    the BiLSTM's vocabulary)."""
    if num_classes is None:
        return None
    key = (config.model.name, config.model.head, num_classes, json.dumps(config.model.params, sort_keys=True))
    if key not in _PARAM_CACHE:
        from longtail.models import create_model

        params = dict(config.model.params)
        if config.model.name == "bilstm" and "vocab_size" not in params:
            _PARAM_CACHE[key] = None
        else:
            if channels:
                params.setdefault("in_channels", channels)
            model = create_model(config.model.name, num_classes=num_classes, head=config.model.head, **params)
            _PARAM_CACHE[key] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return _PARAM_CACHE[key]


def budget(config_path: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Epochs, model, parameter count and augmentation of a config (with the user's overrides)."""
    from longtail.config import load_config
    from longtail.data.datasets import dataset_info

    config = load_config(config_path, [o for o in overrides if not o.startswith("data.root=")])
    info = dataset_info(config.data.name)
    return {
        "epochs": config.train.epochs,
        "model": config.model.name,
        "params": model_parameters(config, info.num_classes, info.channels),
        "augmentation": _augmentation(config, getattr(info, "kind", None)),
        "batch": config.optim.batch_size,
    }


def _cell(values: Sequence[float | None]) -> str:
    mean, std = mean_std(values)
    if mean is None:
        return "—"
    return f"{mean:.2f}" + ("" if std is None else f" ± {std:.2f}")


def _params_text(n: int | None) -> str:
    if n is None:
        return "vocab-dependent"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def markdown_table(table: str, results: Sequence[RowResult], seeds: Sequence[int]) -> str:
    """The table as markdown: ours (mean ± std over seeds, last epoch) beside the paper's number."""
    metrics: list[str] = []
    for res in results:
        metrics += [m for m in res.row.metrics if m not in metrics]
    header = ["setting", "method"]
    for m in metrics:
        name = "top-1" if m == "top1" else "top-5"
        header += [f"ours {name} (%)", f"paper {name} (%)"]
    header += ["budget", "seeds", "notes"]
    source = f"Paper numbers: {TABLES[table].source}; — = no published number. " if table in TABLES else ""
    lines = [f"### {TABLE_TITLES.get(table, table)}", "",
             f"{source}Ours: last epoch, mean ± sample std over seeds {','.join(map(str, seeds))}; accuracy in % on the "
             "balanced test set. Post-hoc parameters chosen on the held-out split, never on the test set.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for res in results:
        row = res.row
        cells = [row.setting, row.label]
        for m in metrics:
            if m not in row.metrics:
                cells += ["", ""]
                continue
            ours = _cell([res.per_seed[s].get(m) for s in sorted(res.per_seed)]) if res.per_seed else "—"
            paper = paper_number(table, row.setting, row.method, row.posthoc, m, row.diagnostic)
            cells += [ours, "—" if paper is None else f"{paper:.2f}"]
        b = res.budget
        cells.append(f"{b['epochs']} ep, {b['model']} {_params_text(b['params'])}, {b['augmentation']}" if b else "")
        cells.append(str(len(res.per_seed)))
        notes = []
        if res.skipped:
            notes.append(f"not run: {res.skipped}")
        if res.failed:
            notes.append(f"FAILED: {res.failed}")
        if res.chosen:
            notes.append("chosen: " + "; ".join(f"seed {s}: {c}" for s, c in sorted(res.chosen.items())))
        if res.heldout:
            texts = sorted(set(res.heldout.values()))
            notes.append("held-out split: " + ("; ".join(texts) if len(texts) > 1 else texts[0]))
        if row.note and not res.skipped:
            notes.append(row.note)
        cells.append(" ".join(notes).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
