"""`longtail eval --temperature`: calibration of the final scores; T never fitted on the test set."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from longtail.cli import main
from longtail.config import load_config
from longtail.engine.trainer import fit


@pytest.fixture
def ldam_run(write_config, tmp_path):
    config = load_config(write_config(), ["train.epochs=3", "model.head=normed-linear", "loss.name=ldam",
                                          "data.heldout_per_class=2", "runtime.precision=fp32"])  # fmt: skip
    fit(config, tmp_path / "run")
    return tmp_path / "run"


def _other_root(tiny_root, tmp_path):
    """A data root with the same training files as ``tiny_root`` and a different test set."""
    from _testload import load_file

    conftest = load_file("tests/engine/conftest.py")
    other = conftest.write_tiny_fashion_mnist(tmp_path / "other-src", seed=11)
    root = tmp_path / "other-root"
    root.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(tiny_root / name, root / name)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(other / name, root / name)
    return root


def test_eval_calibration_and_temperature_from_heldout_only(ldam_run, tiny_root, tmp_path, capsys, repoint):
    assert main(["eval", str(ldam_run), "--posthoc", "tau-norm", "--param", "0.5", "--temperature", "heldout"]) == 0
    printed = capsys.readouterr().out
    assert "calibration: ECE" in printed and "T = " in printed
    out = json.loads((ldam_run / "eval-tau-norm.json").read_text())
    t = out["temperature"]["value"]
    assert out["temperature"]["source"] == "fitted on the held-out split" and out["temperature"]["num_examples"] == 20

    # the same run with a different test set: T (from the held-out split) is unchanged, test numbers move
    other = repoint(ldam_run, _other_root(tiny_root, tmp_path), tmp_path / "run-other-test")
    assert main(["eval", str(other), "--posthoc", "tau-norm", "--param", "0.5", "--temperature", "heldout"]) == 0
    moved = json.loads((other / "eval-tau-norm.json").read_text())
    assert moved["temperature"]["value"] == t
    assert moved["calibration_before_temperature"]["overall"]["nll"] != out["calibration_before_temperature"]["overall"]["nll"]

    # the held-out split is what T is fitted on: scores of tau-norm on the held-out features, by hand
    from longtail.posthoc.temperature import fit_temperature

    seen = {}
    import longtail.posthoc.temperature as temperature_module

    def spy(scores, labels, **kw):
        seen["n"], seen["labels"] = scores.shape[0], labels.clone()
        return fit_temperature(scores, labels, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(temperature_module, "fit_temperature", spy)
    try:
        assert main(["eval", str(ldam_run), "--temperature", "heldout"]) == 0
    finally:
        mp.undo()
    from longtail.data import build_longtail

    data = build_longtail("fashion-mnist", root=str(tiny_root), imbalance_ratio=10, heldout_per_class=2)
    assert seen["n"] == 20 and torch.equal(seen["labels"], data.heldout.labels)


def test_eval_given_temperature_and_errors(ldam_run, write_config, tmp_path, capsys):
    assert main(["eval", str(ldam_run), "--temperature", "2.5"]) == 0
    out = json.loads((ldam_run / "eval-plain.json").read_text())
    assert out["temperature"] == {"value": 2.5, "source": "given"}
    results = json.loads((ldam_run / "results.json").read_text())
    assert out["calibration_before_temperature"]["overall"]["nll"] == pytest.approx(
        results["calibration"]["overall"]["nll"], rel=1e-6)
    assert main(["eval", str(ldam_run), "--temperature", "-1"]) == 2
    assert "--temperature '-1'" in capsys.readouterr().err
    fit(load_config(write_config("b.yaml"), ["train.epochs=1"]), tmp_path / "noheld")
    assert main(["eval", str(tmp_path / "noheld"), "--temperature", "heldout"]) == 2
    assert "no held-out split to fit T on" in capsys.readouterr().err
