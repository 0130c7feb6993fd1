"""Monitoring glue: a drift report stored on a run, and the alert rules it fires.

This sits above ``drift`` (which only computes and renders reports) and ``tracking``
(which records runs): :func:`log_drift` records a report's metrics and its JSON and
HTML renderings on a run, then evaluates the alert rules of :mod:`nbops.alerts`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from . import alerts
from ._errors import DriftError
from ._util import unique_name
from .drift.report import DriftReport
from .store import get_store
from .tracking.api import active_run, start_run


def log_drift(report: DriftReport, run_id: str | None = None) -> dict[str, Any]:
    """Store ``report`` on a run: its flat metrics (``report.metrics()``) and the JSON and
    HTML reports as artifacts (kind "drift_report"), then evaluates the alert rules
    (``nbops.alerts``) on those metrics.

    The run is ``run_id`` if given (it may be finished), else the active run, else a new
    run named "drift" that is ended at once. Returns ``{run_id, metrics, artifacts, alerts}``.
    Raises RunNotFoundError for an unknown run id."""
    if not isinstance(report, DriftReport):
        raise DriftError(
            f"log_drift needs a DriftReport (from nbops.drift), got {type(report).__name__}"
        )
    metrics = report.metrics()
    with tempfile.TemporaryDirectory(prefix="nbops-drift-") as tmp:
        jpath = Path(tmp, "drift_report.json")
        jpath.write_text(report.to_json(), encoding="utf-8")
        hpath = Path(tmp, "drift_report.html")
        report.to_html(hpath)
        if run_id is None:
            active = active_run()
            if active is not None:
                return _log_to(active, metrics, jpath, hpath)
            with start_run(name="drift", tags={"kind": "drift"}) as run:
                return _log_to(run, metrics, jpath, hpath)
        active = active_run()
        if active is not None and active.run_id == run_id:
            return _log_to(active, metrics, jpath, hpath)
        return _log_to_stored_run(run_id, metrics, jpath, hpath)


def _log_to(run: Any, metrics: dict[str, float], jpath: Path, hpath: Path) -> dict[str, Any]:
    run.log_metrics(metrics)
    arts = [
        run.log_artifact(jpath, kind="drift_report"),
        run.log_artifact(hpath, kind="drift_report"),
    ]
    run.set_tag("drift.verdict", "drift" if metrics["drifted"] else "no drift")
    return _alert({"run_id": run.run_id, "metrics": metrics, "artifacts": arts})


def _alert(logged: dict[str, Any]) -> dict[str, Any]:
    # alert rules see every logged drift report; delivery problems only warn
    logged["alerts"] = alerts.check(logged["metrics"], context=f"run {logged['run_id']}")
    return logged


def _log_to_stored_run(
    run_id: str, metrics: dict[str, float], jpath: Path, hpath: Path
) -> dict[str, Any]:
    """A run that is not open in this process (e.g. finished): update its record."""
    store = get_store()
    arts = []
    for p in (jpath, hpath):
        sha, size = store.artifacts.put_file(p)
        arts.append({"name": p.name, "sha256": sha, "size": size, "kind": "drift_report"})
    with store.transaction():
        doc = store.get_run(run_id)  # RunNotFoundError names the id
        doc["metrics"].update(metrics)
        names = {a["name"] for a in doc.get("artifacts", [])}
        for a in arts:
            a["name"] = unique_name(a["name"], names)
            names.add(a["name"])
        doc["tags"]["drift.verdict"] = "drift" if metrics["drifted"] else "no drift"
        store.update_run(
            run_id,
            {
                "metrics": doc["metrics"],
                "artifacts": [*doc.get("artifacts", []), *arts],
                "tags": doc["tags"],
            },
        )
    return _alert({"run_id": run_id, "metrics": metrics, "artifacts": arts})
