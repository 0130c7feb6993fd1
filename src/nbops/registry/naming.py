"""Names, stages and version lookup: how a registry call finds the record it acts on.

A model version is one document of the store's ``models`` table, keyed by its ``ref``
(``name/version``). Functions here only read; the writers in :mod:`.versions` and :mod:`.stages`
call them inside ``store.transaction()`` and then update the record through the store's
typed accessors.
"""

from __future__ import annotations

from typing import Any

from .._errors import RegistryError
from ..store import Store
from ..tracking.log_model import check_model_name

STAGES: tuple[str | None, ...] = (None, "Staging", "Production", "Archived")
_STAGE_NAMES = {
    "none": None,
    "staging": "Staging",
    "production": "Production",
    "archived": "Archived",
}


def stage_name(value: Any) -> str | None:
    """A stage name in its canonical spelling; RegistryError listing the valid ones."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _STAGE_NAMES:
        return _STAGE_NAMES[value.strip().lower()]
    raise RegistryError(
        f"unknown stage {value!r}; use one of None, 'Staging', 'Production', 'Archived'"
    )


def check_name(name: Any, what: str = "model name") -> str:
    """``name`` when it is usable as a model name; RegistryError saying what is allowed."""
    return check_model_name(name, what)


def check_alias(alias: Any) -> str:
    """``alias`` when it cannot be mistaken for a version, stage or 'latest'."""
    check_name(alias, "alias")
    if alias.isdigit() or alias.lower() in ("latest",) or alias.lower() in _STAGE_NAMES:
        raise RegistryError(
            f"alias {alias!r} would be confused with a version number, a stage or 'latest'; "
            "choose a word such as 'champion'"
        )
    return alias


def version_number(value: Any) -> int:
    """``3``, ``"3"`` or ``"v3"`` as 3; RegistryError for anything else."""
    try:
        version = int(str(value).lstrip("vV"))
    except (TypeError, ValueError):
        version = 0
    if version < 1 or isinstance(value, bool):
        raise RegistryError(f"model version {value!r} is not a version number (1, 2, 3...)")
    return version


def ref(name: str, version: int) -> str:
    """The key of one version in the ``models`` table."""
    return f"{name}/{version}"


def versions_of(store: Store, name: str) -> list[dict[str, Any]]:
    """Live records of every version of ``name``, oldest first (read, never modify)."""
    return store.model_versions(name)


def names(store: Store) -> list[str]:
    """Every registered model name, sorted."""
    return store.model_names()


def unknown_model(store: Store, name: str) -> RegistryError:
    """The error for a model name that has no versions, listing the known ones."""
    known = names(store)
    return RegistryError(
        f"no registered model {name!r}; registered models: {known or 'none yet'}. "
        f"Register one with nbops.register(run_id, {name!r})"
    )


def describe(rec: dict[str, Any]) -> str:
    """``v3 (Production @champion)``."""
    stage = rec.get("stage") or "None"
    aliases = "".join(f" @{a}" for a in rec.get("aliases") or [])
    return f"v{rec['version']} ({stage}{aliases})"


def resolve(
    store: Store, name: str, version: Any = None, stage: Any = None, alias: str | None = None
) -> dict[str, Any]:
    """The live record (read, never modify) of one version picked by version, stage or alias (default:
    the latest version). ``version="latest"`` is the latest too. Raises RegistryError
    naming what exists."""
    chosen = [
        k for k, v in (("version", version), ("stage", stage), ("alias", alias)) if v is not None
    ]
    if len(chosen) > 1:
        raise RegistryError(f"pick a version by one of version=, stage= or alias=, not {chosen}")
    if isinstance(version, str) and version.strip().lower() == "latest":
        version = None
    if version is not None:
        found = store.get_model(name, version_number(version))
        if found is not None:
            return found
    all_versions = versions_of(store, name)
    if not all_versions:
        raise unknown_model(store, name)
    listing = ", ".join(describe(rec) for rec in all_versions)
    if version is not None:
        raise RegistryError(f"model {name!r} has no version {version}; it has {listing}")
    if stage is not None:
        wanted = stage_name(stage)
        hits = [r for r in all_versions if r.get("stage") == wanted]
        if not hits:
            raise RegistryError(
                f"no version of {name!r} is in stage {wanted}; its versions: {listing}"
            )
        return hits[-1]
    if alias is not None:
        hits = [r for r in all_versions if alias in (r.get("aliases") or [])]
        if not hits:
            raise RegistryError(f"model {name!r} has no alias {alias!r}; its versions: {listing}")
        return hits[-1]
    return all_versions[-1]


def pick(store: Store, name: str, which: Any) -> dict[str, Any]:
    """One version from a single word: ``latest``, a number (``3``/``v3``), a stage name
    or an alias (what ``nbops check`` and the CLI accept)."""
    text = str(which).strip() if which is not None else "latest"
    if text.lower() == "latest":
        return resolve(store, name)
    if text.lstrip("vV").isdigit():
        return resolve(store, name, version=text)
    if text.lower() in _STAGE_NAMES:
        return resolve(store, name, stage=text)
    return resolve(store, name, alias=text)
