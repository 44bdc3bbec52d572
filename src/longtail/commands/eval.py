"""``longtail eval DIR [--posthoc NAME [--param V | --tune heldout | --tau-from HELDOUT_RUN]]``: re-evaluate
a trained run.

Reloads the run's last checkpoint, extracts the features of its training, held-out and test
splits and evaluates the model — as trained, or with a post-hoc decision rule (SPEC §4) whose
parameter is given (``--param``), the rule's default, or grid-searched by balanced accuracy on the
run's held-out split (``--tune heldout``) or on the held-out split of another run — the same config
trained with K images per class held out — and applied to DIR (``--tau-from HELDOUT_RUN``: CDT appendix
B.6, the reported model is the one trained on the full set). The classes the held-out split tunes on and
those too small to be held out are printed and written (``tuning``); fewer than two is an error.
Writes ``DIR/eval-<name>.json``
(``eval-plain.json`` without a rule) beside ``results.json``.

``--rule-param KEY=VALUE`` sets the rule's other parameters (``--rule-param sampler=instance`` for
cRT). ``--fit-on CONFIG`` fits the rule on the training split that another config's ``data`` section
builds, with this run's feature extractor — the CDT paper's Table 5 re-trains the classifier of a
network trained on a balanced set on the long-tailed set, and the reverse. The result is then
``DIR/eval-<name>-fit-<config folder>-<config stem>.json``. The work is
:func:`longtail.posthoc.evaluate.evaluate_run`; this module only parses the arguments.

Every result carries ``calibration`` (ECE with 15 bins, NLL, Brier; overall and per shot group; SPEC
§10) of softmax(scores). ``--temperature heldout`` divides the final scores (after the rule) by one T
fitted by NLL on the run's held-out split — never on the test set; ``--temperature T`` gives it.
Then ``calibration`` is that of scores / T, ``calibration_before_temperature`` that of the scores,
and ``temperature`` says which T and where it came from. Accuracy does not change with T.
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
    group.add_argument("--tune", choices=["heldout"], help="grid-search the parameter on the run's own held-out split")
    group.add_argument("--tau-from", metavar="HELDOUT_RUN",
                       help="grid-search the parameter on the held-out split of HELDOUT_RUN (the same config trained "
                       "with data.heldout_per_class=K) and apply it to DIR (CDT appendix B.6)")
    parser.add_argument("--grid", help="comma-separated values for --tune / --tau-from (default: the rule's grid)")
    parser.add_argument("--rule-param", action="append", default=[], metavar="KEY=VALUE",
                        help="another parameter of the rule, e.g. sampler=instance for crt (repeatable)")
    parser.add_argument("--fit-on", metavar="CONFIG",
                        help="fit the rule on the training split of this config's data section (CDT Table 5)")
    parser.add_argument("--temperature", metavar="heldout|T",
                        help="temperature scaling, applied last: 'heldout' fits T by NLL on the run's held-out split "
                        "(never the test set), a number sets it")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="feature extraction batch size (default 128, the fastest measured on CPU)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.errors import ConfigError

    if args.posthoc is None and (args.param is not None or args.tune or args.grid or args.tau_from):
        raise ConfigError("--param/--tune/--tau-from/--grid need a rule: add --posthoc NAME (see `longtail list posthoc`)")
    grid = None
    if args.grid:
        try:
            grid = [float(v) for v in args.grid.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--grid {args.grid!r} must be comma-separated numbers, e.g. 0,0.5,1") from None
    if args.posthoc is None and (args.rule_param or args.fit_on):
        raise ConfigError("--rule-param/--fit-on need a rule: add --posthoc NAME (see `longtail list posthoc`)")
    from longtail.posthoc.evaluate import evaluate_run

    rule_params = parse_rule_params(args.rule_param)
    temperature = parse_temperature(args.temperature)
    result = evaluate_run(Path(args.run), args.posthoc, args.param, args.tune, grid, args.batch_size,
                          rule_params=rule_params, fit_on=Path(args.fit_on) if args.fit_on else None,
                          temperature=temperature, tau_from=Path(args.tau_from) if args.tau_from else None)
    name = args.posthoc or "plain"
    rule = f" with {name}" + (f" ({result['param_name']}={result['param']})" if result.get("param") is not None else "")
    groups = ", ".join(f"{g} {_pct(v['accuracy'])}" for g, v in result["groups"].items())
    print(
        f"{args.run}{rule if args.posthoc else ''}: top1 {100 * result['top1']:.2f}  "
        f"balanced {100 * result['balanced_accuracy']:.2f}  top5 {100 * result['top5']:.2f}  ({groups})"
    )
    if result.get("tuning"):
        print(tuning_line(result["tuning"], result["param_name"]))
    print(calibration_line(result))
    print(f"wrote {result['path']}")
    return 0


def parse_temperature(value: str | None) -> str | float | None:
    """``--temperature``: None, ``"heldout"`` or a number > 0."""
    from longtail.errors import ConfigError

    if value is None or value == "heldout":
        return value
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"--temperature {value!r}: give 'heldout' (fit T on the held-out split) or a number > 0")
    return number


def calibration_line(result: dict) -> str:
    """``calibration: ECE 4.12% NLL 0.812 Brier 0.301 (ECE many 2.1%, ...)`` (+ before/after T)."""
    def ece(summary: dict) -> str:
        return _pct(summary["ece"]) + "%" if summary["ece"] is not None else "—"

    cal = result["calibration"]
    overall = cal["overall"]
    groups = ", ".join(f"{g} {ece(v)}" for g, v in cal["groups"].items())
    line = f"calibration: ECE {ece(overall)}  NLL {overall['nll']:.4f}  Brier {overall['brier']:.4f}  (ECE {groups})"
    temp = result.get("temperature")
    if temp:
        before = result["calibration_before_temperature"]["overall"]
        line += f"; T = {temp['value']:.4g} ({temp['source']}), ECE before T {ece(before)}"
    return line


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


def tuning_line(tuning: dict, param_name: str) -> str:
    """Where the parameter was chosen: the held-out split's run, its size, the classes tuned on and left out."""
    from longtail.data.subset import format_classes

    left = tuning["classes_left_out"]
    text = (f"{param_name} chosen on the held-out split of {tuning['run']} ({tuning['heldout_per_class']} per class, "
            f"{tuning['size']} images): {len(tuning['classes_tuned_on'])} classes tuned on, {len(left)} left out")
    return text + (f" (too small to hold out {tuning['heldout_per_class']}: {format_classes(left)})" if left else "")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"
