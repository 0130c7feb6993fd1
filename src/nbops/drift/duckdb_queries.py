"""The two DuckDB queries of the drift engine that need more than counts: the KS
statistic (an ASOF join of current values onto the reference values) and the exact
Wasserstein distance (a sorted window over the merged values). ``col`` is the engine's
column description (name, ``v`` and ``finite`` SQL expressions, range, fine histograms).
"""

from __future__ import annotations

from typing import Any

from . import stats


def lit(x: float) -> str:
    """A DOUBLE literal that reads back as exactly ``x``."""
    return format(float(x), ".17e")


def ks_statistic(con: Any, col: Any, n_ref: int, n_cur: int) -> float:
    """sup |F_ref - F_cur|, exactly as scipy finds it: between two reference values F_ref
    is flat, so the extremes sit at the reference values themselves and just before
    them; an ASOF join counts the current values in each such gap."""
    import numpy as np

    ref = con.execute(
        f"SELECT {col.v} AS v, count(*) AS n FROM ref WHERE {col.finite} GROUP BY v ORDER BY v"
    ).fetchall()
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ks_ref AS SELECT * FROM (VALUES "
        + ", ".join(f"({lit(v)})" for v, _ in ref)
        + ") t(v)"
    )
    gaps = dict(
        ((v if v is None else float(v)), (ge, eq))
        for v, ge, eq in con.execute(
            f"SELECT r.v, count(*), count(*) FILTER (WHERE c.v = r.v) FROM "
            f"(SELECT {col.v} AS v FROM cur WHERE {col.finite}) c "
            "ASOF LEFT JOIN ks_ref r ON c.v >= r.v GROUP BY r.v"
        ).fetchall()
    )
    below = gaps.get(None, (0, 0))[0]
    values = np.array([v for v, _ in ref], dtype=np.float64)
    n_at = np.array([n for _, n in ref], dtype=np.int64)
    ge = np.array([gaps.get(float(v), (0, 0))[0] for v in values], dtype=np.int64)
    eq = np.array([gaps.get(float(v), (0, 0))[1] for v in values], dtype=np.int64)
    ref_lt = np.concatenate([[0], np.cumsum(n_at)[:-1]])
    cur_lt = below + np.concatenate([[0], np.cumsum(ge)[:-1]])
    at = (ref_lt + n_at) / n_ref - (cur_lt + eq) / n_cur
    before = ref_lt / n_ref - cur_lt / n_cur
    return float(max(np.abs(at).max(), np.abs(before).max()))


def wasserstein(con: Any, col: Any, n_ref: int, n_cur: int, threshold: float) -> float:
    """The normed Wasserstein distance of a column, as the pandas engine computes it: from
    the fine histograms when that bound decides the verdict, else exactly in DuckDB."""
    norm = max(col.std_ref, 0.001)
    if n_ref + n_cur > stats.EXACT_BELOW and col.hi > col.lo:
        width = (col.hi - col.lo) / stats.FINE_BINS
        estimate = stats.wasserstein_from_histogram(
            col.fine["ref"], col.fine["cur"], n_ref, n_cur, width, norm, threshold
        )
        if estimate is not None:
            return estimate
    # exact: the integral of |F - G| over the merged, sorted distinct values
    total = con.execute(
        f"WITH a AS (SELECT {col.v} AS v, 1 AS s FROM ref WHERE {col.finite} "
        f"UNION ALL SELECT {col.v}, 0 FROM cur WHERE {col.finite}), "
        "g AS (SELECT v, sum(s) AS nr, count(*) - sum(s) AS nc FROM a GROUP BY v), "
        "w AS (SELECT v, sum(nr) OVER o AS cr, sum(nc) OVER o AS cc, lead(v) OVER o AS nv "
        "FROM g WINDOW o AS (ORDER BY v)) "
        f"SELECT sum(abs(cr / {lit(n_ref)} - cc / {lit(n_cur)}) * (nv - v)) FROM w "
        "WHERE nv IS NOT NULL"
    ).fetchone()[0]
    return float(total or 0.0) / norm
