"""The exported service's contract: MLflow habits (index column in CSV, Parquet,
MLflow's own client), error shapes per protocol family for every failure including
unknown routes and methods, and an OpenAPI document that lists every status and
content type the service answers with -- checked by schemathesis."""

from __future__ import annotations

import io
import os

import httpx
import numpy as np
import pytest

import nbops
from nbops.serving.local import LocalService


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    root = tmp_path_factory.mktemp("protocol")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(20, random_state=0).fit(X, y)
    with nbops.start_run(name="wine") as run:
        nbops.log_model(model, signature=X)
    nbops.register(run.run_id, "wine")
    info = nbops.export("wine", version=1, path=root / "svc")
    svc = LocalService(info["path"])
    yield {"svc": svc, "X": X, "model": model, "url": svc.url, "info": info}
    svc.stop()
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


# -- MLflow habits ---------------------------------------------------------------------
def test_csv_with_pandas_default_index_column_scores(wine):
    rows = wine["X"].iloc[5:15]
    r = httpx.post(
        wine["url"] + "/invocations", content=rows.to_csv(), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == wine["model"].predict(rows).tolist()


def test_parquet_body_scores(wine):
    rows = wine["X"].iloc[:12]
    buf = io.BytesIO()
    rows.to_parquet(buf)
    r = httpx.post(
        wine["url"] + "/invocations",
        content=buf.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == wine["model"].predict(rows).tolist()


def test_bad_parquet_is_a_400(wine):
    r = httpx.post(
        wine["url"] + "/invocations",
        content=b"PAR1 not really",
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "MALFORMED_REQUEST"


def test_mlflow_scoring_client_scores_like_the_model(wine):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    port = int(wine["url"].rsplit(":", 1)[1])
    client = ScoringServerClient("127.0.0.1", port)
    client.wait_server_ready(timeout=10)
    rows = wine["X"].iloc[20:40]
    got = client.invoke(rows).get_predictions()
    assert np.asarray(got).ravel().tolist() == wine["model"].predict(rows).tolist()


# -- errors in the shape of their protocol ----------------------------------------------
@pytest.mark.parametrize(
    "method,path,status,shape",
    [
        ("GET", "/nope", 404, {"error_code", "message"}),
        ("GET", "/v2/nope", 404, {"error"}),
        ("DELETE", "/invocations", 405, {"error_code", "message"}),
        ("PUT", "/v2/models/wine/infer", 405, {"error"}),
        ("POST", "/v2/models/wine/versions/1/ready", 405, {"error"}),
        ("GET", "/v2/models/wine/versions/7/infer", 405, {"error"}),
    ],
)
def test_unknown_routes_and_methods_answer_in_protocol_shape(wine, method, path, status, shape):
    r = httpx.request(method, wine["url"] + path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == shape
    if status == 405:
        assert r.headers.get("allow")


def test_v2_errors_are_oip_json_and_mlflow_errors_are_mlflow_json(wine):
    oip = httpx.post(wine["url"] + "/v2/models/wine/infer", content=b"{")
    mlflow = httpx.post(
        wine["url"] + "/invocations", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert oip.status_code == mlflow.status_code == 400
    assert set(oip.json()) == {"error"}
    assert mlflow.json()["error_code"] == "MALFORMED_REQUEST"


# -- the OpenAPI document ------------------------------------------------------------------
def test_openapi_lists_every_status_and_content_type(wine):
    spec = httpx.get(wine["url"] + "/openapi.json").json()
    paths = spec["paths"]
    inv = paths["/invocations"]["post"]
    assert {"200", "400", "401", "413", "415"} <= set(inv["responses"])
    assert set(inv["requestBody"]["content"]) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.parquet",
    }
    infer = paths["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert set(infer["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    assert {"400", "404", "413", "415"} <= set(infer["responses"])
    assert infer["responses"]["400"]["content"]["application/json"]["schema"]["required"] == [
        "error"
    ]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert "503" in paths["/v2/health/ready"]["get"]["responses"]
    for path, ops in paths.items():
        for op in ops.values():
            assert "422" not in op["responses"], path


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_failing_check(wine, mode):
    """Every documented route with every schemathesis check, a bounded number of
    examples. The request schemas are supersets of what the service accepts (JSON Schema
    cannot say "every column as long as the others"), so positive_data_acceptance is
    told that a schema-valid body may be refused with a 400 naming the problem -- and
    nothing else: no 413, 415, 422 or 5xx for valid data."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.config import SchemathesisConfig
    from schemathesis.generation import GenerationMode

    config = SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}}}
    )
    schema = schemathesis.openapi.from_url(wine["url"] + "/openapi.json", config=config)
    seen = set()

    @given(case=schema.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def check(case):
        seen.add((case.method, case.path))
        case.call_and_validate()

    check()
    # positive examples reach every route; negative ones every route that takes a body
    assert len(seen) >= (14 if mode == "positive" else 4), seen
