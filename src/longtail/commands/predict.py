"""``longtail predict RUN INPUT --out FILE``: top-k classes and probabilities with the run's decision.

INPUT: an image file, a folder (every image below it), a list file of ``relative/path [label]`` lines or
a CSV file with ``path`` and optional ``label`` columns (the data sets' reader; paths relative to
``--root``, default the list's folder) or ``split:test`` / ``split:heldout`` /
``split:train`` (the run's own data). ``--out`` ends in ``.csv`` (metadata in ``FILE.meta.json`` beside
it) or ``.jsonl`` (metadata on the first line). The decision: the model's logits, or a post-hoc rule
(``--posthoc``) with its parameter given (``--param``), tuned on the run's held-out split (``--tune
heldout``) or chosen on another run's held-out split (``--tau-from HELDOUT_RUN``), then temperature
scaling last (``--temperature heldout|T``: T fitted on HELDOUT_RUN's held-out split with ``--tau-from``, else
on RUN's own). The decision flags are those of ``longtail eval`` and ``export``
(:mod:`longtail.commands._decision`). Unreadable images are reported on stderr, listed in the
metadata and skipped.

Exit status: 0 when every input was predicted; 3 when some (or all) images could not be read and were
skipped (their number is printed); 2 on a usage or data error (nothing written).
"""

from __future__ import annotations

import argparse

EXIT_SKIPPED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    from longtail.commands._decision import add_decision_arguments

    parser = subparsers.add_parser(
        "predict",
        help="predict images, a folder, a list file or a split with a trained run",
        description="Top-k classes and probabilities of a trained run (with its post-hoc rule and temperature) "
        "for an image, a folder, a list file of `relative/path [label]` lines (or a CSV file with path and "
        "optional label columns) or split:test|heldout|train.",
        epilog="exit status: 0 all predicted, 3 some images unreadable and skipped, 2 error",
    )
    parser.add_argument("run", metavar="RUN", help="run directory written by `longtail train`")
    parser.add_argument("input", metavar="INPUT", help="image file, folder, list file, or split:test|heldout|train")
    parser.add_argument("--out", required=True, metavar="FILE", help="predictions, .csv or .jsonl")
    parser.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    add_decision_arguments(parser)
    parser.add_argument("--root", help="folder the paths of a list file are relative to (default: the list's folder)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--device", default="cpu", help="'cpu' (default), 'cuda', 'auto'")
    parser.add_argument("--progress", choices=["auto", "bar", "none"], default="auto",
                        help="progress bar on stderr (auto: when stderr is a terminal)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.commands._decision import decision_options, tuning_line
    from longtail.inference.decision import build_decision
    from longtail.inference.loading import load_trained_run
    from longtail.inference.predict import predict

    options = decision_options(args)  # bad flags refused before the run is loaded
    trained = load_trained_run(args.run, args.device)
    decision = build_decision(trained, **options.kwargs())  # HELDOUT_RUN loaded on --device, without its test split
    progress = None if args.progress == "auto" else args.progress == "bar"
    result = predict(trained, decision, args.input, args.out, top=args.top_k, batch_size=args.batch_size,
                     root=args.root, progress=progress)  # fmt: skip
    meta = decision.metadata
    rule = meta["posthoc"] or "the model's logits"
    if meta.get("param_name"):
        rule += f" ({meta['param_name']}={meta['param']:g}, {meta['param_source']})"
    if meta.get("temperature"):
        rule += f", T = {meta['temperature']['value']:.4g} ({meta['temperature']['source']})"
    print(f"{args.run}: {result.written} predictions with {rule}")
    if meta.get("tuning"):
        print(tuning_line(meta["tuning"], meta["param_name"]))
    if result.labelled:
        print(f"top-1 accuracy on the {result.labelled} labelled inputs: {100 * result.correct / result.labelled:.2f}%")
    print(f"wrote {result.out}" + (f" and {result.meta_path}" if result.meta_path else ""))
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable image(s) of {result.written + len(result.skipped)} (listed on stderr "
              "and in the metadata); exit status 3")
        return EXIT_SKIPPED
    return 0
