"""End-to-end `longtail train` on tiny IDX data: run directory, metrics, failures, seeds."""

from __future__ import annotations

import errno
import json
import math

import pytest
import torch

from longtail.cli import main
from longtail.config import load_config, save_config
from longtail.engine import checkpoint as ck
from longtail.engine.trainer import TrainingDiverged, fit


def _results(path):
    data = json.loads((path / "results.json").read_text())
    data.pop("timing")
    return data


def test_run_directory_metrics_and_results(write_config, tmp_path):
    out = tmp_path / "run"
    # fp32: the recomputation below is in fp32, and a bf16 evaluation (precision auto on a CPU with
    # native bf16) may flip the argmax of a near-tie
    assert main(["train", str(write_config(runtime={"precision": "fp32"})), "--out", str(out)]) == 0
    assert (out / "config.yaml").is_file() and load_config(out / "config.yaml").train.epochs == 3
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    for record in lines:
        assert {"epoch", "lr", "train_loss", "train_acc", "test_top1", "seconds"} <= set(record)
    assert [r["lr"] for r in lines] == pytest.approx([0.01, 0.01, 0.001])  # warm-up 1, ×0.1 at epoch 2
    results = json.loads((out / "results.json").read_text())
    for key in ("top1", "top5", "per_class", "groups", "epochs", "seed", "class_counts", "fingerprint",
                "balanced_accuracy", "balanced_error", "timing"):
        assert key in results
    assert "best_on_test_top1" not in results  # only when asked for
    assert results["top1"] == lines[-1]["test_top1"]  # the LAST epoch is reported
    assert results["class_counts"] == [math.floor(30 * 10 ** (-i / 9)) for i in range(10)]  # exp profile, ρ=10
    assert set(results["groups"]) == {"many", "medium", "few"}
    assert results["groups"]["many"] == {"accuracy": None, "count": 0, "classes": []}  # empty, not NaN
    assert (out / "events").is_dir() and list((out / "events").iterdir())
    checkpoints = ck.list_checkpoints(out / "checkpoints")
    assert [e for e, _ in checkpoints] == [1, 2, 3]
    state = torch.load(checkpoints[-1][1], weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "config", "fingerprint", "class_counts", "rng", "best"} <= set(state)
    assert state["fingerprint"] == results["fingerprint"]

    # The reported numbers, recomputed independently from the final weights and the raw test images.
    from longtail.data import build_longtail
    from longtail.models import create_model

    config = load_config(out / "config.yaml")
    data = build_longtail("fashion-mnist", root=config.data.root, imbalance_ratio=10)
    model = create_model("resnet32", num_classes=10, in_channels=1)
    model.load_state_dict(state["model"])
    model.eval()
    x = (data.test.images.double() / 255 - 0.2860) / 0.3530
    with torch.no_grad():
        _, logits = model(x.float())
    predictions = logits.argmax(1)
    labels = data.test.labels
    per_class = [float((predictions[labels == c] == c).double().mean()) for c in range(10)]
    assert results["per_class"] == pytest.approx(per_class)
    assert results["top1"] == pytest.approx(float((predictions == labels).double().mean()))
    assert results["balanced_error"] == pytest.approx(1 - sum(per_class) / 10)
    top5 = (logits.topk(5, 1).indices == labels[:, None]).any(1).double().mean()
    assert results["top5"] == pytest.approx(float(top5))
    few = [c for c, n in enumerate(results["class_counts"]) if n < 20]
    assert results["groups"]["few"]["accuracy"] == pytest.approx(sum(per_class[c] for c in few) / len(few))


def test_best_on_test_only_when_asked(write_config, tmp_path):
    config = load_config(write_config(), ["train.report_best_on_test=true", "train.epochs=2", "analysis.track_every=1"])
    results = fit(config, tmp_path / "run")
    snapshots = sorted((tmp_path / "run" / "snapshots").iterdir())
    assert [p.name for p in snapshots] == ["epoch-0001.pt", "epoch-0002.pt"]
    assert torch.load(snapshots[0], weights_only=True)["epoch"] == 1
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert results["best_on_test_top1"] == max(r["test_top1"] for r in lines)
    assert results["reported"] == "last_epoch" and results["top1"] == lines[-1]["test_top1"]


def test_nan_loss_stops_with_epoch_and_step(write_config, tmp_path, monkeypatch):
    import longtail.losses

    real = longtail.losses.create_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        forward = loss.forward

        def nan_forward(logits, targets):
            calls["n"] += 1
            value = forward(logits, targets)
            return value * float("nan") if calls["n"] == 6 else value  # epoch 2, step 2 (4 steps/epoch)

        loss.forward = nan_forward
        return loss

    monkeypatch.setattr(longtail.losses, "create_loss", poisoned)
    config = load_config(write_config())
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2.*ckpt-0001.pt kept"):
        fit(config, tmp_path / "run")
    assert [e for e, _ in ck.list_checkpoints(tmp_path / "run" / "checkpoints")] == [1]
    assert not (tmp_path / "run" / "results.json").exists()


def test_full_disk_keeps_last_checkpoint_then_resume_is_exact(write_config, tmp_path, monkeypatch):
    config = load_config(write_config())
    real_save = ck.torch.save
    calls = {"n": 0}

    def save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ck.torch, "save", save)
    with pytest.raises(ck.CheckpointError, match="No space left on device.*ckpt-0001.pt is intact"):
        fit(config, tmp_path / "run")
    monkeypatch.undo()
    assert [e for e, _ in ck.list_checkpoints(tmp_path / "run" / "checkpoints")] == [1]
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))
    # Space freed: the run continues from epoch 1 and ends exactly where an uninterrupted run ends.
    fit(config, tmp_path / "run", resume=True)
    fit(config, tmp_path / "clean")
    assert _results(tmp_path / "run") == _results(tmp_path / "clean")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_non_empty_out_refused_unless_overwrite(write_config, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    assert main(["train", str(write_config()), "train.epochs=1", "--out", str(out)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert main(["train", str(write_config()), "train.epochs=1", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "results.json").exists()


def test_resume_with_different_config_refused(write_config, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(write_config()), run / "config.yaml")
    code = main(["train", str(write_config()), "train.epochs=5", "optim.lr=0.5", "--resume", str(run)])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.epochs: 3 -> 5" in err and "optim.lr: 0.01 -> 0.5" in err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2


def test_loss_needing_normed_head_is_checked(write_config):
    from longtail.errors import ConfigError

    config = load_config(write_config(), ["loss.name=ldam"])
    with pytest.raises(ConfigError, match="model.head=normed-linear"):
        fit(config, "/nonexistent/never-written")


def test_seeds_summary(write_config, tmp_path, capsys):
    out = tmp_path / "seeds"
    assert main(["train", str(write_config()), "train.epochs=1", "--out", str(out), "--seeds", "0,1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    runs = [json.loads((out / f"seed-{s}" / "results.json").read_text()) for s in (0, 1)]
    assert [r["seed"] for r in runs] == [0, 1]
    values = [r["top1"] for r in runs]
    mean = sum(values) / 2
    assert summary["mean"]["top1"] == pytest.approx(mean)
    assert summary["std"]["top1"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values)))  # n-1 = 1
    assert summary["mean"]["many"] is None  # the empty group stays empty
    printed = capsys.readouterr().out
    assert "mean" in printed and "balanced_accuracy" in printed


@pytest.mark.parametrize(
    "overrides",
    [
        ["rebalance.name=drw", "rebalance.params.start_epoch=1", "rebalance.params.weights=inverse"],
        ["loss.name=cdt", "loss.params.gamma=0.2", "rebalance.name=deferred-cdt", "rebalance.params.start_epoch=2",
         "rebalance.params.gamma=0.2"],
        ["rebalance.name=drs", "rebalance.params.start_epoch=1", "optim.step_every=iteration"],
    ],
)
def test_interrupted_run_resumes_exactly_with_schedules(write_config, tmp_path, monkeypatch, overrides):
    """Stopped right after the epoch-2 checkpoint (a deferred schedule already switched on), the
    resumed run ends bit-for-bit where the uninterrupted run ends."""
    config = load_config(write_config(), overrides)
    real = ck.save_checkpoint

    def save_then_die(state, directory, keep):
        path = real(state, directory, keep)
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(ck, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "run")
    monkeypatch.undo()
    fit(config, tmp_path / "run", resume=True)
    fit(config, tmp_path / "clean")
    assert _results(tmp_path / "run") == _results(tmp_path / "clean")
    a = torch.load(ck.latest_checkpoint(tmp_path / "run" / "checkpoints"), weights_only=True)
    b = torch.load(ck.latest_checkpoint(tmp_path / "clean" / "checkpoints"), weights_only=True)
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_resume_of_a_finished_run_changes_nothing(write_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(write_config()), "train.epochs=1", "--out", str(out)]) == 0
    before = _results(out)
    lines = (out / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(out), "runtime.progress=line"]) == 0  # runtime-only override allowed
    assert _results(out) == before and (out / "metrics.jsonl").read_text() == lines
    assert [e for e, _ in ck.list_checkpoints(out / "checkpoints")] == [1]
