"""Hyperparameter sweeps: run a cell (``%%track --sweep``) or a function
(``nbops.sweep``) once per trial, each trial a child run of one parent run.

The package is split by job: :mod:`.spec` parses the search space, :mod:`.search`
picks the trials (grid, random, bayes), :mod:`.loop` runs them and records the best.
"""

from __future__ import annotations

from .loop import SweepResult, Trial, sweep, sweep_cell
from .search import DEFAULT_TRIALS, SEARCHES
from .spec import Space, SweepError, SweepSpecError, as_space, parse_space

__all__ = [
    "DEFAULT_TRIALS",
    "SEARCHES",
    "Space",
    "SweepError",
    "SweepResult",
    "SweepSpecError",
    "Trial",
    "as_space",
    "parse_space",
    "sweep",
    "sweep_cell",
]
