"""The decision flags shared by ``longtail eval``, ``predict`` and ``export`` (not a command: the leading
underscore keeps it out of the CLI's discovery).

``--posthoc NAME (--param V | --tune heldout | --tau-from HELDOUT_RUN) [--grid V,V,..] [--rule-param K=V]
[--temperature heldout|T]``: :func:`add_decision_arguments` adds them, :func:`decision_options` turns the
parsed flags into a checked :class:`longtail.inference.decision.DecisionOptions` (bad combinations are
one-line ``ConfigError``s before any run is loaded). With ``--tau-from`` everything chosen on held-out data
(τ and T) comes from HELDOUT_RUN's held-out split, else from RUN's own — in all three commands.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--posthoc (--param | --tune heldout | --tau-from RUN) [--grid] [--rule-param] [--temperature]``."""
    parser.add_argument("--posthoc", metavar="NAME", help="post-hoc rule (`longtail list posthoc`)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--param", type=float, help="the rule's parameter (e.g. tau); default: the rule's default")
    group.add_argument("--tune", choices=["heldout"],
                       help="grid-search the parameter (balanced accuracy) on the run's own held-out split")
    group.add_argument("--tau-from", metavar="HELDOUT_RUN",
                       help="grid-search the parameter (and fit T with --temperature heldout) on the held-out split of "
                       "HELDOUT_RUN (the same config trained with data.heldout_per_class=K) and apply it to the run "
                       "(CDT appendix B.6)")
    parser.add_argument("--grid", help="comma-separated values for --tune / --tau-from (default: the rule's grid)")
    parser.add_argument("--rule-param", action="append", default=[], metavar="KEY=VALUE",
                        help="another parameter of the rule, e.g. sampler=instance for crt (repeatable)")
    parser.add_argument("--temperature", metavar="heldout|T",
                        help="temperature scaling, applied last: 'heldout' fits T by NLL on the held-out split "
                        "(HELDOUT_RUN's with --tau-from, else the run's own; never the test set), a number sets it")


def decision_options(args: argparse.Namespace) -> Any:
    """The parsed decision flags as checked :class:`~longtail.inference.decision.DecisionOptions`."""
    from longtail.inference.decision import DecisionOptions

    options = DecisionOptions(posthoc=args.posthoc, param=args.param, tune=args.tune, tau_from=args.tau_from,
                              temperature=parse_temperature(args.temperature),
                              rule_params=parse_rule_params(args.rule_param), grid=parse_grid(args.grid))  # fmt: skip
    options.check()
    return options


def parse_grid(value: str | None) -> list[float] | None:
    """``--grid 0,0.5,1`` → ``[0.0, 0.5, 1.0]`` (None when not given)."""
    from longtail.errors import ConfigError

    if not value:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--grid {value!r} must be comma-separated numbers, e.g. 0,0.5,1") from None


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
