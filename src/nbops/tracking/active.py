"""The runs open in this process, innermost last: the stack ``nbops.active_run()``
reads. Runs push themselves when they start and leave when they end; other parts
(datasets, magics) only read it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Run

_stack: list[Run] = []
_lock = threading.Lock()


def push(run: Run) -> None:
    """Make ``run`` the innermost active run."""
    with _lock:
        _stack.append(run)


def forget(run: Run) -> None:
    """Take ``run`` off the stack (it ended); nothing happens when it is not there."""
    with _lock:
        if run in _stack:
            _stack.remove(run)


def current() -> Run | None:
    """The innermost run started in this process and not yet ended, or None."""
    with _lock:
        return _stack[-1] if _stack else None


def all_runs() -> list[Run]:
    """Runs started in this process and not yet ended, outermost first."""
    with _lock:
        return list(_stack)


def _hand_to_datasets() -> None:
    # datasets links logged DataFrames to the active run without importing tracking
    from .. import datasets

    datasets.set_open_runs(all_runs)


_hand_to_datasets()
