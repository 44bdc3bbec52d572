"""`longtail eval DIR --posthoc NAME [--param V | --tune heldout]` against formulas recomputed here."""

from __future__ import annotations

import json

import pytest
import torch

from longtail.cli import main
from longtail.config import load_config
from longtail.engine.checkpoint import latest_checkpoint
from longtail.engine.trainer import fit


@pytest.fixture
def trained_run(write_config, tmp_path):
    config = load_config(write_config(), ["train.epochs=2", "data.heldout_per_class=2"])
    fit(config, tmp_path / "run")
    return tmp_path / "run"


def _features(run, heldout_per_class=2):
    """Penultimate features and labels of the run's training and test splits, computed by hand."""
    from longtail.data import build_longtail
    from longtail.models import create_model

    config = load_config(run / "config.yaml")
    data = build_longtail("fashion-mnist", root=config.data.root, imbalance_ratio=10,
                          heldout_per_class=heldout_per_class)
    model = create_model("resnet32", num_classes=10, in_channels=1)
    model.load_state_dict(torch.load(latest_checkpoint(run / "checkpoints"), weights_only=True)["model"])
    model.eval()

    def feats(split):
        with torch.no_grad():
            f, z = model(((split.images.double() / 255 - 0.2860) / 0.3530).float())
        return f, z, split.labels

    return model, data, feats(data.train), feats(data.test), feats(data.heldout) if data.heldout else None


def _balanced(pred, labels):
    return sum(float((pred[labels == c] == c).double().mean()) for c in range(10)) / 10


def test_eval_plain_and_tau_norm(trained_run, capsys):
    assert main(["eval", str(trained_run)]) == 0
    plain = json.loads((trained_run / "eval-plain.json").read_text())
    results = json.loads((trained_run / "results.json").read_text())
    assert plain["top1"] == pytest.approx(results["top1"]) and plain["per_class"] == results["per_class"]

    assert main(["eval", str(trained_run), "--posthoc", "tau-norm", "--param", "0.5"]) == 0
    assert "eval-tau-norm.json" in capsys.readouterr().out
    out = json.loads((trained_run / "eval-tau-norm.json").read_text())
    model, data, _, (f, _, y), _ = _features(trained_run)
    w = model.head.weight.detach().double()
    scores = f.double() @ (w / w.norm(dim=1, keepdim=True) ** 0.5).t()  # τ-norm, bias dropped
    pred = scores.argmax(1)
    assert out["param"] == 0.5 and out["posthoc"] == "tau-norm"
    assert out["top1"] == pytest.approx(float((pred == y).double().mean()))
    assert out["balanced_accuracy"] == pytest.approx(_balanced(pred, y))


def test_eval_tune_on_heldout(trained_run):
    assert main(["eval", str(trained_run), "--posthoc", "logit-adjust", "--tune", "heldout", "--grid", "0,0.5,1"]) == 0
    out = json.loads((trained_run / "eval-logit-adjust.json").read_text())
    model, data, _, (_, z, y), (_, zh, yh) = _features(trained_run)
    prior = torch.tensor(data.class_counts, dtype=torch.float64)
    prior = prior / prior.sum()
    held = {tau: _balanced((zh.double() - tau * prior.log()).argmax(1), yh) for tau in (0.0, 0.5, 1.0)}
    best = max(held.values())
    chosen = min((t for t, v in held.items() if abs(v - best) < 1e-12), key=lambda t: (abs(t), t))
    assert out["param"] == chosen
    assert [row["balanced_accuracy"] for row in out["tuning"]["table"]] == pytest.approx(list(held.values()))
    pred = (z.double() - chosen * prior.log()).argmax(1)
    assert out["balanced_accuracy"] == pytest.approx(_balanced(pred, y))


def test_tune_without_heldout_is_refused(write_config, tmp_path, capsys):
    fit(load_config(write_config(), ["train.epochs=1"]), tmp_path / "run")
    assert main(["eval", str(tmp_path / "run"), "--posthoc", "nc-tau", "--tune", "heldout"]) == 2
    assert "data.heldout_per_class" in capsys.readouterr().err


def test_crt_fitted_on_another_training_set(trained_run, write_config, capsys):
    """CDT Table 5: the run's features, a classifier re-trained on a balanced set given by a config."""
    from longtail.data import build_longtail
    from longtail.registry import POSTHOC

    balanced = write_config("balanced.yaml", data={"imbalance_ratio": 1, "n_max": 12})
    argv = ["eval", str(trained_run), "--posthoc", "crt", "--rule-param", "sampler=instance",
            "--rule-param", "epochs=2", "--fit-on", str(balanced)]
    assert main(argv) == 0
    name = f"eval-crt-fit-{balanced.parent.name}-balanced.json"
    assert name in capsys.readouterr().out
    out = json.loads((trained_run / name).read_text())
    assert out["fit_on"]["class_counts"] == [12] * 10
    assert out["rule_params"] == {"sampler": "instance", "epochs": 2}
    # by hand: the run's model, features of the balanced subset, cRT with instance sampling
    model, _, _, (f, _, y), _ = _features(trained_run)
    config = load_config(trained_run / "config.yaml")
    fit_set = build_longtail("fashion-mnist", root=config.data.root, imbalance_ratio=1, n_max=12)
    assert fit_set.train.class_counts() == [12] * 10
    with torch.no_grad():
        ff, _ = model(((fit_set.train.images.double() / 255 - 0.2860) / 0.3530).float())
    rule = POSTHOC.create("crt", sampler="instance", epochs=2).fit(ff, fit_set.train.labels, model.head, [12] * 10)
    pred = rule.scores(f).argmax(1)
    assert out["top1"] == pytest.approx(float((pred == y).double().mean()), abs=1 / len(y) + 1e-9)
    # the run's own counts still define its shot groups; the file of the plain rule is untouched
    assert out["class_counts"] == json.loads((trained_run / "results.json").read_text())["class_counts"]
    assert not (trained_run / "eval-crt.json").exists()


def test_fit_on_and_rule_param_errors(trained_run, write_config, tmp_path, capsys):
    assert main(["eval", str(trained_run), "--fit-on", "x.yaml"]) == 2
    assert "need a rule" in capsys.readouterr().err
    assert main(["eval", str(trained_run), "--posthoc", "crt", "--fit-on", str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert main(["eval", str(trained_run), "--posthoc", "crt", "--rule-param", "sampler"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    other = write_config("cifar.yaml", data={"name": "cifar10"})
    assert main(["eval", str(trained_run), "--posthoc", "crt", "--fit-on", str(other)]) == 2
    assert "same data set" in capsys.readouterr().err
    big = write_config("big.yaml", data={"imbalance_ratio": 1, "n_max": 31})
    assert main(["eval", str(trained_run), "--posthoc", "crt", "--fit-on", str(big)]) == 2
    err = capsys.readouterr().err
    assert "31" in err and len(err.strip().splitlines()) == 1


def _nc_tau(model, counts, f, tau):
    w, b = model.head.weight.detach().double(), model.head.bias.detach().double()
    return (f.double() @ w.t() + b) / torch.tensor(counts, dtype=torch.float64).pow(tau)


def test_eval_tau_from_a_held_out_run(write_config, tmp_path, capsys):
    """`eval FULL --posthoc nc-tau --tau-from HELDOUT` (CDT appendix B.6): τ chosen on HELDOUT's held-out
    split (its model, its counts), applied to FULL (its model, its counts); the classes too small to hold
    out K = 3 (30..3 per class: the two classes of 3) are named in the output and the JSON."""
    fit(load_config(write_config(), ["train.epochs=2"]), tmp_path / "full")
    fit(load_config(write_config(), ["train.epochs=2", "data.heldout_per_class=3"]), tmp_path / "held")
    grid = [0.0, 0.5, 1.0, 1.5]
    argv = ["eval", str(tmp_path / "full"), "--posthoc", "nc-tau", "--tau-from", str(tmp_path / "held"),
            "--grid", ",".join(map(str, grid))]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    out = json.loads((tmp_path / "full" / "eval-nc-tau.json").read_text())
    held_model, held_data, _, _, (hf, _, hy) = _features(tmp_path / "held", heldout_per_class=3)
    def present_balanced(pred, labels):  # mean per-class accuracy over the classes the held-out split has
        return sum(float((pred[labels == c] == c).double().mean()) for c in labels.unique()) / len(labels.unique())

    scores = {t: present_balanced(_nc_tau(held_model, held_data.class_counts, hf, t).argmax(1), hy) for t in grid}
    best = max(scores.values())
    chosen = min((t for t, v in scores.items() if abs(v - best) < 1e-12), key=lambda t: (abs(t), t))
    assert out["param"] == chosen
    assert [row["balanced_accuracy"] for row in out["tuning"]["table"]] == pytest.approx(list(scores.values()))
    full_model, full_data, _, (f, _, y), _ = _features(tmp_path / "full", heldout_per_class=0)
    assert full_data.class_counts == [30, 23, 17, 13, 10, 8, 6, 5, 3, 3] == out["class_counts"]
    pred = _nc_tau(full_model, full_data.class_counts, f, chosen).argmax(1)
    assert out["balanced_accuracy"] == pytest.approx(_balanced(pred, y))
    tuning = out["tuning"]
    assert tuning["run"] == str(tmp_path / "held") and tuning["size"] == 8 * 3 and tuning["heldout_per_class"] == 3
    assert [e["class"] for e in tuning["classes_tuned_on"]] == list(range(8))
    assert [(e["class"], e["count"]) for e in tuning["classes_left_out"]] == [(8, 3), (9, 3)]
    assert "8 classes tuned on, 2 left out (too small to hold out 3: 8-9)" in printed
    assert f"chosen on the held-out split of {tmp_path / 'held'}" in printed


def test_tuning_refused_with_fewer_than_two_classes(write_config, tmp_path, capsys):
    """Holding out 23 of 30..3 per class leaves one class (30) to tune on: refused, naming the others."""
    fit(load_config(write_config(), ["train.epochs=1", "data.heldout_per_class=23"]), tmp_path / "held")
    fit(load_config(write_config(), ["train.epochs=1"]), tmp_path / "full")
    assert main(["eval", str(tmp_path / "held"), "--posthoc", "nc-tau", "--tune", "heldout"]) == 2
    err = capsys.readouterr().err
    assert "leaves 1 class(es) to tune on (need at least 2)" in err and "1 (Trouser, 23)" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["eval", str(tmp_path / "full"), "--posthoc", "nc-tau", "--tau-from", str(tmp_path / "held")]) == 2
    assert "need at least 2" in capsys.readouterr().err
    assert not (tmp_path / "full" / "eval-nc-tau.json").exists()


def test_tau_from_errors(trained_run, write_config, tmp_path, capsys):
    fit(load_config(write_config(), ["train.epochs=1"]), tmp_path / "full")
    # the held-out run must have a held-out split, the same data, and a rule with a parameter
    assert main(["eval", str(trained_run), "--posthoc", "nc-tau", "--tau-from", str(tmp_path / "full")]) == 2
    assert "has no held-out split" in capsys.readouterr().err
    other = write_config("other.yaml", data={"imbalance_ratio": 5})
    fit(load_config(other, ["train.epochs=1", "data.heldout_per_class=2"]), tmp_path / "other")
    assert main(["eval", str(tmp_path / "full"), "--posthoc", "nc-tau", "--tau-from", str(tmp_path / "other")]) == 2
    assert "data.imbalance_ratio" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "full"), "--posthoc", "ncm", "--tau-from", str(trained_run)]) == 2
    assert "has no parameter" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "full"), "--tau-from", str(trained_run)]) == 2
    assert "need a rule" in capsys.readouterr().err
