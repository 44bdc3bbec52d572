"""Classifiers fitted on a trained network's frozen features: the papers' feature-quality diagnostics.

* **CDT Table 1** (Ye et al., §3.4): test accuracy of the same features under three classifiers —
  the learned linear classifier (argmax of the logits), the nearest class mean (NCM, ℓ2-normalised
  features, CDT footnote 4) with the **training-set** class means as centres, and NCM with the
  **test-set** class means. The last uses the test labels to place its centres: it is a diagnostic
  (an upper bound that removes the deviation of the means), never a model, and is labelled so
  everywhere it appears. NCM is the registered ``ncm`` post-hoc rule (euclidean distance to the
  means of the normalised features), fitted once on each set.
* **LDAM Figure 6** (Cao et al., §3.3 / §4.4, appendix C.3): the features of a run taken *before the
  learning rate is annealed* (the snapshot written after the epochs preceding the first multistep
  decay, ``optim.milestones[0]``), frozen; a linear softmax classifier trained on them over a
  balanced set (the data set's whole original training split), its test accuracy reported. ERM,
  RW and RS runs compared this way show which objective learned the better features before DRW's
  second stage. The classifier is the ``crt`` rule with plain instance sampling, trained from a
  random initialisation (:data:`PROBE_RECIPE`).

Accuracies are fractions in [0, 1]: ``top1`` over the test examples and ``balanced_accuracy`` (mean
per-class recall over the classes present).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from longtail.errors import LongtailError

TABLE1_ROWS = ("linear", "ncm-train-means", "ncm-test-means")
TABLE1_LABELS = {
    "linear": "linear classifier (the model)",
    "ncm-train-means": "NCM, training-set class means",
    "ncm-test-means": "NCM, test-set class means (diagnostic: centres from the test labels, not a model)",
}
# The linear probe of LDAM Fig. 6: cRT's loop with plain permutations of the balanced set.
PROBE_RECIPE: dict[str, Any] = {"epochs": 30, "lr": 0.1, "batch_size": 128, "momentum": 0.9,
                                "weight_decay": 5e-4, "sampler": "instance", "init": "random"}
DIAGNOSTICS = ("ncm-test-means", "pre-annealing-probe")


def accuracies(predictions: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``top1`` (fraction correct) and ``balanced_accuracy`` (mean recall over present classes)."""
    from longtail.metrics import balanced_accuracy

    predictions, labels = predictions.long().cpu(), labels.long().cpu()
    return {"top1": float((predictions == labels).double().mean()) if labels.numel() else 0.0,
            "balanced_accuracy": balanced_accuracy(labels, predictions)}


def _ncm_predictions(fit_features: torch.Tensor, fit_labels: torch.Tensor, features: torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    from longtail.registry import POSTHOC

    counts = torch.bincount(fit_labels.long(), minlength=num_classes).tolist()
    rule = POSTHOC.create("ncm").fit(fit_features, fit_labels, None, counts)
    return rule.predict(features)


def cdt_table1(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
               test_labels: torch.Tensor, test_logits: torch.Tensor) -> dict[str, Any]:
    """The three rows of CDT Table 1 for one run: ``{row: {top1, balanced_accuracy, label, diagnostic}}``."""
    num_classes = int(test_logits.shape[1])
    predictions = {
        "linear": test_logits.argmax(1),
        "ncm-train-means": _ncm_predictions(train_features, train_labels, test_features, num_classes),
        "ncm-test-means": _ncm_predictions(test_features, test_labels, test_features, num_classes),
    }
    return {row: {**accuracies(predictions[row], test_labels), "label": TABLE1_LABELS[row],
                  "diagnostic": row == "ncm-test-means"} for row in TABLE1_ROWS}


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, num_classes: int, seed: int = 0,
                 **recipe: Any) -> dict[str, Any]:
    """A linear softmax classifier trained on frozen ``train_features`` (:data:`PROBE_RECIPE`, overridable),
    scored on ``test_features``: ``{top1, balanced_accuracy, recipe}``."""
    from longtail.registry import POSTHOC

    params = {**PROBE_RECIPE, **recipe, "seed": seed}
    counts = torch.bincount(train_labels.long(), minlength=num_classes).tolist()
    rule = POSTHOC.create("crt", **params).fit(train_features, train_labels, None, counts)
    return {**accuracies(rule.predict(test_features), test_labels), "recipe": params}


def pre_annealing_epoch(config: Any) -> int | None:
    """The epochs completed before the first lr decay (``optim.milestones[0]`` of a multistep schedule)."""
    optim = config.optim
    if optim.schedule != "multistep" or not optim.milestones:
        return None
    return int(optim.milestones[0])


def pre_annealing_snapshot(config: Any, snapshots: Sequence[tuple[int, Path]]) -> tuple[int, Path]:
    """The last snapshot written at or before :func:`pre_annealing_epoch` (``(epoch, path)``)."""
    before = pre_annealing_epoch(config)
    if before is None:
        raise LongtailError(
            f"the run's lr schedule is {config.optim.schedule!r} without a decay step; the pre-annealing "
            "probe (LDAM Fig. 6) needs optim.schedule=multistep with milestones"
        )
    usable = [(e, p) for e, p in snapshots if e <= before]
    if not usable:
        raise LongtailError(
            f"the run has no snapshot at or before epoch {before} (its first lr decay); retrain with "
            f"analysis.track_every dividing {before} (e.g. analysis.track_every={before})"
        )
    return usable[-1]


def balanced_probe_split(data: Any) -> Any:
    """The balanced set the probe trains on: the data set's whole original training split, as ``EvalData``."""
    import dataclasses

    from longtail.data.datasets import load_split

    cfg = data.config.data
    lists = {key: getattr(cfg, key) for key in ("train_list", "test_list") if getattr(cfg, key, None)}
    split = load_split(cfg.name, cfg.root, train=True, **lists)
    counts = split.class_counts()
    if min(counts) != max(counts):
        raise LongtailError(
            f"the original training split of {cfg.name!r} is not balanced ({min(counts)}..{max(counts)} per "
            "class); the pre-annealing probe trains on a balanced set"
        )
    if data.info.kind == "text":
        raise LongtailError("the pre-annealing probe is defined for image data sets, not text")
    # the test split's evaluation settings (normalisation, device, workers, transform), other images
    return dataclasses.replace(data.test, split=split, ids=None)


def pre_annealing_probe(config: Any, snapshots: Sequence[tuple[int, Path]], load_weights: Callable[[Path], None],
                        features_of: Callable[[Any], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                        probe_split: Any, test_split: Any, seed: int = 0,
                        log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """LDAM Fig. 6 for one run: load the pre-annealing snapshot, extract frozen features of ``probe_split``
    (balanced) and ``test_split``, train :func:`linear_probe`, return its accuracy with the epoch used."""
    epoch, path = pre_annealing_snapshot(config, snapshots)
    load_weights(path)
    train_f, _, train_y = features_of(probe_split)
    test_f, test_logits, test_y = features_of(test_split)
    if log is not None:
        log(f"  pre-annealing probe: snapshot epoch {epoch}, {len(train_y)} balanced training images")
    result = linear_probe(train_f, train_y, test_f, test_y, int(test_logits.shape[1]), seed=seed)
    return {"epoch": epoch, "first_decay": pre_annealing_epoch(config), "probe_examples": int(len(train_y)),
            "model_at_snapshot": accuracies(test_logits.argmax(1), test_y), **result}


def run_diagnostic(run_dir: str | Path, name: str, batch_size: int | None = None) -> dict[str, Any]:
    """One diagnostic of a finished run, as a reproduce row reads it: ``{top1, balanced_accuracy, ...}``.

    ``ncm-test-means``: CDT Table 1's NCM with test-set class means (a diagnostic, never a model);
    ``pre-annealing-probe``: LDAM Fig. 6's linear probe (:func:`pre_annealing_probe`).
    """
    from longtail.engine.run import Run

    if name not in DIAGNOSTICS:
        raise LongtailError(f"unknown diagnostic {name!r}; choose one of: {', '.join(DIAGNOSTICS)}")
    trained = Run.load_trained(run_dir, precision="fp32")
    if name == "ncm-test-means":
        features, logits, labels = trained.outputs("test", batch_size)
        predictions = _ncm_predictions(features, labels, features, int(logits.shape[1]))
        return {**accuracies(predictions, labels), "label": TABLE1_LABELS[name], "diagnostic": True}
    return pre_annealing_probe(trained.config, trained.run.snapshot_list(), trained.load_weights,
                               lambda split: trained.outputs(split, batch_size), balanced_probe_split(trained.data),
                               trained.data.test)
