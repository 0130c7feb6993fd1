"""nbops.push / nbops.pull against a real `mlflow server` (SQLite backend, local artifact
destination) on 127.0.0.1; test_sync_postgres.py repeats the round trip on PostgreSQL."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import needs

HAS_MLFLOW_SERVER = importlib.util.find_spec("mlflow.server") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(backend_uri: str, artifacts: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on a free 127.0.0.1 port; returns (process, tracking URI)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "2",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, uri
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"mlflow server did not start in 120 s: {log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    needs(HAS_MLFLOW_SERVER, "mlflow==3.17.2 (the server) is in the dev extra")
    tmp = tmp_path_factory.mktemp("mlflow")
    proc, uri = start_mlflow(
        f"sqlite:///{tmp / 'mlflow.db'}", tmp / "artifacts", tmp / "server.log"
    )
    yield uri
    stop(proc)


@pytest.fixture
def exp():
    """An experiment name no other test on the shared server uses."""
    return f"exp-{uuid.uuid4().hex[:8]}"


def client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def make_runs(exp: str, tmp: Path) -> dict[str, str]:
    """A parent with typed params, a step history, a tag, an artifact and a dataset,
    and a child run. Returns their ids."""
    import numpy as np
    import pandas as pd

    import nbops

    frame = pd.DataFrame({"x": np.arange(20.0), "c": list("ab") * 10})
    with nbops.start_run(name="parent", experiment=exp) as parent:
        nbops.log_params(
            {"depth": 3, "lr": 0.1, "kind": "rf", "flag": True, "layers": [64, 32], "none": None}
        )
        for i in range(5):
            nbops.log_metric("loss", 1.0 / (i + 1), step=i)
        nbops.log_metric("accuracy", 0.9)
        nbops.set_tag("team", "fraud")
        art = tmp / "notes.txt"
        art.write_bytes(b"hello \x00 bytes\n")
        nbops.log_artifact(art, name="reports/notes.txt")
        nbops.log_dataset(frame, name="train")
        with nbops.start_run(name="child", experiment=exp, parent_id=parent.run_id) as child:
            nbops.log_metric("accuracy", 0.5)
    return {"parent": parent.run_id, "child": child.run_id}


def remote_run(uri: str, exp: str, name: str):
    c = client(uri)
    e = c.get_experiment_by_name(exp)
    runs = c.search_runs([e.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'")
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


# -- push ------------------------------------------------------------------------------


def test_push_sends_params_typed_tags_parent_link_and_source(server, store, exp, tmp_path):
    import nbops

    ids = make_runs(exp, tmp_path)
    summary = nbops.push(server, experiments=[exp])
    assert summary.ok, summary.failed
    assert sorted(summary.created) == sorted(f"run:{i}" for i in ids.values())
    parent, child = remote_run(server, exp, "parent"), remote_run(server, exp, "child")
    assert parent.data.params["depth"] == "3" and parent.data.params["kind"] == "rf"
    assert parent.data.params["layers"] == "[64, 32]"
    assert json.loads(parent.data.tags["nbops.params"]) == nbops.get_run(ids["parent"])["params"]
    assert parent.data.tags["nbops.run_id"] == ids["parent"]
    assert parent.data.tags["team"] == "fraud"
    assert parent.data.tags["mlflow.source.type"] == "LOCAL"
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.info.status == "FINISHED"


def test_push_sends_full_step_history_with_timestamps(server, store, exp, tmp_path):
    import nbops

    ids = make_runs(exp, tmp_path)
    nbops.push(server, experiments=[exp])
    parent = remote_run(server, exp, "parent")
    points = sorted(
        client(server).get_metric_history(parent.info.run_id, "loss"), key=lambda m: m.step
    )
    local = nbops.metric_history(ids["parent"], "loss")
    assert [p.step for p in points] == local["step"].tolist()
    assert [p.value for p in points] == local["value"].tolist()
    stamps = (local["timestamp"].astype("int64") // 1_000_000).tolist()  # ns -> ms
    assert [p.timestamp for p in points] == pytest.approx(stamps, abs=1)


def test_non_finite_metric_values_travel_as_mlflow_writes_them(server, store, exp, tmp_path):
    import nbops

    with nbops.start_run(name="odd", experiment=exp) as run:
        for i, value in enumerate([float("nan"), float("inf"), float("-inf"), 0.25]):
            nbops.log_metric("score", value, step=i)
    summary = nbops.push(server, experiments=[exp])
    assert summary.ok, summary.failed
    remote = remote_run(server, exp, "odd")
    points = sorted(
        client(server).get_metric_history(remote.info.run_id, "score"), key=lambda m: m.step
    )
    values = [p.value for p in points]  # MLflow keeps an infinity as the largest double
    assert math.isnan(values[0]) and values[1:] == [sys.float_info.max, -sys.float_info.max, 0.25]
    nbops.set_store(tmp_path / "pulled")
    try:
        assert nbops.pull(server, experiments=[exp]).ok
        back = nbops.metric_history(run.run_id, "score")["value"].tolist()
    finally:
        nbops.set_store(None)
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf, 0.25]


def test_pushed_artifact_bytes_are_identical_and_record_travels(server, store, exp, tmp_path):
    import nbops

    ids = make_runs(exp, tmp_path)
    nbops.push(server, experiments=[exp])
    parent = remote_run(server, exp, "parent")
    out = Path(
        client(server).download_artifacts(parent.info.run_id, "reports/notes.txt", str(tmp_path))
    )
    assert out.read_bytes() == b"hello \x00 bytes\n"
    rec = Path(
        client(server).download_artifacts(parent.info.run_id, "nbops/run.json", str(tmp_path))
    )
    record = json.loads(rec.read_text())
    assert record["env"] == nbops.get_run(ids["parent"])["env"]
    assert record["step_keys"] == ["loss"]


def test_pushed_dataset_is_an_mlflow_dataset_input(server, store, exp, tmp_path):
    import nbops

    ids = make_runs(exp, tmp_path)
    nbops.push(server, experiments=[exp])
    parent = remote_run(server, exp, "parent")
    [ds] = [d.dataset for d in parent.inputs.dataset_inputs]
    digest = nbops.get_run(ids["parent"])["inputs"][0]
    assert ds.name == "train" and ds.digest == digest[:36]
    schema = json.loads(ds.schema)["nbops"]
    assert set(schema) == {"x", "c"} and schema["x"] == "float64"


def test_second_push_sends_nothing_and_a_changed_run_updates_its_twin(server, store, exp, tmp_path):
    import nbops

    ids = make_runs(exp, tmp_path)
    nbops.push(server, experiments=[exp])
    again = nbops.push(server, experiments=[exp])
    assert again.created == [] and again.updated == [] and len(again.unchanged) == 2
    nbops.set_run_tags(ids["child"], {"reviewed": "yes"})
    third = nbops.push(server, experiments=[exp])
    assert third.updated == [f"run:{ids['child']}"]
    assert remote_run(server, exp, "child").data.tags["reviewed"] == "yes"
    runs = client(server).search_runs([client(server).get_experiment_by_name(exp).experiment_id])
    assert len(runs) == 2


def test_interrupted_push_resumes_without_duplicate_runs_or_steps(server, store, exp, tmp_path):
    import nbops
    from nbops.store import get_store

    make_runs(exp, tmp_path)
    nbops.push(server, experiments=[exp])
    # a crash before the links were written: the store forgets what it sent
    get_store().collection("sync_links", key="ref").clear()
    resumed = nbops.push(server, experiments=[exp])
    assert resumed.ok and len(resumed.created) == 2
    c = client(server)
    runs = c.search_runs([c.get_experiment_by_name(exp).experiment_id])
    assert len(runs) == 2
    parent = remote_run(server, exp, "parent")
    assert len(c.get_metric_history(parent.info.run_id, "loss")) == 5


def test_dry_run_lists_what_would_go_and_sends_nothing(server, store, exp, tmp_path):
    import nbops

    ids = make_runs(exp, tmp_path)
    summary = nbops.push(server, experiments=[exp], dry_run=True)
    assert summary.dry_run and sorted(summary.created) == sorted(f"run:{i}" for i in ids.values())
    assert client(server).get_experiment_by_name(exp) is None


def test_a_failing_run_is_reported_with_its_reason_and_the_rest_goes(server, store, exp, tmp_path):
    import nbops
    from nbops.store import get_store

    ids = make_runs(exp, tmp_path)
    sha = nbops.get_run(ids["parent"])["artifacts"][0]["sha256"]
    get_store().artifacts.delete(sha)
    summary = nbops.push(server, experiments=[exp])
    [failure] = summary.failed
    assert failure["id"] == f"run:{ids['parent']}" and "reports/notes.txt" in failure["reason"]
    assert f"run:{ids['child']}" in summary.created


def test_credentials_in_the_uri_are_never_stored(server, store, exp, tmp_path):
    import nbops

    make_runs(exp, tmp_path)
    secret_uri = server.replace("http://", "http://alice:s3cret-pw@")
    assert nbops.push(secret_uri, experiments=[exp]).ok
    assert not any(b"s3cret-pw" in p.read_bytes() for p in Path(store).rglob("*") if p.is_file())


# -- models ----------------------------------------------------------------------------


def make_model(exp: str):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import nbops

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    name = f"clf-{uuid.uuid4().hex[:6]}"
    with nbops.start_run(name="train", experiment=exp) as run:
        model = LogisticRegression().fit(X, y)
        nbops.log_model(model)
    nbops.register(run.run_id, name, description="first try")
    nbops.transition(name, 1, "Staging", reason="looks good")
    nbops.set_alias(name, "champion", 1)
    return name, model, X


def test_registered_version_loads_with_mlflow_sklearn(server, store, exp, monkeypatch):
    import mlflow

    import nbops

    name, model, X = make_model(exp)
    summary = nbops.push(server, experiments=[exp])
    assert f"model:{name}/1" in summary.created, summary
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(server)
    loaded = mlflow.sklearn.load_model(f"models:/{name}/1")
    assert (loaded.predict(X) == model.predict(X)).all()
    mv = client(server).get_model_version(name, "1")
    assert mv.current_stage == "Staging" and "champion" in mv.aliases
    assert mv.description == "first try"
    audit = [json.loads(v) for k, v in sorted(mv.tags.items()) if k.startswith("nbops.audit.")]
    assert [e["action"] for e in audit] == ["register", "transition", "set_alias"]


def test_a_stage_change_updates_the_remote_version(server, store, exp):
    import nbops

    name, _, _ = make_model(exp)
    nbops.push(server, experiments=[exp])
    nbops.transition(name, 1, "Production")
    summary = nbops.push(server, experiments=[exp])
    assert summary.updated == [f"model:{name}/1"]
    assert client(server).get_model_version(name, "1").current_stage == "Production"


# -- pull ------------------------------------------------------------------------------


def snapshot(run_ids: list[str]) -> dict:
    """Everything the round trip must keep, in a comparable form."""
    import nbops
    from nbops.store import get_store

    store = get_store()
    runs = nbops.runs().sort_values("name").reset_index(drop=True)
    histories = {}
    for rid in run_ids:
        name = nbops.get_run(rid)["name"]
        for key in nbops.get_run(rid)["metrics"]:
            h = nbops.metric_history(rid, key)
            # MLflow keeps milliseconds: compared separately, to within one
            stamps = (h.pop("timestamp").astype("int64") // 1_000_000).tolist()
            histories[(name, key)] = (h.to_dict("list"), stamps)
    files = {}
    for rid in run_ids:
        for art in nbops.get_run(rid)["artifacts"]:
            files[(nbops.get_run(rid)["name"], art["name"])] = store.artifacts.verify(
                art["sha256"]
            ).read_bytes()
    models = nbops.models().drop(columns=["run_id"])
    history = nbops.model_history()
    return {
        "runs": runs,
        "histories": histories,
        "files": files,
        "models": models,
        "history": history,
    }


def test_round_trip_push_then_pull_into_an_empty_store_compares_equal(
    server, exp, tmp_path, monkeypatch
):
    import pandas as pd

    import nbops

    monkeypatch.setenv("NBOPS_STORE", str(tmp_path / "a"))
    nbops.set_store(None)
    ids = make_runs(exp, tmp_path)
    name, _, _ = make_model(exp)
    before = snapshot(
        list(ids.values()) + [r for r in nbops.runs()["run_id"] if r not in ids.values()]
    )
    assert nbops.push(server, experiments=[exp]).ok

    nbops.set_store(tmp_path / "b")
    pulled = nbops.pull(server, experiments=[exp], artifacts=True)
    assert pulled.ok, pulled.failed
    assert len(pulled.created) == 4 and f"model:{name}/1" in pulled.created
    after = snapshot(nbops.runs()["run_id"].tolist())
    nbops.set_store(None)
    pd.testing.assert_frame_equal(before["runs"], after["runs"])
    assert before["histories"].keys() == after["histories"].keys()
    for key, (values, stamps) in before["histories"].items():
        assert after["histories"][key][0] == values
        assert after["histories"][key][1] == pytest.approx(stamps, abs=1)
    assert before["files"] == after["files"]
    pd.testing.assert_frame_equal(before["models"], after["models"])
    pd.testing.assert_frame_equal(before["history"], after["history"])


def test_second_pull_is_unchanged(server, store, exp, tmp_path):
    import nbops

    make_runs(exp, tmp_path)
    nbops.push(server, experiments=[exp])
    nbops.set_store(tmp_path / "other")
    assert len(nbops.pull(server, experiments=[exp]).created) == 2
    again = nbops.pull(server, experiments=[exp])
    assert again.created == [] and again.updated == [] and len(again.unchanged) == 2


def test_a_run_that_grew_on_the_server_gets_only_its_new_steps(server, store, exp):
    import nbops

    c = client(server)
    run = c.create_run(c.create_experiment(exp), run_name="growing")
    for step in range(3):
        c.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    [item] = nbops.pull(server, experiments=[exp]).created
    local = item.split(":", 1)[1]
    for step in range(3, 5):
        c.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    again = nbops.pull(server, experiments=[exp])
    assert again.updated == [item] and again.created == []
    history = nbops.metric_history(local, "loss")
    assert history["step"].tolist() == [0, 1, 2, 3, 4]
    assert history["value"].tolist() == [1.0 / (s + 1) for s in range(5)]


def test_pull_brings_runs_nbops_never_made(server, store, exp, tmp_path):
    import nbops

    c = client(server)
    exp_id = c.create_experiment(exp)
    run = c.create_run(exp_id, run_name="mlflow-made", tags={"owner": "bob"})
    rid = run.info.run_id
    c.log_param(rid, "alpha", "0.5")
    for step in range(3):
        c.log_metric(rid, "rmse", 1.0 - step / 10, step=step)
    (tmp_path / "model.txt").write_text("weights")
    c.log_artifact(rid, str(tmp_path / "model.txt"), "out")
    c.set_terminated(rid)

    summary = nbops.pull(server, experiments=[exp])
    [item] = summary.created
    local = nbops.get_run(item.split(":", 1)[1])
    assert local["name"] == "mlflow-made" and local["params"] == {"alpha": "0.5"}
    assert local["tags"] == {"owner": "bob"} and local["status"] == "FINISHED"
    assert nbops.metric_history(local["run_id"], "rmse")["value"].tolist() == [1.0, 0.9, 0.8]
    [art] = local["artifacts"]
    assert art["name"] == "out/model.txt" and art["remote"] == server
    [fetched] = nbops.pull_artifacts(local["run_id"])
    from nbops.store import get_store

    assert get_store().artifacts.verify(fetched["sha256"]).read_text() == "weights"


def test_pull_of_an_unknown_experiment_is_a_clear_error(server, store):
    import nbops

    with pytest.raises(nbops.SyncError, match="no experiment 'nope"):
        nbops.pull(server, experiments=["nope-" + uuid.uuid4().hex])


# -- CLI -------------------------------------------------------------------------------


def test_cli_push_dry_run_then_push_and_pull(server, store, exp, tmp_path, capsys):
    from nbops.cli import main

    make_runs(exp, tmp_path)
    assert main(["push", server, "--experiment", exp, "--dry-run"]) == 0
    assert "would be pushed" in capsys.readouterr().out
    assert main(["push", server, "--experiment", exp, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["created"]) == 2 and out["failed"] == []
    other = tmp_path / "other"
    assert main(["--store", str(other), "pull", server, "--experiment", exp]) == 0
    assert "2 created" in capsys.readouterr().out


def test_a_sqlite_tracking_uri_works_without_a_server(tmp_path, monkeypatch):
    import nbops

    needs(HAS_MLFLOW_SERVER, "mlflow==3.17.2 (its SQL store) is in the dev extra")
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns
    monkeypatch.setenv("NBOPS_STORE", str(tmp_path / "a"))
    nbops.set_store(None)
    ids = make_runs("local", tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert len(nbops.push(uri).created) == 2
    nbops.set_store(tmp_path / "b")
    try:
        assert len(nbops.pull(uri, artifacts=True).created) == 2
        assert nbops.get_run(ids["parent"])["params"]["layers"] == [64, 32]
        assert nbops.metric_history(ids["parent"], "loss")["value"].tolist() == [
            1.0 / (i + 1) for i in range(5)
        ]
    finally:
        nbops.set_store(None)
