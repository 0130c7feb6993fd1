"""Point reads without loading a table: one document by id, or the values of one field
that match a pattern (run ids by prefix).

A fresh process that shows one run of a 100,000-run store should not parse 100,000
documents. The snapshot file of a table is searched (memory-mapped, so nothing is
read into memory but the line found) for the line that starts with the document id,
and the log's tail is scanned for operations on it. When the table is loaded already,
memory answers.
"""

from __future__ import annotations

import mmap
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import StoreError
from . import logfile
from .reader import _Replaced, apply_op, copy_doc

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .storage import LogStorage


@contextmanager
def _mapped(path: Path) -> Iterator[Any]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise _Replaced() from None
        yield b""
        return
    try:
        try:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            yield b""
            return
        try:
            yield data
        finally:
            data.close()
    finally:
        fh.close()


def _retrying(storage: LogStorage, fn: Any) -> Any:
    with storage._mutex:
        for _attempt in range(5):
            if storage._depth == 0:
                storage.refresh()
            try:
                return fn()
            except _Replaced:  # a compaction replaced the files meanwhile
                storage._reset()
        raise StoreError(f"the store {storage.root} kept changing while being read; retry")


def point_get(storage: LogStorage, table: str, key: str) -> dict[str, Any] | None:
    """A copy of document ``key`` of ``table``, or None; reads one snapshot line and the
    log's tail unless the table is in memory."""

    def get() -> dict[str, Any] | None:
        if storage.loaded(table):
            doc = storage.live_table(table).get(key)
            return copy_doc(doc) if doc is not None else None
        doc = None
        folder = storage._snapshot_dir()
        if folder is not None:
            path = folder / f"{table}.jsonl"
            with _mapped(path) as data:
                needle = key.encode() + b"\t"
                start = 0 if data[: len(needle)] == needle else data.find(b"\n" + needle) + 1
                if start > 0 or data[: len(needle)] == needle:
                    end = data.find(b"\n", start)
                    raw = bytes(data[start : end if end >= 0 else len(data)])
                    payload = logfile.unseal(raw)
                    if payload is None:
                        line = data[:start].count(b"\n") + 1
                        storage._damaged(start, raw, "checksum mismatch", file=path, line=line)
                    else:
                        doc = logfile.loads(payload[len(needle) :])
        if storage.header is not None:
            for ops, _, _ in storage._lines(storage.header.size, storage.offset):
                for op in ops:
                    if op[1] != table:
                        continue
                    if op[0] == "drop":
                        doc = None
                    elif str(op[2]) == key:
                        doc = apply_op(doc, copy_doc(op))
        return doc

    return _retrying(storage, get)


def field_values(storage: LogStorage, table: str, field: str, prefix: str) -> set[str]:
    """Values of string ``field`` starting with ``prefix`` that appear in ``table``'s
    snapshot file or the log's puts and updates (a superset: deleted documents may
    still show; check each with :func:`point_get`)."""
    pattern = re.compile(
        b'"' + re.escape(field.encode()) + b'":"(' + re.escape(prefix.encode()) + rb'[^"\\]*)"'
    )

    def scan() -> set[str]:
        if storage.loaded(table):
            return {
                d[field]
                for d in storage.live_table(table).values()
                if isinstance(d.get(field), str) and d[field].startswith(prefix)
            }
        found: set[str] = set()
        folder = storage._snapshot_dir()
        if folder is not None:
            with _mapped(folder / f"{table}.jsonl") as data:
                found.update(m.group(1).decode(errors="replace") for m in pattern.finditer(data))
        if storage.header is not None:
            for ops, _, _ in storage._lines(storage.header.size, storage.offset):
                for op in ops:
                    if op[1] == table and op[0] in ("put", "upd") and isinstance(op[3], dict):
                        value = op[3].get(field)
                        if isinstance(value, str) and value.startswith(prefix):
                            found.add(value)
        return found

    return _retrying(storage, scan)
