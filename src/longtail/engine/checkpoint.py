"""Checkpoints: the :class:`Checkpointer` over a run's stateful parts, and the file format.

A checkpoint is :meth:`Checkpointer.state_dict`: the keys :data:`CHECKPOINT_KEYS` (``epoch`` =
number of completed epochs). A mid-epoch checkpoint (written when the run is preempted,
``ckpt-<epoch>-step-<step>.pt``) also has ``step`` (steps done in epoch ``epoch + 1``) and ``ranks``:
per process, the global RNG and augmentation states and the epoch's running sums (``partial``). Every value is a tensor, a number, a string or a list/dict of those, so
it loads with ``torch.load(weights_only=True)``.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longtail.errors import ConfigError, LongtailError

CHECKPOINT_KEYS = ("model", "optimizer", "loss", "scheduler", "sampler", "augment", "rng", "epoch", "best", "timing",
                   "last_report", "config", "fingerprint", "class_counts")
_ADDED_LATER = ("sampler",)  # absent from checkpoints written before it was kept; they still load
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")
_MID_EPOCH = re.compile(r"^ckpt-(\d+)-step-(\d+)\.pt$")


class CheckpointError(LongtailError):
    """A checkpoint could not be written or read."""


def checkpoint_path(directory: str | Path, epoch: int, step: int = 0) -> Path:
    """``ckpt-<epoch>.pt`` (after ``epoch`` complete epochs) or, mid-epoch (written on preemption),
    ``ckpt-<epoch>-step-<step>.pt`` (``step`` steps into the next epoch)."""
    name = f"ckpt-{epoch:04d}.pt" if not step else f"ckpt-{epoch:04d}-step-{step:07d}.pt"
    return Path(directory) / name


def resume_points(directory: str | Path) -> list[tuple[int, int, Path]]:
    """``(epoch, step, path)`` of every complete checkpoint, epoch-end (step 0) and mid-epoch, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if match := _NAME.match(path.name):
            found.append((int(match.group(1)), 0, path))
        elif match := _MID_EPOCH.match(path.name):
            found.append((int(match.group(1)), int(match.group(2)), path))
    return sorted(found)


def load_latest_readable(directory: str | Path, warn: Any = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, falling back past unreadable ones (a cut or corrupt file),
    each named through ``warn(message)``; None when there is none; CheckpointError when none loads."""
    failures = []
    for _, _, path in reversed(resume_points(directory)):
        try:
            state = load_checkpoint(path)
        except CheckpointError as error:
            failures.append(str(error))
            continue
        if failures and warn is not None:
            warn(f"{'; '.join(failures)} — resuming from the newest readable one, {path}")
        return path, state
    if failures:
        raise CheckpointError(
            f"no checkpoint in {directory} can be read ({'; '.join(failures)}); remove them to start the run "
            "again, or restore them from a copy"
        )
    return None


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
    missing = [k for k in CHECKPOINT_KEYS if k not in state and k not in _ADDED_LATER]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, int(state["epoch"]), int(state.get("step", 0)))
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
    stale = [path for _, path in list_checkpoints(directory)[:-keep]]
    # a mid-epoch checkpoint is only needed until a later checkpoint exists
    point = (int(state["epoch"]), int(state.get("step", 0)))
    stale += [path for e, s, path in resume_points(directory) if s and (e, s) < point]
    for old in stale:
        try:
            old.unlink()
        except OSError:
            pass
    return final


def load_error_reason(error: BaseException) -> str:
    """One short line for a ``torch.load`` failure (torch's own message runs for lines, with escapes)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    if text.startswith("Weights only load failed"):
        return "not a file of plain tensors and containers: cut, corrupt or not written by longtail"
    return (text.splitlines() or [type(error).__name__])[0][:200]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True`` and check the keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a corrupt file
        raise CheckpointError(f"checkpoint {path} cannot be read ({load_error_reason(error)}); it is cut or corrupt") from None
    missing = [k for k in CHECKPOINT_KEYS if k not in state and k not in _ADDED_LATER]
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


# --- the stateful parts of a training run ---------------------------------------------------------


@dataclass
class TrainProgress:
    """How far a run got: completed ``epoch``s, the best test top-1 so far, training seconds, the last report."""

    epoch: int = 0
    best: dict[str, Any] = field(default_factory=lambda: {"top1": None, "epoch": None})
    seconds: float = 0.0
    last_report: dict[str, Any] | None = None
    step: int = 0  # steps done in epoch `epoch + 1` (a mid-epoch checkpoint, written on preemption)
    ranks: list[dict[str, Any]] | None = None  # mid-epoch: per process {rng, augment, partial}
    bad_files: list[str] = field(default_factory=list)  # undecodable files skipped (data.on_bad_file=skip)

    def mid_epoch(self, rank: int) -> dict[str, Any] | None:
        """This process's streams and running sums at ``step`` (None at an epoch boundary)."""
        return self.ranks[rank] if self.step and self.ranks is not None else None


class Checkpointer:
    """Model, optimiser, loss, data (sampler position + augmentation RNG, ``TrainData.state_dict``), global
    RNGs and :class:`TrainProgress` behind one symmetric :meth:`state_dict` / :meth:`load_state_dict`;
    :meth:`save` writes to ``directory`` (last ``keep`` kept), :meth:`resume` loads the latest. ``scheduler``
    is the lr schedule's kind (checked on load) and epoch: the lr is a pure function of epoch and step.
    Loading refuses a checkpoint of another training subset (``fingerprint``)."""

    def __init__(self, directory: str | Path, keep: int, *, config: Any, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, loss_fn: torch.nn.Module, data: Any) -> None:
        self.directory, self.keep = Path(directory), keep
        self.config, self.model, self.optimizer, self.loss_fn, self.data = config, model, optimizer, loss_fn, data
        self.progress = TrainProgress()

    def state_dict(self) -> dict[str, Any]:
        progress, data = self.progress, self.data.state_dict()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "scheduler": {"kind": self.config.optim.schedule, "epoch": progress.epoch},
            "sampler": data["sampler"],
            "augment": data["augment"],
            "rng": get_rng_state(),
            "epoch": progress.epoch, "best": dict(progress.best), "timing": {"seconds": progress.seconds},
            "last_report": progress.last_report or {},
            "bad_files": list(progress.bad_files),
            **({"step": progress.step, "ranks": progress.ranks} if progress.step else {}),
            # identity: what the run is, checked on load
            "config": self.config.to_dict(), "fingerprint": self.data.fingerprint,
            "class_counts": list(self.data.class_counts),
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the checkpoint") -> None:
        if state["fingerprint"] != self.data.fingerprint:
            raise LongtailError(
                f"{source} was trained on training subset {state['fingerprint']} but the config now builds "
                f"{self.data.fingerprint}; the data changed — start a new run with --out"
            )
        kind = state["scheduler"].get("kind", self.config.optim.schedule)
        if kind != self.config.optim.schedule:
            raise ConfigError(
                f"{source} was trained with optim.schedule={kind} but the config says "
                f"{self.config.optim.schedule}; resume with the run's schedule or start a new run with --out"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # The buffer may be None in a fresh loss and set in the saved one (or the reverse).
        self.loss_fn.set_class_weights(state["loss"].get("class_weights"))
        self.loss_fn.load_state_dict(state["loss"])
        self.data.load_state_dict({"sampler": state.get("sampler") or {}, "augment": state["augment"]})
        set_rng_state(state["rng"])
        step, ranks = int(state.get("step", 0)), state.get("ranks")
        world = getattr(getattr(self.data, "dist", None), "world_size", 1)
        if step and len(ranks or []) != world:
            raise CheckpointError(
                f"{source} was written mid-epoch by {len(ranks or [])} processes; resume it with as many (now {world})"
            )
        self.progress = TrainProgress(
            epoch=int(state["epoch"]), best=dict(state["best"]), seconds=float(state["timing"]["seconds"]),
            last_report=state["last_report"] or None, step=step, ranks=ranks if step else None,
            bad_files=list(state.get("bad_files", [])),
        )

    def save(self) -> Path:
        return save_checkpoint(self.state_dict(), self.directory, keep=self.keep)

    def resume(self, warn: Any = None) -> Path | None:
        """Load the newest readable checkpoint of ``directory``, epoch-end or mid-epoch, falling back past
        unreadable ones (named through ``warn``); None when there is none."""
        found = load_latest_readable(self.directory, warn)
        if found is None:
            return None
        path, state = found
        self.load_state_dict(state, source=f"checkpoint {path}")
        return path
