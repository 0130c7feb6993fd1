"""Heavy captures off the cell's critical path: one background thread writes the model
files of tracked cells, so the cell returns as soon as its own code is done.

Contract:

* A run with pending writes stays RUNNING and lists them in ``models_pending``; its
  job writes each model (``log_model``: the file goes into the content-addressed
  artifact store first, the run's model entry after it), clears ``models_pending``
  and ends the run. The run is complete when its files are written.
* ``nbops.get_run``, registering a run's model (both through
  ``api.flush_if_active``), ``nbops.runs``, ``%nbops flush`` and interpreter exit (a
  kernel shutdown) wait for the run's jobs: :func:`wait`.
* A kernel that dies mid-write leaves the run RUNNING with ``models_pending`` naming
  what is missing; no model entry ever points at a file that was not fully written.
* ``NBOPS_BACKGROUND=0`` runs every job at once, on the caller's thread.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import warnings
from collections.abc import Callable

_jobs: queue.Queue[tuple[str, Callable[[], None]]] = queue.Queue()
_pending: dict[str, int] = {}
_cond = threading.Condition()
_thread: threading.Thread | None = None


def enabled() -> bool:
    """Whether jobs run in the background (``$NBOPS_BACKGROUND`` is not 0/false/off)."""
    return os.environ.get("NBOPS_BACKGROUND", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def _worker() -> None:
    while True:
        run_id, job = _jobs.get()
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - one failed job must not stop the others
            warnings.warn(
                f"nbops: a background write for run {run_id} failed ({type(exc).__name__}: {exc})",
                stacklevel=1,
            )
        finally:
            with _cond:
                _pending[run_id] -= 1
                if not _pending[run_id]:
                    del _pending[run_id]
                _cond.notify_all()


def submit(run_id: str, job: Callable[[], None]) -> None:
    """Run ``job`` for ``run_id`` on the background thread (at once when disabled)."""
    global _thread
    if not enabled():
        job()
        return
    with _cond:
        _pending[run_id] = _pending.get(run_id, 0) + 1
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_worker, name="nbops-writer", daemon=True)
            _thread.start()
    _jobs.put((run_id, job))


def pending(run_id: str | None = None) -> int:
    """How many jobs are queued or running (for ``run_id``, or in all)."""
    with _cond:
        return _pending.get(run_id, 0) if run_id else sum(_pending.values())


def wait(run_id: str | None = None, timeout: float | None = None) -> bool:
    """Block until the jobs of ``run_id`` (None: all jobs) are done. Returns False when
    ``timeout`` seconds passed first. Called from the writer itself it returns at once."""
    if threading.current_thread() is _thread:
        return True
    with _cond:
        return _cond.wait_for(
            lambda: not (_pending.get(run_id) if run_id else _pending), timeout=timeout
        )


@atexit.register
def _drain() -> None:
    # a kernel shutdown waits for model files; a kernel killed outright cannot
    wait(timeout=float(os.environ.get("NBOPS_EXIT_WAIT", "300")))
