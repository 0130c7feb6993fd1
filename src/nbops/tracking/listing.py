"""Runs as plain data, one page at a time: what the JupyterLab sidebar and other UIs
list. ``nbops.runs()`` builds a DataFrame of every run for analysis; this reads only
the run documents and copies only the requested page, so it stays fast at 10,000 runs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .._errors import NbopsError
from ..store import get_store
from .run import STATUSES

MAX_PAGE = 500
SUMMARY_FIELDS = (
    "run_id",
    "name",
    "experiment",
    "parent_id",
    "status",
    "start_time",
    "end_time",
    "duration",
)


def _check_since(since: str) -> str:
    """The time in the form run start times are stored in (UTC, milliseconds), so
    that plain string comparison orders them."""
    try:
        when = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise NbopsError(
            f"since={since!r} is not an ISO time; use e.g. '2024-05-01T12:00:00+00:00'"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def run_page(
    limit: int = 50,
    offset: int = 0,
    experiment: str | None = None,
    status: str | None = None,
    since: str | None = None,
    parent: str | None = None,
) -> dict[str, Any]:
    """One page of runs, newest first, as plain data::

        {"total": matching runs, "offset": offset, "limit": limit,
         "runs": [{run_id, name, experiment, parent_id, status, start_time, end_time,
                   duration, params, metrics, tags}, ...]}

    ``since`` keeps runs started strictly after an ISO time (start times are
    recorded to the millisecond; a time without a zone is UTC); ``parent`` keeps the
    children of one run (its id or a unique prefix), or with ``parent="none"`` only
    top-level runs. Raises NbopsError for a bad limit, offset, status or time, and
    RunNotFoundError for an unknown parent.
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise NbopsError(f"limit={limit!r} is out of range; use 1 to {MAX_PAGE} runs a page")
    if not isinstance(offset, int) or offset < 0:
        raise NbopsError(f"offset={offset!r} must be an integer >= 0")
    if status is not None and status not in STATUSES:
        raise NbopsError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if since is not None:
        since = _check_since(since)
    top_level = parent is not None and parent.lower() == "none"
    store = get_store()
    if parent is not None and not top_level:
        parent = store.resolve_run_id(parent)  # a unique prefix names the parent too

    docs = store.all_runs()  # live documents, oldest first; read, never modified
    if experiment is None and status is None and since is None and parent is None:
        total = len(docs)
        newest_first = docs[::-1]
        page = newest_first[offset : offset + limit]
    else:
        matching = []
        for doc in reversed(docs):
            if experiment is not None and doc.get("experiment") != experiment:
                continue
            if status is not None and store.status_of(doc) != status:
                continue
            if since is not None and (doc.get("start_time") or "") <= since:
                continue
            if top_level and doc.get("parent_id"):
                continue
            if parent is not None and not top_level and doc.get("parent_id") != parent:
                continue
            matching.append(doc)
        total = len(matching)
        page = matching[offset : offset + limit]
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "runs": [_summary(doc, store.status_of(doc)) for doc in page],
    }


def _summary(doc: dict[str, Any], status: str) -> dict[str, Any]:
    out = {k: doc.get(k) for k in SUMMARY_FIELDS}
    out["status"] = status  # a run whose writer died reads as KILLED
    for section in ("params", "metrics", "tags"):
        out[section] = dict(doc.get(section) or {})
    return out
