"""Preemption and checkpoint fallback.

SIGTERM / SIGUSR1 at a random training step: the step finishes, a mid-epoch checkpoint is written,
the process exits with status 75, and ``--resume`` continues mid-epoch to exactly the results.json
(and metrics) of the uninterrupted run (CPU). ``--resume`` falls back past an unreadable latest
checkpoint to the newest readable one, saying so.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from longtail.config import load_config
from longtail.engine import checkpoint as ck
from longtail.engine import preemption
from longtail.engine.trainer import fit

STEPS_PER_EPOCH = 8  # 118 tiny images, batch 16


def _results(path):
    data = json.loads((path / "results.json").read_text())
    data.pop("timing")  # wall-clock seconds differ
    return data


def _metrics(path):
    lines = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


def _config(write_config):
    return load_config(write_config(optim={"batch_size": 16}, train={"epochs": 3}, eval={"every": 2},
                                    runtime={"compile": False}))  # fmt: skip


def _signal_at_step(monkeypatch, step: int, signum: int) -> None:
    """Send ``signum`` to this process during global training step ``step`` (1-based)."""
    import longtail.engine.trainer as trainer

    real = trainer.prepare_input
    calls = {"n": 0}

    def prepare_input(x, accel):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signum)
        return real(x, accel)

    monkeypatch.setattr(trainer, "prepare_input", prepare_input)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_signal_at_a_random_step_then_resume_equals_uninterrupted(write_config, tmp_path, monkeypatch, signum):
    config = _config(write_config)
    fit(config, tmp_path / "clean")
    step = random.Random().randrange(1, 3 * STEPS_PER_EPOCH)  # any step but the run's last
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _signal_at_step(patch, step, signum)
        with preemption.signals(), pytest.raises(preemption.Preempted) as info:
            fit(config, run)
    epoch, within = divmod(step, STEPS_PER_EPOCH)
    message = str(info.value)
    assert signal.Signals(signum).name in message and "--resume" in message, message
    points = ck.resume_points(run / "checkpoints")
    assert points[-1][:2] == (epoch, within), (step, points)  # stopped right after the signalled step
    if within:
        assert points[-1][2].name == f"ckpt-{epoch:04d}-step-{within:07d}.pt"
        assert f"epoch {epoch + 1}, step {within}" in message
    assert not (run / "results.json").exists()

    with preemption.signals():
        fit(config, run, resume=True)
    assert _results(run) == _results(tmp_path / "clean"), f"signal at step {step}"
    assert _metrics(run) == _metrics(tmp_path / "clean"), f"signal at step {step}"
    assert all(s == 0 for _, s, _ in ck.resume_points(run / "checkpoints"))  # mid-epoch ones removed


@pytest.mark.slow
def test_sigterm_to_the_cli_exits_75_and_resumes_mid_epoch(write_config, tmp_path):
    config = write_config(optim={"batch_size": 8}, train={"epochs": 3}, eval={"every": 0},
                          runtime={"compile": False, "progress": "none", "num_threads": 1})  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "longtail", "train", str(config), "--out", str(run)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not list((run / "checkpoints").glob("ckpt-*.pt")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(random.Random().uniform(0.0, 0.3))  # somewhere in epoch 2
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal arrived (machine too fast for this timing)")
    assert process.returncode == 75, err
    assert err.strip().splitlines()[-1].startswith("longtail: stopped: preempted by SIGTERM after "), err
    assert "Traceback" not in err
    resumed = subprocess.run([sys.executable, "-m", "longtail", "train", "--resume", str(run)], env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    clean = tmp_path / "clean"
    fit(load_config(config), clean)
    assert _results(run) == _results(clean)


def test_resume_falls_back_past_an_unreadable_latest_checkpoint(write_config, tmp_path, capsys):
    config = _config(write_config)
    fit(config, tmp_path / "clean")
    run = tmp_path / "run"
    fit(config, run)
    (run / "results.json").unlink()
    latest = ck.latest_checkpoint(run / "checkpoints")
    latest.write_bytes(latest.read_bytes()[:1000])  # cut, as by a full disk outside our control
    capsys.readouterr()
    fit(config, run, resume=True)
    err = capsys.readouterr().err
    assert f"checkpoint {latest} cannot be read" in err and "resuming from the newest readable one" in err, err
    assert "ckpt-0002.pt" in err
    assert _results(run) == _results(tmp_path / "clean")


def test_no_readable_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "ckpt-0001.pt").write_bytes(b"cut")
    (tmp_path / "ckpt-0001-step-0000004.pt").write_bytes(b"cut")
    with pytest.raises(ck.CheckpointError, match="no checkpoint in .* can be read .*remove them"):
        ck.load_latest_readable(tmp_path)
    assert ck.load_latest_readable(tmp_path / "missing") is None
