"""``nbops.drift(reference, current)``: prepare each column, pick and run its test,
compare model quality, and gather everything into a :class:`DriftReport`."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._errors import DriftError
from . import stats
from .stats import CATEGORICAL, NUMERIC

if TYPE_CHECKING:
    import pandas as pd

    from .report import DriftReport

PLOT_BINS = 50  # FINE_BINS is a multiple of this, so plot bins sum whole fine bins
TOP_CATEGORIES = 20
INT_CATEGORICAL_LIMIT = 10  # Evidently 0.7: integer columns with <= 10 values are categorical


class DriftWarning(UserWarning):
    """Drift was computed, but on less than the user asked for (missing columns...)."""


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
) -> DriftReport:
    """Compare ``current`` data with ``reference`` data column by column.

    ``method`` forces a test for every column (a name) or per column (a dict); the
    default test follows Evidently 0.7 (see ``nbops.drift.stats.default_method``).
    ``threshold`` likewise (a number or a dict). The dataset drifts when the share of
    drifted feature columns is >= ``drift_share``. With ``target`` and ``prediction``
    present on both sides, model quality is compared too and a relative drop above
    ``quality_drop`` flags model drift.

    Returns a DriftReport. Raises DriftError for empty data, unknown methods or
    columns, and a method that does not fit a column's type.
    """

    ref = _as_frame(reference, "reference")
    cur = _as_frame(current, "current")
    if len(cur) == 0:
        raise DriftError("the current data has no rows; pass a DataFrame with at least one row")
    if len(ref) == 0:
        raise DriftError("the reference data has no rows; pass a DataFrame with at least one row")
    if not 0 < drift_share <= 1:
        raise DriftError(f"drift_share must be in (0, 1], got {drift_share!r}")
    if isinstance(method, str):
        stats.get_method(method)
    elif isinstance(method, dict):
        for m in method.values():
            stats.get_method(m)
    elif method is not None:
        raise DriftError("method must be a method name or a dict {column: method name}")

    ref_cols = [str(c) for c in ref.columns]
    cur_cols = [str(c) for c in cur.columns]
    ref.columns, cur.columns = ref_cols, cur_cols
    for role, col in (("target", target), ("prediction", prediction)):
        if col is not None and col not in ref_cols and col not in cur_cols:
            raise DriftError(
                f"the {role} column {col!r} is in neither the reference nor the current data; "
                f"columns: {', '.join(sorted(set(ref_cols) | set(cur_cols)))}"
            )
    if columns is None:
        wanted = ref_cols + [c for c in cur_cols if c not in ref_cols]
    else:
        wanted = [str(c) for c in columns]
        for extra in (target, prediction):
            if extra is not None and extra not in wanted:
                wanted.append(extra)
        unknown = [c for c in wanted if c not in ref_cols and c not in cur_cols]
        if unknown:
            raise DriftError(
                f"column(s) {unknown} are in neither the reference nor the current data; "
                f"available: {sorted(set(ref_cols) | set(cur_cols))}"
            )
    for name, value in (("method", method), ("threshold", threshold)):
        if isinstance(value, dict):
            unknown = [c for c in value if c not in wanted]
            if unknown:
                raise DriftError(f"{name} names column(s) {unknown} that are not being compared")
    ref_set, cur_set = set(ref_cols), set(cur_cols)
    missing = {
        "reference_only": [c for c in wanted if c in ref_set and c not in cur_set],
        "current_only": [c for c in wanted if c in cur_set and c not in ref_set],
    }
    if missing["reference_only"] or missing["current_only"]:
        warnings.warn(
            "nbops.drift: columns missing from one side are skipped and listed in the report "
            f"(only in reference: {missing['reference_only']}, only in current: "
            f"{missing['current_only']}); drift is computed on the common columns",
            DriftWarning,
            stacklevel=2,
        )
    common = [c for c in wanted if c in ref_set and c in cur_set]
    if not common:
        raise DriftError(
            "the reference and current data share no columns; check that both frames "
            "come from the same source"
        )

    def one(col: str) -> dict[str, Any]:
        m = method.get(col) if isinstance(method, dict) else method
        t = threshold.get(col) if isinstance(threshold, dict) else threshold
        role = "target" if col == target else "prediction" if col == prediction else "feature"
        return _column_drift(col, ref[col], cur[col], m, t, role)

    workers = min(len(common), max(1, min(4, os.cpu_count() or 1)))
    if workers > 1 and len(ref) + len(cur) > 50_000:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, common))
    else:
        results = [one(c) for c in common]

    tested = [r for r in results if r.get("test") is not None]
    skipped = [{"column": r["column"], "reason": r["note"]} for r in results
               if r.get("test") is None]
    features = [r for r in tested if r["role"] == "feature"]
    basis = features or tested
    n_drifted = sum(r["drifted"] for r in basis)
    share = n_drifted / len(basis) if basis else 0.0

    model = None
    if target is not None and prediction is not None and {target, prediction} <= set(common):
        model = model_quality(ref, cur, target, prediction, quality_drop)

    from .report import DriftReport

    return DriftReport(
        columns=[{k: v for k, v in r.items() if k != "plot"} for r in tested],
        skipped=skipped,
        missing=missing,
        drift_share=float(drift_share),
        share=float(share),
        n_drifted=int(n_drifted),
        n_tested=len(basis),
        drifted=bool(basis) and share >= drift_share,
        model=model,
        distributions={r["column"]: r["plot"] for r in results if r.get("plot") is not None},
        rows={"reference": int(len(ref)), "current": int(len(cur))},
        target=target,
        prediction=prediction,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _as_frame(data: Any, side: str) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.copy(deep=False)
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else "value")
    if isinstance(data, np.ndarray) and data.ndim in (1, 2):
        return pd.DataFrame(data if data.ndim == 2 else data[:, None])
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise DriftError(
        f"the {side} data is a {type(data).__name__}; pass a pandas DataFrame "
        "(or a Series, dict of columns or 2-D numpy array)"
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
            if cur.nunique() <= INT_CATEGORICAL_LIMIT:
                return CATEGORICAL, (f"integer column with <= {INT_CATEGORICAL_LIMIT} values: "
                                     "categorical (as Evidently)")
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
    col: str, ref_s: pd.Series, cur_s: pd.Series, method: str | None,
    threshold: float | None, role: str,
) -> dict[str, Any]:
    import numpy as np

    kind, note = column_kind(ref_s, cur_s)
    row: dict[str, Any] = {"column": col, "type": kind, "role": role, "test": None,
                           "statistic": None, "p_value": None, "threshold": None,
                           "drifted": False, "n_reference": 0, "n_current": 0, "note": note}
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
            row["note"] = _join(note, f"skipped: {what} in the {side} data")
            return row

    if kind == NUMERIC:
        pair = stats.numeric_pair(ref_v, cur_v)
        n_unique = stats.numeric_unique_at_most(pair, 5)
    else:
        keys, ref_counts, cur_counts = _category_counts(ref_v, cur_v)
        n_unique = len(keys)

    name = method or stats.default_method(kind, row["n_reference"], n_unique)
    m = stats.get_method(name)
    if kind not in m.kinds:
        raise DriftError(
            f"method {m.name!r} works on numeric columns only and column {col!r} is "
            f"{kind}; pass method={{...}} per column, or one of: "
            + ", ".join(k for k, v in stats.METHODS.items() if kind in v.kinds)
        )
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
        res = stats.jensen_shannon(r_share, c_share) if m.name == "jensenshannon" \
            else stats.psi(r_share, c_share)
    score = res.score
    drifted = m.drifted(score, thr) if np.isfinite(score) or m.rule != ">=" else True
    row.update(test=m.name, statistic=_num(res.statistic), p_value=_num(res.p_value),
               threshold=thr, drifted=bool(drifted))
    if kind == NUMERIC:
        row["plot"] = _numeric_plot(pair)
    else:
        row["plot"] = _category_plot(keys, ref_counts, cur_counts)
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


def _num(value: float | None) -> float | None:
    import math

    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else (math.inf if value > 0 else -math.inf)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _numeric_plot(pair: stats.NumericPair) -> dict[str, Any]:
    """Shares in PLOT_BINS equal bins over the joint range (aggregated, never raw rows)."""
    import numpy as np

    group = stats.FINE_BINS // PLOT_BINS
    r = pair.ref_counts.reshape(PLOT_BINS, group).sum(axis=1) / pair.ref.size
    c = pair.cur_counts.reshape(PLOT_BINS, group).sum(axis=1) / pair.cur.size
    edges = np.linspace(pair.lo, pair.hi, PLOT_BINS + 1)
    return {"kind": NUMERIC, "edges": _round(edges), "reference": _round(r),
            "current": _round(c)}


def _category_plot(keys: list[Any], r, c) -> dict[str, Any]:
    import numpy as np

    r_share, c_share = r / r.sum(), c / c.sum()
    order = np.argsort(-(r_share + c_share), kind="stable")
    top = order[:TOP_CATEGORIES]
    labels = [str(keys[i]) for i in top]
    ref_top, cur_top = list(r_share[top]), list(c_share[top])
    if len(order) > TOP_CATEGORIES:
        labels.append(f"(other {len(order) - TOP_CATEGORIES})")
        ref_top.append(1 - sum(ref_top))
        cur_top.append(1 - sum(cur_top))
    return {"kind": CATEGORICAL, "labels": labels, "reference": _round(ref_top),
            "current": _round(cur_top)}


def _round(values: Any) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


# -- model quality -----------------------------------------------------------------

HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "roc_auc": True, "rmse": False, "mae": False}


def model_quality(
    ref: pd.DataFrame, cur: pd.DataFrame, target: str, prediction: str, quality_drop: float
) -> dict[str, Any]:
    """Quality on both sides and which metrics dropped by more than ``quality_drop``
    (relative to the reference value)."""
    task = _task(ref[target], ref[prediction])
    out: dict[str, Any] = {"task": task, "quality_drop": quality_drop, "metrics": {}}
    ref_m = _quality(ref[target], ref[prediction], task)
    cur_m = _quality(cur[target], cur[prediction], task)
    for key in ref_m:
        a, b = ref_m[key], cur_m.get(key)
        if a is None or b is None:
            continue
        change = b - a
        worse = -change if HIGHER_IS_BETTER[key] else change
        rel = worse / abs(a) if a else (0.0 if worse <= 0 else float("inf"))
        out["metrics"][key] = {"reference": a, "current": b, "change": change,
                               "relative_drop": rel, "flagged": bool(rel > quality_drop)}
    out["drifted"] = any(v["flagged"] for v in out["metrics"].values())
    return out


def _task(y: pd.Series, p: pd.Series) -> str:
    from pandas.api import types as pt

    if pt.is_float_dtype(y.dtype) and y.nunique() > 20:
        return "regression"
    return "classification"


def _quality(y: pd.Series, p: pd.Series, task: str) -> dict[str, float | None]:
    import numpy as np
    from pandas.api import types as pt
    from sklearn import metrics

    ok = y.notna() & p.notna()
    y, p = y[ok], p[ok]
    if len(y) == 0:
        return {}
    if task == "regression":
        err = p.to_numpy(dtype=float) - y.to_numpy(dtype=float)
        return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
    classes = sorted(y.unique().tolist(), key=stats._sort_key)
    out: dict[str, float | None] = {}
    scores = pt.is_float_dtype(p.dtype) and len(classes) == 2 and p.between(0, 1).all() \
        and not set(p.unique()) <= set(classes)
    if scores:
        positive = classes[-1]
        out["roc_auc"] = (float(metrics.roc_auc_score(y == positive, p))
                          if y.nunique() == 2 else None)
        labels = np.where(p.to_numpy() >= 0.5, positive, classes[0])
    else:
        labels = p.to_numpy()
    y_arr = y.to_numpy()
    out["accuracy"] = float(metrics.accuracy_score(y_arr, labels))
    if len(classes) == 2:
        out["f1"] = float(metrics.f1_score(y_arr, labels, pos_label=classes[-1]))
    else:
        out["f1"] = float(metrics.f1_score(y_arr, labels, average="macro"))
    return out
