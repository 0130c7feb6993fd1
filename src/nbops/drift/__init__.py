"""Data and model drift: ``nbops.drift(reference, current)`` -> DriftReport.

stats.py holds the vectorised tests, compute.py prepares columns and runs them,
report.py renders reports (nbops.monitoring stores them on runs), plots.py draws aggregated distributions.
"""

import sys

from .compute import DriftWarning, drift
from .report import DriftReport
from .stats import METHODS

__all__ = ["METHODS", "DriftReport", "DriftWarning", "drift"]


def _make_callable() -> None:
    # `nbops.drift` is both this package and the function: once the package is imported
    # Python may bind the package as `nbops.drift`, so calling it must still work.
    import sys
    import types

    class _DriftModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return drift(*args, **kwargs)

    module = sys.modules[__name__]
    module.__class__ = _DriftModule


_make_callable()
_module = sys.modules[__name__]  # `nbops.drift` resolves to this (callable) module
