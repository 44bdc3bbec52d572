"""``longtail reproduce TABLE [--data-root DIR] [--seeds 0,1,2] [--out DIR] [--variant paper|300ep|last-decay]
[--dry-run] [key=value ...]``: train the rows of one paper table and write a markdown table of our
numbers (mean ± std over seeds, last epoch) next to the paper's."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from longtail.reproduce.tables import TABLES

    parser = subparsers.add_parser(
        "reproduce",
        help="run the rows of one table of the LDAM-DRW / CDT papers and compare with the paper",
        description="Train every row of TABLE (finished runs are reused, killed runs resumed), apply the "
        "post-hoc rules (parameters chosen on the held-out split) and write OUT/TABLE.md: our number "
        "(mean ± std over seeds, last epoch) next to the paper's, with each row's budget. "
        f"Tables: {', '.join(TABLES)}.",
    )
    parser.add_argument("table", help="table id, e.g. ldam-table2 or cdt-table6")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides applied to every run, e.g. train.epochs=2")
    parser.add_argument("--data-root", help="folder holding the data sets (cifar-10-batches-py/, "
                        "tiny-imagenet-200/, aclImdb/, inaturalist2018/ ...); default: each data set's root")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--out", default="runs/reproduce", help="runs and the markdown go here")
    parser.add_argument("--configs", help="configs directory (default: the repository's configs/)")
    parser.add_argument("--variant", help="use <config>.<VARIANT>.yaml where it exists: 'paper' (LDAM s=10, "
                        "inverse-frequency DRW), '300ep' (300-epoch step runs) or 'last-decay' (DRW/DRS from the "
                        "last lr decay, the LDAM text read literally)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (per row: the runs it trains or "
                        "evaluates and the run each tuned value is chosen on), train nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.commands.train import _parse_seeds
    from longtail.reproduce.runner import execute, format_plan, make_plan, markdown_table

    plan = make_plan(
        args.table,
        seeds=_parse_seeds(args.seeds),
        out=args.out,
        configs_dir=args.configs,
        data_root=args.data_root,
        overrides=args.overrides,
        variant=args.variant,
    )
    print(format_plan(plan), flush=True)
    if args.dry_run:
        return 0
    results = execute(plan, log=lambda message: print(f"== {message}", flush=True))
    text = markdown_table(args.table, results, plan.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.table}.md"
    path.write_text(text)
    print(text)
    print(f"written {path}")
    failed = [r for r in results if r.failed]
    if failed:
        print(f"{len(failed)} row(s) failed; their errors are in the notes column", flush=True)
        return 1
    return 0
