"""Dataset fingerprints: a content digest, shape and schema of a DataFrame or array.

The digest hashes the values with pandas' vectorised row hashing (plus column
names and dtypes), so two frames with the same content share a digest wherever
they came from, and any changed cell gives a new one.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any

from ._errors import NbopsError
from ._util import normalise_time, utc_now


def fingerprint(obj: Any) -> dict[str, Any]:
    """``{digest, kind, shape, schema}`` of a pandas DataFrame / Series or a numpy array.

    Raises NbopsError for anything else."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256()
    if isinstance(obj, pd.Series):
        obj = obj.to_frame(name=obj.name if obj.name is not None else 0)
        kind = "series"
    elif isinstance(obj, pd.DataFrame):
        kind = "dataframe"
    elif isinstance(obj, np.ndarray):
        kind = "ndarray"
    else:
        raise NbopsError(
            f"cannot fingerprint a {type(obj).__name__}; pass a pandas DataFrame, Series "
            "or numpy array"
        )
    if kind == "ndarray":
        h.update(f"ndarray|{obj.dtype.str}|{obj.shape}".encode())
        if obj.dtype.hasobject:
            h.update(
                pd.util.hash_pandas_object(pd.Series(obj.ravel()), index=False).to_numpy().tobytes()
            )
        else:
            h.update(np.ascontiguousarray(obj).view(np.uint8).ravel().data)
        schema = {"values": str(obj.dtype)}
        shape = list(obj.shape)
    else:
        schema = {str(c): str(t) for c, t in obj.dtypes.items()}
        h.update(repr(list(schema.items())).encode())
        try:
            rows = pd.util.hash_pandas_object(obj, index=True).to_numpy()
        except TypeError:  # unhashable cells (lists, dicts): fall back to their repr
            rows = pd.util.hash_pandas_object(obj.astype(str), index=True).to_numpy()
        h.update(rows.tobytes())
        shape = list(obj.shape)
    return {"digest": h.hexdigest()[:32], "kind": kind, "shape": shape, "schema": schema}


# -- named dataset versions (nbops.log_dataset / nbops.datasets) -------------------------

TOP_VALUES = 5


def profile(df: Any) -> dict[str, dict[str, Any]]:
    """Per-column statistics: count, missing, unique; for numbers mean, std, min,
    quantiles (25/50/75%) and max; for other columns the top values with counts."""
    import pandas as pd
    from pandas.api import types as pt

    frame = _as_frame(df)
    out: dict[str, dict[str, Any]] = {}
    counts = frame.notna().sum()
    try:
        uniques = frame.nunique(dropna=True)
    except TypeError:
        uniques = frame.astype(str).nunique(dropna=True)
    numeric = [
        c
        for c in frame.columns
        if pt.is_numeric_dtype(frame[c].dtype) and not pt.is_bool_dtype(frame[c].dtype)
    ]
    if numeric:
        num = frame[numeric]
        desc = pd.DataFrame(
            {"mean": num.mean(), "std": num.std(), "min": num.min(), "max": num.max()}
        )
        qs = num.quantile([0.25, 0.5, 0.75])
    for col in frame.columns:
        key = str(col)
        prof: dict[str, Any] = {
            "dtype": str(frame[col].dtype),
            "count": int(counts[col]),
            "missing": int(len(frame) - counts[col]),
            "unique": int(uniques[col]),
        }
        if col in numeric:
            for stat in ("mean", "std", "min", "max"):
                prof[stat] = _num(desc.at[col, stat])
            for q, label in ((0.25, "q25"), (0.5, "q50"), (0.75, "q75")):
                prof[label] = _num(qs.at[q, col])
        else:
            try:
                top = frame[col].value_counts(dropna=True).head(TOP_VALUES)
            except TypeError:
                top = frame[col].astype(str).value_counts(dropna=True).head(TOP_VALUES)
            prof["top"] = [[str(k), int(v)] for k, v in top.items()]
        out[key] = prof
    return out


def _num(value: Any) -> float | None:
    import math

    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _as_frame(obj: Any):
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, pd.Series):
        return obj.to_frame(name=obj.name if obj.name is not None else 0)
    if isinstance(obj, np.ndarray) and obj.ndim <= 2:
        return pd.DataFrame(obj if obj.ndim == 2 else obj[:, None])
    raise NbopsError(
        f"cannot profile a {type(obj).__name__}; pass a pandas DataFrame, Series or a "
        "1-D/2-D numpy array"
    )


def _named_versions(store: Any, name: str) -> list[dict[str, Any]]:
    return store.dataset_versions(name)


def log_dataset(df: Any, name: str, source: str | None = None) -> dict[str, Any]:
    """Record ``df`` as a version of the dataset ``name``.

    A new version (1, 2, 3... per name) is made only when the digest differs from the
    latest version's; logging the same data again returns the latest record. The
    record holds digest, version, shape, schema, profile, source, first_seen and the
    runs that used it. Inside an active run the digest becomes one of its inputs.
    Raises NbopsError for an empty name or data nbops cannot fingerprint."""
    from .store import get_store

    if not isinstance(name, str) or not name.strip():
        raise NbopsError("log_dataset needs a dataset name, e.g. log_dataset(df, 'train')")
    name = name.strip()
    fp = fingerprint(df)
    store = get_store()
    _link_to_active_run(fp["digest"])
    with store.transaction():
        versions = _named_versions(store, name)
        if versions and versions[-1]["digest"] == fp["digest"]:
            return _with_runs(store, dict(versions[-1]))
        record = {
            **fp,
            "name": name,
            "version": (versions[-1]["version"] + 1) if versions else 1,
            "ref": None,
            "profile": profile(df),
            "source": source,
            "first_seen": utc_now(),
        }
        record["ref"] = f"{name}@{record['version']}"
        store.insert_dataset(record)
    return _with_runs(store, dict(record))


# Runs open in this process keep their inputs in memory until they flush. datasets
# sits beside tracking and must not import it (tracking fingerprints DataFrames with
# this module), so tracking hands over the function that lists its open runs.
_open_runs: Callable[[], list[Any]] = list


def set_open_runs(provider: Callable[[], list[Any]]) -> None:
    """Tell datasets how to list the runs open in this process, innermost last
    (``nbops.tracking`` does this on import)."""
    global _open_runs
    _open_runs = provider


def _link_to_active_run(digest: str) -> None:
    open_runs = _open_runs()
    if open_runs:
        open_runs[-1].add_input(digest)


def _with_runs(store: Any, record: dict[str, Any]) -> dict[str, Any]:
    record["runs"] = [
        r["run_id"] for r in store.all_runs() if record["digest"] in (r.get("inputs") or [])
    ]
    for r in _active_runs():
        if record["digest"] in r.inputs and r.run_id not in record["runs"]:
            record["runs"].append(r.run_id)
    return record


def _active_runs() -> list[Any]:
    return _open_runs()


def dataset(name: str, version: int | None = None) -> dict[str, Any]:
    """The record (with profile and runs) of ``name`` at ``version`` (default: latest).
    Raises NbopsError naming the known datasets or versions."""
    from .store import get_store

    store = get_store()
    versions = _named_versions(store, name)
    if not versions:
        known = sorted({d["name"] for d in store.all_datasets() if d.get("version") is not None})
        raise NbopsError(
            f"no dataset named {name!r}; logged datasets: {known}. "
            "Record one with nbops.log_dataset(df, name)"
        )
    if version is None:
        return _with_runs(store, dict(versions[-1]))
    for d in versions:
        if d["version"] == int(version):
            return _with_runs(store, dict(d))
    raise NbopsError(
        f"dataset {name!r} has no version {version}; versions: {[d['version'] for d in versions]}"
    )


DATASET_COLUMNS = ["name", "version", "digest", "rows", "columns", "source", "first_seen", "runs"]


def datasets(name: str | None = None):
    """DataFrame of recorded datasets, one row per version: name, version, digest, rows,
    columns, source, first_seen, runs (ids of the runs that used it). Datasets seen by
    %%track without log_dataset appear with the variable name and no version."""
    import pandas as pd

    from .store import get_store

    store = get_store()
    docs = [d for d in store.all_datasets() if name is None or d.get("name") == name]
    used: dict[str, list[str]] = {}
    for run in store.all_runs():
        for digest in run.get("inputs") or []:
            used.setdefault(digest, []).append(run["run_id"])
    for run in _active_runs():
        for digest in run.inputs:
            if run.run_id not in used.setdefault(digest, []):
                used[digest].append(run.run_id)
    rows = []
    for d in docs:
        shape = d.get("shape") or [None, None]
        rows.append(
            {
                "name": d.get("name"),
                "version": d.get("version"),
                "digest": d["digest"],
                "rows": shape[0],
                "columns": shape[1] if len(shape) > 1 else None,
                "source": d.get("source"),
                "first_seen": d.get("first_seen"),
                "runs": used.get(d["digest"], []),
            }
        )
    rows.sort(
        key=lambda r: (
            str(r["name"]),
            r["version"] or 0,
            normalise_time(r["first_seen"]) if r["first_seen"] else "",
        )
    )
    return pd.DataFrame(rows, columns=DATASET_COLUMNS)


# -- training samples (a model's default drift reference) --------------------------------

#: at most this many rows of the training data are kept as a model's drift reference
REFERENCE_MAX_ROWS = 10_000
ENV_REFERENCE_ROWS = "NBOPS_REFERENCE_ROWS"
REFERENCE_SEED = 0


def reference_max_rows() -> int:
    """How many training rows a model keeps as its reference: ``$NBOPS_REFERENCE_ROWS``
    (0 keeps none), else :data:`REFERENCE_MAX_ROWS`. Raises NbopsError for a value that
    is not a whole number."""
    import os

    raw = os.environ.get(ENV_REFERENCE_ROWS, "").strip()
    if not raw:
        return REFERENCE_MAX_ROWS
    try:
        return max(int(raw), 0)
    except ValueError:
        raise NbopsError(
            f"${ENV_REFERENCE_ROWS} must be a whole number of rows (0 stores no "
            f"training sample), not {raw!r}"
        ) from None


def training_sample(data: Any, signature: dict[str, Any]) -> tuple[Any, int] | None:
    """(sample, total rows) of the model's input columns of ``data``: every row when it
    has at most :func:`reference_max_rows`, else that many rows drawn without
    replacement with a fixed seed, kept in their original order. None when ``data`` is
    None or False, or the limit is 0. Raises RegistryError when ``data`` is not a
    DataFrame or lacks the signature's input columns."""
    from ._errors import RegistryError

    if data is None or data is False:
        return None
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise RegistryError(
            f"reference must be the training DataFrame (pandas, with the model's input "
            f"columns), not a {type(data).__name__}; pass reference=X_train, or leave it out"
        )
    limit = reference_max_rows()
    if limit == 0:
        return None
    by_name = {str(c): c for c in data.columns}
    cols = [i["name"] for i in signature.get("inputs") or []] or list(by_name)
    missing = [c for c in cols if c not in by_name]
    if missing:
        raise RegistryError(
            f"the reference DataFrame lacks the model's input columns {missing} (it has "
            f"{list(by_name)[:20]}); pass the DataFrame the model was trained on"
        )
    frame = data[[by_name[c] for c in cols]]
    frame.columns = cols
    total = len(frame)
    if total > limit:
        import numpy as np

        rows = np.sort(np.random.default_rng(REFERENCE_SEED).choice(total, limit, replace=False))
        frame = frame.iloc[rows]
    return frame.reset_index(drop=True), total


def sample_bytes(frame: Any) -> tuple[bytes, str]:
    """A training sample as file bytes and their format: Parquet when pyarrow is
    importable (dtypes survive), else CSV (with a warning when Parquet failed)."""
    import importlib.util
    import io
    import warnings

    if importlib.util.find_spec("pyarrow") is not None:
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, index=False, engine="pyarrow")
            return buffer.getvalue(), "parquet"
        except Exception as exc:  # noqa: BLE001 - e.g. a column of mixed Python objects
            warnings.warn(
                f"nbops: the training sample is stored as CSV because pyarrow "
                f"cannot write it as Parquet: {exc}",
                stacklevel=3,
            )
    return frame.to_csv(index=False).encode(), "csv"


def read_reference_file(path: Any, fmt: str) -> Any:
    """A stored training sample as a DataFrame (``fmt`` "parquet" or "csv")."""
    import pandas as pd

    return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)


def _make_callable() -> None:
    # `nbops.datasets` is both this module and the function: importing the module binds
    # it as the attribute `nbops.datasets`, so calling the module must list datasets.
    import sys
    import types

    class _DatasetsModule(types.ModuleType):
        def __call__(self, name: str | None = None):
            return datasets(name)

    module = sys.modules[__name__]
    module.__class__ = _DatasetsModule


_make_callable()
_module = sys.modules[__name__]  # `nbops.datasets` resolves to this (callable) module
