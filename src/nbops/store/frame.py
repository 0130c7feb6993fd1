"""The runs table as a DataFrame, kept up to date by operations instead of rebuilt.

``Store.runs_frame()`` returns one row per run (oldest first; columns ``run_id``,
``name``, ... then ``params.*``, ``metrics.*``, ``tags.*``). The frame is built once,
then every transaction that touches runs, written here or read from another process's
tail, patches only the rows it changed. A fresh process does not parse the run
documents at all: it loads ``nbops.frame`` (the frame at a known log position, a
pickle read with an unpickler that only accepts pandas, numpy and pyarrow array
types) and applies the log lines after that position. The cache is rewritten when a
process had to apply many lines, and by every compaction.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import StoreError
from .reader import _Replaced

if TYPE_CHECKING:
    from .storage import LogStorage

CACHE = "nbops.frame"
CACHE_FORMAT = 1
BASE = ["run_id", "name", "experiment", "status", "start_time", "end_time", "duration", "parent_id"]
HIDDEN = ["host", "pid", "proc"]  # for orphan detection, not shown
SECTIONS = ("params", "metrics", "tags")
TIMES = ("start_time", "end_time")
SAVE_AFTER = 2000  # rewrite the cache when this many lines were applied since it


_SAFE_FUNCTIONS = {
    ("builtins", "slice"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pyarrow.lib", "_restore_array"),
    ("pyarrow.lib", "py_buffer"),
    ("pyarrow.lib", "type_for_alias"),
}
_SAFE_TYPE_MODULES = ("pandas", "pandas.arrays", "pandas.core.arrays", "numpy")


class _Unpickler(pickle.Unpickler):
    """Only the types a DataFrame of plain values needs; anything else is refused, so a
    planted cache file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        """The class or function a pickle names, if it is on the allowed list; UnpicklingError
        otherwise."""
        if (module, name) in _SAFE_FUNCTIONS:
            return super().find_class(module, name)
        if module in _SAFE_TYPE_MODULES:
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the runs cache")


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict)) else value


def row_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The frame row of one run document."""
    row = {k: doc.get(k) for k in BASE}
    for k in HIDDEN:
        row[k] = doc.get(k)
    for section in SECTIONS:
        for key, value in (doc.get(section) or {}).items():
            row[f"{section}.{key}"] = _cell(value)
    return row


def _changes(
    frame: Any, ops_list: list[list], present: dict[str, int]
) -> tuple[dict, dict, set, bool]:
    """What a series of transactions does to the frame: (changed cells per existing row,
    new rows, deleted rows, dropped all). ``present`` maps row keys to positions."""
    changed: dict[str, dict[str, Any]] = {}
    new: dict[str, dict[str, Any]] = {}
    deleted: set[str] = set()
    dropped = False
    for ops in ops_list:
        for op in ops:
            if op[1] != "runs":
                continue
            kind = op[0]
            if kind == "drop":
                changed.clear()
                new.clear()
                deleted.clear()
                dropped = True
                continue
            key = str(op[2])
            exists = key in present and key not in deleted and not dropped
            if kind == "put":
                row = row_of(op[3])
                if exists:
                    blank = {c: None for c in frame.columns}
                    changed[key] = {**blank, **row}
                else:
                    new[key] = row
                    deleted.discard(key)
                continue
            if kind == "del":
                new.pop(key, None)
                changed.pop(key, None)
                if key in present:
                    deleted.add(key)
                continue
            target = new.get(key)
            if target is None:
                if not exists:
                    continue
                target = changed.setdefault(key, {})
            if kind == "upd":
                for field, value in op[3].items():
                    if field in SECTIONS:
                        cols = [
                            c
                            for c in (frame.columns if frame is not None else ())
                            if c.startswith(field + ".")
                        ]
                        cols += [c for c in target if c.startswith(field + ".")]
                        for c in cols:
                            target[c] = None
                        for k, v in (value or {}).items():
                            target[f"{field}.{k}"] = _cell(v)
                    elif field in BASE or field in HIDDEN:
                        target[field] = value
            elif kind == "mrg":
                for field, values in op[3].items():
                    if field in SECTIONS:
                        for k, v in values.items():
                            target[f"{field}.{k}"] = _cell(v)
    return changed, new, deleted, dropped


def positions_of(frame: Any) -> dict[str, int]:
    """Row key -> row position of a frame (kept beside it, so that patching rows never
    rebuilds pandas' index hash table)."""
    return {k: i for i, k in enumerate(frame.index)} if frame is not None else {}


def apply_ops(
    frame: Any, ops_list: list[list], positions: dict[str, int] | None = None
) -> tuple[Any, dict[str, int]]:
    """``(frame, positions)`` after the transactions in ``ops_list`` (``frame`` None: an
    empty one; ``positions`` from :func:`positions_of`, updated in place)."""
    import pandas as pd

    if positions is None:
        positions = positions_of(frame)
    changed, new, deleted, dropped = _changes(frame, ops_list, positions)
    if dropped or frame is None:
        frame = empty_frame()
        positions = {}
    if deleted:
        frame = frame.drop(index=list(deleted))
        positions = positions_of(frame)
    if changed:
        by_col: dict[str, dict[str, Any]] = {}
        for key, cells in changed.items():
            for col, value in cells.items():
                by_col.setdefault(col, {})[key] = value
        for col, cells in by_col.items():
            rows = [positions[k] for k in cells]
            values = list(cells.values())
            if col in TIMES:
                values = _times(pd.Series(values, dtype=object))
                if col not in frame.columns:
                    frame[col] = pd.Series(pd.NaT, index=frame.index, dtype=values.dtype)
                frame.iloc[rows, frame.columns.get_loc(col)] = values.to_numpy()
                continue
            if col not in frame.columns:
                frame[col] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
            elif frame[col].dtype != object and not _fits(frame[col].dtype, values):
                frame[col] = frame[col].astype(object)
            where = frame.columns.get_loc(col)
            if frame[col].dtype == object:
                values = pd.Series(values, dtype=object).to_numpy()
            frame.iloc[rows, where] = values
    if new:
        rows = pd.DataFrame.from_records(list(new.values()), index=list(new.keys()))
        for col in TIMES:
            if col in rows.columns:
                rows[col] = _times(rows[col])
        base = len(frame)
        frame = rows if not base else pd.concat([frame, rows])
        for i, key in enumerate(new):
            positions[key] = base + i
        for col in TIMES:
            if col in frame.columns and frame[col].dtype == object:
                frame[col] = _times(frame[col])
    return frame, positions


def _times(values: Any) -> Any:
    """ISO time stamps -> datetime64[ns, UTC], always in nanoseconds: pandas would pick
    the unit from the strings (seconds for ``...:05+00:00``, ms for ``.123``), and a
    later patch in a finer unit than the column's would not fit."""
    import pandas as pd

    return pd.to_datetime(values, utc=True, format="ISO8601").dt.as_unit("ns")


def _fits(dtype: Any, values: list) -> bool:
    kind = getattr(dtype, "kind", "O")
    if kind == "f":
        return all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
        )
    if kind in "iu":
        return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if kind == "b":
        return all(isinstance(v, bool) for v in values)
    if str(dtype) in ("str", "string"):
        return all(isinstance(v, str) or v is None for v in values)
    return False


def empty_frame() -> Any:
    """A runs frame with no rows and the base columns (times as datetime64)."""
    import pandas as pd

    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in BASE + HIDDEN})
    for col in TIMES:
        frame[col] = pd.Series(dtype="datetime64[ns, UTC]")
    frame.index = pd.Index([], dtype=object)
    return frame


def from_docs(docs: dict[str, dict]) -> Any:
    """The frame of a whole runs table ``{doc_id: doc}``, column by column."""
    import pandas as pd

    if not docs:
        return empty_frame()
    values = list(docs.values())
    columns: dict[str, list] = {k: [d.get(k) for d in values] for k in BASE + HIDDEN}
    for section in SECTIONS:
        parts = [d.get(section) or {} for d in values]
        for name in sorted({k for part in parts for k in part}):
            columns[f"{section}.{name}"] = [_cell(part.get(name)) for part in parts]
    frame = pd.DataFrame(columns, index=pd.Index(list(docs.keys()), dtype=object))
    for col in TIMES:
        frame[col] = _times(frame[col])
    return frame


def from_snapshot(folder: Path | None, on_damage: Any = None, chunk: int = 20000) -> Any:
    """The frame of a snapshot's runs (``folder/runs.jsonl``), built ``chunk`` documents
    at a time so memory stays near the frame's own size. Damaged lines are passed to
    ``on_damage(offset, raw, reason, file=, line=)`` and skipped."""
    import pandas as pd

    from . import logfile

    path = folder / "runs.jsonl" if folder is not None else None
    if path is None or not path.exists():
        return empty_frame()
    parts, docs, offset = [], {}, 0
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            here, offset = offset, offset + len(raw)
            raw = raw.rstrip(b"\n")
            try:
                key, doc = logfile.parse_doc_line(raw)
                docs[key] = doc
            except (ValueError, TypeError) as exc:
                if on_damage is not None:
                    on_damage(here, raw, str(exc), file=path, line=n)
                continue
            if len(docs) >= chunk:
                parts.append(from_docs(docs))
                docs = {}
    if docs or not parts:
        parts.append(from_docs(docs))
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def load_cache(root: Path) -> dict[str, Any] | None:
    """``{"log", "pos", "frame"}`` from the cache file, or None (missing, foreign, or
    written by another format)."""
    try:
        with open(root / CACHE, "rb") as fh:
            data = _Unpickler(io.BytesIO(fh.read())).load()
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
    ):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    return data


def save_cache(root: Path, log: str, pos: int, frame: Any) -> None:
    """Write the cache atomically (a temp file renamed over it); best effort."""
    tmp = root / f".nbops.db.frame-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(
                {"format": CACHE_FORMAT, "log": log, "pos": pos, "frame": frame}, fh, protocol=5
            )
        os.replace(tmp, root / CACHE)
    except OSError:
        tmp.unlink(missing_ok=True)


def advance_cache(
    root: Path,
    log: str | None,
    run_ops: list[tuple[list, int]],
    x: int,
    snapshot: Path | None = None,
) -> None:
    """Bring a cache that sits in log ``log`` at or before ``x`` to ``x`` (compaction);
    without a usable one, build it from the new ``snapshot`` folder (state at ``x``)."""
    if log is None:
        return
    cached = load_cache(root)
    if cached is not None and cached["log"] == log and cached["pos"] <= x:
        todo = [ops for ops, end in run_ops if cached["pos"] < end <= x]
        save_cache(root, log, x, apply_ops(cached["frame"], todo)[0] if todo else cached["frame"])
    elif snapshot is not None and (cached is None or cached["log"] != log):
        save_cache(root, log, x, from_snapshot(snapshot))


class RunsFrame:
    """The live runs frame of one storage (see the module docstring)."""

    def __init__(self, storage: LogStorage) -> None:
        self.storage = storage
        self.frame: Any = None
        self.log: str | None = None
        self.pos = 0
        self.since_cache = 0
        self._pending: list[list] = []
        self.positions: dict[str, int] | None = None
        storage.listeners.append(self._on_ops)

    def _on_ops(self, ops: list | None, end: int) -> None:
        if ops is None:  # the storage dropped its state: start again from the cache
            self.frame, self._pending, self.positions = None, [], None
            return
        if self.frame is None:
            return
        if any(op[1] == "runs" for op in ops):
            self._pending.append(ops)
        self.log = self.storage.header.log if self.storage.header else None
        self.pos = end

    def get(self) -> Any:
        """The frame, oldest first, indexed by document id (do not modify it)."""
        st = self.storage
        with st._mutex:
            if st._depth == 0:
                st.refresh()
            for _attempt in range(5):
                if self.frame is not None:
                    break
                try:
                    self._build()
                except _Replaced:  # a compaction replaced the files: start over
                    st._reset()
                    st.refresh()
            if self.frame is None:
                raise StoreError(f"the store {st.root} kept changing while being read; retry")
            if self._pending:
                self.since_cache += len(self._pending)
                self.frame, self.positions = apply_ops(self.frame, self._pending, self.positions)
                self._pending = []
                if self.since_cache >= SAVE_AFTER and st.header is not None:
                    save_cache(st.root, st.header.log, self.pos, self.frame)
                    self.since_cache = 0
            return self.frame

    def _build(self) -> None:
        st = self.storage
        header = st.header
        if header is None:
            self.frame, self.log, self.pos = empty_frame(), None, 0
            return
        cached = load_cache(st.root)
        start = None
        if cached is not None:
            if cached["log"] == header.log and header.size <= cached["pos"] <= st.offset:
                start = cached["pos"]
            elif (
                header.continues
                and cached["log"] == header.continues[0]
                and cached["pos"] >= header.continues[1]
            ):
                start = header.size + cached["pos"] - header.continues[1]
                start = start if start <= st.offset else None
        base = cached["frame"] if start is not None else None
        if base is not None:  # a cache written before times were kept in nanoseconds
            for col in TIMES:
                if col in base.columns and str(base[col].dtype) != "datetime64[ns, UTC]":
                    base[col] = _times(base[col].astype(object))
        if base is None:  # no usable cache: the snapshot's runs, then the whole log
            base = from_snapshot(st._snapshot_dir(), st._damaged)
            start = header.size
        todo = [
            ops for ops, _, _ in st._lines(start, st.offset) if any(op[1] == "runs" for op in ops)
        ]
        self.frame, self.positions = apply_ops(base, todo) if todo else (base, None)
        fresh = cached is None or start == header.size or len(todo) >= SAVE_AFTER
        self.log, self.pos, self._pending = header.log, st.offset, []
        if fresh:
            save_cache(st.root, header.log, st.offset, self.frame)
        self.since_cache = 0
