"""The exported service, run as a real uvicorn process on a free loopback port.

One module-wide store holds three versions of a wine model: v1 (Production, the
stable one), v2 (a good candidate) and v3 (a candidate whose model was fitted on 12
of the 13 columns its signature promises, so it raises on every request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import nbops
from nbops.serving.local import LocalService, ServiceStartError

ROUTE_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    root = tmp_path_factory.mktemp("serving")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    X, y = load_wine(return_X_y=True, as_frame=True)
    models = {}
    for version, (trees, seed, cols) in enumerate(
        [(50, 0, list(X.columns)), (20, 1, list(X.columns)), (10, 2, list(X.columns)[:12])], start=1
    ):
        model = RandomForestClassifier(trees, random_state=seed).fit(X[cols].to_numpy(), y)
        signature = {"inputs": [{"name": c, "dtype": "float64"} for c in X.columns]}
        with nbops.start_run(name=f"wine-v{version}") as run:
            nbops.log_model(model, signature=signature)
        nbops.register(run.run_id, "wine")
        models[version] = model
    nbops.transition("wine", 1, "Production")
    info = nbops.export(
        "wine", stage="Production", path=root / "svc", reference=X, reference_target=y
    )
    service = LocalService(info["path"])
    client = httpx.Client(base_url=service.url, timeout=30)
    yield {
        "root": root,
        "X": X,
        "y": y,
        "models": models,
        "service": service,
        "client": client,
        "info": info,
    }
    client.close()
    service.stop()
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


def expected(world, rows):
    return world["models"][1].predict(rows.to_numpy()).tolist()


def post(world, body, **kw):
    return world["client"].post("/invocations", json=body, **kw)


# -- export ---------------------------------------------------------------------------
def test_export_writes_a_self_contained_folder(world):
    folder = Path(world["info"]["path"])
    for name in (
        "serve.py",
        "model.skops",
        "model.json",
        "model.npz",
        "requirements.txt",
        "Dockerfile",
        "README.md",
        "reference.parquet",
    ):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "model.json").read_text())
    assert meta["model_name"] == "wine" and meta["version"] == 1
    assert meta["source_run"] == nbops.get_model("wine", version=1)["run_id"]
    assert "sklearn.tree._tree.Tree" in meta["trusted_types"]
    req = (folder / "requirements.txt").read_text()
    assert f"scikit-learn=={meta['library_versions']['sklearn']}" in req
    assert "curl" in (folder / "README.md").read_text()
    assert "import nbops" not in (folder / "serve.py").read_text().split("def _sync_events")[0]


def test_export_refuses_bad_input(world, tmp_path):
    with pytest.raises(nbops.NbopsError, match="unknown canary keys"):
        nbops.export("wine", version=1, path=tmp_path / "a", canary={"version": 2, "bogus": 1})
    with pytest.raises(nbops.NbopsError, match="being exported"):
        nbops.export("wine", version=1, path=tmp_path / "b", canary={"version": 1})
    with pytest.raises(nbops.NbopsError, match="steps"):
        nbops.export(
            "wine", version=1, path=tmp_path / "c", canary={"version": 2, "steps": [50, 10]}
        )
    with pytest.raises(nbops.RegistryError, match="no version 9"):
        nbops.export("wine", version=9, path=tmp_path / "d")
    with pytest.raises(nbops.NbopsError, match="not empty"):
        nbops.export("wine", version=1, path=world["info"]["path"])


# -- MLflow scoring protocol -------------------------------------------------------------
def test_health_and_version(world):
    c = world["client"]
    assert c.get("/ping").status_code == 200
    assert c.get("/health").json() == {"status": "ok"}
    v = c.get("/version").json()
    assert v["model_name"] == "wine" and v["version"] == 1 and v["candidate_version"] is None


@pytest.mark.parametrize(
    "fmt", ["split", "records", "instances", "instances_dicts", "inputs_columns", "inputs_rows"]
)
def test_every_json_format_scores_like_the_model(world, fmt):
    rows = world["X"].iloc[:7]
    cols = list(rows.columns)
    data = rows.to_numpy().tolist()
    body = {
        "split": {"dataframe_split": {"columns": cols, "data": data}},
        "records": {"dataframe_records": rows.to_dict("records")},
        "instances": {"instances": data},
        "instances_dicts": {"instances": rows.to_dict("records")},
        "inputs_columns": {"inputs": rows.to_dict("list")},
        "inputs_rows": {"inputs": data},
    }[fmt]
    r = post(world, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected(world, rows)}
    assert r.headers["x-model-version"] == "1"


def test_columns_in_another_order_are_reordered(world):
    rows = world["X"].iloc[:3]
    shuffled = rows[list(reversed(rows.columns))]
    r = post(
        world,
        {
            "dataframe_split": {
                "columns": list(shuffled.columns),
                "data": shuffled.to_numpy().tolist(),
            }
        },
    )
    assert r.json()["predictions"] == expected(world, rows)


def test_csv_scores_like_the_model(world):
    rows = world["X"].iloc[10:15]
    r = world["client"].post(
        "/invocations", content=rows.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected(world, rows)


def test_missing_and_extra_columns_are_named(world):
    rec = world["X"].iloc[0].to_dict()
    rec.pop("proline")
    rec["colour"] = 1.0
    r = post(world, {"dataframe_records": [rec]})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'proline'" in body["message"] and "'colour'" in body["message"]


@pytest.mark.parametrize(
    "value,needle",
    [
        ("abc", "expects float64"),
        (None, "missing"),
        (True, "expects float64"),
        ([1], "expects float64"),
    ],
)
def test_wrongly_typed_values_name_the_column(world, value, needle):
    rec = world["X"].iloc[0].to_dict()
    rec["hue"] = value
    r = post(world, {"dataframe_records": [rec]})
    assert r.status_code == 400
    assert "'hue'" in r.json()["message"] and needle in r.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"dataframe_split": {"data": [[1]]}}',
        b'{"instances": [[1, 2, 3]]}',
        b'{"instances": [[1e999]]}',
        b'{"instances": NaN}',
        b'{"inputs": {"a": [1], "b": [1, 2]}}',
        b'{"instances": [], "inputs": []}',
        b'{"dataframe_records": [{"alcohol": 1}, 5]}',
        b'{"instances": [1, 2]}',
        b'{"dataframe_split": {"columns": [1, {}], "data": [[1]]}}',
        b'""',
        b"null",
    ],
)
def test_malformed_bodies_get_400(world, body):
    r = world["client"].post("/invocations", content=body, headers=ROUTE_HEADERS)
    assert r.status_code == 400, (body, r.text)
    assert set(r.json()) == {"error_code", "message"}


@pytest.mark.parametrize(
    "csv_text,needle",
    [
        ("alcohol\n1.0\n", "missing columns"),
        ("", "empty"),
        ("1,2,3,4,5,6,7,8,9,10,11,12,13\n", "header row"),
    ],
)
def test_bad_csv_gets_400(world, csv_text, needle):
    r = world["client"].post("/invocations", content=csv_text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and needle in r.json()["message"]


def test_nan_in_csv_is_refused(world):
    rows = world["X"].iloc[:2].copy()
    text = rows.to_csv(index=False).replace(str(rows.iloc[0]["hue"]), "nan", 1)
    r = world["client"].post("/invocations", content=text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "'hue'" in r.json()["message"]


def test_wrong_content_type_gets_415(world):
    r = world["client"].post("/invocations", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_huge_body_gets_413(world):
    blob = b'{"instances": [' + b"1," * (11 * 1024 * 1024) + b"1]}"
    r = world["client"].post("/invocations", content=blob, headers=ROUTE_HEADERS)
    assert r.status_code == 413 and r.json()["error_code"] == "REQUEST_TOO_LARGE"


def test_empty_batch_scores_nothing(world):
    assert post(world, {"instances": []}).json() == {"predictions": []}


def test_large_batch_is_scored_exactly(world):
    X = world["X"]
    big = X.sample(5000, replace=True, random_state=0)
    r = post(
        world, {"dataframe_split": {"columns": list(X.columns), "data": big.to_numpy().tolist()}}
    )
    assert r.json()["predictions"] == expected(world, big)


# -- Open Inference Protocol v2 ----------------------------------------------------------
def test_v2_health_and_metadata(world):
    c = world["client"]
    assert c.get("/v2/health/live").json() == {"live": True}
    assert c.get("/v2/health/ready").json() == {"ready": True}
    meta = c.get("/v2/models/wine").json()
    assert meta["name"] == "wine" and len(meta["inputs"]) == 13
    assert meta["inputs"][0] == {"name": "alcohol", "datatype": "FP64", "shape": [-1]}
    assert c.get("/v2/models/wine/ready").json()["ready"] is True
    r = c.get("/v2/models/nope/ready")
    assert r.status_code == 404 and "wine" in r.json()["error"]


def test_v2_infer_one_tensor_and_per_column(world):
    rows = world["X"].iloc[20:24]
    c = world["client"]
    one = {
        "id": "abc",
        "inputs": [
            {
                "name": "x",
                "shape": [4, 13],
                "datatype": "FP64",
                "data": rows.to_numpy().ravel().tolist(),
            }
        ],
    }
    r = c.post("/v2/models/wine/infer", json=one)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "abc" and out["model_name"] == "wine"
    assert out["outputs"][0]["data"] == expected(world, rows)
    assert out["outputs"][0]["shape"] == [4]
    per_col = {
        "inputs": [
            {"name": col, "shape": [4], "datatype": "FP64", "data": rows[col].tolist()}
            for col in rows.columns
        ]
    }
    assert c.post("/v2/models/wine/infer", json=per_col).json()["outputs"][0]["data"] == expected(
        world, rows
    )
    bad = {"inputs": [{"name": "x", "shape": [4, 13], "datatype": "FP64", "data": [1.0]}]}
    r = c.post("/v2/models/wine/infer", json=bad)
    assert r.status_code == 400 and "shape" in r.json()["error"]


# -- metrics ------------------------------------------------------------------------------
def test_metrics_in_prometheus_format(world):
    c = world["client"]
    post(world, {"instances": world["X"].iloc[:1].to_numpy().tolist()})
    c.post("/invocations", content=b"{", headers=ROUTE_HEADERS)
    text = c.get("/metrics").text
    assert 'nbops_requests_total{route="/invocations",status="200",version="1"}' in text
    assert 'nbops_requests_total{route="/invocations",status="400",version=""}' in text
    assert 'nbops_request_duration_seconds_bucket{route="/invocations",le="+Inf"}' in text
    assert "nbops_in_flight_requests 1" in text  # the /metrics request itself
    cpu = [ln for ln in text.splitlines() if ln.startswith("process_cpu_seconds_total ")]
    assert float(cpu[0].split()[1]) > 0
    mem = [ln for ln in text.splitlines() if ln.startswith("process_resident_memory_bytes ")]
    assert int(mem[0].split()[1]) > 10_000_000


# -- prediction log, feedback, monitor ----------------------------------------------------
def test_prediction_log_and_feedback_feed_monitor(world):
    X, y = world["X"], world["y"]
    shifted = X.sample(150, replace=True, random_state=1)
    shifted["proline"] = shifted["proline"] * 2.5
    r = post(
        world,
        {"dataframe_split": {"columns": list(X.columns), "data": shifted.to_numpy().tolist()}},
        headers={"X-Request-ID": "drifted-batch"},
    )
    preds = r.json()["predictions"]
    truth = y.loc[shifted.index].tolist()
    ids = [f"drifted-batch-{i}" for i in range(len(preds))]
    fb = world["client"].post("/feedback", json={"ids": ids, "labels": truth})
    assert fb.json() == {"received": 150}
    time.sleep(0.5)  # the logs are flushed every 0.2 s
    log = nbops.prediction_log(world["info"]["path"])
    ours = log[log["request_id"] == "drifted-batch"]
    assert len(ours) == 150 and ours["prediction"].tolist() == preds
    assert ours["proline"].tolist() == pytest.approx(shifted["proline"].tolist())
    assert ours["target"].tolist() == truth

    report = nbops.monitor(world["info"]["path"], since=ours["time"].min())
    assert isinstance(report, nbops.DriftReport)
    assert "proline" in report.drifted_columns
    assert "alcohol" not in report.drifted_columns
    assert report.model is not None and "accuracy" in report.model["metrics"]
    acc = sum(p == t for p, t in zip(preds, truth, strict=True)) / len(truth)
    assert report.accuracy[-1]["accuracy"] == pytest.approx(acc)


def test_feedback_rejects_bad_bodies(world):
    c = world["client"]
    for body in (
        {"ids": ["a"]},
        {"ids": ["a"], "labels": [1, 2]},
        {"ids": [1], "labels": [1]},
        [1],
    ):
        assert c.post("/feedback", json=body).status_code == 400


def test_prediction_log_rotates_by_size(world, tmp_path):
    import shutil

    folder = tmp_path / "rot"
    shutil.copytree(world["info"]["path"], folder, ignore=shutil.ignore_patterns("logs"))
    from nbops.serving.local import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(folder / "serve.py"), "--port", str(port), "--log-max-bytes", "20000"]
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url)
        body = {"instances": world["X"].iloc[:50].to_numpy().tolist()}
        for _ in range(3):
            httpx.post(url + "/invocations", json=body)
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(10)
    logs = sorted(p.name for p in (folder / "logs").glob("predictions.jsonl*"))
    assert "predictions.jsonl.1" in logs
    assert len(logs) >= 3
    assert len(nbops.prediction_log(folder)) == 150  # read back across the rotated files


def _wait(url, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ping").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{url} did not start")


# -- batch scoring and standalone --------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batch_predict_without_nbops(world, tmp_path, suffix):
    """serve.py predict runs with nbops made unimportable."""
    import pandas as pd

    folder = Path(world["info"]["path"])
    src = tmp_path / f"in{suffix}"
    dest = tmp_path / f"out{suffix}"
    rows = world["X"].iloc[:40]
    rows.to_csv(src, index=False) if suffix == ".csv" else rows.to_parquet(src)
    code = (
        "import runpy, sys; sys.modules['nbops'] = None; "
        f"sys.argv = ['serve.py', 'predict', '--input', {str(src)!r}, '--output', "
        f"{str(dest)!r}]; runpy.run_path({str(folder / 'serve.py')!r}, run_name='__main__')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(dest) if suffix == ".csv" else pd.read_parquet(dest)
    assert got["prediction"].tolist() == expected(world, rows)


def test_batch_predict_reports_bad_columns(world, tmp_path):
    src = tmp_path / "in.csv"
    world["X"].iloc[:5].drop(columns=["ash"]).to_csv(src, index=False)
    out = subprocess.run(
        [
            sys.executable,
            str(Path(world["info"]["path"]) / "serve.py"),
            "predict",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "'ash'" in out.stderr


def test_changed_model_file_stops_the_service(world, tmp_path):
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(world["info"]["path"], folder, ignore=shutil.ignore_patterns("logs"))
    data = bytearray((folder / "model.skops").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.skops").write_bytes(bytes(data))
    with pytest.raises(ServiceStartError, match="hashes to .* changed after export"):
        LocalService(folder)


def test_bearer_token_protects_all_but_health(world, tmp_path):
    import shutil

    folder = tmp_path / "tok"
    shutil.copytree(world["info"]["path"], folder, ignore=shutil.ignore_patterns("logs"))
    with LocalService(folder, token="s3cret") as svc:
        body = {"instances": world["X"].iloc[:1].to_numpy().tolist()}
        assert httpx.get(svc.url + "/ping").status_code == 200
        r = httpx.post(svc.url + "/invocations", json=body)
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
        assert (
            httpx.post(
                svc.url + "/invocations", json=body, headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        assert httpx.get(svc.url + "/metrics").status_code == 401
        ok = httpx.post(
            svc.url + "/invocations", json=body, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200


# -- canary --------------------------------------------------------------------------------
def _drive(svc, world, stop, limit=400):
    rows = world["X"].to_numpy().tolist()
    with httpx.Client(base_url=svc.url) as c:
        for i in range(limit):
            r = c.post("/invocations", json={"instances": [rows[i % len(rows)]]})
            assert r.status_code == 200, r.text
            state = c.get("/canary").json()
            if stop(state):
                return state
    raise AssertionError(f"canary did not finish: {state}")


def _registry_events(kind, wait=5.0):
    deadline = time.monotonic() + wait
    while True:
        hist = nbops.model_history("wine")
        hits = hist[hist["action"] == kind]
        if len(hits) or time.monotonic() > deadline:
            return hits
        time.sleep(0.1)


def test_canary_promotes_a_good_candidate_step_by_step(world, tmp_path):
    info = nbops.export(
        "wine",
        version=1,
        path=tmp_path / "canary-ok",
        canary={
            "version": 2,
            "steps": [10, 50],
            "min_requests": 20,
            "max_error_rate": 0.0,
            "max_p99_ms": 5000,
        },
    )
    assert info["candidate_version"] == 2 and info["compiled"]
    with LocalService(info["path"]) as svc:
        state = _drive(svc, world, lambda s: s["status"] != "running")
        assert state["status"] == "promoted", state
        steps = [(e["kind"], e["from_share"], e["to_share"]) for e in state["history"]]
        assert steps == [
            ("canary_step", 10, 50),
            ("canary_step", 50, 100),
            ("canary_promoted", 100, 100),
        ]
        versions = {
            httpx.post(
                svc.url + "/invocations",
                json={"instances": world["X"].iloc[:1].to_numpy().tolist()},
            ).headers["x-model-version"]
            for _ in range(5)
        }
        assert versions == {"2"}
        assert _registry_events("canary_promoted").shape[0] == 1
    assert nbops.get_model("wine", stage="Production")["version"] == 2
    assert len(_registry_events("canary_step")) == 2
    nbops.transition("wine", 1, "Production", reason="test reset")


def test_canary_rolls_back_a_failing_candidate(world, tmp_path):
    info = nbops.export(
        "wine",
        version=1,
        path=tmp_path / "canary-bad",
        canary={"version": 3, "steps": [50, 100], "min_requests": 20, "max_error_rate": 0.1},
    )
    with LocalService(info["path"]) as svc:
        # clients never see the candidate's failures: the stable version answers
        state = _drive(svc, world, lambda s: s["status"] != "running")
        assert state["status"] == "rolled_back"
        assert "error rate" in state["reason"] and "ValueError" in state["reason"]
        assert state["share"] == 0
        assert "canary_rollback" in [e["kind"] for e in state["history"]]
        r = httpx.post(
            svc.url + "/invocations", json={"instances": world["X"].iloc[:1].to_numpy().tolist()}
        )
        assert r.headers["x-model-version"] == "1"
        text = httpx.get(svc.url + "/metrics").text
        assert 'nbops_canary_share{candidate="3"} 0.0' in text
        rollbacks = _registry_events("canary_rollback")
    assert len(rollbacks) >= 1 and "ValueError" in rollbacks.iloc[-1]["reason"]
    assert nbops.get_model("wine", stage="Production")["version"] == 1
    log = nbops.prediction_log(info["path"])
    assert set(log["version"]) == {"1"}  # every logged answer came from v1


def test_canary_rolls_back_on_slow_candidate(world, tmp_path):
    info = nbops.export(
        "wine",
        version=1,
        path=tmp_path / "canary-slow",
        canary={"version": 2, "steps": [50], "min_requests": 30, "max_p99_ms": 0.0001},
    )
    with LocalService(info["path"]) as svc:
        state = _drive(svc, world, lambda s: s["status"] != "running")
    assert state["status"] == "rolled_back" and "p99" in state["reason"]
    events = [
        json.loads(line)
        for line in (Path(info["path"]) / "logs" / "events.jsonl").read_text().splitlines()
    ]
    assert [e["kind"] for e in events] == ["canary_rollback"]


def test_canary_state_survives_a_restart(world, tmp_path):
    info = nbops.export(
        "wine",
        version=1,
        path=tmp_path / "canary-restart",
        canary={"version": 3, "steps": [100], "min_requests": 5, "max_error_rate": 0.0},
    )
    with LocalService(info["path"]) as svc:
        _drive(svc, world, lambda s: s["status"] != "running")
    with LocalService(info["path"]) as svc:
        assert httpx.get(svc.url + "/canary").json()["status"] == "rolled_back"


# -- fuzz -----------------------------------------------------------------------------------
def test_fuzzed_requests_never_get_a_5xx(world):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    c = world["client"]
    schema = c.get("/openapi.json").json()
    routes = []
    for path, ops in schema["paths"].items():
        for method in ops:
            routes.append((method.upper(), path.replace("{name}", "wine")))
    assert ("POST", "/invocations") in routes and ("POST", "/v2/models/wine/infer") in routes
    cols = list(world["X"].columns)
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    )
    json_values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(cols + ["x", "data"]), inner, max_size=4)
        ),
        max_leaves=20,
    )
    bodies = st.one_of(
        json_values,
        st.builds(
            lambda k, v: {k: v},
            st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "ids"]),
            json_values,
        ),
        st.builds(
            lambda data: {"dataframe_split": {"columns": cols, "data": data}},
            st.lists(st.lists(scalars, min_size=12, max_size=14), max_size=3),
        ),
        st.builds(
            lambda shape, data: {
                "inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": data}]
            },
            st.lists(st.integers(-2, 20), max_size=3),
            st.lists(scalars, max_size=30),
        ),
    )
    raw = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode))
    ctypes = st.sampled_from(
        ["application/json", "text/csv", "text/plain", "", "application/json; charset=utf-8"]
    )

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        route=st.sampled_from(routes), body=bodies, blob=raw, use_raw=st.booleans(), ctype=ctypes
    )
    def check(route, body, blob, use_raw, ctype):
        method, path = route
        content = blob if use_raw else json.dumps(body).encode()
        r = c.request(
            method,
            path,
            content=content if method == "POST" else None,
            headers={"Content-Type": ctype} if ctype else {},
        )
        assert r.status_code < 500, (method, path, content[:300], r.text[:300])

    check()
