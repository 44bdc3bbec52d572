"""The decision of a trained run: model logits → post-hoc rule (optional) → temperature scaling, last.

Where each number comes from (never from the test split):

- the rule's parameter τ: ``param`` (given), the rule's default, ``tune="heldout"`` (grid-searched by
  balanced accuracy on RUN's own held-out split, CDT appendix B.6), or ``tau_from=HELDOUT_RUN``: chosen
  the same way on HELDOUT_RUN's held-out split with HELDOUT_RUN's model (a run trained with
  ``data.heldout_per_class=K``), then applied to RUN — the CDT protocol: tune on the held-out run,
  report the model retrained on the full training set;
- the rule's fitted state (class means of NCM, the cRT/LWS classifier): RUN's training split;
- the temperature T (``temperature="heldout"``): minimises the NLL of the rule's scores on a held-out
  split — RUN's own when it has one, else HELDOUT_RUN's (``tau_from``, with HELDOUT_RUN's model and
  the rule fitted on HELDOUT_RUN's training split, as for τ); or given as a number.

``Decision.scores(features, logits)`` = rule scores (or logits) / T: their softmax is the reported
probability, their argmax the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    def scores(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Final decision values: rule scores (or the logits) divided by T."""
        raw = logits if self.rule is None else self.rule.scores(features, self.head)
        return raw / self.temperature


def _rule_scores(rule: Any, head: Any, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return logits if rule is None else rule.scores(features, head)


def _fit_rule(run: Any, name: str, params: dict[str, Any]) -> Any:
    from longtail.registry import POSTHOC

    features, _, labels = run.outputs("train")
    rule = POSTHOC.create(name, **params)
    rule.fit(features, labels, run.model.head, run.class_counts)
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
) -> Decision:
    """Build ``run``'s decision (see the module docstring). ``tau_from`` is a loaded held-out run
    (:class:`~longtail.inference.loading.TrainedRun`) or ``None``."""
    from longtail.posthoc import tune as tune_rule
    from longtail.posthoc.temperature import fit_temperature
    from longtail.registry import POSTHOC

    rule_params = dict(rule_params or {})
    if sum(x is not None for x in (param, tune, tau_from)) > 1:
        raise ConfigError("give one of --param, --tune heldout and --tau-from HELDOUT_RUN")
    if posthoc is None and (param is not None or tune or grid or rule_params):
        raise ConfigError("--param/--tune/--grid/--rule-param need a rule: add --posthoc NAME (see `longtail list posthoc`)")
    if tau_from is not None:
        _check_same_classes(run, tau_from)
        if not tau_from.has_heldout:
            raise ConfigError(
                f"--tau-from {tau_from.run_dir}: that run has no held-out split; give a run trained with "
                "data.heldout_per_class=K"
            )
    meta: dict[str, Any] = {"posthoc": posthoc, "param_name": None, "param": None, "param_source": None,
                            "rule_params": rule_params}  # fmt: skip
    rule = None
    head = run.model.head
    if posthoc is not None:
        rule_cls = POSTHOC.get(posthoc)
        param_name = getattr(rule_cls, "param_name", None)
        if param_name is None and (param is not None or tune):
            raise ConfigError(f"post-hoc rule {posthoc!r} has no parameter; drop --param/--tune")
        source = "given" if param is not None else "default"
        if tune == "heldout":
            if not run.has_heldout:
                raise ConfigError(
                    f"--tune heldout: run {run.run_dir} has no held-out split; retrain with data.heldout_per_class=K, "
                    "or choose it on another run's held-out split with --tau-from HELDOUT_RUN"
                )
            param, table = _tune(tune_rule, posthoc, grid, run, rule_params)
            source, meta["tuning"] = f"tuned on the held-out split of {run.run_dir}", table
        elif tau_from is not None and param_name is not None:
            param, table = _tune(tune_rule, posthoc, grid, tau_from, rule_params)
            source, meta["tuning"] = f"tuned on the held-out split of {tau_from.run_dir} (--tau-from)", table
        params = dict(rule_params)
        if param is not None and param_name is not None:
            params[param_name] = param
        rule = _fit_rule(run, posthoc, params)
        meta.update(param_name=param_name, param=getattr(rule, param_name) if param_name else None,
                    param_source=source if param_name else None)  # fmt: skip
    elif tau_from is not None and temperature != "heldout":
        raise ConfigError("--tau-from without --posthoc or --temperature heldout chooses nothing; add one of them")

    t_value, t_meta = 1.0, None
    if temperature == "heldout":
        if tau_from is not None or not run.has_heldout:
            if tau_from is None:
                raise ConfigError(
                    f"--temperature heldout: run {run.run_dir} has no held-out split to fit T on; give "
                    "--tau-from HELDOUT_RUN (a run trained with data.heldout_per_class=K) or --temperature T"
                )
            source_run = tau_from
            source_rule = None if posthoc is None else _fit_rule(
                tau_from, posthoc, {**rule_params, **({meta["param_name"]: meta["param"]} if meta["param_name"] else {})})
        else:
            source_run, source_rule = run, rule
        features, logits, labels = source_run.outputs("heldout")
        fitted = fit_temperature(_rule_scores(source_rule, source_run.model.head, features, logits), labels)
        t_value = fitted.temperature
        t_meta = {**fitted.to_dict(), "source": f"fitted by NLL on the held-out split of {source_run.run_dir}"}
    elif temperature is not None:
        t_value = float(temperature)
        if not t_value > 0:
            raise ConfigError(f"--temperature {temperature}: give 'heldout' or a number > 0")
        t_meta = {"value": t_value, "source": "given"}
    meta["temperature"] = t_meta
    meta["applied"] = "softmax((rule scores or logits) / T), T = 1 without temperature scaling"
    return Decision(rule=rule, head=head, temperature=t_value, metadata=meta)


def _tune(tune_rule: Any, name: str, grid: list[float] | None, source: Any, rule_params: dict[str, Any]) -> tuple[float, list]:
    train_f, _, train_y = source.outputs("train")
    held_f, _, held_y = source.outputs("heldout")
    return tune_rule(name, grid, train_f, train_y, source.model.head, source.class_counts, held_f, held_y, **rule_params)


def _check_same_classes(run: Any, other: Any) -> None:
    if other.classes != run.classes or other.config.data.name != run.config.data.name:
        raise ConfigError(
            f"--tau-from {other.run_dir} was trained on {other.config.data.name!r} with {len(other.classes)} classes, "
            f"run {run.run_dir} on {run.config.data.name!r} with {len(run.classes)}; give a held-out run of the same data set"
        )


def load_tau_from(path: str | Path | None, device: str = "cpu") -> Any:
    """The held-out run of ``--tau-from`` (None when not given)."""
    from longtail.inference.loading import load_trained_run

    return None if path is None else load_trained_run(Path(path), device)
