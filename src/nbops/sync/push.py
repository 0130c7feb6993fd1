"""``nbops.push(uri)``: send runs (and registered models) to an MLflow tracking server.

See protocol.py for what travels and how a second push knows what is new. Runs go in
parallel (``WORKERS`` threads, one run each: create, ``log_batch`` in chunks, dataset
inputs, artifacts, terminate); parents before their children, so a child can name its
parent's remote id in ``mlflow.parentRunId``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .._util import to_jsonable, utc_now
from ..store import Store, get_store
from . import links
from .protocol import (
    CELL_ARTIFACT,
    MAX_METRICS,
    MAX_PARAMS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    RECORD_ARTIFACT,
    TAG_PARAMS,
    TAG_RUN_ID,
    WORKERS,
    connect,
    digest,
    log_batch,
    mlflow_error,
    param_text,
    quiet,
    server_key,
    source_tags,
    to_ms,
)
from .summary import SyncSummary

LINK_BATCH = 50  # links written to the store every this many pushed runs


def push(
    uri: str,
    experiments: list[str] | None = None,
    models: bool = True,
    dry_run: bool = False,
    store: Store | None = None,
) -> SyncSummary:
    """Push runs of ``experiments`` (default: all) and, with ``models``, every registered
    model version whose run is pushed, to the MLflow tracking server at ``uri``.

    Idempotent and incremental: unchanged runs cost no request, changed ones update
    their remote twin, an interrupted push resumes. With ``dry_run`` nothing is sent:
    the summary says what would be created or updated. Returns a SyncSummary; a run
    that fails is listed with its reason and the others still go. Raises SyncError
    when mlflow is missing or the server cannot be reached at all."""
    store = store or get_store()
    t0 = time.perf_counter()
    server = server_key(uri)
    summary = SyncSummary("push", server, dry_run=dry_run)
    wanted = set(experiments) if experiments else None
    docs = [d for d in store.all_runs() if wanted is None or d.get("experiment") in wanted]
    run_links = links.load(store, server, "run")
    todo = []
    for doc in docs:
        fp = run_digest(store, doc)
        link = run_links.get(doc["run_id"])
        if link is not None and link.get("digest") == fp:
            summary.add("unchanged", f"run:{doc['run_id']}")
        else:
            todo.append((doc, fp))
    if dry_run:
        for doc, _ in todo:
            linked = doc["run_id"] in run_links
            summary.add("updated" if linked else "created", f"run:{doc['run_id']}")
        if models:
            from .models import push_models

            push_models(None, uri, store, summary, run_links, dry_run=True, experiments=wanted)
        summary.seconds = time.perf_counter() - t0
        return summary

    client = connect(uri)
    with quiet():
        if todo:
            _push_runs(client, uri, server, store, todo, run_links, summary)
        if models:
            from .models import push_models

            push_models(client, uri, store, summary, run_links, dry_run=False, experiments=wanted)
    summary.seconds = time.perf_counter() - t0
    return summary


def run_digest(store: Store, doc: dict[str, Any]) -> str:
    """What a run's link remembers: a digest of its record and step counts."""
    steps = {}
    for key in store.step_keys(doc["run_id"]):
        rec = store.get_steps(doc["run_id"], key)
        steps[key] = len(rec["steps"]) if rec else 0
    record = {k: v for k, v in doc.items() if k != "pid"}
    return digest([record, steps])


# -- runs ------------------------------------------------------------------------------


def _push_runs(
    client: Any,
    uri: str,
    server: str,
    store: Store,
    todo: list,
    run_links: dict[str, dict],
    summary: SyncSummary,
) -> None:
    experiment_ids = {}
    for name in sorted({doc.get("experiment") or "default" for doc, _ in todo}):
        experiment_ids[name] = _experiment_id(client, name)
    _adopt(client, server, todo, run_links, experiment_ids)

    pending: dict[str, tuple[dict, str]] = {doc["run_id"]: (doc, fp) for doc, fp in todo}
    new_links: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        while pending:
            # a wave: runs whose parent is not waiting to be pushed itself
            wave = [rid for rid, (doc, _) in pending.items() if doc.get("parent_id") not in pending]
            if not wave:  # a parent loop cannot happen in nbops; push the rest anyway
                wave = list(pending)
            futures = {}
            for rid in wave:
                doc, fp = pending.pop(rid)
                parent = run_links.get(doc.get("parent_id") or "")
                futures[
                    pool.submit(
                        _push_run,
                        client,
                        uri,
                        server,
                        store,
                        doc,
                        fp,
                        run_links.get(rid),
                        parent["remote"] if parent else None,
                        experiment_ids[doc.get("experiment") or "default"],
                    )
                ] = rid
            for future in as_completed(futures):
                rid = futures[future]
                try:
                    outcome, link = future.result()
                except Exception as exc:  # noqa: BLE001 - one run's failure is reported
                    summary.add("failed", f"run:{rid}", mlflow_error(f"run {rid}", exc))
                    continue
                run_links[rid] = link
                new_links.append(link)
                summary.add(outcome, f"run:{rid}")
                if len(new_links) >= LINK_BATCH:
                    links.save(store, new_links)
                    new_links = []
    links.save(store, new_links)


def _experiment_id(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - another pusher created it in between
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _adopt(
    client: Any, server: str, todo: list, run_links: dict[str, dict], experiment_ids: dict[str, str]
) -> None:
    """Link runs an interrupted push created but did not record (found by their
    ``nbops.run_id`` tag), so they are updated instead of created twice."""
    unlinked: dict[str, set[str]] = {}
    for doc, _ in todo:
        if doc["run_id"] not in run_links:
            unlinked.setdefault(experiment_ids[doc.get("experiment") or "default"], set()).add(
                doc["run_id"]
            )
    for exp_id, ids in unlinked.items():
        token = None
        while True:
            page = client.search_runs(
                [exp_id],
                filter_string=f"tags.`{TAG_RUN_ID}` LIKE '%'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                local = run.data.tags.get(TAG_RUN_ID)
                if local in ids and local not in run_links:
                    run_links[local] = {
                        "server": server,
                        "kind": "run",
                        "local": local,
                        "remote": run.info.run_id,
                        "artifact_uri": run.info.artifact_uri,
                        "adopted": True,
                    }
            token = page.token
            if not token:
                break


def _push_run(
    client: Any,
    uri: str,
    server: str,
    store: Store,
    doc: dict[str, Any],
    fp: str,
    link: dict[str, Any] | None,
    parent_remote: str | None,
    experiment_id: str,
) -> tuple[str, dict[str, Any]]:
    run_id = doc["run_id"]
    tags = {str(k): str(v) for k, v in (doc.get("tags") or {}).items()}
    tags[TAG_RUN_ID] = run_id
    tags["mlflow.runName"] = str(doc.get("name") or run_id)
    if parent_remote:
        tags["mlflow.parentRunId"] = parent_remote
    tags.update(source_tags(doc))
    params = to_jsonable(doc.get("params") or {})
    typed = json.dumps(params, allow_nan=True)
    if len(typed) <= MAX_TAG_LENGTH:
        tags[TAG_PARAMS] = typed

    if link is None:
        run = client.create_run(
            experiment_id,
            start_time=to_ms(doc.get("start_time")),
            tags=tags,
            run_name=str(doc.get("name") or run_id),
        )
        link = {
            "server": server,
            "kind": "run",
            "local": run_id,
            "remote": run.info.run_id,
            "artifact_uri": run.info.artifact_uri,
        }
        outcome, sent_tags = "created", tags
    else:
        link = dict(link)
        outcome = "created" if link.pop("adopted", False) else "updated"
        sent_tags = tags
    remote = link["remote"]

    # params, tags (for an update) and every metric step not sent yet
    param_list = [(k, param_text(v)) for k, v in params.items()]
    tag_list = list(sent_tags.items()) if outcome == "updated" else []
    metrics, sent_steps, singles = _new_metrics(store, doc, link)
    while param_list or tag_list or metrics:
        p, param_list = param_list[:MAX_PARAMS], param_list[MAX_PARAMS:]
        t, tag_list = tag_list[:MAX_TAGS], tag_list[MAX_TAGS:]
        room = MAX_METRICS - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        log_batch(client, remote, m, p, t)

    sent_inputs = _push_inputs(client, store, doc, remote, set(link.get("inputs") or []))
    sent_artifacts = _push_artifacts(uri, store, doc, link)

    status = doc.get("status") or "FINISHED"
    if status != "RUNNING":
        client.set_terminated(remote, status=status, end_time=to_ms(doc.get("end_time")))
    link.update(
        digest=fp,
        steps=sent_steps,
        singles=singles,
        inputs=sent_inputs,
        artifacts=sent_artifacts,
        experiment_id=experiment_id,
        pushed=utc_now(),
    )
    return outcome, link


def _new_metrics(store: Store, doc: dict[str, Any], link: dict[str, Any]):
    """(key, value, ms, step) tuples not sent yet, step counts, single values sent."""
    run_id = doc["run_id"]
    sent = dict(link.get("steps") or {})
    singles = dict(link.get("singles") or {})
    out: list[tuple] = []
    keys = store.step_keys(run_id)
    for key in keys:
        rec = store.get_steps(run_id, key)
        if rec is None:
            continue
        start = sent.get(key, 0)
        for step, value, stamp in zip(
            rec["steps"][start:], rec["values"][start:], rec["timestamps"][start:], strict=False
        ):
            out.append((key, _float(value), int(round(stamp * 1000)), int(step)))
        sent[key] = len(rec["steps"])
    end = to_ms(doc.get("end_time") or doc.get("start_time")) or int(time.time() * 1000)
    for key, value in (doc.get("metrics") or {}).items():
        if key in keys or singles.get(key) == value:
            continue
        out.append((key, _float(value), end, 0))
        singles[key] = value
    return out, sent, singles


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _push_inputs(
    client: Any, store: Store, doc: dict[str, Any], remote: str, sent: set[str]
) -> list[str]:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    new = [d for d in doc.get("inputs") or [] if d not in sent]
    inputs = []
    for dig in new:
        rec = store.get_dataset(dig) or {"digest": dig}
        dataset = Dataset(
            name=str(rec.get("name") or f"dataset-{dig[:8]}"),
            digest=str(dig)[:36],
            source_type="nbops",
            source=json.dumps({"nbops_digest": dig, "source": rec.get("source")}),
            schema=json.dumps(to_jsonable({"nbops": rec.get("schema"), "shape": rec.get("shape")})),
            profile=json.dumps(to_jsonable(rec.get("profile") or {}), allow_nan=False, default=str)
            if _finite_json(rec.get("profile"))
            else None,
        )
        inputs.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")]))
    if inputs:
        client.log_inputs(remote, datasets=inputs)
    return sorted(sent | set(new))


def _finite_json(value: Any) -> bool:
    try:
        json.dumps(to_jsonable(value, strict=True), allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _push_artifacts(
    uri: str, store: Store, doc: dict[str, Any], link: dict[str, Any]
) -> dict[str, str]:
    """Upload artifacts not sent yet (by name and sha256), the nbops record and the
    cell source; returns {name: sha256} of what the remote run holds."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    sent = dict(link.get("artifacts") or {})
    repo = get_artifact_repository(link["artifact_uri"], tracking_uri=uri)
    with tempfile.TemporaryDirectory(prefix="nbops-push-") as tmp:
        for art in doc.get("artifacts") or []:
            name, sha = art["name"], art.get("sha256")
            if sent.get(name) == sha or not sha:
                continue
            path = store.artifacts.path(sha)
            if not path.is_file():
                if art.get("remote"):  # pulled and never downloaded: it lives remotely
                    continue
                raise FileNotFoundError(f"artifact {name} ({sha[:12]}) is missing locally")
            _upload(repo, path, name, Path(tmp))
            sent[name] = sha
        record = {k: v for k, v in doc.items() if k not in ("pid",)}
        record["step_keys"] = store.step_keys(doc["run_id"])
        data = json.dumps(to_jsonable(record), allow_nan=True, indent=1).encode()
        _upload_bytes(repo, data, RECORD_ARTIFACT, Path(tmp))
        source = (doc.get("code") or {}).get("source")
        if source and sent.get(CELL_ARTIFACT) != digest(source):
            _upload_bytes(repo, str(source).encode(), CELL_ARTIFACT, Path(tmp))
            sent[CELL_ARTIFACT] = digest(source)
    return sent


def _upload(repo: Any, path: Path, name: str, tmp: Path) -> None:
    folder, _, base = name.rpartition("/")
    target = tmp / f"u{time.monotonic_ns()}" / base
    target.parent.mkdir(parents=True)
    try:  # a hard link when the temp folder shares the store's file system
        os.link(path, target)
    except OSError:
        import shutil

        shutil.copyfile(path, target)
    repo.log_artifact(str(target), folder or None)


def _upload_bytes(repo: Any, data: bytes, name: str, tmp: Path) -> None:
    folder, _, base = name.rpartition("/")
    target = tmp / f"b{time.monotonic_ns()}" / base
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    repo.log_artifact(str(target), folder or None)
