"""Stages: None -> Staging -> Production -> Archived, with promotion gates and rollback.

A move to Staging or Production first evaluates the gate rules of the model that apply
to that stage (:mod:`.gates`, :mod:`.gate_checks`). When one fails the move raises
GateError listing every rule, and the stage stays as it was; ``force=True`` with a
``reason`` moves anyway and writes a ``gate_override`` event. Rollback does not evaluate
gates: it returns to a version that already served.
"""

from __future__ import annotations

import copy
from typing import Any

from .._errors import GateError, RegistryError
from .._util import utc_now
from ..store import Store, get_store
from .audit import events, record_event
from .gate_checks import GATED_STAGES, applicable_rules, evaluate_gates, reusable_evaluation
from .naming import resolve, stage_name, unknown_model, versions_of
from .views import format_gate_results


def gate_failure_message(name: str, version: int, stage: str, evaluation: dict[str, Any]) -> str:
    """GateError's message: which move was refused, every rule's result, the way out."""
    failed = sum(1 for r in evaluation["results"] if not r["passed"])
    return (
        f"version {version} of {name!r} did not move to {stage}: {failed} of "
        f"{len(evaluation['results'])} gate rules failed\n"
        + format_gate_results(evaluation["results"])
        + f"\nFix the model, or override with nbops.transition({name!r}, {version}, "
        f"{stage!r}, force=True, reason='...') (recorded in the audit log)"
    )


def _move(
    store: Store,
    rec: dict[str, Any],
    target: str | None,
    action: str,
    reason: str | None,
    **extra: Any,
) -> None:
    before = rec.get("stage")
    store.update_model(rec["name"], rec["version"], {"stage": target, "updated": utc_now()})
    record_event(store, action, rec["name"], rec["version"], before, target, reason, **extra)


def transition(
    name: str,
    version: Any,
    stage: Any,
    archive_existing: bool = True,
    reason: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Move a version to ``stage`` (None, 'Staging', 'Production', 'Archived').

    A move to Staging or Production evaluates the model's gate rules for that stage
    first (see :func:`nbops.set_gates`); the results are kept with the version
    (``get_model(...)["gates"]``) and in the audit log. With ``archive_existing`` (the
    default), moving a version to Production archives the version(s) in Production
    before it. Returns the updated record; moving a version to the stage it is in
    changes nothing. Raises GateError (listing every rule with its measured value,
    threshold and verdict) when a gate fails and ``force`` is False -- the stage then
    stays as it was; ``force=True`` needs a ``reason`` and is recorded as a
    ``gate_override`` event. Raises RegistryError for an unknown stage, model or
    version, or ``force`` without a reason."""
    target = stage_name(stage)
    if force and not (reason and str(reason).strip()):
        raise RegistryError(
            "force=True overrides the promotion gates and needs a reason, "
            "e.g. reason='hotfix approved by the on-call lead'"
        )
    store = get_store()
    rec = resolve(store, name, version=version)
    if rec.get("stage") == target:
        return copy.deepcopy(rec)
    evaluation = None
    if target in GATED_STAGES and applicable_rules(name, target):
        evaluation = reusable_evaluation(store, rec, target)
        if evaluation is None:
            evaluation = evaluate_gates(name, rec["version"], stage=target, record=True)
        if not evaluation["passed"] and not force:
            raise GateError(
                gate_failure_message(name, rec["version"], target, evaluation),
                name,
                rec["version"],
                target,
                evaluation["results"],
            )
    with store.transaction():
        rec = resolve(store, name, version=version)
        if rec.get("stage") == target:
            return copy.deepcopy(rec)
        if evaluation is not None and not evaluation["passed"]:
            failed = [r["rule"] for r in evaluation["results"] if not r["passed"]]
            record_event(
                store,
                "gate_override",
                name,
                rec["version"],
                rec.get("stage"),
                target,
                reason,
                failed=failed,
                results=evaluation["results"],
            )
        _move(store, rec, target, "transition", reason)
        if target == "Production" and archive_existing:
            for other in versions_of(store, name):
                if other["version"] != rec["version"] and other.get("stage") == "Production":
                    why = f"superseded by version {rec['version']}" + (
                        f": {reason}" if reason else ""
                    )
                    _move(store, other, "Archived", "transition", why)
        return copy.deepcopy(resolve(store, name, version=rec["version"]))


def archive_model(name: str, version: Any, reason: str | None = None) -> dict[str, Any]:
    """Move a version to Archived; returns its record (RegistryError for an unknown one)."""
    return transition(name, version, "Archived", reason=reason)


def rollback(name: str, reason: str | None = None) -> dict[str, Any]:
    """Make the version that was Production before the current one Production again;
    the current one goes to Archived. Both moves are logged as ``rollback`` events.

    Rolling back twice returns to where you started (each rollback is itself a change
    of Production). Returns the record of the version now in Production. Raises
    RegistryError if no version is in Production or none was before it."""
    store = get_store()
    with store.transaction():
        all_versions = versions_of(store, name)
        if not all_versions:
            raise unknown_model(store, name)
        live = {rec["version"]: rec for rec in all_versions}
        promotions = [
            e
            for e in events(store, name)
            if e.get("to") == "Production"
            and e.get("version") in live
            and e.get("action") in ("transition", "rollback")
        ]
        in_production = {v for v, r in live.items() if r.get("stage") == "Production"}
        if not in_production:
            raise RegistryError(
                f"no version of {name!r} is in Production, so there is nothing to roll back; "
                f"promote one with nbops.transition({name!r}, version, 'Production')"
            )
        # the current Production version is the one promoted last
        ordered = [e["version"] for e in promotions if e["version"] in in_production]
        current = ordered[-1] if ordered else max(in_production)
        last_promotion = max(
            (k for k, e in enumerate(promotions) if e["version"] == current),
            default=len(promotions),
        )
        previous = next(
            (
                e["version"]
                for e in reversed(promotions[:last_promotion])
                if e["version"] != current
            ),
            None,
        )
        if previous is None:
            raise RegistryError(
                f"version {current} is the first Production version of {name!r}; there is no "
                "earlier Production version to roll back to"
            )
        _move(store, live[current], "Archived", "rollback", reason)
        _move(store, live[previous], "Production", "rollback", reason)
        return copy.deepcopy(resolve(store, name, version=previous))
