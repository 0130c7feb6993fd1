"""``nbops.drift(reference, current)``: prepare each column, pick and run its test,
compare model quality, and gather everything into a :class:`DriftReport`."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import plan, stats
from .model_quality import model_quality
from .plan import DriftWarning, join, num  # noqa: F401 - DriftWarning re-exported
from .sources import is_path
from .stats import CATEGORICAL, NUMERIC

if TYPE_CHECKING:
    import pandas as pd

    from .report import DriftReport


def drift(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    target: str | None = None,
    prediction: str | None = None,
    method: str | dict[str, str] | None = None,
    threshold: float | dict[str, float] | None = None,
    drift_share: float = 0.5,
    quality_drop: float = 0.05,
    engine: str = "auto",
    memory_limit: int | float | str | None = None,
) -> DriftReport:
    """Compare ``current`` data with ``reference`` data column by column.

    Each side is a DataFrame (or Series, dict of columns, 2-D array) or a path: a
    Parquet file, a folder of Parquet files, a glob, or a CSV file. ``engine="pandas"``
    computes in memory; ``"duckdb"`` streams the data through DuckDB queries within
    ``memory_limit`` (bytes or "1GB"; default half of the available memory); ``"auto"``
    uses DuckDB for files that would not fit the limit and pandas otherwise. Both give
    the same methods and verdicts (docs/data-and-drift.md states the tolerances).

    ``method`` forces a test for every column (a name) or per column (a dict); the
    default test follows Evidently 0.7 (see ``nbops.drift.stats.default_method``).
    ``threshold`` likewise (a number or a dict). The dataset drifts when the share of
    drifted feature columns is >= ``drift_share``. With ``target`` and ``prediction``
    present on both sides, model quality is compared too and a relative drop above
    ``quality_drop`` flags model drift.

    Returns a DriftReport. Raises DriftError for empty data, unknown methods, columns
    or engines, missing files, and a method that does not fit a column's type.
    """
    from .sources import choose_engine, files_of, read_files

    chosen = choose_engine(engine, reference, current, memory_limit)
    if chosen == "duckdb":
        from .engine_duckdb import duckdb_drift

        return duckdb_drift(
            reference,
            current,
            columns=columns,
            target=target,
            prediction=prediction,
            method=method,
            threshold=threshold,
            drift_share=drift_share,
            quality_drop=quality_drop,
            memory_limit=memory_limit,
        )
    if is_path(reference):
        reference = read_files(files_of(reference, "reference"), "reference")
    if is_path(current):
        current = read_files(files_of(current, "current"), "current")
    ref = plan.as_frame(reference, "reference")
    cur = plan.as_frame(current, "current")
    plan.check_args(len(ref), len(cur), method, drift_share)
    ref_cols = [str(c) for c in ref.columns]
    cur_cols = [str(c) for c in cur.columns]
    ref.columns, cur.columns = ref_cols, cur_cols
    missing, common = plan.plan_columns(
        ref_cols, cur_cols, columns, target, prediction, method, threshold
    )

    def one(col: str) -> dict[str, Any]:
        m, t, role = plan.column_args(col, method, threshold, target, prediction)
        return _column_drift(col, ref[col], cur[col], m, t, role)

    workers = min(len(common), max(1, min(4, os.cpu_count() or 1)))
    if workers > 1 and len(ref) + len(cur) > 50_000:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, common))
    else:
        results = [one(c) for c in common]

    model = None
    if target is not None and prediction is not None and {target, prediction} <= set(common):
        model = model_quality(ref, cur, target, prediction, quality_drop)
    return plan.assemble(
        results,
        missing,
        drift_share,
        model,
        {"reference": int(len(ref)), "current": int(len(cur))},
        target,
        prediction,
        "pandas",
    )


# -- one column --------------------------------------------------------------------


def column_kind(ref: pd.Series, cur: pd.Series) -> tuple[str | None, str]:
    """("numeric" | "categorical" | None, note). None means: cannot be tested."""
    import pandas as pd
    from pandas.api import types as pt

    def numeric(s: pd.Series) -> bool:
        return pt.is_numeric_dtype(s.dtype) and not pt.is_bool_dtype(s.dtype)

    if pt.is_datetime64_any_dtype(ref.dtype) or pt.is_datetime64_any_dtype(cur.dtype):
        return None, "datetime column: drift is not computed for dates"
    if numeric(ref) and numeric(cur):
        if pt.is_integer_dtype(ref.dtype) and pt.is_integer_dtype(cur.dtype):
            if cur.nunique() <= plan.INT_CATEGORICAL_LIMIT:
                return CATEGORICAL, (
                    f"integer column with <= {plan.INT_CATEGORICAL_LIMIT} values: "
                    "categorical (as Evidently)"
                )
        return NUMERIC, ""
    notes = []
    if numeric(ref) != numeric(cur):
        notes.append("dtype differs between reference and current")
    kinds = {pd.api.types.infer_dtype(s, skipna=True) for s in (ref, cur) if s.dtype == object}
    if kinds & {"mixed", "mixed-integer", "mixed-integer-float"} or notes:
        notes.append("mixed types: treated as categorical")
    return CATEGORICAL, "; ".join(notes)


def _finite(s: pd.Series):
    import numpy as np

    arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
    mask = np.isfinite(arr)
    return arr if mask.all() else arr[mask]


def _column_drift(
    col: str,
    ref_s: pd.Series,
    cur_s: pd.Series,
    method: str | None,
    threshold: float | None,
    role: str,
) -> dict[str, Any]:

    kind, note = column_kind(ref_s, cur_s)
    row = plan.empty_row(col, kind, role, note)
    if kind is None:
        return row
    pair = None
    keys = ref_counts = cur_counts = None
    if kind == NUMERIC:
        ref_v, cur_v = _finite(ref_s), _finite(cur_s)
    else:
        ref_v, cur_v = ref_s.dropna(), cur_s.dropna()
    row["n_reference"], row["n_current"] = int(len(ref_v)), int(len(cur_v))
    for side, values, series in (("reference", ref_v, ref_s), ("current", cur_v, cur_s)):
        if len(values) == 0:
            what = "all values are missing" if len(series) else "no rows"
            row["note"] = join(note, f"skipped: {what} in the {side} data")
            return row

    if kind == NUMERIC:
        pair = stats.numeric_pair(ref_v, cur_v)
        n_unique = stats.numeric_unique_at_most(pair, 5)
    else:
        keys, ref_counts, cur_counts = _category_counts(ref_v, cur_v)
        n_unique = len(keys)

    name = method or stats.default_method(kind, row["n_reference"], n_unique)
    m = stats.method_for(name, kind, col)
    thr = float(threshold) if threshold is not None else m.default_threshold
    if kind == NUMERIC and m.name in ("chisquare", "z"):
        keys, ref_counts, cur_counts = stats.value_counts(pair.ref, pair.cur)

    if m.name == "ks":
        res = stats.ks(pair.ref, pair.cur)
    elif m.name == "wasserstein":
        res = stats.wasserstein_normed(pair, thr)
    elif m.name == "chisquare":
        res = stats.chi_square(ref_counts, cur_counts)
    elif m.name == "z":
        res = stats.z_test(keys, ref_counts, cur_counts)
    else:
        r_share, c_share = stats.binned_shares(kind, pair, keys, ref_counts, cur_counts)
        res = plan.shares_test(m.name, r_share, c_share)
    plan.record_result(row, m, res, thr)
    if kind == NUMERIC:
        row["plot"] = plan.numeric_plot(
            pair.ref_counts, pair.cur_counts, pair.ref.size, pair.cur.size, pair.lo, pair.hi
        )
    else:
        row["plot"] = plan.category_plot(keys, ref_counts, cur_counts)
    return row


def _category_counts(ref_v: pd.Series, cur_v: pd.Series):
    import numpy as np

    try:
        rc = ref_v.value_counts(sort=False)
        cc = cur_v.value_counts(sort=False)
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        rc = ref_v.astype(str).value_counts(sort=False)
        cc = cur_v.astype(str).value_counts(sort=False)
    keys, r, c = stats.align_counts(rc, cc)
    keep = (r + c) > 0  # categorical dtypes list unused categories with count 0
    if not keep.all():
        keys = [k for k, ok in zip(keys, keep, strict=False) if ok]
        r, c = r[keep], c[keep]
    return keys, np.asarray(r), np.asarray(c)
