"""Where the store lives.

Order: the store of the :class:`nbops.Client` making the call, else
``nbops.set_store(path)`` if called, else ``$NBOPS_STORE``, else the nearest
``.nbops/`` directory upward from the working directory, else ``./.nbops``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

STORE_DIRNAME = ".nbops"
ENV_STORE = "NBOPS_STORE"

_explicit: Path | None = None
# a store chosen for the current call by `using_store` (an nbops.Client sets it); per
# thread and per asyncio task, so two clients never see each other's store
_scoped: ContextVar[Path | None] = ContextVar("nbops_store", default=None)


@contextmanager
def using_store(path: str | os.PathLike) -> Iterator[Path]:
    """Within this block, :func:`store_path` (and so every API call in this thread or
    task) uses ``path``. This is how :class:`nbops.Client` binds calls to its store."""
    token = _scoped.set(Path(path).expanduser().resolve())
    try:
        yield _scoped.get()  # type: ignore[misc]
    finally:
        _scoped.reset(token)


def set_store_path(path: str | os.PathLike | None) -> None:
    """Make ``path`` the default store folder of this process (``None``: back to
    ``$NBOPS_STORE`` / the nearest ``.nbops/``). Nothing is created until a write."""
    global _explicit
    _explicit = Path(path).expanduser().resolve() if path is not None else None


def store_path() -> Path:
    """Return the store directory nbops uses now (it may not exist yet)."""
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
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


def store_source(path: Path | None = None) -> str:
    """Why ``path`` (default: :func:`store_path`) is the store: which step of the order
    in this module's docstring picked it, in words for a message."""
    path = store_path() if path is None else path
    if _explicit is not None and path == _explicit:
        return "set by nbops.set_store()"
    env = os.environ.get(ENV_STORE)
    if env and path == Path(env).expanduser().resolve():
        return f"from ${ENV_STORE}"
    if path.is_dir() and path != Path.cwd().resolve() / STORE_DIRNAME:
        return f"the nearest {STORE_DIRNAME} folder above the working directory"
    if path.is_dir():
        return f"the {STORE_DIRNAME} folder in the working directory"
    return f"the default, as there is no {STORE_DIRNAME} folder at or above the working directory"
