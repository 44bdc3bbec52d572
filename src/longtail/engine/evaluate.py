"""Evaluation and feature extraction, exact under sharding.

Each rank evaluates the positions ``rank, rank + W, ...`` of the split (disjoint, no padding) and
the integer confusion-matrix and top-5 counts are summed over ranks, so the metrics are those of the
whole split exactly (no duplicated examples, unlike a padded distributed sampler). Calibration (ECE,
NLL, Brier, reliability bins; :mod:`longtail.metrics.calibration`) is summed per class the same way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from longtail.config import EvalConfig
from longtail.engine.accel import Accel, autocast, prepare_input
from longtail.engine.distributed import DistInfo, shard_indices
from longtail.metrics import EvalAccumulator, shot_groups
from longtail.metrics.calibration import CalibrationAccumulator


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Any,
    accel: Accel,
    dist: DistInfo,
    class_counts: list[int],
    config: EvalConfig,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Top-1, top-5, balanced accuracy/error, per-class accuracy, shot groups and ``calibration`` (of
    softmax(logits / ``temperature``)) on ``split``."""
    model.eval()
    device = accel.torch_device
    accumulator = EvalAccumulator(len(class_counts), device)
    calibration = CalibrationAccumulator(len(class_counts), device)
    indices = shard_indices(len(split), dist)
    batch = max(config.batch_size // dist.world_size, 1)
    for x, y in split.batches(indices, batch):
        x = prepare_input(x, accel)
        with autocast(accel):
            _, logits = model(x)
        accumulator.update(logits.float(), y.to(device))
        calibration.update(logits.float() / temperature, y.to(device))
    accumulator.all_reduce()
    calibration.all_reduce()
    report = accumulator.report(class_counts, config.many_threshold, config.few_threshold)
    report["calibration"] = calibration.report(shot_groups(class_counts, config.many_threshold, config.few_threshold))
    return report


def temperature_scaling(
    model: nn.Module,
    data: Any,
    accel: Accel,
    dist: DistInfo,
    class_counts: list[int],
    config: EvalConfig,
) -> dict[str, Any] | None:
    """``results.json``'s ``temperature_scaling``: T fitted on the run's held-out split (None without one,
    SPEC §10) and the test set's calibration at that T. The test split is read only to report."""
    from longtail.posthoc.temperature import fit_temperature

    if getattr(data, "heldout", None) is None or len(data.heldout) == 0:
        return None
    _, held_logits, held_labels = extract(model, data.heldout, accel, config.batch_size)
    fit = fit_temperature(held_logits, held_labels)
    report = evaluate(model, data.test, accel, dist, class_counts, config, temperature=fit.temperature)
    return {"temperature": fit.to_dict(), "fitted_on": "heldout", "calibration": report["calibration"]}


@torch.no_grad()
def extract(model: nn.Module, split: Any, accel: Accel, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(features [N, D], logits [N, C], labels [N])`` of a whole split, float32 on the CPU."""
    model.eval()
    features, logits, labels = [], [], []
    indices = torch.arange(len(split), dtype=torch.int64)
    for x, y in split.batches(indices, batch_size):
        x = prepare_input(x, accel)
        with autocast(accel):
            f, z = model(x)
        features.append(f.float().cpu())
        logits.append(z.float().cpu())
        labels.append(y.cpu())
    return torch.cat(features), torch.cat(logits), torch.cat(labels)
