"""Compaction: fold the log into a new snapshot without holding the lock for long.

1. Without the store lock (another flock, ``nbops.db.compact.lock``, keeps two
   compactions from overlapping): read the log up to offset X, and write a new
   snapshot folder ``snapshots/<new>/``: for each table, stream the old snapshot's
   lines, copying untouched documents byte for byte and rewriting only the ones the
   log changed, then add the documents the log created. Files are fsync'ed and the
   folder appears by rename.
2. The runs() cache (frame.py) is brought to X so the next reader starts from it.
3. Under the store lock: start a new log whose header names the new snapshot and says
   it continues the old log at X, copy the old log's lines after X into it (what
   writers appended meanwhile), fsync, and rename it over ``nbops.db``. This step
   copies only those few lines, so writers wait milliseconds.
4. Old snapshot folders are removed. A reader that still had the old log open notices
   the new file (another inode) and starts over from the new snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import StoreError
from . import logfile

if TYPE_CHECKING:
    from .storage import LogStorage

try:
    import fcntl
except ImportError:  # Windows: compactions are serialised by the store lock only
    fcntl = None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def compact(storage: LogStorage, force: bool = False) -> dict[str, Any] | None:
    """Run one compaction of ``storage``'s store (see the module docstring). Returns
    ``{snapshot, log, at}`` or None when another process is compacting or the log
    changed meanwhile. Raises StoreError on damage."""
    from .reader import _copy, apply_op, check_ops

    root = storage.root
    guard = None
    if fcntl is not None:
        guard = os.open(str(storage.path) + ".compact.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(guard)
            return None
    try:
        header = storage.header
        ident = storage._ident
        x = storage.offset
        with open(storage.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) != ident:
                return None
            fh.seek(header.size)
            data = fh.read(x - header.size)
        # -- the log's operations, grouped by table and document ------------------
        tables: dict[str, dict[str, list]] = {}
        dropped: set[str] = set()
        run_ops: list[tuple[list, int]] = []
        pos = 0
        line_no = 1
        while pos < len(data):
            nl = data.find(b"\n", pos)
            nl = nl if nl >= 0 else len(data)  # the reader accepted an unended last line
            raw = data[pos:nl]
            line_no += 1
            pos = nl + 1
            if not raw.strip():
                continue
            try:
                ops = check_ops(logfile.parse_line(raw, legacy=header.format == 1))
            except (ValueError, TypeError) as exc:
                raise StoreError(
                    f"{storage.path} line {line_no} is damaged ({exc}); compaction would drop "
                    "it. Run `nbops store repair` first."
                ) from exc
            for op in ops:
                if op[0] == "drop":
                    tables[op[1]] = {}
                    dropped.add(op[1])
                else:
                    tables.setdefault(op[1], {}).setdefault(str(op[2]), []).append(op)
            if any(op[1] == "runs" for op in ops):
                run_ops.append((ops, header.size + pos))
        # -- the new snapshot -----------------------------------------------------
        snaps = root / "snapshots"
        snaps.mkdir(exist_ok=True)
        new = logfile.new_id()
        tmp = snaps / f".{new}.tmp"
        tmp.mkdir()
        old = snaps / header.snapshot if header.snapshot else None
        names = set(tables)
        if old is not None:
            names.update(p.name[:-6] for p in old.iterdir() if p.name.endswith(".jsonl"))
        counts: dict[str, int] = {}
        try:
            for table in sorted(names):
                touched = tables.get(table, {})
                done: set[str] = set()
                count = 0
                with open(tmp / f"{table}.jsonl", "wb") as out:
                    src = old / f"{table}.jsonl" if old is not None else None
                    if src is not None and src.exists() and table not in dropped:
                        with open(src, "rb") as fh:
                            for n, raw in enumerate(fh, 1):
                                raw = raw.rstrip(b"\n")
                                payload = logfile.unseal(raw)
                                if payload is None:
                                    raise StoreError(
                                        f"{src} line {n} is damaged (checksum mismatch); "
                                        "compaction would drop it. Run `nbops store repair`."
                                    )
                                key = payload[: payload.index(b"\t")].decode()
                                if key not in touched:
                                    out.write(raw + b"\n")
                                    count += 1
                                    continue
                                done.add(key)
                                doc = logfile.loads(payload[len(key) + 1 :])
                                for op in touched[key]:
                                    doc = apply_op(doc, _copy(op))
                                if doc is not None:
                                    out.write(_doc_line(key, doc))
                                    count += 1
                    for key, ops in touched.items():
                        if key in done:
                            continue
                        doc = None
                        for op in ops:
                            doc = apply_op(doc, _copy(op))
                        if doc is not None:
                            out.write(_doc_line(key, doc))
                            count += 1
                    out.flush()
                    os.fsync(out.fileno())
                counts[table] = count
            manifest = {"snapshot": new, "log": header.log, "at": x, "tables": counts}
            (tmp / "manifest").write_bytes(logfile.seal(logfile.dumps(manifest)))
            _fsync_dir(tmp)
            os.rename(tmp, snaps / new)
            _fsync_dir(snaps)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # -- the runs() cache follows ---------------------------------------------
        try:
            from .frame import advance_cache

            advance_cache(root, header.log, run_ops, x, snaps / new)
        except Exception:  # noqa: BLE001 - a cache; the next runs() rebuilds it
            pass
        # -- the new log, under the lock ------------------------------------------
        storage._acquire()
        try:
            st = os.stat(storage.path)
            if (st.st_dev, st.st_ino) != ident:
                shutil.rmtree(snaps / new, ignore_errors=True)
                return None
            with open(storage.path, "rb") as fh:
                fh.seek(x)
                rest = fh.read()
            cut = rest.rfind(b"\n") + 1
            if cut < len(rest) and logfile.unseal(rest[cut:]) is not None:
                rest += b"\n"  # a whole transaction that lost its newline
            else:
                rest = rest[:cut]
            log_id = logfile.new_id()
            fresh = root / f".nbops.db.compact-{os.getpid()}-{log_id}"
            with open(fresh, "wb") as out:
                out.write(logfile.header_line(log_id, new, [header.log, x]))
                out.write(rest)
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, storage.path)
            _fsync_dir(root)
        finally:
            storage.lock.release()
        for folder in snaps.iterdir():
            if folder.name != new:
                shutil.rmtree(folder, ignore_errors=True)
        return {"snapshot": new, "log": log_id, "at": x}
    finally:
        if guard is not None:
            os.close(guard)


def _doc_line(key: str, doc: Any) -> bytes:
    return logfile.seal(key.encode() + b"\t" + logfile.dumps(doc))


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A snapshot folder's manifest, or None if missing or damaged."""
    try:
        payload = logfile.unseal((folder / "manifest").read_bytes().rstrip(b"\n"))
    except OSError:
        return None
    return json.loads(payload) if payload is not None else None
