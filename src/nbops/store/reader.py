"""Reading the store's files: lazy tables from the snapshot and the log, damage noted.

:class:`LogReader` is the read half of :class:`nbops.store.storage.LogStorage` (whose
docstring describes the files and the rules). A table is loaded on first use: its
snapshot section, then the log's operations on it. Afterwards only the log's new
tail is read, when another process appended to it. A line whose checksum fails is
recorded in ``damage`` and skipped with a :class:`nbops.StoreDamageWarning`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._errors import StoreDamageWarning, StoreError
from . import logfile
from .logfile import Damage, Header

KINDS = ("put", "upd", "mrg", "ext", "del", "drop")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_stacklevel() -> int:
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def apply_op(doc: dict | None, op: list) -> dict | None:
    """The document after one operation (``doc`` is None when absent; it may be
    changed in place). Raises ValueError/TypeError/IndexError on a malformed op."""
    kind = op[0]
    if kind == "put":
        if not isinstance(op[3], dict):
            raise TypeError("put needs a document")
        return op[3]
    if kind == "del":
        return None
    if kind == "ext":
        if doc is None:
            doc = dict(op[4]) if len(op) > 4 and op[4] else {}
        for field, values in op[3].items():
            have = doc.get(field)
            if isinstance(have, list):
                have.extend(values)
            else:
                doc[field] = list(values)
        return doc
    if doc is None:  # an update of a document whose put was lost to damage
        return None
    if kind == "upd":
        doc.update(op[3])
    elif kind == "mrg":
        for field, values in op[3].items():
            have = doc.get(field)
            if not isinstance(have, dict):
                doc[field] = have = {}
            have.update(values)
    else:
        raise ValueError(f"unknown operation {kind!r}")
    return doc


def check_ops(ops: Any) -> list:
    """``ops`` if it is a well-formed transaction, else ValueError."""
    if not isinstance(ops, list):
        raise ValueError("a transaction is a list of operations")
    for op in ops:
        if (
            not isinstance(op, list)
            or len(op) < 2
            or op[0] not in KINDS
            or not isinstance(op[1], str)
            or (op[0] != "drop" and len(op) < 3)
        ):
            raise ValueError(f"malformed operation {str(op)[:80]}")
    return ops


LOST_NEWLINE = "the log's last line ends in a damaged byte where its newline belongs"


def copy_doc(doc: Any) -> Any:
    """A deep copy of a stored record (dicts and lists copied, scalars shared): what
    callers may modify freely."""
    if isinstance(doc, dict):
        return {k: copy_doc(v) if isinstance(v, _NESTED) else v for k, v in doc.items()}
    if isinstance(doc, list):
        return [copy_doc(v) if isinstance(v, _NESTED) else v for v in doc]
    return doc


_NESTED = (dict, list)


_copy = copy_doc


class LogReader:
    """Lazy, damage-tolerant reading of one store's log and snapshot."""

    path: Path
    root: Path
    _mutex: Any
    _depth: int
    _tables: dict[str, dict[str, dict]]
    _max_id: dict[str, int]
    _indexes: dict[tuple[str, str], dict[Any, str]]
    header: Header | None
    _ident: tuple | None
    offset: int
    damage: dict[tuple[str, int], Damage]
    _warned: set[tuple[str, int]]
    listeners: list[Callable[[list | None, int], None]]
    generation: int

    # -- reading ---------------------------------------------------------------
    def read(self) -> dict[str, dict[str, dict]]:
        """TinyDB's read: every table, loaded, as ``{table: {doc_id: doc}}`` (live; do not
        modify)."""
        with self._mutex:
            if self._depth == 0:
                self.refresh()
            for table in self.table_names():
                self._ensure(table)
            return dict(self._tables)  # TinyDB replaces whole tables in what read() returned

    def live_table(self, table: str) -> dict[str, dict]:
        """The live ``{doc_id: doc}`` dict of one table (treat it as read-only)."""
        with self._mutex:
            if self._depth == 0:
                self.refresh()
            self._ensure(table)
            return self._tables[table]

    def table_names(self) -> list[str]:
        """Names of the tables in the snapshot and the log."""
        names = set(self._snapshot_tables())
        for ops, _, _ in self._lines(self.header.size if self.header else 0, self.offset):
            names.update(op[1] for op in ops)
        return sorted(names | set(self._tables))

    def refresh(self) -> None:
        """Catch up with what other writers appended (or a compaction replaced)."""
        for _attempt in range(5):
            try:
                self._refresh()
                return
            except _Replaced:  # replaced while being read: read the new file
                self._reset()
        raise StoreError(f"the store {self.root} kept changing while being read; retry")

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.header is not None:
                self._reset()
            return
        except OSError as exc:
            raise StoreError(f"cannot read the store file {self.path}: {exc}") from exc
        if (st.st_dev, st.st_ino) != self._ident or st.st_size < self.offset:
            self._open(st)
        if st.st_size > self.offset:
            if self._tables or self.listeners:
                self._read_tail()
            else:  # nothing loaded: only learn where the last complete line ends
                self.offset = self._last_line_end(st.st_size)

    def _open(self, st: os.stat_result) -> None:
        self._reset()
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(logfile.HEADER_LIMIT)
        except OSError as exc:
            raise StoreError(f"cannot read the store file {self.path}: {exc}") from exc
        self.header = logfile.read_header(self.path, head)
        self._ident = (st.st_dev, st.st_ino)
        self.offset = self.header.size

    def _reset(self) -> None:
        self._tables = {}
        self._max_id = {}
        for index in self._indexes.values():
            index.clear()
        self.header = None
        self._ident = None
        self.offset = 0
        self.generation += 1
        for listener in list(self.listeners):
            listener(None, 0)

    def _last_line_end(self, size: int) -> int:
        with open(self.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) != self._ident:
                raise _Replaced()
            pos = size
            while pos > self.offset:
                start = max(self.offset, pos - (1 << 16))
                fh.seek(start)
                chunk = fh.read(pos - start)
                i = chunk.rfind(b"\n")
                if i >= 0:
                    end = start + i + 1
                    break
                pos = start
            else:
                end = self.offset
            if end < size:
                fh.seek(end)
                if self._whole_tail(end, fh.read(size - end)):
                    return size
            return end

    def _whole_tail(self, offset: int, tail: bytes) -> bool:
        """Whether the log's unterminated last line (at ``offset``) is a whole
        transaction that lost its newline, to be read too. One whose newline was
        overwritten by a damaged byte is recorded as damage; a torn write is neither."""
        if logfile.unseal(tail) is not None:
            return True
        if logfile.lost_newline(tail):
            self._damaged(offset, tail, LOST_NEWLINE)
        return False

    def _read_tail(self) -> None:
        for ops, end, _ in self._lines(self.offset, None):
            for op in ops:
                table = op[1]
                if table in self._tables:
                    self._apply(op)
            self.offset = end
            for listener in list(self.listeners):
                listener(ops, end)
        self.generation += 1

    def _lines(self, start: int, stop: int | None) -> Iterator[tuple[list, int, int]]:
        """(ops, end offset, line number or 0) of each intact transaction between two
        offsets of the log (``stop`` None: up to its last complete line). Damaged lines
        are recorded and skipped."""
        if self.header is None:
            return
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if (st.st_dev, st.st_ino) != self._ident:
                    raise _Replaced()
                fh.seek(start)
                data = fh.read() if stop is None else fh.read(stop - start)
        except FileNotFoundError:
            raise _Replaced() from None
        except OSError as exc:
            raise StoreError(f"cannot read the store file {self.path}: {exc}") from exc
        end = data.rfind(b"\n") + 1
        if end < len(data) and self._whole_tail(start + end, data[end:]):
            end = len(data)
        pos = 0
        legacy = self.header.format == 1
        while pos < end:
            nl = data.find(b"\n", pos)
            nl = nl if nl >= 0 else len(data)
            raw = data[pos:nl]
            here = start + pos
            pos = nl + 1
            if not raw.strip():
                continue
            try:
                ops = check_ops(logfile.parse_line(raw, legacy))
            except (ValueError, TypeError) as exc:
                self._damaged(here, raw, str(exc))
                continue
            yield ops, start + pos, 0

    def _damaged(
        self,
        offset: int,
        raw: bytes,
        reason: str,
        file: Path | None = None,
        line: int | None = None,
    ) -> None:
        file = file or self.path
        if line is None:
            line = self._line_number(offset)
        key = (str(file), offset)
        if key not in self.damage:
            run_ids = {k: d.get("run_id") for k, d in self._tables.get("runs", {}).items()}
            self.damage[key] = Damage(
                str(file), line, offset, len(raw) + 1, reason, logfile.touched_by(raw, run_ids)
            )
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(
                f"nbops: the store has a damaged line, skipped: {self.damage[key].describe()}."
                " The rest of the store reads normally. Run `nbops store check` for a "
                "report and `nbops store repair` to move damaged lines to quarantine.",
                StoreDamageWarning,
                stacklevel=_user_stacklevel(),
            )

    def _line_number(self, offset: int) -> int:
        try:
            with open(self.path, "rb") as fh:
                return fh.read(offset).count(b"\n") + 1
        except OSError:
            return -1

    # -- lazy tables -------------------------------------------------------------
    def _snapshot_dir(self) -> Path | None:
        if self.header is None or not self.header.snapshot:
            return None
        return self.root / "snapshots" / self.header.snapshot

    def _snapshot_tables(self) -> list[str]:
        folder = self._snapshot_dir()
        if folder is None:
            return []
        try:
            return [p.name[:-6] for p in folder.iterdir() if p.name.endswith(".jsonl")]
        except FileNotFoundError:
            raise _Replaced() from None

    def _ensure(self, table: str) -> None:
        if table in self._tables:
            return
        for _attempt in range(5):
            try:
                self._load(table)
                return
            except _Replaced:  # a compaction replaced the files meanwhile: start over
                self._reset()
                if self._depth == 0:
                    self.refresh()
                else:
                    st = os.stat(self.path)
                    self._open(st)
                    self.offset = self._last_line_end(st.st_size)
        raise StoreError(f"the store {self.root} kept changing while being read; retry")

    def _load(self, table: str) -> None:
        docs: dict[str, dict] = {}
        self._tables[table] = docs
        try:
            folder = self._snapshot_dir()
            if folder is not None:
                self._load_snapshot(folder / f"{table}.jsonl", docs)
            if self.header is not None:
                for ops, _, _ in self._lines(self.header.size, self.offset):
                    for op in ops:
                        if op[1] == table:
                            self._apply(op)
        except BaseException:
            self._tables.pop(table, None)
            raise
        self._max_id[table] = max((int(k) for k in docs if k.isdigit()), default=0)
        for (t, field), index in self._indexes.items():
            if t == table:
                index.clear()
                index.update((d[field], k) for k, d in docs.items() if field in d)

    def _load_snapshot(self, path: Path, docs: dict[str, dict]) -> None:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            if not path.parent.is_dir():
                raise _Replaced() from None
            return
        pos, line = 0, 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                nl = len(data)
            raw = data[pos:nl]
            line += 1
            here, pos = pos, nl + 1
            try:
                key, doc = logfile.parse_doc_line(raw)
                docs[key] = doc
            except (ValueError, TypeError) as exc:
                self._damaged(here, raw, str(exc), file=path, line=line)

    def _apply(self, op: list) -> None:
        kind, table = op[0], op[1]
        docs = self._tables[table]
        if kind == "drop":
            docs.clear()
            for (t, _), index in self._indexes.items():
                if t == table:
                    index.clear()
            return
        key = str(op[2])
        old = docs.get(key)
        before = (
            {f: old[f] for (t, f) in self._indexes if t == table and f in old}
            if old is not None
            else None
        )
        doc = apply_op(old, op)
        if doc is None:
            docs.pop(key, None)
        else:
            docs[key] = doc
            if key.isdigit() and int(key) > self._max_id.get(table, 0):
                self._max_id[table] = int(key)
        for (t, field), index in self._indexes.items():
            if t != table:
                continue
            if before and field in before and index.get(before[field]) == key:
                del index[before[field]]
            if doc is not None and field in doc:
                index[doc[field]] = key

    def index(self, table: str, field: str) -> dict[Any, str]:
        """A live map ``value of field -> doc_id`` for one table, kept up to date."""
        with self._mutex:
            if self._depth == 0:
                self.refresh()
            self._ensure(table)
            key = (table, field)
            if key not in self._indexes:
                self._indexes[key] = {
                    d[field]: k for k, d in self._tables[table].items() if field in d
                }
            return self._indexes[key]

    def loaded(self, table: str) -> bool:
        """Whether ``table`` is in memory (so reading it costs nothing)."""
        return table in self._tables


class _Replaced(Exception):
    """The log or snapshot changed identity while being read (a compaction)."""
