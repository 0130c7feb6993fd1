"""The closed loop: drift or an accuracy drop in a service's traffic -> an alert ->
retraining with the new data -> promotion gates -> a canary -> Production (or a
rollback).

:func:`retrain` re-runs the cell that trained the Production version (its recorded
``%%track`` cell, through :func:`nbops.reproduce`) with named inputs replaced, registers
the result with lineage to the old version and the new data, evaluates the gates, and
either starts a canary on a running service (10% -> 50% -> 100% by default; the service
rolls back by itself when the candidate errs or is slow) or stops at Staging.
:func:`monitor_service` runs the checks of one tick (drift and accuracy of the
service's prediction log, the alert rules, their actions); ``nbops monitor`` repeats it
on a schedule. Every step is an event in the registry's audit log.

A canary on a running :class:`~nbops.serving.local.LocalService` is started by
re-exporting its folder with the candidate (``logs/`` are kept) and restarting the
process on the same port: the service reads its canary plan at start-up.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ._errors import GateError, NbopsError, RegistryError, ReproduceWarning
from .registry import evaluate_gates, get_model, record_event, register, transition
from .store import get_store

DEFAULT_STEPS = [10, 50, 100]
TRAFFIC = "traffic"


def _ipython_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    ns = dict(shell.user_ns) if shell is not None else {}
    ns.setdefault("__name__", "__main__")
    return ns


def traffic(service: Any, label: str = "target", since: Any = None) -> Any:
    """The labelled traffic of a service (a folder or LocalService): the logged input
    columns and the label posted to ``/feedback`` as column ``label``, one row per
    labelled prediction (logged at or after ``since``, a timestamp, when given). Raises
    NbopsError when no label came back yet."""
    import pandas as pd

    from .serving.monitor import prediction_log

    folder = Path(getattr(service, "path", service))
    log = prediction_log(folder)
    if since is not None:
        since = pd.Timestamp(since)
        since = since.tz_localize("UTC") if since.tzinfo is None else since.tz_convert("UTC")
        log = log[log["time"] >= since]
    if "target" not in log.columns or not log["target"].notna().any():
        raise NbopsError(
            f"the service in {folder} has no labelled traffic yet: post labels to "
            "its /feedback route first (or pass a DataFrame or file as data)"
        )
    rows = log[log["target"].notna()]
    inputs = [
        c
        for c in rows.columns
        if c not in ("id", "request_id", "time", "version", "latency_ms", "prediction", "target")
    ]
    out = rows[inputs].reset_index(drop=True)
    out[label] = rows["target"].to_numpy()
    return out


def _load(value: Any, service: Any, since: Any = None) -> tuple[Any, str]:
    """(DataFrame, how to describe it in the audit log) of one ``data`` value."""
    if isinstance(value, str):
        if value == TRAFFIC or value.startswith(TRAFFIC + ":"):
            if service is None:
                raise NbopsError("data source 'traffic' needs the service: pass service=")
            label = value.partition(":")[2] or "target"
            where = f" since {since}" if since is not None else ""
            return (
                traffic(service, label=label, since=since),
                f"labelled traffic of {_folder(service)}{where}",
            )
        from .check import read_source

        return read_source(value, Path.cwd()), value
    if isinstance(value, os.PathLike):
        from .check import read_source

        return read_source(str(value), Path.cwd()), str(value)
    return value, f"a {type(value).__name__} passed in"


def _folder(service: Any) -> Path:
    return Path(getattr(service, "path", service)).expanduser().resolve()


def retrain(
    name: str,
    data: dict[str, Any],
    service: Any = None,
    canary: dict[str, Any] | None = None,
    reason: str | None = None,
    since: Any = None,
    notebook: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Retrain the Production version of model ``name`` with new data.

    ``data`` maps variables the training cell reads to new values: a DataFrame, a file
    path, ``"model:NAME@VERSION"`` (a stored training sample) or ``"traffic"`` (the
    labelled traffic of ``service``, logged at or after ``since`` when given;
    ``"traffic:COLUMN"`` names the label column). The
    cell runs in a copy of the kernel's namespace with those variables replaced; the
    new data is logged as dataset versions ``NAME.VARIABLE`` and the new run registered
    with lineage ``{retrained_from, run_id, data: {VARIABLE: {source, dataset, digest,
    rows}}}``; the gates for
    Production are evaluated. When they pass and ``service`` (a LocalService, or the
    folder of one) is given, a canary starts there (``canary`` overrides the plan:
    steps, min_requests, max_error_rate, max_p99_ms); otherwise the version stops at
    Staging. Returns ``{name, from_version, version, status ("canary", "staging",
    "blocked"), gates, run_id, service}``. Raises RegistryError when nothing is in
    Production, NbopsError when the cell cannot be re-run or does not read a variable
    of ``data`` (the cell's exception is re-raised when it fails).

    ``notebook`` trains by running a notebook instead (nbclient, in the notebook's
    folder, on this store): a first cell sets the variables of ``data`` (written to
    temporary files and read back), and the newest run the notebook records with a
    logged model becomes the new version. NbopsError when a cell raises or no run
    logged a model."""
    from .tracking.capture import analyse_cell

    store = get_store()
    try:
        prod = get_model(name, stage="Production")
    except RegistryError:
        raise RegistryError(
            f"model {name!r} has no Production version to retrain; promote "
            f"one first with nbops.transition({name!r}, version, "
            "'Production')"
        ) from None
    run = store.get_run(prod["run_id"])
    source = (run.get("code") or {}).get("source")
    if notebook is None and not source:
        raise NbopsError(
            f"version {prod['version']} of {name!r} came from run {run['run_id']}, "
            "which has no recorded cell to re-run; train it in a %%track cell, "
            "or pass notebook='train.ipynb'"
        )
    reads = analyse_cell(source).loaded if notebook is None else set(data)
    unread = sorted(set(data) - reads)
    if unread:
        raise NbopsError(
            f"the training cell of run {run['run_id']} does not read {unread}; "
            f"name the variables it reads: {sorted(reads)[:20]}"
        )
    from .datasets import log_dataset

    frames: dict[str, Any] = {}
    described: dict[str, dict[str, Any]] = {}
    for var, value in data.items():
        frames[var], origin = _load(value, service, since)
        # the new data becomes a named dataset version: lineage points at it by digest
        ds = log_dataset(frames[var], f"{name}.{var}", source=origin)
        described[var] = {
            "source": origin,
            "dataset": ds["ref"],
            "digest": ds["digest"],
            "rows": (ds.get("shape") or [None])[0],
        }
    why = reason or "retrain with new data"
    record_event(
        store,
        "retrain_started",
        name,
        prod["version"],
        prod["version"],
        None,
        why,
        data=described,
        run_id=run["run_id"],
        **({"notebook": str(notebook)} if notebook is not None else {}),
    )
    try:
        if notebook is None:
            new_run_id = _train_by_cell(run["run_id"], frames, name)
        else:
            new_run_id = _train_by_notebook(Path(notebook), frames)
    except Exception as exc:
        record_event(
            store,
            "retrain_failed",
            name,
            prod["version"],
            prod["version"],
            None,
            f"{type(exc).__name__}: {exc}",
        )
        raise
    lineage = {"retrained_from": prod["version"], "run_id": run["run_id"], "data": described}
    if notebook is not None:
        lineage["notebook"] = str(notebook)
    rec = register(
        new_run_id, name, description=f"retrained from v{prod['version']}", lineage=lineage
    )
    version = rec["version"]
    result = {
        "name": name,
        "from_version": prod["version"],
        "version": version,
        "run_id": new_run_id,
        "service": None,
    }
    evaluation = evaluate_gates(name, version, stage="Production")
    result["gates"] = evaluation
    if not evaluation["passed"]:
        failed = [r["rule"] for r in evaluation["results"] if not r["passed"]]
        record_event(
            store,
            "retrain_blocked",
            name,
            version,
            None,
            None,
            f"gates failed: {', '.join(failed)}",
            failed=failed,
        )
        result["status"] = "blocked"
        return result
    transition(name, version, "Staging", reason=f"retrained from v{prod['version']}; gates passed")
    if service is None:
        result["status"] = "staging"
        return result
    result["service"] = start_canary(name, version, service, stable=prod["version"], plan=canary)
    result["status"] = "canary"
    return result


def _train_by_cell(run_id: str, frames: dict[str, Any], name: str) -> str:
    """Re-run the recorded cell of ``run_id`` with ``frames`` in a copy of the kernel's
    namespace; returns the new run's id (the cell's exception propagates)."""
    from .tracking.reproduce import reproduce

    ns = _ipython_namespace()
    ns.update(frames)
    with warnings.catch_warnings():  # other input data is the point of retraining
        warnings.simplefilter("ignore", ReproduceWarning)
        return reproduce(run_id, namespace=ns, name=f"{name}-retrain").run_id


def _train_by_notebook(path: Path, frames: dict[str, Any]) -> str:
    """Run a training notebook with ``frames`` set by an injected first cell; returns the
    newest run it recorded that logged a model."""
    import tempfile

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from ._util import utc_now
    from .datasets import sample_bytes

    path = path.expanduser().resolve()
    if not path.is_file():
        raise NbopsError(f"no notebook {str(path)!r} to retrain with")
    store = get_store()
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="nbops-retrain-") as tmp:
        lines = ["import pandas as _pd  # injected by nbops.retrain"]
        for var, frame in frames.items():
            data, fmt = sample_bytes(frame)
            file = Path(tmp) / f"{var}.{fmt}"
            file.write_bytes(data)
            reader = "read_parquet" if fmt == "parquet" else "read_csv"
            lines.append(f"{var} = _pd.{reader}({str(file)!r})")
        nb.cells.insert(0, nbformat.v4.new_code_cell("\n".join(lines)))
        started = utc_now()
        previous = os.environ.get("NBOPS_STORE")
        os.environ["NBOPS_STORE"] = str(store.root)  # the kernel writes to this store
        try:
            NotebookClient(
                nb,
                timeout=1800,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()
        except CellExecutionError as exc:
            raise NbopsError(
                f"the training notebook {path.name} failed: {str(exc).strip().splitlines()[-1]}"
            ) from None
        finally:
            if previous is None:
                os.environ.pop("NBOPS_STORE", None)
            else:
                os.environ["NBOPS_STORE"] = previous
    runs = [
        r for r in store.all_runs() if (r.get("start_time") or "") >= started and r.get("models")
    ]
    if not runs:
        raise NbopsError(
            f"the training notebook {path.name} ran but recorded no run with a "
            "model; track its training cell (%%track) or call nbops.log_model"
        )
    return max(runs, key=lambda r: r.get("start_time") or "")["run_id"]


def start_canary(
    name: str,
    candidate: int,
    service: Any,
    stable: int | None = None,
    plan: dict[str, Any] | None = None,
) -> str:
    """Re-export ``service``'s folder with ``stable`` (default: the Production version)
    serving and ``candidate`` as a canary, and restart it when it is a LocalService (a
    service started elsewhere from that folder picks the canary up when it restarts; a
    warning says so). The candidate must pass the gates for Production first (a passing
    evaluation is reused), so that the service's promotion at 100% is one the registry
    accepts. Returns the folder. Raises GateError (no canary starts) and ExportError /
    RegistryError from export."""
    from .registry.gate_checks import applicable_rules, reusable_evaluation
    from .registry.stages import gate_failure_message
    from .serving.export import export

    folder = _folder(service)
    if stable is None:
        stable = get_model(name, stage="Production")["version"]
    if applicable_rules(name, "Production"):
        rec = get_model(name, version=candidate)
        evaluation = reusable_evaluation(get_store(), rec, "Production") or evaluate_gates(
            name, candidate, stage="Production"
        )
        if not evaluation["passed"]:
            raise GateError(
                gate_failure_message(name, candidate, "Production", evaluation),
                name,
                candidate,
                "Production",
                evaluation["results"],
            )
    steps = {"version": candidate, "steps": list(DEFAULT_STEPS), **(plan or {})}
    steps["version"] = candidate
    export(name, version=stable, path=folder, canary=steps, overwrite=True)
    restart = hasattr(service, "stop") and hasattr(service, "port")
    why = f"canary {steps['steps']} against v{stable}" + (
        "" if restart else "; restart the service to start it (it reads canary.json at start-up)"
    )
    record_event(
        get_store(), "canary_started", name, candidate, stable, candidate, why, service=str(folder)
    )
    if not restart:
        warnings.warn(
            f"nbops: {folder} now holds the canary of version {candidate}; the "
            "service running from it picks it up when restarted",
            stacklevel=2,
        )
    else:
        # the service reads its canary plan at start-up: restart it on the same port,
        # keeping the caller's handle valid
        service.stop()
        type(service).__init__(
            service, folder, port=service.port, token=getattr(service, "token", None)
        )
    return str(folder)


def monitor_service(
    service: Any,
    since: Any = None,
    act: bool = True,
    canary: dict[str, Any] | None = None,
    **drift_options: Any,
) -> dict[str, Any]:
    """One monitoring tick of a service (a folder or LocalService): the drift report of
    its traffic (:func:`nbops.monitor`), accuracy of the labelled part, the alert rules
    fired on them, and the actions those rules carry (``action="retrain"``) when ``act``
    (``canary`` is the plan of a canary a retrain starts, see :func:`retrain`; a retrain
    on ``"traffic"`` uses the same window: logged at or after ``since``, by default
    since the model's last retrain). Returns ``{report, metrics, fired, actions}``. Raises DriftError when the log has no
    rows yet (``since`` filters it)."""
    import json

    from . import alerts
    from .serving.monitor import monitor

    folder = _folder(service)
    model = json.loads((folder / "model.json").read_text()).get("model_name")
    if since is None:  # traffic before the last retrain of this model was acted on already
        since = _last_retrain(model)
    report = monitor(folder, since=since, **drift_options)
    metrics = dict(report.metrics())
    labelled = [w for w in (report.accuracy or []) if w.get("n")]
    if labelled:
        n = sum(w["n"] for w in labelled)
        metrics["accuracy"] = sum(w["accuracy"] * w["n"] for w in labelled) / n
    fired = alerts.check(metrics, context=f"service {folder}")
    actions = []
    for event in fired:
        action = event.get("pending_action")
        if not act or not action or action.get("type") != "retrain":
            continue
        if any(a["rule_id"] == event["rule_id"] for a in actions):
            continue
        target = action.get("model") or model
        pending = _candidate_in_progress(target)
        if pending is not None:
            actions.append(
                {
                    "rule_id": event["rule_id"],
                    "action": "retrain",
                    "status": "skipped",
                    "version": pending,
                    "error": f"version {pending} is still on its way to Production",
                }
            )
            continue
        try:
            outcome = retrain(
                target,
                action.get("data") or {},
                service=service,
                canary=canary,
                since=since,
                notebook=action.get("notebook"),
                reason=f"alert '{event['rule']}': {event['metric']} = {event['value']:.4g}",
            )
            actions.append({"rule_id": event["rule_id"], "action": "retrain", **outcome})
        except Exception as exc:  # noqa: BLE001 - a failed action must not stop monitoring
            # (retrain has recorded retrain_failed; the training cell's own error lands here)
            actions.append(
                {
                    "rule_id": event["rule_id"],
                    "action": "retrain",
                    "status": "error",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
    return {"report": report, "metrics": metrics, "fired": fired, "actions": actions}


def _last_retrain(model: str | None) -> Any:
    from .registry import model_history

    if not model:
        return None
    try:
        events = model_history(model)
    except RegistryError:
        return None
    started = events[events["action"] == "retrain_started"]
    return started["time"].iloc[-1] if len(started) else None


def _candidate_in_progress(model: str) -> int | None:
    """A version newer than Production that is in Staging (a retrain on its way)."""
    from .registry import models

    try:
        frame = models(model)
    except RegistryError:
        return None
    prod = frame[frame["stage"] == "Production"]["version"]
    newest = int(prod.max()) if len(prod) else 0
    staged = frame[(frame["stage"] == "Staging") & (frame["version"] > newest)]["version"]
    return int(staged.max()) if len(staged) else None
