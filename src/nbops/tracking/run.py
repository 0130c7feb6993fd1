"""A run: start, log, end (FINISHED / FAILED / KILLED).

A run is written to the store twice in the common case: once when it starts (so a
crash still leaves a trace) and once when it ends, with everything logged in
between. Step metrics are buffered and appended in batches to one document per
run and key.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from .._errors import NbopsError, StoreError
from .._util import utc_now
from ..store import Store, get_store, safe_name
from ..store.procs import identity
from . import active
from .values import check_name, same_value, to_metric, to_step

STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
STEP_FLUSH_COUNT = 1000  # buffered step values before a write
STEP_FLUSH_SECONDS = 2.0


def new_run_id() -> str:
    """A new run id: 12 random hex characters."""
    return uuid.uuid4().hex[:12]


_unsaved: list[Run] = []  # runs whose end could not be written yet (retryable)


def unsaved_runs() -> list[Run]:
    """Runs of this process whose end failed to reach the store, oldest first: call
    their ``end()`` again (``nbops.end_run()`` does) once the store is writable."""
    return list(_unsaved)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel() -> int:
    """The ``stacklevel`` for warnings.warn (called from the function that warns) that
    points at the first frame outside nbops: the user's line, not ours."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def to_param(key: str, value: Any) -> Any:
    """A param value that JSON can hold; anything else becomes its repr, with a warning."""
    if _jsonable(value):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    warnings.warn(
        f"nbops: param {key!r} of type {type(value).__name__} is not JSON-able; stored as its repr",
        stacklevel=user_stacklevel(),
    )
    return repr(value)


def _jsonable(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return True
    if depth > 4:
        return False
    if isinstance(value, (list, tuple)):
        return all(_jsonable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in value.items())
    return False


class Run:
    """One tracked run. Use as a context manager, or call :meth:`end`.

    ``with nbops.start_run(name="rf") as run: run.log_metric("acc", 0.9)``
    """

    def __init__(
        self,
        name: str | None = None,
        experiment: str | None = None,
        tags: dict[str, Any] | None = None,
        parent_id: str | None = None,
        store: Store | None = None,
        code: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
    ) -> None:
        self.store = store or get_store()
        self.run_id = new_run_id()
        self.name = name or f"run-{self.run_id[:6]}"
        self.experiment = experiment or "default"
        self.parent_id = parent_id
        self.status = "RUNNING"
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.tags: dict[str, Any] = {str(k): str(v) for k, v in (tags or {}).items()}
        self.inputs: list[str] = []
        self.artifacts: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        self.start_time = utc_now()
        self._steps: dict[str, tuple[list, list, list]] = {}
        self._step_count = 0
        self._last_flush = time.monotonic()
        self._next_step: dict[str, int] = {}
        self._single: dict[str, tuple[float, float]] = {}
        self._extra: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._ended = False
        self._closing: str | None = None  # the status of an end that failed to write
        self._closing_error: BaseException | str | None = None
        # what the store holds already: a write sends only what differs
        self._written: dict[str, Any] = {
            "params": {},
            "metrics": {},
            "tags": dict(self.tags),
            "inputs": [],
            "artifacts": [],
            "extra": {},
        }
        self.store.insert_run(
            {
                "run_id": self.run_id,
                "name": self.name,
                "experiment": self.experiment,
                "parent_id": parent_id,
                "status": "RUNNING",
                "start_time": self.start_time,
                "end_time": None,
                "duration": None,
                "params": {},
                "metrics": {},
                "tags": dict(self.tags),
                "code": code or {},
                "env": env or {},
                "inputs": [],
                "artifacts": [],
                "error": None,
                **identity(),  # host, pid, process start: a dead writer's run reads KILLED
            }
        )

    def __repr__(self) -> str:
        return f"<nbops.Run {self.run_id} {self.name!r} {self.status}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._ended:
            return
        if exc_type is None:
            self.end("FINISHED")
            return
        status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        try:
            self.end(status, error=exc)
        except NbopsError as failure:  # the user's exception wins; ours goes with it
            message = (
                f"nbops: run {self.run_id} could not be saved as {status}: {failure} "
                "It keeps everything it logged: call nbops.end_run() to retry."
            )
            warnings.warn(message, stacklevel=2)
            if hasattr(exc, "add_note"):
                exc.add_note(message)

    # -- logging -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closing is not None and not self._ended:
            raise NbopsError(
                f"run {self.run_id} is ending ({self._closing}) but its end could not be "
                "saved yet; nothing more can be logged to it. Retry with nbops.end_run() "
                "or run.end()."
            )
        if self._ended:
            raise NbopsError(
                f"run {self.run_id} has already ended ({self.status}); start a new run "
                "with nbops.start_run()"
            )

    def log_param(self, key: str, value: Any) -> None:
        """Record one param (see log_params)."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record params. Re-logging a key with a different value is refused, so what a
        run recorded is never silently overwritten."""
        self._check_open()
        with self._lock:
            for key, value in params.items():
                key = check_name("param", key)
                value = to_param(key, value)
                if key in self.params and not same_value(self.params[key], value):
                    raise NbopsError(
                        f"param {key!r} of run {self.run_id} is already {self.params[key]!r}; "
                        f"it cannot change to {value!r}. Log it under another name or start "
                        "a new run."
                    )
                self.params[key] = value

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """Record a metric; the run keeps the last value. A metric logged with ``step``
        or more than once also gets a history (see ``nbops.metric_history``)."""
        self._check_open()
        key = check_name("metric", key)
        value = to_metric(value)
        if step is not None:
            step = to_step(key, step)
        with self._lock:
            if step is None and key not in self.metrics:
                self.metrics[key] = value  # a plain single value: no history document
                self._single[key] = (value, round(time.time(), 3))
                return
            if key in self._single:  # the first value becomes step 0 of the history
                first, stamp = self._single.pop(key)
                self._buffer(key, 0, first, stamp)
                self._next_step[key] = 1
            if step is None:
                step = self._next_step.get(key, 0)
            self._next_step[key] = max(self._next_step.get(key, 0), step + 1)
            self.metrics[key] = value
            self._buffer(key, step, value, round(time.time(), 3))

    def _buffer(self, key: str, step: int, value: float, stamp: float) -> None:
        steps, values, stamps = self._steps.setdefault(key, ([], [], []))
        steps.append(step)
        values.append(value)
        stamps.append(stamp)
        self._step_count += 1
        if (
            self._step_count >= STEP_FLUSH_COUNT
            or time.monotonic() - self._last_flush > STEP_FLUSH_SECONDS
        ):
            self.flush()

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Record several metrics at one ``step`` (see log_metric)."""
        for key, value in metrics.items():
            self.log_metric(key, value, step=step)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag: a string label that may change later. NbopsError for a bad name or an
        ended run."""
        self._check_open()
        self.tags[check_name("tag", key)] = str(value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags (see set_tag)."""
        for key, value in tags.items():
            self.set_tag(key, value)

    def add_input(self, digest: str) -> None:
        """List a dataset digest among the run's inputs (once)."""
        if digest not in self.inputs:
            self.inputs.append(digest)

    def log_artifact(
        self, path: str | os.PathLike, name: str | None = None, kind: str = "file"
    ) -> dict[str, Any]:
        """Copy a file into the store (content-addressed) and list it on the run.
        Returns ``{name, sha256, size, kind}``."""
        self._check_open()
        path = Path(path)
        name = safe_name(name if name is not None else path.name)
        sha, size = self.store.artifacts.put_file(path)
        return self._add_artifact(name, sha, size, kind)

    def log_artifact_bytes(self, data: bytes, name: str, kind: str = "file") -> dict[str, Any]:
        """Store bytes as an artifact named ``name`` on the run; returns ``{name, sha256, size,
        kind}``. ArtifactError for an unsafe or over-long name."""
        self._check_open()
        name = safe_name(name)
        sha, size = self.store.artifacts.put_bytes(data)
        return self._add_artifact(name, sha, size, kind)

    def _add_artifact(self, name: str, sha: str, size: int, kind: str) -> dict[str, Any]:
        with self._lock:
            taken = {a["name"]: a for a in self.artifacts}
            if name in taken and taken[name]["sha256"] == sha:
                return taken[name]
            if name in taken:  # other content under the same name: keep both
                stem, suffix = os.path.splitext(name)
                k = 1
                while f"{stem}-{k}{suffix}" in taken:
                    k += 1
                warnings.warn(
                    f"nbops: run {self.run_id} already has an artifact {name!r} with other "
                    f"content; this one is stored as '{stem}-{k}{suffix}'",
                    stacklevel=user_stacklevel(),
                )
                name = f"{stem}-{k}{suffix}"
            record = {"name": name, "sha256": sha, "size": size, "kind": kind}
            self.artifacts.append(record)
        return record

    # -- writing -------------------------------------------------------------------
    def flush(self) -> None:
        """Write buffered step metrics and the run's current fields to the store."""
        with self._lock:
            self._step_count = 0
            self._last_flush = time.monotonic()
            self._write({})

    def _write(self, final: dict[str, Any]) -> None:
        """Write what changed since the last write (and ``final`` fields). On failure
        the buffered steps stay buffered, so a retry writes them all."""
        buffered = self._steps
        merge: dict[str, dict[str, Any]] = {}
        for section in ("params", "metrics", "tags"):
            now, was = getattr(self, section), self._written[section]
            merge[section] = {
                k: v for k, v in now.items() if k not in was or not same_value(was[k], v)
            }
        fields = {
            k: v
            for k, v in (
                ("inputs", list(self.inputs)),
                ("artifacts", [dict(a) for a in self.artifacts]),
            )
            if self._written.get(k) != v
        }
        fields.update(
            {
                k: v
                for k, v in self._extra.items()
                if k not in self._written.get("extra", {})
                or not same_value(self._written["extra"][k], v)
            }
        )
        fields.update(final)
        self._steps = {}
        try:
            self.store.write_run(self.run_id, fields, merge, buffered)
        except BaseException:
            for key, (steps, values, stamps) in self._steps.items():  # logged meanwhile
                old = buffered.setdefault(key, ([], [], []))
                old[0].extend(steps)
                old[1].extend(values)
                old[2].extend(stamps)
            self._steps = buffered
            raise
        for section, changed in merge.items():
            self._written[section] = {**self._written[section], **changed}
        for k in ("inputs", "artifacts"):
            if k in fields:
                self._written[k] = fields[k]
        self._written["extra"] = {
            **self._written.get("extra", {}),
            **{k: fields[k] for k in self._extra if k in fields},
        }

    def _fields(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "inputs": list(self.inputs),
            "artifacts": [dict(a) for a in self.artifacts],
        }

    def recorded(self, field: str, default: Any = None) -> Any:
        """A field set with :meth:`update_info` that the run will write (e.g. "models")."""
        return self._extra.get(field, default)

    def update_info(self, **fields: Any) -> None:
        """Set recorded fields such as ``code`` or ``env`` (written at the next flush/end)."""
        self._extra.update(fields)

    def end(self, status: str = "FINISHED", error: BaseException | str | None = None) -> None:
        """Finish the run. Once this returns, the run is in the store."""
        if status not in STATUSES[1:]:
            raise NbopsError(f"unknown run status {status!r}; use one of {STATUSES[1:]}")
        with self._lock:
            if self._ended:
                return
            if self._closing is not None and status == "FINISHED" and error is None:
                status = self._closing  # a retry keeps the status the run ended with
                error = self._closing_error
            duration = getattr(self, "_closing_duration", None) or (time.perf_counter() - self._t0)
            final = {
                "status": status,
                "end_time": utc_now(),
                "duration": round(duration, 6),
                "error": _error_record(error),
            }
            self._closing, self._closing_error = status, error
            self._closing_duration = duration
            active.forget(self)  # from now on nothing outside a run goes into this one
            try:
                self._write(final)
            except (StoreError, OSError) as exc:
                if self not in _unsaved:
                    _unsaved.append(self)
                if isinstance(exc, StoreError):
                    raise
                raise StoreError(f"cannot save run {self.run_id}: {exc}") from exc
            if self in _unsaved:
                _unsaved.remove(self)
            self.status = status
            self._ended = True
            self.duration = duration


def _error_record(error: BaseException | str | None) -> dict[str, Any] | None:
    if error is None:
        return None
    if isinstance(error, str):
        return {"type": "Error", "message": error, "traceback": ""}
    import traceback

    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {"type": type(error).__name__, "message": str(error), "traceback": tb[-20000:]}
