"""``data.subset_rule: reference``: the LDAM-DRW reference code's IMBALANCECIFAR draw, index for index.

The expected indices come from an independent re-implementation of the reference code
(``imbalance_cifar.py``: ``np.random.seed(rand_number)``, ``get_img_num_per_cls``,
``gen_imbalanced_data``) written here with the legacy GLOBAL NumPy stream, as the reference does;
the global state is saved and restored around it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from longtail.data.build import build_longtail
from longtail.data.subset import (
    per_class_counts,
    reference_counts,
    reference_longtail_indices,
)
from longtail.errors import ConfigError


def reference_draw(targets: np.ndarray, cls_num: int, imb_type: str, imb_factor: float,
                   rand_number: int = 0, class_counts_by_label: list[int] | None = None) -> np.ndarray:
    """The reference code's draw, returning the indices of the kept images in the order it stacks them."""
    saved = np.random.get_state()
    try:
        np.random.seed(rand_number)
        img_max = len(targets) / cls_num
        img_num_per_cls = []
        if imb_type == "exp":
            for cls_idx in range(cls_num):
                num = img_max * (imb_factor ** (cls_idx / (cls_num - 1.0)))
                img_num_per_cls.append(int(num))
        else:
            for _ in range(cls_num // 2):
                img_num_per_cls.append(int(img_max))
            for _ in range(cls_num // 2):
                img_num_per_cls.append(int(img_max * imb_factor))
        if class_counts_by_label is not None:
            img_num_per_cls = class_counts_by_label
        targets_np = np.array(targets, dtype=np.int64)
        classes = np.unique(targets_np)
        selected = []
        for the_class, the_img_num in zip(classes, img_num_per_cls):
            idx = np.where(targets_np == the_class)[0]
            np.random.shuffle(idx)
            selected.append(idx[:the_img_num])
        return np.concatenate(selected)
    finally:
        np.random.set_state(saved)


def file_order_labels(num_classes: int, per_class: int, seed: int) -> np.ndarray:
    """A CIFAR-like training label layout: per_class of each class in a shuffled file order."""
    labels = np.repeat(np.arange(num_classes), per_class)
    np.random.default_rng(seed).shuffle(labels)
    return labels


@pytest.mark.parametrize("num_classes,per_class", [(10, 5000), (100, 500)])
@pytest.mark.parametrize("profile", ["exp", "step"])
@pytest.mark.parametrize("ratio", [10, 100, 200])
def test_reference_indices_equal_the_reference_code(num_classes: int, per_class: int, profile: str, ratio: int) -> None:
    labels = file_order_labels(num_classes, per_class, seed=num_classes)
    before = np.random.get_state()[1].copy()
    counts = reference_counts(num_classes, per_class, ratio, profile)
    got = reference_longtail_indices(labels, counts, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)  # global state untouched
    expected = reference_draw(labels, num_classes, profile, 1.0 / ratio)
    assert got.dtype == np.int64
    assert np.array_equal(got, expected)
    # and the counts are the published ones (exact integer formula of the seeded rule agrees)
    from longtail.data.profiles import longtail_counts

    assert counts == longtail_counts(num_classes, per_class, ratio, profile)


def test_reference_seed_is_rand_number() -> None:
    labels = file_order_labels(10, 500, seed=1)
    counts = reference_counts(10, 500, 100, "exp")
    assert np.array_equal(reference_longtail_indices(labels, counts, seed=3),
                          reference_draw(labels, 10, "exp", 0.01, rand_number=3))
    assert not np.array_equal(reference_longtail_indices(labels, counts, seed=3),
                              reference_longtail_indices(labels, counts, seed=0))


@pytest.mark.parametrize("order", ["reversed", "permuted"])
def test_class_order_only_moves_the_counts(order: str) -> None:
    labels = file_order_labels(10, 500, seed=2)
    counts = reference_counts(10, 500, 100, "exp")
    by_label = per_class_counts(counts, order, seed=0)
    got = reference_longtail_indices(labels, counts, seed=0, class_order=order)
    assert np.array_equal(got, reference_draw(labels, 10, "exp", 0.01, class_counts_by_label=by_label))
    assert np.bincount(labels[got], minlength=10).tolist() == by_label


def test_build_longtail_reference_rule_on_cifar_files(tmp_path, writers) -> None:
    root = writers.cifar10(tmp_path, per_class=40, test_per_class=2)
    data = build_longtail("cifar10", root, "exp", 10, subset_rule="reference", with_test=False)
    from longtail.data.datasets import load_split

    full = load_split("cifar10", root, train=True)
    expected = reference_draw(full.labels.numpy(), 10, "exp", 0.1)
    assert np.array_equal(data.train_indices, expected)
    from longtail.data.subset import fingerprint

    assert data.fingerprint == fingerprint(expected)
    seeded = build_longtail("cifar10", root, "exp", 10, with_test=False)
    assert seeded.class_counts == data.class_counts and seeded.fingerprint != data.fingerprint
    # the held-out split is taken from the reference subset
    held = build_longtail("cifar10", root, "exp", 10, subset_rule="reference", heldout_per_class=2, with_test=False)
    assert set(held.train_indices) | set(held.heldout_indices) == set(expected.tolist())


def test_reference_rule_refusals(tmp_path, writers) -> None:
    root = writers.cifar10(tmp_path, per_class=40)
    with pytest.raises(ConfigError, match="minority fraction"):
        build_longtail("cifar10", root, "step", 10, minority_fraction=0.3, subset_rule="reference")
    with pytest.raises(ConfigError, match="profile exp or step"):
        build_longtail("cifar10", root, "none", subset_rule="reference")
    with pytest.raises(ConfigError, match="unknown subset rule"):
        build_longtail("cifar10", root, "exp", 10, subset_rule="legacy")


def test_longtail_data_subset_rule_flag(tmp_path, writers) -> None:
    root = writers.cifar10(tmp_path, per_class=40)
    out = subprocess.run([sys.executable, "-m", "longtail", "data", "cifar10", "--root", str(root),
                          "--imbalance-ratio", "10", "--subset-rule", "reference", "--json"],
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    assert summary["subset_rule"] == "reference"
    data = build_longtail("cifar10", root, "exp", 10, subset_rule="reference", with_test=False)
    assert summary["fingerprint"] == data.fingerprint
