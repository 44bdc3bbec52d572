import errno

import pytest
import torch

from longtail.engine import checkpoint as ck


def _state(epoch: int) -> dict:
    state = {key: {} for key in ck.CHECKPOINT_KEYS}
    state.update(epoch=epoch, model={"w": torch.full((3,), float(epoch))}, rng=ck.get_rng_state(),
                 config={"train": {"epochs": 3}}, fingerprint="abc", class_counts=[3, 2], best={"top1": None})
    return state


def test_atomic_write_keep_last_k_and_weights_only(tmp_path):
    for epoch in range(1, 5):
        ck.save_checkpoint(_state(epoch), tmp_path, keep=2)
    assert [e for e, _ in ck.list_checkpoints(tmp_path)] == [3, 4]
    assert not list(tmp_path.glob("*.tmp"))
    loaded = torch.load(ck.latest_checkpoint(tmp_path), weights_only=True)
    assert loaded["epoch"] == 4 and torch.equal(loaded["model"]["w"], torch.full((3,), 4.0))


def test_rng_state_roundtrip():
    import random

    import numpy as np

    state = ck.get_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ck.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_full_disk_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ck.save_checkpoint(_state(1), tmp_path, keep=2)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full_disk)
    with pytest.raises(ck.CheckpointError, match="No space left on device.*ckpt-0001.pt is intact"):
        ck.save_checkpoint(_state(2), tmp_path, keep=1)
    monkeypatch.undo()
    assert [e for e, _ in ck.list_checkpoints(tmp_path)] == [1]
    assert not list(tmp_path.glob("*.tmp"))
    assert ck.load_checkpoint(ck.latest_checkpoint(tmp_path))["epoch"] == 1


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "ckpt-0001.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ck.CheckpointError, match="cannot be read"):
        ck.load_checkpoint(tmp_path / "ckpt-0001.pt")
    torch.save({"model": {}}, tmp_path / "ckpt-0002.pt")
    with pytest.raises(ck.CheckpointError, match="lacks keys"):
        ck.load_checkpoint(tmp_path / "ckpt-0002.pt")
