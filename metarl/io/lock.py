"""One writer per run folder: an OS file lock that dies with its holder.

``hold(run_dir)`` takes an exclusive ``flock`` on ``<run_dir>/.metarl.lock`` without waiting. A second
process on the same folder (two terminals, a re-queued cluster job, a sweep started twice) is refused at
once with the holder's process id, host and start time, before it writes anything. The kernel drops the
lock when its holder exits, however it exits (``kill -9`` included), so a stale lock file never blocks a
rerun: the next process simply takes the lock again. On a shared file system the lock is as good as the
file system's ``flock``.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from metarl.errors import ConfigError

LOCK_NAME = ".metarl.lock"


class RunFolderBusy(ConfigError):
    """Another process holds the run folder."""


class RunLock:
    """A held lock; ``release()`` (or the process's exit) frees it."""

    def __init__(self, path: Path, handle: int):
        self.path, self._handle = path, handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)
            self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None


def hold(run_dir: str | Path) -> RunLock:
    """Lock ``run_dir`` for this process (creating the folder if needed) or raise :class:`RunFolderBusy`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(handle)
        os.close(handle)
        raise RunFolderBusy(
            f"out: run folder {str(run_dir)!r} is in use by process {holder.get('pid', '?')} on host {holder.get('host', '?')}"
            f" (since {holder.get('started', '?')}); wait for it to end, stop it, or choose another --name"
        ) from None
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    os.ftruncate(handle, 0)
    os.pwrite(handle, record.encode(), 0)
    return RunLock(path, handle)


def _read_holder(handle: int) -> dict:
    try:
        return json.loads(os.pread(handle, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        return {}


def is_lock_file(path: Path) -> bool:
    return path.name == LOCK_NAME
