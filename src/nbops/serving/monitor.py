"""``nbops.monitor(service_path)``: a service's prediction log as a drift report.

The service appends one JSON line per scored row to ``logs/predictions.jsonl``
(rotated to ``.1``, ``.2``... by size) and one per label posted to ``/feedback`` to
``logs/feedback.jsonl``. This module reads them back into DataFrames, compares the
live inputs (and predictions) with the model's training data, and, when labels came
back, reports accuracy over time.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import DriftError, NbopsError

if TYPE_CHECKING:
    import pandas as pd

    from ..drift.report import DriftReport


def _log_files(folder: Path, name: str) -> list[Path]:
    """Oldest first: name.N ... name.1, name."""
    base = folder / "logs" / name
    rotated = sorted(
        base.parent.glob(name + ".*"),
        key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
    )
    rotated = [p for p in rotated if p.suffix[1:].isdigit()]
    return rotated + ([base] if base.is_file() else [])


def _read_lines(files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in files:
        with open(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:  # a line being written right now
                        continue
    return out


def _folder(service_path: str | os.PathLike) -> Path:
    folder = Path(service_path).expanduser()
    if not (folder / "model.json").is_file():
        raise NbopsError(
            f"{folder} is not an nbops service folder (no model.json); pass the "
            "path given to nbops.export(...)"
        )
    return folder


def prediction_log(service_path: str | os.PathLike) -> pd.DataFrame:
    """Every logged prediction, oldest first: id, request_id, time, version,
    latency_ms, prediction, the input columns, and ``target`` when feedback arrived."""
    import pandas as pd

    folder = _folder(service_path)
    records = _read_lines(_log_files(folder, "predictions.jsonl"))
    if not records:
        return pd.DataFrame(
            columns=["id", "request_id", "time", "version", "latency_ms", "prediction"]
        )
    inputs = pd.DataFrame.from_records([r.get("inputs") or {} for r in records])
    meta = pd.DataFrame(
        {
            "id": [r["id"] for r in records],
            "request_id": [r.get("request_id") for r in records],
            "time": pd.to_datetime([r["ts"] for r in records], unit="s", utc=True),
            "version": [str(r.get("version")) for r in records],
            "latency_ms": [r.get("latency_ms") for r in records],
            "prediction": [r.get("prediction") for r in records],
        }
    )
    frame = pd.concat([meta, inputs], axis=1)
    labels = feedback_log(folder)
    if len(labels):
        latest = labels.drop_duplicates("id", keep="last").set_index("id")["label"]
        frame["target"] = frame["id"].map(latest)
    return frame


def feedback_log(service_path: str | os.PathLike) -> pd.DataFrame:
    """Labels posted to ``/feedback``: id, label, time."""
    import pandas as pd

    records = _read_lines(_log_files(Path(service_path), "feedback.jsonl"))
    return pd.DataFrame(
        {
            "id": [r["id"] for r in records],
            "label": [r["label"] for r in records],
            "time": pd.to_datetime([r["ts"] for r in records], unit="s", utc=True),
        }
    )


def accuracy_over_time(service_path: str | os.PathLike, freq: str = "1h") -> pd.DataFrame:
    """Share of labelled predictions that were right, per ``freq`` window (by prediction
    time): time, n, accuracy. Empty when no feedback arrived."""
    import pandas as pd

    log = prediction_log(service_path)
    if "target" not in log.columns:
        return pd.DataFrame(columns=["time", "n", "accuracy"])
    labelled = log[log["target"].notna()].copy()
    labelled["correct"] = [
        _same(p, t) for p, t in zip(labelled["prediction"], labelled["target"], strict=True)
    ]
    grouped = labelled.groupby(pd.Grouper(key="time", freq=freq))["correct"]
    out = pd.DataFrame({"n": grouped.size(), "accuracy": grouped.mean()}).reset_index()
    return out[out["n"] > 0].reset_index(drop=True)


def _same(prediction: Any, label: Any) -> bool:
    numbers = (int, float)
    if isinstance(prediction, numbers) and isinstance(label, numbers):
        return float(prediction) == float(label)
    return str(prediction) == str(label)


def read_reference(service_path: str | os.PathLike) -> pd.DataFrame | None:
    """The reference data of a service folder (the file model.json names under
    ``reference``; ``reference.parquet`` / ``.csv`` for older exports), or None."""
    import pandas as pd

    folder = Path(service_path)
    try:
        named = json.loads((folder / "model.json").read_text()).get("reference") or {}
    except (OSError, json.JSONDecodeError):
        named = {}
    candidates = ([named["file"]] if named.get("file") else []) + [
        "reference.parquet",
        "reference.csv",
    ]
    for name in candidates:
        path = folder / name
        if path.is_file():
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return None


SCORING_ROUTES = (
    "/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.eE+-]+|NaN|\+Inf)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m:
            out.append((m.group(1), dict(_LABEL.findall(m.group(2))), float(m.group(3))))
    return out


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower  # beyond the last finite bucket: its bound is what is known
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def service_metrics(url: str, token: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """Latency and errors of a running service, from its Prometheus ``/metrics``, over
    its scoring routes (``/invocations`` and the OIP v2 ``infer`` routes) since it
    started: ``requests``, ``errors`` (status >= 400), ``error_rate``,
    ``server_error_rate`` (status >= 500), ``p50_ms`` and ``p99_ms`` (interpolated
    within the histogram's buckets, as Prometheus' histogram_quantile does; None before
    the first request). Raises NbopsError when the service cannot be reached."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url.rstrip("/") + "/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        raise NbopsError(
            f"cannot read {url}/metrics: {exc}; is the service running (and "
            "is token= its bearer token)?"
        ) from None
    requests = errors = server_errors = 0.0
    buckets: dict[float, float] = {}
    for name, labels, value in _parse_prometheus(text):
        if labels.get("route") not in SCORING_ROUTES:
            continue
        if name == "nbops_requests_total":
            requests += value
            status = int(labels.get("status", "0"))
            errors += value if status >= 400 else 0
            server_errors += value if status >= 500 else 0
        elif name == "nbops_request_duration_seconds_bucket":
            le = float(labels["le"].replace("+Inf", "inf"))
            buckets[le] = buckets.get(le, 0.0) + value
    pairs = list(buckets.items())
    p50, p99 = _quantile(0.5, pairs), _quantile(0.99, pairs)
    return {
        "url": url,
        "requests": int(requests),
        "errors": int(errors),
        "error_rate": errors / requests if requests else 0.0,
        "server_error_rate": server_errors / requests if requests else 0.0,
        "p50_ms": None if p50 is None else round(p50 * 1000, 3),
        "p99_ms": None if p99 is None else round(p99 * 1000, 3),
    }


def running_url(service_path: str | os.PathLike) -> str | None:
    """The URL a service folder's ``serve.py`` listens on while it runs (it writes
    ``logs/listening.json`` once bound), or None."""
    path = Path(service_path) / "logs" / "listening.json"
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(info["url"])


def _monitor_streamed(
    folder: Path, reference: Any, since: Any, version: Any, drift_options: dict[str, Any]
) -> DriftReport | None:
    """With engine="duckdb" (or "auto" and logs that would not fit the memory limit) the
    logs go to Parquet through DuckDB and drift streams them (nbops.drift.logs); else
    None. Accuracy over time is not computed on this path (it needs the whole log)."""
    import tempfile

    import pandas as pd

    from ..drift import drift
    from ..drift.logs import logs_fit, logs_to_parquet

    engine = drift_options.get("engine", "auto")
    files = _log_files(folder, "predictions.jsonl")
    limit = drift_options.get("memory_limit")
    if engine == "pandas" or not files or (engine == "auto" and logs_fit(files, limit)):
        return None
    ref = pd.DataFrame(reference)
    cols = [
        c for c in ref.columns if c not in ("id", "request_id", "time", "version", "latency_ms")
    ]
    options: dict[str, Any] = {"engine": "duckdb"}
    if "prediction" in cols:
        options["prediction"] = "prediction"
        if "target" in cols:
            options["target"] = "target"
    options.update(drift_options)
    with tempfile.TemporaryDirectory(prefix="nbops-monitor-") as tmp:
        out = Path(tmp) / "current.parquet"
        rows = logs_to_parquet(
            files,
            _log_files(folder, "feedback.jsonl"),
            cols,
            out,
            since=since,
            version=version,
            memory_limit=limit,
        )
        if rows == 0:
            raise DriftError(
                f"the prediction log of {folder} has no rows yet; send requests "
                "to the service first (the log is flushed every 0.2 s)"
            )
        report = drift(ref[cols], str(out), **options)
    report.accuracy = []
    return report


def _monitor_in_memory(
    folder: Path, reference: Any, since: Any, version: Any, drift_options: dict[str, Any]
) -> DriftReport:
    """The prediction log read into pandas, compared with the reference."""
    import pandas as pd

    from ..drift import drift

    log = prediction_log(folder)
    if since is not None:
        since = pd.Timestamp(since)
        since = since.tz_localize("UTC") if since.tzinfo is None else since.tz_convert("UTC")
        log = log[log["time"] >= since]
    if version is not None:
        log = log[log["version"] == str(version)]
    if log.empty:
        raise DriftError(
            f"the prediction log of {folder} has no rows yet; send requests to "
            "the service first (the log is flushed every 0.2 s)"
        )
    ref = pd.DataFrame(reference)
    cols = [
        c
        for c in ref.columns
        if c in log.columns and c not in ("id", "request_id", "time", "version", "latency_ms")
    ]
    current = log[cols].copy()
    if "prediction" in current and "prediction" in ref:
        current["prediction"] = current["prediction"].astype(
            ref["prediction"].dtype, errors="ignore"
        )
    options: dict[str, Any] = {}
    if "prediction" in cols:
        options["prediction"] = "prediction"
        if "target" in cols and log["target"].notna().any():
            options["target"] = "target"
            current["target"] = current["target"].astype(ref["target"].dtype, errors="ignore")
    options.update(drift_options)
    report = drift(ref[cols], current, **options)
    report.accuracy = accuracy_over_time(folder).to_dict("records")
    return report


def monitor(
    service_path: Any,
    reference: Any = None,
    since: Any = None,
    version: Any = None,
    sync: bool = True,
    url: str | None = None,
    token: str | None = None,
    **drift_options: Any,
) -> DriftReport:
    """Drift of a service's live traffic against the model's training data.

    ``reference`` defaults to the reference file of the export: the training sample
    stored with the model version (``nbops.log_model(reference=)`` or a ``%%track``
    cell), or the ``reference=`` given to :func:`nbops.export`. ``since`` (a
    timestamp) and ``version`` filter the log.
    Returns a :class:`DriftReport` over the input columns and the ``prediction``;
    when labels came back through ``/feedback`` and the reference has a ``target``,
    model quality is compared too, and ``report.accuracy`` lists accuracy over time.
    When the service is running (``service_path`` may be a :class:`LocalService`; a
    folder's ``serve.py`` says where it listens; or pass ``url=``, with ``token=`` if
    it has one), ``report.service`` holds :func:`service_metrics` (p50/p99 latency,
    error rate) and ``report.metrics()`` includes them as ``latency_p50_ms``,
    ``latency_p99_ms``, ``error_rate``, ``server_error_rate`` and ``requests_total``,
    so alert rules can fire on slow or failing responses as well as on drift.
    Canary events are copied to the registry's audit log first (``sync``). Raises
    DriftError (an NbopsError) when the log is empty or no reference is known."""

    url = url or getattr(service_path, "url", None)
    token = token or getattr(service_path, "token", None)
    folder = _folder(getattr(service_path, "path", service_path))
    url = url or running_url(folder)
    meta = json.loads((folder / "model.json").read_text())
    if reference is None:
        reference = read_reference(folder)
        if reference is None:
            raise DriftError(
                f"{folder} has no reference data to compare live traffic with: model "
                f"{meta.get('model_name')!r} v{meta.get('version')} was logged without its "
                "training DataFrame. Pass it here, nbops.monitor(path, reference=X_train); or "
                "export with nbops.export(..., reference=X_train); or log the model with "
                "nbops.log_model(model, reference=X_train) (a %%track cell stores it by itself)"
            )
    if sync:
        from .events import sync_events

        try:
            sync_events(folder, store=None)
        except NbopsError as exc:
            import warnings

            warnings.warn(
                f"canary events of {folder} were not copied to the store: {exc}", stacklevel=2
            )
    report = _monitor_streamed(folder, reference, since, version, drift_options)
    if report is None:
        report = _monitor_in_memory(folder, reference, since, version, drift_options)
    report.service = None
    if url:
        try:
            report.service = service_metrics(url, token)
        except NbopsError as exc:
            import warnings

            warnings.warn(f"latency and errors of {folder} were not read: {exc}", stacklevel=2)
    if report.service is not None:
        names = {
            "requests": "requests_total",
            "error_rate": "error_rate",
            "server_error_rate": "server_error_rate",
            "p50_ms": "latency_p50_ms",
            "p99_ms": "latency_p99_ms",
        }
        extra = {
            names[k]: float(v) for k, v in report.service.items() if k in names and v is not None
        }
        drift_metrics = report.metrics
        # the report's flat metrics (what alert rules read) gain the service's figures
        report.metrics = lambda: {**drift_metrics(), **extra}
    return report
