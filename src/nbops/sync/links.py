"""The local id <-> remote id links of one store and one server, kept in the store's
``sync_links`` collection: ``{ref, server, kind, local, remote, digest, ...}`` with
``kind`` "run" or "model" (local ``NAME/VERSION``). A link says what was sent last, so
a second push sends nothing that did not change."""

from __future__ import annotations

from typing import Any

from ..store import Store

COLLECTION = "sync_links"


def _ref(server: str, kind: str, local: str) -> str:
    return f"{server}|{kind}|{local}"


def load(store: Store, server: str, kind: str) -> dict[str, dict[str, Any]]:
    """{local id: link} of one server and kind."""
    coll = store.collection(COLLECTION, key="ref")
    return {doc["local"]: doc for doc in coll.find(server=server, kind=kind)}


def save(store: Store, records: list[dict[str, Any]]) -> None:
    """Insert or replace links in one write."""
    if not records:
        return
    coll = store.collection(COLLECTION, key="ref")
    with store.transaction():
        for record in records:
            coll.upsert({**record, "ref": _ref(record["server"], record["kind"], record["local"])})
