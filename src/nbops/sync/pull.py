"""``nbops.pull(uri)``: bring MLflow experiments into the local store.

Runs nbops pushed come back whole from their ``nbops/run.json`` (typed params, code,
environment, artifact digests, models). Runs nbops never made are kept as MLflow has
them: params as strings, tags, last metrics and full histories, dataset inputs, the
artifact listing. Artifacts are downloaded on demand (:func:`pull_artifacts`) or at
once with ``artifacts=True``; until then a run's artifact entry says ``remote``.
A run already pulled is compared by a digest of its remote state: unchanged ones
cost nothing but the search, changed ones get new tags, metrics steps and status
(recorded params are never overwritten).
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._errors import SyncError
from .._util import utc_now
from ..store import Store, get_store
from . import links
from .protocol import (
    RECORD_ARTIFACT,
    TAG_PARAMS,
    TAG_RUN_ID,
    WORKERS,
    connect,
    digest,
    from_mlflow_value,
    from_ms,
    mlflow_error,
    parse_param,
    quiet,
    server_key,
)
from .summary import SyncSummary


def pull(
    uri: str,
    experiments: list[str] | None = None,
    models: bool = True,
    artifacts: bool = False,
    store: Store | None = None,
) -> SyncSummary:
    """Pull the runs of ``experiments`` (default: every experiment) from the MLflow
    tracking server at ``uri`` into the local store, and with ``models`` the registered
    versions of those runs. ``artifacts=True`` downloads every artifact now (else on
    demand with :func:`pull_artifacts`). Returns a SyncSummary of local run ids (and
    ``model:NAME/VERSION``). Raises SyncError when mlflow is missing or an experiment
    named in ``experiments`` does not exist on the server."""
    with quiet():
        return _pull(uri, experiments, models, artifacts, store or get_store())


def _pull(
    uri: str, experiments: list[str] | None, models: bool, artifacts: bool, store: Store
) -> SyncSummary:
    t0 = time.perf_counter()
    server = server_key(uri)
    client = connect(uri)
    summary = SyncSummary("pull", server)
    exps = _experiments(client, experiments)
    run_links = links.load(store, server, "run")
    by_remote = {link["remote"]: local for local, link in run_links.items()}
    remote_runs = []
    for exp in exps:
        token = None
        while True:
            page = client.search_runs(
                [exp.experiment_id],
                max_results=1000,
                page_token=token,
                order_by=["attributes.start_time ASC"],
            )
            remote_runs.extend((exp.name, run) for run in page)
            token = page.token
            if not token:
                break

    # local ids first, so children can name their parent's local id
    taken = set(store.run_ids())
    for _, run in remote_runs:
        rid = run.info.run_id
        if rid in by_remote:
            continue
        wanted = run.data.tags.get(TAG_RUN_ID)
        if wanted and wanted not in taken:
            by_remote[rid] = wanted
        elif wanted and _same_run(store, wanted, run):
            by_remote[rid] = wanted  # this store pushed it before: the same run
        else:
            from ..tracking.run import new_run_id

            by_remote[rid] = new_run_id()
        taken.add(by_remote[rid])

    work = []
    new_links: list[dict[str, Any]] = []
    for exp_name, run in remote_runs:
        local = by_remote[run.info.run_id]
        link = run_links.get(local)
        fp = _remote_digest(run)
        exists = store.find_run(local) is not None
        if exists and link is not None and link.get("rdigest") in (fp, None):
            if link.get("rdigest") is None:  # pushed from here: remember its state
                new_links.append({**link, "rdigest": fp})
            summary.add("unchanged", f"run:{local}")
            continue
        work.append((exp_name, run, local, exists, fp))

    def fetch(item):
        exp_name, run, local, exists, fp = item
        return _fetch(client, uri, run, exp_name, local, by_remote)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(_safe(fetch), work))
    for (_exp, run, local, exists, fp), (ok, value) in zip(work, results, strict=True):
        if not ok:
            summary.add("failed", f"run:{local}", mlflow_error(f"run {run.info.run_id}", value))
            continue
        try:
            _write(store, value, exists, server)
        except Exception as exc:  # noqa: BLE001 - reported per run
            summary.add("failed", f"run:{local}", mlflow_error(f"run {local}", exc))
            continue
        new_links.append(
            {
                **(run_links.get(local) or {}),
                "server": server,
                "kind": "run",
                "local": local,
                "remote": run.info.run_id,
                "artifact_uri": run.info.artifact_uri,
                "rdigest": fp,
                "pulled": utc_now(),
            }
        )
        summary.add("updated" if exists else "created", f"run:{local}")
    links.save(store, new_links)
    if artifacts:
        for item in summary.created + summary.updated + summary.unchanged:
            try:
                pull_artifacts(item.split(":", 1)[1], store=store, uri=uri)
            except Exception as exc:  # noqa: BLE001 - reported per run
                summary.add("failed", item, mlflow_error("artifacts", exc))
    if models:
        from .models import pull_models

        pull_models(client, uri, store, summary, by_remote)
    summary.seconds = time.perf_counter() - t0
    return summary


def _safe(fn):
    def call(item):
        try:
            return True, fn(item)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            return False, exc

    return call


def _experiments(client: Any, names: list[str] | None) -> list[Any]:
    if names:
        out = []
        for name in names:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise SyncError(
                    f"the server has no experiment {name!r}; list them in the "
                    "MLflow UI or leave --experiment out to pull all"
                )
            out.append(exp)
        return out
    out, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _same_run(store: Store, local: str, run: Any) -> bool:
    doc = store.find_run(local)
    return doc is not None and doc.get("name") == run.data.tags.get("mlflow.runName")


def _remote_digest(run: Any) -> str:
    info = run.info
    return digest([info.status, info.end_time, run.data.params, run.data.metrics, run.data.tags])


def _fetch(
    client: Any, uri: str, run: Any, exp_name: str, local: str, by_remote: dict[str, str]
) -> dict[str, Any]:
    """Everything one local run document needs, read from the server."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    info, data = run.info, run.data
    tags = dict(data.tags)
    repo = get_artifact_repository(info.artifact_uri, tracking_uri=uri)
    record: dict[str, Any] = {}
    if TAG_RUN_ID in tags:
        with tempfile.TemporaryDirectory(prefix="nbops-pull-") as tmp:
            try:
                path = repo.download_artifacts(RECORD_ARTIFACT, dst_path=tmp)
                record = json.loads(Path(path).read_text())
            except Exception:  # noqa: BLE001 - pushed by an older nbops, or removed
                record = {}
    if record:
        history_keys = [k for k in record.get("step_keys", []) if k in data.metrics]
    else:
        history_keys = list(data.metrics)
    histories = {}
    for key in history_keys:
        points = sorted(
            client.get_metric_history(info.run_id, key), key=lambda m: (m.step, m.timestamp)
        )
        if record or len(points) > 1 or (points and points[0].step != 0):
            histories[key] = points

    if record.get("params") is not None:
        params = record["params"]
    elif TAG_PARAMS in tags:
        params = json.loads(tags[TAG_PARAMS])
    else:
        params = {k: parse_param(v) for k, v in data.params.items()}
    user_tags = {k: v for k, v in tags.items() if not k.startswith(("mlflow.", "nbops."))}
    parent = tags.get("mlflow.parentRunId")
    old_metrics = record.get("metrics") or {}
    remote_metrics = {k: from_mlflow_value(v) for k, v in data.metrics.items()}
    metrics = {
        k: (
            old_metrics[k]
            if k in old_metrics
            and float(old_metrics[k]) == v
            or (k in old_metrics and v != v and old_metrics[k] != old_metrics[k])
            else v
        )
        for k, v in remote_metrics.items()
    }
    doc = {
        "run_id": local,
        "name": tags.get("mlflow.runName") or info.run_name or local,
        "experiment": exp_name,
        "parent_id": by_remote.get(parent) if parent else None,
        "status": info.status,
        "start_time": from_ms(info.start_time),
        "end_time": from_ms(info.end_time),
        "duration": record.get("duration")
        if record
        else ((info.end_time - info.start_time) / 1000 if info.end_time else None),
        "params": params,
        "metrics": metrics,
        "tags": user_tags,
        "code": record.get("code") if record else _code_from_tags(tags),
        "env": record.get("env") or {},
        "inputs": record.get("inputs") or [],
        "artifacts": record.get("artifacts") if record else _listing(repo),
        "error": record.get("error"),
    }
    for key in ("models", "sweep", "duration"):
        if key in record:
            doc[key] = record[key]
    if record.get("start_time") and from_ms(info.start_time) == _ms_round(record["start_time"]):
        doc["start_time"] = record["start_time"]
    if record.get("end_time") and from_ms(info.end_time) == _ms_round(record["end_time"]):
        doc["end_time"] = record["end_time"]
    for key, value in record.items():  # fields a newer nbops added keep travelling
        if key not in doc and key not in ("step_keys", "pid"):
            doc[key] = value
    datasets = _datasets(run)
    if not record:
        doc["inputs"] = [d["digest"] for d in datasets]
    return {"doc": doc, "histories": histories, "datasets": datasets}


def _ms_round(stamp: str) -> str | None:
    from .protocol import to_ms

    return from_ms(to_ms(stamp))


def _code_from_tags(tags: dict[str, str]) -> dict[str, Any]:
    code: dict[str, Any] = {}
    name = tags.get("mlflow.source.name")
    if name:
        code["notebook" if tags.get("mlflow.source.type") == "NOTEBOOK" else "script"] = name
    if tags.get("mlflow.source.git.commit"):
        code["git_commit"] = tags["mlflow.source.git.commit"]
    return code


def _listing(repo: Any, path: str | None = None) -> list[dict[str, Any]]:
    out = []
    for info in repo.list_artifacts(path):
        if info.is_dir:
            out.extend(_listing(repo, info.path))
        else:
            out.append({"name": info.path, "sha256": None, "size": info.file_size, "kind": "file"})
    return out


def _datasets(run: Any) -> list[dict[str, Any]]:
    out = []
    for item in getattr(run.inputs, "dataset_inputs", None) or []:
        ds = item.dataset
        record = {"digest": ds.digest, "name": ds.name, "source": ds.source}
        try:
            src = json.loads(ds.source or "{}")
            if isinstance(src, dict) and src.get("nbops_digest"):
                record["digest"] = src["nbops_digest"]
                record["source"] = src.get("source")
            schema = json.loads(ds.schema) if ds.schema else {}
            if isinstance(schema, dict) and "nbops" in schema:
                record["schema"], record["shape"] = schema["nbops"], schema.get("shape")
            else:
                record["schema"] = schema
            record["profile"] = json.loads(ds.profile) if ds.profile else None
        except (TypeError, ValueError):
            pass
        out.append(record)
    return out


def _write(store: Store, fetched: dict[str, Any], exists: bool, server: str) -> None:
    doc, histories = fetched["doc"], fetched["histories"]
    for ds in fetched["datasets"]:
        store.add_dataset({**ds, "first_seen": utc_now()})
    local_arts = []
    for art in doc.get("artifacts") or []:
        art = dict(art)
        sha = art.get("sha256")
        if not sha or not store.artifacts.path(sha).is_file():
            art["remote"] = server
        local_arts.append(art)
    doc["artifacts"] = local_arts
    with store.transaction():
        if exists:
            old = store.get_run(doc["run_id"])
            fields = {k: doc[k] for k in ("status", "end_time", "duration", "metrics")}
            fields["tags"] = {**(old.get("tags") or {}), **doc["tags"]}
            fields["params"] = {**doc["params"], **(old.get("params") or {})}
            known = {a["name"] for a in old.get("artifacts") or []}
            fields["artifacts"] = (old.get("artifacts") or []) + [
                a for a in local_arts if a["name"] not in known
            ]
            store.update_run(doc["run_id"], fields)
        else:
            store.insert_run(doc)
        for key, points in histories.items():
            # a new run has no steps yet: asking would scan the store's log for each key
            have = store.get_steps(doc["run_id"], key) if exists else None
            start = len(have["steps"]) if have else 0
            new = points[start:]
            if new:
                store.append_steps(
                    doc["run_id"],
                    key,
                    [p.step for p in new],
                    [from_mlflow_value(p.value) for p in new],
                    [p.timestamp / 1000 for p in new],
                )


def pull_artifacts(
    run_id: str, names: list[str] | None = None, store: Store | None = None, uri: str | None = None
) -> list[dict[str, Any]]:
    """Download the artifacts of a pulled run that are still on the server only (all,
    or those in ``names``) into the store; returns the run's artifact entries. Files
    nbops pushed are checked against their recorded sha256. Raises RunNotFoundError for
    an unknown run and SyncError when a file does not match its digest or the run has
    no link to a server."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    store = store or get_store()
    doc = store.get_run(run_id)
    arts = [dict(a) for a in doc.get("artifacts") or []]
    wanted = [a for a in arts if a.get("remote") and (names is None or a["name"] in names)]
    if not wanted:
        return arts
    server = uri and server_key(uri) or wanted[0]["remote"]
    link = links.load(store, server, "run").get(run_id)
    if link is None:
        raise SyncError(
            f"run {run_id} has no link to {server}; pull it again with nbops.pull({server!r})"
        )
    repo = get_artifact_repository(link["artifact_uri"], tracking_uri=uri or server)
    with tempfile.TemporaryDirectory(prefix="nbops-artifacts-") as tmp:
        for art in wanted:
            path = repo.download_artifacts(art["name"], dst_path=tmp)
            sha, size = store.artifacts.put_file(path)
            if art.get("sha256") and art["sha256"] != sha:
                raise SyncError(
                    f"artifact {art['name']} of run {run_id} hashes to {sha[:12]} "
                    f"on {server}, not the recorded {art['sha256'][:12]}"
                )
            art.update(sha256=sha, size=size)
            art.pop("remote", None)
    store.update_run(run_id, {"artifacts": arts})
    return arts
