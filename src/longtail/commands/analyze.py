"""``longtail analyze DIR [DIR ...] [--out REPORT_DIR]``: the CDT paper's diagnostics as plots and a report.

For each trained run directory: per-class training/test accuracy, classifier norms, feature
deviation, decision-value and prediction matrices, t-SNE, LDAM margins, and the same statistics
along epochs when the run saved snapshots (``analysis.track_every``), CDT Table 1 (linear classifier vs
nearest class mean with training- and test-set means) and LDAM Fig. 6 (a linear probe on a balanced
set over the features of the snapshot before the first lr decay). Several runs are overlaid.
Writes ``analysis.json``, PNGs and a self-contained ``report.html`` into REPORT_DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from longtail.errors import LongtailError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="diagnostics of trained runs (feature deviation, norms, margins, ...) as plots and a report",
        description="Analyse trained runs as in the CDT paper, section 3, and the LDAM paper's margins: "
        "writes analysis.json, PNG plots and a self-contained report.html. Several runs are overlaid "
        "(e.g. ERM vs CDT).",
    )
    parser.add_argument("runs", nargs="+", metavar="DIR", help="run directories written by `longtail train`")
    parser.add_argument("--out", metavar="REPORT_DIR",
                        help="where to write the report (default: DIR/report for one run, ./longtail-report for several)")  # fmt: skip
    parser.add_argument("--name", action="append", metavar="NAME",
                        help="label of each run in the plots, once per DIR in order (default: the directory name)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1000, help="feature-deviation sub-sampling rounds R (default 1000)")
    parser.add_argument("--tsne-per-class", type=int, default=25,
                        help="training and test examples per class in the t-SNE (default 25)")  # fmt: skip
    parser.add_argument("--no-tsne", action="store_true", help="skip the t-SNE")
    parser.add_argument("--no-epochs", action="store_true", help="ignore snapshots (statistics along epochs)")
    parser.add_argument("--no-probe", action="store_true",
                        help="skip LDAM Fig. 6's linear probe on the pre-annealing snapshot (trains on the whole "
                             "balanced training split)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the sub-sampling and t-SNE draws (default 0)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="feature-extraction batch size (default 128, the fastest measured on CPU)")
    parser.add_argument("--device", default="auto", help="'auto' (cuda if available), 'cpu', 'cuda', ...")
    parser.add_argument("--data-root", help="read the data set from here instead of the run's data.root")
    parser.set_defaults(func=run)


def run_labels(dirs: list[Path], names: list[str] | None) -> list[str]:
    """One label per run: ``--name`` values, else the directory name (with its parent if names repeat)."""
    if names:
        if len(names) != len(dirs):
            raise LongtailError(f"--name was given {len(names)} times for {len(dirs)} run directories; give it once per DIR")
        return list(names)
    labels = [d.resolve().name for d in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{d.resolve().parent.name}/{d.resolve().name}" for d in dirs]
    return labels


def run(args: argparse.Namespace) -> int:
    from longtail.analysis.collect import analyze_run
    from longtail.analysis.report import findings, write_report

    if args.rounds < 1:
        raise LongtailError(f"--rounds must be at least 1, got {args.rounds}")
    if args.tsne_per_class < 1 and not args.no_tsne:
        raise LongtailError(f"--tsne-per-class must be at least 1, got {args.tsne_per_class}; or pass --no-tsne")
    dirs = [Path(d) for d in args.runs]
    for d in dirs:
        if not d.is_dir():
            raise LongtailError(f"run directory {d} does not exist; pass the --out directory of `longtail train`")
        if not (d / "checkpoints").is_dir() and any(d.glob("seed-*/checkpoints")):
            seeds = sorted(p.parent.name for p in d.glob("seed-*/checkpoints"))
            raise LongtailError(f"{d} holds several seeds ({', '.join(seeds)}); pass one of them, e.g. {d / seeds[0]}")
    labels = run_labels(dirs, args.name)
    out = Path(args.out) if args.out else (dirs[0] / "report" if len(dirs) == 1 else Path("longtail-report"))
    if out.exists() and not out.is_dir():
        raise LongtailError(f"--out {out} exists and is not a directory; give a directory for the report")
    try:  # before the analysis, which takes minutes
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LongtailError(f"--out {out} cannot be created ({error.strerror or error}); choose a writable path") from None
    analyses = []
    for d, label in zip(dirs, labels):
        analyses.append(
            analyze_run(
                d, name=label, rounds=args.rounds, tsne_per_class=0 if args.no_tsne else args.tsne_per_class,
                seed=args.seed, batch_size=args.batch_size, device=args.device, epochs=not args.no_epochs,
                data_root=args.data_root, log=print, probe=not args.no_probe,
            )  # fmt: skip
        )
    page = write_report(analyses, out)
    for analysis in analyses:
        print(f"{analysis['name']}:")
        for topic, sentence in findings(analysis):
            print(f"  {topic}: {sentence}")
    print(f"report: {page}")
    print(f"numbers: {out / 'analysis.json'}")
    return 0
