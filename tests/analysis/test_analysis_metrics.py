"""Analysis reports per-class accuracy and confusion from the one metrics module (same numbers as before)."""

from __future__ import annotations

import pytest
from analysis_synthetic import synthetic_outputs

from longtail.analysis.collect import analyze_outputs, epoch_statistics
from longtail.metrics import confusion_matrix


def _loop_per_class(labels, predictions, classes):
    out = []
    for c in range(classes):
        rows = [p for y, p in zip(labels.tolist(), predictions.tolist()) if y == c]
        out.append(None if not rows else sum(p == c for p in rows) / len(rows))
    return out


def test_analysis_reports_the_module_numbers():
    train, test, weight = synthetic_outputs(3)
    C = weight.shape[0]
    run = analyze_outputs("r", train, test, weight, [60, 30, 15, 8, 4], rounds=5)
    for split, outputs in (("train", train), ("test", test)):
        predictions = outputs.logits.argmax(1)
        per_class = _loop_per_class(outputs.labels, predictions, C)
        assert run[f"{split}_accuracy"] == pytest.approx(per_class)
        assert run["summary"][f"{split}_balanced_accuracy"] == pytest.approx(sum(per_class) / C)
        assert run["confusion"][split] == confusion_matrix(outputs.labels, predictions, C).tolist()
        assert epoch_statistics(train, test, weight, rounds=2, seed=0)[f"{split}_accuracy"] == pytest.approx(per_class)
