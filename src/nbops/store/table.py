"""A TinyDB ``Table`` whose writes append single operations to a :class:`LogStorage`.

TinyDB's own Table rebuilds the whole table dict on every write and hands the
whole state to the storage. This subclass keeps TinyDB's API (insert, search,
update, remove, upsert, get, Query) but turns each write into a few log
operations inside one storage transaction, so a write costs O(what changed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tinydb.table import Document, Table

from .storage import LogStorage


class LogTable(Table):
    """A TinyDB table whose writes are single log operations in one storage transaction."""

    _storage: LogStorage

    def __init__(self, storage: LogStorage, name: str, **kwargs: Any) -> None:
        super().__init__(storage, name, **kwargs)
        self._seen_generation = -1

    # -- reads: drop the query cache when any process changed the store -------------
    def _read_table(self) -> dict[str, Mapping]:
        table = self._storage.live_table(self.name)
        if self._storage.generation != self._seen_generation:
            self._query_cache.clear()
            self._seen_generation = self._storage.generation
        return table

    def search(self, cond: Any) -> list[Document]:
        """TinyDB's search, with the query cache dropped when any process changed the store."""
        self._read_table()  # TinyDB consults its cache first: make sure it is still valid
        return super().search(cond)

    def _get_next_id(self) -> int:
        return self._storage.next_id(self.name)

    def _ids_matching(self, cond: Any, doc_ids: Iterable[int] | None) -> list[int]:
        table = self._read_table()
        if doc_ids is not None:
            return [int(i) for i in doc_ids if str(i) in table]
        if cond is None:
            return [int(i) for i in table]
        return [int(i) for i, doc in list(table.items()) if cond(doc)]

    # -- writes --------------------------------------------------------------------
    def insert(self, document: Mapping) -> int:
        """Insert one document; returns its id."""
        return self.insert_multiple([document])[0]

    def insert_multiple(self, documents: Iterable[Mapping]) -> list[int]:
        """Insert documents in one transaction; returns their ids. A Document keeps its id
        (ValueError if taken)."""
        ids = []
        with self._storage.transaction() as st:
            for document in documents:
                if not isinstance(document, Mapping):
                    raise ValueError("Document is not a Mapping")
                if isinstance(document, Document):
                    doc_id = int(document.doc_id)
                    if str(doc_id) in st.live_table(self.name):
                        raise ValueError(f"Document with ID {doc_id} already exists")
                else:
                    doc_id = self._get_next_id()
                st.queue(["put", self.name, doc_id, dict(document)])
                ids.append(doc_id)
        return ids

    def update(
        self,
        fields: Mapping | Callable[[Mapping], None],
        cond: Any = None,
        doc_ids: Iterable[int] | None = None,
    ) -> list[int]:
        """Set fields (or apply a function) on matching documents; returns their ids. A mapping
        becomes an ``upd`` of those fields only."""
        with self._storage.transaction() as st:
            ids = self._ids_matching(cond, doc_ids)
            table = st.live_table(self.name)
            for doc_id in ids:
                if callable(fields):
                    doc = dict(table[str(doc_id)])
                    fields(doc)
                    st.queue(["put", self.name, doc_id, doc])
                else:
                    st.queue(["upd", self.name, doc_id, dict(fields)])
        return ids

    def update_multiple(self, updates: Iterable[tuple[Any, Any]]) -> list[int]:
        """Several updates in one transaction; returns the ids changed."""
        updated: list[int] = []
        with self._storage.transaction():
            for fields, cond in updates:
                updated.extend(i for i in self.update(fields, cond) if i not in updated)
        return updated

    def upsert(self, document: Mapping, cond: Any = None) -> list[int]:
        """TinyDB's upsert, in one transaction."""
        with self._storage.transaction():
            return super().upsert(document, cond)

    def remove(self, cond: Any = None, doc_ids: Iterable[int] | None = None) -> list[int]:
        """Remove matching documents; returns their ids (RuntimeError without a condition: use
        truncate)."""
        if cond is None and doc_ids is None:
            raise RuntimeError("Use truncate() to remove all documents")
        with self._storage.transaction() as st:
            ids = self._ids_matching(cond, doc_ids)
            for doc_id in ids:
                st.queue(["del", self.name, doc_id])
        return ids

    def truncate(self) -> None:
        """Remove every document of the table."""
        with self._storage.transaction() as st:
            st.queue(["drop", self.name])

    def extend(self, doc_id: int, arrays: Mapping[str, list]) -> None:
        """Append values to list fields of one document, writing only the new values."""
        with self._storage.transaction() as st:
            st.queue(["ext", self.name, int(doc_id), {k: list(v) for k, v in arrays.items()}])

    def doc_id_of(self, field: str, value: Any) -> int | None:
        """O(1) lookup through a live index of ``field`` (built on first use)."""
        doc_id = self._storage.index(self.name, field).get(value)
        return int(doc_id) if doc_id is not None else None

    def get_by(self, field: str, value: Any) -> Document | None:
        """The document whose ``field`` equals ``value`` (through the live index), or None."""
        doc_id = self.doc_id_of(field, value)
        if doc_id is None:
            return None
        doc = self._read_table().get(str(doc_id))
        return Document(doc, doc_id) if doc is not None else None
