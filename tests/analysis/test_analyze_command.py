"""`longtail analyze` on a run that `longtail train` wrote (tiny Fashion-MNIST-format data, 2 epochs)."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from longtail.cli import main


def write_fashion_mnist(root, per_class=10, test_per_class=4, seed=0):
    """train-/t10k- images and labels in the IDX format (gzip), a class-dependent bright square per image."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)

    def idx(array):
        return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()

    for prefix, n in (("train", per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(labels.size, 28, 28), dtype=np.uint8)
        for c in range(10):
            images[labels == c, 2 * c : 2 * c + 8, 2 * c : 2 * c + 8] = 220
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(images)))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(labels)))
    return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("analyze")
    root = write_fashion_mnist(base / "fm")
    config = base / "tiny.yaml"
    config.write_text(
        f"data: {{name: fashion-mnist, root: {root}, imbalance_ratio: 4.0}}\n"
        "model: {name: resnet32}\n"
        "optim: {batch_size: 16, lr: 0.02, warmup_epochs: 0, milestones: [100]}\n"
        "train: {epochs: 2}\n"
        "eval: {every: 0}\n"
        "analysis: {track_every: 1}\n"
        "runtime: {device: cpu, progress: none}\n"
    )
    run = base / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    return run


@pytest.mark.slow
def test_analyze_a_trained_run(trained_run, tmp_path, capsys):
    out = tmp_path / "report"
    status = main(["analyze", str(trained_run), "--out", str(out), "--rounds", "20", "--tsne-per-class", "3"])
    assert status == 0
    assert "report:" in capsys.readouterr().out
    for name in ("report.html", "analysis.json", "per_class_accuracy.png", "matrices_run.png", "tsne_run.png",
                 "epochs_run.png", "feature_deviation.png", "margins.png", "classifier_norms.png"):  # fmt: skip
        assert (out / name).is_file(), name
    run = json.loads((out / "analysis.json").read_text())["runs"][0]
    results = json.loads((trained_run / "results.json").read_text())
    # The analysis re-computes the engine's final test evaluation from the checkpoint exactly.
    assert run["test_accuracy"] == pytest.approx(results["per_class"])
    assert run["summary"]["test_top1"] == pytest.approx(results["top1"])
    assert run["class_counts"] == results["class_counts"] and run["epoch"] == 2
    assert sum(map(sum, run["confusion"]["train"])) == sum(results["class_counts"])
    # The last snapshot is the final model: its statistics equal the final ones.
    epochs = run["epochs"]
    assert epochs["epoch"] == [1, 2]
    assert epochs["test_accuracy"][-1] == run["test_accuracy"]
    assert epochs["classifier_norms"][-1] == pytest.approx(run["classifier_norms"])
    assert epochs["feature_deviation"][-1] == pytest.approx(run["feature_deviation"])
    assert epochs["classifier_norms"][0] != epochs["classifier_norms"][1]


@pytest.mark.slow
def test_analyze_overlays_runs_by_name(trained_run, tmp_path):
    out = tmp_path / "both"
    args = ["analyze", str(trained_run), str(trained_run), "--name", "erm", "--name", "cdt", "--out", str(out),
            "--rounds", "5", "--no-tsne", "--no-epochs"]  # fmt: skip
    assert main(args) == 0
    data = json.loads((out / "analysis.json").read_text())
    assert [r["name"] for r in data["runs"]] == ["erm", "cdt"]
    assert data["runs"][0]["epochs"] is None and data["runs"][0]["tsne"] is None
    assert (out / "matrices_erm.png").is_file() and (out / "matrices_cdt.png").is_file()


def test_analyze_user_errors(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    (tmp_path / "seed-0" / "checkpoints").mkdir(parents=True)
    assert main(["analyze", str(tmp_path)]) == 2
    assert "seed-0" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "seed-0"), "--name", "a", "--name", "b"]) == 2
    assert "once per DIR" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "seed-0"), "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err
