"""``longtail eval DIR [--posthoc NAME [--param V | --tune heldout]]``: re-evaluate a trained run.

Reloads the run's last checkpoint, extracts the features of its training, held-out and test
splits and evaluates the model — as trained, or with a post-hoc decision rule (SPEC §4) whose
parameter is given (``--param``), the rule's default, or grid-searched by balanced accuracy on the
run's held-out split (``--tune heldout``, CDT appendix B.6). Writes ``DIR/eval-<name>.json``
(``eval-plain.json`` without a rule) beside ``results.json``.

``--rule-param KEY=VALUE`` sets the rule's other parameters (``--rule-param sampler=instance`` for
cRT). ``--fit-on CONFIG`` fits the rule on the training split that another config's ``data`` section
builds, with this run's feature extractor — the CDT paper's Table 5 re-trains the classifier of a
network trained on a balanced set on the long-tailed set, and the reverse. The result is then
``DIR/eval-<name>-fit-<config folder>-<config stem>.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="re-evaluate a trained run, optionally with a post-hoc rule",
        description="Re-evaluate the final checkpoint of a `longtail train` run directory on its test set, "
        "optionally with a post-hoc decision rule (tau-norm, nc-tau, ncm, logit-adjust, crt, lws).",
    )
    parser.add_argument("run", metavar="DIR", help="run directory written by `longtail train`")
    parser.add_argument("--posthoc", metavar="NAME", help="post-hoc rule (`longtail list posthoc`)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--param", type=float, help="the rule's parameter (e.g. tau); default: the rule's default")
    group.add_argument("--tune", choices=["heldout"], help="grid-search the parameter on the held-out split")
    parser.add_argument("--grid", help="comma-separated values for --tune (default: the rule's grid)")
    parser.add_argument("--rule-param", action="append", default=[], metavar="KEY=VALUE",
                        help="another parameter of the rule, e.g. sampler=instance for crt (repeatable)")
    parser.add_argument("--fit-on", metavar="CONFIG",
                        help="fit the rule on the training split of this config's data section (CDT Table 5)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="feature extraction batch size (default 128, the fastest measured on CPU)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.errors import ConfigError

    if args.posthoc is None and (args.param is not None or args.tune or args.grid):
        raise ConfigError("--param/--tune/--grid need a rule: add --posthoc NAME (see `longtail list posthoc`)")
    grid = None
    if args.grid:
        try:
            grid = [float(v) for v in args.grid.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--grid {args.grid!r} must be comma-separated numbers, e.g. 0,0.5,1") from None
    if args.posthoc is None and (args.rule_param or args.fit_on):
        raise ConfigError("--rule-param/--fit-on need a rule: add --posthoc NAME (see `longtail list posthoc`)")
    rule_params = parse_rule_params(args.rule_param)
    result = evaluate_run(Path(args.run), args.posthoc, args.param, args.tune, grid, args.batch_size,
                          rule_params=rule_params, fit_on=Path(args.fit_on) if args.fit_on else None)
    name = args.posthoc or "plain"
    rule = f" with {name}" + (f" ({result['param_name']}={result['param']})" if result.get("param") is not None else "")
    groups = ", ".join(f"{g} {_pct(v['accuracy'])}" for g, v in result["groups"].items())
    print(
        f"{args.run}{rule if args.posthoc else ''}: top1 {100 * result['top1']:.2f}  "
        f"balanced {100 * result['balanced_accuracy']:.2f}  top5 {100 * result['top5']:.2f}  ({groups})"
    )
    print(f"wrote {result['path']}")
    return 0


def parse_rule_params(items: list[str]) -> dict:
    """``["sampler=instance", "epochs=20"]`` → ``{"sampler": "instance", "epochs": 20}`` (YAML values)."""
    from longtail.config import parse_value
    from longtail.errors import ConfigError

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--rule-param {item!r}: write KEY=VALUE, e.g. --rule-param sampler=instance")
        params[key.strip()] = parse_value(value.strip())
    return params


def eval_path(run_dir: Path, posthoc: str | None, fit_on: Path | None = None) -> Path:
    """``DIR/eval-<rule>.json``, ``DIR/eval-<rule>-fit-<config folder>-<config stem>.json`` (e.g.
    ``eval-crt-fit-balanced12400-erm.json``) or ``DIR/eval-plain.json``."""
    name = posthoc or "plain"
    if fit_on is not None:
        fit_on = Path(fit_on)
        name += f"-fit-{fit_on.parent.name}-{fit_on.stem}" if fit_on.parent.name else f"-fit-{fit_on.stem}"
    return run_dir / f"eval-{name}.json"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def evaluate_run(
    run_dir: Path,
    posthoc: str | None = None,
    param: float | None = None,
    tune_on: str | None = None,
    grid: list[float] | None = None,
    batch_size: int = 128,
    rule_params: dict | None = None,
    fit_on: Path | None = None,
    fit_overrides: list[str] | tuple[str, ...] = (),
) -> dict:
    """Evaluate the run's last checkpoint (optionally with a post-hoc rule with ``rule_params``, fitted
    on the run's training split or on the one that config ``fit_on`` builds); write and return the result."""
    import torch

    from longtail.config import load_config
    from longtail.engine.accel import Accel, apply_allocator, prepare_model
    from longtail.engine.checkpoint import latest_checkpoint, load_checkpoint
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.evaluate import extract
    from longtail.engine.trainer import build_model
    from longtail.errors import ConfigError, LongtailError
    from longtail.metrics import classification_report, confusion_matrix, topk_correct
    from longtail.tracking import write_json

    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise LongtailError(f"{run_dir} has no config.yaml; give a directory written by `longtail train`")
    ckpt_path = latest_checkpoint(run_dir / "checkpoints")
    if ckpt_path is None:
        raise LongtailError(f"{run_dir} has no checkpoint in checkpoints/; train it first (or --resume it)")
    config = load_config(config_path)
    if tune_on == "heldout" and config.data.heldout_per_class <= 0:
        raise ConfigError(
            f"--tune heldout: run {run_dir} has no held-out split; retrain with data.heldout_per_class=K "
            "(e.g. 3 per class, CDT appendix B.6) or give --param"
        )
    state = load_checkpoint(ckpt_path)
    accel = Accel(device=config.runtime.device, channels_last=config.runtime.channels_last,
                  precision=config.runtime.precision)
    device = accel.torch_device
    apply_allocator(config.runtime.allocator, device)
    data = TrainData(config, DistInfo(), device)
    if data.fingerprint != state["fingerprint"]:
        raise LongtailError(
            f"the data built from {config_path} (subset {data.fingerprint}) is not what {ckpt_path} was trained "
            f"on ({state['fingerprint']}); check data.root"
        )
    model = build_model(config, data)
    model.load_state_dict(state["model"])
    prepare_model(model, accel)
    class_counts = list(state["class_counts"])

    test_features, test_logits, test_labels = extract(model, data.test, accel, batch_size)
    out: dict = {"checkpoint": ckpt_path.name, "epoch": int(state["epoch"]), "posthoc": posthoc}
    if posthoc is None:
        scores = test_logits
    else:
        from longtail.posthoc import tune
        from longtail.registry import POSTHOC

        head = model.head.cpu()
        fit_data, fit_counts = data, class_counts
        if fit_on is not None:
            fit_data = TrainData(fit_config(config, fit_on, fit_overrides), DistInfo(), device)
            fit_counts = list(fit_data.class_counts)
            out["fit_on"] = {"config": str(fit_on), "fingerprint": fit_data.fingerprint, "class_counts": fit_counts}
        train_features, _, train_labels = extract(model, fit_data.train_eval, accel, batch_size)
        rule_cls = POSTHOC.get(posthoc)
        param_name = getattr(rule_cls, "param_name", None)
        if (param is not None or tune_on) and param_name is None:
            raise ConfigError(f"post-hoc rule {posthoc!r} has no parameter; drop --param/--tune")
        if tune_on == "heldout":
            assert data.heldout is not None
            held_features, _, held_labels = extract(model, data.heldout, accel, batch_size)
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
        out["param_name"] = param_name
        out["param"] = getattr(rule, param_name, param) if param_name else None
    with torch.no_grad():
        confusion = confusion_matrix(test_labels, scores.argmax(dim=1), len(class_counts))
        top5 = int(topk_correct(scores, test_labels, 5))
    report = classification_report(confusion, top5, class_counts, config.eval.many_threshold, config.eval.few_threshold)
    result = {**report, **out, "class_counts": class_counts, "fingerprint": data.fingerprint}
    path = eval_path(run_dir, posthoc, fit_on)
    write_json(path, result)
    result["path"] = str(path)
    return result


def fit_config(run_config, fit_on: Path, overrides=()):  # noqa: ANN001, ANN201 - longtail.config.Config
    """The run's config with the ``data`` section of config ``fit_on`` (with ``overrides``; the run's
    data.root kept when that names none): the training set a post-hoc rule is fitted on."""
    import copy

    from longtail.config import load_config
    from longtail.errors import ConfigError

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
