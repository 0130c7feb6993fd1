"""Small helpers every layer shares: one time-stamp format, the current user, unique
names, and one way to make a value JSON-able.

Time stamps are UTC ISO 8601 with milliseconds and an explicit offset
(``2026-11-26T14:36:44.123+00:00``), so that they sort as strings and parse with
``datetime.fromisoformat``. Every record nbops writes uses :func:`utc_now`.

JSON policy (:func:`to_jsonable`): numpy and pandas scalars become Python scalars,
arrays become lists, mappings get string keys, tuples become lists, dates become ISO
strings. Floats are kept as they are, NaN and infinities included: the store's JSON
codec writes them as ``NaN``/``Infinity`` and reads them back. Where a consumer needs
strict JSON (HTTP bodies, HTML), pass ``strict=True``: NaN becomes ``None`` and an
infinity the string ``"inf"`` / ``"-inf"``.
"""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any


def utc_now() -> str:
    """The current time as UTC ISO 8601 with milliseconds, e.g. ``...T14:36:44.123+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_time(value: str) -> datetime:
    """Parse a time stamp nbops wrote (or one ending in ``Z``) into an aware datetime."""
    when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def normalise_time(value: str) -> str:
    """Any ISO time stamp rewritten in :func:`utc_now`'s format (for sorting as strings)."""
    return parse_time(value).astimezone(timezone.utc).isoformat(timespec="milliseconds")


def current_user() -> str:
    """The login name of whoever runs this process; ``$USER`` or ``"unknown"`` when the
    system has no passwd entry for it (as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises several kinds here
        return os.environ.get("USER") or "unknown"


def unique_name(name: str, taken: Iterable[str] | Callable[[str], bool]) -> str:
    """``name`` itself when free, else ``stem-2<suffix>``, ``stem-3<suffix>``, ... (the
    suffix is a file extension, kept at the end). ``taken`` is a collection of names in
    use or a predicate saying whether a name is in use."""
    used = taken if callable(taken) else set(taken).__contains__
    if not used(name):
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or "/" in ext:
        stem, suffix = name, ""
    else:
        suffix = "." + ext
    k = 2
    while used(f"{stem}-{k}{suffix}"):
        k += 1
    return f"{stem}-{k}{suffix}"


def plain_scalar(value: Any) -> Any:
    """A numpy (or other 0-d array) scalar as the Python scalar it holds; any other value
    is returned as it is."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value


def to_jsonable(value: Any, strict: bool = False) -> Any:
    """``value`` as plain JSON types (see the module docstring for the NaN policy).
    Objects with no JSON form are turned into their ``str``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if strict and not math.isfinite(value):
            return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, strict) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, strict) for v in value]
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return None if str(value) == "NaT" else isoformat()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars, pandas objects
        return to_jsonable(tolist(), strict)
    item = getattr(value, "item", None)
    if callable(item):
        return to_jsonable(item(), strict)
    return str(value)
