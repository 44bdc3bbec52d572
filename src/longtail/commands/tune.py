"""``longtail tune CONFIG --grid KEY=V1,V2,... [--grid ...] [--posthoc RULE] [--heldout-per-class K]
[--seeds 0,1,2] [--jobs J] [--dry-run] --out DIR``: hyper-parameters chosen on a held-out split of the
training set, the choice retrained on the full set and evaluated on the test set once (CDT appendix
B.6). The protocol is :mod:`longtail.tune`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="choose hyper-parameters on a held-out split, retrain, evaluate once on the test set",
        description="Train every grid point with K images per class held out (never evaluating on the test "
        "set), choose the best by held-out balanced accuracy (jointly with a post-hoc rule's parameter with "
        "--posthoc), retrain the choice on the full training set and evaluate it on the test set once. "
        "Writes OUT/tune.json and OUT/tune.md; finished runs are reused, killed ones resumed.",
    )
    parser.add_argument("config", help="YAML config file (e.g. configs/fashion-mnist-lt/cdt.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every run, e.g. train.epochs=20")
    parser.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                        help="a config key and its values, e.g. loss.params.gamma=0,0.1,0.2 (repeat: the product)")
    parser.add_argument("--posthoc", metavar="RULE",
                        help="also choose this post-hoc rule's parameter per candidate (e.g. nc-tau), jointly")
    parser.add_argument("--posthoc-grid", metavar="V1,V2,...", help="values of the rule's parameter (default: its grid)")
    parser.add_argument("--heldout-per-class", type=int, metavar="K",
                        help="images per class held out (default: the config's data.heldout_per_class, else 3)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained side by side, each with cores / J threads")
    parser.add_argument("--data-root", help="data.root for every run")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the budget, train nothing")
    parser.add_argument("--out", required=True, help="directory of the runs, tune.json and tune.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail import tune
    from longtail.commands.train import _parse_seeds
    from longtail.errors import ConfigError

    grids = [tune.parse_grid(text) for text in args.grid]
    posthoc_grid = None
    if args.posthoc_grid:
        if not args.posthoc:
            raise ConfigError("--posthoc-grid needs --posthoc RULE")
        try:
            posthoc_grid = [float(v) for v in args.posthoc_grid.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--posthoc-grid {args.posthoc_grid!r} must be comma-separated numbers") from None
    overrides = list(args.overrides) + ([f"data.root={args.data_root}"] if args.data_root else [])
    out = Path(args.out)
    plan = tune.make_plan(args.config, grids, out, _parse_seeds(args.seeds), overrides, args.heldout_per_class,
                          args.posthoc, posthoc_grid)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    classes = tune.check_classes(plan)  # before anything trains: too few classes is an error
    if args.dry_run:
        print(tune.format_plan(plan, classes, args.jobs))
        return 0
    result = tune.run_tune(plan, jobs=args.jobs)
    command = " ".join(["longtail tune", args.config, *args.overrides, *(f"--grid {g}" for g in args.grid)]
                       + ([f"--posthoc {args.posthoc}"] if args.posthoc else [])
                       + ([f"--posthoc-grid {args.posthoc_grid}"] if args.posthoc_grid else [])
                       + ([f"--heldout-per-class {args.heldout_per_class}"] if args.heldout_per_class else [])
                       + ([f"--data-root {args.data_root}"] if args.data_root else [])
                       + [f"--seeds {args.seeds}", f"--jobs {args.jobs}", f"--out {args.out}"])
    json_path, md_path = tune.write_outputs(result, out, command)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0 if not result.failed else 1
