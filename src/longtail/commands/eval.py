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
fitted by NLL on a held-out split — HELDOUT_RUN's with ``--tau-from`` (its model, the rule with the chosen τ
fitted on its training split: everything chosen on held-out data comes from that one split), else the
run's own — never on the test set; ``--temperature T`` gives it. The decision flags and their meaning are
those of ``longtail predict`` and ``export`` (:mod:`longtail.commands._decision`,
:func:`longtail.inference.decision.build_decision`).
Then ``calibration`` is that of scores / T, ``calibration_before_temperature`` that of the scores,
and ``temperature`` says which T and where it came from. Accuracy does not change with T.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from longtail.commands._decision import add_decision_arguments

    parser = subparsers.add_parser(
        "eval",
        help="re-evaluate a trained run, optionally with a post-hoc rule",
        description="Re-evaluate the final checkpoint of a `longtail train` run directory on its test set, "
        "optionally with a post-hoc decision rule (tau-norm, nc-tau, ncm, logit-adjust, crt, lws).",
    )
    parser.add_argument("run", metavar="DIR", help="run directory written by `longtail train`")
    add_decision_arguments(parser)
    parser.add_argument("--fit-on", metavar="CONFIG",
                        help="fit the rule on the training split of this config's data section (CDT Table 5)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="feature extraction batch size (default 128, the fastest measured on CPU)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.commands._decision import decision_options, tuning_line

    options = decision_options(args)
    from longtail.posthoc.evaluate import evaluate_run

    result = evaluate_run(Path(args.run), options.posthoc, options.param, options.tune, options.grid, args.batch_size,
                          rule_params=options.rule_params, fit_on=Path(args.fit_on) if args.fit_on else None,
                          temperature=options.temperature, tau_from=Path(args.tau_from) if args.tau_from else None)
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


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"
