"""``longtail predict RUN INPUT --out FILE``: top-k classes and probabilities with the run's decision.

INPUT: an image file, a folder (every image below it), a list file of ``relative/path [label]`` lines
(paths relative to ``--root``, default the list's folder) or ``split:test`` / ``split:heldout`` /
``split:train`` (the run's own data). ``--out`` ends in ``.csv`` (metadata in ``FILE.meta.json`` beside
it) or ``.jsonl`` (metadata on the first line). The decision: the model's logits, or a post-hoc rule
(``--posthoc``) with its parameter given (``--param``), tuned on the run's held-out split (``--tune
heldout``) or chosen on another run's held-out split (``--tau-from HELDOUT_RUN``), then temperature
scaling last (``--temperature heldout|T``). Unreadable images are reported on stderr, listed in the
metadata and skipped.

Exit status: 0 when every input was predicted; 3 when some (or all) images could not be read and were
skipped (their number is printed); 2 on a usage or data error (nothing written).
"""

from __future__ import annotations

import argparse

EXIT_SKIPPED = 3


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--posthoc (--param | --tune heldout | --tau-from RUN) [--rule-param] [--grid] [--temperature]``."""
    parser.add_argument("--posthoc", metavar="RULE", help="post-hoc rule (`longtail list posthoc`)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--param", type=float, help="the rule's parameter (e.g. tau); default: the rule's default")
    group.add_argument("--tune", choices=["heldout"], help="choose the parameter on the run's held-out split")
    group.add_argument("--tau-from", metavar="HELDOUT_RUN",
                       help="choose the parameter (and T with --temperature heldout) on the held-out split of "
                       "HELDOUT_RUN (a run trained with data.heldout_per_class=K), apply it to RUN")
    parser.add_argument("--grid", help="comma-separated values for --tune / --tau-from (default: the rule's grid)")
    parser.add_argument("--rule-param", action="append", default=[], metavar="KEY=VALUE",
                        help="another parameter of the rule, e.g. sampler=instance for crt (repeatable)")
    parser.add_argument("--temperature", metavar="heldout|T",
                        help="temperature scaling, applied last: 'heldout' fits T by NLL on the held-out split "
                        "(RUN's own, or HELDOUT_RUN's with --tau-from; never the test set), a number sets it")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict images, a folder, a list file or a split with a trained run",
        description="Top-k classes and probabilities of a trained run (with its post-hoc rule and temperature) "
        "for an image, a folder, a list file of `relative/path [label]` lines or split:test|heldout|train.",
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


def decision_from_args(args: argparse.Namespace, run_obj):  # noqa: ANN001, ANN201
    """The run's :class:`~longtail.inference.decision.Decision` from the parsed decision flags."""
    from longtail.commands.eval import parse_rule_params, parse_temperature
    from longtail.errors import ConfigError
    from longtail.inference.decision import build_decision, load_tau_from

    grid = None
    if args.grid:
        try:
            grid = [float(v) for v in args.grid.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--grid {args.grid!r} must be comma-separated numbers, e.g. 0,0.5,1") from None
    tau_from = load_tau_from(args.tau_from, args.device)
    return build_decision(run_obj, args.posthoc, args.param, args.tune, tau_from, parse_temperature(args.temperature),
                          parse_rule_params(args.rule_param), grid)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from longtail.inference.loading import load_trained_run
    from longtail.inference.predict import predict

    trained = load_trained_run(args.run, args.device)
    decision = decision_from_args(args, trained)
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
    if result.labelled:
        print(f"top-1 accuracy on the {result.labelled} labelled inputs: {100 * result.correct / result.labelled:.2f}%")
    print(f"wrote {result.out}" + (f" and {result.meta_path}" if result.meta_path else ""))
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable image(s) of {result.written + len(result.skipped)} (listed on stderr "
              "and in the metadata); exit status 3")
        return EXIT_SKIPPED
    return 0
