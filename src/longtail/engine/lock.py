"""One writer per run directory: ``DIR/run.lock`` names its owner (pid, host) and a heartbeat.

``train`` and ``train --resume`` hold the lock for the whole run; a second writer is refused with the
owner named. A lock left by a killed run is *stale* and taken over:

* same host: the owner's pid no longer runs (or runs a different process: the start time recorded
  from ``/proc/<pid>/stat`` differs — pids are reused);
* another host (a shared file system, where the pid cannot be checked): the heartbeat, rewritten by a
  background thread every ``heartbeat_seconds``, is older than ``stale_seconds``.

Creating the lock is atomic on POSIX and NFS: the content is written to a private temp file which is
then hard-linked to ``run.lock`` (``link`` fails if the name exists). Taking over a stale lock renames
it away first (only one contender's rename succeeds), then creates the new one the same way.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from longtail.errors import LongtailError

LOCK_NAME = "run.lock"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0


class RunLocked(LongtailError):
    """Another process writes into the run directory."""


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, from /proc) or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` runs on this host (and is the one started at ``start``, when known)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if start is not None:
        current = _process_start(pid)
        if current is not None and current != start:
            return False
    return True


def read_lock(path: str | Path) -> dict[str, Any] | None:
    """The owner record of a lock file (None if absent or unreadable, e.g. half-written)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def is_stale(record: dict[str, Any] | None, now: float | None = None, stale_seconds: float = STALE_SECONDS) -> bool:
    """A lock whose owner is gone: dead pid on this host, else a heartbeat older than ``stale_seconds``."""
    if record is None:
        return True  # unreadable: a writer killed between create and write cannot happen (link), so foreign
    now = time.time() if now is None else now
    try:
        if record.get("host") == socket.gethostname():
            return not pid_alive(int(record["pid"]), record.get("start"))
        return now - float(record["heartbeat"]) > stale_seconds
    except (KeyError, TypeError, ValueError):
        return True


class RunLock:
    """Context manager holding ``directory/run.lock`` (creating ``directory`` if needed).

    On release the lock file is removed, and the directory too when this lock created it and it is
    empty again (a run refused before writing anything leaves no trace).
    """

    def __init__(
        self,
        directory: str | Path,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_seconds: float = STALE_SECONDS,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.heartbeat_seconds = float(os.environ.get("LONGTAIL_LOCK_HEARTBEAT", heartbeat_seconds))
        self.stale_seconds = float(os.environ.get("LONGTAIL_LOCK_STALE", stale_seconds))
        self.token = uuid.uuid4().hex
        self.took_over: dict[str, Any] | None = None
        self._created_dir = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- acquire / release ---------------------------------------------------------------------

    def _record(self) -> dict[str, Any]:
        pid = os.getpid()
        now = time.time()
        return {"pid": pid, "host": socket.gethostname(), "start": _process_start(pid), "started": now,
                "heartbeat": now, "token": self.token}  # fmt: skip

    def _write_new(self) -> bool:
        """Create the lock file with our record; False if it already exists."""
        tmp = self.directory / f".{LOCK_NAME}.{self.token}"
        tmp.write_text(json.dumps(self._record()))
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then the content
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as handle:
                handle.write(tmp.read_text())
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def acquire(self) -> RunLock:
        try:
            if not self.directory.exists():
                self.directory.mkdir(parents=True)
                self._created_dir = True
            for _ in range(5):
                if self._write_new():
                    break
                record = read_lock(self.path)
                if not is_stale(record, stale_seconds=self.stale_seconds):
                    assert record is not None
                    raise RunLocked(self._refusal(record))
                aside = self.directory / f".{LOCK_NAME}.stale-{self.token}"
                try:
                    os.rename(self.path, aside)  # only one contender wins the stale lock
                except FileNotFoundError:
                    continue
                aside.unlink(missing_ok=True)
                self.took_over = record or {}
            else:
                raise RunLocked(f"{self.directory}: could not take its lock {self.path} (contended); try again")
        except OSError as error:
            raise LongtailError(
                f"cannot write into run directory {self.directory} ({error.strerror or error}); choose a "
                "writable path"
            ) from None
        self._thread = threading.Thread(target=self._beat, name="longtail-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _refusal(self, record: dict[str, Any]) -> str:
        age = time.time() - float(record.get("heartbeat", 0))
        return (
            f"{self.directory} is in use by another longtail process (pid {record.get('pid')} on host "
            f"{record.get('host')}, last heartbeat {age:.0f} s ago); wait for it to finish, stop it, or "
            f"choose another --out (a lock from a dead process is taken over automatically)"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Rewrite our record's timestamp (only while the lock is still ours)."""
        record = read_lock(self.path)
        if record is None or record.get("token") != self.token:
            return
        record["heartbeat"] = time.time()
        tmp = self.directory / f".{LOCK_NAME}.{self.token}"
        try:
            tmp.write_text(json.dumps(record))
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        record = read_lock(self.path)
        if record is not None and record.get("token") == self.token:
            self.path.unlink(missing_ok=True)
        if self._created_dir:
            try:
                self.directory.rmdir()  # only if empty: nothing was written
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
