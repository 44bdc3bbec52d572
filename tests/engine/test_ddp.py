"""Two CPU processes (torchrun, gloo on 127.0.0.1) with the same GLOBAL batch as one process give
the same model and metrics within float tolerance: sharded samplers, global batch norm, the
weighted-mean loss correction (re-weighting on) and exact sharded evaluation."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from longtail.config import load_config
from longtail.engine.checkpoint import latest_checkpoint
from longtail.engine.trainer import fit

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(write_config, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun not installed")
    # Per-rank batch 30 (global 60): 2 steps per epoch; a small lr keeps the comparison well
    # conditioned (float rounding differences are not amplified); no augmentation (it is drawn per rank).
    config = write_config(
        data={"augment": False},
        optim={"batch_size": 60, "lr": 0.01},
        rebalance={"name": "rw"},
        train={"epochs": 2},
        eval={"every": 1, "batch_size": 16},
        # fp32: the check is that the reduction is exact; bf16 rounds per-rank batches differently.
        runtime={"channels_last": False, "progress": "none", "num_threads": 1, "precision": "fp32"},
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    two = tmp_path / "two"
    cmd = [str(torchrun), "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           "-m", "longtail", "train", str(config), "--out", str(two)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    one = tmp_path / "one"
    fit(load_config(config), one)

    a = torch.load(latest_checkpoint(one / "checkpoints"), weights_only=True)
    b = torch.load(latest_checkpoint(two / "checkpoints"), weights_only=True)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    lines_one = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    lines_two = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    for x, y in zip(lines_one, lines_two):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-5)
        assert y["train_acc"] == x["train_acc"]
    r1 = json.loads((one / "results.json").read_text())
    r2 = json.loads((two / "results.json").read_text())
    assert r2["num_test"] == r1["num_test"] == 60  # every test example once: no padding duplicates
    assert r2["per_class"] == pytest.approx(r1["per_class"])
    assert r2["top1"] == pytest.approx(r1["top1"]) and r2["top5"] == pytest.approx(r1["top5"])
    for key in ("ece", "nll", "brier"):  # calibration sums over the ranks' shards: the whole test set
        assert r2["calibration"]["overall"][key] == pytest.approx(r1["calibration"]["overall"][key], rel=1e-4, abs=1e-5)
    assert r2["timing"]["world_size"] == 2
