"""CDT Table 1 (linear vs NCM with training / test means) and LDAM Fig. 6 (the pre-annealing linear probe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from longtail.analysis.collect import Outputs, analyze_outputs
from longtail.analysis.probes import cdt_table1, linear_probe, pre_annealing_snapshot
from longtail.cli import main
from longtail.errors import LongtailError


def ncm_predict_float64(fit_f, fit_y, f, num_classes):
    """NCM written out: f̂ = f/‖f‖, μ_c = mean_{y=c} f̂, ŷ = argmin_c ‖f̂ − μ_c‖ (float64)."""
    fit_f, f = fit_f.double(), f.double()
    fit_n = fit_f / fit_f.norm(dim=1, keepdim=True)
    n = f / f.norm(dim=1, keepdim=True)
    preds = []
    means = {c: fit_n[fit_y == c].mean(0) for c in range(num_classes) if (fit_y == c).any()}
    for row in n:
        best = min(means, key=lambda c: float(((row - means[c]) ** 2).sum()))
        preds.append(best)
    return torch.tensor(preds)


def balanced_acc(pred, y):
    return sum(float((pred[y == c] == c).double().mean()) for c in y.unique().tolist()) / len(y.unique())


def synthetic(num_classes=5, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * 0.8
    counts = [40, 20, 10, 5, 3][:num_classes]
    train_y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    test_y = torch.arange(num_classes).repeat_interleave(12)
    # test features deviate (shifted), minor classes more: what CDT Table 1's test-mean row removes
    shift = torch.randn(num_classes, dim, generator=g) * torch.linspace(0.3, 1.5, num_classes)[:, None]
    train_f = centres[train_y] + torch.randn(len(train_y), dim, generator=g)
    test_f = centres[test_y] + shift[test_y] + torch.randn(len(test_y), dim, generator=g)
    weight = torch.randn(num_classes, dim, generator=g)
    return train_f, train_y, test_f, test_y, weight, counts


def test_cdt_table1_rows_against_the_formula():
    train_f, train_y, test_f, test_y, weight, _ = synthetic()
    logits = test_f @ weight.t()
    table = cdt_table1(train_f, train_y, test_f, test_y, logits)
    assert list(table) == ["linear", "ncm-train-means", "ncm-test-means"]
    lin = logits.double().argmax(1)
    on_train = ncm_predict_float64(train_f, train_y, test_f, 5)
    on_test = ncm_predict_float64(test_f, test_y, test_f, 5)
    for row, pred in (("linear", lin), ("ncm-train-means", on_train), ("ncm-test-means", on_test)):
        assert table[row]["top1"] == pytest.approx(float((pred == test_y).double().mean())), row
        assert table[row]["balanced_accuracy"] == pytest.approx(balanced_acc(pred, test_y)), row
    assert table["ncm-test-means"]["diagnostic"] is True and "not a model" in table["ncm-test-means"]["label"]
    assert not table["linear"]["diagnostic"] and not table["ncm-train-means"]["diagnostic"]
    # the shifted test features: centres from the test set do better than centres from the training set
    assert table["ncm-test-means"]["top1"] > table["ncm-train-means"]["top1"]


def test_analyze_outputs_carries_table1():
    train_f, train_y, test_f, test_y, weight, counts = synthetic()
    run = analyze_outputs("x", Outputs(train_f, train_f @ weight.t(), train_y), Outputs(test_f, test_f @ weight.t(), test_y),
                          weight, counts, rounds=5)
    assert set(run["cdt_table1"]) == {"linear", "ncm-train-means", "ncm-test-means"}
    assert run["cdt_table1"]["linear"]["top1"] == pytest.approx(run["summary"]["test_top1"])
    assert run["pre_annealing_probe"] is None


def test_linear_probe_learns_a_separable_balanced_set():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(4, 6, generator=g) * 4
    y = torch.arange(4).repeat_interleave(50)
    f = centres[y] + 0.3 * torch.randn(len(y), 6, generator=g)
    result = linear_probe(f, y, f, y, 4, seed=0)
    assert result["top1"] > 0.97 and result["recipe"]["sampler"] == "instance"
    again = linear_probe(f, y, f, y, 4, seed=0)
    assert again["top1"] == result["top1"]  # seeded, deterministic


def test_pre_annealing_snapshot_is_the_last_before_the_first_decay():
    class Optim:
        schedule, milestones = "multistep", [160, 180]

    class Config:
        optim = Optim()

    snaps = [(e, Path(f"epoch-{e:04d}.pt")) for e in (80, 120, 160, 180, 200)]
    assert pre_annealing_snapshot(Config(), snaps)[0] == 160
    assert pre_annealing_snapshot(Config(), snaps[:2] + snaps[3:])[0] == 120
    with pytest.raises(LongtailError, match="no snapshot at or before epoch 160"):
        pre_annealing_snapshot(Config(), snaps[3:])
    Config.optim.schedule = "cosine"
    with pytest.raises(LongtailError, match="multistep"):
        pre_annealing_snapshot(Config(), snaps)


@pytest.fixture(scope="module")
def annealed_run(tmp_path_factory):
    from _testload import load_file

    module = load_file("tests/analysis/test_analyze_command.py")
    base = tmp_path_factory.mktemp("probe")
    root = module.write_fashion_mnist(base / "fm", per_class=12, test_per_class=4)
    config = base / "tiny.yaml"
    config.write_text(
        f"data: {{name: fashion-mnist, root: {root}, imbalance_ratio: 4.0}}\n"
        "model: {name: resnet32}\n"
        "optim: {batch_size: 16, lr: 0.05, warmup_epochs: 0, milestones: [2]}\n"
        "train: {epochs: 3}\n"
        "eval: {every: 0}\n"
        "analysis: {track_every: 1}\n"
        "runtime: {device: cpu, progress: none, precision: fp32}\n"
    )
    run = base / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    return run, root


@pytest.mark.slow
def test_analyze_writes_table1_and_the_pre_annealing_probe(annealed_run, tmp_path):
    from longtail.config import load_config
    from longtail.data.datasets import load_split
    from longtail.engine.accel import Accel
    from longtail.engine.data import EvalData, TrainData
    from longtail.engine.distributed import DistInfo
    from longtail.engine.evaluate import extract
    from longtail.engine.trainer import build_model

    run_dir, root = annealed_run
    out = tmp_path / "report"
    assert main(["analyze", str(run_dir), "--out", str(out), "--rounds", "5", "--no-tsne"]) == 0
    payload = json.loads((out / "analysis.json").read_text())
    run = payload["runs"][0]
    assert run["cdt_table1"]["ncm-test-means"]["diagnostic"] is True
    results = json.loads((run_dir / "results.json").read_text())
    assert run["cdt_table1"]["linear"]["top1"] == pytest.approx(results["top1"])
    probe = run["pre_annealing_probe"]
    assert probe["epoch"] == 2 and probe["first_decay"] == 2 and probe["probe_examples"] == 120
    # the snapshot used is epoch 2's (the model's own accuracy there equals the series' epoch-2 entry)
    at2 = run["epochs"]["test_accuracy"][run["epochs"]["epoch"].index(2)]
    assert probe["model_at_snapshot"]["balanced_accuracy"] == pytest.approx(sum(at2) / len(at2))
    # recomputed independently: epoch-2 weights, features of the WHOLE balanced training split, the probe
    config = load_config(run_dir / "config.yaml")
    data = TrainData(config, DistInfo(), torch.device("cpu"))
    model = build_model(config, data)
    model.load_state_dict(torch.load(run_dir / "snapshots" / "epoch-0002.pt", weights_only=True)["model"])
    accel = Accel(device="cpu", precision="fp32")
    full = load_split("fashion-mnist", str(root), train=True)
    f_train, _, y_train = extract(model, EvalData(full, data.info, torch.device("cpu")), accel, 64)
    f_test, _, y_test = extract(model, data.test, accel, 64)
    assert len(y_train) == 120 and torch.bincount(y_train).tolist() == [12] * 10
    expected = linear_probe(f_train, y_train, f_test, y_test, 10, seed=0)
    assert probe["top1"] == pytest.approx(expected["top1"])
    assert probe["balanced_accuracy"] == pytest.approx(expected["balanced_accuracy"])
    assert any("CDT Table 1" in topic for topic, _ in payload["findings"][run["name"]])
    assert any("LDAM Fig. 6" in topic for topic, _ in payload["findings"][run["name"]])
