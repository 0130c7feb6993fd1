"""The Store: the TinyDB database of one store folder, its tables and artifacts.

Layout of a store folder::

    .nbops/
      nbops.db          the TinyDB log (see storage.py)
      nbops.db.lock     the write lock
      artifacts/ab/...  content-addressed files
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb import TinyDB

from .._config import store_path
from .._errors import RunNotFoundError, StoreError
from .artifacts import ArtifactStore
from .storage import LogStorage
from .table import LogTable

TABLES = ("runs", "metric_steps", "datasets", "models", "events")
DB_FILE = "nbops.db"


class _DB(TinyDB):
    table_class = LogTable


class Store:
    """All persistence of one store folder. Nothing outside ``nbops.store`` knows
    how runs, metrics or files are laid out on disk."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"the store path {self.root} is a file, not a folder. "
                "Point NBOPS_STORE or nbops.set_store() at a folder."
            )
        self.db = _DB(self.root / DB_FILE, storage=LogStorage)
        self.storage: LogStorage = self.db.storage  # type: ignore[assignment]
        self.artifacts = ArtifactStore(self.root / "artifacts")

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def table(self, name: str) -> LogTable:
        return self.db.table(name)  # type: ignore[return-value]

    @property
    def runs(self) -> LogTable:
        return self.table("runs")

    @property
    def metric_steps(self) -> LogTable:
        return self.table("metric_steps")

    @property
    def datasets(self) -> LogTable:
        return self.table("datasets")

    @property
    def models(self) -> LogTable:
        return self.table("models")

    @property
    def events(self) -> LogTable:
        return self.table("events")

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Hold the store's write lock: reads inside see the latest state and all
        writes land together (use it for read-modify-write across processes)."""
        with self.storage.transaction():
            yield self

    # -- runs ----------------------------------------------------------------------
    def run_doc_id(self, run_id: str) -> int:
        doc_id = self.runs.doc_id_of("run_id", run_id)
        if doc_id is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in the store {self.root}; list runs with nbops.runs() "
                "or `nbops runs`"
            )
        return doc_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run document (a copy). Raises RunNotFoundError naming the id."""
        doc = self.runs.get(doc_id=self.run_doc_id(run_id))
        return _deep_copy(doc)

    def all_runs(self) -> list[dict[str, Any]]:
        """Live run documents, oldest first (do not modify them)."""
        return list(self.storage.live_table("runs").values())

    def insert_run(self, doc: dict[str, Any]) -> int:
        return self.runs.insert(doc)

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        with self.transaction():
            self.runs.update(fields, doc_ids=[self.run_doc_id(run_id)])

    # -- step metrics ----------------------------------------------------------------
    def append_steps(
        self, run_id: str, key: str, steps: list, values: list, timestamps: list
    ) -> None:
        """Append a batch of step values to the one document of (run, key)."""
        table = self.metric_steps
        ref = f"{run_id}/{key}"
        with self.transaction():
            doc_id = table.doc_id_of("ref", ref)
            if doc_id is None:
                table.insert(
                    {"ref": ref, "run_id": run_id, "key": key, "steps": list(steps),
                     "values": list(values), "timestamps": list(timestamps)}
                )
            else:
                table.extend(doc_id, {"steps": steps, "values": values, "timestamps": timestamps})

    def get_steps(self, run_id: str, key: str) -> dict[str, Any] | None:
        doc = self.metric_steps.get_by("ref", f"{run_id}/{key}")
        return _deep_copy(doc) if doc is not None else None

    def step_keys(self, run_id: str) -> list[str]:
        prefix = f"{run_id}/"
        index = self.storage.index("metric_steps", "ref")
        return sorted(ref[len(prefix):] for ref in index if ref.startswith(prefix))

    # -- datasets ------------------------------------------------------------------
    def get_dataset(self, digest: str) -> dict[str, Any] | None:
        doc = self.datasets.get_by("digest", digest)
        return _deep_copy(doc) if doc is not None else None

    def add_dataset(self, record: dict[str, Any]) -> bool:
        """Insert a dataset record unless its digest is known; True if inserted."""
        with self.transaction():
            if self.datasets.doc_id_of("digest", record["digest"]) is not None:
                return False
            self.datasets.insert(record)
            return True

    def add_event(self, record: dict[str, Any]) -> int:
        return self.events.insert(record)

    # -- links to remote servers (nbops.sync) ----------------------------------------
    # one document per (server, kind, local id): {ref, server, kind, local, remote, ...}
    def links(self, server: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Copies of the sync links of ``server`` (of one ``kind`` when given)."""
        docs = self.storage.live_table("sync_links").values()
        return [_deep_copy(d) for d in docs
                if d.get("server") == server and (kind is None or d.get("kind") == kind)]

    def set_links(self, records: list[dict[str, Any]]) -> None:
        """Insert or replace sync links (keyed by server, kind and local id) in one write."""
        table = self.table("sync_links")
        with self.transaction():
            for record in records:
                ref = f"{record['server']}\x1f{record['kind']}\x1f{record['local']}"
                doc = {**record, "ref": ref}
                doc_id = table.doc_id_of("ref", ref)
                if doc_id is None:
                    table.insert(doc)
                else:
                    table.update(doc, doc_ids=[doc_id])

    def add_model_version(self, record: dict[str, Any]) -> int:
        """Insert a model version record as it is (a copy pulled from another server)."""
        return self.models.insert(record)


def _deep_copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _deep_copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_deep_copy(v) for v in doc]
    return doc


_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def get_store(path: str | os.PathLike | None = None) -> Store:
    """The Store for ``path`` (default: the configured store), one per folder per process."""
    root = Path(path).expanduser().resolve() if path is not None else store_path()
    with _stores_lock:
        store = _stores.get(root)
        if store is None:
            store = _stores[root] = Store(root)
        return store
