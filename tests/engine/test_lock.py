"""One writer per run directory: the lock names its owner, refuses a second writer and is taken over
when stale (dead pid on this host, an old heartbeat from another host)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from longtail.cli import main
from longtail.engine.lock import LOCK_NAME, RunLock, RunLocked, is_stale, read_lock


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_record(directory, **record):
    directory.mkdir(parents=True, exist_ok=True)
    base = {"pid": os.getpid(), "host": socket.gethostname(), "start": None, "started": time.time(),
            "heartbeat": time.time(), "token": "other"}  # fmt: skip
    base.update(record)
    (directory / LOCK_NAME).write_text(json.dumps(base))


def test_lock_names_its_owner_and_refuses_a_second_writer(tmp_path):
    run = tmp_path / "run"
    with RunLock(run) as lock:
        record = read_lock(run / LOCK_NAME)
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["token"] == lock.token
        with pytest.raises(RunLocked, match=rf"pid {os.getpid()} on host {socket.gethostname()}"):
            RunLock(run).acquire()
        assert read_lock(run / LOCK_NAME)["token"] == lock.token  # the refused one did not touch it
    assert not run.exists()  # created by the lock, empty again: removed


def test_release_keeps_a_directory_with_content(tmp_path):
    run = tmp_path / "run"
    with RunLock(run):
        (run / "config.yaml").write_text("x")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


def test_dead_pid_on_this_host_is_taken_over(tmp_path):
    run = tmp_path / "run"
    pid = _dead_pid()
    _write_record(run, pid=pid)
    with RunLock(run) as lock:
        assert lock.took_over["pid"] == pid
        assert read_lock(run / LOCK_NAME)["pid"] == os.getpid()


def test_a_reused_pid_is_recognised_by_its_start_time(tmp_path):
    run = tmp_path / "run"
    _write_record(run, pid=os.getpid(), start="1")  # alive, but not the process that took the lock
    with RunLock(run) as lock:
        assert lock.took_over is not None


def test_other_host_is_judged_by_its_heartbeat(tmp_path):
    fresh = {"host": "node-17", "pid": 1, "heartbeat": time.time()}
    assert not is_stale(fresh, stale_seconds=60)
    assert is_stale({**fresh, "heartbeat": time.time() - 61}, stale_seconds=60)
    run = tmp_path / "run"
    _write_record(run, host="node-17", pid=1)
    with pytest.raises(RunLocked, match="node-17"):
        RunLock(run, stale_seconds=60).acquire()
    _write_record(run, host="node-17", pid=1, heartbeat=time.time() - 61)
    with RunLock(run, stale_seconds=60) as lock:
        assert lock.took_over["host"] == "node-17"


def test_heartbeat_is_rewritten_while_held(tmp_path):
    run = tmp_path / "run"
    with RunLock(run, heartbeat_seconds=0.05):
        first = read_lock(run / LOCK_NAME)["heartbeat"]
        deadline = time.monotonic() + 10
        while read_lock(run / LOCK_NAME)["heartbeat"] == first:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)


def test_after_a_takeover_the_new_owner_holds_it(tmp_path):
    run = tmp_path / "run"
    _write_record(run, pid=_dead_pid())
    first = RunLock(run).acquire()
    try:
        with pytest.raises(RunLocked):
            RunLock(run).acquire()
    finally:
        first.release()


def test_cli_refuses_a_run_directory_in_use(write_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(write_config(train={"epochs": 1})), "--out", str(run)]) == 0
    with RunLock(run):
        capsys.readouterr()
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is in use by another longtail process (pid {os.getpid()}" in err
        assert main(["train", str(write_config()), "--out", str(run), "--overwrite"]) == 2
        assert "in use" in capsys.readouterr().err
        assert (run / "results.json").is_file()  # --overwrite did not delete a run in use


@pytest.mark.slow
def test_a_killed_runs_lock_is_taken_over_by_resume(write_config, tmp_path, capsys):
    config = write_config(train={"epochs": 8}, eval={"every": 0})
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen([sys.executable, "-m", "longtail", "train", str(config), "--out", str(run)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not list((run / "checkpoints").glob("ckpt-*.pt")):
        assert first.poll() is None, first.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2  # while the first still runs
    assert f"pid {first.pid}" in capsys.readouterr().err
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert read_lock(run / LOCK_NAME)["pid"] == first.pid  # left behind by the killed run
    resumed = subprocess.run([sys.executable, "-m", "longtail", "train", "--resume", str(run)], env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "took over the lock" in resumed.stdout
    assert (run / "results.json").is_file() and not (run / LOCK_NAME).exists()
