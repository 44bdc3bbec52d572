"""Re-evaluate a finished run, as trained or with a post-hoc rule: the library behind ``longtail eval``
and the post-hoc rows of ``longtail reproduce`` (reloads through ``Run.load_trained``, writes ``eval-<rule>.json``)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch

from longtail.errors import ConfigError, LongtailError


def evaluate_run(run_dir: str | Path, posthoc: str | None = None, param: float | None = None,
                 tune_on: str | None = None, grid: list[float] | None = None, batch_size: int = 128,
                 rule_params: dict[str, Any] | None = None, fit_on: str | Path | None = None,
                 fit_overrides: list[str] | tuple[str, ...] = (), tau_from: str | Path | None = None,
                 temperature: str | float | None = None) -> dict[str, Any]:
    """Evaluate the run's last checkpoint on its test split with the decision that
    :func:`longtail.inference.decision.build_decision` builds (the one place that does, shared with
    ``predict`` and ``export``): optionally a post-hoc rule with ``rule_params``, fitted on the run's training
    split or on the one that config ``fit_on`` builds; the rule's parameter ``param``, or chosen on a held-out
    split — the run's own (``tune_on="heldout"``) or that of the run ``tau_from`` (CDT appendix B.6: chosen on
    the held-out run, applied to the run trained on the full set); then temperature scaling: ``"heldout"``
    fits T on the same held-out split (``tau_from``'s when given, else the run's own), a number sets it.
    Write and return the result (``path`` = the file). A chosen parameter comes with ``tuning``: the split,
    its run, the grid's scores and the classes tuned on / left out (:func:`~longtail.inference.decision.choose_param`).

    Everything the decision is built from (τ, T, the rule's fitted state) is computed in fp32, as ``predict``
    and ``export`` compute it, so the three commands make the same choices; ``tau_from`` is loaded without
    its test split. Only the test split is scored in the run's own precision (as ``results.json``)."""
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.evaluate import extract
    from longtail.engine.run import Run, no_test_split
    from longtail.inference.decision import DecisionOptions, build_decision, check_sources, load_tau_from
    from longtail.inference.loading import load_trained_run
    from longtail.metrics import EvalAccumulator
    from longtail.posthoc.temperature import calibration_fields
    from longtail.tracking import write_json

    run = Run(run_dir)
    options = DecisionOptions(posthoc, param, tune_on, tau_from, temperature, dict(rule_params or {}), grid)
    options.check()
    if fit_on is not None and posthoc is None:
        raise ConfigError("--fit-on and --rule-param need a rule: add --posthoc NAME (see `longtail list posthoc`)")
    config = run.config()
    if not config.eval.test:  # a -heldout run or a tune candidate: its test split is never read
        raise LongtailError(no_test_split(run.root))
    check_sources(options, config, run.root, None if tau_from is None else Run(tau_from).config(), tau_from)
    fit_cfg = None if fit_on is None else fit_config(config, fit_on, fit_overrides)  # before any data is read
    trained = load_trained_run(run.root, config.runtime.device, batch_size=batch_size)  # fp32, as predict's
    class_counts = trained.class_counts
    out: dict[str, Any] = {"checkpoint": trained.checkpoint.name, "epoch": trained.epoch, "posthoc": posthoc}
    fit = None
    if fit_cfg is not None:
        fit_data = TrainData(fit_cfg, DistInfo(), trained.accel.torch_device)
        features, _, labels = trained.base.outputs(fit_data.train_eval, batch_size)
        fit = (features, labels, list(fit_data.class_counts))
        out["fit_on"] = {"config": str(fit_on), "fingerprint": fit_data.fingerprint, "class_counts": fit[2]}
    held = load_tau_from(tau_from, trained.accel.device, batch_size)  # its test split is never loaded
    decision = build_decision(trained, posthoc, param, tune_on, held, temperature, rule_params, grid, fit=fit)
    meta = decision.metadata
    if posthoc is not None:
        out.update(rule_params=meta["rule_params"], param_name=meta["param_name"], param=meta["param"],
                   param_source=meta["param_source"])  # fmt: skip
        if "tuning" in meta:
            out["tuning"] = meta["tuning"]
    if tau_from is not None:
        out["tau_from"] = meta["tau_from"]
    test_accel = dataclasses.replace(trained.accel, precision=config.runtime.precision)  # as results.json
    test_features, test_logits, test_labels = extract(trained.model, trained.split("test"), test_accel, batch_size)
    scores = decision.rule_scores(test_features, test_logits)  # T changes no argmax: accuracy before T
    counts = EvalAccumulator(len(class_counts))
    with torch.no_grad():
        counts.update(scores, test_labels)
    report = counts.report(class_counts, trained.config.eval.many_threshold, trained.config.eval.few_threshold)
    out.update(calibration_fields(scores, test_labels, class_counts, trained.config.eval, meta["temperature"]))
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
