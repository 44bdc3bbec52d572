"""The analysis tables of `longtail reproduce`: CDT Table 1, LDAM Fig. 6 and CDT's ERM-PD."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from _testload import load_file
from longtail.reproduce import runner
from longtail.reproduce.tables import TABLES, paper_number


def _writers():
    return load_file("tests/data/conftest.py")


def test_cdt_table1_as_printed_with_the_test_mean_row_a_diagnostic():
    table = TABLES["cdt-table1"]
    assert "Table 1" in table.source and len(table) == 12
    printed = {  # CDT paper, Table 1: ERM, re-sampling, re-weighting, CDT
        "linear": (71.1, 71.2, 72.6, 79.4), "train": (77.0, 72.3, 77.0, 78.8), "test": (79.5, 75.8, 79.3, 79.4)}
    for i, method in enumerate(("erm", "rs", "rw", "cdt")):
        assert paper_number("cdt-table1", "cifar10-exp100", method) == printed["linear"][i]
        assert paper_number("cdt-table1", "cifar10-exp100", method, "ncm") == printed["train"][i]
        assert paper_number("cdt-table1", "cifar10-exp100", method, None, "top1", "ncm-test-means") == printed["test"][i]
    diag = [r for r in table if r.diagnostic]
    assert len(diag) == 4 and all("not a model" in r.label and r.posthoc is None for r in diag)
    # the training-mean row is the NCM rule on the FULL run (no held-out run: NCM has no parameter)
    assert all(not r.config.endswith("-heldout.yaml") for r in table)


def test_fig6_rows_keep_a_pre_annealing_snapshot_in_their_own_run_directory(tmp_path):
    plan = runner.make_plan("ldam-fig6", seeds=[0], out=tmp_path)
    assert [p.row.method for p in plan.rows] == ["erm", "cb-rw", "cb-rs"]
    (run,) = plan.rows[0].runs
    assert "analysis.track_every=160" in run.overrides
    assert run.run_dir == tmp_path / "cifar10-lt/exp100/erm/track_every-160/seed-0"
    text = runner.format_plan(plan)
    assert "diagnostic pre-annealing-probe" in text and "track_every-160" in text


def test_erm_pd_rows_start_from_the_pretraining_run_or_say_what_they_need(tmp_path):
    from longtail.config import ModelConfig

    plan = runner.make_plan("cdt-erm-pd", seeds=[0, 1], out=tmp_path)
    if not {"init_from", "freeze"} <= set(ModelConfig.__dataclass_fields__):
        assert all(p.config is None and "model.init_from and model.freeze" in p.skip_reason for p in plan.rows)
        return
    planned = plan.rows[0]
    assert [r.run_dir for r in planned.pretrain_runs] == [tmp_path / f"tiny-imagenet-32/resnet32/seed-{s}" for s in (0, 1)]
    for pre, run in zip(planned.pretrain_runs, planned.runs):
        assert f"model.init_from={pre.run_dir}" in run.overrides
    assert plan.unique_runs()[0] == planned.pretrain_runs[0]


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> Path:
    return _writers().write_cifar10(tmp_path_factory.mktemp("cifar"), per_class=24, test_per_class=4)


TINY = ["train.epochs=2", "data.imbalance_ratio=4", "optim.batch_size=32", "optim.warmup_epochs=0",
        "optim.milestones=[1]", "data.workers=0", "runtime.device=cpu", "runtime.precision=fp32", "eval.every=0"]


@pytest.mark.slow
def test_table1_and_fig6_end_to_end_on_tiny_cifar(tmp_path, tiny_cifar):
    """The ERM rows of CDT Table 1 and LDAM Fig. 6 on tiny CIFAR-10 files, recomputed independently."""
    from longtail.analysis.probes import linear_probe
    from longtail.data.datasets import load_split
    from longtail.engine.data import EvalData
    from longtail.engine.run import Run

    plan = runner.make_plan("cdt-table1", seeds=[0], out=tmp_path, data_root=tiny_cifar, overrides=TINY)
    plan.rows = [r for r in plan.rows if r.row.method == "erm"]
    linear, ncm, diag = runner.execute(plan, log=lambda m: None)
    assert not (linear.failed or ncm.failed or diag.failed)
    trained = Run.load_trained(tmp_path / "cifar10-lt/exp100/erm/seed-0", precision="fp32")
    test_f, test_z, test_y = trained.outputs("test")
    train_f, _, train_y = trained.outputs("train")

    def ncm_top1(fit_f, fit_y):  # written out: nearest mean of the l2-normalised features, float64
        fit_n = torch.nn.functional.normalize(fit_f.double(), dim=1)
        means = torch.stack([fit_n[fit_y == c].mean(0) for c in range(10)])
        pred = torch.cdist(torch.nn.functional.normalize(test_f.double(), dim=1), means).argmin(1)
        return 100.0 * float((pred == test_y).double().mean())

    assert linear.per_seed[0]["top1"] == pytest.approx(100.0 * float((test_z.argmax(1) == test_y).double().mean()))
    assert ncm.per_seed[0]["top1"] == pytest.approx(ncm_top1(train_f, train_y))
    assert diag.per_seed[0]["top1"] == pytest.approx(ncm_top1(test_f, test_y))
    text = runner.markdown_table("cdt-table1", [linear, ncm, diag], [0])
    assert "diagnostic, not a model" in text and "| 79.50 |" in text

    plan = runner.make_plan("ldam-fig6", seeds=[0], out=tmp_path, data_root=tiny_cifar,
                            overrides=[*TINY, "analysis.track_every=1"])
    plan.rows = plan.rows[:1]
    (probe,) = runner.execute(plan, log=lambda m: None)
    assert not probe.failed and probe.chosen[0] == "snapshot epoch 1"
    run_dir = tmp_path / "cifar10-lt/exp100/erm/track_every-160/seed-0"
    trained = Run.load_trained(run_dir, precision="fp32")
    trained.load_weights(run_dir / "snapshots" / "epoch-0001.pt")
    balanced = EvalData(load_split("cifar10", tiny_cifar, train=True), trained.data.info, torch.device("cpu"))
    f, _, y = trained.outputs(balanced)
    assert torch.bincount(y).tolist() == [24] * 10
    tf, _, ty = trained.outputs("test")
    assert probe.per_seed[0]["top1"] == pytest.approx(100.0 * linear_probe(f, y, tf, ty, 10)["top1"])


@pytest.mark.slow
def test_erm_pd_end_to_end_freezes_the_pretrained_backbone(tmp_path):
    """cdt-erm-pd on tiny files: the Tiny-ImageNet (32×32) run is trained first, the ERM-PD run starts from it
    with the backbone frozen — its backbone equals the pre-trained one exactly, only the new head learned."""
    from longtail.config import ModelConfig

    if not {"init_from", "freeze"} <= set(ModelConfig.__dataclass_fields__):
        pytest.skip("model.init_from / model.freeze are not in the schema")
    root = tmp_path / "data"
    _writers().write_cifar10(root, per_class=24, test_per_class=4)
    _writers().write_tiny_imagenet(root, per_class=4)
    plan = runner.make_plan("cdt-erm-pd", seeds=[0], out=tmp_path / "runs", data_root=root,
                            overrides=[o for o in TINY if not o.startswith("optim.milestones")])
    plan.rows = [r for r in plan.rows if (r.row.setting, r.row.method) == ("cifar10-exp100", "erm-pd")]
    (result,) = runner.execute(plan, log=lambda m: None)
    assert not result.failed and 0.0 <= result.per_seed[0]["top1"] <= 100.0
    pre = torch.load(tmp_path / "runs/tiny-imagenet-32/resnet32/seed-0/checkpoints/ckpt-0002.pt", weights_only=True)
    pd = torch.load(tmp_path / "runs/cifar10-lt/exp100/erm-pd/seed-0/checkpoints/ckpt-0002.pt", weights_only=True)
    backbone = [k for k in pd["model"] if k.startswith("backbone.")]
    assert backbone and all(torch.equal(pd["model"][k], pre["model"][k]) for k in backbone)
    assert pd["model"]["head.weight"].shape[0] == 10 != pre["model"]["head.weight"].shape[0]
    assert pd["config"]["model"]["freeze"] == "backbone" and pd["config"]["data"]["augment"] is False
