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
from collections.abc import Callable, Iterable, Iterator
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
    logits; margins use the training logits; ``tsne_per_class=0`` skips the t-SNE.
    """
    C = int(weight.shape[0])
    train_pred, test_pred = train.logits.argmax(1), test.logits.argmax(1)
    train_dv_f, dv_w = decision_inputs(train.features, weight, head)
    test_dv_f, _ = decision_inputs(test.features, weight, head)
    test_correct = int((test_pred == test.labels).sum())
    train_acc = per_class_accuracy(train_pred, train.labels, C)
    test_acc = per_class_accuracy(test_pred, test.labels, C)
    deviation = feature_deviation(
        train.features, train.labels, test.features, test.labels, num_classes=C, rounds=rounds, seed=seed
    )
    present = [n for n in class_sizes(train.labels, C).tolist() if n > 0]
    run: dict[str, Any] = {
        "name": name,
        "run_dir": run_dir,
        "epoch": epoch,
        "num_classes": C,
        "class_names": list(class_names) if class_names is not None else [str(c) for c in range(C)],
        "class_counts": [int(n) for n in class_counts],
        "test_counts": class_sizes(test.labels, C).tolist(),
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
        "decision_values": {
            "train": decision_value_matrix(train_dv_f, train.labels, dv_w).tolist(),
            "test": decision_value_matrix(test_dv_f, test.labels, dv_w).tolist(),
        },
        "confusion": {
            "train": confusion_matrix(train_pred, train.labels, C).tolist(),
            "test": confusion_matrix(test_pred, test.labels, C).tolist(),
        },
        "margins": class_margins(train.logits, train.labels, C),
        "tsne": None,
        "epochs": None,
    }
    if tsne_per_class > 0:
        run["tsne"] = tsne_embedding(
            train.features, train.labels, test.features, test.labels, per_class=tsne_per_class, seed=seed
        ).to_dict()
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


def _load(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means an unreadable file
        raise LongtailError(f"cannot read {path} ({error}); is it a file written by longtail train?") from None
    if not isinstance(state, dict):
        raise LongtailError(f"{path} does not hold a dict; is it a file written by longtail train?")
    return state


def _model_state(state: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The model's state dict inside a checkpoint/snapshot (``state["model"]``) or the file itself."""
    model_state = state.get("model", state)
    if not isinstance(model_state, dict) or not all(isinstance(v, torch.Tensor) for v in model_state.values()):
        raise LongtailError(f"{path} holds no model state dict (key 'model'); it was not written by longtail train")
    return model_state


def _config_of(run_dir: Path, checkpoint: dict[str, Any]) -> Any:
    from longtail.config import from_dict, load_config

    raw = checkpoint.get("config")
    if isinstance(raw, dict):
        return from_dict(raw, source=f"{run_dir} checkpoint")
    if (run_dir / "config.yaml").is_file():
        return load_config(run_dir / "config.yaml")
    raise LongtailError(f"{run_dir} has no config.yaml and its checkpoint no config; pass a `longtail train` run directory")


def build_data(config: Any) -> Any:
    """The run's long-tailed training set and test set, rebuilt from its data config."""
    from longtail.data import build_longtail

    d = config.data
    return build_longtail(
        d.name, root=d.root, profile=d.profile, imbalance_ratio=d.imbalance_ratio,
        minority_fraction=d.minority_fraction, seed=d.seed, class_order=d.class_order,
        heldout_per_class=d.heldout_per_class, test_distribution=d.test_distribution,
    )  # fmt: skip


def build_model(config: Any, data: Any) -> torch.nn.Module:
    """The run's architecture (weights come from the checkpoint)."""
    try:  # the engine's builder knows every model's data-dependent options (e.g. a text vocabulary)
        from longtail.engine.build import build_model as engine_build_model  # type: ignore[import-not-found]
    except ImportError:
        engine_build_model = None
    if engine_build_model is not None:
        return engine_build_model(config, data)
    from longtail.models import create_model

    params = dict(config.model.params)
    params.setdefault("in_channels", data.info.channels or 3)
    return create_model(config.model.name, num_classes=data.num_classes, head=config.model.head, **params)


def split_batches(split: Any, info: Any, batch_size: int) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """A re-iterable source of evaluation batches (no augmentation, normalised) over ``split``."""
    if split.images is not None:
        from longtail.data.augment import BatchAugment

        normalise = BatchAugment(info.mean, info.std, pad=0, flip=False)

        def tensor_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for start in range(0, len(split), batch_size):
                yield normalise(split.images[start : start + batch_size]), split.labels[start : start + batch_size]

        return tensor_batches
    try:
        from longtail.engine.evaluate import eval_batches  # type: ignore[import-not-found]
    except ImportError:
        raise LongtailError(
            f"analysis of {info.name!r} needs the streaming/text loaders, which this install lacks; "
            "analyse an in-memory image data set (CIFAR, (Fashion-)MNIST, Tiny-ImageNet)"
        ) from None
    return lambda: iter(eval_batches(split, info, batch_size))


def analyze_run(
    run_dir: str | Path,
    name: str | None = None,
    rounds: int = 1000,
    tsne_per_class: int = 25,
    seed: int = 0,
    batch_size: int = 512,
    device: str = "cpu",
    epochs: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load ``run_dir``'s config and final checkpoint, rebuild data and model, compute every statistic.

    With ``epochs`` and ``snapshots/epoch-<e>.pt`` present, the per-class accuracy, norms and
    feature deviation are also computed at each snapshot (``run["epochs"]``).
    """
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise LongtailError(f"run directory {run_path} does not exist; pass the --out directory of `longtail train`")
    say = log or (lambda _msg: None)
    ckpt_path = find_checkpoint(run_path)
    checkpoint = _load(ckpt_path)
    config = _config_of(run_path, checkpoint)
    say(f"{run_path}: {ckpt_path.name}, data {config.data.name}, model {config.model.name}/{config.model.head}")
    data = build_data(config)
    if data.test is None or len(data.test) == 0:
        raise LongtailError(f"data set {config.data.name!r} has no test split to analyse")
    saved_fp = checkpoint.get("fingerprint")
    if isinstance(saved_fp, str) and saved_fp and saved_fp != data.fingerprint:
        raise LongtailError(
            f"the rebuilt training subset (fingerprint {data.fingerprint}) differs from the run's ({saved_fp}); "
            "analyse with the same data files and data config the run used"
        )
    model = build_model(config, data).to(device)
    model.load_state_dict(_model_state(checkpoint, ckpt_path))
    train_batches = split_batches(data.train, data.info, batch_size)
    test_batches = split_batches(data.test, data.info, batch_size)
    train = extract_outputs(model, train_batches(), device)
    test = extract_outputs(model, test_batches(), device)
    say(f"  features: train {tuple(train.features.shape)}, test {tuple(test.features.shape)}")
    counts = checkpoint.get("class_counts") or data.class_counts
    epoch = checkpoint.get("epoch")
    run = analyze_outputs(
        name or run_path.name, train, test, model.head.class_weight_matrix().detach().cpu(), list(counts),
        class_names=data.train.classes, head=config.model.head, rounds=rounds, seed=seed,
        tsne_per_class=tsne_per_class, epoch=int(epoch) if epoch is not None else None, run_dir=str(run_path),
    )  # fmt: skip
    snapshots = find_snapshots(run_path) if epochs else []
    if snapshots:
        series: dict[str, list[Any]] = {"epoch": []}
        for e, path in snapshots:
            model.load_state_dict(_model_state(_load(path), path))
            stats = epoch_statistics(
                extract_outputs(model, train_batches(), device), extract_outputs(model, test_batches(), device),
                model.head.class_weight_matrix().detach().cpu(), rounds, seed,
            )  # fmt: skip
            series["epoch"].append(e)
            for key, value in stats.items():
                series.setdefault(key, []).append(value)
            say(f"  snapshot epoch {e}")
        run["epochs"] = series
    return run
