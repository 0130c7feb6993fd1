"""Which process wrote a run, and whether it is still alive.

A run records ``host``, ``pid`` and ``proc`` (the process's start time, from
``/proc/<pid>/stat`` on Linux, with the boot id). A RUNNING run whose writer was on
this host and whose pid is gone, or now belongs to a process that started at another
time (the pid was reused), was orphaned: its writer died without ending it, and
readers show it as KILLED.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """An identifier of when process ``pid`` started (None if it does not exist or the
    system cannot tell)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = stat[stat.rfind(b")") + 2 :].split()
    return f"{_boot_id()}:{int(fields[19])}" if len(fields) > 19 else ""


@functools.lru_cache(maxsize=1)
def host() -> str:
    """This machine's host name."""
    return socket.gethostname()


def identity() -> dict[str, object]:
    """``{host, pid, proc}`` of this process, recorded on every run it starts."""
    return {"host": host(), "pid": os.getpid(), "proc": start_time(os.getpid()) or None}


def alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


_checked: dict[tuple, tuple[bool, float]] = {}


def orphaned(doc: dict) -> bool:
    """True for a RUNNING run whose writer on this host is gone (or its pid reused)."""
    if doc.get("status") != "RUNNING" or doc.get("host") != host():
        return False
    pid = doc.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    key = (pid, doc.get("proc"))
    hit = _checked.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[1] < 1.0:
        return hit[0]
    if pid == os.getpid():
        dead = bool(doc.get("proc")) and doc.get("proc") != start_time(pid)
    elif not alive(pid):
        dead = True
    else:
        recorded, current = doc.get("proc"), start_time(pid)
        dead = bool(recorded) and current is not None and current != "" and current != recorded
    _checked[key] = (dead, now)
    return dead
