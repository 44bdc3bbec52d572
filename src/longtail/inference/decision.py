"""The decision of a trained run: model logits → post-hoc rule (optional) → temperature scaling, last.

The one place where a decision is built — for ``longtail predict`` and ``export`` and for ``longtail eval``
(:func:`longtail.posthoc.evaluate.evaluate_run` calls :func:`build_decision`). Where each number comes
from (never from the test split):

- the held-out split that chooses: HELDOUT_RUN's when ``tau_from`` is given (with HELDOUT_RUN's model
  and training split — a run trained with ``data.heldout_per_class=K``; CDT appendix B.6: tune on the
  held-out run, report the model retrained on the full training set, which has no held-out split), else
  RUN's own. Everything chosen on held-out data comes from that one split: τ and T;
- the rule's parameter τ: ``param`` (given), the rule's default, or grid-searched by balanced accuracy
  on that held-out split (``tune="heldout"`` on RUN's own, ``tau_from`` on HELDOUT_RUN's) —
  :func:`choose_param`;
- the rule's fitted state (class means of NCM, the cRT/LWS classifier): RUN's training split (or ``fit``,
  the training split another config builds: ``eval --fit-on``);
- the temperature T (``temperature="heldout"``): minimises the NLL of the rule's scores on that held-out
  split (with ``tau_from``: HELDOUT_RUN's model and the rule, with the chosen τ, fitted on HELDOUT_RUN's
  training split, as for τ); or given as a number.

``Decision.scores(features, logits)`` = rule scores (or logits) / T: their softmax is the reported
probability, their argmax the prediction. :class:`DecisionOptions` holds the flags of the three commands
(``longtail.commands._decision`` parses them) and refuses bad combinations before any data is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from longtail.errors import ConfigError


@dataclass
class Decision:
    """A fitted rule (or none) and a temperature; ``metadata`` records where each came from."""

    rule: Any
    head: Any
    temperature: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def rule_scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The rule's scores (or the logits), before temperature scaling."""
        return _rule_scores(self.rule, self.head, features, logits)

    def scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Final decision values: rule scores (or the logits) divided by T."""
        return self.rule_scores(features, logits) / self.temperature


@dataclass(frozen=True)
class DecisionOptions:
    """The decision flags (``--posthoc --param --tune --tau-from --grid --rule-param --temperature``) as
    :func:`build_decision`'s keyword arguments; ``tau_from`` is HELDOUT_RUN's directory."""

    posthoc: str | None = None
    param: float | None = None
    tune: str | None = None
    tau_from: str | Path | None = None
    temperature: str | float | None = None
    rule_params: dict[str, Any] = field(default_factory=dict)
    grid: list[float] | None = None

    def kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def check(self) -> None:
        """Bad combinations of flags: one-line ``ConfigError`` naming the fix; reads no run and no data."""
        from longtail.registry import POSTHOC

        if sum(x is not None for x in (self.param, self.tune, self.tau_from)) > 1:
            raise ConfigError("give one of --param, --tune heldout and --tau-from HELDOUT_RUN")
        if self.tune is not None and self.tune != "heldout":
            raise ConfigError(f"--tune {self.tune}: the only split to tune on is 'heldout'")
        if self.temperature is not None and self.temperature != "heldout":
            value = self.temperature
            if isinstance(value, str) or not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"--temperature {value!r}: give 'heldout' (fit T on the held-out split) or a number > 0")
        t_heldout = self.temperature == "heldout"
        if self.posthoc is None:
            if self.param is not None or self.tune or self.grid or self.rule_params:
                raise ConfigError("--param/--tune/--grid/--rule-param need a rule: add --posthoc NAME "
                                  "(see `longtail list posthoc`)")  # fmt: skip
            if self.tau_from is not None and not t_heldout:
                raise ConfigError(
                    f"--tau-from {self.tau_from} chooses nothing: τ and --tau-from need a rule with a parameter (add "
                    "--posthoc NAME, see `longtail list posthoc`), or add --temperature heldout to fit only T on its "
                    "held-out split"
                )
            return
        param_name = getattr(POSTHOC.get(self.posthoc), "param_name", None)
        if param_name is None:
            if self.param is not None or self.tune or self.grid:
                raise ConfigError(f"post-hoc rule {self.posthoc!r} has no parameter; drop --param/--tune/--grid")
            if self.tau_from is not None and not t_heldout:
                raise ConfigError(
                    f"post-hoc rule {self.posthoc!r} has no parameter: --tau-from {self.tau_from} chooses nothing; "
                    "drop it, or add --temperature heldout to fit T on its held-out split"
                )
        elif self.grid and self.tune is None and self.tau_from is None:
            raise ConfigError("--grid is searched only with --tune heldout or --tau-from HELDOUT_RUN; add one of "
                              "them or give --param")  # fmt: skip


def check_sources(options: DecisionOptions, run_config: Any, run_dir: str | Path,
                  held_config: Any = None, held_dir: str | Path | None = None) -> None:
    """What the held-out choices need of the runs' configs (before their data is read): RUN's own held-out
    split for ``--tune heldout`` and for ``--temperature heldout`` without ``--tau-from``; with
    ``--tau-from``, HELDOUT_RUN's held-out split and the same data section but ``heldout_per_class``."""
    own = run_config.data.heldout_per_class > 0
    if options.tune == "heldout" and not own:
        raise ConfigError(
            f"--tune heldout: run {run_dir} has no held-out split; retrain with data.heldout_per_class=K "
            "(e.g. 3 per class, CDT appendix B.6), give --param, or --tau-from a run trained with one"
        )
    if options.temperature == "heldout" and options.tau_from is None and not own:
        raise ConfigError(
            f"--temperature heldout: run {run_dir} has no held-out split to fit T on; retrain with "
            "data.heldout_per_class=K, give --tau-from HELDOUT_RUN (a run trained with one) or --temperature T"
        )
    if held_config is None:
        return
    if held_config.data.heldout_per_class <= 0:
        raise ConfigError(
            f"--tau-from {held_dir}: that run has no held-out split; give the run of the -heldout config "
            "(trained with data.heldout_per_class=K)"
        )
    ignore = {"heldout_per_class", "root", "workers"}
    a, b = run_config.to_dict()["data"], held_config.to_dict()["data"]
    differ = [f"data.{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b))
              if k not in ignore and a.get(k) != b.get(k)]  # fmt: skip
    if differ:
        raise ConfigError(
            f"--tau-from {held_dir} was trained on other data than {run_dir} ({'; '.join(differ[:3])}); give the "
            "held-out run of the same data set and long-tailed profile"
        )


def _rule_scores(rule: Any, head: Any, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return logits if rule is None else rule.scores(features, head)


def _fit_rule(run: Any, name: str, params: dict[str, Any],
              fit: tuple[torch.Tensor, torch.Tensor, list[int]] | None = None) -> Any:
    from longtail.registry import POSTHOC

    if fit is None:
        features, _, labels = run.outputs("train")
        fit = (features, labels, list(run.class_counts))
    rule = POSTHOC.create(name, **params)
    rule.fit(fit[0], fit[1], run.model.head, fit[2])
    return rule


def build_decision(
    run: Any,
    posthoc: str | None = None,
    param: float | None = None,
    tune: str | None = None,
    tau_from: Any = None,
    temperature: str | float | None = None,
    rule_params: dict[str, Any] | None = None,
    grid: list[float] | None = None,
    *,
    fit: tuple[torch.Tensor, torch.Tensor, list[int]] | None = None,
) -> Decision:
    """Build ``run``'s decision (see the module docstring). ``run`` is a loaded run
    (:class:`~longtail.inference.loading.TrainedRun`); ``tau_from`` HELDOUT_RUN, loaded or its directory
    (then loaded without its test split, :func:`load_tau_from`), or ``None``; ``fit`` = ``(features, labels,
    class_counts)`` of the training split the rule is fitted on for RUN (default: RUN's)."""
    from longtail.posthoc.temperature import fit_temperature
    from longtail.registry import POSTHOC

    held_dir = None if tau_from is None else tau_from if isinstance(tau_from, (str, Path)) else tau_from.run_dir
    options = DecisionOptions(posthoc, param, tune, held_dir, temperature, dict(rule_params or {}), grid)
    options.check()
    by_path = isinstance(tau_from, (str, Path))
    held_config = None if tau_from is None else _config_of(tau_from) if by_path else tau_from.config
    check_sources(options, run.config, run.run_dir, held_config, held_dir)  # before HELDOUT_RUN's data is read
    if by_path:
        tau_from = load_tau_from(tau_from, run.accel.device, run.batch_size)
    if tau_from is not None:
        _check_same_classes(run, tau_from)
    source = run if tau_from is None else tau_from  # the run whose held-out split chooses τ and T
    rule_params = options.rule_params
    meta: dict[str, Any] = {"posthoc": posthoc, "param_name": None, "param": None, "param_source": None,
                            "rule_params": dict(rule_params), "tau_from": None if held_dir is None else str(held_dir)}  # fmt: skip
    rule = None
    head = run.model.head
    chosen: dict[str, Any] = {}
    if posthoc is not None:
        param_name = getattr(POSTHOC.get(posthoc), "param_name", None)
        source_text = "given" if param is not None else "default"
        if param_name is not None and (tune == "heldout" or tau_from is not None):
            param, meta["tuning"] = choose_param(source, posthoc, grid, rule_params,
                                                 fit=fit if source is run else None)  # fmt: skip
            source_text = f"tuned on the held-out split of {source.run_dir}" + (" (--tau-from)" if tau_from is not None else "")
        if param is not None and param_name is not None:
            chosen[param_name] = param
        rule = _fit_rule(run, posthoc, {**rule_params, **chosen}, fit)
        meta.update(param_name=param_name, param=getattr(rule, param_name) if param_name else None,
                    param_source=source_text if param_name else None)  # fmt: skip

    t_value, t_meta = 1.0, None
    if temperature == "heldout":
        if source is run:
            source_rule = rule
        else:  # HELDOUT_RUN's model with the rule (the chosen τ) fitted on its own training split
            source_rule = None if posthoc is None else _fit_rule(source, posthoc, {**rule_params, **chosen})
        features, logits, labels = source.outputs("heldout")
        fitted = fit_temperature(_rule_scores(source_rule, source.model.head, features, logits), labels)
        t_value = fitted.temperature
        where = "" if source is run else f" of {source.run_dir} (--tau-from)"
        t_meta = {**fitted.to_dict(), "source": f"fitted on the held-out split{where}", "run": str(source.run_dir)}
    elif temperature is not None:
        t_value = float(temperature)
        t_meta = {"value": t_value, "source": "given"}
    meta["temperature"] = t_meta
    meta["applied"] = "softmax((rule scores or logits) / T), T = 1 without temperature scaling"
    return Decision(rule=rule, head=head, temperature=t_value, metadata=meta)


def run_heldout_classes(trained: Any) -> dict[str, Any]:
    """:func:`longtail.data.subset.heldout_classes` of a reloaded run: its classes tuned on (in its held-out
    split) and left out (too small to give K), from the counts before the split."""
    from longtail.data.subset import heldout_classes

    k = int(trained.config.data.heldout_per_class)
    before = list(trained.class_counts)
    if trained.data.heldout is not None:
        held = torch.bincount(trained.data.data.heldout.labels.long(), minlength=len(before)).tolist()
        before = [n + h for n, h in zip(before, held)]
    return heldout_classes(before, k, list(trained.data.data.train.classes))


def choose_param(trained: Any, posthoc: str, grid: list[float] | None = None,
                 rule_params: dict[str, Any] | None = None,
                 fit: tuple[torch.Tensor, torch.Tensor, list[int]] | None = None) -> tuple[float, dict[str, Any]]:
    """The rule's parameter chosen on the held-out split of the loaded run ``trained``
    (:func:`longtail.posthoc.tune`: best held-out balanced accuracy, ties to the neutral value), the rule
    fitted on that run's training split (or ``fit = (features, labels, class_counts)``). Fewer than two
    classes in the held-out split is a ``ConfigError`` (:func:`longtail.data.subset.require_tunable`).
    Returns ``(param, tuning)``, ``tuning`` = ``{"split": "heldout", "run", "size", "table",
    "heldout_per_class", "classes_tuned_on", "classes_left_out"}``."""
    from longtail.data.subset import require_tunable
    from longtail.posthoc import tune

    if trained.data.heldout is None:
        raise ConfigError(
            f"run {trained.run_dir} has no held-out split to choose the parameter on; give a run trained with "
            "data.heldout_per_class=K (e.g. its -heldout config)"
        )
    classes = run_heldout_classes(trained)
    require_tunable(classes, f"the held-out split of {trained.run_dir}")
    if fit is None:
        train_features, _, train_labels = trained.outputs("train")
        fit = (train_features, train_labels, list(trained.class_counts))
    held_features, _, held_labels = trained.outputs("heldout")
    param, table = tune(posthoc, grid, fit[0], fit[1], trained.model.head, fit[2], held_features, held_labels,
                        **dict(rule_params or {}))  # fmt: skip
    return param, {"split": "heldout", "run": str(trained.run_dir), "size": int(held_labels.numel()),
                   "table": table, **classes}  # fmt: skip


def _check_same_classes(run: Any, other: Any) -> None:
    if other.classes != run.classes or other.config.data.name != run.config.data.name:
        raise ConfigError(
            f"--tau-from {other.run_dir} was trained on {other.config.data.name!r} with {len(other.classes)} classes, "
            f"run {run.run_dir} on {run.config.data.name!r} with {len(run.classes)}; give a held-out run of the same data set"
        )


def _config_of(run_dir: str | Path) -> Any:
    from longtail.engine.run import Run

    return Run(run_dir).config()


def load_tau_from(path: str | Path | None, device: str = "cpu", batch_size: int = 128) -> Any:
    """HELDOUT_RUN of ``--tau-from`` (None when not given), in fp32 and without its test split: only its
    training and held-out splits are ever read."""
    from longtail.inference.loading import load_trained_run

    return None if path is None else load_trained_run(Path(path), device, with_test=False, batch_size=batch_size)
