"""Leftovers of writers: bytes a torn write left at the log's end, and temporary files
of processes that died (artifact uploads, new logs, snapshot folders being written)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def quarantine_bytes(root: Path, kind: str, data: bytes) -> Path | None:
    """Keep ``data`` (torn or damaged bytes) under ``quarantine/``; best effort."""
    if not data:
        return None
    try:
        folder = root / "quarantine"
        folder.mkdir(exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{kind}.bin"
        path.write_bytes(data)
        return path
    except OSError:
        return None


def clean_temp_files(root: Path) -> list[Path]:
    """Remove temporary files that writers which died left behind (artifact uploads,
    new logs, snapshot folders being written). Returns what was removed."""
    import shutil

    from .procs import alive

    removed = []
    candidates = (
        list((root / "artifacts").glob(".incoming-*")) if (root / "artifacts").is_dir() else []
    )
    candidates += list(root.glob(".nbops.db.*"))
    if (root / "snapshots").is_dir():
        candidates += list((root / "snapshots").glob(".*.tmp"))
    now = time.time()
    for path in candidates:
        parts = path.name.split("-")
        pid = next((int(p) for p in parts[1:] if p.isdigit()), None)
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if (pid is not None and pid != os.getpid() and not alive(pid)) or age > 86400:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
