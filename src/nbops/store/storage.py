"""A TinyDB storage that appends changes to a log instead of rewriting the file.

File format: JSON lines. The first line is a header ``{"nbops_store": 1}``. Every
other line is one transaction: a JSON list of operations, each itself a list:

    ["put", table, doc_id, document]      insert or replace a document
    ["upd", table, doc_id, fields]        set top-level fields of a document
    ["ext", table, doc_id, {field: [..]}] append values to list fields
    ["del", table, doc_id]                remove a document
    ["drop", table]                       remove a table

Why this shape:
- a write appends one line, so it costs O(change), not O(store size);
- a reader keeps the byte offset it has applied and reads only the new tail;
- one line is one transaction; a line without its final newline was never
  acknowledged (the writer died mid-write) and is ignored, then cut off by the
  next writer, so a kill -9 at any moment leaves a readable store;
- writers take a file lock, catch up with the log, then append: several
  processes and kernels can write at once without losing anything;
- when the log holds many more operations than live documents, it is compacted
  into a fresh file (written aside, then atomically renamed); other processes
  notice the new inode and reload.

Non-finite floats (NaN, inf) are written as the JSON extensions ``NaN`` and
``Infinity`` so metrics round-trip exactly.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from .._errors import StoreError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

HEADER = {"nbops_store": 1}
_HEADER_LINE = json.dumps(HEADER).encode() + b"\n"
LOCK_TIMEOUT_S = 60.0


def _json_default(value: Any) -> Any:
    # numpy scalars / arrays and a few common types; anything else is the caller's bug.
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r:.80}")


def encode_line(ops: list) -> bytes:
    """Serialise one transaction to a log line (with its newline)."""
    try:
        text = json.dumps(ops, default=_json_default, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"cannot store value: {exc}. Convert it to a number, string, list or dict first."
        ) from exc
    return text.encode() + b"\n"


def decode_line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        # orjson rejects NaN/Infinity; the standard parser accepts them.
        return json.loads(line)


class LogStorage(Storage):
    """TinyDB ``Storage`` over an append-only, lock-protected log file.

    ``read()`` returns the live in-memory state (tables of ``{str(doc_id): doc}``),
    refreshed from the file's new tail when another process wrote. ``write(data)``
    accepts a whole state like any TinyDB storage and appends only the difference;
    :class:`nbops.store.table.LogTable` goes further and appends operations
    directly, without comparing states.
    """

    def __init__(self, path: str | os.PathLike, create_dirs: bool = True, **_: Any) -> None:
        self.path = Path(path)
        if create_dirs:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store folder {self.path.parent}: {exc}. "
                    "Point NBOPS_STORE or nbops.set_store() at a writable folder."
                ) from exc
        self._lock = _ProcessLock(str(self.path) + ".lock")
        self._mutex = threading.RLock()
        self._depth = 0
        self._pending: list[list] = []
        self._tables: dict[str, dict[str, dict]] = {}
        self._max_id: dict[str, int] = {}
        self._indexes: dict[tuple[str, str], dict[Any, str]] = {}
        self._offset = 0
        self._inode: int | None = None
        self._ops_in_log = 0
        #: bumped whenever the in-memory state changes; tables use it to drop caches
        self.generation = 0

    # -- reading ---------------------------------------------------------------
    def read(self) -> dict[str, dict[str, dict]]:
        with self._mutex:
            if self._depth == 0:
                self.refresh()
            # a shallow copy: TinyDB replaces whole tables in what read() returned
            return dict(self._tables)

    def live_table(self, table: str) -> dict[str, dict]:
        """The live ``{doc_id: doc}`` dict of one table (treat it as read-only)."""
        with self._mutex:
            if self._depth == 0:
                self.refresh()
            return self._tables.get(table, {})

    def refresh(self) -> None:
        """Apply whatever other writers appended since the last look."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._inode is not None:
                self._reset()
            return
        except OSError as exc:
            raise StoreError(f"cannot read the store file {self.path}: {exc}") from exc
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._reset()
            self._inode = st.st_ino
        if st.st_size > self._offset:
            self._read_tail()

    def _reset(self) -> None:
        self._tables = {}
        self._max_id = {}
        for index in self._indexes.values():
            index.clear()
        self._offset = 0
        self._inode = None
        self._ops_in_log = 0
        self.generation += 1

    def _read_tail(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError as exc:
            raise StoreError(f"cannot read the store file {self.path}: {exc}") from exc
        end = data.rfind(b"\n") + 1  # a final line without newline is an unfinished write
        if end == 0:
            return
        start = 0
        if self._offset == 0:
            first = data.find(b"\n") + 1
            self._check_header(data[: first - 1])
            start = first
        line_no = None
        for raw in data[start:end].splitlines():
            if not raw.strip():
                continue
            try:
                ops = decode_line(raw)
                for op in ops:
                    self._apply(op)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                line_no = line_no or self._line_number(raw)
                raise StoreError(
                    f"the store file {self.path} is damaged near line {line_no} ({exc}). "
                    "nbops will not overwrite it: move the file aside (or restore a backup) "
                    "and set NBOPS_STORE to a fresh folder to keep working."
                ) from exc
            self._ops_in_log += len(ops)
        self._offset += end
        self.generation += 1

    def _line_number(self, raw: bytes) -> int:
        try:
            with open(self.path, "rb") as fh:
                return fh.read().split(b"\n").index(raw) + 1
        except (OSError, ValueError):
            return -1

    def _check_header(self, line: bytes) -> None:
        try:
            header = decode_line(line)
        except ValueError:
            header = None
        if not isinstance(header, dict) or "nbops_store" not in header:
            raise StoreError(
                f"{self.path} is not an nbops store file (unexpected first line {line[:60]!r}). "
                "nbops will not overwrite it: move it aside or set NBOPS_STORE to another folder."
            )
        if header["nbops_store"] > HEADER["nbops_store"]:
            raise StoreError(
                f"{self.path} was written by a newer nbops (format {header['nbops_store']}); "
                "upgrade nbops to read it."
            )

    # -- applying operations to memory ------------------------------------------
    def _apply(self, op: list) -> None:
        kind, table = op[0], op[1]
        docs = self._tables.setdefault(table, {}) if kind != "drop" else None
        if kind == "put":
            doc_id, doc = str(op[2]), op[3]
            old = docs.get(doc_id)
            docs[doc_id] = doc
            self._index_update(table, doc_id, old, doc)
            self._max_id[table] = max(self._max_id.get(table, 0), int(doc_id))
        elif kind == "upd":
            doc = docs[str(op[2])]
            old = dict(doc)
            doc.update(op[3])
            self._index_update(table, str(op[2]), old, doc)
        elif kind == "ext":
            doc = docs[str(op[2])]
            for field, values in op[3].items():
                doc.setdefault(field, []).extend(values)
        elif kind == "del":
            old = docs.pop(str(op[2]), None)
            self._index_update(table, str(op[2]), old, None)
        elif kind == "drop":
            self._tables.pop(table, None)
            for (t, _), index in self._indexes.items():
                if t == table:
                    index.clear()
        else:
            raise ValueError(f"unknown operation {kind!r}")

    def _index_update(self, table: str, doc_id: str, old: Mapping | None, new: Mapping | None):
        for (t, field), index in self._indexes.items():
            if t != table:
                continue
            if old is not None and field in old and index.get(old[field]) == doc_id:
                del index[old[field]]
            if new is not None and field in new:
                index[new[field]] = doc_id

    def index(self, table: str, field: str) -> dict[Any, str]:
        """A live map ``value of field -> doc_id`` for one table, kept up to date."""
        with self._mutex:
            key = (table, field)
            if key not in self._indexes:
                self.refresh()
                self._indexes[key] = {
                    doc[field]: doc_id
                    for doc_id, doc in self._tables.get(table, {}).items()
                    if field in doc
                }
            elif self._depth == 0:
                self.refresh()
            return self._indexes[key]

    # -- writing ---------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[LogStorage]:
        """Hold the write lock, see the latest state, and append all queued
        operations as one line on exit (nothing if the block raised)."""
        with self._mutex:
            if self._depth == 0:
                self._acquire()
                try:
                    self.refresh()
                    self._repair_tail()
                except BaseException:
                    self._lock.release()
                    raise
            self._depth += 1
            ok = False
            try:
                yield self
                ok = True
            finally:
                self._depth -= 1
                if self._depth == 0:
                    try:
                        if ok and self._pending:
                            self._flush()
                        elif self._pending:
                            # the block raised after queueing: memory holds changes the
                            # file never got; forget them and re-read the file
                            self._reset()
                            self.refresh()
                    finally:
                        self._pending = []
                        self._lock.release()

    def _acquire(self) -> None:
        try:
            self._lock.acquire(LOCK_TIMEOUT_S)
        except TimeoutError as exc:
            raise StoreError(
                f"another process has held the store lock {self._lock.path} for "
                f"{LOCK_TIMEOUT_S:.0f} s. If no nbops process is running, delete that lock file."
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot lock the store at {self.path.parent}: {exc}. "
                "Point NBOPS_STORE or nbops.set_store() at a writable folder."
            ) from exc

    def _repair_tail(self) -> None:
        # A writer that died mid-line left bytes after our offset that never got a newline.
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return
        if size > self._offset:
            with open(self.path, "r+b") as fh:
                fh.truncate(self._offset)

    def queue(self, op: list) -> None:
        """Apply an operation in memory now and write it when the transaction ends."""
        if self._depth == 0:
            raise RuntimeError("LogStorage.queue() needs an open transaction()")
        self._apply(op)
        self._pending.append(op)
        self.generation += 1

    def _flush(self) -> None:
        line = encode_line(self._pending)
        new_file = not self.path.exists() or self._offset == 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                payload = (_HEADER_LINE + line) if new_file else line
                os.write(fd, payload)
                if os.environ.get("NBOPS_FSYNC") == "1":
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            # memory already holds the change; drop our view so it is re-read from disk
            self._reset()
            raise StoreError(
                f"cannot write the store file {self.path}: {exc}. "
                "Point NBOPS_STORE or nbops.set_store() at a writable folder."
            ) from exc
        st = os.stat(self.path)
        self._inode = st.st_ino
        self._offset = st.st_size
        self._ops_in_log += len(self._pending)
        if self._ops_in_log > 2 * self._live_docs() + 5000:
            self._compact()

    def _live_docs(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def _compact(self) -> None:
        """Rewrite the log as one put per live document (caller holds the lock)."""
        tmp = self.path.with_suffix(self.path.suffix + ".compact")
        lines = [_HEADER_LINE]
        for table, docs in self._tables.items():
            for doc_id, doc in docs.items():
                lines.append(encode_line([["put", table, int(doc_id), doc]]))
        with open(tmp, "wb") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        st = os.stat(self.path)
        self._inode = st.st_ino
        self._offset = st.st_size
        self._ops_in_log = self._live_docs()

    def next_id(self, table: str) -> int:
        """The next free document id of a table (call inside a transaction)."""
        return self._max_id.get(table, 0) + 1

    def write(self, data: dict[str, dict[str, Mapping]]) -> None:
        """TinyDB's whole-state write. Tables whose dict TinyDB rebuilt are re-put whole
        (TinyDB may have changed documents in place, so nothing cheaper is safe);
        :class:`nbops.store.table.LogTable` avoids this path for every common write."""
        with self.transaction():
            for table in [t for t in self._tables if t not in data]:
                self.queue(["drop", table])
            for table, docs in data.items():
                have = self._tables.get(table)
                if docs is have:
                    continue
                have = have or {}
                for doc_id in [d for d in have if d not in docs]:
                    self.queue(["del", table, int(doc_id)])
                for doc_id, doc in docs.items():
                    self.queue(["put", table, int(doc_id), dict(doc)])
                self._tables.setdefault(table, {})

    def close(self) -> None:
        pass


class _ProcessLock:
    """An exclusive lock between processes: flock() on a lock file kept open.

    flock costs microseconds and is released by the kernel when a process dies, so a
    killed writer never leaves the store locked. Without fcntl (Windows) the
    filelock package does the same job, more slowly."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._fallback = None
        if fcntl is None:
            from filelock import FileLock

            self._fallback = FileLock(path)

    def acquire(self, timeout: float) -> None:
        if self._fallback is not None:
            from filelock import Timeout

            try:
                self._fallback.acquire(timeout=timeout)
            except Timeout as exc:
                raise TimeoutError(str(exc)) from exc
            return
        if self._fd is None or self._pid != os.getpid():  # after fork: our own description
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(self.path) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)

    def release(self) -> None:
        if self._fallback is not None:
            self._fallback.release()
        elif self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
