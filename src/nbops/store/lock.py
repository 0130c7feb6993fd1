"""The store's write lock, and who holds it.

``flock()`` on ``nbops.db.lock``, a file kept open by each writing process: it costs
microseconds, and the kernel releases it when the holder exits or is killed, so a
dead writer never leaves the store locked and nobody ever needs to delete the lock
file (deleting it while a writer holds it would let a second writer in). The holder
writes ``{"pid", "host", "since"}`` into the file after taking the lock, so that a
process that waits too long can say who holds it. Without fcntl (Windows) the
filelock package does the same job, more slowly.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from .._util import utc_now

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None


class ProcessLock:
    """An exclusive lock between processes (and forks) on one lock file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._fallback = None
        if fcntl is None:
            from filelock import FileLock

            self._fallback = FileLock(path)

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; TimeoutError otherwise."""
        if self._fallback is not None:
            from filelock import Timeout

            try:
                self._fallback.acquire(timeout=timeout)
            except Timeout as exc:
                raise TimeoutError(str(exc)) from exc
            return
        if self._fd is None or self._pid != os.getpid():  # after fork: our own description
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(self.path) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        self._write_holder()

    def _write_holder(self) -> None:
        info = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": utc_now(),
                "t": time.time(),
            }
        ).encode()
        try:
            os.pwrite(self._fd, info.ljust(256), 0)
        except OSError:
            pass  # the holder record is a courtesy; the lock itself is held

    def release(self) -> None:
        """Let the next writer in."""
        if self._fallback is not None:
            self._fallback.release()
        elif self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def holder(self) -> dict[str, Any] | None:
        """``{pid, host, since, t}`` of the last process that took the lock, or None."""
        try:
            with open(self.path, "rb") as fh:
                return json.loads(fh.read(4096).strip() or b"null")
        except (OSError, ValueError):
            return None


def describe_holder(info: dict[str, Any] | None) -> str:
    """``pid 123 on host h since 2026-...T14:00:00+00:00 (42 s ago)`` or a fallback."""
    if not info:
        return "a process that left no record of itself"
    ago = f" ({time.time() - info['t']:.0f} s ago)" if isinstance(info.get("t"), float) else ""
    here = " (this host)" if info.get("host") == socket.gethostname() else ""
    return f"pid {info.get('pid')} on host {info.get('host')}{here} since {info.get('since')}{ago}"
