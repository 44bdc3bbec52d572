"""Gather the diagnostics of one trained run: rebuild its data and model, extract features, compute.

:func:`analyze_run` reads a run directory (``config.yaml``/checkpoint config, the last
``checkpoints/ckpt-<epoch>.pt`` and, when the run tracked them, ``snapshots/epoch-<e>.pt``),
rebuilds the long-tailed training set and the test set exactly as the run saw them (the subset
fingerprint is checked), runs the model in eval mode without augmentation and returns one
JSON-ready dict (see :data:`longtail.analysis.report.RUN_KEYS`). :func:`analyze_outputs` is the
pure part: features and logits in, every statistic out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from longtail.analysis.stats import (
    class_margins,
    class_sizes,
    classifier_norms,
    confusion_matrix,
    decision_value_matrix,
    feature_deviation,
    per_class_accuracy,
    tsne_embedding,
)
from longtail.errors import LongtailError

_SNAPSHOT = re.compile(r"^epoch-(\d+)\.pt$")
_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.pt$")


@dataclass
class Outputs:
    """What the model computes on one split: features [N, D], logits [N, C], labels [N] (float32/int64, CPU)."""

    features: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


@torch.no_grad()
def extract_outputs(
    model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device | str = "cpu"
) -> Outputs:
    """Run ``model`` (eval mode, no gradient) over ``batches`` of ``(x, y)``; concatenate on the CPU."""
    was_training = model.training
    model.eval()
    feats, logits, labels = [], [], []
    try:
        for x, y in batches:
            f, z = model(x.to(device))
            feats.append(f.float().cpu())
            logits.append(z.float().cpu())
            labels.append(torch.as_tensor(y).long().cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise LongtailError("no examples to analyse: the split is empty; check the data set and its root")
    return Outputs(torch.cat(feats), torch.cat(logits), torch.cat(labels))


def decision_inputs(
    features: torch.Tensor, weight: torch.Tensor, head: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and classifier rows whose inner products are the head's decision values.

    Linear head: f and w_c as they are (w_{c'}ᵀ f, the CDT paper's decision value, bias left out as
    in its eq. 1). Normed-linear head (LDAM): f/‖f‖ and w_c/‖w_c‖, so the values are the cosines the
    head outputs.
    """
    if head == "normed-linear":
        return F.normalize(features.double(), dim=1), F.normalize(weight.detach().double(), dim=1)
    return features, weight


MAX_MATRIX_CLASSES = 200  # C×C matrices above this would bloat analysis.json (iNaturalist: 8,142²)
MAX_TSNE_CLASSES = 20  # the paper shows 10 classes; more make an unreadable cloud


def tsne_classes(train_sizes: list[int], limit: int = MAX_TSNE_CLASSES) -> list[int]:
    """All classes with training data, or ``limit`` of them evenly spaced from the largest to the smallest."""
    order = sorted((c for c, n in enumerate(train_sizes) if n > 0), key=lambda c: (-train_sizes[c], c))
    if len(order) <= limit:
        return sorted(order)
    picks = {order[round(i * (len(order) - 1) / (limit - 1))] for i in range(limit)}
    return sorted(picks)


def analyze_outputs(
    name: str,
    train: Outputs,
    test: Outputs,
    weight: torch.Tensor,
    class_counts: list[int],
    class_names: list[str] | None = None,
    head: str = "linear",
    rounds: int = 1000,
    seed: int = 0,
    tsne_per_class: int = 0,
    epoch: int | None = None,
    run_dir: str | None = None,
) -> dict[str, Any]:
    """Every statistic of the CDT paper's section 3 and LDAM's margins, as one JSON-ready dict.

    ``weight`` is ``head.class_weight_matrix()`` [C, D]. Accuracy and confusion use argmax of the
    logits; margins use the training logits; ``tsne_per_class=0`` skips the t-SNE, which uses at
    most :data:`MAX_TSNE_CLASSES` classes. The C×C matrices are kept up to
    :data:`MAX_MATRIX_CLASSES` classes; their diagonals always.
    """
    C = int(weight.shape[0])
    train_pred, test_pred = train.logits.argmax(1), test.logits.argmax(1)
    train_dv_f, dv_w = decision_inputs(train.features, weight, head)
    test_dv_f, _ = decision_inputs(test.features, weight, head)
    dv_train = decision_value_matrix(train_dv_f, train.labels, dv_w)
    dv_test = decision_value_matrix(test_dv_f, test.labels, dv_w)
    test_correct = int((test_pred == test.labels).sum())
    train_acc = per_class_accuracy(train_pred, train.labels, C)
    test_acc = per_class_accuracy(test_pred, test.labels, C)
    train_sizes = class_sizes(train.labels, C).tolist()
    test_sizes = class_sizes(test.labels, C).tolist()
    deviation = feature_deviation(
        train.features, train.labels, test.features, test.labels, num_classes=C, rounds=rounds, seed=seed
    )
    present = [n for n in train_sizes if n > 0]
    full = C <= MAX_MATRIX_CLASSES
    run: dict[str, Any] = {
        "name": name,
        "run_dir": run_dir,
        "epoch": epoch,
        "num_classes": C,
        "class_names": list(class_names) if class_names is not None else [str(c) for c in range(C)],
        "class_counts": [int(n) for n in class_counts],
        "test_counts": test_sizes,
        "head": head,
        "summary": {
            "train_balanced_accuracy": _mean(train_acc),
            "test_balanced_accuracy": _mean(test_acc),
            "test_top1": test_correct / max(len(test.labels), 1),
        },
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "classifier_norms": classifier_norms(weight).tolist(),
        "feature_deviation": deviation,
        "deviation_K": min(present) if present else None,
        "deviation_rounds": rounds,
        # Diagonal of the decision-value matrices (None where the class has no examples).
        "decision_diagonal": {
            "train": [float(dv_train[c, c]) if train_sizes[c] else None for c in range(C)],
            "test": [float(dv_test[c, c]) if test_sizes[c] else None for c in range(C)],
        },
        "decision_values": {"train": dv_train.tolist(), "test": dv_test.tolist()} if full else None,
        "confusion": {
            "train": confusion_matrix(train_pred, train.labels, C).tolist(),
            "test": confusion_matrix(test_pred, test.labels, C).tolist(),
        }
        if full
        else None,
        "margins": class_margins(train.logits, train.labels, C),
        "tsne": None,
        "epochs": None,
    }
    if tsne_per_class > 0:
        classes = tsne_classes(train_sizes)
        keep_train = torch.isin(train.labels, torch.tensor(classes))
        keep_test = torch.isin(test.labels, torch.tensor(classes))
        run["tsne"] = tsne_embedding(
            train.features[keep_train], train.labels[keep_train], test.features[keep_test], test.labels[keep_test],
            per_class=tsne_per_class, seed=seed,
        ).to_dict()  # fmt: skip
    return run


def epoch_statistics(train: Outputs, test: Outputs, weight: torch.Tensor, rounds: int, seed: int) -> dict[str, Any]:
    """The per-class statistics plotted along epochs (CDT Figure 7) for one snapshot."""
    C = int(weight.shape[0])
    return {
        "train_accuracy": per_class_accuracy(train.logits.argmax(1), train.labels, C),
        "test_accuracy": per_class_accuracy(test.logits.argmax(1), test.labels, C),
        "classifier_norms": classifier_norms(weight).tolist(),
        "feature_deviation": feature_deviation(
            train.features, train.labels, test.features, test.labels, num_classes=C, rounds=rounds, seed=seed
        ),
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


# ------------------------------------------------------------------------------------ run directory


def find_checkpoint(run_dir: Path) -> Path:
    """The checkpoint with the highest epoch in ``run_dir/checkpoints``."""
    directory = run_dir / "checkpoints"
    found = sorted(
        (int(m.group(1)), p) for p in (directory.iterdir() if directory.is_dir() else []) if (m := _CHECKPOINT.match(p.name))
    )
    if not found:
        raise LongtailError(
            f"{run_dir} has no checkpoints/ckpt-<epoch>.pt; pass the directory `longtail train` wrote (--out)"
        )
    return found[-1][1]


def find_snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of ``snapshots/epoch-<e>.pt``, by epoch (written when ``analysis.track_every`` > 0)."""
    directory = run_dir / "snapshots"
    if not directory.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := _SNAPSHOT.match(p.name)))


def load_state(path: Path) -> dict[str, Any]:
    """A checkpoint or snapshot, loaded with ``weights_only=True`` (plain tensors and containers)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means an unreadable file
        raise LongtailError(f"cannot read {path} ({error}); is it a file written by longtail train?") from None
    if not isinstance(state, dict):
        raise LongtailError(f"{path} does not hold a dict; is it a file written by longtail train?")
    return state


def model_state(state: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The model's state dict inside a checkpoint or snapshot (key ``model``)."""
    weights = state.get("model")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise LongtailError(f"{path} holds no model state dict (key 'model'); it was not written by longtail train")
    return weights


def run_config(run_dir: Path, checkpoint: dict[str, Any], data_root: str | None = None) -> Any:
    """The run's resolved config: the one stored in the checkpoint, else ``config.yaml``."""
    from longtail.config import from_dict, load_config

    raw = checkpoint.get("config")
    if isinstance(raw, dict):
        config = from_dict(raw, source=f"{run_dir} checkpoint config")
    elif (run_dir / "config.yaml").is_file():
        config = load_config(run_dir / "config.yaml")
    else:
        raise LongtailError(f"{run_dir} has no config.yaml and its checkpoint no config; pass a `longtail train` run directory")
    if data_root is not None:
        config.data.root = str(data_root)
    return config


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise LongtailError(
            f"the weights in {path} do not fit the model its config describes ({first}); "
            "was the run written by another version of longtail?"
        ) from None


def analyze_run(
    run_dir: str | Path,
    name: str | None = None,
    rounds: int = 1000,
    tsne_per_class: int = 25,
    seed: int = 0,
    batch_size: int = 128,
    device: str = "auto",
    epochs: bool = True,
    data_root: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load ``run_dir``'s config and final checkpoint, rebuild data and model, compute every statistic.

    Features and logits come from the engine's own evaluation path (no augmentation, eval mode,
    fp32). With ``epochs`` and ``snapshots/epoch-<e>.pt`` present, the per-class accuracy, norms and
    feature deviation are also computed at each snapshot (``run["epochs"]``).
    """
    from longtail.engine.accel import Accel, prepare_model
    from longtail.engine.data import TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.evaluate import extract
    from longtail.engine.trainer import build_model

    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise LongtailError(f"run directory {run_path} does not exist; pass the --out directory of `longtail train`")
    say = log or (lambda _msg: None)
    ckpt_path = find_checkpoint(run_path)
    checkpoint = load_state(ckpt_path)
    config = run_config(run_path, checkpoint, data_root)
    say(f"{run_path}: {ckpt_path.name}, data {config.data.name}, model {config.model.name} ({config.model.head} head)")
    accel = Accel(device=device, channels_last=config.runtime.channels_last, precision="fp32")
    data = TrainData(config, DistInfo(), accel.torch_device)
    if data.data.test is None or len(data.data.test) == 0:
        raise LongtailError(f"data set {config.data.name!r} has no test split to analyse")
    saved_fp = checkpoint.get("fingerprint")
    if isinstance(saved_fp, str) and saved_fp and saved_fp != data.fingerprint:
        raise LongtailError(
            f"the rebuilt training subset (fingerprint {data.fingerprint}) differs from the run's ({saved_fp}); "
            "analyse with the same data files and data config the run used"
        )
    model = build_model(config, data)
    load_weights(model, model_state(checkpoint, ckpt_path), ckpt_path)
    model = prepare_model(model, accel)

    def outputs() -> tuple[Outputs, Outputs]:
        train = Outputs(*extract(model, data.train_eval, accel, batch_size))
        test = Outputs(*extract(model, data.test, accel, batch_size))
        return train, test

    train, test = outputs()
    say(f"  features: train {tuple(train.features.shape)}, test {tuple(test.features.shape)}")
    counts = checkpoint.get("class_counts") or data.class_counts
    epoch = checkpoint.get("epoch")
    run = analyze_outputs(
        name or run_path.name, train, test, model.head.class_weight_matrix().detach().cpu(), list(counts),
        class_names=data.classes, head=config.model.head, rounds=rounds, seed=seed,
        tsne_per_class=tsne_per_class, epoch=int(epoch) if epoch is not None else None, run_dir=str(run_path),
    )  # fmt: skip
    snapshots = find_snapshots(run_path) if epochs else []
    if snapshots:
        series: dict[str, list[Any]] = {"epoch": []}
        final_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        final_head = model.head.class_weight_matrix().detach().cpu().clone()
        for e, path in snapshots:
            weights = model_state(load_state(path), path)
            if e == epoch and _same_weights(weights, final_weights):
                snap_train, snap_test, snap_w = train, test, final_head  # the final model: no second pass
            else:
                load_weights(model, weights, path)
                snap_train, snap_test = outputs()
                snap_w = model.head.class_weight_matrix().detach().cpu()
            stats = epoch_statistics(snap_train, snap_test, snap_w, rounds, seed)
            series["epoch"].append(e)
            for key, value in stats.items():
                series.setdefault(key, []).append(value)
            say(f"  snapshot epoch {e}")
        run["epochs"] = series
    return run
