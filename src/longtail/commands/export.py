"""``longtail export RUN --out FILE [--format torchscript|onnx]``: one self-contained model file.

The file takes a normalised image batch and returns the post-hoc-adjusted logits divided by the
temperature (the decision flags are those of ``longtail predict`` and ``eval``:
:mod:`longtail.commands._decision`); a JSON sidecar (``FILE`` with the suffix ``.json``) holds the class
names, mean/std, image size and how the decision was made. ONNX needs the ``onnx`` package, which
longtail does not depend on.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from longtail.commands._decision import add_decision_arguments

    parser = subparsers.add_parser(
        "export",
        help="write a trained run (with its post-hoc rule and temperature) as one TorchScript/ONNX file",
        description="Export the final model of a run with its decision (post-hoc rule, temperature) as one "
        "self-contained file plus a JSON sidecar (classes, mean/std, image size).",
    )
    parser.add_argument("run", metavar="RUN", help="run directory written by `longtail train`")
    parser.add_argument("--out", required=True, metavar="FILE", help="model file, e.g. model.pt (sidecar: model.json)")
    parser.add_argument("--format", choices=["torchscript", "onnx"], default="torchscript",
                        help="torchscript (default; torch.jit.load) or onnx (needs the onnx package)")
    add_decision_arguments(parser)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from longtail.commands._decision import decision_options
    from longtail.inference.decision import build_decision
    from longtail.inference.export import export_model
    from longtail.inference.loading import load_trained_run

    options = decision_options(args)  # bad flags refused before the run is loaded
    trained = load_trained_run(args.run, "cpu")
    decision = build_decision(trained, **options.kwargs())
    model_path, sidecar = export_model(trained, decision, args.out, args.format)
    print(f"wrote {model_path} ({args.format}, T = {decision.temperature:.4g}) and {sidecar}")
    return 0
