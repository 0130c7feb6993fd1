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
from .audit import EVENT_SOURCE, HISTORY_COLUMNS, history, record_event
from .gate_checks import evaluate_gates, find_seed_param
from .gates import add_gate, gates, parse_rule, remove_gate, set_gates
from .naming import STAGES
from .stages import archive, rollback, transition
from .versions import delete, delete_alias, get, load, load_reference, register, set_alias
from .views import MODEL_COLUMNS, format_gate_results, format_lineage, lineage, models

__all__ = [
    "EVENT_SOURCE",
    "HISTORY_COLUMNS",
    "MODEL_COLUMNS",
    "STAGES",
    "add_gate",
    "archive",
    "delete",
    "delete_alias",
    "evaluate_gates",
    "find_seed_param",
    "format_gate_results",
    "format_lineage",
    "gates",
    "get",
    "history",
    "lineage",
    "load",
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
