"""``Client(store)``: the nbops API bound to one store.

The module functions (``nbops.start_run``, ``nbops.runs``, ``nbops.register``, ...) use
the default store (see :mod:`nbops._config`: ``set_store``, ``$NBOPS_STORE``, the
nearest ``.nbops/``). Code that needs another store, say a script that reads a team
member's store beside its own, makes a client for it instead of changing the default::

    theirs = nbops.Client("/shared/alice/.nbops")
    theirs.runs()                      # alice's runs
    nbops.runs()                       # still yours
    theirs.transition("wine", 3, "Production", reason="reviewed")

Every public function of ``nbops`` is a method of a client, with the same signature and
docstring. A call runs with the client's store chosen for that call only
(:func:`nbops._config.using_store`, a context variable), so clients in different
threads or asyncio tasks never see each other's store, and nothing global changes.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._config import store_path, using_store
from ._errors import NbopsError

# names of `nbops` that are not store operations, so not client methods
_NOT_METHODS = {"set_store", "Client", "Run", "DriftReport"}


def _api_table() -> dict[str, tuple[str, str]]:
    # the public face's table of lazy names is the one list of API functions
    nbops = importlib.import_module("nbops")
    return nbops._LAZY


class Client:
    """The nbops API bound to the store at ``store`` (a folder; default: the store the
    module functions use right now, fixed at creation). Methods have the names,
    arguments and results of the ``nbops`` functions. Raises ``AttributeError`` for
    a name that is not an API function."""

    def __init__(self, store: str | os.PathLike | None = None) -> None:
        self.store_path = Path(store).expanduser().resolve() if store else store_path()

    def __repr__(self) -> str:
        return f"nbops.Client({str(self.store_path)!r})"

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name in _NOT_METHODS:
            raise AttributeError(name)
        try:
            module, attr = _api_table()[name]
        except KeyError:
            raise AttributeError(
                f"nbops.Client has no method {name!r}; see dir(client) for the API"
            ) from None
        target = getattr(importlib.import_module(module), attr)
        if isinstance(target, type) or not callable(target):
            raise AttributeError(f"{name!r} is not an API function, use nbops.{name}")
        root = self.store_path

        @functools.wraps(target)
        def method(*args: Any, **kwargs: Any) -> Any:
            with using_store(root):
                return target(*args, **kwargs)

        setattr(self, name, method)  # later calls skip the lookup
        return method

    def __dir__(self) -> list[str]:
        names = [n for n in _api_table() if n not in _NOT_METHODS]
        return sorted({*names, "store_path"})

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` with this client's store as the store of every
        nbops call it makes (for helpers of your own that call ``nbops`` functions)."""
        if not callable(fn):
            raise NbopsError(f"Client.run needs a function, got {type(fn).__name__}")
        with using_store(self.store_path):
            return fn(*args, **kwargs)
