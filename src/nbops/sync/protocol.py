"""How an nbops run and model version look on an MLflow tracking server.

This module owns the mapping between the two worlds; ``push`` and ``pull`` only move
what it describes. MLflow's REST API (through ``mlflow.MlflowClient``, the client of
``mlflow-skinny``) is the only way we talk to the server, so anything MLflow can reach
works: ``http(s)://host:port``, ``sqlite:///file.db``, ``databricks``. Authentication is
MLflow's own (``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME`` / ``PASSWORD``,
Databricks profiles): nbops reads no secret and stores none.

A run
-----
- experiment: the MLflow experiment of the same name (created when missing).
- name, start time (UTC, ms), status and end time: the run's own fields.
- params: ``log_batch`` params, strings as they are and other JSON values as JSON text
  (``3``, ``0.1``, ``true``, ``[1, 2]``), cut to MLflow's 6,000 characters. The typed
  values travel whole in the ``nbops.params`` tag (JSON) or, past 8,000 characters, in
  ``nbops/run.json``; pull reads them back to the same Python values.
- metrics: every step of every history as ``Metric(key, value, ms, step)``; a metric
  logged once is one point at step 0 stamped with the run's end time. MLflow keeps an
  infinity as the largest finite double; pull turns it back into the infinity. ``log_batch``
  calls stay within MLflow's limits (1,000 metrics, 100 params, 100 tags a call).
- tags: the run's tags, plus ``nbops.run_id``, ``mlflow.runName``,
  ``mlflow.parentRunId`` (the remote id of the parent run), ``mlflow.source.name``
  (notebook or script), ``mlflow.source.type`` (NOTEBOOK or LOCAL),
  ``mlflow.source.git.commit``.
- artifacts: each file under its nbops name, bytes identical; ``nbops/run.json`` holds
  the nbops record (typed params, code, environment, dataset inputs, artifact digests,
  logged models, error), and ``nbops/cell.py`` the cell source when there is one.
- dataset inputs: MLflow dataset inputs named after the dataset, with nbops' digest,
  schema and profile (JSON), source type ``nbops``.

A model version
---------------
The version's run is pushed first. Its skops file and an ``MLmodel`` (sklearn flavour,
``serialization_format: skops``, the recorded ``skops_trusted_types``, and a
python_function flavour) go to ``nbops-models/NAME/vVERSION`` among the run's
artifacts; a registered model version points there, so
``mlflow.sklearn.load_model("models:/NAME/V")`` loads it (MLflow asks for
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` before deserialising any model). The
stage becomes MLflow's stage, aliases MLflow aliases, the description the version
description; tags ``nbops.record`` (the registry record) and ``nbops.audit.NNNN`` (one
audit event each) carry the rest.

Idempotence
-----------
The store keeps one link per (server, kind, local id): the remote id and a digest of
what was sent. A run whose digest did not change is not sent again (no request at
all); a changed one updates its remote twin (params and tags are set again, only new
metric steps are sent). Links are written in small batches while a push runs, and a
push also adopts remote runs that carry an ``nbops.run_id`` it has no link for (an
interrupted push), so running it again resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._errors import SyncError

#: MLflow's limits (mlflow/utils/validation.py)
MAX_METRICS = 1000
MAX_PARAMS = 100
MAX_TAGS = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000

TAG_RUN_ID = "nbops.run_id"
TAG_PARAMS = "nbops.params"
TAG_RECORD = "nbops.record"
TAG_AUDIT = "nbops.audit."
RECORD_ARTIFACT = "nbops/run.json"
CELL_ARTIFACT = "nbops/cell.py"
MODELS_DIR = "nbops-models"
RESERVED_TAGS = ("mlflow.", "nbops.")
QUIET_LOGGERS = (
    "mlflow.tracking._tracking_service.client",
    "mlflow.store.model_registry.abstract_store",
    "mlflow.tracking.client",
)
WORKERS = int(os.environ.get("NBOPS_SYNC_WORKERS", "8"))


def server_key(uri: str) -> str:
    """The name a server's links are kept under: the URI without credentials or a
    trailing slash."""
    uri = str(uri).strip().rstrip("/")
    if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = uri.split("://", 1)
        host = rest.split("@", 1)[1]
        return f"{scheme}://{host}"
    return uri


def connect(uri: str) -> Any:
    """An ``mlflow.MlflowClient`` for ``uri``. Raises SyncError when mlflow is missing
    or the URI is empty."""
    # a notebook cell should show our summary, not one progress bar per artifact
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # else set_terminated fetches the run again only to print its URL
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if not uri or not str(uri).strip():
        raise SyncError("give the MLflow tracking URI, e.g. http://127.0.0.1:5000")
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise SyncError(
            "push and pull need MLflow's client: pip install 'nbops[mlflow]' "
            "(it installs mlflow-skinny)"
        ) from None
    return MlflowClient(tracking_uri=str(uri), registry_uri=str(uri))


@contextmanager
def quiet() -> Iterator[None]:
    """Silence MLflow's per-run "View run at ..." lines and the registry's wait notes
    while a push or pull runs (our summary says what happened)."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="mlflow")
            warnings.filterwarnings("ignore", message=".*transition_model_version_stage.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def digest(value: Any) -> str:
    """A short sha256 of a JSON-able value (what a link remembers was sent)."""
    text = json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def param_text(value: Any) -> str:
    """A param value as MLflow's string: strings as they are, the rest as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_LENGTH]


def parse_param(text: str) -> Any:
    """Best effort for runs nbops did not make: MLflow params are strings and stay so."""
    return text


def to_ms(stamp: str | None) -> int | None:
    """An nbops ISO time stamp as MLflow's epoch milliseconds."""
    if not stamp:
        return None
    from .._util import parse_time

    return int(round(parse_time(stamp).timestamp() * 1000))


def from_ms(ms: int | None) -> str | None:
    """MLflow's epoch milliseconds as an nbops time stamp."""
    if ms is None:
        return None
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return when.isoformat(timespec="milliseconds")


def source_tags(doc: dict[str, Any]) -> dict[str, str]:
    """MLflow's ``mlflow.source.*`` tags from a run's code record."""
    code = doc.get("code") or {}
    tags: dict[str, str] = {}
    if code.get("notebook") or code.get("source"):
        tags["mlflow.source.type"] = "NOTEBOOK"
        tags["mlflow.source.name"] = str(code.get("notebook") or "notebook cell")
    elif code.get("script"):
        tags["mlflow.source.type"] = "LOCAL"
        tags["mlflow.source.name"] = str(code["script"])
    commit = code.get("commit") or code.get("git_commit")
    if commit:
        tags["mlflow.source.git.commit"] = str(commit)
    return tags


LOG_BATCH_ENDPOINT = "/api/2.0/mlflow/runs/log-batch"


def log_batch(
    client: Any,
    run_id: str,
    metrics: list[tuple[str, float, int, int]],
    params: list[tuple[str, str]],
    tags: list[tuple[str, str]],
) -> None:
    """One ``runs/log-batch`` call: metrics as (key, value, ms, step), params and tags as
    (key, value). Against a REST server the JSON body is written directly and sent
    through MLflow's own ``http_request`` (same URL, headers, auth and retries as the
    client): MLflow's client goes through protobuf and indented JSON, which for a
    500-point batch costs ten times the CPU. Any other store (``sqlite:///``, a plugin)
    gets ``MlflowClient.log_batch``."""
    host_creds = _rest_host_creds(client)
    if host_creds is None:
        from mlflow.entities import Metric, Param, RunTag

        client.log_batch(
            run_id,
            metrics=[Metric(*m) for m in metrics],
            params=[Param(k, v) for k, v in params],
            tags=[RunTag(k, v) for k, v in tags],
        )
        return
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    body = {
        "run_id": run_id,
        "metrics": [
            {"key": k, "value": _proto_double(v), "timestamp": ms, "step": step}
            for k, v, ms, step in metrics
        ],
        "params": [{"key": k, "value": v} for k, v in params],
        "tags": [{"key": k, "value": v} for k, v in tags],
    }
    # one new connection per run: a server with several worker processes (uvicorn,
    # MLflow's default) keeps a kept-alive connection on the worker that accepted it, so
    # without this a few workers take every run while the others idle
    response = http_request(
        host_creds, LOG_BATCH_ENDPOINT, "POST", json=body, extra_headers={"Connection": "close"}
    )
    verify_rest_response(response, LOG_BATCH_ENDPOINT)


def _rest_host_creds(client: Any) -> Any:
    """The host credentials of ``client``'s tracking store when it talks REST, else None."""
    try:
        from mlflow.store.tracking.rest_store import RestStore
    except ImportError:  # pragma: no cover - every supported mlflow has it
        return None
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if type(store) is not RestStore:  # a subclass may route or sign requests its own way
        return None
    return store.get_host_creds()


def _proto_double(value: float) -> float | str:
    """A double as protobuf's JSON writes it: NaN and the infinities as strings."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def from_mlflow_value(value: float) -> float:
    """A metric value as logged: MLflow stores an infinity as the largest finite double
    (either sign), so those two values read back as infinities."""
    if value == _MAX_DOUBLE:
        return float("inf")
    if value == -_MAX_DOUBLE:
        return float("-inf")
    return value


_MAX_DOUBLE = sys.float_info.max


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in lists of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def mlflow_error(what: str, exc: BaseException) -> str:
    """One line naming what failed and MLflow's reason (no traceback)."""
    message = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return f"{what}: {type(exc).__name__}: {message[0] if message else ''}"[:500]
