"""Prediction logs larger than memory: the service's JSON-lines logs turned into one
Parquet file by DuckDB, streaming, so the DuckDB engine can compare them with the
reference. ``nbops.monitor`` uses it when ``engine="duckdb"``, or with ``"auto"`` when the
logs would not fit the memory limit.

A prediction line is ``{"id", "request_id", "ts", "version", "latency_ms",
"prediction", "inputs": {column: value}}``; a feedback line ``{"id", "label", "ts"}`` (the
latest label per id wins, as in ``nbops.prediction_log``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._errors import DriftError
from .sources import PANDAS_EXPANSION, parse_memory

#: JSON text is larger than the same values in pandas; a conservative ratio
JSON_TO_MEMORY = 1.0


def logs_fit(files: list[Path], memory_limit: Any) -> bool:
    """Whether JSON-lines files of this size fit the memory limit in pandas."""
    size = sum(p.stat().st_size for p in files)
    return size * JSON_TO_MEMORY * PANDAS_EXPANSION <= parse_memory(memory_limit)


def logs_to_parquet(
    predictions: list[Path],
    feedback: list[Path],
    columns: list[str],
    out: Path,
    since: Any = None,
    version: Any = None,
    memory_limit: Any = None,
) -> int:
    """Write ``inputs.<column>`` for ``columns`` (and ``prediction``, and ``target`` from
    the feedback when asked for) of the logged predictions to ``out``; returns the number
    of rows. ``since`` (a time) and ``version`` filter the rows. Raises DriftError when a
    log cannot be read."""
    import duckdb

    from .engine_duckdb import connect

    con, spill = connect(memory_limit)
    try:

        def listing(files):
            return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"

        con.execute(
            "CREATE VIEW p AS SELECT * FROM read_json("
            + listing(predictions)
            + ", format = 'newline_delimited', union_by_name = true, "
            "ignore_errors = true)"
        )
        select = []
        for col in columns:
            q = '"' + col.replace('"', '""') + '"'
            if col == "prediction":
                select.append("p.prediction AS prediction")
            elif col == "target":
                select.append("f.label AS target")
            else:
                select.append(f"p.inputs.{q} AS {q}")
        where = ["p.id IS NOT NULL"]
        if since is not None:
            import pandas as pd

            stamp = pd.Timestamp(since)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            where.append(f"p.ts >= {stamp.timestamp()!r}")
        if version is not None:
            where.append("CAST(p.version AS VARCHAR) = '" + str(version).replace("'", "''") + "'")
        join = ""
        if "target" in columns and feedback:
            con.execute(
                "CREATE VIEW f AS SELECT id, arg_max(label, ts) AS label FROM read_json("
                + listing(feedback)
                + ", format = 'newline_delimited', "
                "ignore_errors = true) GROUP BY id"
            )
            join = " LEFT JOIN f ON f.id = p.id"
        elif "target" in columns:
            select = [s if not s.endswith("AS target") else "NULL AS target" for s in select]
        query = f"SELECT {', '.join(select)} FROM p{join} WHERE {' AND '.join(where)}"
        target = str(out).replace("'", "''")
        con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
        return con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
    except duckdb.Error as exc:
        raise DriftError(f"cannot read the prediction logs with DuckDB: {exc}") from None
    finally:
        con.close()
        import shutil

        shutil.rmtree(spill, ignore_errors=True)
