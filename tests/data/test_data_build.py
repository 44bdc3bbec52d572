import numpy as np
import pytest
import torch

from longtail.data.build import build_longtail
from longtail.data.subset import fingerprint
from longtail.errors import ConfigError, DataError


def reference_exp(num_classes, n_max, rho):
    return [int(n_max * (1.0 / rho) ** (i / (num_classes - 1.0))) for i in range(num_classes)]


def test_build_exp_cifar10(cifar10_root):
    data = build_longtail("cifar10", cifar10_root, imbalance_ratio=4, seed=1)
    assert data.class_counts == reference_exp(10, 4, 4) == [4, 3, 2, 2, 2, 1, 1, 1, 1, 1]
    assert len(data.train) == sum(data.class_counts) and data.heldout is None and len(data.test) == 20
    assert data.num_classes == 10 and data.info.name == "cifar10"
    assert data.fingerprint == fingerprint(data.train_indices)
    # the training split is the original training examples at train_indices
    from longtail.data.datasets import load_split

    full = load_split("cifar10", cifar10_root, train=True)
    assert torch.equal(data.train.images, full.images[torch.as_tensor(data.train_indices)])
    assert torch.equal(data.train.labels, full.labels[torch.as_tensor(data.train_indices)])
    again = build_longtail("cifar10", cifar10_root, imbalance_ratio=4, seed=1)
    assert again.fingerprint == data.fingerprint


def test_build_reversed_step_with_heldout(cifar10_root):
    data = build_longtail(
        "cifar10",
        cifar10_root,
        profile="step",
        imbalance_ratio=2,
        class_order="reversed",
        heldout_per_class=1,
        seed=0,
    )
    # step: [4]*5 + [2]*5, reversed → [2]*5 + [4]*5; one per class held out
    assert data.heldout.class_counts() == [1] * 10
    assert data.class_counts == [1] * 5 + [3] * 5
    assert np.intersect1d(data.train_indices, data.heldout_indices).size == 0


def test_build_heldout_too_large(cifar10_root):
    with pytest.raises(
        DataError, match="held-out split asks for 4 examples per class but the largest class has 4"
    ):
        build_longtail("cifar10", cifar10_root, imbalance_ratio=4, heldout_per_class=4)


def test_build_test_distribution(cifar10_root):
    data = build_longtail("cifar10", cifar10_root, imbalance_ratio=4, test_distribution=[2, 1] + [0] * 8)
    assert data.test.class_counts() == [2, 1] + [0] * 8
    data = build_longtail("cifar10", cifar10_root, imbalance_ratio=4, test_distribution="train")
    # the binding class is class 0 (2 test images for 4 training ones): n_c = floor(2·n_c_train/4)
    assert data.test.class_counts() == [c * 2 // 4 for c in reference_exp(10, 4, 4)]
    with pytest.raises(ConfigError, match="unknown test distribution"):
        build_longtail("cifar10", cifar10_root, imbalance_ratio=4, test_distribution="skewed")


def test_build_profile_none_keeps_natural_distribution(inat_root):
    data = build_longtail("inaturalist2018", inat_root, profile="none")
    assert data.class_counts == [6, 3, 1] and data.train.paths is not None


def test_build_validates_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="imbalance ratio must be >= 1"):
        build_longtail("cifar10", tmp_path / "absent", imbalance_ratio=0.5)
    with pytest.raises(ConfigError, match="unknown imbalance profile"):
        build_longtail("cifar10", tmp_path / "absent", profile="linear")


def test_imdb_is_registered_through_the_lazy_hook(tmp_path):
    # class 0 = negative; the LDAM IMDB setting keeps 10% of it: step profile, rho=10, reversed order
    for split in ("train", "test"):
        for label, n in (("neg", 20), ("pos", 20)):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}_{3 if label == 'neg' else 8}.txt").write_text(f"{label} review {i}")
    data = build_longtail("imdb", tmp_path, profile="step", imbalance_ratio=10, class_order="reversed")
    assert data.class_counts == [2, 20] and data.train.texts is not None
    assert all(t.startswith("neg") for t, y in zip(data.train.texts, data.train.labels.tolist()) if y == 0)
    assert data.test.class_counts() == [20, 20]
