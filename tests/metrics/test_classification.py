import pytest
import torch

from longtail.metrics import (
    EvalAccumulator,
    classification_report,
    confusion_matrix,
    group_accuracies,
    per_class_accuracy,
    shot_groups,
    topk_correct,
)


def test_confusion_matrix_by_hand():
    targets = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(confusion_matrix(targets, preds, 3), expected)
    assert per_class_accuracy(expected) == [0.5, 1.0, pytest.approx(2 / 3)]


def test_topk_by_hand():
    logits = torch.tensor(
        [
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.0],  # target 4 is 5th largest → in top-5
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.0],  # target 5 is 6th → not
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # target 6 is 1st
        ]
    )
    targets = torch.tensor([4, 5, 6])
    assert int(topk_correct(logits, targets, 5)) == 2
    assert int(topk_correct(logits, targets, 1)) == 1
    # fewer than 5 classes: top-5 counts every example
    assert int(topk_correct(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), 5)) == 4


def test_shot_groups_thresholds_and_boundaries():
    counts = [500, 101, 100, 20, 19, 5]
    # many: n > 100, few: n < 20, medium: 20..100 inclusive (SPEC §6)
    assert shot_groups(counts) == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert shot_groups(counts, many_threshold=10, few_threshold=6) == {"many": [0, 1, 2, 3, 4], "medium": [], "few": [5]}


def test_empty_group_is_none_not_nan():
    groups = group_accuracies([0.5, 1.0], {"many": [], "medium": [0, 1], "few": []})
    assert groups["many"] == {"accuracy": None, "count": 0, "classes": []}
    assert groups["medium"]["accuracy"] == pytest.approx(0.75) and groups["medium"]["count"] == 2


def test_report_by_hand():
    # 3 classes; class 2 has no test examples → per-class None, left out of the means
    confusion = torch.tensor([[3, 1, 0], [2, 2, 0], [0, 0, 0]])
    report = classification_report(confusion, top5_correct=8, class_counts=[200, 50, 4])
    assert report["top1"] == pytest.approx(5 / 8)
    assert report["top5"] == pytest.approx(1.0)
    assert report["per_class"] == [0.75, 0.5, None]
    assert report["balanced_accuracy"] == pytest.approx((0.75 + 0.5) / 2)
    assert report["balanced_error"] == pytest.approx(1 - 0.625)
    assert report["groups"]["many"]["accuracy"] == 0.75
    assert report["groups"]["medium"]["accuracy"] == 0.5
    assert report["groups"]["few"] == {"accuracy": None, "count": 1, "classes": [2]}
    assert report["num_test"] == 8


def test_accumulator_batches_equal_one_pass():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g)
    targets = torch.randint(0, 7, (50,), generator=g)
    acc = EvalAccumulator(7)
    for start in range(0, 50, 13):
        acc.update(logits[start : start + 13], targets[start : start + 13])
    report = acc.report([100] * 7)
    one = classification_report(confusion_matrix(targets, logits.argmax(1), 7), int(topk_correct(logits, targets, 5)), [100] * 7)
    assert report == one
    assert report["top1"] == pytest.approx(float((logits.argmax(1) == targets).double().mean()))
