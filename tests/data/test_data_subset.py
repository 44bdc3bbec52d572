import hashlib
import warnings

import numpy as np
import pytest
import torch

from longtail.data.profiles import longtail_counts
from longtail.data.subset import (
    apply_test_distribution,
    class_rank_order,
    distribution_counts,
    fingerprint,
    heldout_split,
    longtail_indices,
    per_class_counts,
)
from longtail.errors import ConfigError, DataError


def balanced_labels(num_classes=10, per_class=60, seed=1):
    labels = np.repeat(np.arange(num_classes), per_class)
    np.random.default_rng(seed).shuffle(labels)
    return labels


def test_subset_has_the_profile_counts():
    labels = balanced_labels()
    counts = longtail_counts(10, 60, 10)
    idx = longtail_indices(labels, counts, seed=0)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx], minlength=10).tolist() == counts


def test_subset_is_reproducible_and_depends_on_seed():
    labels = torch.as_tensor(balanced_labels())
    counts = longtail_counts(10, 60, 10)
    a = longtail_indices(labels, counts, seed=3)
    assert np.array_equal(a, longtail_indices(labels, counts, seed=3))
    assert not np.array_equal(a, longtail_indices(labels, counts, seed=4))


def test_subset_is_pinned_across_machines_and_versions():
    # Golden value: the kept indices depend only on PCG64 doubles and a stable argsort.
    idx = longtail_indices(np.repeat(np.arange(3), 5), [5, 3, 1], seed=0)
    assert idx.tolist() == GOLDEN_SUBSET
    assert fingerprint(idx) == GOLDEN_FINGERPRINT


def test_subset_uses_seeded_shuffle_per_class():
    # Written out: class c keeps the n_c members with the smallest keys of PCG64(SeedSequence([seed, 0, c])).
    labels = balanced_labels(4, 8)
    counts = [8, 5, 3, 1]
    expected = []
    for c, n in enumerate(counts):
        members = np.flatnonzero(labels == c)
        keys = np.random.Generator(np.random.PCG64(np.random.SeedSequence([7, 0, c]))).random(members.size)
        expected.extend(members[np.argsort(keys, kind="stable")][:n])
    assert longtail_indices(labels, counts, seed=7).tolist() == sorted(expected)


def test_class_orders():
    assert class_rank_order(4, "natural") == [0, 1, 2, 3]
    assert class_rank_order(4, "reversed") == [3, 2, 1, 0]
    perm = class_rank_order(10, "permuted", seed=5)
    assert sorted(perm) == list(range(10)) and perm == class_rank_order(10, "permuted", seed=5)
    assert perm != class_rank_order(10, "permuted", seed=6)
    counts = [100, 50, 10]
    assert per_class_counts(counts, "reversed") == [10, 50, 100]
    labels = balanced_labels(3, 100)
    idx = longtail_indices(labels, counts, seed=0, class_order="reversed")
    assert np.bincount(labels[idx]).tolist() == [10, 50, 100]
    with pytest.raises(ConfigError, match="unknown class order"):
        class_rank_order(3, "random")


def test_subset_asks_more_than_available():
    with pytest.raises(DataError, match="fewer than the 61"):
        longtail_indices(balanced_labels(), [61] + [1] * 9, seed=0)


def test_fingerprint_is_sha256_of_int64_le():
    idx = np.array([3, 1, 2**40], dtype=np.int64)
    expected = hashlib.sha256(b"".join(int(i).to_bytes(8, "little", signed=True) for i in idx)).hexdigest()[
        :16
    ]
    assert fingerprint(idx) == expected
    assert fingerprint([3, 1, 2**40]) == expected
    assert fingerprint([1, 3]) != fingerprint([3, 1])


def test_heldout_split_is_balanced_and_disjoint():
    labels = np.repeat(np.arange(5), [20, 10, 6, 4, 3])
    with pytest.warns(UserWarning, match="left out of it: 4$"):
        train, held = heldout_split(labels, 3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        heldout_split(np.repeat(np.arange(3), 5), 3, seed=0)  # every class has more than 3: no warning
    assert np.intersect1d(train, held).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(labels.size))
    assert np.bincount(labels[held], minlength=5).tolist() == [3, 3, 3, 3, 0]
    with pytest.warns(UserWarning):
        assert np.array_equal(train, heldout_split(labels, 3, seed=0)[0])


def test_heldout_warns_naming_the_left_out_classes():
    labels = np.repeat(np.arange(4), [10, 2, 10, 3])
    with pytest.warns(UserWarning, match=r"left out of it: 1, 3"):
        _, held = heldout_split(labels, 3, seed=0)
    assert sorted(set(labels[held].tolist())) == [0, 2]


def test_heldout_errors():
    labels = np.repeat(np.arange(3), [4, 3, 2])
    with pytest.raises(DataError, match="largest class has 4"):
        heldout_split(labels, 4, seed=0)
    with pytest.raises(ConfigError, match=">= 0"):
        heldout_split(labels, -1, seed=0)
    train, held = heldout_split(labels, 0, seed=0)
    assert held.size == 0 and train.size == labels.size


def test_test_distribution_counts_are_the_largest_feasible():
    assert distribution_counts([100, 100, 100], [1.0, 0.5, 0.1]) == [100, 50, 10]
    assert distribution_counts([100, 100, 100], [0.1, 0.5, 1.0]) == [10, 50, 100]
    # class 1 binds: 40 / 0.5 = 80 < 100
    assert distribution_counts([100, 40, 100], [1.0, 0.5, 0.25]) == [80, 40, 20]
    assert distribution_counts([10, 10], [0.3, 0.0]) == [10, 0]
    with pytest.raises(ConfigError, match="all zero"):
        distribution_counts([10, 10], [0, 0])
    with pytest.raises(ConfigError, match="2 proportions"):
        distribution_counts([10, 10, 10], [1, 1])


def test_apply_test_distribution():
    labels = balanced_labels(3, 20)
    idx = apply_test_distribution(labels, [1.0, 0.5, 0.25], seed=0)
    assert np.bincount(labels[idx]).tolist() == [20, 10, 5]
    assert np.array_equal(idx, apply_test_distribution(labels, [1.0, 0.5, 0.25], seed=0))


GOLDEN_SUBSET = [0, 1, 2, 3, 4, 6, 8, 9, 11]
GOLDEN_FINGERPRINT = "a6e3561473d2d581"


def test_heldout_classes_named_and_refused_below_two():
    """Issue 13 item 2: CIFAR-100 with K = 3 held out — step ρ=200 leaves out all 50 minority classes (2
    images), exp ρ=200 leaves out 9; fewer than two classes to tune on is a one-line ConfigError."""
    from longtail.data.profiles import longtail_counts
    from longtail.data.subset import format_classes, heldout_classes, require_tunable

    step = heldout_classes(longtail_counts(100, 500, 200, "step"), 3)
    assert len(step["classes_tuned_on"]) == 50 and format_classes(step["classes_left_out"]) == "50-99"
    assert {e["count"] for e in step["classes_left_out"]} == {2}
    exp = heldout_classes(longtail_counts(100, 500, 200, "exp"), 3, [f"c{i}" for i in range(100)])
    assert [e["class"] for e in exp["classes_left_out"]] == list(range(91, 100))
    assert exp["classes_left_out"][0] == {"class": 91, "name": "c91", "count": 3}
    require_tunable(exp)
    assert format_classes([{"class": c} for c in (9, 5, 6, 7, 2)]) == "2, 5-7, 9"
    one = heldout_classes([10, 3, 2, 0], 3)
    assert [e["class"] for e in one["classes_left_out"]] == [1, 2]  # the empty class is neither
    with pytest.raises(ConfigError, match=r"leaves 1 class\(es\) to tune on \(need at least 2\).*1 \(1, 3\), 2 \(2, 2\)"):
        require_tunable(one)
