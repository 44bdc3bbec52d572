"""results.json's calibration and temperature scaling against the formulas, recomputed here."""

from __future__ import annotations

import json

import pytest
import torch

from longtail.config import load_config
from longtail.engine.checkpoint import latest_checkpoint
from longtail.engine.trainer import fit


def _logits(run, split_name):
    """The model's logits on one split of the run, computed by hand (fp32, no engine)."""
    from longtail.data import build_longtail
    from longtail.models import create_model

    config = load_config(run / "config.yaml")
    data = build_longtail("fashion-mnist", root=config.data.root, imbalance_ratio=10,
                          heldout_per_class=config.data.heldout_per_class)  # fmt: skip
    model = create_model("resnet32", num_classes=10, in_channels=1, head=config.model.head)
    model.load_state_dict(torch.load(latest_checkpoint(run / "checkpoints"), weights_only=True)["model"])
    model.eval()
    split = getattr(data, split_name)
    with torch.no_grad():
        _, z = model(((split.images.double() / 255 - 0.2860) / 0.3530).float())
    return z.double(), split.labels, data.class_counts


def _by_hand(z, y, bins=15):
    p = torch.softmax(z, 1)
    conf, pred = p.max(1)
    ece = 0.0
    for b in range(bins):
        sel = (conf > b / bins) & (conf <= (b + 1) / bins)
        if sel.any():
            ece += float(sel.double().mean()) * abs(float((pred[sel] == y[sel]).double().mean()) - float(conf[sel].mean()))
    nll = float(-torch.log_softmax(z, 1)[torch.arange(len(y)), y].mean())
    brier = float(((p - torch.nn.functional.one_hot(y, p.shape[1])) ** 2).sum(1).mean())
    return ece, nll, brier


@pytest.fixture
def fp32_run(write_config, tmp_path):
    config = load_config(write_config(), ["train.epochs=3", "model.head=normed-linear", "loss.name=ldam", "data.heldout_per_class=2", "runtime.precision=fp32",
                                "eval.many_threshold=15", "eval.few_threshold=6"])  # fmt: skip
    fit(config, tmp_path / "run")
    return tmp_path / "run"


def test_results_calibration_and_temperature(fp32_run):
    from longtail.metrics import shot_groups

    results = json.loads((fp32_run / "results.json").read_text())
    z, y, counts = _logits(fp32_run, "test")
    cal = results["calibration"]
    assert cal["num_bins"] == 15
    for got, want in zip((cal["overall"]["ece"], cal["overall"]["nll"], cal["overall"]["brier"]), _by_hand(z, y)):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
    groups = shot_groups(counts, 15, 6)
    assert all(groups.values())  # the thresholds give three non-empty groups
    for name, classes in groups.items():
        keep = torch.isin(y, torch.tensor(classes))
        got = cal["groups"][name]
        assert got["num_examples"] == int(keep.sum())
        for g, w in zip((got["ece"], got["nll"], got["brier"]), _by_hand(z[keep], y[keep])):
            assert g == pytest.approx(w, rel=1e-5, abs=1e-5)

    # T minimises the NLL of the held-out logits (written out: a grid around it is no better) …
    ts = results["temperature_scaling"]
    t = ts["temperature"]["value"]
    assert ts["fitted_on"] == "heldout" and ts["temperature"]["num_examples"] == 20
    assert not ts["temperature"]["at_bound"]
    zh, yh, _ = _logits(fp32_run, "heldout")

    def nll(zz, yy, temp):
        return float(-torch.log_softmax(zz / temp, 1)[torch.arange(len(yy)), yy].mean())

    assert all(nll(zh, yh, t) <= nll(zh, yh, t * f) + 1e-7 for f in (0.9, 0.97, 0.995, 1.005, 1.03, 1.1))
    # … and the test calibration is that of logits / T
    for got, want in zip((ts["calibration"]["overall"]["ece"], ts["calibration"]["overall"]["nll"]),
                         _by_hand(z / t, y)[:2]):  # fmt: skip
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_no_heldout_no_temperature(write_config, tmp_path):
    results = fit(load_config(write_config(), ["train.epochs=1"]), tmp_path / "run")
    assert results["temperature_scaling"] is None and results["calibration"]["overall"]["ece"] is not None


def test_analyze_report_has_reliability_diagrams(fp32_run, tmp_path):
    from longtail.cli import main

    out = tmp_path / "report"
    assert main(["analyze", str(fp32_run), "--out", str(out), "--rounds", "5", "--no-tsne"]) == 0
    run = json.loads((out / "analysis.json").read_text())["runs"][0]
    results = json.loads((fp32_run / "results.json").read_text())
    cal = run["calibration"]
    # the same fp32 test logits and the same held-out split as the engine's results.json
    for key in ("ece", "nll", "brier"):
        assert cal["plain"]["overall"][key] == pytest.approx(results["calibration"]["overall"][key], rel=1e-5, abs=1e-6)
        for group in ("many", "medium", "few"):
            assert cal["plain"]["groups"][group][key] == pytest.approx(
                results["calibration"]["groups"][group][key], rel=1e-5, abs=1e-6)
    assert cal["temperature"]["value"] == pytest.approx(results["temperature_scaling"]["temperature"]["value"], rel=1e-5)
    assert cal["scaled"]["overall"]["ece"] == pytest.approx(
        results["temperature_scaling"]["calibration"]["overall"]["ece"], rel=1e-5, abs=1e-6)
    assert (out / "reliability_run.png").stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert "<h2>Calibration</h2>" in page and "alt='Reliability — run'" in page
    assert "after temperature scaling with T = " in page
