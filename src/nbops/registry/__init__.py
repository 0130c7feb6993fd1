"""The model registry: versions, stages, aliases, promotion gates, an audit log,
lineage and rollback.

A run logs a model (:func:`nbops.log_model`, or ``%%track`` autolog);
:func:`register` turns it into version 1, 2, 3... of a named model. Versions move
between the stages None -> Staging -> Production -> Archived (:func:`transition`);
a move to Staging or Production must pass the model's gate rules (:func:`set_gates`).
Versions carry aliases (:func:`set_alias`) and are loaded back with their sha256 and
trusted types checked (:func:`load`). Every change is an event in the audit log
(:func:`history`); :func:`rollback` uses it to find the previous Production version.

The package, by job:

- ``naming``       stage names, model names, picking one version (by number, stage, alias)
- ``versions``     register, get, load, aliases, delete
- ``stages``       transition (with gates), archive, rollback
- ``gates``        the gate rule grammar and where rules are kept
- ``gate_checks``  measuring the rules on a version
- ``audit``        the audit log: record_event, history
- ``views``        models table, lineage and the text the CLI prints

Every read-modify-write happens inside ``store.transaction()``, so several kernels
or processes can change one registry at once without losing or tearing anything.
"""

from __future__ import annotations

from ..datasets import read_reference_file, reference_max_rows
from ..tracking.log_model import log_model
from .audit import EVENT_SOURCE, HISTORY_COLUMNS, model_history, record_event
from .gate_checks import evaluate_gates, find_seed_param
from .gates import add_gate, gates, parse_rule, remove_gate, set_gates
from .naming import STAGES
from .stages import archive_model, rollback, transition
from .versions import (
    delete_alias,
    delete_model_version,
    get_model,
    load_model,
    load_reference,
    register,
    set_alias,
)
from .views import MODEL_COLUMNS, format_gate_results, format_lineage, lineage, models

__all__ = [
    "EVENT_SOURCE",
    "HISTORY_COLUMNS",
    "MODEL_COLUMNS",
    "STAGES",
    "add_gate",
    "archive_model",
    "delete_model_version",
    "delete_alias",
    "evaluate_gates",
    "find_seed_param",
    "format_gate_results",
    "format_lineage",
    "gates",
    "get_model",
    "model_history",
    "lineage",
    "load_model",
    "load_reference",
    "log_model",
    "models",
    "parse_rule",
    "read_reference_file",
    "record_event",
    "reference_max_rows",
    "register",
    "remove_gate",
    "rollback",
    "set_alias",
    "set_gates",
    "transition",
]


# the names these functions had before they took their public names; kept one release
_OLD_NAMES = {
    "get": "get_model",
    "load": "load_model",
    "history": "model_history",
    "archive": "archive_model",
    "delete": "delete_model_version",
}


def __getattr__(name: str):
    if name in _OLD_NAMES:
        import warnings

        new = _OLD_NAMES[name]
        warnings.warn(
            f"nbops.registry.{name} is deprecated and goes away in the next "
            f"release; use nbops.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module 'nbops.registry' has no attribute {name!r}")
