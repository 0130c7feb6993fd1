"""A TinyDB storage over a checksummed, append-only log plus a compact snapshot.

Files of a store folder (line format and headers: logfile.py)::

    nbops.db                  the log: a header line, then one line per transaction
    nbops.db.lock             the write lock (flock), with who holds it (lock.py)
    snapshots/<id>/           the state at the log's start: <table>.jsonl, manifest
    nbops.frame               the cached runs() table of the latest state (frame.py)
    quarantine/               lines `nbops store repair` took out, and torn writes

A transaction line is a JSON list of operations on documents (``key`` is the TinyDB
document id):

    ["put", table, key, document]              insert or replace a document
    ["upd", table, key, fields]                set top-level fields
    ["mrg", table, key, {field: {k: v}}]       set keys inside dict fields (params, ...)
    ["ext", table, key, {field: [..]}, init]   append to list fields (creates the doc
                                               from ``init`` if it does not exist)
    ["del", table, key]                        remove a document
    ["drop", table]                            remove every document of a table

Rules:
- A write appends one line under the lock: O(change), not O(store size). Its byte
  count is checked; on a short write or any error the file is cut back to where the
  transaction began before the lock is released, and StoreError is raised. So a
  returned write is in the file (and on disk after ``NBOPS_FSYNC=1``), and a reader
  never sees part of a transaction: lines without their final newline are ignored,
  and a line whose checksum fails is reported as damage, never applied.
- nbops only writes to a file that starts with its own header (created atomically).
  Any other file at the store's path is refused with StoreError and left untouched.
- Tables load lazily: a process reads the snapshot section and log lines of a table
  only when it asks for that table, and a writer that only appends (a tracked run)
  reads nothing at all. Another process's writes are picked up from the log's tail.
- Damaged lines are skipped with a StoreDamageWarning naming the line, byte offset
  and the runs or models they held; ``nbops store check`` lists them and
  ``nbops store repair`` moves them to ``quarantine/``. Compaction refuses to run
  while damage is known, because it would drop those lines for good.
- Compaction (compact.py) writes a new snapshot from the old one and the log without
  the lock, then, under the lock, starts a new log with the lines that arrived
  meanwhile: the lock is held for milliseconds, never for the whole rewrite.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from .._errors import StoreDamageWarning, StoreError
from . import logfile
from .lock import ProcessLock, describe_holder
from .logfile import Damage, Header
from .reader import KINDS, LogReader, _copy, apply_op, check_ops

__all__ = ["COMPACT_MIN_BYTES", "LogStorage", "apply_op", "check_ops", "fsync_enabled"]

LOCK_TIMEOUT_S = 60.0
#: compact once the log's tail holds this many bytes and 1/32 of the snapshot's size (so
#: a fresh reader never has much tail to read, and rewrites stay rare as stores grow)
COMPACT_MIN_BYTES = int(os.environ.get("NBOPS_COMPACT_BYTES", 4 << 20))


def fsync_enabled() -> bool:
    """Whether each transaction is fsync'ed (``NBOPS_FSYNC=1``; default off)."""
    return os.environ.get("NBOPS_FSYNC", "").strip().lower() in ("1", "true", "yes", "on")


def lock_timeout() -> float:
    """Seconds a writer waits for the lock (``NBOPS_LOCK_TIMEOUT``, default 60)."""
    try:
        return float(os.environ.get("NBOPS_LOCK_TIMEOUT", LOCK_TIMEOUT_S))
    except ValueError:
        return LOCK_TIMEOUT_S


class LogStorage(LogReader, Storage):
    """TinyDB ``Storage`` over the log and snapshot of one store folder.

    ``read()`` returns every table (loading all); :meth:`live_table` loads one.
    ``write(data)`` accepts a whole state like any TinyDB storage and appends only the
    difference; :class:`nbops.store.table.LogTable` and the Store's accessors append
    operations directly with :meth:`queue` inside :meth:`transaction`.
    """

    def __init__(self, path: str | os.PathLike, create_dirs: bool = True, **_: Any) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        if create_dirs:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store folder {self.root}: {exc}. "
                    "Point NBOPS_STORE or nbops.set_store() at a writable folder."
                ) from exc
        self.lock = ProcessLock(str(self.path) + ".lock")
        self._mutex = threading.RLock()
        self._depth = 0
        self._pending: list[list] = []
        self._tables: dict[str, dict[str, dict]] = {}
        self._max_id: dict[str, int] = {}
        self._indexes: dict[tuple[str, str], dict[Any, str]] = {}
        self.header: Header | None = None
        self._ident: tuple | None = None
        self.offset = 0  # end of the last complete line seen
        self.damage: dict[tuple[str, int], Damage] = {}
        self._warned: set[tuple[str, int]] = set()
        self._want_compact = False
        self._cleaned = False
        #: called with (ops, end offset) for every transaction read or written, and with
        #: (None, 0) when the in-memory state was dropped (the runs frame listens)
        self.listeners: list[Callable[[list | None, int], None]] = []
        #: bumped whenever the in-memory state changes; tables use it to drop caches
        self.generation = 0

    # -- writing ---------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[LogStorage]:
        """Hold the write lock, see the latest state, and append all queued
        operations as one line on exit (nothing if the block raised)."""
        with self._mutex:
            if self._depth == 0:
                self.refresh()
                if self.header is not None and self.header.format == 1:
                    self.compact(force=True)  # format 1 has no checksums: convert first
                self._acquire()
                try:
                    self._begin()
                except BaseException:
                    self.lock.release()
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
                            self._forget()
                    finally:
                        self._pending = []
                        self.lock.release()
                    if self._want_compact:
                        self._want_compact = False
                        self._compact_quietly()

    def _acquire(self) -> None:
        timeout = lock_timeout()
        try:
            self.lock.acquire(timeout)
        except TimeoutError as exc:
            raise StoreError(
                f"the store lock {self.lock.path} is still held after {timeout:.0f} s, by "
                f"{describe_holder(self.lock.holder())}. That process is writing to the "
                "store; wait for it to finish, or stop it if it hangs (its lock is released "
                "when it exits). Do not delete the lock file: that would let two writers "
                "in at once. Set NBOPS_LOCK_TIMEOUT to wait longer."
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot lock the store at {self.root}: {exc}. "
                "Point NBOPS_STORE or nbops.set_store() at a writable folder."
            ) from exc

    def _begin(self) -> None:
        self.refresh()
        if self.header is None:
            return
        with open(self.path, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(size - 1)
            if size > self.header.size and fh.read(1) != b"\n":
                start = size
                while start > self.header.size:  # the start of the unended last line
                    chunk_at = max(self.header.size, start - (1 << 16))
                    fh.seek(chunk_at)
                    i = fh.read(start - chunk_at).rfind(b"\n")
                    if i >= 0:
                        start = chunk_at + i + 1
                        break
                    start = chunk_at
                fh.seek(start)
                line = fh.read()
                if logfile.unseal(line) is not None:
                    # a whole, checked transaction that lost its newline (a damaged byte,
                    # or a writer that died before its last byte): keep it, end the line
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
                else:  # a writer died mid-line: that write was never acknowledged
                    from .leftovers import quarantine_bytes

                    quarantine_bytes(self.root, "torn", line)
                    fh.truncate(start)
        self.refresh()  # the offset after any line just completed
        if not self._cleaned:
            self._cleaned = True
            from .leftovers import clean_temp_files

            clean_temp_files(self.root)

    def queue(self, op: list) -> None:
        """Apply an operation in memory now and write it when the transaction ends."""
        if self._depth == 0:
            raise RuntimeError("LogStorage.queue() needs an open transaction()")
        if op[0] not in KINDS or not _TABLE_NAME(op[1]):
            raise StoreError(
                f"bad operation {op[0]!r} on table {op[1]!r}: table names are "
                "letters, digits, '_', '-' and '.'"
            )
        self._pending.append(op)
        if op[1] in self._tables:
            self._apply(_copy(op))
        self.generation += 1

    def _forget(self) -> None:
        # the block raised after queueing: memory holds changes the file never got
        self._tables = {}
        self._max_id = {}
        for index in self._indexes.values():
            index.clear()
        self.generation += 1
        for listener in list(self.listeners):
            listener(None, 0)

    def _create(self) -> None:
        """Start a new log file atomically: it appears with its header or not at all."""
        tmp = self.root / f".nbops.db.new-{os.getpid()}-{logfile.new_id()}"
        with open(tmp, "wb") as fh:
            fh.write(logfile.header_line(logfile.new_id(), None, None))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            pass  # someone created one meanwhile: the header check below decides
        except OSError:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(tmp.read_bytes())
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
        self.refresh()

    def _flush(self) -> None:
        line = logfile.seal(logfile.dumps(self._pending))
        try:
            if self.header is None:
                self._create()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            self._forget()
            raise StoreError(
                f"cannot write the store file {self.path}: {exc}. "
                "Point NBOPS_STORE or nbops.set_store() at a writable folder."
            ) from exc
        start = self.offset
        try:
            view = memoryview(line)
            done = 0
            while done < len(line):
                n = os.write(fd, view[done:])
                if n <= 0:
                    raise OSError(28, "short write")
                done += n
            if fsync_enabled():
                os.fsync(fd)
        except OSError as exc:
            cut = ""
            try:
                os.ftruncate(fd, start)
            except OSError as cut_exc:
                cut = (
                    f" Cutting it back failed too ({cut_exc}); readers ignore the "
                    "unfinished line and the next write removes it."
                )
            self._forget()
            raise StoreError(
                f"could not write to the store file {self.path}: "
                f"{exc.strerror or exc}. Nothing of this change was stored: the file was "
                f"cut back to its last complete transaction.{cut} Free space (or fix the "
                "folder) and try again."
            ) from exc
        finally:
            os.close(fd)
        self.offset = start + len(line)
        ops = self._pending
        for listener in list(self.listeners):
            listener(ops, self.offset)
        self.generation += 1
        tail = self.offset - self.header.size
        if tail > COMPACT_MIN_BYTES and tail > self.snapshot_bytes() // 32 and not self.damage:
            self._want_compact = True

    def snapshot_bytes(self) -> int:
        """Size of the snapshot the log starts from (0 if none)."""
        folder = self._snapshot_dir()
        try:
            return sum(p.stat().st_size for p in folder.iterdir()) if folder else 0
        except OSError:
            return 0

    def next_id(self, table: str) -> int:
        """The next free document id of a table (call inside a transaction)."""
        self._ensure(table)
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

    # -- compaction ----------------------------------------------------------------
    def compact(self, force: bool = False) -> bool:
        """Fold the log into a new snapshot (see compact.py). Returns False when another
        process is compacting. Raises StoreError while damage is known."""
        from .compact import compact

        with self._mutex:
            if self._depth:
                raise RuntimeError("compact() cannot run inside a transaction")
            self.refresh()
            if self.header is None:
                return False
            if self.damage:
                first = next(iter(self.damage.values()))
                raise StoreError(
                    f"the store has {len(self.damage)} damaged line(s) (first: "
                    f"{first.describe()}); compacting now would drop them for good. Run "
                    "`nbops store repair` first, which keeps every intact transaction."
                )
            result = compact(self, force=force)
            if result is None:
                return False
            st = os.stat(self.path)
            loaded = self._tables
            listeners, self.listeners = self.listeners, []
            try:
                self._open(st)  # same state, new files
            finally:
                self.listeners = listeners
            self._tables = loaded
            for table, docs in loaded.items():
                self._max_id[table] = max((int(k) for k in docs if k.isdigit()), default=0)
            for (t, field), index in self._indexes.items():
                index.update((d[field], k) for k, d in loaded.get(t, {}).items() if field in d)
            self.offset = (
                self._last_line_end(st.st_size) if st.st_size > self.offset else self.offset
            )
            if self.offset > self.header.size:  # lines that arrived during the compaction
                for ops, end, _ in self._lines(self.header.size, self.offset):
                    for op in ops:
                        if op[1] in self._tables:
                            self._apply(op)
                    for listener in list(self.listeners):
                        listener(ops, end)
            for listener in list(self.listeners):
                listener([], self.offset)  # the same state, now at a new position
            return True

    def _compact_quietly(self) -> None:
        try:
            self.compact()
        except (StoreError, OSError) as exc:
            warnings.warn(
                f"nbops: compacting the store failed ({exc}); it stays as it is and works normally",
                StoreDamageWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        """Nothing to close: files are opened per read and write."""
        pass


def _TABLE_NAME(name: Any) -> bool:  # noqa: N802 - a predicate used like a constant
    return (
        isinstance(name, str)
        and 0 < len(name) <= 100
        and all(c.isalnum() or c in "_-." for c in name)
        and not name.startswith(".")
    )
