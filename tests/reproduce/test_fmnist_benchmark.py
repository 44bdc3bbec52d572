"""benchmarks/fmnist_lt.py: the plan, the budget, the ordering lines, and one tiny end-to-end run."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from _testload import load_file
from longtail.config import load_config
from longtail.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


bench = load_file("benchmarks/fmnist_lt.py")


def writers():
    return load_file("tests/data/conftest.py")


def test_every_method_has_both_profile_configs():
    for profile, expected in (("exp", "exp"), ("step", "step")):
        for method in bench.METHODS:
            config = load_config(bench.config_path(profile, method))
            assert config.data.profile == expected
            assert config.data.imbalance_ratio == 100
            assert config.data.heldout_per_class == 3
            if profile == "step":
                assert config.data.minority_fraction == 0.5
                exp = load_config(bench.config_path("exp", method))
                # the step configs differ from the exp ones only in the profile
                assert (config.loss, config.rebalance, config.model, config.optim, config.train) == \
                       (exp.loss, exp.rebalance, exp.model, exp.optim, exp.train)
    with pytest.raises(ConfigError, match="unknown profile"):
        bench.config_path("linear", "erm")
    with pytest.raises(ConfigError, match="no config"):
        bench.config_path("exp", "focal-typo")


def test_budget_counts_steps_from_the_profile(tmp_path):
    runs = bench.plan_runs(tmp_path, ["exp", "step"], ["erm"], [0, 1], [])
    assert [r.run_dir.relative_to(tmp_path).as_posix() for r in runs] == [
        "exp/erm/seed-0", "exp/erm/seed-1", "step/erm/seed-0", "step/erm/seed-1"]
    budget = bench.estimate_budget(runs, tmp_path)
    # exp: 14,886 images − 30 held out = 14,856 → 117 steps of 128; step: 30,300 − 30 → 237 steps
    step_s, eval_s = bench.STEP_CPU_SECONDS, bench.EVAL_SECONDS
    exp_epoch = 117 * step_s / 2
    step_epoch = 237 * step_s / 2
    evals = 3 * eval_s  # epochs 4, 8, 12
    expected = 2 * (12 * exp_epoch + evals) + 2 * (12 * step_epoch + evals)
    assert budget["epochs"] == 48 and budget["runs"] == 4
    assert budget["seconds"] == pytest.approx(expected)
    assert "117 steps" in budget["lines"][0] and "237 steps" in budget["lines"][2]
    # two one-thread runs at once: each run takes twice as long, two run together
    parallel = bench.estimate_budget(runs, tmp_path, jobs=2)
    assert parallel["seconds"] == pytest.approx((2 * (expected - 4 * evals) + 4 * evals) / 2)
    assert parallel["jobs"] == 2
    assert budget["schedule"] == {"exp": [(12, 117, 128)], "step": [(12, 237, 128)]}
    text = bench.budget_text(parallel, trained_seconds=7200.0)
    assert "long-tailed (exp) 12 epochs × 117 steps of 128; step 12 epochs × 237 steps of 128" in text
    assert "2 at a time with 1 thread(s) each" in text and "2.0 h of training measured" in text
    assert "~1.0 h of wall time" in text


def test_epochs_compress_every_milestone_of_the_recipe():
    def values(method: str, epochs: int) -> tuple:
        overrides = bench.scaled_schedule(bench.config_path("exp", method), [], epochs)
        config = load_config(bench.config_path("exp", method), overrides)
        return (config.train.epochs, config.optim.warmup_epochs, config.optim.milestones,
                config.rebalance.params.get("start_epoch"))

    # the configs' own 12 epochs: nothing changes
    assert values("ldam-drw", 12) == (12, 1, [10, 11], 10)
    # 200 → 12 in the configs is (160, 180) → (10, 11); 12 → 6 gives (5, 5.5 → 6 = the end: dropped)
    assert values("ldam-drw", 6) == (6, 1, [5], 5)
    assert values("erm", 24) == (24, 2, [20, 22], None)
    # a decay rounding onto an earlier one is not applied twice
    assert values("erm", 8) == (8, 1, [7], None)
    assert values("cdt", 1) == (1, 1, [], None)
    with pytest.raises(ConfigError, match="at least 1"):
        bench.scaled_schedule(bench.config_path("exp", "erm"), [], 0)


def test_epochs_per_profile_and_plan(tmp_path):
    assert bench.parse_epochs(None, ["exp"]) is None
    assert bench.parse_epochs("8", ["exp"]) == 8
    assert bench.parse_epochs("exp=12,step=6", ["exp", "step"]) == {"exp": 12, "step": 6}
    for bad in ("0", "x", "exp=0", "zigzag=3", "exp=3.5"):
        with pytest.raises(ConfigError, match="--epochs"):
            bench.parse_epochs(bad, ["exp"])
    runs = bench.plan_runs(tmp_path, ["exp", "step"], ["ldam-drw"], [0], [], epochs={"step": 6},
                           extra=["eval.every=0"])
    exp, step = (load_config(r.config, list(r.overrides)) for r in runs)
    assert (exp.train.epochs, exp.optim.milestones, exp.rebalance.params["start_epoch"]) == (12, [10, 11], 10)
    assert (step.train.epochs, step.optim.milestones, step.rebalance.params["start_epoch"]) == (6, [5], 5)
    assert exp.eval.every == step.eval.every == 0  # --set comes last and wins


def _rows(values: dict[str, list[float]]) -> dict:
    return {key: {str(s): {"balanced_accuracy": v, "many": v, "medium": None, "few": v}
                  for s, v in enumerate(vs)} for key, vs in values.items()}


def test_ordering_lines_follow_the_means():
    rows = {"exp": _rows({"erm": [50.0, 52.0], "ldam": [55.0, 53.0], "ldam-drw": [60.0, 58.0],
                          "cdt": [51.0, 50.0], "erm+tau-norm": [51.0, 51.0], "erm+nc-tau": [54.0, 56.0]})}
    lines = bench.orderings(rows, ["exp"])
    text = "\n".join(lines)
    assert "LDAM-DRW > LDAM > ERM: HOLDS (LDAM-DRW 59.00 vs LDAM 54.00 vs ERM 51.00)" in text
    assert "CDT > ERM: DOES NOT HOLD (CDT 50.50 vs ERM 51.00)" in text
    assert "ERM + ‖w‖^τ > ERM: DOES NOT HOLD" in text  # 51.00 = 51.00: a tie is not an improvement
    assert "ERM + N_c^τ > ERM: HOLDS" in text
    assert "ERM + NCM > ERM: not measured" in text
    rows["exp"]["ldam"] = _rows({"ldam": [40.0]})["ldam"]  # LDAM below ERM breaks the chain
    assert "LDAM-DRW > LDAM > ERM: DOES NOT HOLD" in "\n".join(bench.orderings(rows, ["exp"]))


def test_bad_arguments_are_one_line_errors(capsys):
    assert bench.main(["--profiles", "exp,zigzag", "--dry-run"]) == 2
    assert "--profiles" in capsys.readouterr().err
    assert bench.main(["--seeds", "0,0", "--dry-run"]) == 2
    assert "distinct" in capsys.readouterr().err
    assert bench.main(["--epochs", "exp=zero", "--dry-run"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert bench.main(["--jobs", "0", "--dry-run"]) == 2
    assert "--jobs" in capsys.readouterr().err


def _mean(per_seed: dict) -> float:
    values = [v["balanced_accuracy"] for v in per_seed.values()]
    return sum(values) / len(values)


def test_end_to_end_tiny(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root, _ = writers().write_idx_set(tmp_path / "fmnist", per_class=30, test_per_class=3)
    out = tmp_path / "bench"
    argv = ["--out", str(out), "--seeds", "0", "--profiles", "exp", "--methods", "erm,cdt",
            "--posthoc", "nc-tau", "--epochs", "1", "--data-root", str(root),
            "--set", "data.imbalance_ratio=10", "--set", "data.heldout_per_class=1",
            "--set", "optim.batch_size=32", "--set", "eval.batch_size=64", "--set", "runtime.num_threads=1",
            "--set", "eval.many_threshold=20", "--set", "eval.few_threshold=8"]
    assert bench.main([*argv, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "= 2 runs, 2 epochs" in said and "~" in said and "Budget:" in said and not out.exists()

    assert bench.main(argv) == 0
    said = capsys.readouterr().out
    assert said.count("train ") == 2
    md = (out / "fmnist-lt.md").read_text()
    data = json.loads((out / "fmnist-lt.json").read_text())
    rows = data["rows"]["exp"]
    assert set(rows) == {"erm", "erm+nc-tau", "cdt", "cdt+nc-tau"}
    # the table's cells are the run's own numbers
    results = json.loads((out / "exp" / "erm" / "seed-0" / "results.json").read_text())
    assert rows["erm"]["0"]["balanced_accuracy"] == pytest.approx(100 * results["balanced_accuracy"])
    assert f"| ERM | {100 * results['balanced_accuracy']:.2f} |" in md
    tuned = json.loads((out / "exp" / "erm" / "seed-0" / "eval-nc-tau.json").read_text())
    assert tuned["tuning"]["split"] == "heldout"
    assert rows["erm+nc-tau"]["0"]["balanced_accuracy"] == pytest.approx(100 * tuned["balanced_accuracy"])
    # the ordering lines say what the numbers say
    erm, cdt, nc = _mean(rows["erm"]), _mean(rows["cdt"]), _mean(rows["erm+nc-tau"])
    assert re.search(rf"CDT > ERM: {'HOLDS' if cdt > erm else 'DOES NOT HOLD'} \(CDT {cdt:.2f} vs ERM {erm:.2f}\)", md)
    assert f"ERM + N_c^τ > ERM: {'HOLDS' if nc > erm else 'DOES NOT HOLD'}" in md
    assert "LDAM-DRW > LDAM > ERM: not measured" in md
    assert "(1 images per class)" in md and "many > 20, few < 8" in md

    # a second call reuses the finished runs and the tuned evaluations
    assert bench.main(argv) == 0
    said = capsys.readouterr().out
    assert said.count("reuse ") == 2 and "train " not in said
    assert (out / "fmnist-lt.md").read_text().split("## long")[1] == md.split("## long")[1]


def test_parallel_jobs_train_every_run_once(tmp_path):
    """``--jobs 2``: worker processes (spawned, one thread each) train the runs; the table is then
    written from their results.json files, and a second call reuses them all."""
    import subprocess

    root, _ = writers().write_idx_set(tmp_path / "fmnist", per_class=20, test_per_class=2)
    out = tmp_path / "bench"
    argv = [sys.executable, str(REPO / "benchmarks" / "fmnist_lt.py"), "--out", str(out), "--seeds", "0,1",
            "--profiles", "exp", "--methods", "erm,ldam-drw", "--posthoc", "", "--epochs", "1", "--jobs", "2",
            "--data-root", str(root), "--set", "data.imbalance_ratio=5", "--set", "data.heldout_per_class=1",
            "--set", "optim.batch_size=32", "--set", "eval.many_threshold=15", "--set", "eval.few_threshold=6"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "4 run(s), 2 at a time, 1 thread(s) each" in done.stdout
    assert done.stdout.count("done ") == 4 and "FAILED" not in done.stdout
    rows = json.loads((out / "fmnist-lt.json").read_text())["rows"]["exp"]
    assert set(rows) == {"erm", "ldam-drw"} and all(set(v) == {"0", "1"} for v in rows.values())
    saved = load_config(out / "exp" / "ldam-drw" / "seed-1" / "config.yaml")
    assert saved.runtime.num_threads == 1 and saved.train.seed == 1 and saved.train.epochs == 1
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("reuse ") == 4 and "train " not in again.stdout
