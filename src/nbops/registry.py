"""The model registry: versions, stages, aliases, an audit log, lineage and rollback.

A run logs a model (:func:`log_model`, or ``%%track`` autolog); :func:`register`
turns it into version 1, 2, 3... of a named model. Versions move between the stages
None -> Staging -> Production -> Archived (:func:`transition`), carry aliases
(:func:`set_alias`), and are loaded back with their sha256 and trusted types checked
(:func:`load`). Every change is an event in the ``events`` table (who, when, from,
to, why): :func:`history` shows them and :func:`rollback` uses them to find the
version that was Production before the current one.

Every read-modify-write happens inside ``store.transaction()``, so several kernels
or processes can change one registry at once without losing or tearing anything.
Validation happens before the first write of a transaction, so a refused change
writes nothing.
"""

from __future__ import annotations

import getpass
import importlib.util
import io
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ArtifactError, NbopsError, RegistryError, RunNotFoundError
from .modelfile import MODEL_FILE_NAME, dump_model, load_model_file, normalise_signature
from .store import Store, get_store
from .store.store import _deep_copy

if TYPE_CHECKING:
    import pandas as pd

    from .tracking.run import Run

STAGES: tuple[str | None, ...] = (None, "Staging", "Production", "Archived")
_STAGE_NAMES = {"none": None, "staging": "Staging", "production": "Production",
                "archived": "Archived"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
EVENT_SOURCE = "registry"
#: at most this many rows of the training data are kept as a model's drift reference
REFERENCE_MAX_ROWS = 10_000
ENV_REFERENCE_ROWS = "NBOPS_REFERENCE_ROWS"
REFERENCE_SEED = 0

__all__ = [
    "STAGES",
    "archive",
    "delete",
    "delete_alias",
    "get",
    "history",
    "lineage",
    "load",
    "load_reference",
    "log_model",
    "models",
    "register",
    "rollback",
    "set_alias",
    "transition",
    "widget",
]


# -- small helpers -------------------------------------------------------------------
def _now() -> str:
    from .tracking.run import utc_now

    return utc_now()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER") or "unknown"


def _stage(value: Any) -> str | None:
    """A stage name in its canonical spelling; RegistryError listing the valid ones."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _STAGE_NAMES:
        return _STAGE_NAMES[value.strip().lower()]
    raise RegistryError(
        f"unknown stage {value!r}; use one of None, 'Staging', 'Production', 'Archived'"
    )


def _check_name(name: Any, what: str = "model name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(
            f"{what} {name!r} is not usable: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. 'churn-model')"
        )
    return name


def _check_alias(alias: Any) -> str:
    _check_name(alias, "alias")
    if alias.isdigit() or alias.lower() in ("latest",) or alias.lower() in _STAGE_NAMES:
        raise RegistryError(
            f"alias {alias!r} would be confused with a version number, a stage or 'latest'; "
            "choose a word such as 'champion'"
        )
    return alias


def _version(value: Any) -> int:
    try:
        version = int(str(value).lstrip("vV"))
    except (TypeError, ValueError):
        version = 0
    if version < 1 or isinstance(value, bool):
        raise RegistryError(f"model version {value!r} is not a version number (1, 2, 3...)")
    return version


def _ref(name: str, version: int) -> str:
    return f"{name}/{version}"


def record_event(store: Store, action: str, name: str, version: int | None, from_: Any,
                 to: Any, reason: str | None, **extra: Any) -> None:
    """Append one audit-log entry (who, when, name, version, from, to, reason) to
    ``events``; also used by serving to copy canary steps into the log."""
    store.add_event({
        "source": EVENT_SOURCE, "action": action, "who": _user(), "when": _now(),
        "name": name, "version": version, "from": from_, "to": to, "reason": reason,
        **extra,
    })


def _versions(store: Store, name: str) -> list[tuple[int, dict[str, Any]]]:
    """(doc_id, live record) of every version of ``name``, oldest first."""
    table = store.storage.live_table("models")
    return sorted(
        ((int(i), doc) for i, doc in table.items() if doc.get("name") == name),
        key=lambda item: item[1]["version"],
    )


def _names(store: Store) -> list[str]:
    return sorted({doc["name"] for doc in store.storage.live_table("models").values()})


def _unknown_model(store: Store, name: str) -> RegistryError:
    known = _names(store)
    return RegistryError(
        f"no registered model {name!r}; registered models: {known or 'none yet'}. "
        f"Register one with nbops.register(run_id, {name!r})"
    )


def _describe(rec: dict[str, Any]) -> str:
    stage = rec.get("stage") or "None"
    aliases = "".join(f" @{a}" for a in rec.get("aliases") or [])
    return f"v{rec['version']} ({stage}{aliases})"


def _resolve(store: Store, name: str, version: Any = None, stage: Any = None,
             alias: str | None = None) -> tuple[int, dict[str, Any]]:
    """(doc_id, live record) of one version picked by version, stage or alias (default:
    the latest version). Raises RegistryError naming what exists."""
    chosen = [k for k, v in (("version", version), ("stage", stage), ("alias", alias))
              if v is not None]
    if len(chosen) > 1:
        raise RegistryError(f"pick a version by one of version=, stage= or alias=, not {chosen}")
    if version is not None:
        number = _version(version)
        doc = store.models.get_by("ref", _ref(name, number))
        if doc is not None:
            return doc.doc_id, doc
    all_versions = _versions(store, name)
    if not all_versions:
        raise _unknown_model(store, name)
    listing = ", ".join(_describe(rec) for _, rec in all_versions)
    if version is not None:
        raise RegistryError(f"model {name!r} has no version {version}; it has {listing}")
    if stage is not None:
        wanted = _stage(stage)
        hits = [(i, r) for i, r in all_versions if r.get("stage") == wanted]
        if not hits:
            raise RegistryError(
                f"no version of {name!r} is in stage {wanted}; its versions: {listing}"
            )
        return hits[-1]
    if alias is not None:
        hits = [(i, r) for i, r in all_versions if alias in (r.get("aliases") or [])]
        if not hits:
            raise RegistryError(f"model {name!r} has no alias {alias!r}; its versions: {listing}")
        return hits[-1]
    return all_versions[-1]


# -- capturing a model ---------------------------------------------------------------
def log_model(model: Any, name: str | None = None, signature: Any = None,
              run: Run | None = None, reference: Any = None) -> dict[str, Any]:
    """Save a fitted scikit-learn model (skops) as an artifact of the active run.

    ``name`` names the model within the run (default ``"model"``); ``signature`` is
    the training DataFrame/array (columns and dtypes are read from it), a dict
    ``{"inputs": [...], "outputs": {...}}``, or None to infer it from the model.
    ``reference`` is the training DataFrame: a sample of at most
    ``REFERENCE_MAX_ROWS`` rows of its input columns is stored with the model and
    becomes the default drift reference of an export (:func:`nbops.monitor`).
    Returns the run's model entry (name, artifact, sha256, flavour, trusted_types,
    library_versions, signature, and ``reference`` when one was stored). Raises
    NbopsError when no run is active and RegistryError for something that is not a
    fitted scikit-learn estimator or a reference without the model's columns."""
    if run is None:
        from .tracking.api import active_run

        run = active_run()
        if run is None:
            raise NbopsError(
                "no active run to log a model to; wrap the training code in "
                "`with nbops.start_run():` or put %%track on the cell"
            )
    name = _check_name(name or "model", "model name")
    sig = normalise_signature(signature, model)  # before writing anything
    sample = _reference_sample(reference, sig)
    with tempfile.TemporaryDirectory(prefix="nbops-model-") as tmp:
        facts = dump_model(model, Path(tmp) / MODEL_FILE_NAME)
        artifact_name = MODEL_FILE_NAME if name == "model" else f"{name}/{MODEL_FILE_NAME}"
        artifact = run.log_artifact(Path(tmp) / MODEL_FILE_NAME, name=artifact_name,
                                    kind="model")
    entries: list[dict[str, Any]] = list(run.recorded("models") or [])
    same = [e for e in entries if e["name"] == name]
    if same and same[-1]["sha256"] == facts["sha256"]:
        if sample is None:
            return dict(same[-1])
        # the same model again, with (other) training data: the entry points at the newest
        reference = _store_reference(run, name, *sample)
        if (same[-1].get("reference") or {}).get("sha256") == reference["sha256"]:
            return dict(same[-1])
        entry = {**same[-1], "reference": reference}
        entries[entries.index(same[-1])] = entry
        run.update_info(models=entries)
        run.flush()
        return dict(entry)
    if same:  # another model under this name: keep both, like artifacts do
        k = 1
        while any(e["name"] == f"{name}-{k}" for e in entries):
            k += 1
        warnings.warn(f"nbops: run {run.run_id} already has a model {name!r}; this one is "
                      f"logged as '{name}-{k}'", stacklevel=2)
        name = f"{name}-{k}"
    entry = {"name": name, "artifact": artifact["name"], **facts, "signature": sig}
    if sample is not None:
        entry["reference"] = _store_reference(run, name, *sample)
    if signature is not None and not isinstance(signature, dict):
        _link_training_data(run, signature)
    run.update_info(models=[*entries, entry])
    run.flush()
    return dict(entry)


# -- the training-data sample (the default drift reference) --------------------------
def reference_max_rows() -> int:
    """How many training rows a model keeps as its reference: ``$NBOPS_REFERENCE_ROWS``
    (0 keeps none), else :data:`REFERENCE_MAX_ROWS`."""
    raw = os.environ.get(ENV_REFERENCE_ROWS, "").strip()
    if not raw:
        return REFERENCE_MAX_ROWS
    try:
        return max(int(raw), 0)
    except ValueError:
        raise NbopsError(f"${ENV_REFERENCE_ROWS} must be a whole number of rows (0 stores no "
                         f"training sample), not {raw!r}") from None


def _reference_sample(data: Any, sig: dict[str, Any]) -> tuple[Any, int] | None:
    """(sample, total rows) of the model's input columns of ``data``: every row when it
    has at most :func:`reference_max_rows`, else that many rows drawn without
    replacement with a fixed seed, kept in their original order. None when ``data`` is
    None or False, or the limit is 0."""
    if data is None or data is False:
        return None
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise RegistryError(
            f"reference must be the training DataFrame (pandas, with the model's input "
            f"columns), not a {type(data).__name__}; pass reference=X_train, or leave it out"
        )
    limit = reference_max_rows()
    if limit == 0:
        return None
    by_name = {str(c): c for c in data.columns}
    cols = [i["name"] for i in sig.get("inputs") or []] or list(by_name)
    missing = [c for c in cols if c not in by_name]
    if missing:
        raise RegistryError(
            f"the reference DataFrame lacks the model's input columns {missing} (it has "
            f"{list(by_name)[:20]}); pass the DataFrame the model was trained on"
        )
    frame = data[[by_name[c] for c in cols]]
    frame.columns = cols
    total = len(frame)
    if total > limit:
        import numpy as np

        rows = np.sort(np.random.default_rng(REFERENCE_SEED).choice(total, limit,
                                                                    replace=False))
        frame = frame.iloc[rows]
    return frame.reset_index(drop=True), total


def _reference_bytes(frame: Any) -> tuple[bytes, str]:
    """Parquet when pyarrow is importable (dtypes survive), else CSV."""
    if importlib.util.find_spec("pyarrow") is not None:
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, index=False, engine="pyarrow")
            return buffer.getvalue(), "parquet"
        except Exception as exc:  # noqa: BLE001 - e.g. a column of mixed Python objects
            warnings.warn(f"nbops: the training sample is stored as CSV because pyarrow "
                          f"cannot write it as Parquet: {exc}", stacklevel=3)
    return frame.to_csv(index=False).encode(), "csv"


def _store_reference(run: Run, name: str, frame: Any, total: int) -> dict[str, Any]:
    """Store the sample as a content-addressed artifact of the run (kind "reference");
    returns the model entry's ``reference`` field."""
    data, fmt = _reference_bytes(frame)
    file_name = f"reference.{fmt}"
    artifact = run.log_artifact_bytes(data, file_name if name == "model" else
                                      f"{name}/{file_name}", kind="reference")
    return {"artifact": artifact["name"], "sha256": artifact["sha256"],
            "size": artifact["size"], "format": fmt, "rows": len(frame), "total_rows": total,
            "sampled": len(frame) < total, "seed": REFERENCE_SEED,
            "columns": [str(c) for c in frame.columns]}


def read_reference_file(path: str | os.PathLike, fmt: str) -> pd.DataFrame:
    """A stored training sample as a DataFrame (``fmt`` "parquet" or "csv")."""
    import pandas as pd

    return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)


def load_reference(name: str, version: Any = None, stage: Any = None,
                   alias: str | None = None) -> pd.DataFrame:
    """The training-data sample stored with one version (see :func:`get`), after
    checking its sha256. Raises RegistryError when the version has none (it was logged
    without its training DataFrame) and ModelIntegrityError when the file changed."""
    store = get_store()
    rec = _resolve(store, name, version, stage, alias)[1]
    ref = rec.get("reference")
    if not ref:
        raise RegistryError(
            f"version {rec['version']} of {name!r} has no training sample: it was logged "
            "without its training DataFrame. Log the model with nbops.log_model(model, "
            "reference=X_train) (a %%track cell does it by itself), or pass reference= to "
            "nbops.export / nbops.monitor"
        )
    return read_reference_file(store.artifacts.verify(ref["sha256"]), ref["format"])


def _link_training_data(run: Run, data: Any) -> None:
    """Record the signature's data as an input dataset of the run (for lineage)."""
    from .datasets import fingerprint

    try:
        fp = fingerprint(data)
    except NbopsError:
        return
    run.store.add_dataset({**fp, "name": None, "first_seen": _now(),
                           "source": f"log_model signature, run {run.run_id}"})
    run.add_input(fp["digest"])


# -- registering ---------------------------------------------------------------------
def _pick_logged_model(run: dict[str, Any], model: str | None) -> dict[str, Any]:
    entries = run.get("models") or []
    run_id = run["run_id"]
    if not entries:
        raise RegistryError(
            f"run {run_id} ({run.get('name')}) has no logged model. Log one inside the run "
            "with nbops.log_model(model), or put `%%track --model VAR` on the training cell, "
            "then register again"
        )
    names = [e["name"] for e in entries]
    if model is not None:
        for entry in entries:
            if entry["name"] == model:
                return entry
        raise RegistryError(f"run {run_id} has no model {model!r}; it logged {names}")
    if len(entries) == 1:
        return entries[0]
    if "model" in names:
        return entries[names.index("model")]
    raise RegistryError(
        f"run {run_id} logged several models {names}; pick one with model={names[-1]!r}"
    )


def register(run_id: str, name: str, description: str | None = None,
             model: str | None = None) -> dict[str, Any]:
    """Register the model logged by run ``run_id`` as the next version of ``name``.

    Versions count 1, 2, 3 per name; a new version starts in stage None. ``model``
    picks one model when the run logged several. Returns the version record. Raises
    RunNotFoundError for an unknown run, RegistryError if the run logged no model,
    ModelIntegrityError if its file no longer matches its sha256."""
    name = _check_name(name)
    from .tracking.api import flush_if_active

    flush_if_active(run_id)  # an open run may still hold its model entry
    store = get_store()
    run = store.get_run(run_id)
    entry = _pick_logged_model(run, model)
    with store.transaction():
        try:
            store.artifacts.verify(entry["sha256"])
        except ArtifactError as exc:
            raise RegistryError(
                f"the model file of run {run_id} ({entry['artifact']}) is gone: {exc}. "
                "Log the model again in a new run"
            ) from None
        existing = _versions(store, name)
        version = (existing[-1][1]["version"] + 1) if existing else 1
        record = {
            "name": name,
            "version": version,
            "ref": _ref(name, version),
            "run_id": run_id,
            "run_name": run.get("name"),
            "model": entry["name"],
            "artifact": entry["artifact"],
            "sha256": entry["sha256"],
            "size": entry.get("size"),
            "flavour": entry["flavour"],
            "file_name": entry.get("file_name", MODEL_FILE_NAME),
            "model_class": entry.get("model_class"),
            "trusted_types": list(entry.get("trusted_types") or []),
            "library_versions": dict(entry.get("library_versions") or {}),
            "signature": entry.get("signature"),
            "reference": _deep_copy(entry["reference"]) if entry.get("reference") else None,
            "stage": None,
            "aliases": [],
            "created": _now(),
            "updated": None,
            "description": description,
            "user": _user(),
        }
        store.models.insert(record)
        record_event(store, "register", name, version, None, None, description, run_id=run_id)
    return _deep_copy(record)


# -- stages --------------------------------------------------------------------------
def transition(name: str, version: Any, stage: Any, archive_existing: bool = True,
               reason: str | None = None) -> dict[str, Any]:
    """Move a version to ``stage`` (None, 'Staging', 'Production', 'Archived').

    With ``archive_existing`` (the default), moving a version to Production archives
    the version(s) in Production before it, so at most one is Production. Returns the
    updated record; moving a version to the stage it is in changes nothing. Raises
    RegistryError for an unknown stage, model or version."""
    target = _stage(stage)
    store = get_store()
    with store.transaction():
        doc_id, rec = _resolve(store, name, version=version)
        if rec.get("stage") == target:
            return _deep_copy(rec)
        _move(store, doc_id, rec, target, "transition", reason)
        if target == "Production" and archive_existing:
            for other_id, other in _versions(store, name):
                if other_id != doc_id and other.get("stage") == "Production":
                    why = f"superseded by version {rec['version']}" + (
                        f": {reason}" if reason else "")
                    _move(store, other_id, other, "Archived", "transition", why)
        return _deep_copy(store.models.get(doc_id=doc_id))


def _move(store: Store, doc_id: int, rec: dict[str, Any], target: str | None, action: str,
          reason: str | None) -> None:
    before = rec.get("stage")
    store.models.update({"stage": target, "updated": _now()}, doc_ids=[doc_id])
    record_event(store, action, rec["name"], rec["version"], before, target, reason)


def archive(name: str, version: Any, reason: str | None = None) -> dict[str, Any]:
    """Move a version to Archived; returns its record."""
    return transition(name, version, "Archived", reason=reason)


def rollback(name: str, reason: str | None = None) -> dict[str, Any]:
    """Make the version that was Production before the current one Production again;
    the current one goes to Archived. Both moves are logged as ``rollback`` events.

    Rolling back twice returns to where you started (each rollback is itself a change
    of Production). Returns the record of the version now in Production. Raises
    RegistryError if no version is in Production or none was before it."""
    store = get_store()
    with store.transaction():
        all_versions = _versions(store, name)
        if not all_versions:
            raise _unknown_model(store, name)
        live = {rec["version"]: (i, rec) for i, rec in all_versions}
        promotions = [
            e for e in _events(store, name)
            if e.get("to") == "Production" and e.get("version") in live
        ]
        in_production = {v for v, (_, r) in live.items() if r.get("stage") == "Production"}
        if not in_production:
            raise RegistryError(
                f"no version of {name!r} is in Production, so there is nothing to roll back; "
                f"promote one with nbops.transition({name!r}, version, 'Production')"
            )
        # the current Production version is the one promoted last
        ordered = [e["version"] for e in promotions if e["version"] in in_production]
        current = ordered[-1] if ordered else max(in_production)
        last_promotion = max((k for k, e in enumerate(promotions) if e["version"] == current),
                             default=len(promotions))
        previous = next((e["version"] for e in reversed(promotions[:last_promotion])
                         if e["version"] != current), None)
        if previous is None:
            raise RegistryError(
                f"version {current} is the first Production version of {name!r}; there is no "
                "earlier Production version to roll back to"
            )
        cur_id, cur_rec = live[current]
        prev_id, prev_rec = live[previous]
        _move(store, cur_id, cur_rec, "Archived", "rollback", reason)
        _move(store, prev_id, prev_rec, "Production", "rollback", reason)
        return _deep_copy(store.models.get(doc_id=prev_id))


# -- aliases -------------------------------------------------------------------------
def set_alias(name: str, alias: str, version: Any, reason: str | None = None) -> dict[str, Any]:
    """Point ``alias`` (e.g. 'champion') of model ``name`` at ``version``, moving it off
    any other version. Returns the updated record."""
    alias = _check_alias(alias)
    store = get_store()
    with store.transaction():
        doc_id, rec = _resolve(store, name, version=version)
        if alias in (rec.get("aliases") or []):
            return _deep_copy(rec)
        previous = None
        for other_id, other in _versions(store, name):
            if alias in (other.get("aliases") or []):
                previous = other["version"]
                store.models.update(
                    {"aliases": [a for a in other["aliases"] if a != alias]}, doc_ids=[other_id])
        store.models.update({"aliases": [*(rec.get("aliases") or []), alias],
                             "updated": _now()}, doc_ids=[doc_id])
        record_event(store, "set_alias", name, rec["version"], previous, rec["version"], reason,
               alias=alias)
        return _deep_copy(store.models.get(doc_id=doc_id))


def delete_alias(name: str, alias: str, reason: str | None = None) -> dict[str, Any]:
    """Remove ``alias`` from model ``name``; returns the record that held it."""
    store = get_store()
    with store.transaction():
        doc_id, rec = _resolve(store, name, alias=alias)
        store.models.update({"aliases": [a for a in rec["aliases"] if a != alias],
                             "updated": _now()}, doc_ids=[doc_id])
        record_event(store, "delete_alias", name, rec["version"], rec["version"], None, reason,
               alias=alias)
        return _deep_copy(store.models.get(doc_id=doc_id))


# -- reading -------------------------------------------------------------------------
def get(name: str, version: Any = None, stage: Any = None,
        alias: str | None = None) -> dict[str, Any]:
    """The record of one version, picked by ``version``, ``stage`` (the latest version
    in it) or ``alias``; the latest version when none is given."""
    return _deep_copy(_resolve(get_store(), name, version, stage, alias)[1])


def load(name: str, version: Any = None, stage: Any = None, alias: str | None = None) -> Any:
    """The model of one version (see :func:`get`), loaded with skops after checking
    its sha256 and trusted types. Raises ModelIntegrityError, and loads nothing, when
    the file was changed."""
    store = get_store()
    rec = _resolve(store, name, version, stage, alias)[1]
    return load_model_file(store.artifacts.path(rec["sha256"]), rec["sha256"],
                           rec.get("trusted_types") or [])


def _events(store: Store, name: str | None) -> list[dict[str, Any]]:
    table = store.storage.live_table("events")
    return [doc for _, doc in sorted(table.items(), key=lambda kv: int(kv[0]))
            if doc.get("source") == EVENT_SOURCE and (name is None or doc.get("name") == name)]


HISTORY_COLUMNS = ["time", "user", "name", "action", "version", "from", "to", "alias", "reason"]


def history(name: str | None = None) -> pd.DataFrame:
    """Every registry event of model ``name`` (all models if None), oldest first:
    DataFrame(time, user, name, action, version, from, to, alias, reason)."""
    import pandas as pd

    store = get_store()
    if name is not None and not _versions(store, name) and not _events(store, name):
        raise _unknown_model(store, name)
    rows = [{"time": e.get("when"), "user": e.get("who"), "name": e.get("name"),
             "action": e.get("action"), "version": e.get("version"), "from": e.get("from"),
             "to": e.get("to"), "alias": e.get("alias"), "reason": e.get("reason")}
            for e in _events(store, name)]
    # object columns keep None as None (pandas 3 would turn a str column's None into NaN)
    frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object)
                          for c in HISTORY_COLUMNS})
    frame["version"] = pd.to_numeric(frame["version"]).astype("Int64")
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame


MODEL_COLUMNS = ["name", "version", "stage", "aliases", "run_id", "run_name", "created",
                 "description", "model_class"]


def models(name: str | None = None) -> pd.DataFrame:
    """Every registered version (of ``name`` if given): DataFrame(name, version, stage,
    aliases, run_id, run_name, created, description, model_class, metrics.* of the
    source run), sorted by name and version."""
    import pandas as pd

    store = get_store()
    if name is not None and not _versions(store, name):
        raise _unknown_model(store, name)
    rows = []
    for model_name in ([name] if name is not None else _names(store)):
        for _, rec in _versions(store, model_name):
            row = {k: rec.get(k) for k in MODEL_COLUMNS}
            row["aliases"] = list(rec.get("aliases") or [])
            run_doc_id = store.runs.doc_id_of("run_id", rec["run_id"])
            run = store.runs.get(doc_id=run_doc_id) if run_doc_id is not None else None
            for key, value in ((run or {}).get("metrics") or {}).items():
                row[f"metrics.{key}"] = value
            rows.append(row)
    frame = pd.DataFrame(rows)
    if not len(frame):
        return pd.DataFrame(columns=MODEL_COLUMNS)
    frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
    for column in ("stage", "description", "run_name"):
        frame[column] = pd.Series([r[column] for r in rows], dtype=object)
    return frame[MODEL_COLUMNS + sorted(c for c in frame.columns if c not in MODEL_COLUMNS)]


def lineage(name: str, version: Any = None, stage: Any = None,
            alias: str | None = None) -> dict[str, Any]:
    """Where a version came from: ``{"model": record, "run": {run_id, name, experiment,
    status, params, metrics, tags, code}, "datasets": [{digest, name, shape, schema}],
    "environment": {python, platform, packages}}``. A run or dataset that is no longer
    in the store appears with ``"missing": True``."""
    store = get_store()
    rec = _deep_copy(_resolve(store, name, version, stage, alias)[1])
    try:
        run = store.get_run(rec["run_id"])
    except RunNotFoundError:
        return {"model": rec, "run": {"run_id": rec["run_id"], "missing": True},
                "datasets": [], "environment": {}}
    run_part = {k: run.get(k) for k in ("run_id", "name", "experiment", "status", "start_time",
                                        "end_time", "duration", "parent_id", "params",
                                        "metrics", "tags", "code")}
    datasets = []
    for digest in run.get("inputs") or []:
        doc = store.get_dataset(digest)
        if doc is None:
            datasets.append({"digest": digest, "missing": True})
        else:
            datasets.append({k: doc.get(k) for k in ("digest", "name", "kind", "shape",
                                                      "schema", "source") if k in doc})
    return {"model": rec, "run": run_part, "datasets": datasets,
            "environment": run.get("env") or {}}


# -- removing ------------------------------------------------------------------------
def delete(name: str, version: Any, reason: str | None = None) -> dict[str, Any]:
    """Delete a version that is not in Production. Its model file is removed too, unless
    another registered version shares it. Returns the deleted record."""
    store = get_store()
    with store.transaction():
        doc_id, rec = _resolve(store, name, version=version)
        if rec.get("stage") == "Production":
            raise RegistryError(
                f"version {rec['version']} of {name!r} is in Production and cannot be deleted; "
                "move it to Archived (or roll back) first"
            )
        rec = _deep_copy(rec)
        store.models.remove(doc_ids=[doc_id])
        record_event(store, "delete", name, rec["version"], rec.get("stage"), None, reason)
        shared = any(doc.get("sha256") == rec["sha256"]
                     for doc in store.storage.live_table("models").values())
        if not shared:
            try:
                store.artifacts.delete(rec["sha256"])
            except OSError as exc:
                warnings.warn(f"nbops: could not remove the model file of {name} v"
                              f"{rec['version']}: {exc}", stacklevel=2)
    return rec


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_lineage(lin: dict[str, Any]) -> str:
    """The :func:`lineage` dict as an indented text tree (what the CLI prints)."""
    rec, run = lin["model"], lin["run"]
    lines = [f"model {rec['name']} {_describe(rec)}  {rec.get('model_class') or ''}",
             f"  file {rec.get('file_name')} sha256 {rec['sha256'][:12]}"
             f"  trusted types {rec.get('trusted_types') or []}"]
    if run.get("missing"):
        lines.append(f"  └─ run {run['run_id']} (no longer in the store)")
        return "\n".join(lines)
    lines.append(f"  └─ run {run['run_id']} {run.get('name')!r} {run.get('status')}"
                 f"  experiment {run.get('experiment')}  started {run.get('start_time')}")
    for section in ("params", "metrics"):
        values = run.get(section) or {}
        if values:
            shown = ", ".join(f"{k}={_short(v, 20)}" for k, v in sorted(values.items())[:12])
            more = f" (+{len(values) - 12} more)" if len(values) > 12 else ""
            lines.append(f"       {section}: {shown}{more}")
    code = run.get("code") or {}
    where = code.get("notebook") or code.get("script")
    git = code.get("git_commit")
    lines.append(f"       code: git {git[:10] if git else 'none'}"
                 f"{' (dirty)' if code.get('git_dirty') else ''}"
                 f"{'  in ' + where if where else ''}")
    for ds in lin.get("datasets") or []:
        if ds.get("missing"):
            lines.append(f"       └─ dataset {ds['digest'][:12]} (not in the store)")
            continue
        schema = ds.get("schema") or {}
        lines.append(f"       └─ dataset {ds['digest'][:12]} {ds.get('name') or ''} "
                     f"shape {ds.get('shape')}  {_short(schema, 70)}")
    env = lin.get("environment") or {}
    packages = env.get("packages") or {}
    libs = ", ".join(f"{k} {packages[k]}" for k in ("scikit-learn", "sklearn", "pandas",
                                                    "numpy") if k in packages)
    lines.append(f"       env: python {env.get('python', '?')}{'  ' + libs if libs else ''}")
    return "\n".join(lines)


def widget(name: str | None = None) -> Any:
    """An ipywidgets view of the registry (see :mod:`nbops.widgets.registry`)."""
    from .widgets.registry import RegistryWidget

    return RegistryWidget(name=name)
