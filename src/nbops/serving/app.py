#!/usr/bin/env python
"""An nbops model service: one exported model version, served over HTTP on its own.

This file is copied into every export as ``serve.py`` and runs without nbops::

    python serve.py --port 8000                          # the HTTP service
    python serve.py predict --input in.csv --output out.csv   # batch scoring

It needs numpy and, for the HTTP service, fastapi and uvicorn (see requirements.txt).
scikit-learn and skops load only when the model has no compiled tree predictor
(``model.npz``) or an input needs them, so a tree model answers within a fraction of
a second of start-up.

Protocols: the MLflow scoring protocol (``POST /invocations``, ``/ping``, ``/health``,
``/version``), the Open Inference Protocol v2 (``/v2/...``), Prometheus ``/metrics``,
``/canary`` and ``/feedback``. Every scored row goes to ``logs/predictions.jsonl``
(rotated by size); canary steps go to ``logs/events.jsonl``. See docs/deployment.md.
"""

import argparse
import csv
import hashlib
import hmac
import io
import json
import math
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

SERVICE_VERSION = "1"
HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 20 * 1024 * 1024
THREAD_ROWS = 2000  # batches at least this big are scored off the event loop
OPEN_PATHS = frozenset({"/ping", "/health", "/v2/health/live", "/v2/health/ready"})

try:  # orjson is much faster; the standard library is the fallback
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

    _JSON_ERRORS: tuple = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - exercised only without orjson

    def _no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def _loads(data: bytes) -> Any:
        return json.loads(data, parse_constant=_no_constant)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, default=_plain, allow_nan=False).encode()

    _JSON_ERRORS = (ValueError, UnicodeDecodeError)


def _plain(obj: Any) -> Any:
    item = getattr(obj, "tolist", None) or getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class ServiceError(Exception):
    """An error answered as ``{"error_code": ..., "message": ...}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bad(message: str, code: str = "INVALID_PARAMETER_VALUE") -> ServiceError:
    return ServiceError(400, code, message)


class StartupError(Exception):
    """The service folder cannot be served (missing file, hash mismatch)."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- input tables ---------------------------------------------------------------------
_FLOAT = {"float64", "float32", "float16", "float", "double"}
_INT = {"int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "int",
        "integer", "long"}
_BOOL = {"bool", "boolean"}
_STR = {"str", "string", "object", "category"}


def _kind(dtype: str | None) -> str:
    d = str(dtype or "float64").lower()
    if d in _FLOAT:
        return "float"
    if d in _INT:
        return "int"
    if d in _BOOL:
        return "bool"
    if d in _STR:
        return "str"
    return "any"


class Table:
    """Rows parsed from a request: ``names`` (None when the rows are positional)."""

    __slots__ = ("names", "rows")

    def __init__(self, names: list[str] | None, rows: list[list[Any]]) -> None:
        self.names, self.rows = names, rows


def _rows_from_columns(cols: dict, where: str) -> Table:
    names = [str(k) for k in cols]
    values = list(cols.values())
    if not all(isinstance(v, list) for v in values):
        values = [v if isinstance(v, list) else [v] for v in values]
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise _bad(f"{where}: every column needs the same number of values, got lengths "
                   f"{ {n: len(v) for n, v in zip(names, values, strict=False)} }")
    return Table(names, [list(r) for r in zip(*values, strict=False)])


def _rows_from_records(records: list, where: str) -> Table:
    if not records:
        return Table(None, [])
    first = records[0]
    if not isinstance(first, dict):
        raise _bad(f"{where} must be a list of objects {{column: value}}")
    names = [str(k) for k in first]
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise _bad(f"{where}[{i}] is a {type(rec).__name__}, expected an object "
                       "{column: value}")
        if len(rec) != len(names) or any(n not in rec for n in names):
            raise _bad(f"{where}[{i}] has columns {sorted(rec)} but {where}[0] has "
                       f"{sorted(names)}; every record needs the same columns")
        rows.append([rec[n] for n in names])
    return Table(names, rows)


def _rows_from_list(data: list, where: str) -> Table:
    if data and isinstance(data[0], dict):
        return _rows_from_records(data, where)
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise _bad(f"{where}[{i}] is a {type(row).__name__}; send a list of rows "
                       "(each a list of values) or a list of objects")
        rows.append(row)
    return Table(None, rows)


def parse_json_table(payload: Any) -> Table:
    """The MLflow scoring formats: dataframe_split, dataframe_records, instances, inputs."""
    if not isinstance(payload, dict):
        raise _bad("the JSON body must be an object with one of the keys dataframe_split, "
                   "dataframe_records, instances or inputs", "BAD_REQUEST")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
            if k in payload]
    extra = sorted(set(payload) - {"dataframe_split", "dataframe_records", "instances",
                                   "inputs", "params"})
    if len(keys) != 1 or extra:
        raise _bad(f"the JSON body must have exactly one of dataframe_split, "
                   f"dataframe_records, instances or inputs (and optionally params); got "
                   f"keys {sorted(payload)}", "BAD_REQUEST")
    if "params" in payload and not isinstance(payload["params"], dict):
        raise _bad("params must be an object")
    key = keys[0]
    data = payload[key]
    if key == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise _bad("dataframe_split must be an object {\"columns\": [...], \"data\": "
                       "[[...], ...]}")
        cols = data.get("columns")
        if cols is not None and (not isinstance(cols, list)
                                 or not all(isinstance(c, str | int) for c in cols)):
            raise _bad("dataframe_split.columns must be a list of column names")
        table = _rows_from_list(data["data"], "dataframe_split.data")
        if table.names is not None:
            raise _bad("dataframe_split.data must be a list of rows (lists), not objects")
        if cols is not None:
            table.names = [str(c) for c in cols]
        return table
    if key == "dataframe_records":
        if not isinstance(data, list):
            raise _bad("dataframe_records must be a list of objects {column: value}")
        return _rows_from_records(data, "dataframe_records")
    if isinstance(data, dict):
        return _rows_from_columns(data, key)
    if not isinstance(data, list):
        raise _bad(f"{key} must be a list of rows, a list of objects or an object of columns")
    return _rows_from_list(data, key)


def parse_csv_table(body: bytes) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad("the CSV body is not UTF-8 text", "MALFORMED_REQUEST") from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise _bad(f"the CSV body cannot be parsed: {exc}", "MALFORMED_REQUEST") from None
    lines = [line for line in lines if line]
    if not lines:
        raise _bad("the CSV body is empty; send a header row with the column names and one "
                   "row per record", "MALFORMED_REQUEST")
    return Table([c.strip() for c in lines[0]], [list(r) for r in lines[1:]])


# -- tree ensembles compiled to arrays ------------------------------------------------
class TreeArrays:
    """A scikit-learn tree or forest as flat arrays (``model.npz``), written and checked
    against the real model at export. Predicts with numpy alone, exactly as scikit-learn
    does: inputs are rounded to float32, trees are summed in order."""

    def __init__(self, path: Path) -> None:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        self.np = np
        self.feature, self.threshold = a["feature"], a["threshold"]
        self.left, self.right = a["left"], a["right"]
        self.value, self.roots = a["value"], a["roots"]
        self.depth = int(a["depth"])
        self.task = str(a["task"])
        self.classes = a["classes"] if self.task == "classification" else None
        self.n_features = int(a["n_features"])
        self.average = bool(a["average"])

    def predict(self, X: Any) -> Any:
        np = self.np
        if X.shape[0] == 0:
            return np.empty(0)
        out = []
        for start in range(0, X.shape[0], 4096):
            out.append(self._predict(X[start:start + 4096]))
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _predict(self, X: Any) -> Any:
        np = self.np
        x = X.astype(np.float32).astype(np.float64)
        n = x.shape[0]
        nodes = np.broadcast_to(self.roots, (n, self.roots.shape[0])).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            go_left = x[rows, self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(go_left, self.left[nodes], self.right[nodes])
        leaf = self.value[nodes]  # (rows, trees, outputs)
        total = np.cumsum(leaf, axis=1)[:, -1, :] if leaf.shape[1] > 1 else leaf[:, 0, :]
        if self.average:
            total = total / self.roots.shape[0]
        if self.task == "classification":
            return self.classes.take(np.argmax(total, axis=1))
        return total[:, 0]


# -- one model version ----------------------------------------------------------------
class ModelVersion:
    """A model version of the service folder: ``model.json`` plus its files."""

    def __init__(self, folder: Path) -> None:
        meta_path = folder / "model.json"
        if not meta_path.is_file():
            raise StartupError(f"{meta_path} is missing; export the model again with "
                               "nbops.export(...) or `nbops export`")
        self.folder = folder
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.name = str(self.meta.get("model_name") or self.meta.get("name") or "model")
        self.version = self.meta.get("version")
        self.label = str(self.version)
        self.file = folder / str(self.meta.get("file_name") or "model.skops")
        sig = self.meta.get("signature") or {}
        self.inputs = [(str(i["name"]), _kind(i.get("dtype")),
                        bool(i.get("nullable") or i.get("allow_missing")))
                       for i in sig.get("inputs") or []]
        self.columns = [c for c, _, _ in self.inputs]
        self.index = {c: k for k, c in enumerate(self.columns)}
        self.numeric = all(k in ("float", "int", "bool") for _, k, _ in self.inputs)
        self.outputs = sig.get("outputs") or {}
        self._model: Any = None
        self._lock = threading.Lock()
        self.compiled: TreeArrays | None = None
        self._verify()

    def _verify(self) -> None:
        if not self.file.is_file():
            raise StartupError(f"model file {self.file} is missing; export the model again")
        actual = _sha256_file(self.file)
        expected = self.meta.get("sha256")
        if actual != expected:
            raise StartupError(
                f"model file {self.file} hashes to {actual[:12]}, but model.json records "
                f"{str(expected)[:12]}: the file was changed after export, so the service "
                "will not start. Export the model again from the registry.")
        comp = self.meta.get("compiled")
        if comp and self.numeric:
            path = self.folder / comp["file"]
            if path.is_file() and _sha256_file(path) == comp.get("sha256"):
                self.compiled = TreeArrays(path)
                if self.compiled.n_features != len(self.columns):
                    self.compiled = None  # the signature disagrees: let the model decide
            else:
                raise StartupError(
                    f"{path} is missing or does not match the sha256 in model.json; "
                    "export the model again")

    @property
    def model(self) -> Any:
        """The scikit-learn object, loaded from the skops file on first use after its
        untrusted types are checked against the ones recorded at save time."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import skops.io as sio

                    data = self.file.read_bytes()
                    needed = sorted(sio.get_untrusted_types(data=data))
                    unexpected = sorted(set(needed) - set(self.meta.get("trusted_types") or []))
                    if unexpected:
                        raise StartupError(
                            f"{self.file} asks to trust types {unexpected} that were not "
                            "recorded when it was saved; refusing to load it")
                    self._model = sio.loads(data, trusted=needed)
        return self._model

    def load(self) -> None:
        if self.compiled is None:
            self.model  # noqa: B018 - load now, not on the first request

    # -- input checks --------------------------------------------------------------
    def matrix(self, table: Table) -> tuple[list[str], list[list[Any]]]:
        """Rows reordered to the signature's columns, every value checked."""
        cols = self.columns
        rows = table.rows
        if table.names is None:
            width = len(cols)
            for i, row in enumerate(rows):
                if len(row) != width:
                    raise _bad(f"row {i} has {len(row)} values but the model takes {width} "
                               f"columns {cols}; send one value per column in that order")
        else:
            names = table.names
            if names != cols:
                if len(set(names)) != len(names):
                    dup = sorted({n for n in names if names.count(n) > 1})
                    raise _bad(f"duplicate columns {dup}")
                missing = [c for c in cols if c not in names]
                extra = [n for n in names if n not in self.index]
                if missing or extra:
                    parts = []
                    if missing:
                        parts.append(f"missing columns {missing}")
                    if extra:
                        parts.append(f"unexpected columns {extra}")
                    raise _bad(f"{' and '.join(parts)}; the model takes {cols}")
                order = [names.index(c) for c in cols]
                for i, row in enumerate(rows):
                    if len(row) != len(names):
                        raise _bad(f"row {i} has {len(row)} values for {len(names)} columns")
                rows = [[row[k] for k in order] for row in rows]
            else:
                width = len(cols)
                for i, row in enumerate(rows):
                    if len(row) != width:
                        raise _bad(f"row {i} has {len(row)} values for {width} columns")
        self._check_types(rows, from_text=False)
        return cols, rows

    def _check_types(self, rows: list[list[Any]], from_text: bool) -> None:
        bad: dict[str, str] = {}
        for j, (col, kind, nullable) in enumerate(self.inputs):
            for i, row in enumerate(rows):
                v = row[j]
                t = type(v)
                if kind == "float" and (t is float or t is int):
                    if t is float and not math.isfinite(v):
                        if v != v and nullable:
                            continue
                        bad[col] = f"expects a finite number, got {v!r} (row {i})"
                        break
                    if t is int and abs(v) > 1e300:
                        bad[col] = f"value {v} is out of range (row {i})"
                        break
                    continue
                if v is None:
                    if nullable:
                        row[j] = float("nan") if kind in ("float", "int") else None
                        continue
                    bad[col] = f"is missing a value (row {i}) and does not allow missing values"
                    break
                if from_text and isinstance(v, str):
                    try:
                        row[j] = v = _from_text(v, kind)
                    except ValueError:
                        bad[col] = f"expects {self._dtype(j)}, got {v!r} (row {i})"
                        break
                    if v is None or (t is float and v != v):
                        if nullable:
                            row[j] = float("nan") if kind in ("float", "int") else None
                            continue
                        bad[col] = f"is missing a value (row {i}) and does not allow missing values"
                        break
                    if isinstance(v, float) and not math.isfinite(v):
                        bad[col] = f"expects a finite number, got {v!r} (row {i})"
                        break
                    continue
                t = type(v)
                if kind == "int" and (t is int or (t is float and v.is_integer()
                                                   and abs(v) < 2**63)):
                    if t is int and abs(v) >= 2**63:
                        bad[col] = f"value {v} is out of range (row {i})"
                        break
                    continue
                if (kind == "bool" and t is bool) or (kind == "str" and t is str):
                    continue
                if kind == "any" and t in (int, float, str, bool):
                    continue
                bad[col] = f"expects {self._dtype(j)}, got {type(v).__name__} {v!r} (row {i})"
                break
        if bad:
            detail = "; ".join(f"column {c!r} {msg}" for c, msg in bad.items())
            raise _bad(f"wrongly typed input: {detail}")

    def _dtype(self, j: int) -> str:
        sig = (self.meta.get("signature") or {}).get("inputs") or []
        return str(sig[j].get("dtype")) if j < len(sig) else "a value"

    def text_matrix(self, table: Table) -> tuple[list[str], list[list[Any]]]:
        """Like :meth:`matrix` for CSV text cells (parsed per the signature's dtype)."""
        if table.names is None:
            return self.matrix(table)
        for j, name in enumerate(table.names):
            if name not in self.index:
                try:
                    float(name)
                except ValueError:
                    continue
                raise _bad("the CSV needs a header row with the column names "
                           f"{self.columns}; the first row looks like data (column {j})",
                           "MALFORMED_REQUEST")
        names = table.names
        missing = [c for c in self.columns if c not in names]
        extra = [n for n in names if n not in self.index]
        if missing or extra:
            return self.matrix(table)  # raises the column error
        order = [names.index(c) for c in self.columns]
        rows = []
        for i, row in enumerate(table.rows):
            if len(row) != len(names):
                raise _bad(f"CSV row {i + 1} has {len(row)} cells for {len(names)} columns",
                           "MALFORMED_REQUEST")
            rows.append([row[k] for k in order])
        self._check_types(rows, from_text=True)
        return self.columns, rows

    # -- predicting ----------------------------------------------------------------
    def predict(self, cols: list[str], rows: list[list[Any]]) -> list[Any]:
        """Predictions for checked rows, as plain JSON values."""
        if not rows:
            return []
        if self.compiled is not None and self.numeric:
            import numpy as np

            X = np.array(rows, dtype=np.float64)
            if X.ndim == 2 and X.shape[1] == self.compiled.n_features and not np.isnan(X).any():
                return self.compiled.predict(X).tolist()
        return self._predict_model(cols, rows)

    def _predict_model(self, cols: list[str], rows: list[list[Any]]) -> list[Any]:
        model = self.model
        if getattr(model, "feature_names_in_", None) is not None or not self.numeric:
            import pandas as pd

            X = pd.DataFrame(rows, columns=cols)
            for col, kind, _ in self.inputs:
                if kind == "float":
                    X[col] = X[col].astype("float64")
        else:
            import numpy as np

            X = np.array(rows, dtype=np.float64)
        out = model.predict(X)
        tolist = getattr(out, "tolist", None)
        return tolist() if callable(tolist) else list(out)


def _from_text(v: str, kind: str) -> Any:
    s = v.strip()
    if s == "" or s.lower() in ("na", "nan", "null", "none"):
        return None
    if kind in ("float", "any"):
        return float(s)
    if kind == "int":
        f = float(s)
        if not f.is_integer():
            raise ValueError(s)
        return int(f)
    if kind == "bool":
        low = s.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise ValueError(s)
    return v


# -- prediction log -------------------------------------------------------------------
class JsonLog:
    """An append-only JSON-lines file, rotated by size (``name.1`` is the newest old
    file), written by a background thread so requests only append to a list."""

    def __init__(self, path: Path, max_bytes: int, keep: int = 5, interval: float = 0.2):
        self.path, self.max_bytes, self.keep, self.interval = path, max_bytes, keep, interval
        self._buf: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"log-{self.path.name}",
                                        daemon=True)
        self._thread.start()

    def append(self, item: Any) -> None:
        self._buf.append(item)  # list.append is atomic under the GIL

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._buf:
                return
            items, self._buf = self._buf, []
            data = b"".join(self._render(items))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as fh:
                fh.write(data)
                size = fh.tell()
            if size >= self.max_bytes:
                self._rotate()

    def _render(self, items: list[Any]):
        for item in items:
            if isinstance(item, dict):
                yield _dumps(item) + b"\n"
            else:
                yield from item()

    def _rotate(self) -> None:
        for k in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{k}")
            if older.exists():
                if k == self.keep - 1:
                    older.unlink()
                else:
                    os.replace(older, self.path.with_name(f"{self.path.name}.{k + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def _prediction_records(rid: str, ts: float, version: str, cols: list[str],
                        rows: list[list[Any]], preds: list[Any], latency_ms: float):
    def render():
        for i, (row, pred) in enumerate(zip(rows, preds, strict=False)):
            yield _dumps({"id": f"{rid}-{i}", "request_id": rid, "ts": ts, "version": version,
                          "latency_ms": latency_ms,
                          "inputs": dict(zip(cols, row, strict=False)), "prediction": pred}) + b"\n"
    return render


# -- metrics --------------------------------------------------------------------------
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROUTES = ("/invocations", "/ping", "/health", "/version", "/metrics", "/canary", "/feedback",
           "/v2/health/live", "/v2/health/ready", "/v2", "/docs", "/openapi.json")


def route_label(path: str) -> str:
    if path in _ROUTES:
        return path
    if path.startswith("/v2/models/"):
        tail = path.rsplit("/", 1)[-1]
        return "/v2/models/{name}/" + tail if tail in ("infer", "ready") else "/v2/models/{name}"
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int, str], int] = {}
        self.hist: dict[str, list[float]] = {}
        self.rows: dict[str, int] = {}
        self.in_flight = 0
        self.started = time.time()

    def observe(self, route: str, status: int, version: str, seconds: float) -> None:
        key = (route, status, version)
        self.requests[key] = self.requests.get(key, 0) + 1
        h = self.hist.get(route)
        if h is None:
            h = self.hist[route] = [0.0] * (len(BUCKETS) + 2)  # buckets, sum, count
        for k, bound in enumerate(BUCKETS):
            if seconds <= bound:
                h[k] += 1
                break
        h[-2] += seconds
        h[-1] += 1

    def render(self, service: "Service") -> str:
        out = ["# HELP nbops_requests_total HTTP requests by route, status and model version",
               "# TYPE nbops_requests_total counter"]
        for (route, status, version), n in sorted(self.requests.items()):
            out.append(f'nbops_requests_total{{route="{route}",status="{status}",'
                       f'version="{version}"}} {n}')
        out += ["# HELP nbops_request_duration_seconds request latency",
                "# TYPE nbops_request_duration_seconds histogram"]
        for route, h in sorted(self.hist.items()):
            cum = 0.0
            for k, bound in enumerate(BUCKETS):
                cum += h[k]
                out.append(f'nbops_request_duration_seconds_bucket{{route="{route}",'
                           f'le="{bound}"}} {int(cum)}')
            out.append(f'nbops_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} '
                       f'{int(h[-1])}')
            out.append(f'nbops_request_duration_seconds_sum{{route="{route}"}} {h[-2]:.6f}')
            out.append(f'nbops_request_duration_seconds_count{{route="{route}"}} {int(h[-1])}')
        out += ["# HELP nbops_predictions_total rows scored by model version",
                "# TYPE nbops_predictions_total counter"]
        for version, n in sorted(self.rows.items()):
            out.append(f'nbops_predictions_total{{version="{version}"}} {n}')
        t = os.times()
        out += ["# HELP nbops_in_flight_requests requests being handled",
                "# TYPE nbops_in_flight_requests gauge",
                f"nbops_in_flight_requests {self.in_flight}",
                "# HELP process_cpu_seconds_total user and system CPU time",
                "# TYPE process_cpu_seconds_total counter",
                f"process_cpu_seconds_total {t.user + t.system:.3f}",
                "# HELP process_resident_memory_bytes resident memory",
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {_rss_bytes()}",
                "# HELP process_start_time_seconds start time since the epoch",
                "# TYPE process_start_time_seconds gauge",
                f"process_start_time_seconds {self.started:.3f}"]
        canary = service.canary
        if canary is not None:
            out += ["# HELP nbops_canary_share percent of traffic routed to the candidate",
                    "# TYPE nbops_canary_share gauge",
                    f'nbops_canary_share{{candidate="{canary.candidate.label}"}} {canary.share}']
        return "\n".join(out) + "\n"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- canary ---------------------------------------------------------------------------
def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class Canary:
    """Routes a share of traffic to a candidate version and moves through ``steps``.

    A step passes when the candidate has served ``min_requests`` with an error rate of
    at most ``max_error_rate`` and a p99 latency of at most ``max_p99_ms``. It fails as
    soon as it can no longer pass (more errors or slow requests than the step allows),
    and the canary rolls back to 0% for good. A candidate request that raises is
    answered by the stable version, so clients never see the candidate's failures."""

    def __init__(self, service: "Service", candidate: "ModelVersion", config: dict) -> None:
        self.service = service
        self.candidate = candidate
        steps = [float(s) for s in config.get("steps") or [10, 50, 100]]
        if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(steps):
            raise StartupError(f"canary steps {steps} must rise within (0, 100]")
        if steps[-1] != 100:
            steps.append(100.0)
        self.steps = steps
        self.min_requests = int(config.get("min_requests", 200))
        self.max_error_rate = float(config.get("max_error_rate", 0.01))
        self.max_p99_ms = float(config.get("max_p99_ms", 200))
        self.state_path = service.folder / "canary_state.json"
        self.lock = threading.Lock()
        self.step = 0
        self.status = "running"
        self.reason = ""
        self.history: list[dict] = []
        self._n = 0
        self._reset_window()
        if self.state_path.is_file():
            saved = json.loads(self.state_path.read_text())
            if saved.get("candidate") == candidate.label:
                self.step = int(saved.get("step", 0))
                self.status = saved.get("status", "running")
                self.reason = saved.get("reason", "")
                self.history = saved.get("history", [])

    def _reset_window(self) -> None:
        self.served = 0
        self.errors = 0
        self.slow = 0
        self.latencies: list[float] = []

    @property
    def share(self) -> float:
        if self.status == "running":
            return self.steps[self.step]
        return 100.0 if self.status == "promoted" else 0.0

    def choose(self) -> ModelVersion:
        if self.status == "promoted":
            return self.candidate
        if self.status != "running":
            return self.service.stable
        share = self.steps[self.step]
        n = self._n = self._n + 1
        # deterministic spread: exactly `share` percent of every 100 requests
        if int(n * share // 100) != int((n - 1) * share // 100):
            return self.candidate
        return self.service.stable

    def record(self, ok: bool, latency_ms: float, error: str = "") -> None:
        if self.status != "running":
            return
        with self.lock:
            self.served += 1
            self.latencies.append(latency_ms)
            if not ok:
                self.errors += 1
                self.last_error = error
            if latency_ms > self.max_p99_ms:
                self.slow += 1
            budget_errors = self.max_error_rate * self.min_requests
            budget_slow = 0.01 * self.min_requests
            if self.errors > budget_errors:
                self._rollback(f"candidate error rate {self.errors}/{self.served} exceeds "
                               f"max_error_rate {self.max_error_rate} at "
                               f"{self.share:g}% (last error: {error})")
            elif self.slow > budget_slow:
                self._rollback(f"candidate p99 latency exceeds max_p99_ms {self.max_p99_ms} "
                               f"at {self.share:g}%: {self.slow} of {self.served} requests "
                               "were slower")
            elif self.served >= self.min_requests:
                p99 = _p99(self.latencies)
                rate = self.errors / self.served
                if p99 > self.max_p99_ms:
                    self._rollback(f"candidate p99 {p99:.1f} ms exceeds max_p99_ms "
                                   f"{self.max_p99_ms} at {self.share:g}%")
                elif rate > self.max_error_rate:
                    self._rollback(f"candidate error rate {rate:.3f} exceeds max_error_rate "
                                   f"{self.max_error_rate} at {self.share:g}%")
                else:
                    self._advance(rate, p99)

    def _stats(self) -> dict:
        return {"served": self.served, "errors": self.errors,
                "p99_ms": round(_p99(self.latencies), 3)}

    def _advance(self, rate: float, p99: float) -> None:
        before = self.share
        if self.step + 1 < len(self.steps):
            self.step += 1
            self._event("canary_step", before, self.share,
                        f"{self.served} requests at {before:g}% within limits (error rate "
                        f"{rate:.3f}, p99 {p99:.1f} ms)")
        else:
            self.status = "promoted"
            self.reason = (f"{self.served} requests at 100% within limits; version "
                           f"{self.candidate.label} promoted")
            self._event("canary_promoted", before, 100.0, self.reason)
        self._reset_window()

    def _rollback(self, reason: str) -> None:
        before = self.share
        self.status = "rolled_back"
        self.reason = reason
        self._event("canary_rollback", before, 0.0, reason)
        self._reset_window()

    def _event(self, kind: str, before: float, after: float, reason: str) -> None:
        event = {"id": uuid.uuid4().hex[:16], "kind": kind,
                 "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "model_name": self.candidate.name, "candidate": self.candidate.version,
                 "stable": self.service.stable.version, "from_share": before,
                 "to_share": after, "reason": reason, "stats": self._stats()}
        self.history.append(event)
        self.service.write_event(event)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"candidate": self.candidate.label, "step": self.step,
                                   "status": self.status, "reason": self.reason,
                                   "history": self.history}, indent=1))
        os.replace(tmp, self.state_path)

    def describe(self) -> dict:
        return {"status": self.status, "share": self.share, "steps": self.steps,
                "stable_version": self.service.stable.version,
                "candidate_version": self.candidate.version,
                "min_requests": self.min_requests, "max_error_rate": self.max_error_rate,
                "max_p99_ms": self.max_p99_ms, "window": self._stats(),
                "reason": self.reason, "history": self.history}


# -- the service ----------------------------------------------------------------------
class Service:
    """Everything the HTTP app and the batch command share: models, logs, canary."""

    def __init__(self, folder: Path = HERE, log_max_bytes: int = 50 * 1024 * 1024,
                 token: str | None = None) -> None:
        self.folder = Path(folder)
        self.stable = ModelVersion(self.folder)
        self.token = token
        self.ready = False
        self.metrics = Metrics()
        logs = self.folder / "logs"
        self.predictions = JsonLog(logs / "predictions.jsonl", log_max_bytes)
        self.feedback = JsonLog(logs / "feedback.jsonl", log_max_bytes)
        self.events_path = logs / "events.jsonl"
        self.canary: Canary | None = None
        config_path = self.folder / "canary.json"
        if config_path.is_file():
            config = json.loads(config_path.read_text())
            candidate = ModelVersion(self.folder / str(config.get("folder", "canary")))
            self.canary = Canary(self, candidate, config)
        self.store = os.environ.get("NBOPS_STORE") or self.stable.meta.get("store")

    @property
    def name(self) -> str:
        return self.stable.name

    def versions(self) -> list[ModelVersion]:
        return [self.stable] + ([self.canary.candidate] if self.canary else [])

    def load(self) -> None:
        for mv in self.versions():
            mv.load()
        self.predictions.start()
        self.feedback.start()
        self.ready = True

    def close(self) -> None:
        self.predictions.close()
        self.feedback.close()

    def write_event(self, event: dict) -> None:
        """Append a canary event to logs/events.jsonl and, when nbops and the store are
        reachable, copy it into the registry's audit log (in the background)."""
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.events_path, "ab") as fh:
            fh.write(_dumps(event) + b"\n")
        if self.store:
            threading.Thread(target=self._sync_events, daemon=True).start()

    def _sync_events(self) -> None:
        try:  # optional: the service runs without nbops; events then wait in the file
            from nbops.serving.events import sync_events
        except ImportError:
            return
        try:
            sync_events(self.folder, store=self.store)
        except Exception as exc:  # never take the service down for the audit copy
            print(f"nbops service: could not write canary events to the store "
                  f"{self.store}: {exc}", file=sys.stderr)

    def score(self, table: Table, text: bool = False, rid: str | None = None
              ) -> tuple[ModelVersion, list[Any], str]:
        """Check and score a table: (model version used, predictions, request id)."""
        rid = rid or uuid.uuid4().hex[:16]
        t0 = time.perf_counter()
        mv = self.canary.choose() if self.canary is not None else self.stable
        cols, rows = (mv.text_matrix if text else mv.matrix)(table)
        if mv is self.stable:
            preds = self._predict(mv, cols, rows)
        else:
            try:
                preds = mv.predict(cols, rows)
            except Exception as exc:  # the candidate failed: count it, answer with stable
                self.canary.record(False, (time.perf_counter() - t0) * 1000,
                                   f"{type(exc).__name__}: {exc}")
                mv = self.stable
                cols, rows = (mv.text_matrix if text else mv.matrix)(table)
                preds = self._predict(mv, cols, rows)
            else:
                self.canary.record(True, (time.perf_counter() - t0) * 1000)
        latency = (time.perf_counter() - t0) * 1000
        self.metrics.rows[mv.label] = self.metrics.rows.get(mv.label, 0) + len(rows)
        self.predictions.append(_prediction_records(rid, time.time(), mv.label, cols, rows,
                                                    preds, round(latency, 3)))
        return mv, preds, rid

    @staticmethod
    def _predict(mv: ModelVersion, cols: list[str], rows: list[list[Any]]) -> list[Any]:
        try:
            return mv.predict(cols, rows)
        except (ValueError, TypeError) as exc:  # scikit-learn's way of rejecting input
            raise _bad(f"the model rejected the input: {exc}") from None


# -- HTTP -----------------------------------------------------------------------------
def _error(status: int, code: str, message: str) -> Any:
    from starlette.responses import Response

    return Response(_dumps({"error_code": code, "message": message}), status_code=status,
                    media_type="application/json")


class _Instrument:
    """ASGI wrapper: bearer token, in-flight count, per-route status/latency metrics."""

    def __init__(self, app: Any, service: "Service") -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        svc = self.service
        path = scope["path"]
        metrics = svc.metrics
        if svc.token and path not in OPEN_PATHS and not self._authorised(scope):
            await _error(401, "UNAUTHENTICATED", "this service needs the header "
                         "'Authorization: Bearer <token>' with its token")(scope, receive, send)
            metrics.observe(route_label(path), 401, "", 0.0)
            return
        status = [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        metrics.in_flight += 1
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_flight -= 1
            metrics.observe(route_label(path), status[0], scope.get("nbops_version", ""),
                            time.perf_counter() - t0)

    def _authorised(self, scope: dict) -> bool:
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                expected = f"Bearer {self.service.token}".encode()
                return hmac.compare_digest(value, expected)
        return False


async def _read_body(request: Any) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > MAX_BODY_BYTES:
                raise ServiceError(413, "REQUEST_TOO_LARGE", f"the body has {length} bytes; "
                                   f"the limit is {MAX_BODY_BYTES}; send smaller batches")
        except ValueError:
            raise _bad("bad Content-Length header", "BAD_REQUEST") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ServiceError(413, "REQUEST_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} "
                               "bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_body(body: bytes) -> Any:
    try:
        return _loads(body)
    except _JSON_ERRORS as exc:
        raise _bad(f"the body is not valid JSON: {exc}", "MALFORMED_REQUEST") from None


_V2_TYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "str": "BYTES", "any": "BYTES"}


def create_app(service: Service) -> Any:
    """The FastAPI app of a service (wrapped for metrics and the bearer token)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse, Response

    @asynccontextmanager
    async def lifespan(app: Any):
        if not service.ready:
            service.load()
        yield
        service.close()

    app = FastAPI(title=f"nbops service: {service.name}", version=SERVICE_VERSION,
                  lifespan=lifespan)

    def ok(obj: Any, status: int = 200) -> Any:
        return Response(_dumps(obj), status_code=status, media_type="application/json")

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Any:
        if request.url.path.startswith("/v2/"):
            return ok({"error": exc.message}, exc.status)
        return _error(exc.status, exc.code, exc.message)

    def not_ready() -> Any:
        return _error(503, "NOT_READY", "the model is still loading")

    @app.get("/ping", summary="MLflow health check: 200 once the model is loaded")
    async def ping() -> Any:
        return Response(b"\n", media_type="application/json") if service.ready else not_ready()

    @app.get("/health", summary="Health check: 200 once the model is loaded")
    async def health() -> Any:
        return ok({"status": "ok"}) if service.ready else not_ready()

    @app.get("/version", summary="The model name, versions and sha256")
    async def version() -> Any:
        c = service.canary
        return ok({"model_name": service.name, "version": service.stable.version,
                   "sha256": service.stable.meta.get("sha256"),
                   "candidate_version": c.candidate.version if c else None,
                   "canary_status": c.status if c else None,
                   "source_run": service.stable.meta.get("source_run"),
                   "service": SERVICE_VERSION})

    async def score(table: Table, text: bool, request: Request) -> tuple:
        rid = request.headers.get("x-request-id")
        if rid is not None and (len(rid) > 64 or not rid.isprintable()):
            raise _bad("X-Request-ID must be at most 64 printable characters")
        if len(table.rows) >= THREAD_ROWS:
            result = await run_in_threadpool(service.score, table, text, rid)
        else:
            result = service.score(table, text, rid)
        request.scope["nbops_version"] = result[0].label
        return result

    @app.post("/invocations", summary="Score rows (MLflow scoring protocol)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object"}},
                  "text/csv": {"schema": {"type": "string"}}}}})
    async def invocations(request: Request) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "text/csv"):
            raise ServiceError(415, "UNSUPPORTED_MEDIA_TYPE",
                               f"content type {ctype or '(none)'!r} is not supported; send "
                               "'application/json' or 'text/csv'")
        body = await _read_body(request)
        if ctype == "text/csv":
            mv, preds, rid = await score(parse_csv_table(body), True, request)
        else:
            mv, preds, rid = await score(parse_json_table(_json_body(body)), False, request)
        return Response(b'{"predictions":' + _dumps(preds) + b"}",
                        media_type="application/json",
                        headers={"x-request-id": rid, "x-model-version": mv.label})

    @app.post("/feedback", summary="Ground truth for logged predictions",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object", "properties": {
                      "ids": {"type": "array"}, "labels": {"type": "array"}}}}}}})
    async def feedback(request: Request) -> Any:
        payload = _json_body(await _read_body(request))
        ids = payload.get("ids") if isinstance(payload, dict) else None
        labels = payload.get("labels") if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
            raise _bad("send {\"ids\": [...], \"labels\": [...]} with one label per id; ids "
                       "are the prediction ids '<x-request-id>-<row>'")
        for i, (pid, label) in enumerate(zip(ids, labels, strict=False)):
            if not isinstance(pid, str) or not isinstance(label, str | int | float | bool):
                raise _bad(f"ids[{i}] must be a string and labels[{i}] a number or string")
            if isinstance(label, float) and not math.isfinite(label):
                raise _bad(f"labels[{i}] must be finite")
        ts = time.time()
        for pid, label in zip(ids, labels, strict=False):
            service.feedback.append({"id": pid, "label": label, "ts": ts})
        return ok({"received": len(ids)})

    @app.get("/canary", summary="The canary state: share, window, history")
    async def canary() -> Any:
        if service.canary is None:
            return ok({"status": "off", "share": 0.0,
                       "stable_version": service.stable.version})
        return ok(service.canary.describe())

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Any:
        return PlainTextResponse(service.metrics.render(service),
                                 media_type="text/plain; version=0.0.4")

    # -- Open Inference Protocol v2 ----------------------------------------------
    @app.get("/v2", summary="OIP v2 server metadata")
    async def v2_server() -> Any:
        return ok({"name": "nbops", "version": SERVICE_VERSION, "extensions": []})

    @app.get("/v2/health/live", summary="OIP v2 liveness")
    async def v2_live() -> Any:
        return ok({"live": True})

    @app.get("/v2/health/ready", summary="OIP v2 readiness")
    async def v2_ready() -> Any:
        return ok({"ready": service.ready}, 200 if service.ready else 503)

    def v2_model(name: str) -> ModelVersion:
        if name != service.name:
            raise ServiceError(404, "NOT_FOUND", f"no model {name!r}; this service serves "
                               f"{service.name!r}")
        return service.stable

    @app.get("/v2/models/{name}", summary="OIP v2 model metadata")
    async def v2_metadata(name: str) -> Any:
        mv = v2_model(name)
        out = mv.outputs
        return ok({"name": mv.name, "versions": [v.label for v in service.versions()],
                   "platform": "sklearn",
                   "inputs": [{"name": c, "datatype": _V2_TYPES[k], "shape": [-1]}
                              for c, k, _ in mv.inputs],
                   "outputs": [{"name": "predict", "shape": [-1],
                                "datatype": "FP64" if out.get("task") == "regression"
                                else "BYTES"}]})

    @app.get("/v2/models/{name}/ready", summary="OIP v2 model readiness")
    async def v2_model_ready(name: str) -> Any:
        v2_model(name)
        return ok({"name": name, "ready": service.ready}, 200 if service.ready else 503)

    @app.post("/v2/models/{name}/infer", summary="OIP v2 inference",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object"}}}}})
    async def v2_infer(name: str, request: Request) -> Any:
        mv = v2_model(name)
        payload = _json_body(await _read_body(request))
        table = parse_v2(payload, mv)
        used, preds, rid = await score(table, False, request)
        dtype = "BYTES" if any(isinstance(p, str) for p in preds) else (
            "FP64" if any(isinstance(p, float) for p in preds) else "INT64")
        body = {"model_name": used.name, "model_version": used.label,
                "id": payload.get("id", rid) if isinstance(payload.get("id"), str) else rid,
                "outputs": [{"name": "predict", "shape": [len(preds)], "datatype": dtype,
                             "data": preds}]}
        return ok(body)

    return _Instrument(app, service)


def parse_v2(payload: Any, mv: ModelVersion) -> Table:
    """OIP v2 inputs: one tensor ``[rows, columns]`` in signature order, or one tensor
    per column named after it."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) \
            or not payload["inputs"]:
        raise _bad("the body must be {\"inputs\": [{\"name\", \"shape\", \"datatype\", "
                   "\"data\"}, ...]}")
    tensors = payload["inputs"]
    for k, t in enumerate(tensors):
        if not isinstance(t, dict) or not isinstance(t.get("data"), list) \
                or not isinstance(t.get("shape"), list) \
                or not all(type(s) is int and s >= 0 for s in t["shape"]):
            raise _bad(f"inputs[{k}] needs 'name', 'shape' (non-negative ints), 'datatype' "
                       "and 'data' (a list)")
    flat = [_flatten(t["data"]) for t in tensors]
    if len(tensors) == 1 and len(tensors[0]["shape"]) == 2:
        rows_n, width = tensors[0]["shape"]
        if rows_n * width != len(flat[0]):
            raise _bad(f"inputs[0] has shape {tensors[0]['shape']} but {len(flat[0])} values")
        data = flat[0]
        return Table(None, [data[i * width:(i + 1) * width] for i in range(rows_n)])
    names = [str(t.get("name")) for t in tensors]
    for k, t in enumerate(tensors):
        n = 1
        for s in t["shape"]:
            n *= s
        if n != len(flat[k]) or (len(t["shape"]) == 2 and t["shape"][1] != 1) \
                or len(t["shape"]) > 2:
            raise _bad(f"inputs[{k}] ({names[k]}) must have shape [rows] or [rows, 1] "
                       f"matching its data; got shape {t['shape']} with {len(flat[k])} values")
    lengths = {len(f) for f in flat}
    if len(lengths) != 1:
        raise _bad("every input tensor needs the same number of rows")
    return Table(names, [list(r) for r in zip(*flat, strict=False)])


def _flatten(data: list) -> list:
    if data and isinstance(data[0], list):
        out: list = []
        for item in data:
            out.extend(_flatten(item) if isinstance(item, list) else [item])
        return out
    return data


# -- batch scoring --------------------------------------------------------------------
def predict_file(service: Service, source: Path, dest: Path, batch_size: int = 10000) -> int:
    """Score a CSV or Parquet file in batches; writes the inputs plus a ``prediction``
    column to ``dest`` (CSV or Parquet by its suffix). Returns the number of rows."""
    import pandas as pd

    mv = service.stable
    if source.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(source)
    else:
        frame = pd.read_csv(source)
    preds: list[Any] = []
    for start in range(0, len(frame), batch_size):
        part = frame.iloc[start:start + batch_size]
        rows = part.astype(object).where(part.notna(), None).values.tolist()
        table = Table([str(c) for c in part.columns], rows)
        cols, checked = mv.matrix(table)
        preds.extend(mv.predict(cols, checked))
    out = frame.copy()
    out["prediction"] = preds
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(dest, index=False)
    else:
        out.to_csv(dest, index=False)
    return len(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "predict":
        parser = argparse.ArgumentParser(prog="serve.py predict",
                                         description="Score a CSV or Parquet file in batches.")
        parser.add_argument("--input", required=True, type=Path)
        parser.add_argument("--output", required=True, type=Path)
        parser.add_argument("--batch-size", type=int, default=10000)
        parser.add_argument("--folder", type=Path, default=HERE)
        args = parser.parse_args(argv[1:])
        try:
            service = Service(args.folder)
            n = predict_file(service, args.input, args.output, args.batch_size)
        except (StartupError, ServiceError, FileNotFoundError) as exc:
            print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 2
        print(f"scored {n} rows -> {args.output}")
        return 0
    if argv and argv[0] == "serve":
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="serve.py", description="Serve the exported model.")
    parser.add_argument("--host", default=os.environ.get("NBOPS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("NBOPS_PORT", 8000)))
    parser.add_argument("--token", default=os.environ.get("NBOPS_SERVE_TOKEN"),
                        help="require 'Authorization: Bearer TOKEN' (env NBOPS_SERVE_TOKEN)")
    parser.add_argument("--folder", type=Path, default=HERE)
    parser.add_argument("--log-max-bytes", type=int, default=50 * 1024 * 1024)
    args = parser.parse_args(argv)
    try:
        service = Service(args.folder, log_max_bytes=args.log_max_bytes, token=args.token)
        service.load()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning",
                access_log=False, server_header=False, date_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
