"""Where the store lives.

Order: ``nbops.set_store(path)`` if called, else ``$NBOPS_STORE``, else the nearest
``.nbops/`` directory upward from the working directory, else ``./.nbops``.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_DIRNAME = ".nbops"
ENV_STORE = "NBOPS_STORE"

_explicit: Path | None = None


def set_store_path(path: str | os.PathLike | None) -> None:
    global _explicit
    _explicit = Path(path).expanduser().resolve() if path is not None else None


def store_path() -> Path:
    """Return the store directory nbops uses now (it may not exist yet)."""
    if _explicit is not None:
        return _explicit
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return cwd / STORE_DIRNAME
