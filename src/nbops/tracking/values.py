"""Checks on what a run records: metric values, step numbers, names of metrics, params
and tags, and when a param's value counts as changed. Each returns the value in its
stored form or raises NbopsError naming the value and the fix."""

from __future__ import annotations

from typing import Any

from .._errors import NbopsError

#: the longest metric, param or tag name (MLflow's limit too)
MAX_NAME = 250


def to_metric(value: Any) -> float | int:
    """A metric value as a plain float or int. NaN and inf are kept."""
    if type(value) is float:  # the common case, checked first
        return value
    if isinstance(value, bool):
        raise NbopsError(f"metric value {value!r} is a bool; log it as a param or tag instead")
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", ()) == ():
        value = item()
    if isinstance(value, int):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise NbopsError(
            f"metric value {value!r:.60} is not a number; log numbers as metrics and other "
            "values with log_param or set_tag"
        ) from None


_CHECKED_NAMES: set[str] = set()  # a loop logs the same few names thousands of times


def check_name(kind: str, key: Any) -> str:
    """``key`` as a metric/param/tag name, or NbopsError: a non-empty string of at most
    :data:`MAX_NAME` characters without control characters."""
    if type(key) is str and key in _CHECKED_NAMES:
        return key
    if not isinstance(key, str):
        raise NbopsError(f"{kind} name {key!r} is a {type(key).__name__}; use a string")
    if not key:
        raise NbopsError(f"a {kind} name cannot be empty; use e.g. 'accuracy'")
    if len(key) > MAX_NAME:
        raise NbopsError(
            f"{kind} name {key[:40]!r}... has {len(key)} characters; use at most {MAX_NAME}"
        )
    bad = [c for c in key if ord(c) < 32 or 127 <= ord(c) < 160]
    if bad:
        raise NbopsError(
            f"{kind} name {key!r} contains the control character {bad[0]!r}; "
            "use letters, digits, spaces and punctuation"
        )
    if len(_CHECKED_NAMES) < 10_000:
        _CHECKED_NAMES.add(key)
    return key


def to_step(key: str, step: Any) -> int:
    """``step`` as an int (integral floats and numpy integers too), else NbopsError."""
    if type(step) is int:  # the common case, checked first
        return step
    item = getattr(step, "item", None)
    if callable(item) and getattr(step, "shape", None) == ():
        step = item()
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise NbopsError(
            f"step {step!r} of metric {key!r} is not an integer; pass step=0, 1, 2, ..."
        )
    if isinstance(step, float) and not step.is_integer():
        raise NbopsError(
            f"step {step!r} of metric {key!r} is not a whole number; steps "
            "are integers (0, 1, 2, ...)"
        )
    return int(step)


def same_value(a: Any, b: Any) -> bool:
    """Whether a param's new value equals its recorded one, type included (``True == 1``
    and ``1 == 1.0`` in Python, but a param that changes type has changed)."""
    import json

    if type(a) is not type(b):
        return False
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return a == b
