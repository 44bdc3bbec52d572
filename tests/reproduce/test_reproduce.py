"""Tables, the papers' numbers, the dry-run plan, the markdown writer and one tiny end-to-end reproduce."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from longtail.cli import main
from longtail.errors import ConfigError
from longtail.reproduce import runner
from longtail.reproduce.tables import TABLES, Row, paper_number, table_rows, variant_path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def _writers():
    name = "longtail_test_data_writers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "data" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
    for path in CONFIGS.rglob("*.yaml"):
        rel = str(path.relative_to(CONFIGS))
        if rel.startswith(("_base/", "fashion-mnist-lt/", "fashion-mnist-lt-500/", "classifier-retraining/")) or path.name.startswith("_") or path.name.count(".") > 1:
            continue  # bases, the engine's benchmark, second stages of another run, variants (a.paper.yaml / a.300ep.yaml)
        assert rel in used, f"configs/{rel} is not used by any table row"


def test_every_variant_has_its_base_config():
    for path in CONFIGS.rglob("*.*.yaml"):
        stem, variant, _ = path.name.rsplit(".", 2)
        assert variant in ("paper", "300ep")
        assert (path.parent / f"{stem}.yaml").is_file()
        assert variant_path(str(path.parent / f"{stem}.yaml"), variant) == str(path)


def test_post_hoc_rows_use_held_out_runs():
    from longtail.config import load_config

    for rows in TABLES.values():
        for row in rows:
            if row.posthoc in ("tau-norm", "nc-tau") and row.config and row.tune is None:
                assert load_config(CONFIGS / row.config).data.heldout_per_class > 0, row


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
    assert cb.config == "cifar10-lt/step100/cb-focal.yaml" and cb.paper == (61.9,) and cb.variants == ()
    for table in TABLES.values():
        for r in table:
            assert len(r.paper) == len(r.metrics), r
    spec = importlib.util.spec_from_file_location("longtail_make_configs_t", REPO / "tools" / "make_configs.py")
    generator = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generator
    spec.loader.exec_module(generator)
    written = {str(p) for p in generator.files() if "_" not in (p.name[0], p.parts[0][0]) and p.name.count(".") == 1}
    named = {r.config for t in TABLES.values() for r in t if r.config} | {
        r.tune.heldout_config for t in TABLES.values() for r in t if r.tune} | {
        r.pretrain for t in TABLES.values() for r in t if r.pretrain}
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
    assert [run.run_dir for run in erm_tau.runs] == [run.run_dir for run in erm_ncm.runs]
    assert erm_tau.runs[1].run_dir == tmp_path / "cifar10-lt/exp100/erm-heldout/seed-1"
    assert erm_tau.runs[0].overrides == ("train.epochs=2",)
    # 6 settings x 4 methods x (plain + held-out run) x 2 seeds
    assert len(plan.unique_runs()) == 6 * 4 * 2 * 2
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


TINY = ["train.epochs=1", "data.imbalance_ratio=4", "data.heldout_per_class=2", "optim.batch_size=32",
        "optim.warmup_epochs=0", "data.workers=0", "runtime.device=cpu", "eval.every=1"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tiny_cifar: Path) -> tuple[Path, list]:
    """The ERM rows of CDT Table 6 (plain, τ-norm, N_c^τ, NCM) on tiny CIFAR-10, one epoch per run."""
    out = tmp_path_factory.mktemp("reproduce")
    plan = runner.make_plan("cdt-table6", seeds=[0], out=out, data_root=tiny_cifar, overrides=TINY)
    plan.rows = [r for r in plan.rows if r.row.setting == "cifar10-exp100" and r.row.method == "erm"]
    return out, runner.execute(plan, log=lambda m: None)


def test_real_reproduce_with_post_hoc_rows(real_run):
    """`longtail reproduce` end to end on tiny CIFAR-10 files: the real trainer and `longtail eval`."""
    tmp_path, results = real_run
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
    """On a real (one-epoch) run: the N_c^τ row equals argmax_c (w_cᵀ f + b_c) / n_c^τ written out in
    float64 with the τ it reports (the rule's default bias="scale"); τ = argmax of the held-out balanced
    accuracy over the rule's grid; the held-out balanced accuracy is the mean per-class accuracy."""
    import torch

    from longtail.metrics import balanced_accuracy

    tmp_path, results = real_run
    result = results[2]
    assert result.row.posthoc == "nc-tau"
    tau = float(result.chosen[0].removeprefix("τ="))
    features = runner.load_features(tmp_path / "cifar10-lt/exp100/erm-heldout/seed-0")
    counts = torch.tensor(features.class_counts, dtype=torch.float64)
    w = features.head.class_weight_matrix().detach().double()
    b = features.head.bias.detach().double()

    def nc_tau(f, t):
        return (f.double() @ w.t() + b) / counts.pow(t)

    f, y = features.test
    assert f.shape == (40, 64)
    expected = float((nc_tau(f, tau).argmax(1) == y).double().mean())
    assert result.per_seed[0]["top1"] == pytest.approx(100 * expected)
    hf, hy = features.heldout
    grid = [i / 20 for i in range(21)]
    held = [balanced_accuracy(hy, nc_tau(hf, t).argmax(1)) for t in grid]
    assert held[grid.index(tau)] == pytest.approx(max(held))
    logits = features.head(hf)
    per_class = [float((logits.argmax(1)[hy == c] == c).double().mean()) for c in hy.unique()]
    assert runner.heldout_balanced_accuracy(features) == pytest.approx(sum(per_class) / len(per_class))


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
                                                        "places-lt/cdt.yaml", "places-lt/erm-heldout.yaml"}
