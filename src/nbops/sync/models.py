"""Registered model versions on an MLflow server: push them as MLflow models that
``mlflow.sklearn.load_model("models:/NAME/V")`` loads, and pull them back into the
registry with their stage, aliases, description and audit history (protocol.py)."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

from .._util import to_jsonable, utc_now
from ..store import Store
from . import links
from .protocol import MAX_TAG_LENGTH, MODELS_DIR, TAG_AUDIT, TAG_RECORD, digest, mlflow_error
from .summary import SyncSummary

MLMODEL = "MLmodel"


def _events_by_version(store: Store) -> dict[tuple[str, int], list[dict[str, Any]]]:
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in store.all_events():
        if event.get("name") is not None and event.get("version") is not None:
            out.setdefault((event["name"], int(event["version"])), []).append(event)
    return out


def push_models(
    client: Any,
    uri: str,
    store: Store,
    summary: SyncSummary,
    run_links: dict[str, dict],
    dry_run: bool,
    experiments: set[str] | None,
) -> None:
    """Push every model version whose run is pushed (see :func:`nbops.push`)."""
    from .protocol import server_key

    server = server_key(uri)
    model_links = links.load(store, server, "model")
    events = _events_by_version(store)
    experiment_of = {d["run_id"]: d.get("experiment") for d in store.all_runs()}
    new_links = []
    for rec in sorted(store.all_models(), key=lambda r: (r["name"], r["version"])):
        local = f"{rec['name']}/{rec['version']}"
        item = f"model:{local}"
        if experiments is not None and experiment_of.get(rec["run_id"]) not in experiments:
            continue
        history = events.get((rec["name"], int(rec["version"])), [])
        fp = digest([rec, history])
        link = model_links.get(local)
        if link is not None and link.get("digest") == fp:
            summary.add("unchanged", item)
            continue
        if dry_run:
            summary.add("updated" if link else "created", item)
            continue
        run_link = run_links.get(rec["run_id"])
        if run_link is None:
            summary.add(
                "failed",
                item,
                f"its run {rec['run_id']} is not on the server (see the run's own failure above)",
            )
            continue
        try:
            new_link = _push_version(client, uri, store, rec, history, run_link, link)
        except Exception as exc:  # noqa: BLE001 - reported per version
            summary.add("failed", item, mlflow_error(f"model {local}", exc))
            continue
        new_link.update(server=server, kind="model", local=local, digest=fp, pushed=utc_now())
        new_links.append(new_link)
        summary.add("updated" if link else "created", item)
    links.save(store, new_links)


def mlmodel(rec: dict[str, Any], artifact_path: str) -> dict[str, Any]:
    """The MLmodel document (JSON is YAML) of an nbops scikit-learn model version."""
    lib = rec.get("library_versions") or {}
    file_name = "model.skops"
    return {
        "artifact_path": artifact_path,
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "model_path": file_name,
                "predict_fn": "predict",
                "python_version": lib.get("python"),
            },
            "sklearn": {
                "pickled_model": file_name,
                "serialization_format": "skops",
                "sklearn_version": lib.get("sklearn"),
                "code": None,
                "skops_trusted_types": list(rec.get("trusted_types") or []),
            },
        },
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": utc_now().replace("T", " ")[:23],
    }


def _push_version(
    client: Any,
    uri: str,
    store: Store,
    rec: dict[str, Any],
    history: list[dict[str, Any]],
    run_link: dict[str, Any],
    link: dict[str, Any] | None,
) -> dict[str, Any]:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    name = rec["name"]
    if link is None:
        try:
            client.create_registered_model(name)
        except Exception as exc:  # noqa: BLE001 - it exists already: fine
            if "RESOURCE_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise
        folder = f"{MODELS_DIR}/{name}/v{rec['version']}"
        repo = get_artifact_repository(run_link["artifact_uri"], tracking_uri=uri)
        with tempfile.TemporaryDirectory(prefix="nbops-mlmodel-") as tmp:
            target = Path(tmp) / "model"
            target.mkdir()
            (target / "model.skops").write_bytes(store.artifacts.verify(rec["sha256"]).read_bytes())
            (target / MLMODEL).write_text(json.dumps(mlmodel(rec, folder), indent=1))
            (target / "requirements.txt").write_text(_requirements(rec))
            repo.log_artifacts(str(target), folder)
        source = f"{run_link['artifact_uri'].rstrip('/')}/{folder}"
        mv = client.create_model_version(
            name, source, run_id=run_link["remote"], description=rec.get("description")
        )
        remote_version = str(mv.version)
        old_aliases: list[str] = []
        sent_events = 0
    else:
        remote_version = link["remote"]
        old_aliases = list(link.get("aliases") or [])
        sent_events = int(link.get("events") or 0)
        client.update_model_version(name, remote_version, description=rec.get("description") or "")
    stage = rec.get("stage") or "None"
    try:
        client.transition_model_version_stage(
            name, remote_version, stage, archive_existing_versions=False
        )
    except Exception as exc:  # noqa: BLE001 - servers without stages keep the tag only
        if "stage" not in str(exc).lower():
            raise
    aliases = list(rec.get("aliases") or [])
    for alias in old_aliases:
        if alias not in aliases:
            client.delete_registered_model_alias(name, alias)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, remote_version)
    record = to_jsonable({k: v for k, v in rec.items() if k != "reference"})
    text = json.dumps(record, allow_nan=True)
    client.set_model_version_tag(
        name, remote_version, TAG_RECORD, text if len(text) <= MAX_TAG_LENGTH else "{}"
    )
    client.set_model_version_tag(name, remote_version, "nbops.stage", stage)
    for i, event in enumerate(history[sent_events:], start=sent_events):
        text = json.dumps(to_jsonable(event), allow_nan=True)[:MAX_TAG_LENGTH]
        client.set_model_version_tag(name, remote_version, f"{TAG_AUDIT}{i:04d}", text)
    return {"remote": remote_version, "aliases": aliases, "events": len(history)}


def _requirements(rec: dict[str, Any]) -> str:
    lib = rec.get("library_versions") or {}
    lines = []
    for key, dist in (
        ("sklearn", "scikit-learn"),
        ("skops", "skops"),
        ("numpy", "numpy"),
        ("pandas", "pandas"),
    ):
        if lib.get(key):
            lines.append(f"{dist}=={lib[key]}")
    return "\n".join(lines) + "\n"


# -- pull ------------------------------------------------------------------------------


def pull_models(
    client: Any, uri: str, store: Store, summary: SyncSummary, run_map: dict[str, str]
) -> None:
    """Bring registered model versions whose runs were pulled into the local registry.
    ``run_map`` maps remote run ids to local ones."""
    from .protocol import server_key

    server = server_key(uri)
    new_links = []
    for rm in client.search_registered_models(max_results=1000):
        aliases: dict[str, list[str]] = {}
        for alias, version in (getattr(rm, "aliases", None) or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name='{rm.name}'", max_results=10000)
        for mv in sorted(versions, key=lambda v: int(v.version)):
            local_run = run_map.get(mv.run_id or "")
            item = f"model:{rm.name}/{mv.version}"
            if local_run is None:
                continue  # its run was not pulled (another experiment)
            try:
                outcome, link = _pull_version(
                    client, uri, store, rm.name, mv, local_run, aliases.get(str(mv.version), [])
                )
            except Exception as exc:  # noqa: BLE001 - reported per version
                summary.add("failed", item, mlflow_error(f"model version {item}", exc))
                continue
            if link is not None:
                link.update(server=server, kind="model", pulled=utc_now())
                new_links.append(link)
            summary.add(outcome, f"model:{link['local'] if link else item[6:]}")
    links.save(store, new_links)


def _pull_version(
    client: Any, uri: str, store: Store, name: str, mv: Any, local_run: str, aliases: list[str]
) -> tuple[str, dict | None]:
    tags = dict(mv.tags or {})
    record = json.loads(tags.get(TAG_RECORD) or "{}")
    stage = mv.current_stage if mv.current_stage not in (None, "", "None") else None
    if "nbops.stage" in tags:
        stage = None if tags["nbops.stage"] == "None" else tags["nbops.stage"]
    version = int(record.get("version") or mv.version)
    local = f"{name}/{version}"
    fields = {
        "stage": stage,
        "aliases": sorted(
            aliases,
            key=lambda a: (
                (record.get("aliases") or []).index(a)
                if a in (record.get("aliases") or [])
                else 99,
                a,
            ),
        ),
        "description": mv.description or record.get("description"),
    }
    existing = store.get_model(name, version)
    events = [json.loads(v) for k, v in sorted(tags.items()) if k.startswith(TAG_AUDIT)]
    if existing is not None:
        changed = {k: v for k, v in fields.items() if existing.get(k) != v}
        if changed:
            store.update_model(name, version, changed)
        _add_missing_events(store, name, version, events)
        return ("updated" if changed else "unchanged"), {"local": local, "remote": str(mv.version)}
    if record:
        rec = {**record, **fields, "run_id": local_run}
        rec.pop("ref", None)
    else:  # a version nbops did not make: listed, loadable through MLflow only
        rec = {
            "name": name,
            "version": version,
            "run_id": local_run,
            "model": None,
            "artifact": mv.source,
            "sha256": None,
            "flavour": "mlflow",
            "trusted_types": [],
            "signature": None,
            "reference": None,
            "created": _ms_time(mv.creation_timestamp),
            "updated": None,
            "user": mv.user_id,
            "source": mv.source,
            **fields,
        }
    if rec.get("sha256") and not store.artifacts.path(rec["sha256"]).is_file():
        _download_model_file(uri, mv, store, rec["sha256"])
    store.insert_model(rec)
    _add_missing_events(store, name, version, events)
    return "created", {"local": local, "remote": str(mv.version)}


def _add_missing_events(
    store: Store, name: str, version: int, events: list[dict[str, Any]]
) -> None:
    have = {
        (e.get("action"), e.get("when"))
        for e in store.all_events()
        if e.get("name") == name and e.get("version") == version
    }
    for event in events:
        if (event.get("action"), event.get("when")) not in have:
            store.add_event(event)


def _download_model_file(uri: str, mv: Any, store: Store, sha256: str) -> None:
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="nbops-pull-model-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{mv.source.rstrip('/')}/model.skops", dst_path=tmp, tracking_uri=uri
        )
        got, _ = store.artifacts.put_file(path)
    if got != sha256:
        from .._errors import SyncError

        raise SyncError(
            f"the model file of {mv.name} v{mv.version} hashes to {got[:12]}, "
            f"not the recorded {sha256[:12]}; it was changed on the server"
        )


def _ms_time(ms: int | None) -> str | None:
    from .protocol import from_ms

    return from_ms(ms)
