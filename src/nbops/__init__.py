"""nbops: notebook-native MLOps.

``%load_ext nbops`` registers ``%%track`` and ``%nbops``. The Python API below works
in notebooks and plain scripts alike. Everything is imported lazily, so
``import nbops`` stays fast: pandas, sklearn, scipy and plotly load only when a
function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import (
    AlertDeliveryWarning,
    AlertError,
    ArtifactError,
    CheckConfigError,
    DriftError,
    DriftWarning,
    ExportError,
    GateError,
    GateRuleError,
    ModelIntegrityError,
    NbopsError,
    QualityError,
    RegistryError,
    ReproduceWarning,
    RunNotFoundError,
    ServiceStartError,
    StoreDamageWarning,
    StoreError,
    SweepError,
    SweepSpecError,
    SyncError,
)

__version__ = "0.1.0"

# public name -> (module, attribute); resolved on first access
_LAZY: dict[str, tuple[str, str]] = {
    # store
    "Client": ("nbops.client", "Client"),
    "set_store": ("nbops.tracking.api", "set_store"),
    "get_store_path": ("nbops.tracking.api", "get_store_path"),
    # tracking
    "start_run": ("nbops.tracking.api", "start_run"),
    "end_run": ("nbops.tracking.api", "end_run"),
    "active_run": ("nbops.tracking.api", "active_run"),
    "log_param": ("nbops.tracking.api", "log_param"),
    "log_params": ("nbops.tracking.api", "log_params"),
    "log_metric": ("nbops.tracking.api", "log_metric"),
    "log_metrics": ("nbops.tracking.api", "log_metrics"),
    "log_artifact": ("nbops.tracking.api", "log_artifact"),
    "set_tag": ("nbops.tracking.api", "set_tag"),
    "set_tags": ("nbops.tracking.api", "set_tags"),
    "set_run_tags": ("nbops.tracking.api", "set_run_tags"),
    "runs": ("nbops.tracking.api", "runs"),
    "get_run": ("nbops.tracking.api", "get_run"),
    "metric_history": ("nbops.tracking.api", "metric_history"),
    "run_page": ("nbops.tracking.listing", "run_page"),
    "Run": ("nbops.tracking.run", "Run"),
    # evaluation: sweeps, comparison, reproduce
    "sweep": ("nbops.tracking.sweep", "sweep"),
    "reproduce": ("nbops.tracking.reproduce", "reproduce"),
    "diff": ("nbops.evaluation", "diff"),
    "best_run": ("nbops.evaluation", "best_run"),
    "compare_widget": ("nbops.widgets.compare", "compare_widget"),
    # registry
    "log_model": ("nbops.tracking.log_model", "log_model"),
    "register": ("nbops.registry.versions", "register"),
    "transition": ("nbops.registry.stages", "transition"),
    "set_alias": ("nbops.registry.versions", "set_alias"),
    "delete_alias": ("nbops.registry.versions", "delete_alias"),
    "get_model": ("nbops.registry.versions", "get_model"),
    "load_model": ("nbops.registry.versions", "load_model"),
    "load_reference": ("nbops.registry.versions", "load_reference"),
    "models": ("nbops.registry.views", "models"),
    "model_history": ("nbops.registry.audit", "model_history"),
    "rollback": ("nbops.registry.stages", "rollback"),
    "lineage": ("nbops.registry.views", "lineage"),
    "archive_model": ("nbops.registry.stages", "archive_model"),
    "delete_model_version": ("nbops.registry.versions", "delete_model_version"),
    "set_gates": ("nbops.registry.gates", "set_gates"),
    "gates": ("nbops.registry.gates", "gates"),
    "evaluate_gates": ("nbops.registry.gate_checks", "evaluate_gates"),
    "registry_widget": ("nbops.widgets.registry", "registry_widget"),
    # the closed loop and CI
    "retrain": ("nbops.loop", "retrain"),
    "monitor_service": ("nbops.loop", "monitor_service"),
    "start_canary": ("nbops.loop", "start_canary"),
    "run_checks": ("nbops.check", "run_checks"),
    # data, quality, drift, alerts ("drift" and "datasets" are callable modules)
    "drift": ("nbops.drift", "_module"),
    "DriftReport": ("nbops.drift.report", "DriftReport"),
    "log_drift": ("nbops.monitoring", "log_drift"),
    "drift_widget": ("nbops.widgets.drift", "drift_widget"),
    "check_quality": ("nbops.quality", "check_quality"),
    # deployment
    "export": ("nbops.serving.export", "export"),
    "start_service": ("nbops.serving.local", "start_service"),
    "monitor": ("nbops.serving.monitor", "monitor"),
    "prediction_log": ("nbops.serving.monitor", "prediction_log"),
    "export_widget": ("nbops.widgets.export", "export_widget"),
    "log_dataset": ("nbops.datasets", "log_dataset"),
    "datasets": ("nbops.datasets", "_module"),
    "alerts": ("nbops.alerts", "_module"),
    # sharing with an MLflow tracking server
    "push": ("nbops.sync", "push"),
    "pull": ("nbops.sync", "pull"),
    "pull_artifacts": ("nbops.sync", "pull_artifacts"),
}

# old public names kept for one release: old name -> new name (a DeprecationWarning
# on use says which to call instead)
_DEPRECATED: dict[str, str] = {
    "compare": "compare_widget",
}


def _error_names() -> list[str]:
    from . import _errors

    return [
        name
        for name, obj in vars(_errors).items()
        if isinstance(obj, type)
        and issubclass(obj, (Exception, Warning))
        and obj.__module__ == _errors.__name__
    ]


# every error class of _errors.py is public (they are imported above by name)
__all__ = sorted([*_LAZY, *_error_names(), "__version__", "load_ipython_extension"])


# subpackages reachable as attributes after a plain `import nbops` (nbops.registry.get_model())
_SUBMODULES = {"registry", "evaluation", "quality", "serving", "store", "tracking", "widgets"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"nbops.{name}")
    if name in _DEPRECATED:
        import warnings

        new = _DEPRECATED[name]
        warnings.warn(
            f"nbops.{name} is deprecated and goes away in the next release; use nbops.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__(new)
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nbops' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbops``: register ``%%track`` and ``%nbops``."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbops``: remove the magics and the hooks ``%%track`` installed."""
    from .magics import unload_ipython_extension as _unload

    _unload(ipython)
