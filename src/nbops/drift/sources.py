"""Where drift data comes from, and which engine computes it.

``nbops.drift`` takes DataFrames (and Series, dicts, arrays) or paths: a Parquet file, a
folder of Parquet files (searched recursively), a glob (``logs/2024-*/*.parquet``), or a
CSV/TSV file. The pandas engine holds both sides in memory; the DuckDB engine streams
the files through DuckDB within a memory limit. ``engine="auto"`` keeps DataFrames in
pandas and picks DuckDB for files whose size in memory would pass the limit (default:
half of the memory available now).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

from .._errors import DriftError

ENGINES = ("auto", "pandas", "duckdb")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: bytes in memory per uncompressed Parquet byte once pandas holds it and the tests run
PANDAS_EXPANSION = 2.5
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1e3,
    "kb": 1e3,
    "m": 1e6,
    "mb": 1e6,
    "g": 1e9,
    "gb": 1e9,
    "t": 1e12,
    "tb": 1e12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(limit: int | float | str | None) -> int:
    """Bytes from ``1GB``, ``512MB``, ``2GiB`` or a number of bytes; None means half of
    the memory available now. Raises DriftError for anything else."""
    if limit is None:
        return available_memory() // 2
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
        return int(limit)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(limit))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or float(match.group(1)) <= 0:
        raise DriftError(
            f"memory limit {limit!r} is not a size; use e.g. '1GB', '512MB' or a number of bytes"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def available_memory() -> int:
    """MemAvailable from /proc/meminfo (the cgroup limit when lower), else 4 GB."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        raw = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if raw != "max":
            avail = min(avail or 1 << 62, int(raw) - used)
    except (OSError, ValueError):
        pass
    return int(avail) if avail else 4 * 10**9


def is_path(data: Any) -> bool:
    """Whether ``data`` names files rather than holding data."""
    return isinstance(data, (str, os.PathLike))


def files_of(data: str | os.PathLike, side: str) -> list[str]:
    """The files a path names: itself, the Parquet files under a folder, or a glob's
    matches (sorted). Raises DriftError naming the path when nothing is there."""
    text = os.fspath(data)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES)
        if not files:
            raise DriftError(f"the {side} folder {path} holds no .parquet files")
        return files
    if path.is_file():
        return [str(path)]
    if glob.has_magic(text):
        files = sorted(
            p for p in glob.glob(os.path.expanduser(text), recursive=True) if os.path.isfile(p)
        )
        if not files:
            raise DriftError(f"the {side} pattern {text!r} matches no files")
        return files
    raise DriftError(
        f"no such file or folder: {path}; pass a pandas DataFrame, a Parquet "
        "file, a folder of them, a glob such as 'logs/*.parquet' or a CSV file"
    )


def is_parquet(files: list[str]) -> bool:
    """True when every file is Parquet (by suffix)."""
    return all(Path(f).suffix.lower() in PARQUET_SUFFIXES for f in files)


def parquet_bytes(files: list[str]) -> int:
    """Uncompressed size of the files' data, from the Parquet footers (no data read)."""
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


def frame_bytes(frame: Any) -> int:
    """Bytes a DataFrame holds (object columns counted deeply)."""
    return int(frame.memory_usage(deep=True).sum())


def read_files(files: list[str], side: str) -> Any:
    """A DataFrame of the files (Parquet concatenated, or one CSV/TSV)."""
    import pandas as pd

    from .io import read_table

    if is_parquet(files):
        try:
            return (
                pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
                if len(files) > 1
                else pd.read_parquet(files[0])
            )
        except Exception as exc:  # noqa: BLE001 - reader errors name the file
            raise DriftError(f"cannot read the {side} Parquet files: {exc}") from None
    if len(files) > 1:
        raise DriftError(
            f"the {side} data names {len(files)} files; several files must be "
            "Parquet (CSV is read one file at a time)"
        )
    return read_table(files[0])


def choose_engine(
    engine: str, reference: Any, current: Any, memory_limit: int | float | str | None
) -> str:
    """ "pandas" or "duckdb" for these inputs (see the module docstring). Raises
    DriftError for an unknown engine, or for DuckDB when it is not installed."""
    if engine not in ENGINES:
        raise DriftError(f"unknown engine {engine!r}; use one of: {', '.join(ENGINES)}")
    if engine == "auto":
        paths = [d for d in (reference, current) if is_path(d)]
        if not paths:
            return "pandas"
        budget = parse_memory(memory_limit)
        need = 0
        for side, data in (("reference", reference), ("current", current)):
            if is_path(data):
                files = files_of(data, side)
                need += (
                    parquet_bytes(files)
                    if is_parquet(files)
                    else sum(os.path.getsize(f) for f in files)
                ) * PANDAS_EXPANSION
        if need <= budget:
            return "pandas"
        engine = "duckdb"
    if engine == "duckdb":
        try:
            import duckdb  # noqa: F401
        except ImportError:
            raise DriftError(
                "the DuckDB engine needs duckdb: pip install 'nbops[duckdb]'; "
                "or pass engine='pandas' for data that fits in memory"
            ) from None
    return engine
