"""`longtail data`: output, the real Fashion-MNIST files, and one clear message per bad input."""

import json
from pathlib import Path

import pytest

from longtail.cli import main

SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def run(capsys, *argv):
    code = main(["data", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(
    not (SYSTEM_FMNIST / "train-labels-idx1-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_real_fashion_mnist_total(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LONGTAIL_DATA", str(tmp_path))  # nothing there: the system folder is used
    code, out, _ = run(capsys, "fashion-mnist", "--imbalance-ratio", 100, "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["total"] == 14886
    assert summary["class_counts"] == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    assert len(summary["fingerprint"]) == 16


def test_text_histogram(capsys, fmnist_root):
    code, out, _ = run(
        capsys, "fashion-mnist", "--root", fmnist_root, "--imbalance-ratio", 5, "--class-order", "reversed"
    )
    assert code == 0
    lines = out.splitlines()
    assert "profile=exp" in lines[0] and "class order=reversed" in lines[0]
    counts = [int(5 * 0.2 ** (i / 9)) for i in range(10)][::-1]  # reversed onto the labels
    for line, count in zip(lines[2:12], counts):
        assert line.split()[-2:] == [str(count), "█" * round(40 * count / 5)]
    assert lines[-1].startswith(f"total {sum(counts)} training examples in 10 classes")


def test_json_step(capsys, fmnist_root):
    with pytest.warns(UserWarning, match="left out of it: 7, 8, 9$"):
        code, out, _ = run(
            capsys,
            "mnist",
            "--root",
            fmnist_root,
            "--profile",
            "step",
            "--imbalance-ratio",
            5,
            "--minority-fraction",
            0.3,
            "--heldout-per-class",
            1,
            "--json",
        )
    summary = json.loads(out)
    # step: [5]*7 + [1]*3; one held out of each class that keeps a training example
    assert code == 0 and summary["class_counts"] == [4] * 7 + [1] * 3 and summary["total"] == 31
    assert summary["heldout_total"] == 7


def test_permuted_order_depends_on_seed(capsys, fmnist_root):
    first = json.loads(
        run(
            capsys,
            "mnist",
            "--root",
            fmnist_root,
            "--class-order",
            "permuted",
            "--seed",
            1,
            "--imbalance-ratio",
            5,
            "--json",
        )[1]
    )
    second = json.loads(
        run(
            capsys,
            "mnist",
            "--root",
            fmnist_root,
            "--class-order",
            "permuted",
            "--seed",
            2,
            "--imbalance-ratio",
            5,
            "--json",
        )[1]
    )
    assert sorted(first["class_counts"]) == sorted(second["class_counts"])
    assert first["class_counts"] != second["class_counts"]


# --- bad input: exit 2 and one line naming the problem -----------------------------------------


def expect_error(capsys, argv, *fragments):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("longtail: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_missing_root(capsys, tmp_path):
    expect_error(
        capsys,
        ["cifar10", "--root", tmp_path / "nope"],
        f"root folder {tmp_path / 'nope'} does not exist",
        "--download",
    )


def test_truncated_file(capsys, fmnist_root):
    path = fmnist_root / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    expect_error(
        capsys, ["fashion-mnist", "--root", fmnist_root], "train-labels-idx1-ubyte.gz", "truncated or corrupt"
    )


def test_corrupt_file(capsys, cifar10_root):
    (cifar10_root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80\x02garbage")
    expect_error(capsys, ["cifar10", "--root", cifar10_root], "data_batch_2", "truncated or corrupt")


def test_label_outside_class_range(capsys, fmnist_root, writers):
    import gzip

    import numpy as np

    labels = np.repeat(np.arange(10, dtype=np.uint8), 5)
    labels[3] = 200
    (fmnist_root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(writers.idx_bytes(labels)))
    expect_error(capsys, ["fashion-mnist", "--root", fmnist_root], "label 200 outside the class range 0..9")


def test_rho_below_one(capsys, fmnist_root):
    expect_error(
        capsys,
        ["fashion-mnist", "--root", fmnist_root, "--imbalance-ratio", 0.5],
        "imbalance ratio must be >= 1",
        "got 0.5",
    )


@pytest.mark.parametrize("mu", [0, 1, 1.5])
def test_mu_outside_open_interval(capsys, fmnist_root, mu):
    expect_error(
        capsys,
        ["fashion-mnist", "--root", fmnist_root, "--profile", "step", "--minority-fraction", mu],
        "minority fraction must be strictly between 0 and 1",
    )


def test_more_heldout_than_a_class_has(capsys, fmnist_root):
    expect_error(
        capsys,
        ["fashion-mnist", "--root", fmnist_root, "--imbalance-ratio", 1, "--heldout-per-class", 5],
        "held-out split asks for 5 examples per class but the largest class has 5",
    )


def test_heldout_warns_for_small_classes(capsys, fmnist_root):
    with pytest.warns(UserWarning, match="left out of it: 6, 7, 8, 9$"):
        code, out, _ = run(
            capsys,
            "fashion-mnist",
            "--root",
            fmnist_root,
            "--imbalance-ratio",
            5,
            "--heldout-per-class",
            1,
            "--json",
        )
    assert code == 0 and json.loads(out)["heldout_total"] == 6


def test_empty_class_folder(capsys, imagefolder_root):
    (imagefolder_root / "train" / "gnu").mkdir()
    expect_error(
        capsys, ["imagefolder", "--root", imagefolder_root, "--profile", "none"], "train/gnu holds no image"
    )


def test_unknown_dataset(capsys):
    expect_error(
        capsys,
        ["cifar-10"],
        "unknown data set 'cifar-10'",
        "did you mean 'cifar10'",
        "known: cifar10, cifar100, fashion-mnist, imagefolder, imagenet-lt, imdb, inaturalist2017, "
        "inaturalist2018, inaturalist2019, listfile, mnist, places-lt, tiny-imagenet",
    )


def test_imagefolder_needs_root(capsys):
    expect_error(capsys, ["imagefolder"], "has no default location; pass --root DIR")
