"""Packed training (engine.packed): K runs trained as one batched model give each run what it gets
alone — parameters within 1e-4 (relative) of the solo run after 20 fp32 steps —, independent random
streams, exact resume, and the `--seeds ... --pack K` command."""

from __future__ import annotations

import json

import pytest
import torch

from longtail.config import load_config
from longtail.engine.checkpoint import latest_checkpoint, list_checkpoints
from longtail.engine.packed import PackedModel, fit_packed, pack_incompatibility
from longtail.engine.trainer import fit
from longtail.errors import ConfigError

# 118 training images, batch 32: 4 steps per epoch, 5 epochs = 20 steps.
STEPS_20 = {"epochs": 5, "checkpoint_keep": 5}
LDAM_DRW = {"loss": {"name": "ldam"}, "rebalance": {"name": "drw", "params": {"start_epoch": 3}}}


@pytest.fixture
def make_config(write_config, tmp_path):
    def make(seed: int = 0, channels_last: bool = False, **sections):
        sections.setdefault("train", {})
        sections["train"] = {**STEPS_20, "seed": seed, **sections["train"]}
        sections.setdefault("model", {"name": "resnet32", "head": "normed-linear"})
        runtime = {"progress": "none", "num_threads": 1, "precision": "fp32", "channels_last": channels_last}
        sections["runtime"] = {**runtime, **sections.get("runtime", {})}
        return load_config(write_config(f"config-{len(list(tmp_path.glob('config-*')))}.yaml", **sections))

    return make


def _model(run_dir):
    return torch.load(latest_checkpoint(run_dir / "checkpoints"), weights_only=True)["model"]


def _relative_difference(a: dict, b: dict) -> float:
    """‖θ_a − θ_b‖ / ‖θ_b‖ over all parameters (running statistics excluded), in float64."""
    keys = [k for k in b if b[k].is_floating_point() and "running_" not in k]
    va = torch.cat([a[k].double().flatten() for k in keys])
    vb = torch.cat([b[k].double().flatten() for k in keys])
    return float((va - vb).norm() / vb.norm())


def _results(run_dir):
    data = json.loads((run_dir / "results.json").read_text())
    data.pop("timing")
    return data


def test_packed_forward_and_gradients_equal_each_model_alone():
    from longtail.models import create_model

    models = [create_model("resnet32", num_classes=10, in_channels=1, seed=s) for s in (0, 1, 2)]
    packed = PackedModel(models)
    packed.train()
    packed.load_buffers()
    x = torch.randn(3, 8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (3, 8), generator=torch.Generator().manual_seed(1))
    _, logits = packed(x)
    sum(torch.nn.functional.cross_entropy(logits[k], y[k]) for k in range(3)).backward()
    grads = [{n: p.grad.clone() for n, p in m.named_parameters()} for m in models]
    packed.store_buffers()
    buffers = [{n: b.clone() for n, b in m.named_buffers()} for m in models]
    for k, model in enumerate(models):
        model.zero_grad()
        alone = create_model("resnet32", num_classes=10, in_channels=1, seed=k).train()
        _, single = alone(x[k])
        torch.testing.assert_close(logits[k].detach(), single.detach(), rtol=1e-5, atol=1e-6)
        torch.nn.functional.cross_entropy(single, y[k]).backward()
        for name, param in alone.named_parameters():
            torch.testing.assert_close(grads[k][name], param.grad, rtol=1e-4, atol=1e-6)
        for name, buffer in alone.named_buffers():  # batch-norm statistics stay each run's own
            torch.testing.assert_close(buffers[k][name], buffer, rtol=1e-5, atol=1e-6)
    assert not torch.equal(logits[0], logits[1])


def test_packed_runs_equal_solo_runs_after_20_steps(make_config, tmp_path):
    # two different methods and seeds in one pack: ERM (seed 0) and LDAM-DRW (seed 1)
    configs = [make_config(0), make_config(1, **LDAM_DRW)]
    packed = fit_packed(configs, [tmp_path / "p0", tmp_path / "p1"])
    for index, config in enumerate(configs):
        solo = fit(config, tmp_path / f"s{index}")
        assert _relative_difference(_model(tmp_path / f"p{index}"), _model(tmp_path / f"s{index}")) <= 1e-4
        assert packed[index]["balanced_accuracy"] == pytest.approx(solo["balanced_accuracy"], abs=0.02)
        lines = [json.loads(line) for line in (tmp_path / f"p{index}" / "metrics.jsonl").read_text().splitlines()]
        solo_lines = [json.loads(line) for line in (tmp_path / f"s{index}" / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5]
        assert [r["sampler"] for r in lines] == [r["sampler"] for r in solo_lines]
        assert [r["train_loss"] for r in lines] == pytest.approx([r["train_loss"] for r in solo_lines], rel=1e-4)
        assert packed[index]["timing"]["packed"] == 2
        assert packed[index]["fingerprint"] == solo["fingerprint"]
        assert packed[index]["seed"] == config.train.seed


def test_different_seeds_diverge_same_seed_twice_agrees(make_config, tmp_path):
    configs = [make_config(3, train={"epochs": 2}), make_config(4, train={"epochs": 2}), make_config(3, train={"epochs": 2})]
    fit_packed(configs, [tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    a, b, c = (_model(tmp_path / name) for name in "abc")
    assert _relative_difference(a, b) > 0.1  # other initialisation, sampler and augmentation draws
    assert _relative_difference(a, c) <= 1e-6  # the same seed in the same pack
    fit_packed(configs[:2], [tmp_path / "a2", tmp_path / "b2"])  # the same pack again: bit for bit
    assert all(torch.equal(v, _model(tmp_path / "a2")[k]) for k, v in a.items())
    assert _results(tmp_path / "b") == _results(tmp_path / "b2")


def test_resume_of_a_packed_run_is_exact(make_config, tmp_path):
    configs = [make_config(0, train={"epochs": 4}), make_config(1, train={"epochs": 4}, **LDAM_DRW)]
    clean = fit_packed(configs, [tmp_path / "c0", tmp_path / "c1"])
    dirs = [tmp_path / "r0", tmp_path / "r1"]
    assert fit_packed(configs, dirs, stop_after=2) == []  # as if killed after epoch 2
    for directory in dirs:
        assert not (directory / "results.json").exists()
        assert [e for e, _ in list_checkpoints(directory / "checkpoints")] == [1, 2]
    # one run killed a checkpoint behind the other: the pack levels them first
    latest_checkpoint(dirs[1] / "checkpoints").unlink()
    resumed = fit_packed(configs, dirs, resume=True)
    for index in range(2):
        assert _results(dirs[index]) == _results(tmp_path / f"c{index}")
        assert resumed[index]["top1"] == clean[index]["top1"]
        assert all(torch.equal(v, _model(tmp_path / f"c{index}")[k]) for k, v in _model(dirs[index]).items())
        epochs = [json.loads(line)["epoch"] for line in (dirs[index] / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2, 3, 4]


def test_runs_without_a_common_checkpoint_are_levelled_first(make_config, tmp_path):
    configs = [make_config(0, train={"epochs": 3}), make_config(1, train={"epochs": 3})]
    clean = fit_packed(configs, [tmp_path / "c0", tmp_path / "c1"])
    dirs = [tmp_path / "r0", tmp_path / "r1"]
    fit_packed(configs, dirs, stop_after=2)
    (dirs[0] / "checkpoints" / "ckpt-0001.pt").unlink()  # run 0 has only epoch 2, run 1 only epoch 1
    (dirs[1] / "checkpoints" / "ckpt-0002.pt").unlink()
    resumed = fit_packed(configs, dirs, resume=True)
    for index in range(2):  # run 1 caught up alone for epoch 2: equal within float tolerance
        assert _relative_difference(_model(dirs[index]), _model(tmp_path / f"c{index}")) <= 1e-4
        assert resumed[index]["epochs"] == 3
        assert abs(resumed[index]["balanced_accuracy"] - clean[index]["balanced_accuracy"]) <= 0.05


def test_a_packed_checkpoint_resumes_alone(make_config, tmp_path):
    configs = [make_config(0, train={"epochs": 3}), make_config(1, train={"epochs": 3})]
    fit_packed(configs, [tmp_path / "p0", tmp_path / "p1"], stop_after=2)
    alone = fit(configs[1], tmp_path / "p1", resume=True)
    reference = fit_packed(configs, [tmp_path / "q0", tmp_path / "q1"])[1]
    assert alone["epochs"] == 3
    assert abs(alone["balanced_accuracy"] - reference["balanced_accuracy"]) <= 0.05


def test_incompatible_runs_are_refused_with_the_reason(make_config, tmp_path):
    a = make_config(0)
    assert pack_incompatibility([a, make_config(1)]) is None
    other = make_config(1, optim={"batch_size": 16})
    assert "optim.batch_size" in pack_incompatibility([a, other])
    with pytest.raises(ConfigError, match="cannot be trained as one pack: .*optim.batch_size"):
        fit_packed([a, other], [tmp_path / "x", tmp_path / "y"])
    frozen = make_config(1, model={"name": "resnet32", "head": "normed-linear", "freeze": "backbone"})
    assert "model.freeze" in pack_incompatibility([a, frozen])
    linear = make_config(1, model={"name": "resnet32", "head": "linear"})
    assert "normed-linear" in pack_incompatibility([a, linear])
    with pytest.raises(ConfigError, match="Dropout"):
        PackedModel([torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))])


def test_cli_seeds_with_pack(write_config, tmp_path):
    from longtail.cli import main

    config = write_config(train={"epochs": 2}, runtime={"progress": "none", "num_threads": 1})
    out = tmp_path / "seeds"
    assert main(["train", str(config), "--out", str(out), "--seeds", "0,1,2", "--pack", "2"]) == 0
    for seed in (0, 1, 2):
        results = json.loads((out / f"seed-{seed}" / "results.json").read_text())
        assert results["seed"] == seed
        assert results["timing"].get("packed") == (2 if seed < 2 else None)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2]
    # resume with a pack: all done, nothing retrained
    assert main(["train", "--resume", str(out), "--pack", "auto"]) == 0
    assert main(["train", str(config), "--out", str(tmp_path / "x"), "--pack", "2"]) == 2
    assert main(["train", str(config), "--out", str(tmp_path / "y"), "--seeds", "0,1", "--pack", "zero"]) == 2
