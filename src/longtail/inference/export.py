"""``longtail export``: one self-contained model file plus a JSON sidecar.

The file maps a normalised image batch ``x`` float32 ``[B, C, S, S]`` (``(u8/255 − mean)/std``) to
the final decision values: the post-hoc rule's scores (or the logits) divided by the temperature T,
so ``softmax(output)`` are ``longtail predict``'s probabilities and ``argmax`` its prediction. The
rule's fitted state (class counts, class means, a re-trained classifier) is baked into the graph; T is
also kept as the buffer ``temperature``. Formats: ``torchscript`` (``torch.jit.load`` — no longtail
needed), ``onnx`` when the ``onnx`` package is installed (not a dependency of longtail).

The sidecar (``FILE`` with the suffix ``.json``) holds the class names, mean/std, channels, image
size, how to pre-process, the decision's metadata (rule, parameter, T and where they came from) and
the run it came from.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from longtail.errors import ConfigError

FORMATS = ("torchscript", "onnx")


class DecisionModule(nn.Module):
    """model → post-hoc rule (traced with its fitted state) → ÷ T."""

    def __init__(self, model: nn.Module, decision: Any) -> None:
        super().__init__()
        self.model = model
        self.decision = decision
        self.register_buffer("temperature", torch.tensor(float(decision.temperature), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, logits = self.model(x)
        rule = self.decision.rule
        scores = logits if rule is None else rule.scores(features, self.decision.head)
        return scores / self.temperature


def sidecar_path(out: Path) -> Path:
    side = out.with_suffix(".json")
    if side == out:
        raise ConfigError(f"--out {out}: give the model file a suffix other than .json (e.g. model.pt)")
    return side


def export_model(run: Any, decision: Any, out: str | Path, fmt: str = "torchscript", example_batch: int = 2) -> tuple[Path, Path]:
    """Write the model file and its sidecar; returns both paths."""
    out = Path(out)
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose {' or '.join(FORMATS)}")
    if run.info.kind == "text":
        raise ConfigError(f"run {run.run_dir} is a text model; export takes image models")
    side = sidecar_path(out)
    module = DecisionModule(run.model, decision).eval()
    example = torch.zeros(example_batch, run.channels, run.image_size, run.image_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch marks TorchScript deprecated; torch.jit.load still reads it
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(module, example, check_trace=False)
            traced.save(str(tmp))
        else:
            _export_onnx(module, example, tmp)
    tmp.replace(out)
    sidecar = {
        "format": fmt,
        "model_file": out.name,
        "classes": run.classes,
        "num_classes": run.num_classes,
        "channels": run.channels,
        "image_size": run.image_size,
        "mean": run.mean,
        "std": run.std,
        "input": f"float32 [B, {run.channels}, {run.image_size}, {run.image_size}] = (uint8 image / 255 - mean) / std, "
        + ("grey" if run.channels == 1 else "RGB"),
        "preprocess": _preprocess_text(run),
        "output": "float32 [B, num_classes]: post-hoc-adjusted logits divided by the temperature; softmax = probabilities",
        "temperature": float(decision.temperature),
        "decision": decision.metadata,
        "run": str(run.run_dir),
        "checkpoint": run.checkpoint.name,
        "epoch": run.epoch,
        "class_counts": run.class_counts,
    }
    side.write_text(json.dumps(sidecar, indent=1) + "\n")
    return out, side


def _preprocess_text(run: Any) -> str:
    from longtail.inference.predict import file_transform

    size, mode = run.image_size, file_transform(run).mode
    colour = "grey (Pillow L)" if run.channels == 1 else "RGB"
    if mode == "pad-crop":
        return f"{colour}; an image of another size: shorter side to {size} (bilinear), centre {size}x{size} crop"
    return f"{colour}; shorter side to round({size} * 256 / 224) (bilinear), centre {size}x{size} crop"


def _export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("--format onnx needs the onnx package (pip install onnx); or use --format torchscript") from None
    torch.onnx.export(
        module, (example,), str(path), input_names=["x"], output_names=["scores"],
        dynamic_axes={"x": {0: "batch"}, "scores": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
