"""The DuckDB engine: drift of data larger than memory, every statistic a DuckDB query.

Each side is a DuckDB view over Parquet files (``read_parquet``, by column name), a CSV
file (``read_csv_auto``) or a DataFrame (scanned where it is). The connection gets a
memory limit (three quarters of ``memory_limit``, at least 128 MB; the rest is left to
Python), all
cores, and a temporary folder to spill to; every query streams row groups and keeps
only aggregates, so nothing the size of the data is ever held:

1. one scan per side: row count; per numeric column the finite count, min, max and
   (reference) population standard deviation; per categorical column its value counts
   (``histogram``); for integer columns an approximate distinct count, then an exact one
   when it is small (Evidently treats integers with <= 10 values as categories).
2. per numeric column and side, a GROUP BY over its 12,800 bins on the joint range, in
   the same bins and the same floating-point steps as the pandas engine.
3. per column, only what its test needs: exact distinct counts (few values), value
   counts (chi-square, Z, and Jensen-Shannon / PSI on few values), Sturges bins
   (Jensen-Shannon / PSI), the KS statistic through an ASOF join of the current values
   onto the (at most 1,000) reference values, and the exact Wasserstein distance by a
   sorted window over the merged values when the histogram bounds leave the verdict
   open or the data is small (as the pandas engine does).

The tests then run on these aggregates through the same functions as the pandas engine
(stats.py), so methods and verdicts agree; scores agree exactly for counts-based tests
and the KS statistic, and to floating-point rounding (1e-9 relative) for standard
deviations and the exact Wasserstein sum. Model quality (only with ``target`` and
``prediction``) is the one part held in memory: those two columns, read through DuckDB.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import DriftError
from . import plan, stats
from .duckdb_queries import ks_statistic, lit, wasserstein
from .plan import (
    INT_CATEGORICAL_LIMIT,
    as_frame,
    assemble,
    category_plot,
    check_args,
    column_args,
    join,
    numeric_plot,
    plan_columns,
)
from .sources import files_of, is_parquet, is_path, parse_memory
from .stats import CATEGORICAL, NUMERIC

if TYPE_CHECKING:
    from .report import DriftReport

DUCKDB_SHARE = 0.75  # of the memory limit; Python and its imports use the rest
MIN_DUCKDB_MB = 128  # below this DuckDB cannot hold the histograms of a wide table
_INTEGER = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
_NUMERIC = (*_INTEGER, "FLOAT", "DOUBLE", "REAL", "DECIMAL")
_DATETIME = ("TIMESTAMP", "DATE", "TIME", "INTERVAL")


@dataclass
class _Col:
    name: str
    ref_type: str
    cur_type: str
    kind: str | None = None
    note: str = ""
    n: dict[str, int] = field(default_factory=dict)  # finite / non-null values per side
    lo: float = 0.0
    hi: float = 0.0
    std_ref: float = 0.0
    counts: dict[str, dict] = field(default_factory=dict)  # value counts per side
    fine: dict[str, Any] = field(default_factory=dict)  # fine histograms per side

    @property
    def q(self) -> str:
        return '"' + self.name.replace('"', '""') + '"'

    @property
    def v(self) -> str:
        return f"CAST({self.q} AS DOUBLE)"

    @property
    def finite(self) -> str:
        return f"isfinite({self.v})"

    @property
    def fv(self) -> str:
        """The value when finite, else NULL (aggregates skip NULLs; faster than FILTER)."""
        return f"(CASE WHEN {self.finite} THEN {self.v} END)"


def _base(type_name: str) -> str:
    return type_name.split("(")[0].strip().upper()


def connect(memory_limit: int | float | str | None) -> tuple[Any, str]:
    """A DuckDB connection limited to ``memory_limit`` and its spill folder."""
    import duckdb

    limit = parse_memory(memory_limit)
    spill = tempfile.mkdtemp(prefix="nbops-duckdb-")
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": f"{max(MIN_DUCKDB_MB, int(limit * DUCKDB_SHARE) // 2**20)}MB",
            "threads": os.cpu_count() or 1,
            "temp_directory": spill,
            "preserve_insertion_order": False,
        },
    )
    return con, spill


def _register(con: Any, name: str, data: Any, side: str) -> None:
    if is_path(data):
        files = files_of(data, side)
        listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        if is_parquet(files):
            source = f"read_parquet({listing}, union_by_name = true)"
        elif len(files) == 1:
            source = f"read_csv_auto({listing[1:-1]})"
        else:
            raise DriftError(
                f"the {side} data names {len(files)} files; several files must be Parquet"
            )
        try:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
        except Exception as exc:  # noqa: BLE001 - DuckDB's reason names the file
            raise DriftError(f"cannot read the {side} data: {exc}") from None
    else:
        frame = as_frame(data, side)
        frame.columns = [str(c) for c in frame.columns]
        con.register(f"{name}_frame", frame)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_frame")


def duckdb_drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None,
    target: str | None,
    prediction: str | None,
    method: Any,
    threshold: Any,
    drift_share: float,
    quality_drop: float,
    memory_limit: int | float | str | None,
) -> DriftReport:
    """:func:`nbops.drift` through DuckDB (see the module docstring)."""
    con, spill = connect(memory_limit)
    try:
        _register(con, "ref", reference, "reference")
        _register(con, "cur", current, "current")
        types = {
            side: {r[0]: r[1] for r in con.execute(f"DESCRIBE {side}").fetchall()}
            for side in ("ref", "cur")
        }
        rows = {
            side: con.execute(f"SELECT count(*) FROM {side}").fetchone()[0]
            for side in ("ref", "cur")
        }
        check_args(rows["ref"], rows["cur"], method, drift_share)
        missing, common = plan_columns(
            list(types["ref"]),
            list(types["cur"]),
            columns,
            target,
            prediction,
            method,
            threshold,
            stacklevel=4,
        )
        cols = [_Col(c, types["ref"][c], types["cur"][c]) for c in common]
        _kinds(con, cols)
        _scan(con, cols)
        _fine(con, cols)
        results = []
        for col in cols:
            m, t, role = column_args(col.name, method, threshold, target, prediction)
            results.append(_result(con, col, m, t, role, rows))
        model = None
        if target is not None and prediction is not None and {target, prediction} <= set(common):
            model = _model_quality(con, target, prediction, quality_drop)
        return assemble(
            results,
            missing,
            drift_share,
            model,
            {"reference": int(rows["ref"]), "current": int(rows["cur"])},
            target,
            prediction,
            "duckdb",
        )
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


# -- column kinds and the two scans ------------------------------------------------------


def _kinds(con: Any, cols: list[_Col]) -> None:
    """The pandas engine's column_kind, from DuckDB types (and distinct counts of
    integer columns in the current data)."""
    ints = []
    for col in cols:
        r, c = _base(col.ref_type), _base(col.cur_type)
        if r.startswith(_DATETIME) or c.startswith(_DATETIME):
            col.kind, col.note = None, "datetime column: drift is not computed for dates"
        elif r in _NUMERIC and c in _NUMERIC:
            col.kind = NUMERIC
            if r in _INTEGER and c in _INTEGER:
                ints.append(col)
        else:
            col.kind = CATEGORICAL
            if (r in _NUMERIC) != (c in _NUMERIC):
                col.note = (
                    "dtype differs between reference and current; "
                    "mixed types: treated as categorical"
                )
    if not ints:
        return
    approx = con.execute(
        "SELECT " + ", ".join(f"approx_count_distinct({c.q})" for c in ints) + " FROM cur"
    ).fetchone()
    for col, estimate in zip(ints, approx, strict=True):
        if estimate > 10 * INT_CATEGORICAL_LIMIT:
            continue
        exact = con.execute(f"SELECT count(DISTINCT {col.q}) FROM cur").fetchone()[0]
        if exact <= INT_CATEGORICAL_LIMIT:
            col.kind = CATEGORICAL
            col.note = (
                f"integer column with <= {INT_CATEGORICAL_LIMIT} values: categorical (as Evidently)"
            )


def _not_missing(col: _Col, side: str) -> str:
    t = _base(col.ref_type if side == "ref" else col.cur_type)
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return f"{col.q} IS NOT NULL AND NOT isnan({col.q})"
    return f"{col.q} IS NOT NULL"


def _scan(con: Any, cols: list[_Col]) -> None:
    """Scan 1: counts, ranges, reference spread and categorical value counts."""
    for side in ("ref", "cur"):
        exprs, slots = [], []
        for col in cols:
            if col.kind == NUMERIC:
                exprs += [f"count({col.fv})", f"min({col.fv})", f"max({col.fv})"]
                slots.append((col, "numeric"))
                if side == "ref":
                    exprs.append(f"stddev_pop({col.fv})")
            elif col.kind == CATEGORICAL:
                exprs.append(f"histogram({col.q}) FILTER (WHERE {_not_missing(col, side)})")
                slots.append((col, "categorical"))
        if not exprs:
            return
        values = iter(con.execute("SELECT " + ", ".join(exprs) + f" FROM {side}").fetchone())
        for col, what in slots:
            if what == "numeric":
                n, lo, hi = next(values), next(values), next(values)
                col.n[side] = int(n)
                if n:
                    first = side == "ref" or not col.n.get("ref")
                    col.lo = float(lo) if first else min(col.lo, float(lo))
                    col.hi = float(hi) if first else max(col.hi, float(hi))
                if side == "ref":
                    col.std_ref = float(next(values) or 0.0)
            else:
                counts = next(values) or {}
                col.counts[side] = dict(counts)
                col.n[side] = int(sum(counts.values()))


def _bins_expr(col: _Col, bins: int) -> str:
    if col.hi <= col.lo:
        return "0"
    factor = bins / (col.hi - col.lo)  # numpy: (v - lo) * (bins / (hi - lo)), then truncate
    return (
        f"CAST(least(greatest(floor(({col.v} - {lit(col.lo)}) * {lit(factor)}), 0), "
        f"{bins - 1}) AS INTEGER)"
    )


def _dense(hist: dict | None, bins: int) -> Any:
    import numpy as np

    out = np.zeros(bins, dtype=np.int64)
    for k, v in (hist or {}).items():
        out[int(k)] = v
    return out


def _fine(con: Any, cols: list[_Col]) -> None:
    """Scan 2: the fine histogram of every testable numeric column, both sides."""
    numeric = [c for c in cols if c.kind == NUMERIC and c.n.get("ref") and c.n.get("cur")]
    if not numeric:
        return
    # one GROUP BY per column: DuckDB's hash aggregate on small integers beats the
    # histogram() aggregate, and each query reads only its column
    for side in ("ref", "cur"):
        for col in numeric:
            col.fine[side] = _dense(
                _hist(con, col, side, _bins_expr(col, stats.FINE_BINS), col.finite), stats.FINE_BINS
            )


# -- per column ----------------------------------------------------------------------------


def _hist(con: Any, col: _Col, side: str, expr: str, where: str) -> dict:
    """{value of ``expr``: count} over the rows of ``side`` where ``where`` holds."""
    return dict(
        con.execute(f"SELECT {expr} AS k, count(*) FROM {side} WHERE {where} GROUP BY k").fetchall()
    )


def _distinct(con: Any, col: _Col, sides: tuple[str, ...]) -> int:
    union = " UNION ALL ".join(f"SELECT {col.v} AS v FROM {s} WHERE {col.finite}" for s in sides)
    return con.execute(f"SELECT count(DISTINCT v) FROM ({union})").fetchone()[0]


def _unique_at_most(con: Any, col: _Col, limit: int, sides: tuple[str, ...]) -> int | None:
    import numpy as np

    nonzero = np.count_nonzero(sum(col.fine[s] for s in sides))
    if nonzero > limit:
        return None
    n = _distinct(con, col, sides)
    return n if n <= limit else None


def _aligned(ref_counts: dict, cur_counts: dict):
    import pandas as pd

    return stats.align_counts(
        pd.Series(ref_counts, dtype="float64"), pd.Series(cur_counts, dtype="float64")
    )


def _result(
    con: Any,
    col: _Col,
    method: str | None,
    threshold: float | None,
    role: str,
    rows: dict[str, int],
) -> dict[str, Any]:
    import numpy as np

    row = plan.empty_row(col.name, col.kind, role, col.note)
    if col.kind is None:
        return row
    n_ref, n_cur = col.n.get("ref", 0), col.n.get("cur", 0)
    row["n_reference"], row["n_current"] = n_ref, n_cur
    for side, n, label in (("ref", n_ref, "reference"), ("cur", n_cur, "current")):
        if n == 0:
            what = "all values are missing" if rows[side] else "no rows"
            row["note"] = join(col.note, f"skipped: {what} in the {label} data")
            return row
    keys = r = c = None
    if col.kind == NUMERIC:
        n_unique = _unique_at_most(con, col, 5, ("ref", "cur"))
    else:
        keys, r, c = _aligned(col.counts["ref"], col.counts["cur"])
        n_unique = len(keys)
    name = method or stats.default_method(col.kind, n_ref, n_unique)
    m = stats.method_for(name, col.kind, col.name)
    thr = float(threshold) if threshold is not None else m.default_threshold
    if col.kind == NUMERIC and m.name in ("chisquare", "z", "jensenshannon", "psi"):
        keys, r, c = None, None, None
        if m.name in ("chisquare", "z") or _unique_at_most(con, col, 20, ("ref",)) is not None:
            keys, r, c = _aligned(
                _hist(con, col, "ref", col.v, col.finite), _hist(con, col, "cur", col.v, col.finite)
            )

    if m.name == "ks":
        res = stats.ks_from_statistic(ks_statistic(con, col, n_ref, n_cur), n_ref, n_cur)
    elif m.name == "wasserstein":
        res = stats.TestResult(wasserstein(con, col, n_ref, n_cur, thr), None)
    elif m.name == "chisquare":
        res = stats.chi_square(r, c)
    elif m.name == "z":
        res = stats.z_test(keys, r, c)
    else:
        if r is None:  # numeric with many values: Sturges bins over the joint range
            bins = int(np.ceil(np.log2(n_ref + n_cur) + 1))
            expr = _bins_expr(col, bins)
            r_share = _dense(_hist(con, col, "ref", expr, col.finite), bins) / n_ref
            c_share = _dense(_hist(con, col, "cur", expr, col.finite), bins) / n_cur
        else:
            r_share, c_share = r / r.sum(), c / c.sum()
        res = plan.shares_test(m.name, r_share, c_share)
    plan.record_result(row, m, res, thr)
    if col.kind == NUMERIC:
        row["plot"] = numeric_plot(col.fine["ref"], col.fine["cur"], n_ref, n_cur, col.lo, col.hi)
    else:
        row["plot"] = category_plot(keys, r, c)
    return row


# -- model quality -------------------------------------------------------------------------


def _model_quality(con: Any, target: str, prediction: str, quality_drop: float):
    """The pandas engine's model quality on the two columns only, read through DuckDB."""
    from .model_quality import model_quality

    t = '"' + target.replace('"', '""') + '"'
    p = '"' + prediction.replace('"', '""') + '"'
    frames = [con.execute(f"SELECT {t}, {p} FROM {side}").df() for side in ("ref", "cur")]
    if any(math.prod(f.shape) == 0 for f in frames):
        return None
    return model_quality(frames[0], frames[1], target, prediction, quality_drop)
