"""A distributed run whose other rank dies (SIGKILL) or hangs (SIGSTOP) stops with one clear line in
bounded time instead of waiting forever: two CPU processes, gloo on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch.distributed as dist

from longtail.engine.distributed import is_peer_failure, peer_failures_as_errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_only_communication_failures_are_translated():
    transport = RuntimeError("[third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer.")
    assert is_peer_failure(transport)
    assert is_peer_failure(RuntimeError("Timed out waiting 5000ms for recv operation to complete"))
    assert not is_peer_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_peer_failure(KeyError("gloo"))
    # without a process group nothing is translated, whatever the message
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="Connection reset"), peer_failures_as_errors(5):
        raise transport


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_the_surviving_rank_stops_with_one_line_in_bounded_time(write_config, tmp_path, how):
    config = write_config(train={"epochs": 100}, eval={"every": 0}, runtime={"compile": False, "progress": "none",
                                                                            "num_threads": 1})  # fmt: skip
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    cmd = [sys.executable, "-m", "longtail", "train", str(config), "--out", str(run), "runtime.dist_timeout=5"]
    ranks = [
        subprocess.Popen(cmd, env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
        for r in (0, 1)
    ]
    try:
        deadline = time.monotonic() + 300
        while not list((run / "checkpoints").glob("ckpt-*.pt")):
            assert ranks[0].poll() is None, ranks[0].stderr.read()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        ranks[1].send_signal(getattr(signal, how))
        stopped = time.monotonic()
        code = ranks[0].wait(timeout=120)
        took = time.monotonic() - stopped
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
                process.wait()
    err = ranks[0].stderr.read()
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("longtail: error: rank 0: another rank of this job died or stopped answering"), last
    assert "--resume" in last
    assert took < 60, f"rank 0 took {took:.1f} s to notice"
    assert not (run / "run.lock").exists()  # released on the way out


def _two_ranks(args, env, port):
    env = dict(env, MASTER_PORT=str(port))
    return [
        subprocess.Popen([sys.executable, "-m", "longtail", "train", *args], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for r in (0, 1)
    ]


@pytest.mark.slow
def test_preempted_ddp_run_resumes_mid_epoch_to_the_uninterrupted_result(write_config, tmp_path):
    """SIGTERM to both ranks (as a scheduler sends it): both stop after the same step with status 75;
    two resumed ranks (per-rank sampler shard, augmentation and RNG state) end where an uninterrupted
    two-rank run ends."""
    import json
    import random

    config = write_config(optim={"batch_size": 16}, train={"epochs": 3}, eval={"every": 0},
                          runtime={"compile": False, "progress": "none", "num_threads": 1, "precision": "fp32"})  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    run, clean = tmp_path / "run", tmp_path / "clean"
    ranks = _two_ranks([str(config), "--out", str(run)], env, _free_port())
    try:
        deadline = time.monotonic() + 300
        while not list((run / "checkpoints").glob("ckpt-*.pt")):
            assert ranks[0].poll() is None, ranks[0].stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(random.Random().uniform(0.0, 0.3))
        for process in ranks:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=120) for process in ranks]
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
    if codes == [0, 0]:
        pytest.skip("the run finished before the signal arrived")
    errors = [process.stderr.read() for process in ranks]
    assert codes == [75, 75], errors
    assert all("longtail: stopped: preempted by SIGTERM" in e for e in errors), errors
    resumed = _two_ranks(["--resume", str(run)], env, _free_port())
    uninterrupted = _two_ranks([str(config), "--out", str(clean)], env, _free_port())
    for process in resumed + uninterrupted:
        assert process.wait(timeout=600) == 0, process.stderr.read()[-2000:]

    def results(path):
        data = json.loads((path / "results.json").read_text())
        data.pop("timing")
        return data

    assert results(run) == results(clean)
