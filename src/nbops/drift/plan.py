"""What both drift engines share: checking the arguments, choosing the columns to
compare, and gathering per-column results into a :class:`DriftReport`."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .._errors import DriftError, DriftWarning
from .._util import utc_now
from . import stats
from .stats import CATEGORICAL, NUMERIC

if TYPE_CHECKING:
    import pandas as pd

    from .report import DriftReport


PLOT_BINS = 50  # FINE_BINS is a multiple of this, so plot bins sum whole fine bins
TOP_CATEGORIES = 20
INT_CATEGORICAL_LIMIT = 10  # Evidently 0.7: integer columns with <= 10 values are categorical


def check_args(n_ref: int, n_cur: int, method: Any, drift_share: float) -> None:
    """Raise DriftError for empty data, a bad drift_share or an unknown method."""
    if n_cur == 0:
        raise DriftError("the current data has no rows; pass a DataFrame with at least one row")
    if n_ref == 0:
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


def plan_columns(
    ref_cols: list[str],
    cur_cols: list[str],
    columns: list[str] | None,
    target: str | None,
    prediction: str | None,
    method: Any,
    threshold: Any,
    stacklevel: int = 3,
) -> tuple[dict[str, list[str]], list[str]]:
    """(missing, common): the wanted columns found on one side only, and those on both,
    in order. Warns (DriftWarning) about one-sided columns; raises DriftError for
    unknown columns or no common column."""
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
            stacklevel=stacklevel + 1,
        )
    common = [c for c in wanted if c in ref_set and c in cur_set]
    if not common:
        raise DriftError(
            "the reference and current data share no columns; check that both frames "
            "come from the same source"
        )
    return missing, common


def column_args(
    col: str, method: Any, threshold: Any, target: str | None, prediction: str | None
) -> tuple[str | None, float | None, str]:
    """(forced method, threshold, role) of one column."""
    m = method.get(col) if isinstance(method, dict) else method
    t = threshold.get(col) if isinstance(threshold, dict) else threshold
    role = "target" if col == target else "prediction" if col == prediction else "feature"
    return m, t, role


def assemble(
    results: list[dict[str, Any]],
    missing: dict[str, list[str]],
    drift_share: float,
    model: dict[str, Any] | None,
    rows: dict[str, int],
    target: str | None,
    prediction: str | None,
    engine: str,
) -> DriftReport:
    """The DriftReport of per-column results (each with an optional "plot")."""
    from .report import DriftReport

    tested = [r for r in results if r.get("test") is not None]
    skipped = [
        {"column": r["column"], "reason": r["note"]} for r in results if r.get("test") is None
    ]
    features = [r for r in tested if r["role"] == "feature"]
    basis = features or tested
    n_drifted = sum(r["drifted"] for r in basis)
    share = n_drifted / len(basis) if basis else 0.0
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
        rows=rows,
        target=target,
        prediction=prediction,
        created=utc_now(),
        engine=engine,
    )


def as_frame(data: Any, side: str) -> pd.DataFrame:
    """``data`` (DataFrame, Series, dict of columns or 1-/2-D array) as a DataFrame,
    without copying the values; DriftError naming ``side`` for anything else."""
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


def num(value: float | None) -> float | None:
    """A statistic as a plain float (None stays None; NaN and infinities stay what they
    are, as Python floats)."""
    import math

    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else (math.inf if value > 0 else -math.inf)


def join(a: str, b: str) -> str:
    """Two notes joined with "; " (just ``b`` when ``a`` is empty)."""
    return f"{a}; {b}" if a else b


def empty_row(column: str, kind: str, role: str | None, note: str) -> dict[str, Any]:
    """A column's report row before its test runs (no test, no verdict, no counts)."""
    return {
        "column": column,
        "type": kind,
        "role": role,
        "test": None,
        "statistic": None,
        "p_value": None,
        "threshold": None,
        "drifted": False,
        "n_reference": 0,
        "n_current": 0,
        "note": note,
    }


def shares_test(name: str, r_share: Any, c_share: Any) -> stats.TestResult:
    """Jensen-Shannon distance (``name`` "jensenshannon") or PSI of two share vectors."""
    if name == "jensenshannon":
        return stats.jensen_shannon(r_share, c_share)
    return stats.psi(r_share, c_share)


def record_result(
    row: dict[str, Any], method: stats.Method, res: stats.TestResult, threshold: float
) -> None:
    """Write a column's test result into its report row: test, statistic, p-value,
    threshold and verdict (an infinite distance always counts as drift)."""
    import numpy as np

    score = res.score
    drifted = (
        method.drifted(score, threshold) if np.isfinite(score) or method.rule != ">=" else True
    )
    row.update(
        test=method.name,
        statistic=num(res.statistic),
        p_value=num(res.p_value),
        threshold=threshold,
        drifted=bool(drifted),
    )


def numeric_plot(
    ref_counts: Any, cur_counts: Any, n_ref: int, n_cur: int, lo: float, hi: float
) -> dict[str, Any]:
    """Shares in PLOT_BINS equal bins over the joint range, summed from the fine
    histograms (aggregated, never raw rows)."""
    import numpy as np

    group = stats.FINE_BINS // PLOT_BINS
    r = np.asarray(ref_counts).reshape(PLOT_BINS, group).sum(axis=1) / n_ref
    c = np.asarray(cur_counts).reshape(PLOT_BINS, group).sum(axis=1) / n_cur
    edges = np.linspace(lo, hi, PLOT_BINS + 1)
    return {
        "kind": NUMERIC,
        "edges": round_list(edges),
        "reference": round_list(r),
        "current": round_list(c),
    }


def category_plot(keys: list[Any], r, c) -> dict[str, Any]:
    """The plot data of a categorical column: the shares of the most frequent
    categories (at most ``TOP_CATEGORIES``) in reference counts ``r`` and current counts
    ``c``, the rest summed as one "(other N)" bar."""
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
    return {
        "kind": CATEGORICAL,
        "labels": labels,
        "reference": round_list(ref_top),
        "current": round_list(cur_top),
    }


def round_list(values: Any) -> list[float]:
    """Values rounded to 6 significant digits (plot data stays small in HTML)."""
    return [float(f"{v:.6g}") for v in values]
