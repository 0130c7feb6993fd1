"""Reading reference / current data from files for the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import DriftError

if TYPE_CHECKING:
    import pandas as pd

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A DataFrame from a .csv / .tsv / .parquet file (also .csv.gz and friends).
    Raises DriftError naming the file if it is missing or of an unknown kind."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DriftError(f"no such file: {p}; pass a CSV or Parquet file")
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    kind = READERS.get(suffixes[-1]) if suffixes else None
    if kind is None:
        raise DriftError(f"cannot read {p.name}: use a .csv, .tsv or .parquet file")
    try:
        if kind == "parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p, sep="\t" if kind == "tsv" else ",")
    except ImportError as exc:
        raise DriftError(
            f"reading {p.name} needs an extra package: {exc}. `pip install pyarrow` reads Parquet"
        ) from None
    except Exception as exc:  # noqa: BLE001 - parser errors name the file for the user
        raise DriftError(f"cannot read {p}: {exc}") from None
