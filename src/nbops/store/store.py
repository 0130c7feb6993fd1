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
from .._errors import StoreError
from .artifacts import ArtifactStore
from .reader import copy_doc
from .runs import MIN_PREFIX, RunTables
from .storage import LogStorage
from .table import LogTable

__all__ = ["MIN_PREFIX", "TABLES", "Collection", "Store", "copy_doc", "get_store"]

TABLES = ("runs", "metric_steps", "datasets", "models", "events", "alert_rules")
RULES_TABLE = "alert_rules"
DB_FILE = "nbops.db"


class _DB(TinyDB):
    table_class = LogTable


class Store(RunTables):
    """All persistence of one store folder. Nothing outside ``nbops.store`` knows
    how runs, metrics or files are laid out on disk. Runs and step metrics: see
    :class:`nbops.store.runs.RunTables`."""

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
        self._blobs: set[tuple[str, str]] = set()  # environments/sources written already
        self._frame = None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def table(self, name: str) -> LogTable:
        """The TinyDB table ``name`` (for code inside ``nbops.store``; elsewhere use the
        typed accessors below or :meth:`collection`)."""
        return self.db.table(name)  # type: ignore[return-value]

    @property
    def runs(self) -> LogTable:
        """The runs table (TinyDB API; prefer get_run, all_runs, insert_run, update_run)."""
        return self.table("runs")

    @property
    def metric_steps(self) -> LogTable:
        """The step-metrics table (TinyDB API; prefer append_steps, get_steps)."""
        return self.table("metric_steps")

    @property
    def datasets(self) -> LogTable:
        """The datasets table (TinyDB API; prefer all_datasets, get_dataset, add_dataset)."""
        return self.table("datasets")

    @property
    def models(self) -> LogTable:
        """The models table (TinyDB API; prefer model_versions, get_model, insert_model,
        update_model)."""
        return self.table("models")

    @property
    def events(self) -> LogTable:
        """The audit-log table (TinyDB API; prefer add_event, all_events)."""
        return self.table("events")

    @property
    def generation(self) -> int:
        """A number that changes whenever the store's contents change (in this process
        or, once seen, in another): a key for caches of derived data."""
        return self.storage.generation

    # -- health ----------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """Read every line of the store and report damage; never writes. See
        :func:`nbops.store.repair.check` for the report's keys."""
        from .repair import check

        return check(self.root)

    def repair(self) -> dict[str, Any]:
        """Move damaged lines to ``quarantine/`` and keep every intact transaction;
        returns what was moved (see :func:`nbops.store.repair.repair`)."""
        from .repair import repair

        result = repair(self.root)
        self.storage.damage.clear()
        return result

    def compact(self) -> bool:
        """Fold the log into a new snapshot now (it also happens by itself as the log
        grows). Raises StoreError while the store has unrepaired damage."""
        return self.storage.compact(force=True)

    def import_tinydb(self, src: str | os.PathLike) -> dict[str, int]:
        """Copy the tables of a TinyDB JSON file into this store (documents appended
        with new ids; the file itself is only read). Returns ``{table: count}``.
        Raises StoreError if ``src`` is not a TinyDB JSON file."""
        import json

        src = Path(src)
        try:
            data = json.loads(src.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{src} is not a TinyDB JSON file ({exc})") from exc
        if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
            raise StoreError(
                f"{src} is not a TinyDB JSON file (expected {{table: {{id: document}}}})"
            )
        counts = {}
        with self.transaction():
            for table, docs in data.items():
                rows = [d for d in docs.values() if isinstance(d, dict)]
                runs = table == "_default" and rows and all("run_id" in d for d in rows)
                name = "runs" if runs else table
                self.table(name).insert_multiple(rows)
                counts[name] = len(rows)
        return counts

    @property
    def damage(self) -> list[dict[str, Any]]:
        """Damaged lines this process has come across (file, line, offset, touched)."""
        return [d.to_dict() for d in self.storage.damage.values()]

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Hold the store's write lock: reads inside see the latest state and all
        writes land together (use it for read-modify-write across processes)."""
        with self.storage.transaction():
            yield self

    # -- datasets ------------------------------------------------------------------
    def all_datasets(self) -> list[dict[str, Any]]:
        """Live dataset records, oldest first (read them, never modify them)."""
        return list(self.storage.live_table("datasets").values())

    def dataset_versions(self, name: str) -> list[dict[str, Any]]:
        """Live records of the named dataset's versions, oldest version first."""
        return sorted(
            (
                d
                for d in self.all_datasets()
                if d.get("name") == name and d.get("version") is not None
            ),
            key=lambda d: d["version"],
        )

    def get_dataset(self, digest: str) -> dict[str, Any] | None:
        """A copy of the first record with this digest, or None."""
        doc = self.datasets.get_by("digest", digest)
        return copy_doc(doc) if doc is not None else None

    def add_dataset(self, record: dict[str, Any]) -> bool:
        """Insert a dataset record unless its digest is known; True if inserted."""
        with self.transaction():
            if self.datasets.doc_id_of("digest", record["digest"]) is not None:
                return False
            self.datasets.insert(record)
            return True

    def insert_dataset(self, record: dict[str, Any]) -> None:
        """Insert a dataset record as it is (a new named version, say)."""
        self.datasets.insert(record)

    # -- models --------------------------------------------------------------------
    def all_models(self) -> list[dict[str, Any]]:
        """Live model version records, in insertion order (read them, never modify)."""
        return list(self.storage.live_table("models").values())

    def model_names(self) -> list[str]:
        """Names of registered models, sorted."""
        return sorted({d["name"] for d in self.storage.live_table("models").values()})

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        """Live records of every version of ``name``, oldest version first."""
        return sorted(
            (d for d in self.storage.live_table("models").values() if d.get("name") == name),
            key=lambda d: d["version"],
        )

    def _model_doc_id(self, name: str, version: int) -> int | None:
        doc_id = self.models.doc_id_of("ref", f"{name}/{int(version)}")
        if doc_id is not None:
            return doc_id
        for i, d in self.storage.live_table("models").items():
            if d.get("name") == name and d.get("version") == int(version):
                return int(i)
        return None

    def get_model(self, name: str, version: int) -> dict[str, Any] | None:
        """The live record of one model version, or None."""
        doc_id = self._model_doc_id(name, version)
        return None if doc_id is None else self.storage.live_table("models")[str(doc_id)]

    def insert_model(self, record: dict[str, Any]) -> dict[str, Any]:
        """Record a new model version (``name`` and ``version`` set; ``ref`` is filled
        in as ``name/version``). Raises StoreError if that version exists. Returns a copy."""
        record = {**record, "ref": record.get("ref") or f"{record['name']}/{record['version']}"}
        with self.transaction():
            if self._model_doc_id(record["name"], record["version"]) is not None:
                raise StoreError(
                    f"model {record['name']!r} version {record['version']} "
                    "is already recorded; pick the next version number"
                )
            self.models.insert(record)
        return copy_doc(record)

    def update_model(self, name: str, version: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Set fields of one model version; returns a copy of the updated record.
        Raises StoreError if the version is unknown."""
        with self.transaction():
            doc_id = self._model_doc_id(name, version)
            if doc_id is None:
                raise StoreError(f"no model {name!r} version {version} in the store")
            self.models.update(dict(fields), doc_ids=[doc_id])
            return copy_doc(self.storage.live_table("models")[str(doc_id)])

    def delete_model(self, name: str, version: int) -> bool:
        """Remove one model version's record; True if it existed."""
        with self.transaction():
            doc_id = self._model_doc_id(name, version)
            if doc_id is None:
                return False
            self.models.remove(doc_ids=[doc_id])
            return True

    # -- events (the audit log) -----------------------------------------------------
    def add_event(self, record: dict[str, Any]) -> int:
        """Append one audit-log record; returns its doc id."""
        return self.events.insert(record)

    def all_events(self) -> list[dict[str, Any]]:
        """Live audit-log records, oldest first (read them, never modify them)."""
        return list(self.storage.live_table("events").values())

    # -- alert rules ----------------------------------------------------------------
    def rules(self) -> list[dict[str, Any]]:
        """Copies of the alert rules, oldest first."""
        return self.collection(RULES_TABLE, "rule_id").all()

    def add_rule(self, rule: dict[str, Any]) -> None:
        """Store an alert rule (with its ``rule_id``)."""
        self.collection(RULES_TABLE, "rule_id").insert(rule)

    def remove_rule(self, rule_id: str) -> bool:
        """Delete one alert rule; True if it existed."""
        return self.collection(RULES_TABLE, "rule_id").remove(rule_id)

    def clear_rules(self) -> int:
        """Delete every alert rule; returns how many there were."""
        return self.collection(RULES_TABLE, "rule_id").clear()

    # -- any other table -------------------------------------------------------------
    def collection(self, name: str, key: str) -> Collection:
        """A keyed table for records a feature adds (sync mappings, gate results, ...):
        ``store.collection("sync_mappings", key="run_id").upsert({...})``."""
        return Collection(self, name, key)


_deep_copy = copy_doc  # the old private name, for code not yet moved to copy_doc


class Collection:
    """Records of one table keyed by one field (``key``): the typed way for features to
    keep their own records without knowing the file format. Reads return copies."""

    def __init__(self, store: Store, name: str, key: str) -> None:
        self.store, self.name, self.key = store, name, key

    def _table(self) -> LogTable:
        return self.store.table(self.name)

    def __len__(self) -> int:
        return len(self.store.storage.live_table(self.name))

    def all(self) -> list[dict[str, Any]]:
        """Copies of every record, oldest first."""
        return [copy_doc(d) for d in self.store.storage.live_table(self.name).values()]

    def find(self, **fields: Any) -> list[dict[str, Any]]:
        """Copies of the records whose fields equal all of ``fields``, oldest first."""
        return [
            copy_doc(d)
            for d in self.store.storage.live_table(self.name).values()
            if all(d.get(k) == v for k, v in fields.items())
        ]

    def get(self, key: Any) -> dict[str, Any] | None:
        """A copy of the record whose key field is ``key``, or None."""
        doc = self._table().get_by(self.key, key)
        return copy_doc(doc) if doc is not None else None

    def insert(self, record: dict[str, Any]) -> None:
        """Add a record; raises StoreError if one with the same key exists."""
        with self.store.transaction():
            if self._table().doc_id_of(self.key, record[self.key]) is not None:
                raise StoreError(
                    f"{self.name}: a record with {self.key}={record[self.key]!r} exists already"
                )
            self._table().insert(dict(record))

    def upsert(self, record: dict[str, Any]) -> None:
        """Add the record, or replace the one with the same key."""
        with self.store.transaction():
            doc_id = self._table().doc_id_of(self.key, record[self.key])
            if doc_id is None:
                self._table().insert(dict(record))
            else:
                self.store.storage.queue(["put", self.name, doc_id, dict(record)])

    def update(self, key: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """Set fields of the record with this key; returns a copy of it. Raises
        StoreError if there is none."""
        with self.store.transaction():
            doc_id = self._table().doc_id_of(self.key, key)
            if doc_id is None:
                raise StoreError(f"{self.name}: no record with {self.key}={key!r}")
            self._table().update(dict(fields), doc_ids=[doc_id])
            return copy_doc(self.store.storage.live_table(self.name)[str(doc_id)])

    def remove(self, key: Any) -> bool:
        """Delete the record with this key; True if it existed."""
        with self.store.transaction():
            doc_id = self._table().doc_id_of(self.key, key)
            if doc_id is None:
                return False
            self._table().remove(doc_ids=[doc_id])
            return True

    def clear(self) -> int:
        """Delete every record; returns how many there were."""
        with self.store.transaction():
            n = len(self)
            if n:
                self._table().truncate()
            return n


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
