"""The tracking functions re-exported as ``nbops.*``: start a run, log to it, query runs."""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _config
from .._errors import NbopsError
from ..store import get_store
from . import active, background, capture
from .run import STATUSES, Run, unsaved_runs

if TYPE_CHECKING:
    import pandas as pd


# -- store location ------------------------------------------------------------------


def set_store(path: str | os.PathLike | None) -> Path:
    """Use the store folder ``path`` from now on (None: back to the default lookup).
    Returns the folder."""
    _config.set_store_path(path)
    return _config.store_path()


def get_store_path() -> Path:
    """The store folder in use now."""
    return _config.store_path()


# -- runs ----------------------------------------------------------------------------


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    tags: dict[str, Any] | None = None,
    parent_id: str | None = None,
    capture_env: bool = True,
) -> Run:
    """Start a run and make it the active one. Use it as a context manager::

        with nbops.start_run(name="rf", experiment="wine") as run:
            nbops.log_metric("accuracy", 0.93)

    A run started while another is active in this process is nested: its
    ``parent_id`` is that run's id unless given (a full id or a unique prefix).

    Returns the :class:`Run`. Raises StoreError if the store cannot be written,
    RunNotFoundError for an unknown ``parent_id``.
    """
    if parent_id is None and active.current() is not None:
        parent_id = active.current().run_id
    elif parent_id is not None and len(str(parent_id)) < 12:  # a prefix of a run id
        parent_id = get_store().resolve_run_id(str(parent_id))
    code: dict[str, Any] = {}
    env: dict[str, Any] = {}
    if capture_env:
        env = capture.env_info()
        code = capture.git_info()
        main = getattr(__import__("__main__"), "__file__", None)
        if main:
            code["script"] = str(Path(main).resolve())
    run = Run(name=name, experiment=experiment, tags=tags, parent_id=parent_id, code=code, env=env)
    active.push(run)
    return run


def active_run() -> Run | None:
    """The innermost run started in this process and not yet ended, or None."""
    return active.current()


def active_runs() -> list[Run]:
    """Runs started in this process and not yet ended, outermost first."""
    return active.all_runs()


def flush_if_active(run_id: str) -> None:
    """Write what a run still open in this process buffers, so readers see it; first
    wait for the run's background writes (model files of a tracked cell)."""
    background.wait(run_id)
    for run in active.all_runs():
        if run.run_id == run_id:
            run.flush()


def _current(action: str) -> Run:
    run = active_run()
    if run is None:
        raise NbopsError(
            f"no active run to {action}; start one with `with nbops.start_run():` "
            "or put %%track on the cell"
        )
    return run


def end_run(status: str = "FINISHED") -> None:
    """End the active run with ``status`` (FINISHED, FAILED or KILLED). With no active
    run, retry saving runs whose end could not be written before (they keep the status
    they ended with). Raises NbopsError when there is nothing to end, StoreError when
    the store still cannot be written."""
    if active.current() is None and unsaved_runs():
        for run in unsaved_runs():
            run.end(status)
        return
    _current("end").end(status)


def log_param(key: str, value: Any) -> None:
    """Record one param of the active run. Raises NbopsError with no active run, for a bad
    name, or when the param already has another value (type included)."""
    _current("log a param").log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Record several params of the active run (as log_param, for each)."""
    _current("log params").log_params(params)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Record a metric of the active run; ``step`` (an integer) adds it to the metric's
    history. Raises NbopsError with no active run, for a bad name, a non-numeric value or a
    non-integer step."""
    _current("log a metric").log_metric(key, value, step=step)


def log_metrics(metrics: dict[str, Any], step: int | None = None) -> None:
    """Record several metrics of the active run at one ``step`` (as log_metric, for each)."""
    _current("log metrics").log_metrics(metrics, step=step)


def log_artifact(path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """Copy a file into the store under the active run; returns {name, sha256, size, kind}."""
    return _current("log an artifact").log_artifact(path, name=name)


def set_tag(key: str, value: Any) -> None:
    """Set a tag (a string label that may change later) on the active run. Raises NbopsError
    with no active run or for a bad name."""
    _current("set a tag").set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active run (as set_tag, for each)."""
    _current("set tags").set_tags(tags)


def set_run_tags(run_id: str, tags: dict[str, Any]) -> dict[str, str]:
    """Add or change tags of any recorded run, finished ones too; returns all its tags.

    Tags label runs for finding them (``best=true``), so unlike params they may change
    after the run. ``run_id`` may be a unique prefix of at least 6 characters. Raises
    RunNotFoundError for an unknown run."""
    tags = {str(k): str(v) for k, v in tags.items()}
    store = get_store()
    run_id = store.resolve_run_id(run_id)
    with store.transaction():
        merged = {**(store.get_run(run_id).get("tags") or {}), **tags}
        store.update_run(run_id, {"tags": merged})
    for run in active.all_runs():  # an open run writes its tags again when it ends
        if run.run_id == run_id:
            run.tags.update(tags)
    return merged


@atexit.register
def _end_dangling_runs() -> None:
    # a script that started a run and never ended it still leaves a finished record
    for run in [*unsaved_runs(), *active.all_runs()]:
        try:
            run.end("FINISHED")  # a run whose end failed keeps the status it ended with
        except Exception:  # noqa: BLE001 - nothing left to report to at exit
            pass


# -- queries -------------------------------------------------------------------------


def get_run(run_id: str) -> dict[str, Any]:
    """The full record of one run as a dict. ``run_id`` may be a unique prefix of at
    least 6 characters. Raises RunNotFoundError naming the id (or, for an ambiguous
    prefix, the candidates)."""
    store = get_store()
    run_id = store.resolve_run_id(run_id)
    flush_if_active(run_id)  # include what an active run still buffers
    return store.get_run(run_id)


def runs(
    experiment: str | None = None,
    status: str | None = None,
    filter: str | None = None,  # noqa: A002 - the public name users know from MLflow
) -> pd.DataFrame:
    """All runs, newest first, as a DataFrame with columns run_id, name, experiment,
    status, start_time, duration, parent_id, then ``params.*``, ``metrics.*``, ``tags.*``.

    ``filter`` is a pandas query over those columns, with backticks for dotted names:
    ``"`metrics.accuracy` > 0.9 and `params.max_depth` == 3"``.
    """

    if status is not None and status not in STATUSES:
        raise NbopsError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    background.wait()  # tracked cells of this process whose model files are being written
    frame = get_store().runs_table(experiment=experiment, status=status)
    if filter:
        try:
            frame = frame.query(filter)
        except Exception as exc:  # noqa: BLE001 - pandas raises many types here
            raise NbopsError(
                f"cannot apply filter {filter!r}: {exc}. Use pandas query syntax with "
                'backticks around dotted names, e.g. "`metrics.accuracy` > 0.9"'
            ) from exc
    return frame.reset_index(drop=True)


def metric_history(run_id: str, key: str) -> pd.DataFrame:
    """Every logged value of one metric of one run: DataFrame(step, value, timestamp).
    ``run_id`` may be a unique prefix of at least 6 characters. Raises
    RunNotFoundError for an unknown run and NbopsError for an unknown metric."""
    import pandas as pd

    store = get_store()
    run_id = store.resolve_run_id(run_id)
    flush_if_active(run_id)  # include what an active run still buffers
    doc = store.get_run(run_id)
    steps = store.get_steps(run_id, key)
    if steps is None:
        if key not in (doc.get("metrics") or {}):
            known = sorted(doc.get("metrics") or {})
            raise NbopsError(
                f"run {run_id} has no metric {key!r}; its metrics are {known or 'none'}"
            )
        stamp = pd.Timestamp(doc.get("end_time") or doc["start_time"])
        return pd.DataFrame({"step": [0], "value": [doc["metrics"][key]], "timestamp": [stamp]})
    frame = pd.DataFrame(
        {
            "step": steps["steps"],
            "value": [float(v) if v is not None else float("nan") for v in steps["values"]],
            "timestamp": pd.to_datetime(steps["timestamps"], unit="s", utc=True),
        }
    )
    return frame.sort_values("step", kind="stable").reset_index(drop=True)
