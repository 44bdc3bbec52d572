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
                 fit_overrides: list[str] | tuple[str, ...] = (),
                 temperature: str | float | None = None) -> dict[str, Any]:
    """Evaluate the run's last checkpoint (optionally with a post-hoc rule with ``rule_params``, fitted
    on the run's training split or on the one that config ``fit_on`` builds, its parameter ``param`` or
    tuned on the held-out split with ``tune_on="heldout"``; then temperature scaling: ``"heldout"`` fits T
    on the held-out split, a number sets it); write and return the result (``path`` = the file)."""
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.run import Run
    from longtail.metrics import EvalAccumulator
    from longtail.posthoc.temperature import calibration_fields
    from longtail.tracking import write_json

    run = Run(run_dir)
    if not run.config().eval.test:
        raise LongtailError(
            f"{run.root} was trained with eval.test=false (a `longtail tune` candidate): it is never evaluated on "
            "the test set; evaluate the run `longtail tune` retrained on the full set (OUT/final/...)"
        )
    if tune_on == "heldout" and run.config().data.heldout_per_class <= 0:  # before any data is read
        raise ConfigError(
            f"--tune heldout: run {run.root} has no held-out split; retrain with data.heldout_per_class=K "
            "(e.g. 3 per class, CDT appendix B.6) or give --param"
        )
    if temperature == "heldout" and run.config().data.heldout_per_class <= 0:
        raise ConfigError(
            f"--temperature heldout: run {run.root} has no held-out split to fit T on; retrain with "
            "data.heldout_per_class=K or give --temperature T"
        )
    trained = Run.load_trained(run.root)
    class_counts = trained.class_counts
    test_features, test_logits, test_labels = trained.outputs("test", batch_size)
    out: dict[str, Any] = {"checkpoint": trained.checkpoint.name, "epoch": trained.epoch, "posthoc": posthoc}
    held = trained.outputs("heldout", batch_size) if temperature == "heldout" else None
    if posthoc is None:
        scores = test_logits
        held_scores = None if held is None else held[1]
    else:
        from longtail.posthoc import tune
        from longtail.registry import POSTHOC

        head = trained.model.head.cpu()
        fit_split, fit_counts = trained.split("train"), class_counts
        if fit_on is not None:
            fit_data = TrainData(fit_config(trained.config, fit_on, fit_overrides), DistInfo(), trained.accel.torch_device)
            fit_split, fit_counts = fit_data.train_eval, list(fit_data.class_counts)
            out["fit_on"] = {"config": str(fit_on), "fingerprint": fit_data.fingerprint, "class_counts": fit_counts}
        train_features, _, train_labels = trained.outputs(fit_split, batch_size)
        param_name = getattr(POSTHOC.get(posthoc), "param_name", None)
        if (param is not None or tune_on) and param_name is None:
            raise ConfigError(f"post-hoc rule {posthoc!r} has no parameter; drop --param/--tune")
        if tune_on == "heldout":
            held_features, _, held_labels = held if held is not None else trained.outputs("heldout", batch_size)
            param, table = tune(posthoc, grid, train_features, train_labels, head, fit_counts,
                                held_features, held_labels)
            out["tuning"] = {"split": "heldout", "size": int(held_labels.numel()), "table": table}
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
