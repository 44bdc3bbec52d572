"""Re-evaluate a finished run, as trained or with a post-hoc rule: the library behind ``longtail eval``
and the post-hoc rows of ``longtail reproduce`` (reloads through ``Run.load_trained``, writes ``eval-<rule>.json``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from longtail.errors import ConfigError, LongtailError


def evaluate_run(run_dir: str | Path, posthoc: str | None = None, param: float | None = None,
                 tune_on: str | None = None, grid: list[float] | None = None, batch_size: int = 128,
                 rule_params: dict[str, Any] | None = None, fit_on: str | Path | None = None,
                 fit_overrides: list[str] | tuple[str, ...] = (), tau_from: str | Path | None = None,
                 temperature: str | float | None = None) -> dict[str, Any]:
    """Evaluate the run's last checkpoint (optionally with a post-hoc rule with ``rule_params``, fitted
    on the run's training split or on the one that config ``fit_on`` builds), the rule's parameter
    ``param``, or chosen on a held-out split: the run's own (``tune_on="heldout"``) or that of the run
    ``tau_from`` (CDT appendix B.6: chosen on the held-out run, applied to the run trained on the full
    set); then temperature scaling: ``"heldout"`` fits T on the held-out split, a number sets it; write
    and return the result (``path`` = the file). A chosen parameter comes with ``tuning``: the split, its
    run, the grid's scores and the classes tuned on / left out (:func:`choose_param`)."""
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.run import Run
    from longtail.metrics import EvalAccumulator
    from longtail.posthoc.temperature import calibration_fields
    from longtail.tracking import write_json

    run = Run(run_dir)
    if sum(x is not None for x in (param, tune_on, tau_from)) > 1:
        raise ConfigError("give one of --param, --tune heldout and --tau-from HELDOUT_RUN")
    if tune_on is not None and tune_on != "heldout":
        raise ConfigError(f"--tune {tune_on}: the only split to tune on is 'heldout'")
    if not run.config().eval.test:
        raise LongtailError(
            f"{run.root} was trained with eval.test=false (a `longtail tune` candidate): it is never evaluated on "
            "the test set; evaluate the run `longtail tune` retrained on the full set (OUT/final/...)"
        )
    if tune_on == "heldout" and run.config().data.heldout_per_class <= 0:  # before any data is read
        raise ConfigError(
            f"--tune heldout: run {run.root} has no held-out split; retrain with data.heldout_per_class=K "
            "(e.g. 3 per class, CDT appendix B.6), give --param, or --tau-from a run trained with one"
        )
    if temperature == "heldout" and run.config().data.heldout_per_class <= 0:
        raise ConfigError(
            f"--temperature heldout: run {run.root} has no held-out split to fit T on; retrain with "
            "data.heldout_per_class=K or give --temperature T"
        )
    if tau_from is not None:
        _check_tau_from(run, Run(tau_from), posthoc)
    trained = Run.load_trained(run.root)
    class_counts = trained.class_counts
    test_features, test_logits, test_labels = trained.outputs("test", batch_size)
    out: dict[str, Any] = {"checkpoint": trained.checkpoint.name, "epoch": trained.epoch, "posthoc": posthoc}
    held = trained.outputs("heldout", batch_size) if temperature == "heldout" else None
    if posthoc is None:
        scores = test_logits
        held_scores = None if held is None else held[1]
    else:
        from longtail.registry import POSTHOC

        head = trained.model.head.cpu()
        fit_split, fit_counts = trained.split("train"), class_counts
        if fit_on is not None:
            fit_data = TrainData(fit_config(trained.config, fit_on, fit_overrides), DistInfo(), trained.accel.torch_device)
            fit_split, fit_counts = fit_data.train_eval, list(fit_data.class_counts)
            out["fit_on"] = {"config": str(fit_on), "fingerprint": fit_data.fingerprint, "class_counts": fit_counts}
        train_features, _, train_labels = trained.outputs(fit_split, batch_size)
        param_name = getattr(POSTHOC.get(posthoc), "param_name", None)
        if (param is not None or tune_on or tau_from is not None) and param_name is None:
            raise ConfigError(f"post-hoc rule {posthoc!r} has no parameter; drop --param/--tune/--tau-from")
        if tune_on == "heldout":
            param, out["tuning"] = choose_param(trained, posthoc, grid, batch_size, rule_params,
                                                fit=(train_features, train_labels, fit_counts))
        elif tau_from is not None:
            held_run = Run.load_trained(tau_from, with_test=False)  # its test split is never read
            param, out["tuning"] = choose_param(held_run, posthoc, grid, batch_size, rule_params)
        params = dict(rule_params or {})
        if param is not None and param_name is not None:
            params[param_name] = param
        rule = POSTHOC.create(posthoc, **params)
        rule.fit(train_features, train_labels, head, fit_counts)
        out["rule_params"] = dict(rule_params or {})
        scores = rule.scores(test_features, head)
        held_scores = None if held is None else rule.scores(held[0], head)
        out["param_name"] = param_name
        out["param"] = getattr(rule, param_name, param) if param_name else None
    counts = EvalAccumulator(len(class_counts))
    with torch.no_grad():
        counts.update(scores, test_labels)
    report = counts.report(class_counts, trained.config.eval.many_threshold, trained.config.eval.few_threshold)
    out.update(calibration_fields(scores, test_labels, class_counts, trained.config.eval, temperature,
                                  None if held is None else (held_scores, held[2])))
    result = {**report, **out, "class_counts": class_counts, "fingerprint": trained.data.fingerprint}
    path = run.eval_path(posthoc, fit_on)
    write_json(path, result)
    result["path"] = str(path)
    return result


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


def choose_param(trained: Any, posthoc: str, grid: list[float] | None = None, batch_size: int = 128,
                 rule_params: dict[str, Any] | None = None,
                 fit: tuple[torch.Tensor, torch.Tensor, list[int]] | None = None) -> tuple[float, dict[str, Any]]:
    """The rule's parameter chosen on the held-out split of the reloaded run ``trained``
    (:func:`longtail.posthoc.tune`: best held-out balanced accuracy, ties to the neutral value), the rule
    fitted on that run's training split (or ``fit = (features, labels, class_counts)``). Fewer than two
    classes in the held-out split is a ``ConfigError`` (:func:`longtail.data.subset.require_tunable`).
    Returns ``(param, tuning)``, ``tuning`` = ``{"split": "heldout", "run", "size", "table",
    "heldout_per_class", "classes_tuned_on", "classes_left_out"}``."""
    from longtail.data.subset import require_tunable
    from longtail.posthoc import tune

    if trained.data.heldout is None:
        raise ConfigError(
            f"run {trained.run.root} has no held-out split to choose the parameter on; give a run trained with "
            "data.heldout_per_class=K (e.g. its -heldout config)"
        )
    classes = run_heldout_classes(trained)
    require_tunable(classes, f"the held-out split of {trained.run.root}")
    if fit is None:
        train_features, _, train_labels = trained.outputs("train", batch_size)
        fit = (train_features, train_labels, list(trained.class_counts))
    held_features, _, held_labels = trained.outputs("heldout", batch_size)
    param, table = tune(posthoc, grid, fit[0], fit[1], trained.model.head.cpu(), fit[2], held_features, held_labels,
                        **dict(rule_params or {}))
    return param, {"split": "heldout", "run": str(trained.run.root), "size": int(held_labels.numel()),
                   "table": table, **classes}


def _check_tau_from(run: Any, held: Any, posthoc: str | None) -> None:
    """``--tau-from HELDOUT_RUN`` must name another run of the same data set and classes with a held-out split."""
    if posthoc is None:
        raise ConfigError("--tau-from needs a rule: add --posthoc NAME (see `longtail list posthoc`)")
    mine, theirs = run.config(), held.config()
    if theirs.data.heldout_per_class <= 0:
        raise ConfigError(
            f"--tau-from {held.root}: that run has no held-out split; give the run of the -heldout config "
            "(trained with data.heldout_per_class=K)"
        )
    ignore = {"heldout_per_class", "root", "workers"}
    a, b = mine.to_dict()["data"], theirs.to_dict()["data"]
    differ = [f"data.{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b))
              if k not in ignore and a.get(k) != b.get(k)]
    if differ:
        raise ConfigError(
            f"--tau-from {held.root} was trained on other data than {run.root} ({'; '.join(differ[:3])}); give the "
            "held-out run of the same data set and long-tailed profile"
        )


def fit_config(run_config: Any, fit_on: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """The run's config with the ``data`` section of config ``fit_on`` (with ``overrides``; the run's
    data.root kept when that names none): the training set a post-hoc rule is fitted on."""
    from longtail.config import load_config

    if not Path(fit_on).is_file():
        raise ConfigError(f"--fit-on {fit_on}: no such config file; give a YAML file such as configs/.../erm.yaml")
    other = load_config(fit_on, list(overrides))
    if other.data.name != run_config.data.name:
        raise ConfigError(
            f"--fit-on {fit_on} builds data set {other.data.name!r} but the run was trained on "
            f"{run_config.data.name!r}; give a config of the same data set"
        )
    config = copy.deepcopy(run_config)
    root = config.data.root
    config.data = copy.deepcopy(other.data)
    if config.data.root is None:
        config.data.root = root
    return config
