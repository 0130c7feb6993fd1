"""Canary events of a service folder -> the registry's audit log.

``serve.py`` appends every canary step, rollback and promotion to
``logs/events.jsonl`` (it runs without nbops). When nbops and the store are
reachable, the service calls :func:`sync_events` in the background; otherwise
:func:`nbops.monitor` (or this function) copies them later. Each event is written
once: its id is recorded in the audit event. A promotion also moves the candidate
to Production (archiving the previous Production version).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import registry
from .._errors import GateError
from ..store import get_store


def read_events(service_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The canary events of a service folder, oldest first."""
    path = Path(service_path) / "logs" / "events.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line while the service writes
                continue
    return out


def sync_events(service_path: str | os.PathLike, store: str | os.PathLike | None = None) -> int:
    """Copy the folder's canary events not yet in the store's audit log; returns how
    many were copied. A ``canary_promoted`` event moves the candidate to Production."""
    st = get_store(store)
    events = read_events(service_path)
    if not events:
        return 0
    copied = 0
    with st.transaction():
        seen = {doc.get("canary_event") for doc in st.all_events() if doc.get("canary_event")}
        for ev in events:
            if ev.get("id") in seen:
                continue
            registry.record_event(
                st,
                ev["kind"],
                ev["model_name"],
                ev.get("candidate"),
                ev.get("from_share"),
                ev.get("to_share"),
                ev.get("reason"),
                canary_event=ev["id"],
                stable=ev.get("stable"),
                stats=ev.get("stats"),
                service=str(Path(service_path).resolve()),
            )
            copied += 1
            if ev["kind"] == "canary_promoted":
                _promote(st, ev)
    return copied


def _promote(store: Any, ev: dict[str, Any]) -> None:
    from .._config import using_store

    # registry functions use the store of the call: this one, for this call only
    with using_store(store.root):
        try:
            registry.transition(
                ev["model_name"],
                ev["candidate"],
                "Production",
                reason=f"canary promotion: {ev.get('reason')}",
            )
        except GateError as exc:  # the registry keeps its Production; the log says why
            registry.record_event(
                store,
                "promotion_blocked",
                ev["model_name"],
                ev["candidate"],
                None,
                "Production",
                str(exc).splitlines()[0],
                results=exc.results,
            )
