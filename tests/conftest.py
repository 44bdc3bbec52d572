"""Shared fixtures. Tests use tiny data written in the real on-disk formats and a few steps."""

from __future__ import annotations

import os

import pytest

# Two cores here: keep each test process to one intra-op thread so parallel work does not thrash.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
