"""`longtail tune` (CDT appendix B.6): candidates trained with K images per class held out and never
evaluated on (nor reading) the test set, the joint choice with a post-hoc τ, the one tie rule, the
small-class rule, reuse / exact resume of a killed candidate, --jobs, and the retrained final run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from _testload import load_file
from longtail.cli import main
from longtail.errors import ConfigError
from longtail.selection import choose, tie_key

REPO = Path(__file__).resolve().parents[1]


def _engine_conftest():
    return load_file("tests/engine/conftest.py")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """Tiny Fashion-MNIST IDX files (8×8, 30 train / 6 test images per class); ρ=10 → 30 … 3 per class."""
    return _engine_conftest().write_tiny_fashion_mnist(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def config_path(tmp_path_factory, tiny_root) -> Path:
    config = _engine_conftest().tiny_config_dict(
        tiny_root, loss={"name": "cdt", "params": {"gamma": 0.3}}, train={"epochs": 3, "checkpoint_keep": 5},
        optim={"batch_size": 32, "lr": 0.1, "warmup_epochs": 0, "milestones": []}, runtime={"progress": "none",
                                                                                               "num_threads": 1})
    path = tmp_path_factory.mktemp("cfg") / "cdt.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


GRID = ["--grid", "loss.params.gamma=0,0.2", "--posthoc", "nc-tau", "--posthoc-grid", "0,0.5,1"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, config_path) -> Path:
    out = tmp_path_factory.mktemp("tune")
    assert main(["tune", str(config_path), *GRID, "--out", str(out)]) == 0
    return out


# ---------------------------------------------------------------------------------------------------
# The tie rule (one function for tune, eval --tune heldout and reproduce)
# ---------------------------------------------------------------------------------------------------


def test_tie_rule_closest_to_neutral_then_smaller():
    grid = [0.3, -0.1, 0.1, 0.0]
    assert choose([((v,), 0.5) for v in grid], [0.0]) == 3  # all tied: the neutral value itself
    assert choose([((v,), 0.5) for v in [0.3, 0.1, -0.1]], [0.0]) == 2  # |±0.1| tie: the smaller
    assert choose([((0.3,), 0.5 + 1e-13), ((0.1,), 0.5)], [0.0]) == 1  # within 1e-12 is a tie
    assert choose([((0.3,), 0.5 + 1e-9), ((0.1,), 0.5)], [0.0]) == 0  # beyond it the score wins
    assert choose([((10.0,), 0.5), ((30.0,), 0.5)], [1.0]) == 0  # neutral 1 (LDAM's s)
    # several keys: the first key decides first, then the next (τ last)
    settings = [((0.2, 0.0), 0.8), ((0.1, 0.5), 0.8), ((0.1, 0.3), 0.8), ((0.0, 0.9), 0.7)]
    assert choose(settings, [0.0, 0.0]) == 2
    assert tie_key((0.1, 0.3), [0.0, 0.0]) < tie_key((0.1, 0.5), [0.0, 0.0]) < tie_key((0.2, 0.0), [0.0, 0.0])
    # non-numeric values come after numbers, in grid order; None scores never win
    assert choose([(("focal",), 0.5), (("ce",), 0.5)], [0.0], [("ce", "focal")]) == 1
    assert choose([((0.0,), None), ((0.2,), 0.1)], [0.0]) == 1


def test_posthoc_tuning_uses_the_shared_rule(monkeypatch):
    """`eval --tune heldout` (longtail.posthoc.tune) takes its choice from longtail.selection.choose."""
    import torch

    import longtail.posthoc.base as base

    calls = []
    real = base.choose

    def spy(scores, neutral, *args, **kwargs):
        calls.append((list(scores), list(neutral)))
        return real(scores, neutral, *args, **kwargs)

    monkeypatch.setattr(base, "choose", spy)
    head = torch.nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    f, y = torch.eye(2), torch.tensor([0, 1])
    best, table = base.tune("nc-tau", [0.5, 0.25, 0.0, 0.75], f, y, head, [10, 10], f, y)
    assert best == 0.0  # every τ classifies both right (equal counts): the neutral τ = 0
    assert len(calls) == 1 and calls[0][1] == [0.0] and len(table) == 4


def test_neutral_values_come_from_the_loss():
    from longtail.config import load_config
    from longtail.tune import neutral_value

    ldam = load_config(None, ["loss.name=ldam", "model.head=normed-linear"])
    assert neutral_value(ldam, "loss.params.s") == 1.0
    assert neutral_value(ldam, "loss.params.max_m") == 0.0
    assert neutral_value(load_config(None, ["loss.name=cdt"]), "loss.params.gamma") == 0.0
    assert neutral_value(ldam, "optim.lr") == 0.0


# ---------------------------------------------------------------------------------------------------
# End to end on real-format files
# ---------------------------------------------------------------------------------------------------


def test_tune_end_to_end(tuned: Path, config_path: Path):
    doc = json.loads((tuned / "tune.json").read_text())
    assert [c["point"] for c in doc["candidates"]] == [{"loss.params.gamma": 0}, {"loss.params.gamma": 0.2}]
    assert doc["heldout_per_class"] == 3 and doc["posthoc"] == "nc-tau" and doc["posthoc_param"] == "tau"
    # ρ=10 on 30 images per class: classes 8 and 9 keep 3 images, too few to hold out 3 — left out, named
    assert doc["classes_left_out"] == [{"class": 8, "name": "Bag", "count": 3},
                                       {"class": 9, "name": "Ankle boot", "count": 3}]
    assert [e["class"] for e in doc["classes_tuned_on"]] == list(range(8))
    # each candidate's score is its best τ; the choice is the best candidate (ties by the shared rule)
    for entry in doc["candidates"]:
        rows = entry["scores"]["0"]
        assert [r["param"] for r in rows] == [0.0, 0.5, 1.0]
        best = choose([((r["param"],), r["balanced_accuracy"]) for r in rows], [0.0])
        assert entry["param"] == rows[best]["param"] and entry["mean"] == rows[best]["balanced_accuracy"]
    settings = [((c["point"]["loss.params.gamma"], c["param"]), c["mean"]) for c in doc["candidates"]]
    chosen = doc["candidates"][choose(settings, [0.0, 0.0])]
    assert chosen.get("chosen") is True
    assert doc["choice"] == {"point": chosen["point"], "posthoc_param": chosen["param"],
                             "heldout_balanced_accuracy": chosen["mean"], "std": None}
    # the candidates hold held-out metrics only; their held-out split has no class 9
    for entry in doc["candidates"]:
        run = Path(entry["runs"]["0"])
        results = json.loads((run / "results.json").read_text())
        assert "top1" not in results and "balanced_accuracy" not in results and "num_test" not in results
        assert results["temperature_scaling"] is None  # it reports test calibration: not for a candidate
        assert results["heldout"]["num_examples"] == 24 and results["heldout"]["per_class"][8:] == [None, None]
        line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert "heldout_balanced_accuracy" in line and not any(k.startswith("test_") for k in line)
        assert yaml.safe_load((run / "config.yaml").read_text())["eval"]["test"] is False
    assert main(["compare", doc["candidates"][0]["runs"]["0"]]) == 2  # no test metrics to compare
    # the choice retrained on the full set (no held-out split), evaluated on the test set with τ applied
    gamma = chosen["point"]["loss.params.gamma"]
    final = tuned / "final" / f"gamma-{gamma:g}" / "seed-0"
    assert doc["final"]["runs"] == {"0": str(final)}
    results = json.loads((final / "results.json").read_text())
    assert sum(results["class_counts"]) == 118  # the whole long-tailed set, nothing held out
    assert results["num_test"] == 60 and yaml.safe_load((final / "config.yaml").read_text())["data"]["heldout_per_class"] == 0
    test = doc["final"]["test"]
    assert test["plain"]["per_seed"]["0"]["top1"] == results["top1"]
    post = json.loads((final / "eval-nc-tau.json").read_text())
    assert post["param"] == chosen["param"] and "tuning" not in post  # τ fixed, not re-tuned on the final run
    assert test["posthoc"]["per_seed"]["0"]["balanced_accuracy"] == post["balanced_accuracy"]
    text = (tuned / "tune.md").read_text()
    assert "| gamma | τ | held-out balanced acc. (%) | seeds |  |" in text and "**chosen**" in text
    assert "left out (too small to hold out 3): 8 (Bag, 3 images), 9 (Ankle boot, 3 images)" in text
    assert f"Chosen: **gamma={gamma:g}, τ={chosen['param']:g}**" in text


def test_candidate_scores_are_the_heldout_accuracy_written_out(tuned: Path):
    """A candidate's plain held-out score is the mean over held-out classes of the per-class accuracy of
    argmax_c (w_c·f + b_c), written out in float64 from the reloaded features."""
    from longtail.tune import heldout_features, score_features

    run = tuned / "candidates" / "gamma-0.2" / "seed-0"
    features = heldout_features(run)
    assert features.test is None
    f, y = features.heldout
    w = features.head.class_weight_matrix().detach().double()
    b = features.head.bias.detach().double()
    predictions = (f.double() @ w.t() + b).argmax(1)
    per_class = [float((predictions[y == c] == c).double().mean()) for c in sorted(set(y.tolist()))]
    assert len(per_class) == 8
    assert score_features(features)[0]["balanced_accuracy"] == pytest.approx(sum(per_class) / 8, abs=1e-12)


def test_candidates_never_load_the_test_split(tmp_path: Path, config_path: Path, monkeypatch):
    """A candidate's training and scoring read only the training split of the data set."""
    import longtail.data.build as build
    from longtail import tune

    real = build.load_split
    splits = []

    def spy(name, root, train, **kwargs):
        splits.append(train)
        if not train:
            raise AssertionError("the test split was loaded for a candidate run")
        return real(name, root, train, **kwargs)

    monkeypatch.setattr(build, "load_split", spy)
    plan = tune.make_plan(config_path, [tune.parse_grid("loss.params.gamma=0.1")], tmp_path, overrides=["train.epochs=1"])
    tune.check_classes(plan)
    assert tune.train_runs(plan.candidate_runs(), log=lambda m: None) == {}
    (run,) = plan.candidate_runs()
    assert "heldout" in json.loads((run.run_dir / "results.json").read_text())
    tune.score_features(tune.heldout_features(run.run_dir), "nc-tau")
    assert splits and all(splits)
    # the switch itself: a test evaluation without the test split is impossible, and said so
    with pytest.raises(Exception, match="eval.test=false"):
        from longtail.posthoc.evaluate import evaluate_run

        evaluate_run(run.run_dir)


def test_reuse_and_dry_run_budget(tuned: Path, config_path: Path, capsys):
    before = {p: p.stat().st_mtime for p in tuned.rglob("results.json")}
    assert main(["tune", str(config_path), *GRID, "--out", str(tuned)]) == 0  # everything reused
    assert {p: p.stat().st_mtime for p in tuned.rglob("results.json")} == before
    capsys.readouterr()
    assert main(["tune", str(config_path), *GRID, "--grid", "optim.lr=0.05,0.1", "--dry-run", "--out", str(tuned)]) == 0
    text = capsys.readouterr().out
    assert "loss.params.gamma in [0,0.2] × optim.lr in [0.05,0.1]" in text
    assert "held-out split: 3 images per class from 8 classes; left out (too small): 8 (Bag, 3), 9 (Ankle boot, 3)" in text
    assert "budget: 5 runs (4 candidate runs, 0 done; 1 final)" in text
    # 3 epochs × ceil((118 − 24) / 32) steps per candidate, 3 × ceil(118 / 32) for the final run
    assert "9 training steps per candidate, 12 per final run" in text
    assert str(tuned / "candidates" / "gamma-0_lr-0.05" / "seed-0") in text
    assert main(["tune", str(config_path), *GRID, "--dry-run", "--out", str(tuned)]) == 0
    text = capsys.readouterr().out
    assert "2 candidate runs, 2 done" in text and "12 steps left ≈" in text and "s per step" in text
    assert not (tuned / "candidates" / "gamma-0_lr-0.05").exists()


def test_too_few_classes_is_an_error_before_training(tmp_path: Path, config_path: Path, capsys):
    # 10 held out per class: only classes 0-3 (30, 22, 17, 13 images) keep one — fine; 25 leaves one class
    out = tmp_path / "out"
    code = main(["tune", str(config_path), "--grid", "loss.params.gamma=0,0.1", "--heldout-per-class", "25",
                 "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "leaves 1 class(es) to tune on (need at least 2)" in err and "lower --heldout-per-class" in err
    assert "9 (Ankle boot, 3)" in err
    assert not out.exists()


def test_bad_grids_are_refused(tmp_path: Path, config_path: Path, capsys):
    for grid, message in (("loss.params.gamma", "write KEY=V1,V2"), ("data.heldout_per_class=1,2", "set by the tuning"),
                          ("optim.lrr=0.1", "optim.lr")):
        assert main(["tune", str(config_path), "--grid", grid, "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------------
# Resume of a killed candidate, --jobs
# ---------------------------------------------------------------------------------------------------


def _results(path: Path) -> dict:
    data = json.loads((path / "results.json").read_text())
    data.pop("timing")
    return data


@pytest.mark.slow
def test_killed_candidate_resumes_exactly(tmp_path: Path, config_path: Path, tuned: Path):
    """`longtail tune` SIGKILLed after a candidate's first checkpoint; run again, the candidate resumes
    and ends with the results.json of the uninterrupted candidate (the module's tuned run)."""
    out = tmp_path / "out"
    args = [str(config_path), *GRID, "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    process = subprocess.Popen([sys.executable, "-m", "longtail", "tune", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoints = out / "candidates" / "gamma-0" / "seed-0" / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("ckpt-*.pt")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = checkpoints.parent
    assert not (killed / "results.json").exists(), "the candidate finished before it could be killed"
    logs = []
    from longtail import tune

    plan = tune.make_plan(config_path, [tune.parse_grid("loss.params.gamma=0,0.2")], out,
                          posthoc="nc-tau", posthoc_grid=[0, 0.5, 1])
    result = tune.run_tune(plan, log=logs.append)
    assert f"resume {killed}" in logs
    assert "candidates: 0/2 done, 2 left" in logs and "candidates: 2/2 done, 0 left" in logs
    assert _results(killed) == _results(tuned / "candidates" / "gamma-0" / "seed-0")
    assert result.chosen_text() in (tuned / "tune.md").read_text()


@pytest.mark.slow
def test_jobs_two_trains_side_by_side_with_the_same_results(tmp_path: Path, config_path: Path, tuned: Path, capsys):
    """--jobs 2 with two seeds: the seed-0 candidates equal the one-at-a-time ones; scores are means over
    the seeds (sample std), and the choice is made on those means."""
    import statistics

    out = tmp_path / "out"
    assert main(["tune", str(config_path), *GRID, "--seeds", "0,1", "--jobs", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "candidates: 0/4 done, 4 left; 2 at a time" in text and "candidates: 4/4 done, 0 left" in text
    assert "training 4 run(s), 2 at a time, 1 thread(s) each" in text
    for point in ("gamma-0", "gamma-0.2"):
        assert _results(out / "candidates" / point / "seed-0") == _results(tuned / "candidates" / point / "seed-0")
    doc = json.loads((out / "tune.json").read_text())
    for entry in doc["candidates"]:
        by_param = {}
        for seed in ("0", "1"):
            for row in entry["scores"][seed]:
                by_param.setdefault(row["param"], []).append(row["balanced_accuracy"])
        best = choose([((p,), statistics.mean(v)) for p, v in by_param.items()], [0.0])
        param = list(by_param)[best]
        assert entry["param"] == param and entry["mean"] == pytest.approx(statistics.mean(by_param[param]))
        assert entry["std"] == pytest.approx(statistics.stdev(by_param[param]))
    settings = [((c["point"]["loss.params.gamma"], c["param"]), c["mean"]) for c in doc["candidates"]]
    assert doc["candidates"][choose(settings, [0.0, 0.0])].get("chosen") is True
    assert set(doc["final"]["test"]["posthoc"]["per_seed"]) == {"0", "1"}
    assert " ± " in (out / "tune.md").read_text()


# ---------------------------------------------------------------------------------------------------
# The engine switch
# ---------------------------------------------------------------------------------------------------


def test_eval_test_false_needs_no_best_on_test():
    from longtail.config import load_config

    with pytest.raises(ConfigError, match="report_best_on_test needs the test set"):
        load_config(None, ["eval.test=false", "train.report_best_on_test=true"])


def test_a_failed_candidate_is_never_chosen(tmp_path: Path, config_path: Path):
    """γ = 0 diverges (a LongtailError from training): it is reported FAILED, the others are chosen among."""
    import torch

    from longtail import tune
    from longtail.errors import LongtailError
    from longtail.reproduce.runner import Features

    plan = tune.make_plan(config_path, [tune.parse_grid("loss.params.gamma=0,0.1,0.2")], tmp_path)
    head = torch.nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    features = Features(head, [10, 10], (torch.eye(2), torch.tensor([0, 1])), (torch.eye(2), torch.tensor([0, 1])), None)

    def ensure(run):
        if "gamma-0/" in str(run.run_dir) + "/" and "candidates" in str(run.run_dir):
            raise LongtailError("the training loss became NaN")
        return {"top1": 0.5, "top5": 1.0, "balanced_accuracy": 0.5, "groups": {}}

    classes = tune.HeldoutClasses(3, [{"class": 0, "name": "a", "count": 9}, {"class": 1, "name": "b", "count": 9}], [])
    result = tune.run_tune(plan, ensure=ensure, log=lambda m: None, features_fn=lambda run_dir: features,
                           classes_fn=lambda config: classes)
    assert result.chosen == (0.1,)  # 0.1 and 0.2 tie at 1.0: the one closer to γ = 0
    assert result.failed == ["gamma-0: the training loss became NaN"]
    assert "| 0 | FAILED |  | the training loss became NaN |" in tune.markdown(result)
    assert result.final[0]["results"]["top1"] == 0.5
