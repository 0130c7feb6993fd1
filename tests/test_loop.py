"""The closed loop end to end against a real exported service: shifted traffic ->
drift -> an alert with action="retrain" -> the Production cell re-run on the labelled
traffic -> gates -> a canary 10 -> 50 -> 100 in the running service -> Production; and
a candidate that errs in the canary rolled back by the service."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pandas as pd
import pytest

import nbops
from nbops.serving.events import sync_events
from nbops.tracking.cell import TrackOptions, run_tracked_cell

CELL = """\
seed = 0
from sklearn.linear_model import LogisticRegression
features = ["x1", "x2"]
X, y = train_df[features], train_df["target"]
model = LogisticRegression(random_state=seed).fit(X, y)
accuracy = float(model.score(X, y))
"""
PLAN = {"min_requests": 20, "max_p99_ms": 2000}


def world_data(n, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.normal(0, 1, n)})
    # the label depends on x1 relative to where the data sits: a shift moves the boundary
    df["target"] = (df["x1"] - shift + 0.5 * df["x2"] > 0).astype(int)
    return df


def score(client, rows, rid):
    body = {
        "dataframe_split": {"columns": ["x1", "x2"], "data": rows[["x1", "x2"]].to_numpy().tolist()}
    }
    r = client.post("/invocations", json=body, headers={"X-Request-ID": rid})
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


@pytest.fixture
def serving(store, tmp_path):
    result = run_tracked_cell(
        CELL, TrackOptions(name="train"), user_ns={"train_df": world_data(400)}
    )
    assert result.error is None
    nbops.register(result.run.run_id, "loop")
    nbops.transition("loop", 1, "Production", reason="first model")
    nbops.export("loop", stage="Production", path=tmp_path / "service")
    svc = nbops.start_service(tmp_path / "service")
    client = httpx.Client(base_url=svc.url, timeout=10)
    yield svc, client
    client.close()
    svc.stop()


def send_shifted_traffic(client, n_batches=6, rows=50):
    for k in range(n_batches):
        batch = world_data(rows, shift=2.0, seed=10 + k)
        score(client, batch, f"shift-{k}")
        labels = batch["target"].tolist()
        r = client.post(
            "/feedback", json={"ids": [f"shift-{k}-{i}" for i in range(rows)], "labels": labels}
        )
        assert r.status_code == 200
    time.sleep(0.5)  # the service flushes its logs every 0.2 s


def drive_canary(svc, client, requests=400):
    """Send single-row requests until the canary has finished (promoted or rolled back)."""
    rows = world_data(requests, shift=2.0, seed=99)
    for i in range(requests):
        score(client, rows.iloc[[i]], f"canary-{i}")
        if i % 20 == 19 and client.get("/canary").json()["status"] != "running":
            break
    time.sleep(0.3)
    return client.get("/canary").json()


def test_drift_alert_retrains_passes_gates_and_the_canary_promotes(serving):
    svc, client = serving
    send_shifted_traffic(client)
    nbops.set_gates("loop", ["accuracy >= 0.8", "accuracy >= production * 0.9"])
    nbops.alerts.add("drift_share", ">=", 0.3, action="retrain", data={"train_df": "traffic"})
    tick = nbops.monitor_service(svc, canary=PLAN)
    assert tick["metrics"]["drift_share"] >= 0.3 and len(tick["fired"]) == 1
    (action,) = tick["actions"]
    assert action["status"] == "canary", action
    assert action["version"] == 2 and action["gates"]["passed"]
    assert nbops.get_model("loop", version=2)["stage"] == "Staging"
    lineage = nbops.get_model("loop", version=2)["lineage"]
    assert lineage["retrained_from"] == 1
    new_data = lineage["data"]["train_df"]
    assert "labelled traffic" in new_data["source"] and new_data["dataset"] == "loop.train_df@1"
    assert new_data["rows"] == 300  # the six labelled batches of 50
    assert nbops.datasets("loop.train_df")["digest"].tolist() == [new_data["digest"]]
    from nbops.registry import format_lineage

    assert "retrained from v1 with train_df = loop.train_df@1" in format_lineage(
        nbops.lineage("loop", version=2)
    )
    assert svc.running and client.get("/version").json()["candidate_version"] == 2

    state = drive_canary(svc, client)
    assert state["status"] == "promoted", state
    assert [e["to_share"] for e in state["history"]] == [50.0, 100.0, 100.0]
    sync_events(svc.path)
    assert nbops.get_model("loop", stage="Production")["version"] == 2
    assert nbops.get_model("loop", version=1)["stage"] == "Archived"
    actions = list(nbops.model_history("loop")["action"])
    for step in (
        "retrain_started",
        "register",
        "gates",
        "transition",
        "canary_started",
        "canary_step",
        "canary_promoted",
    ):
        assert step in actions, (step, actions)
    # the alert fires again on the next tick, but the retrained version is in Production
    # now and the traffic before the retrain was acted on: no second retrain of it
    again = nbops.monitor_service(svc, canary=PLAN)
    assert all(a.get("version") != 2 or a["status"] != "canary" for a in again["actions"])


def test_worse_candidate_is_blocked_by_a_gate(serving):
    svc, client = serving
    send_shifted_traffic(client)
    nbops.set_gates("loop", ["accuracy >= production * 0.95"])
    worse = world_data(200, seed=5)
    worse["target"] = np.random.default_rng(5).permutation(worse["target"].to_numpy())
    out = nbops.retrain("loop", {"train_df": worse}, service=svc, canary=PLAN)
    assert out["status"] == "blocked" and not out["gates"]["passed"]
    assert nbops.get_model("loop", version=out["version"])["stage"] is None
    assert client.get("/version").json()["candidate_version"] is None  # no canary started
    assert "retrain_blocked" in set(nbops.model_history("loop")["action"])


def test_erroring_candidate_is_rolled_back_by_the_canary(serving):
    svc, client = serving
    # a candidate that cannot predict: 50 neighbours asked of 10 training rows
    cell = (
        CELL.replace(
            "LogisticRegression(random_state=seed)",
            "KNeighborsClassifier(n_neighbors=50, algorithm='brute')",
        )
        .replace(
            "from sklearn.linear_model import LogisticRegression",
            "from sklearn.neighbors import KNeighborsClassifier",
        )
        .replace("accuracy = float(model.score(X, y))", "accuracy = 1.0")
    )
    result = run_tracked_cell(
        cell, TrackOptions(name="broken"), user_ns={"train_df": world_data(10, seed=3)}
    )
    assert result.error is None
    v = nbops.register(result.run.run_id, "loop")["version"]
    nbops.transition("loop", v, "Staging")
    from nbops.loop import start_canary

    start_canary("loop", v, svc, plan={"min_requests": 20, "max_error_rate": 0.05})
    state = drive_canary(svc, client, requests=200)
    assert state["status"] == "rolled_back", state
    assert "error rate" in state["reason"]
    sync_events(svc.path)
    assert nbops.get_model("loop", stage="Production")["version"] == 1
    assert "canary_rollback" in set(nbops.model_history("loop")["action"])


def test_monitor_command_ticks_in_the_foreground_and_stops_on_sigterm(serving, store):
    import os
    import signal
    import subprocess
    import sys

    svc, client = serving
    send_shifted_traffic(client, n_batches=2)
    env = {**os.environ, "NBOPS_STORE": str(store)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "monitor",
            svc.url,
            "--folder",
            str(svc.path),
            "--every",
            "0.5s",
            "--no-act",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    try:
        while len([ln for ln in lines if "drift share" in ln]) < 2:
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "stopping (SIGTERM)" in rest
    assert "1 alert(s)" not in "".join(lines)  # no rules: nothing fires
    assert "drift share 0.50" in lines[-1] or "drift share 1.00" in lines[-1]


def test_monitor_interval_and_alert_actions_are_validated():
    from nbops.cli.check import parse_interval

    assert parse_interval("10m") == 600 and parse_interval("30s") == 30
    assert parse_interval("2") == 2 and parse_interval("1h") == 3600
    for bad in ("soon", "0m", "-5s", "10 minutes"):
        with pytest.raises(nbops.NbopsError, match="not an interval"):
            parse_interval(bad)


def test_alert_action_must_be_known_and_data_needs_it(store):
    with pytest.raises(nbops.AlertError, match="unknown action 'email-boss'"):
        nbops.alerts.add("drift_share", ">=", 0.3, action="email-boss")
    with pytest.raises(nbops.AlertError, match="belong to action=.retrain."):
        nbops.alerts.add("drift_share", ">=", 0.3, data={"train_df": "traffic"})
    rule = nbops.alerts.add(
        "drift_share", ">=", 0.3, action="retrain", model="loop", data={"train_df": "data/new.csv"}
    )
    assert rule["action"] == {
        "type": "retrain",
        "model": "loop",
        "data": {"train_df": "data/new.csv"},
    }
    (event,) = nbops.alerts.check({"drift_share": 0.5})
    assert event["pending_action"]["type"] == "retrain"


def test_retrain_refuses_a_variable_the_cell_does_not_read(serving):
    with pytest.raises(nbops.NbopsError, match=r"does not read \['trian_df'\]"):
        nbops.retrain("loop", {"trian_df": world_data(50)})
    assert list(nbops.models("loop")["version"]) == [1]


def test_monitor_command_can_serve_the_folder_itself(serving, store):
    import os
    import subprocess
    import sys

    svc, client = serving
    send_shifted_traffic(client, n_batches=1)
    svc.stop()
    env = {**os.environ, "NBOPS_STORE": str(store)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "monitor",
            str(svc.path),
            "--serve",
            "--once",
            "--no-act",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    url = out.stdout.split("serving service at ")[1].split()[0]
    assert "drift share" in out.stdout
    with pytest.raises(httpx.HTTPError):  # the service it started is stopped again
        httpx.get(url + "/ping", timeout=2)


def test_retrain_by_running_a_training_notebook(serving, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import nbops\n%load_ext nbops"),
            nbformat.v4.new_code_cell("%%track --name from-notebook\n" + CELL),
        ]
    )
    path = tmp_path / "train.ipynb"
    nbformat.write(nb, path)
    out = nbops.retrain("loop", {"train_df": world_data(300, shift=2.0, seed=8)}, notebook=path)
    assert out["status"] == "staging", out
    rec = nbops.get_model("loop", version=out["version"])
    assert rec["lineage"]["notebook"] == str(path) and rec["stage"] == "Staging"
    assert nbops.get_run(out["run_id"])["name"] == "from-notebook"
    # the notebook trained on the data it was given: the sample is the shifted frame
    assert nbops.load_reference("loop", version=out["version"])["x1"].mean() > 1.5


def test_a_canary_needs_the_production_gates_first(serving):
    svc, client = serving
    one = world_data(300, seed=4)
    result = run_tracked_cell(CELL, TrackOptions(name="candidate"), user_ns={"train_df": one})
    v = nbops.register(result.run.run_id, "loop")["version"]
    nbops.set_gates("loop", ["production: accuracy >= 1.5"])
    nbops.transition("loop", v, "Staging")  # no rule for Staging
    with pytest.raises(nbops.GateError, match="did not move to Production"):
        nbops.start_canary("loop", v, svc, plan=PLAN)
    assert client.get("/version").json()["candidate_version"] is None


def test_a_promotion_the_gates_refuse_is_logged_and_changes_nothing(serving):
    from nbops.loop import start_canary

    svc, client = serving
    result = run_tracked_cell(
        CELL, TrackOptions(name="candidate"), user_ns={"train_df": world_data(300, seed=4)}
    )
    v = nbops.register(result.run.run_id, "loop")["version"]
    start_canary("loop", v, svc, plan=PLAN)  # no gates yet
    nbops.set_gates("loop", ["accuracy >= 1.5"])  # ... then someone adds one
    assert drive_canary(svc, client)["status"] == "promoted"
    sync_events(svc.path)
    assert nbops.get_model("loop", stage="Production")["version"] == 1
    actions = list(nbops.model_history("loop")["action"])
    assert "canary_promoted" in actions and actions[-1] == "promotion_blocked"
    assert sync_events(svc.path) == 0  # copied once, and the copy did not fail


def test_check_compares_a_services_traffic_with_the_training_sample(
    serving, tmp_path, monkeypatch, capsys
):
    from nbops.cli import main

    svc, client = serving
    send_shifted_traffic(client, n_batches=2)
    (tmp_path / "nbops.toml").write_text(
        '[[check]]\nname = "traffic"\nkind = "drift"\n'
        f'reference = "model:loop@Production"\ncurrent = "service:{svc.path}"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    assert "x1" in capsys.readouterr().out


def test_a_retrain_whose_cell_fails_is_reported_and_monitoring_goes_on(serving):
    svc, client = serving
    send_shifted_traffic(client)
    # the labels come back under another name than the cell reads: the cell raises KeyError
    nbops.alerts.add("drift_share", ">=", 0.3, action="retrain", data={"train_df": "traffic:label"})
    tick = nbops.monitor_service(svc, canary=PLAN)
    (action,) = tick["actions"]
    assert action["status"] == "error" and action["error"].startswith("KeyError")
    assert "retrain_failed" in set(nbops.model_history("loop")["action"])
    assert list(nbops.models("loop")["version"]) == [1]
