"""Checkpoints: fixed keys, plain tensors and containers only, written atomically, last k kept.

A checkpoint is a dict with the keys ``model, optimizer, scheduler, augment, rng, epoch, config,
fingerprint, class_counts, best`` (``epoch`` = number of completed epochs). Every value is a tensor,
a number, a string or a list/dict of those, so it loads with ``torch.load(weights_only=True)``.

Writing goes to ``ckpt-<epoch>.pt.tmp`` in the same directory, is flushed to disk, then renamed over
``ckpt-<epoch>.pt`` with :func:`os.replace` (atomic on POSIX): a reader — or a run killed at any
moment — sees either the previous checkpoints or the new one, never a partial file. Older
checkpoints are deleted only after the new one is in place. A failed write (full disk) removes the
temp file, keeps the previous checkpoints and raises :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longtail.errors import LongtailError

CHECKPOINT_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "augment",
    "rng",
    "epoch",
    "config",
    "fingerprint",
    "class_counts",
    "best",
)
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


class CheckpointError(LongtailError):
    """A checkpoint could not be written or read."""


def checkpoint_path(directory: str | Path, epoch: int) -> Path:
    return Path(directory) / f"ckpt-{epoch:04d}.pt"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the complete checkpoints in ``directory``, oldest first (temp files ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_checkpoint(state: dict[str, Any], directory: str | Path, keep: int) -> Path:
    """Write ``state`` as ``ckpt-<epoch>.pt`` atomically and delete all but the last ``keep``."""
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, int(state["epoch"]))
    tmp = final.with_name(final.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except OSError as error:
        try:
            tmp.unlink()
        except OSError:
            pass
        previous = latest_checkpoint(directory)
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointError(
            f"could not write checkpoint {final} ({error.strerror or error}); {kept} — free disk space "
            "and continue with `longtail train --resume`"
        ) from None
    for _, old in list_checkpoints(directory)[:-keep]:
        try:
            old.unlink()
        except OSError:
            pass
    return final


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True`` and check the keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a corrupt file
        raise CheckpointError(f"checkpoint {path} cannot be read ({error}); delete it to resume from an earlier one") from None
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks keys {missing}; it was not written by longtail train")
    return state


def remove_temp_files(directory: str | Path) -> None:
    """Delete ``*.tmp`` left by a run killed while writing."""
    directory = Path(directory)
    if directory.is_dir():
        for path in directory.glob("*.tmp"):
            path.unlink(missing_ok=True)


# --- RNG states as plain containers ---------------------------------------------------------------


def get_rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python ``random`` global states as tensors / lists / ints."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": int(py_state[0]), "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
