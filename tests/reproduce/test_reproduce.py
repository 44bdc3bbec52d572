"""Tables, the papers' numbers, the dry-run plan, the markdown writer and one tiny end-to-end reproduce."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from _testload import load_file
from longtail.cli import main
from longtail.errors import ConfigError
from longtail.reproduce import runner
from longtail.reproduce.tables import TABLES, Row, paper_number, table_rows, variant_path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def _writers():
    return load_file("tests/data/conftest.py")


# ---------------------------------------------------------------------------------------------------
# Tables and paper numbers
# ---------------------------------------------------------------------------------------------------


def test_every_row_config_exists_or_says_why():
    for table, rows in TABLES.items():
        for row in rows:
            assert row.table == table
            if row.config is None:
                assert row.note, row
            else:
                assert (CONFIGS / row.config).is_file(), row
            if row.fit_on is not None:
                assert (CONFIGS / row.fit_on).is_file() and row.posthoc == "crt", row
            if row.tune is not None:
                assert (CONFIGS / row.tune.heldout_config).is_file()


def test_every_training_config_feeds_some_row():
    used = {row.config for rows in TABLES.values() for row in rows if row.config}
    used |= {row.tune.heldout_config for rows in TABLES.values() for row in rows if row.tune}
    used |= {row.pretrain for rows in TABLES.values() for row in rows if row.pretrain}
    used |= {row.tau_from for rows in TABLES.values() for row in rows if row.tau_from}
    for path in CONFIGS.rglob("*.yaml"):
        rel = str(path.relative_to(CONFIGS))
        if rel.startswith(("_base/", "demo/", "fashion-mnist-lt/", "fashion-mnist-lt-500/", "classifier-retraining/")) or path.name.startswith("_") or path.name.count(".") > 1:
            continue  # bases, the demo, the engine's benchmark, second stages of another run, variants (a.paper.yaml / a.300ep.yaml)
        assert rel in used, f"configs/{rel} is not used by any table row"


def test_every_variant_has_its_base_config():
    for path in CONFIGS.rglob("*.*.yaml"):
        stem, variant, _ = path.name.rsplit(".", 2)
        assert variant in ("paper", "300ep", "last-decay")
        assert (path.parent / f"{stem}.yaml").is_file()
        assert variant_path(str(path.parent / f"{stem}.yaml"), variant) == str(path)


def test_post_hoc_rows_evaluate_the_full_run_with_tau_from_the_held_out_run():
    """CDT appendix B.6 (issue 13, item 1): every post-hoc row evaluates the run trained on the FULL
    training set (the plain row's run); τ comes from the held-out split of the same config trained with K
    per class held out; NCM rows use the full run and nothing else."""
    from longtail.config import load_config

    checked = 0
    for rows in TABLES.values():
        for row in rows:
            if row.posthoc is None or row.config is None or row.tune is not None or row.fit_on:
                continue
            assert load_config(CONFIGS / row.config).data.heldout_per_class == 0, row
            plain = [r for r in rows if (r.setting, r.method, r.posthoc) == (row.setting, row.method, None)]
            assert not plain or plain[0].config == row.config, row  # the plain row's run
            if row.posthoc in ("tau-norm", "nc-tau"):
                assert row.tau_from == row.config.replace(".yaml", "-heldout.yaml"), row
                held, full = load_config(CONFIGS / row.tau_from), load_config(CONFIGS / row.config)
                assert held.data.heldout_per_class > 0
                assert held.eval.test is False and full.eval.test is True, row  # the held-out run never reads test
                held.data.heldout_per_class = 0
                held.eval.test = True
                assert held.to_dict() == full.to_dict(), row  # the same recipe, K per class held out
            else:
                assert row.tau_from is None, row
            checked += 1
    assert checked > 100


def test_paper_numbers_cells_written_out_from_the_papers():
    # LDAM Table 2 errors → accuracy (100 − error)
    assert paper_number("ldam-table2", "cifar10-exp100", "ldam-drw") == pytest.approx(77.03)
    assert paper_number("ldam-table2", "cifar100-step100", "cb-focal") == pytest.approx(19.76)
    assert paper_number("ldam-table2", "cifar100-exp100", "hg-drs") is None
    assert paper_number("ldam-table1", "imdb", "ldam-drw") == pytest.approx(82.16)
    assert paper_number("ldam-table3", "inaturalist2018", "erm-drw", metric="top5") == pytest.approx(83.45)
    # CDT Table 2 (as printed) vs Table 6 (two decimals) — the paper's own discrepancy in RW ρ=200
    assert paper_number("cdt-table2", "cifar10-exp200", "rw") == 68.6
    assert paper_number("cdt-table6", "cifar10-exp200", "rw") == 66.53
    assert paper_number("cdt-table6", "cifar100-exp10", "cdt", "ncm") == 55.74
    assert paper_number("cdt-table7", "cifar10-step200", "focal") is None
    assert paper_number("cdt-table3", "inaturalist2018", "cb", "nc-tau", "top5") == 81.4
    assert paper_number("cdt-table4", "tiny-imagenet-exp10", "cdt", None, "top5") == 75.6
    assert paper_number("cdt-table8", "tiny-imagenet-step100", "erm", "tau-norm") == 40.0
    assert paper_number("ldam-tiny", "tiny-imagenet-exp100", "erm") == 33.8
    assert paper_number("ldam-tiny", "tiny-imagenet-step10", "cb", metric="top5") == 66.8
    assert paper_number("cdt-table5", "cifar10-exp100", "imbalanced/balanced") == 77.7
    assert paper_number("cdt-table9", "inaturalist2018", "cdt", "nc-tau") == 63.40
    assert paper_number("ldam-table2", "cifar10-exp100", "erm", metric="top5") is None  # no top-5 there
    with pytest.raises(KeyError):
        paper_number("nope", "x", "erm")


def test_every_row_has_a_paper_number_or_is_a_known_gap():
    missing = []
    for table, rows in TABLES.items():
        for row in rows:
            for metric in row.metrics:
                if paper_number(table, row.setting, row.method, row.posthoc, metric) is None:
                    missing.append((table, row.setting, row.method))
    # the paper leaves these cells empty ('-'): focal and CB at ρ=200 in CDT Table 7; neither seed paper
    # reports ImageNet-LT / Places-LT (only ERM, cRT, τ-norm, LWS on ImageNet-LT have a source, Kang et al.);
    # LDAM Fig. 6 and CDT's ERM-PD (Figs. 3, 14) are plotted without numbers
    plotted = {(t, r.setting, r.method) for t in ("ldam-fig6", "cdt-erm-pd") for r in TABLES[t]}
    assert sorted(set(missing)) == sorted({("cdt-table7", f"{d}-step200", m) for d in ("cifar10", "cifar100")
                                           for m in ("focal", "cb")}
                                          | {("imagenet-lt", "imagenet-lt", m) for m in ("ldam-drw", "cdt")}
                                          | {("places-lt", "places-lt", m) for m in ("erm", "ldam-drw", "cdt")}
                                          | plotted)


def test_each_table_is_declared_once_with_its_numbers_and_configs():
    """A row carries its config and the paper's number as printed; the generator writes exactly the
    configs the rows name (plus each row's variants)."""
    table2 = TABLES["ldam-table2"]
    (row,) = [r for r in table2 if (r.setting, r.method) == ("cifar10-exp100", "ldam-drw")]
    assert table2.printed == "error" and row.paper == (22.97,) and "Table 2" in table2.source
    assert paper_number("ldam-table2", "cifar10-exp100", "ldam-drw") == pytest.approx(100 - 22.97)
    (cb,) = [r for r in TABLES["cdt-table7"] if (r.setting, r.method, r.posthoc) == ("cifar10-step100", "cb", None)]
    assert cb.config == "cifar10-lt/step100/cb-rs.yaml" and cb.paper == (61.9,) and cb.variants == ()
    for table in TABLES.values():
        for r in table:
            assert len(r.paper) == len(r.metrics), r
    generator = load_file("tools/make_configs.py")
    written = {str(p) for p in generator.files() if "_" not in (p.name[0], p.parts[0][0]) and p.name.count(".") == 1}
    named = {r.config for t in TABLES.values() for r in t if r.config} | {
        r.tune.heldout_config for t in TABLES.values() for r in t if r.tune} | {
        r.pretrain for t in TABLES.values() for r in t if r.pretrain}
    named |= {r.tau_from for t in TABLES.values() for r in t if r.tau_from}
    assert written == named
    variants = {variant_path(r.config, v) for t in TABLES.values() for r in t for v in r.variants}
    assert variants and variants <= {str(p) for p in generator.files()}


def test_unknown_table_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown table 'ldam-table9'; choose one of"):
        table_rows("ldam-table9")


# ---------------------------------------------------------------------------------------------------
# Plan and dry run
# ---------------------------------------------------------------------------------------------------


def test_plan_shares_runs_and_applies_variant(tmp_path: Path):
    plan = runner.make_plan("cdt-table6", seeds=[0, 1], out=tmp_path, overrides=["train.epochs=2"])
    rows = {(r.row.setting, r.row.method, r.row.posthoc): r for r in plan.rows}
    erm_tau = rows[("cifar10-exp100", "erm", "tau-norm")]
    erm_ncm = rows[("cifar10-exp100", "erm", "ncm")]
    erm = rows[("cifar10-exp100", "erm", None)]
    assert [run.run_dir for run in erm_tau.runs] == [run.run_dir for run in erm_ncm.runs] == \
        [run.run_dir for run in erm.runs]  # post-hoc rows evaluate the plain row's (full-set) run
    assert erm_tau.runs[1].run_dir == tmp_path / "cifar10-lt/exp100/erm/seed-1"
    assert erm_tau.tau_runs[1].run_dir == tmp_path / "cifar10-lt/exp100/erm-heldout/seed-1"  # τ comes from here
    assert erm_ncm.tau_runs == []  # NCM has no parameter: the full run only
    assert erm_tau.runs[0].overrides == ("train.epochs=2",)
    # per setting and seed: ERM, RS, CDT (full + held-out run each) and RW's 4 held-out candidates
    # (power 0.25 … 1; the chosen one is retrained later)
    assert len(plan.unique_runs()) == 6 * (3 * 2 + 4) * 2
    paper = runner.make_plan("ldam-table2", out=tmp_path, variant="paper")
    configs = {(r.row.setting, r.row.method): r for r in paper.rows}
    assert configs[("cifar10-exp100", "ldam-drw")].config.name == "ldam-drw.paper.yaml"
    assert configs[("cifar10-exp100", "erm")].config.name == "erm.yaml"  # no variant: the plain file
    assert configs[("cifar10-exp100", "hg-drs")].config.name == "hg-drs.yaml"  # no paper variant
    assert ("cifar100-exp100", "hg-drs") not in configs  # CIFAR-10 only in the paper


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path: Path, capsys):
    out = tmp_path / "runs"
    code = main(["reproduce", "cdt-table9", "train.epochs=3", "--dry-run", "--seeds", "0,2", "--out", str(out),
                 "--data-root", str(tmp_path)])
    assert code == 0
    text = capsys.readouterr().out
    assert "tune loss.params.gamma in [0.1,0.2,0.3,0.4] with configs/cifar10-lt/exp100/cdt-heldout.yaml" in text
    assert "tune rebalance.params.gamma in [0.025,0.05,0.075,0.1]" in text
    assert str(out / "cifar10-lt/exp100/cdt-heldout/gamma-0.3/seed-2") in text
    assert f"data.root={tmp_path} train.epochs=3 loss.params.gamma=0.3" in text
    assert "24 training runs" in text  # 3 settings x 4 values x 2 seeds
    assert not out.exists()


def test_bad_seeds_and_unknown_table_exit_2(tmp_path: Path, capsys):
    assert main(["reproduce", "cdt-table6", "--seeds", "0,0", "--dry-run", "--out", str(tmp_path)]) == 2
    assert main(["reproduce", "table-x", "--dry-run"]) == 2
    assert "unknown table 'table-x'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------


def test_mean_std_is_the_sample_std():
    mean, std = runner.mean_std([70.0, 72.0, 77.0])
    assert mean == pytest.approx(73.0)
    assert std == pytest.approx(math.sqrt(((3.0**2) + 1.0 + 16.0) / 2))
    assert runner.mean_std([5.0]) == (5.0, None)
    assert runner.mean_std([None]) == (None, None)


def test_markdown_table_puts_ours_beside_the_paper():
    rows = [Row("ldam-table3", "inaturalist2018", "ldam-drw", None, "inaturalist2018/ldam-drw.yaml", ("top1", "top5")),
            Row("ldam-table3", "inaturalist2018", "erm", None, None, ("top1", "top5"), note="no data")]
    budget = {"epochs": 90, "model": "resnet50", "params": 40_300_000, "augmentation": "random resized crop + flip"}
    results = [
        runner.RowResult(rows[0], per_seed={0: {"top1": 66.0, "top5": 84.0}, 1: {"top1": 68.0, "top5": 85.0}},
                         budget=budget),
        runner.RowResult(rows[1], skipped="no data"),
    ]
    text = runner.markdown_table("ldam-table3", results, [0, 1])
    lines = text.splitlines()
    assert lines[0] == "### LDAM paper, Table 3: iNaturalist 2018, ResNet-50"
    header = lines[4]
    assert header == ("| setting | method | ours top-1 (%) | paper top-1 (%) | ours top-5 (%) | paper top-5 (%) "
                      "| budget | seeds | notes |")
    std1 = math.sqrt(2.0)
    assert lines[6] == (f"| inaturalist2018 | LDAM-DRW | 67.00 ± {std1:.2f} | 68.00 | 84.50 ± 0.71 | 85.18 | "
                        "90 ep, resnet50 40.30M, random resized crop + flip | 2 |  |")
    assert lines[7] == "| inaturalist2018 | ERM | — | 57.14 | — | 78.69 |  | 0 | not run: no data |"


# ---------------------------------------------------------------------------------------------------
# Execution with a stand-in trainer (reuse, resume, config mismatch) and one real tiny run
# ---------------------------------------------------------------------------------------------------


def _fake_results(top1: float) -> dict:
    return {"top1": top1, "top5": 1.0, "balanced_accuracy": top1}


def test_execute_trains_once_then_reuses(tmp_path: Path):
    calls = []

    def train(config, run_dir: Path, resume: bool) -> dict:
        calls.append((run_dir, resume, config.train.seed, config.train.epochs))
        (run_dir / "config.yaml").write_text(__import__("longtail.config", fromlist=["dump_yaml"]).dump_yaml(config))
        results = _fake_results(0.5 + 0.1 * config.train.seed)
        (run_dir / "results.json").write_text(json.dumps(results))
        return results

    plan = runner.make_plan("ldam-table1", seeds=[0, 1], out=tmp_path, overrides=["train.epochs=1"])
    results = runner.execute(plan, train=train, log=lambda m: None)
    assert len(calls) == 4 * 2 and all(not resume for _, resume, _, _ in calls)
    assert {c[3] for c in calls} == {1}
    assert results[0].per_seed == {0: {"top1": 50.0}, 1: {"top1": pytest.approx(60.0)}}
    runner.execute(plan, train=train, log=lambda m: None)
    assert len(calls) == 8  # all reused
    # a run directory with a config but no results is resumed
    (tmp_path / "imdb/erm/seed-0/results.json").unlink()
    runner.execute(plan, train=train, log=lambda m: None)
    assert calls[-1][:2] == (tmp_path / "imdb/erm/seed-0", True)
    # another config in the same directory is refused
    other = runner.make_plan("ldam-table1", seeds=[0], out=tmp_path, overrides=["train.epochs=2"])
    failed = runner.execute(other, train=train, log=lambda m: None)
    assert all("holds a run with another config" in res.failed for res in failed)
    assert "FAILED: " in runner.markdown_table("ldam-table1", failed, [0])


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> Path:
    return _writers().write_cifar10(tmp_path_factory.mktemp("cifar"), per_class=24, test_per_class=4)


TINY = ["train.epochs=1", "data.imbalance_ratio=4", "optim.batch_size=32",
        "optim.warmup_epochs=0", "data.workers=0", "runtime.device=cpu", "eval.every=1"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tiny_cifar: Path) -> tuple[Path, list, list]:
    """The ERM rows of CDT Table 6 (plain, τ-norm, N_c^τ, NCM) on tiny CIFAR-10, one epoch per run; with
    every split the data builder read: ``(heldout_per_class of the data being built, train?)``."""
    import longtail.data.build as build

    out = tmp_path_factory.mktemp("reproduce")
    plan = runner.make_plan("cdt-table6", seeds=[0], out=out, data_root=tiny_cifar, overrides=TINY)
    plan.rows = [r for r in plan.rows if r.row.setting == "cifar10-exp100" and r.row.method == "erm"]
    real_build, real_split = build.build_longtail, build.load_split
    building: list[int] = []
    loads: list[tuple[int | None, bool]] = []

    def spy_build(name, *args, **kwargs):
        building.append(kwargs.get("heldout_per_class", 0))
        try:
            return real_build(name, *args, **kwargs)
        finally:
            building.pop()

    def spy_split(name, root, train, **kwargs):
        loads.append((building[-1] if building else None, train))
        return real_split(name, root, train, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build, "build_longtail", spy_build)
        patch.setattr(build, "load_split", spy_split)
        results = runner.execute(plan, log=lambda m: None)
    return out, results, loads


def test_real_reproduce_with_post_hoc_rows(real_run):
    """`longtail reproduce` end to end on tiny CIFAR-10 files: the real trainer and `longtail eval`."""
    tmp_path, results, _ = real_run
    assert [r.row.posthoc for r in results] == [None, "tau-norm", "nc-tau", "ncm"]
    for res in results:
        top1 = res.per_seed[0]["top1"]
        assert 0.0 <= top1 <= 100.0
    assert results[1].chosen[0].startswith("τ=")
    # the plain row is the engine's last-epoch number from results.json
    saved = json.loads((tmp_path / "cifar10-lt/exp100/erm/seed-0/results.json").read_text())
    assert results[0].per_seed[0]["top1"] == pytest.approx(100 * saved["top1"])
    text = runner.markdown_table("cdt-table6", results, [0])
    assert "| cifar10-exp100 | ERM + N_c^τ |" in text and "| 77.78 |" in text
    assert "1 ep, resnet32 0.46M, pad 4 + crop + flip" in text


def test_posthoc_row_is_the_rule_written_out_on_the_real_run(real_run):
    """On real (one-epoch) runs: the N_c^τ row is argmax_c (w_cᵀ f + b_c) / n_c^τ written out in float64
    on the FULL run's test features and class counts, with τ = argmax of the held-out balanced accuracy
    over the rule's grid on the HELD-OUT run's held-out split (its own model and counts) — CDT appendix
    B.6: chosen on the held-out run, applied to the run trained on the full set."""
    import torch

    from longtail.metrics import balanced_accuracy

    tmp_path, results, _ = real_run
    result = results[2]
    assert result.row.posthoc == "nc-tau"
    tau = float(result.chosen[0].removeprefix("τ="))
    full = runner.load_features(tmp_path / "cifar10-lt/exp100/erm/seed-0")
    held = runner.load_features(tmp_path / "cifar10-lt/exp100/erm-heldout/seed-0")
    assert full.heldout is None and held.heldout is not None
    assert sum(full.class_counts) == sum(held.class_counts) + 3 * 10  # K = 3 per class, every class tuned on

    def nc_tau(features, f, t):
        w = features.head.class_weight_matrix().detach().double()
        b = features.head.bias.detach().double()
        return (f.double() @ w.t() + b) / torch.tensor(features.class_counts, dtype=torch.float64).pow(t)

    f, y = full.test
    assert f.shape == (40, 64)
    expected = float((nc_tau(full, f, tau).argmax(1) == y).double().mean())
    assert result.per_seed[0]["top1"] == pytest.approx(100 * expected)
    hf, hy = held.heldout
    grid = [i / 20 for i in range(21)]
    scores = [balanced_accuracy(hy, nc_tau(held, hf, t).argmax(1)) for t in grid]
    best = max(scores)
    tied = [t for t, v in zip(grid, scores) if abs(v - best) <= 1e-12]
    assert tau == min(tied)  # ties: closest to τ = 0
    logits = held.head(hf)
    per_class = [float((logits.argmax(1)[hy == c] == c).double().mean()) for c in hy.unique()]
    assert runner.heldout_balanced_accuracy(held) == pytest.approx(sum(per_class) / len(per_class))
    # the held-out split's classes are in the row's notes and in the eval JSON
    assert result.heldout == {0: "3 per class, 10 classes tuned on, 0 left out"}
    saved = json.loads((tmp_path / "cifar10-lt/exp100/erm/seed-0/eval-nc-tau.json").read_text())
    assert saved["tuning"]["run"] == str(tmp_path / "cifar10-lt/exp100/erm-heldout/seed-0")
    assert len(saved["tuning"]["classes_tuned_on"]) == 10 and saved["tuning"]["classes_left_out"] == []


def test_post_hoc_rows_held_out_twin_never_reads_the_test_split(real_run):
    """The -heldout run behind the τ-norm / N_c^τ rows (eval.test: false) is trained, reloaded and tuned on
    without the test split ever being read — the full run alone is scored on it — and the rows' numbers
    still come out: τ from the twin's held-out split, accuracy of the full run on the test set."""
    import yaml

    tmp_path, results, loads = real_run
    held = tmp_path / "cifar10-lt/exp100/erm-heldout/seed-0"
    assert yaml.safe_load((held / "config.yaml").read_text())["eval"]["test"] is False
    saved = json.loads((held / "results.json").read_text())
    assert "top1" not in saved and "num_test" not in saved and saved["heldout"]["num_examples"] == 30
    assert (3, True) in loads  # the twin's data were built (training and reloading for τ)...
    assert (3, False) not in loads  # ...never with the test split
    assert (0, False) in loads  # the full run is scored on the test set
    for res in results[1:3]:  # τ-norm, N_c^τ
        assert res.failed == "" and res.chosen[0].startswith("τ=") and 0.0 <= res.per_seed[0]["top1"] <= 100.0
        assert res.heldout == {0: "3 per class, 10 classes tuned on, 0 left out"}


def test_reuse_keeps_a_heldout_run_trained_with_the_test_evaluation(tmp_path: Path):
    """A -heldout run trained before its config set eval.test=false (the only difference) is kept as it
    was — reused when finished, resumed with its own config when not; any other difference is refused."""
    from longtail.config import dump_yaml

    held = CONFIGS / "cifar10-lt/exp100/erm-heldout.yaml"
    run = runner.PlannedRun(held, ("train.epochs=1",), 0, tmp_path / "held" / "seed-0")
    old = runner.run_config(run)
    assert old.eval.test is False
    old.eval.test = True
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "config.yaml").write_text(dump_yaml(old))
    calls, logs = [], []

    def train(config, run_dir, resume):
        calls.append((config.eval.test, resume))
        return {"top1": 0.5}

    assert runner.ensure_trained(run, train, logs.append) == {"top1": 0.5}
    assert calls == [(True, True)] and "was trained with eval.test=true: kept" in logs[0]
    (run.run_dir / "results.json").write_text(json.dumps({"top1": 0.25}))
    assert runner.ensure_trained(run, train, logs.append) == {"top1": 0.25} and len(calls) == 1
    other = runner.PlannedRun(held, ("train.epochs=2",), 0, run.run_dir)
    with pytest.raises(Exception, match="holds a run with another config"):
        runner.ensure_trained(other, train, logs.append)
    # the other way round (a run without test metrics asked to be a full run) is refused too
    full = runner.PlannedRun(held, ("train.epochs=1", "eval.test=true"), 0, tmp_path / "full" / "seed-0")
    full.run_dir.mkdir(parents=True)
    (full.run_dir / "config.yaml").write_text(dump_yaml(runner.run_config(run)))
    with pytest.raises(Exception, match="holds a run with another config"):
        runner.ensure_trained(full, train, logs.append)


def test_tuned_rows_choose_on_held_out_then_retrain(tmp_path: Path):
    """CDT Table 9 through `longtail tune`'s code: the grid value with the best held-out balanced accuracy
    is retrained on the full set; for the N_c^τ row τ is chosen jointly with γ on the candidates' held-out
    splits (never the test set) and applied, fixed, to the retrained run."""
    import torch

    from longtail.config import dump_yaml
    from longtail.tune import HeldoutClasses

    trained = []

    def train(config, run_dir: Path, resume: bool) -> dict:
        trained.append((run_dir, config.loss.params["gamma"], config.data.heldout_per_class, config.eval.test))
        (run_dir / "config.yaml").write_text(dump_yaml(config))
        return _fake_results(0.42)

    head = torch.nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()

    def features_fn(run_dir: Path) -> runner.Features:
        gamma = float(run_dir.parent.name.split("-", 1)[1])
        # held-out: the γ = 0.2 run gets class 0 right and one of the two class-1 examples (balanced
        # accuracy 0.75); with N_c^τ (counts 100 vs 1) also the other once 0.9 / 100^τ < 0.5, i.e. from
        # τ = 0.15 on the rule's grid (1.0). The other runs predict class 1 for everything (0.5).
        good = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.5]])
        bad = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
        heldout = (good if gamma == 0.2 else bad, torch.tensor([0, 1, 1]))
        counts = [100, 1]
        return runner.Features(head, counts, (good[:2], torch.tensor([0, 1])), heldout, None)

    evaluated = []

    def posthoc_fn(run_dir: Path, rule: str, param, tune: bool) -> dict:
        evaluated.append((run_dir.relative_to(tmp_path).parts[-2], rule, param, tune))
        return {"top1": 0.8 if param == 0.15 else 0.1, "top5": 1.0, "param": param}

    classes = HeldoutClasses(3, [{"class": 0, "name": "a", "count": 100}, {"class": 1, "name": "b", "count": 4}], [])
    plan = runner.make_plan("cdt-table9", seeds=[0], out=tmp_path)
    plan.rows = [r for r in plan.rows if r.row.setting == "cifar10-exp100"]
    results = runner.execute(plan, train=train, log=lambda m: None, features_fn=features_fn, posthoc_fn=posthoc_fn,
                             classes_fn=lambda config: classes)
    grid_runs = [t for t in trained if t[2] == 3]
    final_runs = [t for t in trained if t[2] == 0]
    assert [g for _, g, _, _ in grid_runs] == [0.1, 0.2, 0.3, 0.4]
    assert all(test is False for *_, test in grid_runs)  # the candidates never evaluate on the test set
    assert final_runs == [(tmp_path / "cifar10-lt/exp100/cdt/gamma-0.2/seed-0", 0.2, 0, True)]  # trained once
    plain, nc_tau = results
    assert plain.per_seed == {0: {"top1": 42.0}} and plain.chosen == {0: "gamma=0.2"}
    # τ chosen on the held-out splits jointly with γ, then applied fixed to the retrained run
    assert evaluated == [("gamma-0.2", "nc-tau", 0.15, False)]
    assert "cdt-heldout" in str(plan.rows[1].runs[1].run_dir)
    assert nc_tau.chosen == {0: "gamma=0.2, τ=0.15"}
    assert nc_tau.per_seed[0]["top1"] == pytest.approx(80.0)


def test_tuned_rows_break_ties_toward_the_neutral_value(tmp_path: Path):
    """All four γ of Table 9 tie on the held-out split: the shared rule takes the one closest to γ = 0."""
    import torch

    from longtail.config import dump_yaml
    from longtail.tune import HeldoutClasses

    def train(config, run_dir: Path, resume: bool) -> dict:
        (run_dir / "config.yaml").write_text(dump_yaml(config))
        return _fake_results(0.5)

    head = torch.nn.Linear(2, 2)
    features = runner.Features(head, [10, 10], (torch.eye(2), torch.tensor([0, 1])),
                               (torch.eye(2), torch.tensor([0, 1])), None)
    classes = HeldoutClasses(3, [{"class": 0, "name": "a", "count": 10}, {"class": 1, "name": "b", "count": 10}], [])
    plan = runner.make_plan("cdt-table9", seeds=[0], out=tmp_path)
    plan.rows = [r for r in plan.rows if r.row.setting == "cifar10-exp100" and r.row.posthoc is None]
    (result,) = runner.execute(plan, train=train, log=lambda m: None, features_fn=lambda run_dir: features,
                               classes_fn=lambda config: classes)
    assert result.failed == "" and result.chosen == {0: "gamma=0.1"}


def test_cdt_table5_features_vs_classifiers_end_to_end(tmp_path_factory):
    """CDT Table 5 on tiny CIFAR-10 files: a balanced and a long-tailed network of the same data set,
    each with its classifier re-trained (cRT, instance sampling) on the other one's training split."""
    from longtail.config import load_config

    root = _writers().write_cifar10(tmp_path_factory.mktemp("cifar5"), per_class=100, test_per_class=4)
    out = tmp_path_factory.mktemp("table5")
    overrides = ["train.epochs=1", "data.n_max=100", "data.heldout_per_class=0", "optim.batch_size=64",
                 "optim.warmup_epochs=0", "data.workers=0", "runtime.device=cpu", "runtime.num_threads=1"]
    plan = runner.make_plan("cdt-table5", seeds=[0], out=out, data_root=root, overrides=overrides)
    assert all(r.config is not None for r in plan.rows)
    assert "fitted on the training split of configs/cifar10-lt/exp100/erm.yaml" in runner.format_plan(plan)
    results = runner.execute(plan, log=lambda m: None)
    assert [r.failed for r in results] == ["", "", "", ""]
    assert [r.row.method for r in results] == ["balanced/balanced", "balanced/imbalanced",
                                               "imbalanced/balanced", "imbalanced/imbalanced"]
    balanced_run, lt_run = out / "cifar10-lt/balanced12400/erm/seed-0", out / "cifar10-lt/exp100/erm/seed-0"
    assert load_config(balanced_run / "config.yaml").data.imbalance_ratio == 1.0
    assert json.loads((balanced_run / "results.json").read_text())["class_counts"] == [100] * 10
    lt_counts = json.loads((lt_run / "results.json").read_text())["class_counts"]
    assert lt_counts[0] == 100 and lt_counts[-1] == 1
    # balanced features, classifier re-trained on the long-tailed split; and the reverse
    on_lt = json.loads((balanced_run / "eval-crt-fit-exp100-erm.json").read_text())
    on_balanced = json.loads((lt_run / "eval-crt-fit-balanced12400-erm.json").read_text())
    assert on_lt["fit_on"]["class_counts"] == lt_counts and on_lt["rule_params"] == {"sampler": "instance"}
    assert on_balanced["fit_on"]["class_counts"] == [100] * 10
    assert results[1].per_seed[0]["top1"] == pytest.approx(100 * on_lt["top1"])
    assert results[2].per_seed[0]["top1"] == pytest.approx(100 * on_balanced["top1"])
    text = runner.markdown_table("cdt-table5", results, [0])
    assert "| cifar10-exp100 | balanced/imbalanced + cRT |" in text and "| 82.20 |" in text


def test_imagenet_lt_and_places_lt_tables_name_their_sources():
    """Each published number names its source; cells without one show "—" (neither seed paper
    reports these benchmarks)."""
    from longtail.reproduce.runner import RowResult, markdown_table

    assert paper_number("imagenet-lt", "imagenet-lt", "erm") == 44.4  # Kang et al. 2020, "Joint"
    assert paper_number("imagenet-lt", "imagenet-lt", "erm", "crt") == 49.6
    assert paper_number("imagenet-lt", "imagenet-lt", "erm", "tau-norm") == 49.4
    assert paper_number("imagenet-lt", "imagenet-lt", "erm", "lws") == 49.9
    assert paper_number("imagenet-lt", "imagenet-lt", "ldam-drw") is None
    assert all(paper_number("places-lt", "places-lt", r.method, r.posthoc) is None for r in TABLES["places-lt"])
    assert "Kang et al., ICLR 2020" in TABLES["imagenet-lt"].source
    text = markdown_table("imagenet-lt", [RowResult(r) for r in TABLES["imagenet-lt"]], [0])
    assert "Paper numbers: Kang et al., ICLR 2020" in text
    lines = {line.split("|")[2].strip(): line for line in text.splitlines() if line.startswith("| imagenet-lt")}
    assert "| 49.90 |" in lines["ERM + LWS"] and lines["LDAM-DRW"].split("|")[4].strip() == "—"
    assert {r.config for r in TABLES["places-lt"]} == {"places-lt/erm.yaml", "places-lt/ldam-drw.yaml",
                                                        "places-lt/cdt.yaml"}  # post-hoc rows: the full run
    assert {r.tau_from for r in TABLES["places-lt"]} == {None, "places-lt/erm-heldout.yaml"}


# ---------------------------------------------------------------------------------------------------
# Issue 13: the CB rows per table, the reference sampler, the DRW/DRS start, the tuned RW baseline
# ---------------------------------------------------------------------------------------------------

LDAM_CB = ("cb-rs", "cb-rw", "cb-focal")


def test_cdt_cb_rows_map_to_the_ldam_row_their_numbers_are():
    """Each CDT table's "CB" cells against LDAM Table 2's CB rows (100 − error, rounded to the printed
    decimal): the row's config is the LDAM row that the most cells equal — CB-RS for Table 7 (all four
    cells), CB-Focal for Table 2 (two cells; the other two equal none: Cui et al.'s numbers)."""
    ldam = {(r.setting, r.method): 100.0 - r.paper[0] for r in TABLES["ldam-table2"] if r.method in LDAM_CB}
    expected = {"cdt-table7": ("cb-rs", 4, 4), "cdt-table2": ("cb-focal", 2, 4)}
    for table, (stem, hits, comparable) in expected.items():
        rows = [r for r in TABLES[table] if r.method == "cb" and r.posthoc is None]
        matches = {m: 0 for m in LDAM_CB}
        seen = 0
        for row in rows:
            if row.paper[0] is None or (row.setting, "cb-rs") not in ldam:
                continue  # ρ = 200 is not in LDAM Table 2; "—" cells
            seen += 1
            for m in LDAM_CB:
                matches[m] += round(ldam[(row.setting, m)], 1) == row.paper[0]
        best = max(matches, key=matches.get)
        assert (best, matches[best], seen) == (stem, hits, comparable), (table, matches)
        assert {r.config.rsplit("/", 1)[1] for r in rows} == {f"{stem}.yaml"}, table
        assert all(f"CB = {METHOD_LABEL[stem]}" in r.note for r in rows), table
    # CB-RW also fits CIFAR-10 step ρ=100 (61.94) but not step ρ=10 (83.80 vs 84.6)
    assert round(ldam[("cifar10-step100", "cb-rw")], 1) == 61.9 and round(ldam[("cifar10-step10", "cb-rw")], 1) != 84.6


METHOD_LABEL = {"cb-rs": "CB-RS", "cb-focal": "CB-Focal"}


def test_cb_sentence_of_generator_and_configs_readme():
    text = (REPO / "tools" / "make_configs.py").read_text() + (CONFIGS / "README.md").read_text()
    assert "'CB' rows are this method's published numbers" not in text
    assert "Table 7 to cb-rs.yaml" in text
    assert "CDT Table 7's \"CB\"" in (CONFIGS / "README.md").read_text()


def test_reference_sampler_is_the_effective_number_one():
    """The LDAM-DRW code's ImbalancedDatasetSampler: per-example weights (1 − β)/(1 − β^{n_y}), β = 0.9999,
    drawn with replacement — written out here in float64; the CB-RS configs use exactly that sampler and
    their headers say so (not ∝ 1/n_y)."""
    import torch

    from longtail.config import load_config
    from longtail.registry import SAMPLERS

    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor(counts))
    beta = 0.9999
    per_example = [(1 - beta) / (1 - beta ** counts[y]) for y in labels.tolist()]
    per_class = torch.zeros(10, dtype=torch.float64)
    for y, w in zip(labels.tolist(), per_example):
        per_class[y] += w
    reference = per_class / per_class.sum()  # probability that a draw of torch.multinomial(weights) is class c
    for path in CONFIGS.rglob("cb-rs.yaml"):
        config = load_config(path)
        assert config.rebalance.name == "rs" and config.rebalance.params == {
            "sampler": "effective-number", "sampler_params": {"beta": 0.9999}}, path
        sampler = SAMPLERS.create(config.rebalance.params["sampler"], labels=labels, seed=0,
                                  **config.rebalance.params["sampler_params"])
        torch.testing.assert_close(sampler.class_probabilities(0), reference, rtol=1e-12, atol=0)
        header = path.read_text().split("\nbase:")[0]
        assert "ImbalancedDatasetSampler" in header and "(1 - beta)/(1 - beta^n_y)" in header, path
        assert "which draws each example\n# with probability proportional to 1/n_y" not in header
    readme = " ".join((CONFIGS / "README.md").read_text().split())
    assert "plain `rs.yaml` is the reference code's sampler" not in readme
    assert "reference code's one re-sampler, `ImbalancedDatasetSampler`" in readme


def _milestones_and_starts(path: Path):
    from longtail.config import load_config

    config = load_config(path)
    start = config.rebalance.params.get("start_epoch")
    return config, list(config.optim.milestones), start


def test_deferred_schedules_start_at_the_first_lr_decay_and_last_decay_is_a_variant():
    """One rule for every data set (reference code, LDAM Fig. 3): DRW / DRS switch on at the FIRST lr
    decay; ``<method>.last-decay.yaml`` (the LDAM text read literally) at the last; the headers agree."""
    checked = set()
    for path in sorted(CONFIGS.rglob("*.yaml")):
        if path.name.startswith("_") or "fashion-mnist" in str(path) or "imdb" in str(path) or "/demo/" in str(path):
            continue
        config, milestones, start = _milestones_and_starts(path)
        if config.rebalance.name not in ("drw", "drs") or config.optim.schedule != "multistep":
            continue  # (ImageNet-LT's cosine schedule has no decay to start at)
        expected = milestones[-1] if path.name.endswith(".last-decay.yaml") else milestones[0]
        assert start == expected, (path, start, milestones)
        checked.add(path.relative_to(CONFIGS).parts[0])
        if not path.name.endswith(".last-decay.yaml") and ".300ep" not in path.name and ".paper" not in path.name:
            assert (path.parent / path.name.replace(".yaml", ".last-decay.yaml")).is_file(), path
    assert checked == {"cifar10-lt", "cifar100-lt", "tiny-imagenet-lt", "inaturalist2018", "places-lt"}
    for name in ("inaturalist2018.yaml", "tiny-imagenet.yaml", "cifar10.yaml"):
        header = (CONFIGS / "_base" / name).read_text()
        assert "first lr" in header and "last-decay" in header, name
    assert "second decay" not in (CONFIGS / "_base" / "inaturalist2018.yaml").read_text()
    plan = runner.make_plan("ldam-table3", out="runs", variant="last-decay")
    rows = {r.row.method: r for r in plan.rows}
    assert rows["ldam-drw"].config.name == "ldam-drw.last-decay.yaml" and rows["erm"].config.name == "erm.yaml"


def test_inaturalist_weight_decay_is_the_papers():
    """CDT appendix A.2: weight decay 2e-4 "for all the experiments" (iNaturalist included)."""
    from longtail.config import load_config

    for path in (CONFIGS / "inaturalist2018").glob("*.yaml"):
        config = load_config(path)
        assert config.optim.weight_decay == 2e-4, path
        assert config.data.train_transform == "resize-crop", path  # CDT A.4: resize 256, random 224 crop, flip
    assert "resize to 256x256, random 224x224 crop" in (CONFIGS / "_base" / "inaturalist2018.yaml").read_text()


def test_cdt_rw_rows_tune_the_power_on_the_held_out_split():
    """CDT §5.1: RW weights N_c^−γ with γ a hyper-parameter — every RW row of CDT Tables 2, 6 and 7 chooses
    it from {0.25, 0.5, 0.75, 1} on the held-out run, then retrains (the LDAM paper's IMDB RW is not tuned)."""
    from longtail.config import load_config

    for table in ("cdt-table2", "cdt-table6", "cdt-table7"):
        rows = [r for r in TABLES[table] if r.method == "rw"]
        assert rows
        for row in rows:
            assert row.tune is not None and row.tune.key == "rebalance.params.power", row
            assert row.tune.grid == (0.25, 0.5, 0.75, 1.0) and row.tau_from is None
            assert row.tune.heldout_config == row.config.replace("rw.yaml", "rw-heldout.yaml")
            held = load_config(CONFIGS / row.tune.heldout_config)
            assert held.rebalance.name == "rw" and held.data.heldout_per_class == 3
    assert all(r.tune is None for r in TABLES["ldam-table1"])


def test_dry_run_lists_each_rows_runs_and_where_each_value_comes_from(tmp_path: Path, capsys):
    out = tmp_path / "runs"
    assert main(["reproduce", "cdt-table6", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    i = lines.index(next(line for line in lines if line.startswith("- cifar10-exp100     ERM + N_c^τ")))
    assert lines[i + 1] == (f"    seed 0: evaluates {out}/cifar10-lt/exp100/erm/seed-0 (full training set); τ chosen "
                            f"on the held-out split of {out}/cifar10-lt/exp100/erm-heldout/seed-0 <- "
                            "configs/cifar10-lt/exp100/erm-heldout.yaml")
    j = lines.index(next(line for line in lines if line.startswith("- cifar10-exp100     RW ")))
    assert "tune rebalance.params.power in [0.25,0.5,0.75,1] with configs/cifar10-lt/exp100/rw-heldout.yaml" in lines[j]
    assert lines[j + 1] == (f"    seed 0: trains {out}/cifar10-lt/exp100/rw-heldout/power-<v>/seed-0 for each v "
                            f"(held-out split, value chosen there); retrains {out}/cifar10-lt/exp100/rw/power-<chosen>"
                            "/seed-0 (full training set)")
    k = lines.index(next(line for line in lines if line.startswith("- cifar10-exp100     ERM + NCM")))
    assert lines[k + 1] == f"    seed 0: evaluates {out}/cifar10-lt/exp100/erm/seed-0 (full training set)"


def test_tiny_reproduce_retrains_the_tuned_rw_row(tiny_cifar: Path, tmp_path: Path):
    """End to end on tiny CIFAR-10 files (the real trainer): the RW row of CDT Table 6 trains the four
    powers with K per class held out, chooses one on the held-out split and retrains it on the full set."""
    from longtail.config import load_config

    plan = runner.make_plan("cdt-table6", seeds=[0], out=tmp_path, data_root=tiny_cifar, overrides=TINY)
    plan.rows = [r for r in plan.rows if r.row.setting == "cifar10-exp100" and (r.row.method, r.row.posthoc) == ("rw", None)]
    (result,) = runner.execute(plan, log=lambda m: None)
    assert result.failed == ""
    assert result.heldout == {0: "3 per class, 10 classes tuned on, 0 left out"}
    chosen = result.chosen[0]
    assert chosen.startswith("power=")
    power = float(chosen.split(",")[0].removeprefix("power="))
    assert power in (0.25, 0.5, 0.75, 1.0)
    for value in ("0.25", "0.5", "0.75", "1"):
        candidate = load_config(tmp_path / f"cifar10-lt/exp100/rw-heldout/power-{value}/seed-0/config.yaml")
        assert candidate.data.heldout_per_class == 3 and candidate.rebalance.params["power"] == float(value)
    final = tmp_path / f"cifar10-lt/exp100/rw/power-{power:g}/seed-0"
    config = load_config(final / "config.yaml")
    assert config.data.heldout_per_class == 0 and config.rebalance.params["power"] == power
    saved = json.loads((final / "results.json").read_text())
    assert result.per_seed[0]["top1"] == pytest.approx(100 * saved["top1"])


def test_tuned_row_with_too_few_classes_is_refused_before_training(tmp_path: Path):
    """CIFAR-100 step ρ=200 keeps 2 images in each of its 50 minority classes: K = 3 leaves them out (named
    in the notes); a held-out split leaving fewer than two classes is refused before any candidate trains."""
    trained = []

    def train(config, run_dir, resume):
        trained.append(run_dir)
        raise AssertionError("nothing may train")

    left = [{"class": c, "name": str(c), "count": 2} for c in range(1, 100)]
    one = {"heldout_per_class": 3, "classes_tuned_on": [{"class": 0, "name": "0", "count": 500}],
           "classes_left_out": left}
    plan = runner.make_plan("cdt-table7", seeds=[0], out=tmp_path)
    plan.rows = [r for r in plan.rows if (r.row.setting, r.row.method, r.row.posthoc) == ("cifar100-step200", "rw", None)]
    from longtail.data.subset import require_tunable

    def classes_fn(config):
        require_tunable(one, "the held-out split")
        raise AssertionError("unreachable")

    (result,) = runner.execute(plan, train=train, log=lambda m: None, classes_fn=classes_fn)
    assert trained == [] and "leaves 1 class(es) to tune on (need at least 2)" in result.failed
    assert "1 (1, 2), 2 (2, 2)" in result.failed
