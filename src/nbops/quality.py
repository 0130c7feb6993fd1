"""Data quality checks: ``nbops.check_quality(df, reference=None)`` -> QualityReport.

On its own a frame is checked for missing values, outliers (Tukey's IQR fences),
constant columns and duplicate rows. Against a reference it also lists added,
removed and retyped columns and categories the reference never had. Every finding
has a level: ok, warn or fail. All checks are whole-column pandas/numpy operations.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import QualityError

if TYPE_CHECKING:
    import pandas as pd

LEVELS = ("ok", "warn", "fail")

# default limits: (warn above, fail above)
DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    "missing": (0.05, 0.30),
    "outliers": (0.05, 0.20),
    "duplicates": (0.01, 0.10),
    "new_categories": (0.0, 0.05),  # share of rows whose category the reference lacks
}


@dataclass
class QualityReport:
    """Findings of ``check_quality``; ``level`` is the worst of them."""

    findings: list[dict[str, Any]]
    rows: int
    columns: int
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def level(self) -> str:
        """The worst finding's level: "ok", "warn" or "fail" (see ``LEVELS``)."""
        worst = max((LEVELS.index(f["level"]) for f in self.findings), default=0)
        return LEVELS[worst]

    @property
    def ok(self) -> bool:
        """True when no finding is worse than "ok"."""
        return self.level == "ok"

    @property
    def summary(self) -> pd.DataFrame:
        """DataFrame: check, column, level, value, message (worst first)."""
        import pandas as pd

        rows = sorted(self.findings, key=lambda f: -LEVELS.index(f["level"]))
        return pd.DataFrame(rows, columns=["check", "column", "level", "value", "message"])

    def problems(self, level: str = "warn") -> list[dict[str, Any]]:
        """Findings at ``level`` or worse."""
        floor = LEVELS.index(level)
        return [f for f in self.findings if LEVELS.index(f["level"]) >= floor]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data: level, rows, columns, limits and every finding."""
        return {
            "level": self.level,
            "rows": self.rows,
            "columns": self.columns,
            "limits": {k: list(v) for k, v in self.limits.items()},
            "findings": [dict(f) for f in self.findings],
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def __repr__(self) -> str:
        counts = {lv: sum(f["level"] == lv for f in self.findings) for lv in LEVELS}
        return (
            f"<QualityReport {self.level}: {counts['fail']} fail, {counts['warn']} warn, "
            f"{counts['ok']} ok on {self.rows} rows x {self.columns} columns>"
        )

    def _repr_html_(self) -> str:
        colors = {"ok": "#e1f5e4", "warn": "#fff4d6", "fail": "#fde2e1"}
        e = html.escape
        rows = "".join(
            f"<tr style='background:{colors[f['level']]}'><td>{e(f['level'])}</td>"
            f"<td>{e(f['check'])}</td><td>{e(str(f['column'] or ''))}</td>"
            f"<td>{e(_fmt(f['value']))}</td><td>{e(f['message'])}</td></tr>"
            for f in sorted(self.findings, key=lambda f: -LEVELS.index(f["level"]))
            if f["level"] != "ok"
        )
        n_ok = sum(f["level"] == "ok" for f in self.findings)
        return (
            "<div style='font-family:system-ui,sans-serif;font-size:14px'>"
            f"<b>Data quality: {e(self.level.upper())}</b> &nbsp; {self.rows:,} rows x "
            f"{self.columns} columns; {len(self.findings) - n_ok} findings, {n_ok} checks ok"
            "<table style='border-collapse:collapse;margin-top:4px'><tr><th>level</th>"
            "<th>check</th><th>column</th><th>value</th><th>message</th></tr>"
            f"{rows}</table></div>"
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value[:10])) + (" ..." if len(value) > 10 else "")
    return "" if value is None else str(value)


def _level(value: float, limits: tuple[float, float]) -> str:
    warn, fail = limits
    return "fail" if value > fail else "warn" if value > warn else "ok"


def check_quality(
    df: Any,
    reference: Any = None,
    limits: dict[str, tuple[float, float]] | None = None,
) -> QualityReport:
    """Check ``df`` (and compare it with ``reference`` when given).

    ``limits`` overrides the (warn, fail) rates of "missing", "outliers",
    "duplicates" and "new_categories" (see DEFAULT_LIMITS). Returns a QualityReport;
    raises QualityError if ``df`` or ``reference`` is not a DataFrame or a limit is bad."""
    import numpy as np
    import pandas as pd
    from pandas.api import types as pt

    if not isinstance(df, pd.DataFrame):
        raise QualityError(f"check_quality needs a pandas DataFrame, got {type(df).__name__}")
    if reference is not None and not isinstance(reference, pd.DataFrame):
        raise QualityError(
            f"reference must be a pandas DataFrame (or None), got {type(reference).__name__}"
        )
    lim = dict(DEFAULT_LIMITS)
    for key, value in (limits or {}).items():
        if key not in DEFAULT_LIMITS:
            raise QualityError(f"unknown limit {key!r}; known: {', '.join(DEFAULT_LIMITS)}")
        warn, fail = value
        if not 0 <= warn <= fail:
            raise QualityError(f"limit {key!r} must be (warn, fail) with 0 <= warn <= fail")
        lim[key] = (float(warn), float(fail))

    findings: list[dict[str, Any]] = []

    def add(check: str, column: str | None, level: str, value: Any, message: str) -> None:
        findings.append(
            {"check": check, "column": column, "level": level, "value": value, "message": message}
        )

    n = len(df)
    cols = [str(c) for c in df.columns]
    frame = df.set_axis(cols, axis=1)

    # missing values
    missing = frame.isna().mean() if n else pd.Series(0.0, index=cols)
    for col in cols:
        rate = float(missing[col])
        lvl = "fail" if n and rate == 1.0 else _level(rate, lim["missing"])
        msg = f"{rate:.1%} of values missing" if rate < 1 or not n else "every value is missing"
        add("missing", col, lvl, rate, msg)

    # outliers: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]
    numeric = [
        c
        for c in cols
        if pt.is_numeric_dtype(frame[c].dtype) and not pt.is_bool_dtype(frame[c].dtype)
    ]
    if numeric and n:
        q = frame[numeric].quantile([0.25, 0.75])
        values = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        q1, q3 = q.loc[0.25].to_numpy(dtype=float), q.loc[0.75].to_numpy(dtype=float)
        iqr = q3 - q1
        with np.errstate(invalid="ignore"):
            outside = (values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)
        counted = np.sum(~np.isnan(values), axis=0)
        rates = np.where(counted > 0, outside.sum(axis=0) / np.maximum(counted, 1), 0.0)
        for col, rate, lo, hi in zip(numeric, rates, q1 - 1.5 * iqr, q3 + 1.5 * iqr, strict=True):
            add(
                "outliers",
                col,
                _level(float(rate), lim["outliers"]),
                float(rate),
                f"{rate:.1%} of values outside the IQR fences [{lo:.4g}, {hi:.4g}]",
            )

    # constant columns
    if n:
        nunique = _nunique(frame)
        for col in cols:
            if missing[col] < 1 and nunique[col] <= 1:
                add(
                    "constant",
                    col,
                    "warn",
                    int(nunique[col]),
                    "a single value in every row: the column carries no information",
                )

    # duplicate rows
    if n:
        try:
            dup = int(frame.duplicated().sum())
        except TypeError:  # unhashable cells
            dup = int(frame.astype(str).duplicated().sum())
        rate = dup / n
        add(
            "duplicates",
            None,
            _level(rate, lim["duplicates"]),
            rate,
            f"{dup:,} duplicate rows ({rate:.1%})",
        )
    else:
        add("rows", None, "fail", 0, "the data has no rows")

    if reference is not None:
        _compare(frame, reference, lim, add)

    return QualityReport(findings=findings, rows=n, columns=len(cols), limits=lim)


def _nunique(frame: pd.DataFrame) -> pd.Series:
    try:
        return frame.nunique(dropna=True)
    except TypeError:
        return frame.astype(str).nunique(dropna=True)


def _compare(frame: pd.DataFrame, reference: pd.DataFrame, lim, add) -> None:
    from pandas.api import types as pt

    ref = reference.set_axis([str(c) for c in reference.columns], axis=1)
    ref_cols, cur_cols = list(ref.columns), list(frame.columns)
    for col in cur_cols:
        if col not in ref_cols:
            add(
                "added_column",
                col,
                "warn",
                str(frame[col].dtype),
                "column not in the reference data",
            )
    for col in ref_cols:
        if col not in cur_cols:
            add(
                "removed_column",
                col,
                "fail",
                str(ref[col].dtype),
                "column of the reference data is missing",
            )
    for col in (c for c in cur_cols if c in ref_cols):
        a, b = ref[col].dtype, frame[col].dtype
        if str(a) != str(b):
            both_numeric = (
                pt.is_numeric_dtype(a)
                and pt.is_numeric_dtype(b)
                and not pt.is_bool_dtype(a)
                and not pt.is_bool_dtype(b)
            )
            add(
                "retyped_column",
                col,
                "warn" if both_numeric else "fail",
                [str(a), str(b)],
                f"dtype changed from {a} to {b}",
            )
        categorical = not pt.is_numeric_dtype(b) or pt.is_bool_dtype(b)
        if categorical and not pt.is_datetime64_any_dtype(b):
            try:
                seen = set(ref[col].dropna().unique())
                counts = frame[col].dropna().value_counts()
            except TypeError:
                continue
            new = [v for v in counts.index if v not in seen]
            if new:
                share = float(counts[new].sum() / max(len(frame), 1))
                add(
                    "new_categories",
                    col,
                    _level(share, lim["new_categories"]),
                    [str(v) for v in new],
                    f"{len(new)} categor{'y' if len(new) == 1 else 'ies'} not in the reference "
                    f"({share:.1%} of rows): {_fmt([str(v) for v in new])}",
                )
