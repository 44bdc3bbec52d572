"""The diagnostics against hand-computed values and against the formulas written out directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from longtail.analysis import (
    class_margins,
    classifier_norms,
    decision_value_matrix,
    draw_subset_keys,
    example_margins,
    feature_deviation,
    row_normalise,
    tsne_embedding,
)
from longtail.errors import LongtailError
from longtail.metrics import confusion_matrix, per_class_accuracy
from longtail.models.base import Classifier
from longtail.models.heads import LinearHead

# A tiny model: identity features in R^2, four classes, class 3 has no examples.
#   w_0 = (1, 0), w_1 = (0, 1), w_2 = (1, 1), w_3 = (0, 0);  b = (0.5, 0, -0.9, -10)
#   x      y   Wf             Wf + b                 prediction   margin z_y - max_{j!=y} z_j
#   (1, 2)  0  (1, 2, 3, 0)   (1.5, 2, 2.1, -10)     2            1.5 - 2.1 = -0.6
#   (3, 0)  0  (3, 0, 3, 0)   (3.5, 0, 2.1, -10)     0            3.5 - 2.1 =  1.4
#   (0, 1)  1  (0, 1, 1, 0)   (0.5, 1, 0.1, -10)     1            1 - 0.5   =  0.5
#   (2, -1) 2  (2, -1, 1, 0)  (2.5, -1, 0.1, -10)    0            0.1 - 2.5 = -2.4
#   (-1, 3) 2  (-1, 3, 2, 0)  (-0.5, 3, 1.1, -10)    1            1.1 - 3   = -1.9
X = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [2.0, -1.0], [-1.0, 3.0]])
Y = torch.tensor([0, 0, 1, 2, 2])


def tiny_model() -> Classifier:
    head = LinearHead(2, 4)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))
        head.bias.copy_(torch.tensor([0.5, 0.0, -0.9, -10.0]))
    return Classifier(nn.Identity(), head, feature_dim=2, num_classes=4).eval()


def test_decision_value_matrix_hand_computed():
    model = tiny_model()
    feats, _ = model(X)
    W = model.head.class_weight_matrix()
    # Row c = mean over class-c examples of (w_0ᵀf, ..., w_3ᵀf); class 3 has no examples → zeros.
    expected = torch.tensor(
        [
            [2.0, 1.0, 3.0, 0.0],  # mean of (1,2,3,0) and (3,0,3,0)
            [0.0, 1.0, 1.0, 0.0],
            [0.5, 1.0, 1.5, 0.0],  # mean of (2,-1,1,0) and (-1,3,2,0)
            [0.0, 0.0, 0.0, 0.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(decision_value_matrix(feats, Y, W), expected)
    with_bias = expected + torch.tensor([0.5, 0.0, -0.9, -10.0], dtype=torch.float64)
    with_bias[3] = 0.0
    torch.testing.assert_close(decision_value_matrix(feats, Y, W, model.head.bias), with_bias)


def test_margins_accuracy_confusion_hand_computed():
    model = tiny_model()
    _, logits = model(X)
    torch.testing.assert_close(
        example_margins(logits, Y), torch.tensor([-0.6, 1.4, 0.5, -2.4, -1.9], dtype=torch.float64)
    )
    margins = class_margins(logits, Y, 4)
    assert margins[3] is None
    assert margins[:3] == pytest.approx([-0.6, 0.5, -2.4], abs=1e-6)
    preds = logits.argmax(1)
    assert preds.tolist() == [2, 0, 1, 0, 1]
    assert per_class_accuracy(confusion_matrix(Y, preds, 4)) == [0.5, 1.0, 0.0, None]
    expected = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(confusion_matrix(Y, preds, 4), expected)
    torch.testing.assert_close(
        row_normalise(expected)[:, :2],
        torch.tensor([[0.5, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 0.0]], dtype=torch.float64),
    )
    norms = classifier_norms(model.head.class_weight_matrix())
    torch.testing.assert_close(norms, torch.tensor([1.0, 1.0, math.sqrt(2.0), 0.0], dtype=torch.float64))


def direct_feature_deviation(train, train_labels, test, test_labels, C, K, rounds, seed):
    """dis(c) written out: one round at a time, numpy float64, subsets from the same keys."""
    generator = torch.Generator().manual_seed(seed)
    train = train.double().numpy()
    test = test.double().numpy()
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    out = []
    for c in range(C):
        feats_c = train[train_labels.numpy() == c]
        test_c = test[test_labels.numpy() == c]
        keys = draw_subset_keys(generator, rounds, len(feats_c)).numpy()
        test_mean = test_c.mean(axis=0)
        total = 0.0
        for r in range(rounds):
            subset = np.argsort(keys[r])[:K]
            total += np.sqrt(((feats_c[subset].mean(axis=0) - test_mean) ** 2).sum())
        out.append(total / rounds)
    return out


def make_features(seed=0, counts=(12, 7, 4), test_per_class=5, dim=6):
    g = torch.Generator().manual_seed(seed)
    train_labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    test_labels = torch.arange(len(counts)).repeat_interleave(test_per_class)
    train = torch.randn(len(train_labels), dim, generator=g) + train_labels[:, None].float()
    test = torch.randn(len(test_labels), dim, generator=g) + 0.5 * test_labels[:, None].float()
    # Shuffle so classes are interleaved, as in a real data set.
    perm = torch.randperm(len(train_labels), generator=g)
    return train[perm], train_labels[perm], test, test_labels


@pytest.mark.parametrize("K", [None, 2])
def test_feature_deviation_matches_direct_loop(K):
    train, train_labels, test, test_labels = make_features()
    got = feature_deviation(train, train_labels, test, test_labels, num_classes=3, K=K, rounds=50, seed=7)
    want = direct_feature_deviation(train, train_labels, test, test_labels, 3, K or 4, 50, 7)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    # Same seed → same value; another seed → another draw.
    again = feature_deviation(train, train_labels, test, test_labels, num_classes=3, K=K, rounds=50, seed=7)
    assert again == got
    other = feature_deviation(train, train_labels, test, test_labels, num_classes=3, K=K, rounds=50, seed=8)
    assert other[0] != got[0]


def test_feature_deviation_full_subset_is_mean_distance():
    # K = N_c for every class: every round takes all training features, dis(c) = ‖μ_train − μ_test‖.
    train, train_labels, test, test_labels = make_features(counts=(5, 5, 5))
    got = feature_deviation(train, train_labels, test, test_labels, rounds=3, seed=0)
    tr = torch.nn.functional.normalize(train.double(), dim=1)
    te = torch.nn.functional.normalize(test.double(), dim=1)
    for c in range(3):
        want = torch.linalg.vector_norm(tr[train_labels == c].mean(0) - te[test_labels == c].mean(0))
        assert got[c] == pytest.approx(float(want), rel=1e-12)


def test_feature_deviation_subsets_are_uniform():
    # Each training example of a class of size n is in a K-subset with probability K/n.
    keys = draw_subset_keys(torch.Generator().manual_seed(0), 4000, 10)
    chosen = keys.topk(3, dim=1, largest=False).indices
    freq = torch.bincount(chosen.reshape(-1), minlength=10).double() / 4000
    torch.testing.assert_close(freq, torch.full((10,), 0.3, dtype=torch.float64), atol=0.03, rtol=0)


def test_feature_deviation_missing_classes_and_bad_k():
    train, train_labels, test, test_labels = make_features()
    keep = test_labels != 1
    got = feature_deviation(train, train_labels, test[keep], test_labels[keep], num_classes=4, rounds=20, seed=1)
    assert got[1] is None and got[3] is None
    full = feature_deviation(train, train_labels, test, test_labels, num_classes=4, rounds=20, seed=1)
    # Class 2's subsets do not depend on whether class 1 has test data.
    assert got[2] == full[2] and got[0] == full[0]
    with pytest.raises(LongtailError, match="K=5"):
        feature_deviation(train, train_labels, test, test_labels, K=5, rounds=2)


def test_tsne_embedding_samples_per_class_and_is_seeded():
    train, train_labels, test, test_labels = make_features(counts=(12, 9, 8))
    a = tsne_embedding(train, train_labels, test, test_labels, per_class=6, seed=3)
    assert a.coords.shape == (18 + 15, 2) and np.isfinite(a.coords).all()
    assert a.is_test.sum() == 15  # 5 test examples per class exist
    assert np.bincount(a.labels[~a.is_test]).tolist() == [6, 6, 6]
    b = tsne_embedding(train, train_labels, test, test_labels, per_class=6, seed=3)
    np.testing.assert_array_equal(a.coords, b.coords)


def test_chunked_computation_gives_the_same_numbers(monkeypatch):
    import longtail.analysis.stats as stats

    train, train_labels, test, test_labels = make_features()
    weight = torch.randn(3, train.shape[1], generator=torch.Generator().manual_seed(5))
    logits = train @ weight.t()
    whole = (
        decision_value_matrix(train, train_labels, weight),
        example_margins(logits, train_labels),
        feature_deviation(train, train_labels, test, test_labels, rounds=10, seed=3),
    )
    monkeypatch.setattr(stats, "_CHUNK", 2)
    torch.testing.assert_close(decision_value_matrix(train, train_labels, weight), whole[0])
    torch.testing.assert_close(example_margins(logits, train_labels), whole[1])
    assert feature_deviation(train, train_labels, test, test_labels, rounds=10, seed=3) == pytest.approx(whole[2])
