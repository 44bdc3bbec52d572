"""Gather the diagnostics of one trained run: rebuild its data and model, extract features, compute.

:func:`analyze_run` reloads a run directory through :meth:`longtail.engine.run.Run.load_trained`
(the last ``checkpoints/ckpt-<epoch>.pt``; the training and test sets rebuilt exactly as the run saw
them, the subset fingerprint checked) and, when the run tracked them, ``snapshots/epoch-<e>.pt``,
runs the model in eval mode without augmentation and returns one
JSON-ready dict (see :data:`longtail.analysis.report.RUN_KEYS`). :func:`analyze_outputs` is the
pure part: features and logits in, every statistic out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from longtail.analysis.probes import (
    balanced_probe_split,
    cdt_table1,
    pre_annealing_epoch,
    pre_annealing_probe,
)
from longtail.analysis.stats import (
    class_margins,
    class_sizes,
    classifier_norms,
    decision_value_matrix,
    feature_deviation,
    tsne_embedding,
)
from longtail.errors import LongtailError
from longtail.metrics import confusion_matrix, per_class_accuracy


@dataclass
class Outputs:
    """What the model computes on one split: features [N, D], logits [N, C], labels [N] (float32/int64, CPU)."""

    features: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


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
    train_confusion = confusion_matrix(train.labels, train_pred, C)
    test_confusion = confusion_matrix(test.labels, test_pred, C)
    train_acc, test_acc = per_class_accuracy(train_confusion), per_class_accuracy(test_confusion)
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
            "train": train_confusion.tolist(),
            "test": test_confusion.tolist(),
        }
        if full
        else None,
        "margins": class_margins(train.logits, train.labels, C),
        "tsne": None,
        "epochs": None,
        # CDT Table 1: linear classifier, NCM with training-set means, NCM with test-set means (diagnostic)
        "cdt_table1": cdt_table1(train.features, train.labels, test.features, test.labels, test.logits),
        "pre_annealing_probe": None,  # LDAM Fig. 6, filled by analyze_run from a snapshot
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


def run_calibration(
    test: Outputs, heldout: Outputs | None, class_counts: list[int], many_threshold: int, few_threshold: int
) -> dict[str, Any]:
    """Reliability of the test probabilities (SPEC §10), overall and per shot group: ``{"plain": report,
    "temperature": {...} | None, "scaled": report | None}``; T is fitted on the ``heldout`` outputs (the
    run's held-out split) when there are any — never on the test set."""
    from longtail.metrics.calibration import calibration_report
    from longtail.posthoc.temperature import fit_temperature

    many, few = many_threshold, few_threshold
    out: dict[str, Any] = {
        "plain": calibration_report(test.logits, test.labels, class_counts, many, few),
        "temperature": None,
        "scaled": None,
    }
    if heldout is not None and len(heldout.labels) > 0:
        fitted = fit_temperature(heldout.logits, heldout.labels)
        out["temperature"] = {**fitted.to_dict(), "fitted_on": "heldout"}
        out["scaled"] = calibration_report(test.logits / fitted.temperature, test.labels, class_counts, many, few)
    return out


def epoch_statistics(train: Outputs, test: Outputs, weight: torch.Tensor, rounds: int, seed: int) -> dict[str, Any]:
    """The per-class statistics plotted along epochs (CDT Figure 7) for one snapshot."""
    C = int(weight.shape[0])
    return {
        "train_accuracy": per_class_accuracy(confusion_matrix(train.labels, train.logits.argmax(1), C)),
        "test_accuracy": per_class_accuracy(confusion_matrix(test.labels, test.logits.argmax(1), C)),
        "classifier_norms": classifier_norms(weight).tolist(),
        "feature_deviation": feature_deviation(
            train.features, train.labels, test.features, test.labels, num_classes=C, rounds=rounds, seed=seed
        ),
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


# ------------------------------------------------------------------------------------ run directory


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
    probe: bool = True,
) -> dict[str, Any]:
    """Reload ``run_dir`` (:meth:`Run.load_trained <longtail.engine.run.Run.load_trained>`, fp32, the
    training subset's fingerprint checked) and compute every statistic.

    Features and logits come from the engine's own evaluation path (no augmentation, eval mode,
    fp32). With ``epochs`` and ``snapshots/epoch-<e>.pt`` present, the per-class accuracy, norms and
    feature deviation are also computed at each snapshot (``run["epochs"]``). With ``probe`` and a
    snapshot at or before the first lr decay, LDAM Fig. 6's linear probe on a balanced set
    (``run["pre_annealing_probe"]``, :mod:`longtail.analysis.probes`).
    """
    from longtail.engine.run import Run, no_test_split

    say = log or (lambda _msg: None)
    trained = Run.load_trained(run_dir, device=device, precision="fp32", data_root=data_root)
    run_path, config, model = trained.run.root, trained.config, trained.model
    say(f"{run_path}: {trained.checkpoint.name}, data {config.data.name}, model {config.model.name} ({config.model.head} head)")
    if trained.data.data.test is None and not config.eval.test:
        raise LongtailError(no_test_split(run_path, f"analyse the run trained on the full set (its twin without "
                                                    f"-heldout), or train {run_path} with eval.test=true"))
    if trained.data.data.test is None or len(trained.data.data.test) == 0:
        raise LongtailError(f"data set {config.data.name!r} has no test split to analyse")

    def outputs() -> tuple[Outputs, Outputs]:
        return Outputs(*trained.outputs("train", batch_size)), Outputs(*trained.outputs("test", batch_size))

    train, test = outputs()
    say(f"  features: train {tuple(train.features.shape)}, test {tuple(test.features.shape)}")
    run = analyze_outputs(
        name or run_path.name, train, test, model.head.class_weight_matrix().detach().cpu(), trained.class_counts,
        class_names=trained.data.classes, head=config.model.head, rounds=rounds, seed=seed,
        tsne_per_class=tsne_per_class, epoch=trained.epoch, run_dir=str(run_path),
    )  # fmt: skip
    heldout = Outputs(*trained.outputs("heldout", batch_size)) if trained.data.heldout is not None else None
    run["calibration"] = run_calibration(test, heldout, trained.class_counts, config.eval.many_threshold,
                                         config.eval.few_threshold)  # fmt: skip
    snapshots = trained.run.snapshot_list() if epochs else []
    if snapshots:
        series: dict[str, list[Any]] = {"epoch": []}
        final_head = model.head.class_weight_matrix().detach().cpu().clone()
        for e, path in snapshots:
            if e == trained.epoch:  # written with the last checkpoint: the final model, no second pass
                snap_train, snap_test, snap_w = train, test, final_head
            else:
                trained.load_weights(path)
                snap_train, snap_test = outputs()
                snap_w = model.head.class_weight_matrix().detach().cpu()
            stats = epoch_statistics(snap_train, snap_test, snap_w, rounds, seed)
            series["epoch"].append(e)
            for key, value in stats.items():
                series.setdefault(key, []).append(value)
            say(f"  snapshot epoch {e}")
        run["epochs"] = series
    first_decay = pre_annealing_epoch(config)
    all_snapshots = trained.run.snapshot_list()
    if probe and first_decay is not None and any(e <= first_decay for e, _ in all_snapshots):
        run["pre_annealing_probe"] = pre_annealing_probe(
            config, all_snapshots, trained.load_weights, lambda split: trained.outputs(split, batch_size),
            balanced_probe_split(trained.data), trained.data.test, seed=seed, log=say)
    return run
