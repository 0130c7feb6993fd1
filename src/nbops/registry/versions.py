"""Registering, reading, loading, aliasing and deleting model versions.

A run logs a model (:func:`nbops.log_model`, or ``%%track`` autolog);
:func:`register` turns it into version 1, 2, 3... of a named model. Every
read-modify-write happens inside ``store.transaction()``, and validation happens before
the first write, so a refused change writes nothing.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

from .._errors import ArtifactError, RegistryError
from .._util import current_user, utc_now
from ..datasets import read_reference_file
from ..modelfile import MODEL_FILE_NAME, load_model_file
from ..store import get_store
from .audit import record_event
from .naming import check_alias, check_name, ref, resolve, versions_of

if TYPE_CHECKING:
    import pandas as pd


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


def register(
    run_id: str,
    name: str,
    description: str | None = None,
    model: str | None = None,
    lineage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register the model logged by run ``run_id`` as the next version of ``name``.

    Versions count 1, 2, 3 per name; a new version starts in stage None. ``model``
    picks one model when the run logged several; ``lineage`` adds facts about where the
    version came from (``nbops.retrain`` records the version it retrains and the new
    data). Returns the version record. Raises RunNotFoundError for an unknown run,
    RegistryError if the run logged no model, ModelIntegrityError if its file no longer
    matches its sha256."""
    name = check_name(name)
    from ..tracking.api import flush_if_active

    store = get_store()
    run_id = store.resolve_run_id(run_id)  # a unique prefix names the run too
    flush_if_active(run_id)  # an open run may still hold its model entry
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
        existing = versions_of(store, name)
        version = (existing[-1]["version"] + 1) if existing else 1
        record = {
            "name": name,
            "version": version,
            "ref": ref(name, version),
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
            "reference": copy.deepcopy(entry["reference"]) if entry.get("reference") else None,
            "stage": None,
            "aliases": [],
            "created": utc_now(),
            "updated": None,
            "description": description,
            "user": current_user(),
        }
        if lineage:
            record["lineage"] = copy.deepcopy(lineage)
        store.insert_model(record)
        record_event(
            store,
            "register",
            name,
            version,
            None,
            None,
            description,
            run_id=run_id,
            **({"lineage": copy.deepcopy(lineage)} if lineage else {}),
        )
    return copy.deepcopy(record)


def get_model(
    name: str, version: Any = None, stage: Any = None, alias: str | None = None
) -> dict[str, Any]:
    """The record of one version, picked by ``version`` (a number or ``"latest"``),
    ``stage`` (the latest version in it) or ``alias``; the latest version when none is
    given. It includes ``gates``: the results of the last gate evaluation, if any.
    Raises RegistryError naming the versions that exist."""
    return copy.deepcopy(resolve(get_store(), name, version, stage, alias))


def load_model(name: str, version: Any = None, stage: Any = None, alias: str | None = None) -> Any:
    """The model of one version (see :func:`get`), loaded with skops after checking
    its sha256 and trusted types. Raises ModelIntegrityError, and loads nothing, when
    the file was changed."""
    store = get_store()
    rec = resolve(store, name, version, stage, alias)
    return load_model_file(
        store.artifacts.path(rec["sha256"]), rec["sha256"], rec.get("trusted_types") or []
    )


def load_reference(
    name: str, version: Any = None, stage: Any = None, alias: str | None = None
) -> pd.DataFrame:
    """The training-data sample stored with one version (see :func:`get`), after
    checking its sha256. Raises RegistryError when the version has none (it was logged
    without its training DataFrame) and ModelIntegrityError when the file changed."""
    store = get_store()
    rec = resolve(store, name, version, stage, alias)
    stored = rec.get("reference")
    if not stored:
        raise RegistryError(
            f"version {rec['version']} of {name!r} has no training sample: it was logged "
            "without its training DataFrame. Log the model with nbops.log_model(model, "
            "reference=X_train) (a %%track cell does it by itself), or pass reference= to "
            "nbops.export / nbops.monitor"
        )
    return read_reference_file(store.artifacts.verify(stored["sha256"]), stored["format"])


# -- aliases -------------------------------------------------------------------------
def set_alias(name: str, alias: str, version: Any, reason: str | None = None) -> dict[str, Any]:
    """Point ``alias`` (e.g. 'champion') of model ``name`` at ``version``, moving it off
    any other version. Returns the updated record; RegistryError for an alias that looks
    like a version or stage, or an unknown model or version."""
    alias = check_alias(alias)
    store = get_store()
    with store.transaction():
        rec = resolve(store, name, version=version)
        if alias in (rec.get("aliases") or []):
            return copy.deepcopy(rec)
        previous = None
        for other in versions_of(store, name):
            if alias in (other.get("aliases") or []):
                previous = other["version"]
                store.update_model(
                    name, other["version"], {"aliases": [a for a in other["aliases"] if a != alias]}
                )
        updated = store.update_model(
            name,
            rec["version"],
            {"aliases": [*(rec.get("aliases") or []), alias], "updated": utc_now()},
        )
        record_event(
            store, "set_alias", name, rec["version"], previous, rec["version"], reason, alias=alias
        )
        return updated


def delete_alias(name: str, alias: str, reason: str | None = None) -> dict[str, Any]:
    """Remove ``alias`` from model ``name``; returns the record that held it. Raises
    RegistryError when no version holds it."""
    store = get_store()
    with store.transaction():
        rec = resolve(store, name, alias=alias)
        updated = store.update_model(
            name,
            rec["version"],
            {"aliases": [a for a in rec["aliases"] if a != alias], "updated": utc_now()},
        )
        record_event(
            store, "delete_alias", name, rec["version"], rec["version"], None, reason, alias=alias
        )
        return updated


# -- removing ------------------------------------------------------------------------
def delete_model_version(name: str, version: Any, reason: str | None = None) -> dict[str, Any]:
    """Delete a version that is not in Production. Its model file is removed too, unless
    another registered version shares it. Returns the deleted record; RegistryError for a
    Production version."""
    store = get_store()
    with store.transaction():
        rec = resolve(store, name, version=version)
        if rec.get("stage") == "Production":
            raise RegistryError(
                f"version {rec['version']} of {name!r} is in Production and cannot be deleted; "
                "move it to Archived (or roll back) first"
            )
        rec = copy.deepcopy(rec)
        store.delete_model(name, rec["version"])
        record_event(store, "delete", name, rec["version"], rec.get("stage"), None, reason)
        if not any(d.get("sha256") == rec["sha256"] for d in store.all_models()):
            try:
                store.artifacts.delete(rec["sha256"])
            except OSError as exc:
                warnings.warn(
                    f"nbops: could not remove the model file of {name} v{rec['version']}: {exc}",
                    stacklevel=2,
                )
    return rec
