"""Runs and their step metrics in the store: the accessors and the writer's fast path.

Document ids of runs and step histories are derived from their natural keys (the
run id; ``run_id/metric``), so a process that only tracks runs appends to the log
without reading anything first: the cost of a tracked run does not grow with the
store. An update writes only what changed (``upd`` for top-level fields, ``mrg`` for
keys of params, metrics and tags, ``ext`` for new steps).

Environments and code records (cell source, notebook, git commit) repeat across
runs; they are stored once, by digest, in the ``environments`` and ``code`` tables,
and a run refers to them (``env_ref``, ``code_ref``). :meth:`get_run` puts them back,
so readers see the same run record as before.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .._errors import RunNotFoundError
from . import procs
from .lookup import field_values, point_get
from .reader import copy_doc

if TYPE_CHECKING:
    from .storage import LogStorage
    from .table import LogTable

#: the shortest run id prefix that resolves to a run (``nbops show 3fa9c1``)
MIN_PREFIX = 6


def key_id(key: str) -> int:
    """The document id of a record with natural key ``key`` (64-bit hash, above the
    ids TinyDB's counter hands out)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 2) | (1 << 61)


def digest_of(value: Any) -> str:
    """A short sha256 of a JSON-able value (of a string's bytes for a string): the key of
    environments and code records."""
    from .logfile import dumps

    text = dumps(value) if not isinstance(value, str) else value.encode()
    return hashlib.sha256(text).hexdigest()[:20]


class RunTables:
    """The runs and metric-steps part of :class:`nbops.store.Store`."""

    storage: LogStorage
    root: Any
    _blobs: set

    def table(self, name: str) -> LogTable:
        """The TinyDB table ``name`` (provided by Store)."""
        raise NotImplementedError

    # -- ids ---------------------------------------------------------------------
    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the run ``run_id`` names: the id itself, or a unique prefix of
        at least :data:`MIN_PREFIX` characters. Raises RunNotFoundError naming the id
        (and, for an ambiguous prefix, the candidates)."""
        if not isinstance(run_id, str) or not run_id:
            raise RunNotFoundError(
                f"run id {run_id!r} is not a run id; list runs with nbops.runs() or `nbops runs`"
            )
        if not self.storage.loaded("runs"):  # answer without parsing every run
            found = self._lookup(run_id)
            if found is not None:
                return found["run_id"]
            if len(run_id) >= MIN_PREFIX:
                hits = [
                    d
                    for d in (
                        self._lookup(c)
                        for c in field_values(self.storage, "runs", "run_id", run_id)
                    )
                    if d is not None
                ]
                if len(hits) == 1:
                    return hits[0]["run_id"]
        index = self.storage.index("runs", "run_id")
        if run_id in index:
            return run_id
        if len(run_id) >= MIN_PREFIX:
            matches = sorted(k for k in index if isinstance(k, str) and k.startswith(run_id))
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                shown = ", ".join(matches[:10]) + (" ..." if len(matches) > 10 else "")
                raise RunNotFoundError(
                    f"run id prefix {run_id!r} is ambiguous: {len(matches)} runs start with it "
                    f"({shown}); give more characters"
                )
        hint = (
            ""
            if len(run_id) >= MIN_PREFIX
            else (f" (a prefix needs at least {MIN_PREFIX} characters)")
        )
        raise RunNotFoundError(
            f"no run {run_id!r} in the store {self.root}{hint}; list runs with nbops.runs() "
            "or `nbops runs`"
        )

    def _lookup(self, run_id: str) -> dict[str, Any] | None:
        """The run with exactly this id, found by its derived document id without
        loading the table (None if not there or stored under another id)."""
        doc = point_get(self.storage, "runs", str(key_id(run_id)))
        return doc if doc is not None and doc.get("run_id") == run_id else None

    def run_doc_id(self, run_id: str) -> int:
        """The TinyDB document id of a run (full id or unique prefix)."""
        return int(self.storage.index("runs", "run_id")[self.resolve_run_id(run_id)])

    # -- reading -------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any]:
        """A copy of the run's record (full id or unique prefix of at least 6 characters),
        its environment and cell source included; a run whose writer died reads as
        KILLED. Raises RunNotFoundError naming the id, or the candidates of an
        ambiguous prefix."""
        full = self.resolve_run_id(run_id)
        if not self.storage.loaded("runs"):
            doc = self._lookup(full)
            if doc is not None:
                return self._expand(doc)
        return self._expand(self.storage.live_table("runs")[str(self.run_doc_id(full))])

    def find_run(self, run_id: str) -> dict[str, Any] | None:
        """A copy of the run with exactly this id (as :meth:`get_run`), or None."""
        if not self.storage.loaded("runs"):
            doc = self._lookup(run_id)
            if doc is not None:
                return self._expand(doc)
        doc_id = self.storage.index("runs", "run_id").get(run_id)
        if doc_id is None:
            return None
        return self._expand(self.storage.live_table("runs")[doc_id])

    def _expand(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = copy_doc(doc)
        for field, table in (("env", "environments"), ("code", "code")):
            ref = out.pop(f"{field}_ref", None)
            if ref is not None:
                blob = point_get(self.storage, table, str(key_id(ref)))
                out[field] = blob[field] if blob else {}
        if procs.orphaned(out):
            out["status"] = "KILLED"
            out["error"] = out.get("error") or {
                "type": "Orphaned",
                "message": f"the process that ran it (pid {out['pid']} on "
                f"{out['host']}) ended without ending the run",
                "traceback": "",
            }
        return out

    def status_of(self, doc: dict[str, Any]) -> str:
        """The status a run record reads as: KILLED for a RUNNING run whose writer on
        this host died (or whose pid now belongs to another process)."""
        return "KILLED" if procs.orphaned(doc) else doc.get("status")

    def all_runs(self) -> list[dict[str, Any]]:
        """Run records, oldest first, with ``env`` and ``code`` in place: live records
        shared with the store, so read them and never modify them (:meth:`get_run`
        gives a copy to change)."""
        st = self.storage
        docs = st.live_table("runs")
        cached = getattr(self, "_all_runs", None)
        if cached is not None and cached[0] == st.generation:
            return list(cached[1])
        blobs = {}
        out = []
        for doc in docs.values():
            if "env_ref" in doc or "code_ref" in doc:
                full = {k: v for k, v in doc.items() if k not in ("env_ref", "code_ref")}
                for field, table in (("env", "environments"), ("code", "code")):
                    ref = doc.get(f"{field}_ref")
                    if ref is not None:
                        if table not in blobs:
                            blobs[table] = st.live_table(table)
                        blob = blobs[table].get(str(key_id(ref)))
                        full[field] = blob[field] if blob else {}
                doc = full
            out.append(doc)
        self._all_runs = (st.generation, out)
        return list(out)

    def run_ids(self) -> list[str]:
        """Every run id, oldest first."""
        return [d["run_id"] for d in self.storage.live_table("runs").values()]

    def runs_frame(self) -> Any:
        """Every run as one DataFrame row, oldest first, indexed by document id:
        ``run_id, name, experiment, status, start_time, end_time, duration, parent_id,
        host, pid, proc, params.*, metrics.*, tags.*``. Kept up to date incrementally;
        treat it as read-only (copy before changing it)."""
        from .frame import RunsFrame

        if getattr(self, "_frame", None) is None:
            self._frame = RunsFrame(self.storage)
        return self._frame.get()

    def runs_table(self, experiment: str | None = None, status: str | None = None) -> Any:
        """A new DataFrame of runs, newest first: ``run_id, name, experiment, status,
        start_time, end_time, duration, parent_id``, then ``params.*``, ``metrics.*``,
        ``tags.*`` (sorted). Runs whose writer died show as KILLED. Filtered by
        experiment and status when given; then only columns some row fills are kept."""
        from .frame import BASE

        frame = self.runs_frame()
        killed = []
        if len(frame):
            running = frame.index[(frame["status"] == "RUNNING").to_numpy()]
            for key in running:
                pid = frame.at[key, "pid"]
                doc = {
                    "status": "RUNNING",
                    "host": frame.at[key, "host"],
                    "pid": int(pid) if pid == pid and pid is not None else None,
                    "proc": frame.at[key, "proc"],
                }
                if procs.orphaned(doc):
                    killed.append(key)
        sections = (
            sorted(c for c in frame.columns if c.startswith("params."))
            + sorted(c for c in frame.columns if c.startswith("metrics."))
            + sorted(c for c in frame.columns if c.startswith("tags."))
        )
        mask = None
        if experiment is not None:
            mask = (frame["experiment"] == experiment).to_numpy()
        if status is not None:
            effective = frame["status"].astype(object).copy()
            if killed:
                effective.loc[killed] = "KILLED"
            is_status = (effective == status).to_numpy()
            mask = is_status if mask is None else (mask & is_status)
        out = frame[BASE + sections] if mask is None else frame.loc[mask, BASE + sections]
        if killed:
            out = out.copy()
            keep = [k for k in killed if k in out.index]
            if keep:
                out["status"] = out["status"].astype(object)
                out.loc[keep, "status"] = "KILLED"
        if mask is not None and sections:
            empty = [c for c in sections if out[c].isna().all()]
            out = out.drop(columns=empty)
        return out.iloc[::-1].reset_index(drop=True)

    # -- writing -------------------------------------------------------------------
    def insert_run(self, doc: dict[str, Any]) -> int:
        """Record a new run document (it must carry a ``run_id``); its environment and
        cell source are stored once by digest. Returns its doc id. Appends without
        reading the store."""
        doc = dict(doc)
        doc_id = key_id(doc["run_id"])
        with self.storage.transaction() as st:
            self._by_digest(doc, update=False)
            st.queue(["put", "runs", doc_id, doc])
        return doc_id

    def _by_digest(self, fields: dict[str, Any], update: bool = True) -> None:
        # env and code go to their tables once; the run keeps a reference
        for field, table in (("env", "environments"), ("code", "code")):
            if field not in fields:
                continue
            value = fields[field]
            if isinstance(value, dict) and value:
                ref = digest_of(value)
                self._blob(table, ref, {"digest": ref, field: fields.pop(field)})
                fields[f"{field}_ref"] = ref
            elif update:  # kept in the run as given; an older reference no longer applies
                fields[f"{field}_ref"] = None

    def _blob(self, table: str, ref: str, record: dict[str, Any]) -> None:
        if (table, ref) in self._blobs:
            return
        if self.storage.loaded(table) and str(key_id(ref)) in self.storage.live_table(table):
            self._blobs.add((table, ref))
            return
        self.storage.queue(["put", table, key_id(ref), record])
        self._blobs.add((table, ref))

    def write_run(
        self,
        run_id: str,
        fields: dict[str, Any] | None = None,
        merge: dict[str, dict[str, Any]] | None = None,
        steps: dict[str, tuple[list, list, list]] | None = None,
    ) -> None:
        """The tracker's write: set top-level ``fields``, merge keys into dict fields
        (``{"params": {...}}``) and append step batches ``{key: (steps, values,
        stamps)}`` of a run this process inserted, in one transaction, without reading
        the store. A ``code`` or ``env`` field is stored by digest as on insert."""
        doc_id = key_id(run_id)
        with self.storage.transaction() as st:
            fields = dict(fields or {})
            self._by_digest(fields)
            for key, (s, v, t) in (steps or {}).items():
                self._queue_steps(run_id, key, s, v, t)
            if fields:
                st.queue(["upd", "runs", doc_id, fields])
            merge = {k: v for k, v in (merge or {}).items() if v}
            if merge:
                st.queue(["mrg", "runs", doc_id, merge])

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        """Set top-level fields of a run (full id or unique prefix). Raises
        RunNotFoundError for an unknown run."""
        with self.storage.transaction() as st:
            fields = dict(fields)
            self._by_digest(fields)  # a new env or code record goes by digest too
            st.queue(["upd", "runs", self.run_doc_id(run_id), fields])

    # -- step metrics ----------------------------------------------------------------
    def _queue_steps(
        self, run_id: str, key: str, steps: list, values: list, timestamps: list
    ) -> None:
        ref = f"{run_id}/{key}"
        doc_id = key_id(ref)
        if self.storage.loaded("metric_steps"):
            known = self.storage.index("metric_steps", "ref").get(ref)
            doc_id = int(known) if known is not None else doc_id
        self.storage.queue(
            [
                "ext",
                "metric_steps",
                doc_id,
                {"steps": list(steps), "values": list(values), "timestamps": list(timestamps)},
                {"ref": ref, "run_id": run_id, "key": key},
            ]
        )

    def append_steps(
        self, run_id: str, key: str, steps: list, values: list, timestamps: list
    ) -> None:
        """Append a batch of step values to the one document of (run, key)."""
        with self.storage.transaction():
            self._queue_steps(run_id, key, steps, values, timestamps)

    def get_steps(self, run_id: str, key: str) -> dict[str, Any] | None:
        """A copy of ``{steps, values, timestamps, ...}`` of one metric of one run, or None."""
        ref = f"{run_id}/{key}"
        doc = point_get(self.storage, "metric_steps", str(key_id(ref)))
        if doc is not None or (
            not self.storage.loaded("metric_steps")
            and ref not in field_values(self.storage, "metric_steps", "ref", ref)
        ):
            return doc
        doc_id = self.storage.index("metric_steps", "ref").get(ref)  # an older id scheme
        doc = self.storage.live_table("metric_steps").get(doc_id) if doc_id else None
        return copy_doc(doc) if doc is not None else None

    def step_keys(self, run_id: str) -> list[str]:
        """Names of the metrics of a run that have a step history."""
        prefix = f"{run_id}/"
        index = self.storage.index("metric_steps", "ref")
        return sorted(ref[len(prefix) :] for ref in index if ref.startswith(prefix))
