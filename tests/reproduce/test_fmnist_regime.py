"""benchmarks/fmnist_lt_regime.py: the plan, the report from hand-written finished runs, the orderings
text (gap in pooled stds), missing seeds, and --report-only / --dry-run never training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from _testload import load_file

REPO = Path(__file__).resolve().parents[2]


regime = load_file("benchmarks/fmnist_lt_regime.py")


def write_run(run_dir: Path, balanced: float, groups: tuple[float, float, float], train_acc: float,
              seconds: float) -> None:
    """A finished full run: results.json (fractions) and metrics.jsonl (two epochs, the last one counts)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    many, medium, few = groups
    results = {"balanced_accuracy": balanced, "top1": balanced,
               "groups": {"many": {"accuracy": many}, "medium": {"accuracy": medium}, "few": {"accuracy": few}},
               "timing": {"train_seconds": seconds}}
    (run_dir / "results.json").write_text(json.dumps(results))
    (run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_acc": 0.1}) + "\n"
                                           + json.dumps({"epoch": 2, "train_acc": train_acc}) + "\n")


def write_candidate(run_dir: Path, heldout_balanced: float) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps({"heldout": {"balanced_accuracy": heldout_balanced}}))


def test_plan_names_every_run(tmp_path):
    plan = regime.make_plan(tmp_path / "runs", tmp_path / "tune", [0, 1])
    dirs = [run.run_dir.relative_to(tmp_path).as_posix() for _, _, run in plan.plain]
    expected = [f"runs/{o}/{m}/seed-{s}" for o, ms in (("reversed", ("erm", "rw", "rs", "ldam", "ldam-drw")),
                                                     ("natural", ("erm", "ldam-drw"))) for m in ms for s in (0, 1)]
    assert dirs == expected
    from longtail.reproduce.runner import run_config

    methods = {"erm": ("ce", "none"), "rw": ("ce", "rw"), "rs": ("ce", "rs"), "ldam": ("ldam", "none"),
               "ldam-drw": ("ldam", "drw")}
    for order, method, run in plan.plain:
        config = run_config(run)
        assert (config.loss.name, config.rebalance.name) == methods[method]
        assert (config.data.n_max, config.data.imbalance_ratio, config.data.profile) == (500, 100, "exp")
        assert config.data.class_order == order
        assert config.train.epochs == 200 and config.data.heldout_per_class == 0
        assert config.runtime.num_threads == 1
    assert set(plan.tunes) == {"reversed", "natural"}
    for order, tplan in plan.tunes.items():
        assert [c.point for c in tplan.candidates] == [(0,), (0.1,), (0.2,), (0.3,), (0.4,)]
        run = tplan.candidates[2].runs[1]
        assert run.run_dir == tmp_path / "tune" / f"cdt-{order}" / "candidates" / "gamma-0.2" / "seed-1"
        config = run_config(run)
        assert config.loss.name == "cdt" and config.loss.params["gamma"] == 0.2
        assert config.data.heldout_per_class == 3 and config.eval.test is False
        assert config.data.class_order == order
        final = tplan.final_run((0.3,), 0)
        assert final.run_dir == tmp_path / "tune" / f"cdt-{order}" / "final" / "gamma-0.3" / "seed-0"
        assert run_config(final).eval.test is True and run_config(final).data.heldout_per_class == 0
    text = regime.format_plan(plan)
    # 7 plain × 2 seeds + 2 orders × (5 candidates × 2 seeds + 2 finals) = 14 + 24 runs, none done
    assert "Budget: 38 training runs (0 done)" in text
    budget = regime.budget(plan)
    # 1,236 images → 10 steps of 128 per epoch; candidates: 1,236 − 30 held out = 1,206 → 10 steps too
    assert budget["steps_left"] == 38 * 200 * 10


def test_budget_rate_is_the_fastest_finished_run_not_the_first(tmp_path):
    """A run that shared the machine (×8 slower) must not make the plan look ×8 longer; its median is named."""
    plan = regime.make_plan(tmp_path / "runs", tmp_path / "tune", [0])
    for (_, _, run), seconds in zip(plan.plain[:3], (8000.0, 400.0, 2000.0)):  # 2,000 steps each
        write_run(run.run_dir, 0.7, (0.9, 0.7, 0.5), 1.0, seconds)
    budget = regime.budget(plan)
    assert budget["done"] == 3 and budget["seconds_per_step"] == pytest.approx(0.2)
    assert budget["seconds_left"] == pytest.approx(budget["steps_left"] * 0.2)
    assert "fastest of 3 finished runs" in budget["rate_from"] and "median 1.000 s per step" in budget["rate_from"]


def _fake_tree(tmp_path: Path) -> tuple[Path, Path]:
    runs, tune = tmp_path / "runs", tmp_path / "tune"
    # reversed: ERM 2 seeds, LDAM 2 seeds, LDAM-DRW 1 of 2 seeds; RW / RS nothing; natural nothing
    write_run(runs / "reversed/erm/seed-0", 0.70, (0.90, 0.70, 0.50), 0.999, 3000.0)
    write_run(runs / "reversed/erm/seed-1", 0.72, (0.92, 0.72, 0.52), 1.0, 3600.0)
    write_run(runs / "reversed/ldam/seed-0", 0.74, (0.88, 0.74, 0.60), 0.98, 3300.0)
    write_run(runs / "reversed/ldam/seed-1", 0.76, (0.90, 0.76, 0.62), 0.99, 3300.0)
    write_run(runs / "reversed/ldam-drw/seed-0", 0.73, (0.85, 0.73, 0.61), 0.97, 3000.0)
    cdt = tune / "cdt-reversed"
    for seed in (0, 1):
        write_candidate(cdt / "candidates/gamma-0" / f"seed-{seed}", 0.6)
        write_candidate(cdt / "candidates/gamma-0.2" / f"seed-{seed}", 0.65)
    write_run(cdt / "final/gamma-0.2/seed-0", 0.71, (0.89, 0.71, 0.55), 1.0, 3100.0)
    write_run(cdt / "final/gamma-0.2/seed-1", 0.73, (0.91, 0.73, 0.57), 1.0, 3200.0)
    candidates = [{"point": {regime.GAMMA_KEY: g}, "mean": m, "std": s, "per_seed": [m, m],
                   "chosen": g == 0.2} for g, m, s in ((0, 0.60, 0.01), (0.1, 0.62, 0.02), (0.2, 0.65, 0.03),
                                                         (0.3, 0.64, 0.0), (0.4, 0.63, 0.01))]
    (cdt / "tune.json").write_text(json.dumps({"candidates": candidates,
                                               "choice": {"point": {regime.GAMMA_KEY: 0.2}}}))
    # natural: two finished candidates of the unfinished tune
    write_candidate(tune / "cdt-natural/candidates/gamma-0.1/seed-0", 0.80)
    write_candidate(tune / "cdt-natural/candidates/gamma-0.1/seed-1", 0.84)
    return runs, tune


def test_report_from_finished_runs(tmp_path):
    runs, tune = _fake_tree(tmp_path)
    plan = regime.make_plan(runs, tune, [0, 1])
    calls = []

    def fake_posthoc(full, rule, held, cache):
        calls.append((full.relative_to(tmp_path).as_posix(), rule, held.relative_to(tmp_path).as_posix()))
        bonus = {"nc-tau": 0.05, "tau-norm": 0.03, "ncm": 0.01}[rule]
        base = json.loads((full / "results.json").read_text())
        acc = base["balanced_accuracy"] + bonus
        return {"balanced_accuracy": acc, "param": 0.5 if rule != "ncm" else None,
                "groups": {g: {"accuracy": acc} for g in ("many", "medium", "few")}}

    out = tmp_path / "report"
    path = regime.write_report(plan, out, "cmd", log=lambda m: None, posthoc_fn=fake_posthoc, cpu="Test CPU")
    text = path.read_text()
    doc = json.loads((out / "fmnist-lt-regime.json").read_text())
    # ERM's τ from the γ = 0 candidate, CDT's from the chosen γ's candidate, both applied to the full run
    assert ("runs/reversed/erm/seed-0", "nc-tau", "tune/cdt-reversed/candidates/gamma-0/seed-0") in calls
    assert ("tune/cdt-reversed/final/gamma-0.2/seed-1", "tau-norm",
            "tune/cdt-reversed/candidates/gamma-0.2/seed-1") in calls
    assert len(calls) == 2 * 3 * 2  # (ERM, CDT) × 3 rules × 2 seeds; natural has no finished full run
    assert "CPU: Test CPU" in text

    reversed_table = text.split("## reversed")[1].split("## natural")[0]

    def row(label):
        (line,) = [x for x in reversed_table.splitlines() if x.startswith(f"| {label} |")]
        return [c.strip() for c in line.strip("|").split("|")]

    erm = row("ERM")
    # balanced 70, 72 → 71.00 ± 1.41; train acc 99.9, 100 → 99.95 ± 0.07; minutes 50, 60 → median 55.0 (50.0–60.0)
    assert erm[1] == f"71.00 ± {math.sqrt(2):.2f}"
    assert erm[5] == f"99.95 ± {math.sqrt(0.005):.2f}"
    assert erm[6] == "55.0 (50.0–60.0)"
    assert erm[7] == "2"
    assert row("LDAM-DRW")[1:2] == ["73.00"] and row("LDAM-DRW")[7] == "1/2"
    assert row("RW")[1] == "—" and row("RW")[7] == "0/2"
    assert row("CDT")[1] == f"72.00 ± {math.sqrt(2):.2f}"
    assert row("ERM + N_c^τ")[1] == f"76.00 ± {math.sqrt(2):.2f}"
    assert doc["rows"]["reversed"]["erm+nc-tau"]["1"]["train_acc"] == pytest.approx(100.0)
    # orderings: LDAM-DRW has one seed → no pooled std for that step; LDAM−ERM = +4 pts, pooled std √2
    lines = doc["orderings"]
    assert lines[0] == ("- reversed: ERM < LDAM < LDAM-DRW: NOT HELD on the means only (not judged: fewer than 2 seeds) — LDAM − ERM = +4.00 pts "
                        f"(+{4 / math.sqrt(2):.1f} pooled std); LDAM-DRW − LDAM = -2.00 pts "
                        "(pooled std n/a (fewer than 2 seeds)) [seeds 2/2/1]")
    assert lines[1].startswith("- reversed: ERM < CDT: HELD — CDT − ERM = +1.00 pts (+0.7 pooled std)")
    assert lines[2].startswith("- reversed: ERM < ERM + N_c^τ: HELD — ERM + N_c^τ − ERM = +5.00 pts (+3.5 pooled std)")
    # the natural order trains no LDAM: its chain is ERM < LDAM-DRW, not "not measured (… LDAM …)"
    assert lines[3] == "- natural: ERM < LDAM-DRW: not measured (no finished runs of ERM, LDAM-DRW)"
    assert [name for name, _ in regime.order_claims("natural")] == ["ERM < LDAM-DRW", "ERM < CDT", "ERM < ERM + N_c^τ"]
    assert [name for name, _ in regime.order_claims("reversed")] == [name for name, _ in regime.CLAIMS]
    # the tune tables: the finished one from tune.json, the natural one from its finished candidates
    assert "| 0.2 | 65.00 ± 3.00 | 2/2 | **chosen** |" in text
    natural = text.split("## CDT γ tune, natural")[1]
    assert "tune not finished" in natural.splitlines()[0]
    assert f"| 0.1 | 82.00 ± {100 * math.sqrt(0.0008):.2f} | 2/2 |  |" in natural
    assert "| 0 | — | 0/2 |  |" in natural
    missing = "\n".join(doc["missing"])
    assert "reversed ldam-drw seed 1" in missing and "natural cdt: the γ tune" in missing


def test_pooled_std_and_claims():
    assert regime.pooled_std([1.0, 3.0], [2.0, 6.0]) == pytest.approx(math.sqrt((2 + 8) / 2))
    assert regime.pooled_std([1.0, 2.0, 3.0], [5.0, 5.0]) == pytest.approx(math.sqrt(2 / 3))
    assert regime.pooled_std([1.0], [2.0, 3.0]) is None
    rows = {"erm": {"0": {"balanced_accuracy": 80.0}, "1": {"balanced_accuracy": 82.0}},
            "cdt": {"0": {"balanced_accuracy": 79.0}, "1": {"balanced_accuracy": 79.0}}}
    line = regime.claim_line("reversed", "ERM < CDT", ("erm", "cdt"), rows)
    # gap −2, pooled std √((2 + 0) / 2) = 1
    assert line == "- reversed: ERM < CDT: NOT HELD — CDT − ERM = -2.00 pts (-2.0 pooled std) [seeds 2/2]"
    rows["cdt"] = {"0": {"balanced_accuracy": 81.0}}
    # equal means do not hold; one seed has no std
    assert regime.claim_line("r", "x", ("erm", "cdt"), rows) == \
        "- r: x: NOT HELD on the means only (not judged: fewer than 2 seeds) — CDT − ERM = +0.00 pts (pooled std n/a (fewer than 2 seeds)) [seeds 2/1]"
    rows["cdt"] = {}
    assert "not measured (no finished runs of CDT)" in regime.claim_line("r", "x", ("erm", "cdt"), rows)


def test_report_only_and_dry_run_train_nothing(tmp_path, monkeypatch, capsys):
    from longtail import tune
    from longtail.reproduce import runner

    def refuse(*args, **kwargs):
        raise AssertionError("--report-only / --dry-run must not train")

    monkeypatch.setattr(tune, "train_runs", refuse)
    monkeypatch.setattr(tune, "run_tune", refuse)
    monkeypatch.setattr(runner, "ensure_trained", refuse)
    runs, tune_root = tmp_path / "runs", tmp_path / "tune"
    write_run(runs / "natural/erm/seed-0", 0.8, (0.9, 0.8, 0.7), 1.0, 60.0)
    out = tmp_path / "out"
    assert regime.main(["--dry-run", "--runs-root", str(runs), "--tune-root", str(tune_root), "--out", str(out)]) == 0
    assert not out.exists()
    assert "Budget: 57 training runs (1 done)" in capsys.readouterr().out
    assert regime.main(["--report-only", "--runs-root", str(runs), "--tune-root", str(tune_root),
                        "--out", str(out), "--seeds", "0,1,2"]) == 0
    text = (out / "fmnist-lt-regime.md").read_text()
    natural = text.split("## natural")[1]
    assert "| ERM | 80.00 | 90.00 | 80.00 | 70.00 | 100.00 | 1.0 | 1/3 |" in natural
    assert not (runs / "reversed").exists() and not tune_root.exists()
    assert regime.main(["--report-only", "--seeds", "0,0", "--runs-root", str(runs)]) == 2
    assert "distinct" in capsys.readouterr().err
    assert regime.main(["--jobs", "0", "--runs-root", str(runs)]) == 2


def learnable_idx_set(root: Path, per_class: int, test_per_class: int) -> Path:
    """Fashion-MNIST-format files whose class is visible (a bright band at a class-dependent row) under noise."""
    import numpy as np

    idx_bytes = load_file("tests/data/conftest.py").idx_bytes
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for prefix, n in (("train", per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        rng.shuffle(labels)
        images = rng.integers(0, 120, size=(labels.size, 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c: 4 + 2 * c, :] = 255
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    return root


def test_posthoc_tau_from_the_heldout_twin(tmp_path, monkeypatch):
    """N_c^τ of a full run with τ chosen on its held-out twin's held-out split (``--tau-from``), checked
    against the rule written out in float64: τ = argmax over the grid of the twin's held-out balanced
    accuracy of argmax_c z_c / n_c^τ (ties: closest to 0, then smaller), applied with the full run's counts."""
    import torch

    from longtail.config import load_config
    from longtail.engine.trainer import fit
    from longtail.inference.loading import load_trained_run

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = learnable_idx_set(tmp_path / "fmnist", per_class=40, test_per_class=6)
    tiny = [f"data.root={root}", "data.n_max=20", "data.imbalance_ratio=5", "train.epochs=4", "data.augment=false",
            "optim.warmup_epochs=0", "optim.milestones=[]", "optim.batch_size=32", "runtime.num_threads=1",
            "runtime.progress=none", "eval.many_threshold=10", "eval.few_threshold=6"]
    cdt = REPO / "configs" / "fashion-mnist-lt-500" / "cdt.yaml"
    full, held = tmp_path / "full", tmp_path / "held"
    fit(load_config(REPO / "configs/fashion-mnist-lt-500/erm.yaml", tiny), full)
    fit(load_config(cdt, [*tiny, "loss.params.gamma=0", "data.heldout_per_class=2", "eval.test=false"]), held)
    cache = tmp_path / "cache" / "seed-0.json"
    result = regime.posthoc_numbers(full, "nc-tau", held, cache)

    def balanced(labels, predictions):
        classes = sorted(set(labels.tolist()))
        return sum(float((predictions[labels == c] == c).double().mean()) for c in classes) / len(classes)

    twin = load_trained_run(held)
    f, _, y = twin.outputs("heldout")
    head = twin.model.head
    w, b = head.class_weight_matrix().double().detach(), head.bias.double().detach()
    counts = torch.tensor(twin.class_counts, dtype=torch.float64)
    grid = [round(0.05 * i, 10) for i in range(21)]
    scores = [balanced(y, ((f.double() @ w.T + b) / counts**tau).argmax(1)) for tau in grid]
    best = max(scores)
    tau = min((t for t, s in zip(grid, scores) if abs(s - best) <= 1e-12), key=lambda t: (abs(t), t))
    assert len(set(scores)) > 1  # the held-out score depends on τ: the choice is exercised
    assert [row["balanced_accuracy"] for row in result["tuning"]] == pytest.approx(scores)
    assert result["param"] == pytest.approx(tau)
    run = load_trained_run(full)
    f, _, y = run.outputs("test")
    w, b = run.model.head.class_weight_matrix().double().detach(), run.model.head.bias.double().detach()
    counts = torch.tensor(run.class_counts, dtype=torch.float64)
    assert result["balanced_accuracy"] == pytest.approx(balanced(y, ((f.double() @ w.T + b) / counts**tau).argmax(1)))
    assert str(held) in result["param_source"] and cache.is_file()
    # the same choice and numbers as `longtail eval FULL --posthoc nc-tau --tau-from HELD` (which writes into FULL)
    from longtail.posthoc.evaluate import evaluate_run

    evaluated = evaluate_run(full, "nc-tau", tau_from=held)
    assert evaluated["param"] == pytest.approx(result["param"])
    assert evaluated["balanced_accuracy"] == pytest.approx(result["balanced_accuracy"])
    ncm_cache = tmp_path / "cache" / "ncm.json"
    ncm = regime.posthoc_numbers(full, "ncm", tmp_path / "no-twin", ncm_cache)  # NCM has no τ: no twin read
    assert ncm["param"] is None and ncm["heldout_run"] is None
    # cached: a second call does not reload the runs
    monkeypatch.setattr("longtail.inference.loading.load_trained_run", lambda *a, **k: pytest.fail("reloaded"))
    assert regime.posthoc_numbers(full, "nc-tau", held, cache) == json.loads(cache.read_text())
    assert regime.posthoc_numbers(full, "ncm", tmp_path / "no-twin", ncm_cache) == json.loads(ncm_cache.read_text())


def test_full_mode_trains_through_the_library_with_stand_ins(tmp_path):
    """``train_all``: the plain runs and both CDT tunes go through ``longtail.tune`` (stand-in trainer,
    features and classes); the γ whose held-out features are right is chosen, its finals are trained, and
    the report reads them from tune.json."""
    import torch

    from longtail.tune import HeldoutClasses

    trained = []

    def ensure(run):
        trained.append(run.run_dir.relative_to(tmp_path).as_posix())
        if "candidates" in run.run_dir.parts:
            write_candidate(run.run_dir, 0.5)
        else:
            write_run(run.run_dir, 0.6 + 0.01 * run.seed, (0.8, 0.6, 0.4), 1.0, 120.0)
        return json.loads((run.run_dir / "results.json").read_text())

    head = torch.nn.Linear(10, 10, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(10))
    labels = torch.arange(10)

    def features(run_dir):
        right = "gamma-0.2" in run_dir.parts  # only γ = 0.2's model classifies the held-out split
        f = torch.eye(10) if right else torch.eye(10)[torch.zeros(10, dtype=torch.long)]
        return type("F", (), {"heldout": (f, labels), "head": head, "train": (f, labels), "class_counts": [5] * 10})()

    classes = HeldoutClasses(3, [{"class": c, "name": str(c), "count": 9} for c in range(10)], [])
    plan = regime.make_plan(tmp_path / "runs", tmp_path / "tune", [0, 1])
    failures = regime.train_all(plan, 1, log=lambda m: None, ensure=ensure, features_fn=features,
                                classes_fn=lambda config: classes)
    assert failures == []
    finals = sorted({t for t in trained if "/final/" in t})  # run_tune asks a stand-in twice for a final
    assert finals == [f"tune/cdt-{o}/final/gamma-0.2/seed-{s}" for o in ("natural", "reversed") for s in (0, 1)]
    assert len([t for t in trained if "/candidates/" in t]) == 2 * 5 * 2
    assert len([t for t in trained if t.startswith("runs/")]) == 7 * 2
    doc = json.loads((tmp_path / "tune/cdt-reversed/tune.json").read_text())
    assert doc["choice"]["point"] == {regime.GAMMA_KEY: 0.2}
    path = regime.write_report(plan, tmp_path / "out", log=lambda m: None,
                               posthoc_fn=lambda full, rule, held, cache: json.loads((full / "results.json").read_text()),
                               cpu="x")
    text = path.read_text()
    assert f"| CDT | 60.50 ± {math.sqrt(0.5):.2f} |" in text
    assert "| 0.2 | 100.00 ± 0.00 | 2/2 | **chosen** |" in text and "| 0 | 10.00 ± 0.00 | 2/2 |  |" in text


def _md_section(text: str, title: str) -> str:
    return text.split(title)[1].split("\n## ")[0]


def test_diagnostics_section_from_the_analysis_cached(tmp_path, monkeypatch):
    """ERM vs CDT of the first seed analysed by the library into OUT/analysis-<order> (tiny trained runs):
    the markdown's per-class numbers (head → tail, with N_c) are analysis.json's, the .json holds them too;
    a second report reuses the analysis, a newer results.json re-runs it; an order without a CDT final
    says which run is missing."""
    import os

    import torch

    import longtail.analysis.collect as collect_module
    from longtail.analysis.report import spearman
    from longtail.config import load_config
    from longtail.data.profiles import longtail_counts
    from longtail.engine.trainer import fit

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    root = learnable_idx_set(tmp_path / "fmnist", per_class=24, test_per_class=4)
    tiny = [f"data.root={root}", "data.n_max=12", "data.imbalance_ratio=4", "train.epochs=2", "data.augment=false",
            "optim.warmup_epochs=0", "optim.milestones=[]", "optim.batch_size=32", "runtime.num_threads=1",
            "runtime.progress=none", "eval.many_threshold=10", "eval.few_threshold=5"]
    configs = REPO / "configs" / "fashion-mnist-lt-500"
    runs, tune = tmp_path / "runs", tmp_path / "tune"
    erm_dir = runs / "reversed/erm/seed-0"
    cdt_dir = tune / "cdt-reversed/final/gamma-0.2/seed-0"
    fit(load_config(configs / "erm.yaml", tiny), erm_dir)
    fit(load_config(configs / "cdt.yaml", [*tiny, "loss.params.gamma=0.2"]), cdt_dir)
    (tune / "cdt-reversed/tune.json").write_text(json.dumps(
        {"candidates": [{"point": {regime.GAMMA_KEY: 0.2}, "mean": 0.5, "std": None, "per_seed": [0.5],
                         "chosen": True}], "choice": {"point": {regime.GAMMA_KEY: 0.2}}}))
    write_run(runs / "natural/erm/seed-0", 0.8, (0.9, 0.8, 0.7), 1.0, 60.0)  # natural: no tune, no CDT final
    plan = regime.make_plan(runs, tune, [0, 1])
    calls = []
    real_analyze_run = collect_module.analyze_run

    def counting(run_dir, **kwargs):
        calls.append((Path(run_dir), kwargs["name"], kwargs["rounds"]))
        return real_analyze_run(run_dir, **kwargs)

    monkeypatch.setattr(collect_module, "analyze_run", counting)
    out = tmp_path / "out"

    def report():
        regime.write_report(plan, out, "cmd", log=lambda m: None, cpu="x",
                            posthoc_fn=lambda full, rule, held, cache: json.loads((full / "results.json").read_text()))
        return (out / "fmnist-lt-regime.md").read_text(), json.loads((out / "fmnist-lt-regime.json").read_text())

    text, doc = report()
    assert calls == [(erm_dir, "ERM", regime.ANALYSIS_ROUNDS), (cdt_dir, "CDT", regime.ANALYSIS_ROUNDS)]
    analysis_dir = out / "analysis-reversed"
    assert (analysis_dir / "report.html").is_file() and (analysis_dir / "classifier_norms.png").is_file()
    erm, cdt = json.loads((analysis_dir / "analysis.json").read_text())["runs"]
    assert [erm["name"], cdt["name"]] == ["ERM", "CDT"]
    counts = erm["class_counts"]
    # exp profile N_max 12, ρ 4, reversed order: T-shirt/top (class 0) the smallest
    assert sorted(counts, reverse=True) == longtail_counts(10, 12, 4, "exp", 0.5) and counts[0] == min(counts)
    section = _md_section(text, "## Diagnostics (seed 0, ERM vs CDT (γ = 0.2)), reversed")
    assert "[report](analysis-reversed/report.html)" in section
    assert f"K = {min(counts)} sub-sampled" in section and "R = 1000 draws" in section
    table = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
             if line.startswith("| ") and not line.startswith("| class")]
    head_to_tail = sorted(range(10), key=lambda c: (-counts[c], c))
    assert [row[0] for row in table] == [erm["class_names"][c] for c in head_to_tail]
    assert [int(row[1]) for row in table] == sorted(counts, reverse=True)
    for row, c in zip(table, head_to_tail):
        assert row[2:] == [f"{erm['classifier_norms'][c]:.3f}", f"{cdt['classifier_norms'][c]:.3f}",
                           f"{erm['feature_deviation'][c]:.3f}", f"{cdt['feature_deviation'][c]:.3f}"]
    rho = spearman(counts, erm["classifier_norms"])
    assert f"‖w_c‖ ERM {rho:.2f}, CDT {spearman(counts, cdt['classifier_norms']):.2f}" in section
    entry = doc["diagnostics"]["reversed"]
    assert entry["runs"] == {"erm": str(erm_dir), "cdt": str(cdt_dir)} and entry["gamma"] == 0.2
    assert [r["class"] for r in entry["classes"]] == head_to_tail
    assert [r["norm"]["cdt"] for r in entry["classes"]] == [cdt["classifier_norms"][c] for c in head_to_tail]
    assert [r["feature_deviation"]["erm"] for r in entry["classes"]] == \
        [erm["feature_deviation"][c] for c in head_to_tail]
    assert entry["spearman"]["norm"]["erm"] == rho
    # the CDT norms are not the ERM norms: two different runs were read
    assert [r["norm"]["erm"] for r in entry["classes"]] != [r["norm"]["cdt"] for r in entry["classes"]]
    natural = _md_section(text, "## Diagnostics (seed 0, ERM vs CDT), natural")
    assert "Not analysed: the CDT γ tune in" in natural and "has not chosen γ yet" in natural
    assert doc["diagnostics"]["natural"]["classes"] == [] and not (out / "analysis-natural").exists()

    # cached: the second report does not analyse again and reads the same numbers
    stamp = (analysis_dir / "analysis.json").stat().st_mtime_ns
    calls.clear()
    text2, doc2 = report()
    assert calls == [] and (analysis_dir / "analysis.json").stat().st_mtime_ns == stamp
    assert _md_section(text2, "## Diagnostics (seed 0, ERM vs CDT (γ = 0.2)), reversed") == section
    # a run finished (again) after the analysis, or another run in its place: analysed again
    analysed = []

    def recording(run_dirs, names, out_dir, data_root=None, log=print):
        analysed.append(list(run_dirs))
        return out_dir / "report.html"

    tunes = {"reversed": {"chosen": 0.2}, "natural": {"chosen": None}}
    regime.diagnostics(plan, out, tunes, log=lambda m: None, analysis_fn=recording)
    assert analysed == []
    later = (analysis_dir / "analysis.json").stat().st_mtime + 10
    os.utime(cdt_dir / "results.json", (later, later))
    regime.diagnostics(plan, out, tunes, log=lambda m: None, analysis_fn=recording)
    assert analysed == [[erm_dir, cdt_dir]]
    os.utime(cdt_dir / "results.json", (later - 20, later - 20))
    other = tune / "cdt-reversed/final/gamma-0.1/seed-0"
    write_run(other, 0.7, (0.9, 0.7, 0.5), 1.0, 60.0)
    os.utime(other / "results.json", (later - 20, later - 20))
    regime.diagnostics(plan, out, {**tunes, "reversed": {"chosen": 0.1}}, log=lambda m: None, analysis_fn=recording)
    assert analysed[1:] == [[erm_dir, other]]


def test_diagnostics_name_the_missing_run(tmp_path):
    """No analysis without both runs of the first seed: the chosen γ's final run or the ERM run missing is
    named; an analysis that fails is reported, not raised."""
    from longtail.errors import LongtailError

    runs, tune = tmp_path / "runs", tmp_path / "tune"
    write_run(runs / "reversed/erm/seed-1", 0.7, (0.9, 0.7, 0.5), 1.0, 60.0)  # seed 1 is not the first seed
    write_run(runs / "natural/erm/seed-0", 0.7, (0.9, 0.7, 0.5), 1.0, 60.0)
    write_run(tune / "cdt-natural/final/gamma-0.1/seed-0", 0.7, (0.9, 0.7, 0.5), 1.0, 60.0)
    plan = regime.make_plan(runs, tune, [0, 1])
    tunes = {"reversed": {"chosen": 0.3}, "natural": {"chosen": 0.1}}

    def failing(run_dirs, names, out_dir, data_root=None, log=print):
        raise LongtailError("data.root /nowhere does not exist; pass --data-root")

    result = regime.diagnostics(plan, tmp_path / "out", tunes, log=lambda m: None, analysis_fn=failing)
    assert result["reversed"]["missing"] == [
        f"the ERM run {runs / 'reversed/erm/seed-0'} is not finished",
        f"the CDT final run {tune / 'cdt-reversed/final/gamma-0.3/seed-0'} is not finished"]
    assert result["natural"]["missing"] == [] and "pass --data-root" in result["natural"]["error"]
    lines = "\n".join(regime.diagnostics_markdown("reversed", result["reversed"]))
    assert lines.startswith("## Diagnostics (seed 0, ERM vs CDT (γ = 0.3)), reversed")
    assert f"Not analysed: the ERM run {runs / 'reversed/erm/seed-0'} is not finished; the CDT final run" in lines
    assert "`longtail analyze` failed: data.root /nowhere" in "\n".join(
        regime.diagnostics_markdown("natural", result["natural"]))
