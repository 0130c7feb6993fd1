"""nbops.monitor of a running service reads its /metrics too: p50/p99 latency and the
error rate of its scoring routes, as metrics alert rules can fire on."""

from __future__ import annotations

import os
import time

import httpx
import pytest

import nbops
from nbops.serving.local import LocalService
from nbops.serving.monitor import _quantile, running_url, service_metrics


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    root = tmp_path_factory.mktemp("monitor")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    X, y = load_wine(return_X_y=True, as_frame=True)
    with nbops.start_run(name="wine") as run:
        nbops.log_model(
            RandomForestClassifier(10, random_state=0).fit(X, y), signature=X, reference=X
        )
    nbops.register(run.run_id, "wine")
    info = nbops.export("wine", version=1, path=root / "svc")
    svc = LocalService(info["path"])
    rows = X.to_numpy().tolist()
    with httpx.Client(base_url=svc.url) as c:
        for i in range(40):
            assert c.post("/invocations", json={"instances": [rows[i]]}).status_code == 200
        for _ in range(10):  # refused: a row too short
            assert c.post("/invocations", json={"instances": [[1.0]]}).status_code == 400
        c.get("/ping")  # health checks are not scoring traffic
    deadline = time.monotonic() + 10  # the log is written every 0.2 s
    while len(nbops.prediction_log(info["path"])) < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    nbops.alerts.clear()
    yield {"svc": svc, "path": info["path"]}
    svc.stop()
    nbops.alerts.clear()
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


def test_service_metrics_count_scoring_requests_and_errors(running):
    m = service_metrics(running["svc"].url)
    assert m["requests"] == 50 and m["errors"] == 10
    assert m["error_rate"] == pytest.approx(0.2)
    assert m["server_error_rate"] == 0.0
    assert 0 < m["p50_ms"] <= m["p99_ms"] < 5000


def test_monitor_of_a_running_service_reports_latency_and_errors(running):
    report = nbops.monitor(running["svc"])
    assert report.service["requests"] == 50
    metrics = report.metrics()
    assert metrics["error_rate"] == pytest.approx(0.2)
    assert metrics["latency_p99_ms"] == report.service["p99_ms"]
    assert "drift_share" in metrics  # the drift figures are still there


def test_the_folder_says_where_its_service_listens(running):
    assert running_url(running["path"]) == running["svc"].url
    report = nbops.monitor(running["path"])
    assert report.service["url"] == running["svc"].url


def test_an_alert_rule_fires_on_error_rate(running):
    nbops.alerts.add("error_rate", ">", 0.1, name="too many refused requests")
    nbops.alerts.add("latency_p99_ms", ">", 60_000, name="never this slow")
    fired = nbops.alerts.check(nbops.monitor(running["svc"]))
    assert [f["metric"] for f in fired] == ["error_rate"]


def test_quantiles_interpolate_within_buckets():
    buckets = [(0.001, 0.0), (0.01, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert _quantile(0.5, buckets) == pytest.approx(0.01)
    assert _quantile(0.25, buckets) == pytest.approx(0.0055)
    assert _quantile(0.99, buckets) == pytest.approx(0.0982)
    assert _quantile(0.5, []) is None


def test_a_stopped_service_leaves_no_url(running, tmp_path):
    assert running_url(tmp_path) is None
