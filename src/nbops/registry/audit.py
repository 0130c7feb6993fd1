"""The audit log: every registry change is one event (who, when, name, version, from,
to, why) in the store's ``events`` table, written by :func:`record_event` and read back
by :func:`history`. Gate evaluations, forced overrides, retraining and canary steps
are events too, so one table tells the whole story of a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._util import current_user, utc_now
from ..store import Store, get_store
from .naming import unknown_model, versions_of

if TYPE_CHECKING:
    import pandas as pd

EVENT_SOURCE = "registry"
HISTORY_COLUMNS = ["time", "user", "name", "action", "version", "from", "to", "alias", "reason"]


def record_event(
    store: Store,
    action: str,
    name: str,
    version: int | None,
    from_: Any,
    to: Any,
    reason: str | None,
    **extra: Any,
) -> None:
    """Append one audit-log entry (who, when, name, version, from, to, reason and any
    ``extra`` fields) to ``events``; serving's canary steps and the retrain loop use it
    too. Returns nothing; raises StoreError when the store cannot be written."""
    store.add_event(
        {
            "source": EVENT_SOURCE,
            "action": action,
            "who": current_user(),
            "when": utc_now(),
            "name": name,
            "version": version,
            "from": from_,
            "to": to,
            "reason": reason,
            **extra,
        }
    )


def events(store: Store, name: str | None = None) -> list[dict[str, Any]]:
    """Registry events of model ``name`` (every model when None), oldest first."""
    return [
        e
        for e in store.all_events()
        if e.get("source") == EVENT_SOURCE and (name is None or e.get("name") == name)
    ]


def model_history(name: str | None = None) -> pd.DataFrame:
    """Every registry event of model ``name`` (all models if None), oldest first:
    DataFrame(time, user, name, action, version, from, to, alias, reason). Raises
    RegistryError for a name that has neither versions nor events."""
    import pandas as pd

    store = get_store()
    found = events(store, name)
    if name is not None and not found and not versions_of(store, name):
        raise unknown_model(store, name)
    rows = [
        {
            "time": e.get("when"),
            "user": e.get("who"),
            "name": e.get("name"),
            "action": e.get("action"),
            "version": e.get("version"),
            "from": e.get("from"),
            "to": e.get("to"),
            "alias": e.get("alias"),
            "reason": e.get("reason"),
        }
        for e in found
    ]
    # object columns keep None as None (pandas 3 would turn a str column's None into NaN)
    frame = pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=object) for c in HISTORY_COLUMNS}
    )
    frame["version"] = pd.to_numeric(frame["version"]).astype("Int64")
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame
