"""Requests to rows: the MLflow scoring formats (JSON, CSV, Parquet) and the checks
that make rows fit the model's signature.

A parsed request is a :class:`Table`: column ``names`` (None when the rows are
positional) and ``rows`` (lists of plain Python values). :class:`Signature` reorders a
table to the signature's columns and checks every value against its column's dtype,
so that a wrong value is answered with a 400 naming the column and the row, never
handed to the model.

Formats, as ``mlflow models serve`` takes them:

- JSON ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` (rows,
  records or an object of columns), optionally with ``params``;
- ``text/csv`` with a header row; a leading column with an empty name (the index
  ``DataFrame.to_csv()`` writes by default) is dropped;
- ``application/vnd.apache.parquet`` (read with pyarrow); pandas' stored index
  columns (``__index_level_N__``) are dropped.
"""

import csv
import io
import math
from typing import Any

from .codec import bad

_FLOAT = {"float64", "float32", "float16", "float", "double"}
_INT = {
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int",
    "integer",
    "long",
}
_BOOL = {"bool", "boolean"}
_STR = {"str", "string", "object", "category"}
KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def kind_of(dtype: str | None) -> str:
    """The value kind of a signature dtype: float, int, bool, str or any."""
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
        raise bad(
            f"{where}: every column needs the same number of values, got lengths "
            f"{ {n: len(v) for n, v in zip(names, values, strict=False)} }"
        )
    return Table(names, [list(r) for r in zip(*values, strict=False)])


def _rows_from_records(records: list, where: str) -> Table:
    if not records:
        return Table(None, [])
    first = records[0]
    if not isinstance(first, dict):
        raise bad(f"{where} must be a list of objects {{column: value}}")
    names = [str(k) for k in first]
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise bad(
                f"{where}[{i}] is a {type(rec).__name__}, expected an object {{column: value}}"
            )
        if len(rec) != len(names) or any(n not in rec for n in names):
            raise bad(
                f"{where}[{i}] has columns {sorted(rec)} but {where}[0] has "
                f"{sorted(names)}; every record needs the same columns"
            )
        rows.append([rec[n] for n in names])
    return Table(names, rows)


def _rows_from_list(data: list, where: str) -> Table:
    if data and isinstance(data[0], dict):
        return _rows_from_records(data, where)
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise bad(
                f"{where}[{i}] is a {type(row).__name__}; send a list of rows "
                "(each a list of values) or a list of objects"
            )
        rows.append(row)
    return Table(None, rows)


def parse_json_table(payload: Any) -> Table:
    """The MLflow JSON formats: dataframe_split, dataframe_records, instances, inputs.
    Raises a 400 ServiceError naming what is wrong with the body."""
    if not isinstance(payload, dict):
        raise bad(
            "the JSON body must be an object with one of the keys dataframe_split, "
            "dataframe_records, instances or inputs",
            "BAD_REQUEST",
        )
    keys = [k for k in KEYS if k in payload]
    extra = sorted(set(payload) - {*KEYS, "params"})
    if len(keys) != 1 or extra:
        raise bad(
            f"the JSON body must have exactly one of dataframe_split, "
            f"dataframe_records, instances or inputs (and optionally params); got "
            f"keys {sorted(payload)}",
            "BAD_REQUEST",
        )
    if "params" in payload and not isinstance(payload["params"], dict):
        raise bad("params must be an object")
    key = keys[0]
    data = payload[key]
    if key == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise bad('dataframe_split must be an object {"columns": [...], "data": [[...], ...]}')
        cols = data.get("columns")
        if cols is not None and (
            not isinstance(cols, list)
            or not all(isinstance(c, str | int) and not isinstance(c, bool) for c in cols)
        ):
            raise bad("dataframe_split.columns must be a list of column names")
        table = _rows_from_list(data["data"], "dataframe_split.data")
        if table.names is not None:
            raise bad("dataframe_split.data must be a list of rows (lists), not objects")
        if cols is not None:
            table.names = [str(c) for c in cols]
        return table
    if key == "dataframe_records":
        if not isinstance(data, list):
            raise bad("dataframe_records must be a list of objects {column: value}")
        return _rows_from_records(data, "dataframe_records")
    if isinstance(data, dict):
        return _rows_from_columns(data, key)
    if not isinstance(data, list):
        raise bad(f"{key} must be a list of rows, a list of objects or an object of columns")
    return _rows_from_list(data, key)


def parse_csv_table(body: bytes) -> Table:
    """A CSV body with a header row, cells as text; a leading unnamed column (pandas'
    default index) is dropped. Raises a 400 ServiceError for text that is not CSV."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("the CSV body is not UTF-8 text", "MALFORMED_REQUEST") from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise bad(f"the CSV body cannot be parsed: {exc}", "MALFORMED_REQUEST") from None
    lines = [line for line in lines if line]
    if not lines:
        raise bad(
            "the CSV body is empty; send a header row with the column names and one row per record",
            "MALFORMED_REQUEST",
        )
    names = [c.strip() for c in lines[0]]
    rows = [list(r) for r in lines[1:]]
    if len(names) > 1 and names[0] == "" and all(names[1:]):
        names = names[1:]
        rows = [r[1:] for r in rows]
    return Table(names, rows)


def parse_parquet_table(body: bytes) -> Table:
    """A Parquet body (read with pyarrow); pandas' index columns are dropped. Raises a
    400 ServiceError for bytes that are not Parquet, 415 when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from .codec import ServiceError

        raise ServiceError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "this service cannot read Parquet: pyarrow is not installed; send JSON or CSV",
        ) from None
    try:
        table = pq.read_table(pa.BufferReader(body))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad bytes
        raise bad(f"the Parquet body cannot be read: {exc}", "MALFORMED_REQUEST") from None
    names = [n for n in table.column_names if not n.startswith("__index_level_")]
    columns = [table.column(n).to_pylist() for n in names]
    return Table(names, [list(r) for r in zip(*columns, strict=False)])


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


class Signature:
    """The model's input columns: ``inputs`` as (name, kind, nullable), ``columns``,
    ``dtypes`` (as recorded), ``numeric`` (every column a number or bool)."""

    def __init__(self, sig: dict) -> None:
        specs = sig.get("inputs") or []
        self.inputs = [
            (
                str(i["name"]),
                kind_of(i.get("dtype")),
                bool(i.get("nullable") or i.get("allow_missing")),
            )
            for i in specs
        ]
        self.dtypes = [str(i.get("dtype") or "float64") for i in specs]
        self.columns = [c for c, _, _ in self.inputs]
        self.index = {c: k for k, c in enumerate(self.columns)}
        self.numeric = all(k in ("float", "int", "bool") for _, k, _ in self.inputs)

    def matrix(self, table: Table) -> tuple[list[str], list[list[Any]]]:
        """Rows reordered to the signature's columns, every value checked. Raises a 400
        ServiceError naming the missing, extra or wrongly typed column."""
        cols = self.columns
        rows = table.rows
        if table.names is None:
            width = len(cols)
            for i, row in enumerate(rows):
                if len(row) != width:
                    raise bad(
                        f"row {i} has {len(row)} values but the model takes {width} "
                        f"columns {cols}; send one value per column in that order"
                    )
        else:
            names = table.names
            if names != cols:
                self._check_names(names)
                order = [names.index(c) for c in cols]
                for i, row in enumerate(rows):
                    if len(row) != len(names):
                        raise bad(f"row {i} has {len(row)} values for {len(names)} columns")
                rows = [[row[k] for k in order] for row in rows]
            else:
                width = len(cols)
                for i, row in enumerate(rows):
                    if len(row) != width:
                        raise bad(f"row {i} has {len(row)} values for {width} columns")
        self._check_types(rows, from_text=False)
        return cols, rows

    def _check_names(self, names: list[str]) -> None:
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise bad(f"duplicate columns {dup}")
        missing = [c for c in self.columns if c not in names]
        extra = [n for n in names if n not in self.index]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing columns {missing}")
            if extra:
                parts.append(f"unexpected columns {extra}")
            raise bad(f"{' and '.join(parts)}; the model takes {self.columns}")

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
                raise bad(
                    "the CSV needs a header row with the column names "
                    f"{self.columns}; the first row looks like data (column {j})",
                    "MALFORMED_REQUEST",
                )
        names = table.names
        self._check_names(names)
        order = [names.index(c) for c in self.columns]
        rows = []
        for i, row in enumerate(table.rows):
            if len(row) != len(names):
                raise bad(
                    f"CSV row {i + 1} has {len(row)} cells for {len(names)} columns",
                    "MALFORMED_REQUEST",
                )
            rows.append([row[k] for k in order])
        self._check_types(rows, from_text=True)
        return self.columns, rows

    def _check_types(self, rows: list[list[Any]], from_text: bool) -> None:
        bad_cols: dict[str, str] = {}
        for j, (col, kind, nullable) in enumerate(self.inputs):
            for i, row in enumerate(rows):
                problem = self._check_value(row, j, kind, nullable, from_text)
                if problem:
                    bad_cols[col] = f"{problem} (row {i})"
                    break
        if bad_cols:
            detail = "; ".join(f"column {c!r} {msg}" for c, msg in bad_cols.items())
            raise bad(f"wrongly typed input: {detail}")

    def _check_value(
        self, row: list[Any], j: int, kind: str, nullable: bool, from_text: bool
    ) -> str:
        """'' when ``row[j]`` fits (it may be converted in place), else the problem."""
        v = row[j]
        t = type(v)
        if kind == "float" and (t is float or t is int):
            if t is float and not math.isfinite(v):
                if v != v and nullable:
                    return ""
                return f"expects a finite number, got {v!r}"
            if t is int and abs(v) > 1e300:
                return f"value {v} is out of range"
            return ""
        if v is None:
            if nullable:
                row[j] = float("nan") if kind in ("float", "int") else None
                return ""
            return "is missing a value and does not allow missing values"
        if from_text and isinstance(v, str):
            try:
                row[j] = v = _from_text(v, kind)
            except ValueError:
                return f"expects {self.dtypes[j]}, got {v!r}"
            if v is None or (type(v) is float and v != v):
                if nullable:
                    row[j] = float("nan") if kind in ("float", "int") else None
                    return ""
                return "is missing a value and does not allow missing values"
            if isinstance(v, float) and not math.isfinite(v):
                return f"expects a finite number, got {v!r}"
            return ""
        t = type(v)
        if kind == "int" and (t is int or (t is float and v.is_integer() and abs(v) < 2**63)):
            if t is int and abs(v) >= 2**63:
                return f"value {v} is out of range"
            return ""
        if (kind == "bool" and t is bool) or (kind == "str" and t is str):
            return ""
        if kind == "any" and t in (int, float, str, bool):
            return ""
        return f"expects {self.dtypes[j]}, got {type(v).__name__} {v!r}"
