"""The operator's tools: check a store for damage, and repair it.

``check`` reads every line of the log and the snapshot, verifies its checksum and
structure, and reports each damaged line (file, line, byte offset, what it touched).
It never writes. ``repair`` takes the write lock, moves each damaged line into
``quarantine/<time>-<file>.damaged`` (with a ``.json`` report beside it), rewrites the
file without it, keeping every intact transaction, and says what it did.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .._errors import StoreError
from . import logfile
from .logfile import Damage


def _scan(
    path: Path, data: bytes, start: int, legacy: bool, snapshot: bool, run_ids: dict[str, str]
) -> tuple[list[Damage], int, int]:
    """(damage, intact lines, torn bytes at the end) of the lines in ``data[start:]``."""
    from .storage import check_ops

    damage: list[Damage] = []
    intact = 0
    pos = start
    line = data[:start].count(b"\n") + 1
    end = data.rfind(b"\n") + 1
    while pos < end:
        nl = data.index(b"\n", pos)
        raw = data[pos:nl]
        here, pos = pos, nl + 1
        if raw.strip():
            try:
                if snapshot:
                    key, doc = logfile.parse_doc_line(raw, legacy)
                    if isinstance(doc, dict) and "run_id" in doc:
                        run_ids[key] = doc["run_id"]
                else:
                    ops = check_ops(logfile.parse_line(raw, legacy))
                    for op in ops:
                        if op[1] == "runs" and op[0] == "put" and isinstance(op[3], dict):
                            run_ids[str(op[2])] = op[3].get("run_id")
                intact += 1
            except (ValueError, TypeError) as exc:
                damage.append(
                    Damage(
                        str(path),
                        line,
                        here,
                        len(raw) + 1,
                        str(exc),
                        logfile.touched_by(raw, run_ids),
                    )
                )
        line += 1
    return damage, intact, len(data) - end


def check(root: str | os.PathLike) -> dict[str, Any]:
    """Inspect the store folder ``root`` without writing anything. Returns
    ``{"store", "healthy", "damage": [...], "lines", "snapshot", "torn_bytes",
    "notes": [...]}``. Raises StoreError for a file that is not an nbops store."""
    root = Path(root)
    log = root / "nbops.db"
    report: dict[str, Any] = {
        "store": str(root),
        "healthy": True,
        "damage": [],
        "lines": 0,
        "snapshot": None,
        "torn_bytes": 0,
        "notes": [],
    }
    if not log.exists():
        report["notes"].append(f"no store file at {log} (an empty store)")
        return report
    data = log.read_bytes()
    header = logfile.read_header(log, data)
    run_ids: dict[str, str] = {}
    damage: list[Damage] = []
    if header.snapshot:
        folder = root / "snapshots" / header.snapshot
        report["snapshot"] = header.snapshot
        if not folder.is_dir():
            damage.append(
                Damage(str(folder), 0, 0, 0, "the snapshot the log starts from is missing")
            )
        else:
            for part in sorted(folder.glob("*.jsonl")):
                found, n, torn = _scan(part, part.read_bytes(), 0, False, True, run_ids)
                damage += found
                report["lines"] += n
                if torn:
                    damage.append(
                        Damage(
                            str(part),
                            0,
                            part.stat().st_size - torn,
                            torn,
                            "snapshot file ends in an unfinished line",
                        )
                    )
    found, n, torn = _scan(log, data, header.size, header.format == 1, False, run_ids)
    damage += found
    report["lines"] += n
    if torn and logfile.unseal(data[len(data) - torn :]) is not None:
        report["lines"] += 1
        report["notes"].append(
            f"the last line of {log} is a whole transaction without its "
            "newline; it is read, and the next write ends the line"
        )
        torn = 0
    report["torn_bytes"] = torn
    if torn:
        report["notes"].append(
            f"the last {torn} bytes of {log} are an unfinished write (a writer died or is "
            "writing now); it was never acknowledged, and the next write removes it"
        )
    if header.format == 1:
        report["notes"].append("format 1 (no checksums); the next write converts it")
    report["damage"] = [d.to_dict() for d in damage]
    report["healthy"] = not damage
    return report


def repair(root: str | os.PathLike) -> dict[str, Any]:
    """Move every damaged line of the store at ``root`` into ``quarantine/`` and keep
    every intact one, under the write lock. Returns ``{"moved": [...], "kept": n,
    "quarantine": [paths]}``. Raises StoreError for a foreign file or a missing
    snapshot."""
    from .storage import LogStorage

    root = Path(root)
    storage = LogStorage(root / "nbops.db")
    result: dict[str, Any] = {"moved": [], "kept": 0, "quarantine": []}
    with storage.transaction():  # the write lock: no writer appends meanwhile
        report = check(root)
        if any(d["line"] == 0 and "missing" in d["reason"] for d in report["damage"]):
            raise StoreError(
                f"the snapshot of {root} is missing; restore it from a backup "
                "(nbops cannot rebuild documents it no longer has)"
            )
        by_file: dict[str, list[dict]] = {}
        for d in report["damage"]:
            by_file.setdefault(d["file"], []).append(d)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (root / "quarantine").mkdir(exist_ok=True)
        for file, items in by_file.items():
            path = Path(file)
            data = path.read_bytes()
            bad = sorted((d["offset"], d["offset"] + d["length"]) for d in items)
            keep, moved, pos = [], [], 0
            for start, end in bad:
                keep.append(data[pos:start])
                moved.append(data[start:end])
                pos = end
            keep.append(data[pos:])
            target = root / "quarantine" / f"{stamp}-{path.parent.name}-{path.name}.damaged"
            target.write_bytes(b"".join(moved))
            target.with_suffix(".json").write_text(json.dumps(items, indent=2))
            tmp = path.with_name(f".{path.name}.repair-{os.getpid()}")
            tmp.write_bytes(b"".join(keep))
            os.replace(tmp, path)
            result["moved"] += items
            result["quarantine"].append(str(target))
        result["kept"] = report["lines"]
        storage.damage.clear()
    # every reader sees a new file (another inode) and reads it again
    return result
