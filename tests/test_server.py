"""The nbops server extension: REST API under /nbops/api/, authentication, bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

# pytest-jupyter's autouse fixtures apply here only: tests/conftest.py stubs them for
# the rest of the session (they would close the event loop Playwright's tests use)
from pytest_jupyter.jupyter_core import jp_asyncio_loop  # noqa: F401
from pytest_jupyter.jupyter_server import jp_server_cleanup  # noqa: F401
from tornado.httpclient import HTTPClientError

import nbops

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(store):
    # the `store` fixture first, so the server reads the test's empty store
    return {"ServerApp": {"jpserver_extensions": {"nbops.server": True}}}


async def get(jp_fetch, *parts, **params):
    response = await jp_fetch("nbops", "api", *parts, params=params)
    assert response.code == 200
    return json.loads(response.body)


async def post(jp_fetch, *parts, body=None):
    response = await jp_fetch(
        "nbops", "api", *parts, method="POST", body=json.dumps(body if body is not None else {})
    )
    assert response.code == 200
    return json.loads(response.body)


async def error(jp_fetch, *parts, method="GET", body=None, headers=None, **params):
    """The HTTP error code and message of a request that must fail."""
    kwargs = {"method": method, "params": params, "headers": headers}
    if method == "POST":
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body or {})
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbops", "api", *parts, **kwargs)
    raw = info.value.response.body if info.value.response is not None else b""
    try:
        message = json.loads(raw).get("message", "")
    except ValueError:
        message = raw.decode(errors="replace")
    return info.value.code, message


def make_runs(n, experiment="exp", **kw):
    ids = []
    for i in range(n):
        with nbops.start_run(
            name=f"run-{i}", experiment=experiment, capture_env=False, **kw
        ) as run:
            run.log_params({"alpha": i / 10, "depth": i})
            run.log_metric("accuracy", 0.5 + i / 100)
        ids.append(run.run_id)
    return ids


@pytest.fixture
def model():
    """Model 'churn' with versions 1 and 2 (from two runs), both in stage None."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x1": rng.normal(size=40), "x2": rng.normal(size=40)})
    y = (X["x1"] > X["x2"]).astype(int)
    for c in (0.5, 1.0):
        with nbops.start_run(name=f"lr-{c}", capture_env=False) as run:
            nbops.log_model(LogisticRegression(C=c).fit(X, y), signature=X)
            run.log_metric("accuracy", 0.9)
        nbops.register(run.run_id, "churn")
    return "churn"


# -- runs ------------------------------------------------------------------------------
async def test_info_names_the_store(jp_fetch, store):
    info = await get(jp_fetch)
    assert info["version"] == nbops.__version__
    assert info["store"] == str(store.resolve())


async def test_runs_page_lists_newest_first(jp_fetch):
    ids = make_runs(7)
    page = await get(jp_fetch, "runs", limit="3")
    assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == 0
    assert [r["run_id"] for r in page["runs"]] == ids[::-1][:3]
    first = page["runs"][0]
    assert first["status"] == "FINISHED" and first["name"] == "run-6"
    assert first["params"] == {"alpha": 0.6, "depth": 6}
    assert first["metrics"] == {"accuracy": pytest.approx(0.56)}
    last = await get(jp_fetch, "runs", limit="3", offset="6")
    assert [r["run_id"] for r in last["runs"]] == [ids[0]]


async def test_runs_filter_by_experiment_status_since_and_parent(jp_fetch):
    old = make_runs(2, experiment="a")
    since = nbops.get_run(old[-1])["start_time"]
    time.sleep(0.002)  # start times have millisecond resolution
    new = make_runs(3, experiment="b")
    with nbops.start_run(name="parent", experiment="b", capture_env=False) as parent:
        pass
    child = make_runs(1, experiment="b", parent_id=parent.run_id)[0]

    only_a = await get(jp_fetch, "runs", experiment="a")
    assert {r["run_id"] for r in only_a["runs"]} == set(old)
    after = await get(jp_fetch, "runs", since=since, parent="none")
    assert [r["run_id"] for r in after["runs"]] == [parent.run_id, *new[::-1]]
    children = await get(jp_fetch, "runs", parent=parent.run_id)
    assert [r["run_id"] for r in children["runs"]] == [child]
    failed = await get(jp_fetch, "runs", status="FAILED")
    assert failed["total"] == 0 and failed["runs"] == []


def test_run_page_since_accepts_z_and_naive_times(store):
    first = make_runs(1)[0]
    time.sleep(0.002)  # start times have millisecond resolution
    second = make_runs(1)[0]
    since = nbops.get_run(first)["start_time"]  # e.g. 2024-05-01T12:00:00.123+00:00
    as_z = since.replace("+00:00", "Z")
    naive = since.replace("+00:00", "")
    for value in (since, as_z, naive):
        page = nbops.run_page(since=value)
        assert [r["run_id"] for r in page["runs"]] == [second], value


@pytest.mark.parametrize(
    "params, words",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "not an integer"),
        ({"offset": "-1"}, "offset"),
        ({"status": "DONE"}, "unknown status"),
        ({"since": "yesterday"}, "not an ISO time"),
    ],
)
async def test_bad_run_queries_are_400_with_a_message(jp_fetch, params, words):
    code, message = await error(jp_fetch, "runs", **params)
    assert code == 400
    assert words in message


async def test_one_run_and_its_metric_history(jp_fetch):
    with nbops.start_run(name="curve", capture_env=False) as run:
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=step)
        run.log_param("lr", 0.1)
    doc = await get(jp_fetch, "runs", run.run_id)
    assert doc["run_id"] == run.run_id and doc["params"] == {"lr": 0.1}
    assert doc["metric_keys"] == ["loss"]
    history = await get(jp_fetch, "runs", run.run_id, "metrics", "loss")
    assert history["steps"] == [0, 1, 2]
    assert history["values"] == pytest.approx([0.9, 0.5, 0.3])
    assert len(history["timestamps"]) == 3


async def test_unknown_run_or_metric_is_404_with_a_message(jp_fetch):
    code, message = await error(jp_fetch, "runs", "nosuchrun")
    assert code == 404 and "nosuchrun" in message
    run_id = make_runs(1)[0]
    code, message = await error(jp_fetch, "runs", run_id, "metrics", "f1")
    assert code == 404 and "f1" in message and "accuracy" in message


# -- models ----------------------------------------------------------------------------
async def test_models_list_versions_with_stage_and_aliases(jp_fetch, model):
    nbops.set_alias(model, "challenger", 2)
    data = await get(jp_fetch, "models")
    assert [m["name"] for m in data["models"]] == ["churn"]
    versions = {v["version"]: v for v in data["models"][0]["versions"]}
    assert set(versions) == {1, 2}
    assert versions[1]["stage"] is None and versions[2]["aliases"] == ["challenger"]
    assert versions[1]["run_id"] and versions[1]["metrics"] == {"accuracy": 0.9}


async def test_transition_moves_the_version_in_the_store(jp_fetch, model):
    record = await post(
        jp_fetch,
        "models",
        model,
        "versions",
        "2",
        "transition",
        body={"stage": "Production", "reason": "best AUC"},
    )
    assert record["version"] == 2 and record["stage"] == "Production"
    assert nbops.get_model(model, 2)["stage"] == "Production"
    last = nbops.model_history(model).iloc[-1]
    assert (last["action"], last["to"], last["reason"]) == ("transition", "Production", "best AUC")
    detail = await get(jp_fetch, "models", model)
    assert detail["history"][-1]["reason"] == "best AUC"
    events = await get(jp_fetch, "models", model, "history")
    assert [e["action"] for e in events["events"]] == ["register", "register", "transition"]


async def test_gates_block_a_transition_and_show_with_the_version(jp_fetch, model):
    nbops.set_gates(model, ["accuracy >= 0.95"])
    code, message = await error(
        jp_fetch,
        "models",
        model,
        "versions",
        "2",
        "transition",
        method="POST",
        body={"stage": "Production", "reason": "go"},
    )
    assert code == 400 and "accuracy >= 0.95" in message and "FAIL" in message
    assert nbops.get_model(model, 2)["stage"] is None
    data = await get(jp_fetch, "models")
    (entry,) = data["models"]
    assert entry["gates"] == ["accuracy >= 0.95"]
    versions = {v["version"]: v for v in entry["versions"]}
    assert versions[2]["gates"] == "failed 0/1 (Production)"
    assert versions[2]["gate_results"][0]["measured"] == 0.9
    record = await post(
        jp_fetch,
        "models",
        model,
        "versions",
        "2",
        "transition",
        body={"stage": "Production", "reason": "approved", "force": True},
    )
    assert record["stage"] == "Production"
    assert "gate_override" in set(nbops.model_history(model)["action"])


async def test_stage_none_moves_a_version_back(jp_fetch, model):
    nbops.transition(model, 1, "Staging")
    record = await post(
        jp_fetch, "models", model, "versions", "1", "transition", body={"stage": "None"}
    )
    assert record["stage"] is None
    assert nbops.get_model(model, 1)["stage"] is None


@pytest.mark.parametrize(
    "body, words",
    [
        ({"stage": "Prod"}, "unknown stage"),
        ({"stage": 3}, "unknown stage"),
        ({"reason": "no stage"}, "which stage"),
        ("not json", "not JSON"),
        ([1, 2], "JSON object"),
    ],
)
async def test_bad_transition_is_400_and_changes_nothing(jp_fetch, model, body, words):
    code, message = await error(
        jp_fetch, "models", model, "versions", "1", "transition", method="POST", body=body
    )
    assert code == 400 and words in message
    assert nbops.get_model(model, 1)["stage"] is None
    assert len(nbops.model_history(model)) == 2  # the two registrations only


async def test_unknown_model_or_version_is_404(jp_fetch, model):
    code, message = await error(
        jp_fetch,
        "models",
        "nosuch",
        "versions",
        "1",
        "transition",
        method="POST",
        body={"stage": "Staging"},
    )
    assert code == 404 and "nosuch" in message and "churn" in message
    code, message = await error(
        jp_fetch,
        "models",
        model,
        "versions",
        "9",
        "transition",
        method="POST",
        body={"stage": "Staging"},
    )
    assert code == 404 and "no version 9" in message
    code, _ = await error(jp_fetch, "models", "nosuch")
    assert code == 404


async def test_rollback_puts_the_previous_production_version_back(jp_fetch, model):
    nbops.transition(model, 1, "Production")
    nbops.transition(model, 2, "Production")
    record = await post(jp_fetch, "models", model, "rollback", body={"reason": "v2 drifts"})
    assert record["version"] == 1 and record["stage"] == "Production"
    assert nbops.get_model(model, 2)["stage"] == "Archived"
    assert nbops.model_history(model).iloc[-1]["reason"] == "v2 drifts"


async def test_rollback_without_production_is_400(jp_fetch, model):
    code, message = await error(jp_fetch, "models", model, "rollback", method="POST")
    assert code == 400 and "Production" in message


# -- authentication --------------------------------------------------------------------
ENDPOINTS = [
    ("GET", ("",)),
    ("GET", ("runs",)),
    ("GET", ("runs", "abc")),
    ("GET", ("runs", "abc", "metrics", "loss")),
    ("GET", ("models",)),
    ("GET", ("models", "churn")),
    ("GET", ("models", "churn", "history")),
    ("POST", ("models", "churn", "versions", "1", "transition")),
    ("POST", ("models", "churn", "rollback")),
]


@pytest.mark.parametrize("method, parts", ENDPOINTS)
async def test_every_endpoint_is_403_without_the_token(jp_fetch, model, method, parts):
    code, _ = await error(
        jp_fetch, *parts, method=method, body={"stage": "Production"}, headers={"Authorization": ""}
    )
    assert code == 403
    assert nbops.get_model(model, 1)["stage"] is None


async def test_wrong_token_is_403(jp_fetch):
    code, _ = await error(jp_fetch, "runs", headers={"Authorization": "token wrong"})
    assert code == 403


async def login_cookie(jp_fetch, jp_serverapp) -> str:
    """The login cookie a browser gets after opening a URL with ?token=..."""
    token = jp_serverapp.identity_provider.token
    response = await jp_fetch(
        "api", "status", params={"token": token}, headers={"Authorization": ""}
    )
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    login = [c for c in cookies if c.startswith("username-") or "-" in c.split("=", 1)[0]]
    assert login, f"no login cookie in {cookies}"
    return login[0]


async def test_post_with_cookie_and_bad_xsrf_is_403(jp_fetch, jp_serverapp, model):
    cookie = await login_cookie(jp_fetch, jp_serverapp)
    # a browser session: the login cookie and no token; the XSRF header does not match
    headers = {
        "Authorization": "",
        "Cookie": f"{cookie}; _xsrf=deadbeef",
        "X-XSRFToken": "cafebabe",
    }
    code, message = await error(
        jp_fetch,
        "models",
        model,
        "versions",
        "1",
        "transition",
        method="POST",
        body={"stage": "Staging"},
        headers=headers,
    )
    assert code == 403 and "XSRF" in message
    missing = {"Authorization": "", "Cookie": cookie}
    code, _ = await error(jp_fetch, "models", model, "rollback", method="POST", headers=missing)
    assert code == 403
    assert nbops.get_model(model, 1)["stage"] is None

    # the same session with a matching XSRF token is allowed
    headers["X-XSRFToken"] = "deadbeef"
    response = await jp_fetch(
        "nbops",
        "api",
        "models",
        model,
        "versions",
        "1",
        "transition",
        method="POST",
        body=json.dumps({"stage": "Staging"}),
        headers=headers,
    )
    assert response.code == 200
    assert nbops.get_model(model, 1)["stage"] == "Staging"
