"""Kill-and-resume: a run SIGKILLed after its first checkpoint and resumed with `--resume` ends
with exactly the results.json of an uninterrupted run (CPU, same thread count)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def _run(args, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "longtail", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def _results(path):
    data = json.loads((path / "results.json").read_text())
    data.pop("timing")  # wall-clock seconds differ
    return data


def test_sigkill_then_resume_equals_uninterrupted(write_config, tmp_path):
    config = write_config(train={"epochs": 5, "checkpoint_keep": 2}, eval={"every": 2, "batch_size": 64})
    killed = tmp_path / "killed"
    process = _run([str(config), "--out", str(killed)])
    checkpoints = killed / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("ckpt-*.pt")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"

    resumed = _run(["--resume", str(killed)])
    clean = _run([str(config), "--out", str(tmp_path / "clean")])
    assert resumed.wait() == 0, resumed.stderr.read()
    assert clean.wait() == 0, clean.stderr.read()
    assert _results(killed) == _results(tmp_path / "clean")
    epochs = [json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5]
