"""The one metrics module gives post-hoc tuning and the engine the numbers they computed before.

The references below are the formulas the three former copies implemented, written out as loops.
"""

from __future__ import annotations

import pytest
import torch

from longtail.metrics import balanced_accuracy, confusion_matrix, per_class_accuracy


def _random(seed: int, n: int = 200, classes: int = 7):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    labels[labels == 3] = 2  # class 3 has no examples
    predictions = torch.where(torch.rand(n, generator=g) < 0.6, labels, torch.randint(0, classes, (n,), generator=g))
    return labels, predictions, classes


def _loop_per_class(labels, predictions, classes):
    out = []
    for c in range(classes):
        rows = [p for y, p in zip(labels.tolist(), predictions.tolist()) if y == c]
        out.append(None if not rows else sum(p == c for p in rows) / len(rows))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_per_class_and_balanced_match_loops(seed):
    labels, predictions, classes = _random(seed)
    confusion = confusion_matrix(labels, predictions, classes)
    for c in range(classes):
        for d in range(classes):
            assert int(confusion[c, d]) == sum(1 for y, p in zip(labels.tolist(), predictions.tolist()) if (y, p) == (c, d))
    expected = _loop_per_class(labels, predictions, classes)
    assert per_class_accuracy(confusion) == pytest.approx(expected)
    assert expected[3] is None
    measured = [a for a in expected if a is not None]
    assert balanced_accuracy(labels, predictions) == pytest.approx(sum(measured) / len(measured), abs=1e-15)
    assert balanced_accuracy(labels, predictions, classes) == balanced_accuracy(labels, predictions)


def test_posthoc_tuning_scores_with_the_module():
    from longtail.posthoc import tune

    g = torch.Generator().manual_seed(0)
    features = torch.randn(60, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(3).repeat(20)
    head = torch.nn.Linear(4, 3).double()
    best, table = tune("logit-adjust", [0.0, 1.0], features, labels, head, [30, 20, 10], features, labels)
    for row in table:
        scores = head(features).detach() - row["param"] * torch.log(torch.tensor([30, 20, 10.0], dtype=torch.float64) / 60)
        per_class = _loop_per_class(labels, scores.argmax(1), 3)
        assert row["balanced_accuracy"] == pytest.approx(sum(per_class) / 3)
    assert best in (0.0, 1.0)
