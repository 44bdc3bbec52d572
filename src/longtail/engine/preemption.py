"""Preemption: SIGTERM or SIGUSR1 (what cluster schedulers send before killing a job) asks the run to
stop at the end of the current training step, write a mid-epoch checkpoint and exit with status
:data:`PREEMPTED_EXIT_STATUS` (75, ``EX_TEMPFAIL``: try again later); ``longtail train --resume``
then continues from that step.

:func:`signals` installs the handlers for the duration of a run (the CLI does; library callers of
``fit`` may too); a handler only records the signal. :func:`agreed` is what the training loop asks
after each step: in one process it reads the record (no device sync); under DDP the ranks all-reduce
it, so that every rank stops after the same step (one small all-reduce per step).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch

from longtail.errors import LongtailError

PREEMPTED_EXIT_STATUS = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_requested: list[int] = []


class Preempted(LongtailError):
    """The run stopped on a scheduler's signal after writing a checkpoint; resume it."""

    exit_status = PREEMPTED_EXIT_STATUS


def _record(signum: int, frame: Any) -> None:
    _requested.append(signum)


@contextlib.contextmanager
def signals() -> Iterator[None]:
    """Record SIGTERM / SIGUSR1 instead of dying while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _record) for s in SIGNALS}
    _requested.clear()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested.clear()


def requested() -> int | None:
    """The signal received by this process, if any."""
    return _requested[0] if _requested else None


def request(signum: int = signal.SIGTERM) -> None:
    """Ask for a stop as the signal handler does (for callers that learn of preemption otherwise)."""
    _requested.append(signum)


def agreed(dist_info: Any, device: torch.device | str = "cpu") -> bool:
    """Whether the run stops now: this process got a signal or, under DDP, any rank did."""
    if not dist_info.enabled:
        return bool(_requested)
    from longtail.engine import distributed

    flag = torch.tensor([1.0 if _requested else 0.0], device=device)
    distributed.all_reduce_sum(flag, dist_info)
    return bool(flag.item() > 0)


def signal_name(signum: int | None) -> str:
    if signum is None:
        return "a stop request on another rank"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
