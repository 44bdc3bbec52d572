"""``longtail data NAME``: the class counts of a long-tailed training set, with a text histogram."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="show the class counts of a long-tailed training set",
        description="Build the long-tailed training set of a data set (SPEC §1) and print its class "
        "counts. Data sets: cifar10, cifar100, fashion-mnist, mnist, tiny-imagenet, inaturalist2018, "
        "imagefolder, imdb (`longtail list datasets`).",
    )
    parser.add_argument("name", metavar="NAME", help="data set name, e.g. cifar10 or fashion-mnist")
    parser.add_argument("--root", metavar="DIR", default=None, help="folder holding the data set files")
    parser.add_argument(
        "--profile",
        choices=["exp", "step", "none"],
        default="exp",
        help="imbalance profile (none: keep the data as it is)",
    )
    parser.add_argument(
        "--imbalance-ratio", type=float, default=100.0, metavar="R", help="rho = N_max / N_min (default 100)"
    )
    parser.add_argument(
        "--minority-fraction",
        type=float,
        default=0.5,
        metavar="MU",
        help="step profile: fraction of minority classes (default 0.5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset (default 0)")
    parser.add_argument(
        "--class-order",
        choices=["natural", "reversed", "permuted"],
        default="natural",
        help="which class gets the largest count (default natural: class 0)",
    )
    parser.add_argument(
        "--subset-rule",
        choices=["seeded", "reference"],
        default="seeded",
        help="how the kept examples are drawn: seeded (default) or reference (the LDAM-DRW code's draw)",
    )
    parser.add_argument(
        "--heldout-per-class",
        type=int,
        default=0,
        metavar="K",
        help="hold out K examples per class as a balanced validation split",
    )
    parser.add_argument(
        "--n-max",
        type=int,
        default=None,
        metavar="N",
        help="size of the largest class (default: the smallest class of the full set)",
    )
    parser.add_argument("--download", action="store_true", help="download the data set first if needed")
    parser.add_argument("--mirror", metavar="URL", default=None, help="base URL to download from")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.data.build import build_from, count_histogram, describe
    from longtail.data.datasets import dataset_info
    from longtail.data.download import download_dataset

    info = dataset_info(args.name)
    if args.download:
        target = args.root or info.default_root
        if target is None:
            from longtail.errors import DataError

            raise DataError(f"data set {args.name!r} needs --root DIR to download into")
        download_dataset(args.name, target, base_url=args.mirror)
    data = build_from(args, with_test=False)
    summary = describe(data, args)
    if args.json:
        print(json.dumps(summary))
        return 0
    ratio = f"  rho={args.imbalance_ratio:g}" if args.profile != "none" else ""
    mu = f"  mu={args.minority_fraction:g}" if args.profile == "step" else ""
    print(f"{args.name}: profile={args.profile}{ratio}{mu}  class order={args.class_order}  seed={args.seed}")
    for line in count_histogram(data.train.classes, summary["class_counts"]):
        print(line)
    held = f", {summary['heldout_total']} held out" if summary["heldout_total"] else ""
    print(
        f"total {summary['total']} training examples in {data.num_classes} classes{held}; "
        f"fingerprint {data.fingerprint}"
    )
    return 0
