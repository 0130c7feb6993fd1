"""The Open Inference Protocol v2 as real clients speak it: tritonclient.http and the
KServe SDK's REST client, with their default binary tensors and with JSON, on the
unversioned and the /versions/{v} routes, against exported services run by uvicorn."""

from __future__ import annotations

import asyncio
import os

import httpx
import numpy as np
import pandas as pd
import pytest

import nbops
from nbops.serving.local import LocalService
from tests.conftest import needs

try:
    import tritonclient.http as triton
except ImportError:  # pragma: no cover - the dev extra installs it
    triton = None
try:
    import kserve
except ImportError:  # pragma: no cover - `make test` installs it
    kserve = None


def _register(name, model, X):
    with nbops.start_run(name=f"{name}-run") as run:
        nbops.log_model(model, signature=X)
    return nbops.register(run.run_id, name)["version"]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    from sklearn.compose import make_column_transformer
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    root = tmp_path_factory.mktemp("oip")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    X, y = load_wine(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(30, random_state=0).fit(X, y)
    _register("wine", forest, X)
    D, t = load_diabetes(return_X_y=True, as_frame=True)
    gbr = GradientBoostingRegressor(n_estimators=40, random_state=0).fit(D, t)
    _register("diabetes", gbr, D)
    rng = np.random.default_rng(0)
    S = pd.DataFrame(
        {"colour": rng.choice(["red", "green", "blue"], 200), "size": rng.normal(size=200)}
    )
    labels = np.where((S["colour"] == "red") | (S["size"] > 0.5), "keep", "drop")
    words = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["colour"]), (StandardScaler(), ["size"])),
        LogisticRegression(),
    ).fit(S, labels)
    _register("words", words, S)
    out = {"X": X, "D": D, "S": S, "models": {"wine": forest, "diabetes": gbr, "words": words}}
    running = []
    for name in ("wine", "diabetes", "words"):
        info = nbops.export(name, version=1, path=root / name)
        svc = LocalService(info["path"])
        running.append(svc)
        out[name] = svc
    yield out
    for svc in running:
        svc.stop()
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


def _triton(svc):
    needs(triton is not None, "tritonclient[http] is not installed (pip install -e .[dev])")
    return triton.InferenceServerClient(url=svc.url.removeprefix("http://"))


def _triton_inputs(frame, datatype="FP64", binary=True):
    inputs = []
    for col in frame.columns:
        values = frame[col].to_numpy()
        if datatype == "BYTES" or values.dtype.kind == "O":
            arr, dt = values.astype(object), "BYTES"
        else:
            arr, dt = values.astype(np.float64), datatype
        inp = triton.InferInput(col, [len(frame)], dt)
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    return inputs


# -- tritonclient -------------------------------------------------------------------------
def test_tritonclient_defaults_binary_in_and_out_match_the_model(services):
    client = _triton(services["wine"])
    rows = services["X"].iloc[:25]
    result = client.infer("wine", _triton_inputs(rows))
    got = result.as_numpy("predict")
    assert got.dtype == np.int64
    assert got.tolist() == services["models"]["wine"].predict(rows).tolist()
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 25 * 8


def test_tritonclient_json_tensors_match_the_model(services):
    client = _triton(services["diabetes"])
    rows = services["D"].iloc[:20]
    result = client.infer(
        "diabetes",
        _triton_inputs(rows, binary=False),
        outputs=[triton.InferRequestedOutput("predict", binary_data=False)],
    )
    assert "data" in result.get_response()["outputs"][0]
    assert (
        result.as_numpy("predict").tolist() == services["models"]["diabetes"].predict(rows).tolist()
    )


def test_tritonclient_bytes_inputs_and_outputs(services):
    client = _triton(services["words"])
    rows = services["S"].iloc[:30]
    result = client.infer("words", _triton_inputs(rows))
    got = [v.decode() for v in result.as_numpy("predict").tolist()]
    assert got == services["models"]["words"].predict(rows).tolist()


def test_tritonclient_versioned_routes(services):
    client = _triton(services["wine"])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("wine", "1")
    assert not client.is_model_ready("wine", "9")
    assert not client.is_model_ready("nosuch")
    meta = client.get_model_metadata("wine", "1")
    rows = services["X"].iloc[:5]
    result = client.infer("wine", _triton_inputs(rows), model_version="1")
    assert result.get_response()["model_version"] == "1"
    assert meta["outputs"][0]["datatype"] == result.get_output("predict")["datatype"]
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}


def test_metadata_datatypes_equal_what_infer_returns(services):
    for name, frame in (("wine", "X"), ("diabetes", "D"), ("words", "S")):
        client = _triton(services[name])
        meta = client.get_model_metadata(name)
        result = client.infer(name, _triton_inputs(services[frame].iloc[:3]))
        assert meta["outputs"][0]["datatype"] == result.get_output("predict")["datatype"]
    assert (
        _triton(services["words"]).get_model_metadata("words")["outputs"][0]["datatype"] == "BYTES"
    )


def test_server_metadata_declares_the_binary_extension(services):
    meta = _triton(services["wine"]).get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]


def test_one_matrix_tensor_in_fp32(services):
    client = _triton(services["wine"])
    rows = services["X"].iloc[:10].to_numpy(dtype=np.float32)
    inp = triton.InferInput("input-0", list(rows.shape), "FP32")
    inp.set_data_from_numpy(rows)
    got = client.infer("wine", [inp]).as_numpy("predict")
    expected = services["models"]["wine"].predict(
        pd.DataFrame(rows.astype(np.float64), columns=services["X"].columns)
    )
    assert got.tolist() == expected.tolist()


# -- the KServe SDK ---------------------------------------------------------------------
def _kserve_request(frame, name, binary=True):
    inputs = []
    for col in frame.columns:
        values = frame[col].to_numpy()
        dt = "BYTES" if values.dtype.kind == "O" else "FP64"
        inp = kserve.InferInput(col, [len(frame)], dt)
        inp.set_data_from_numpy(
            values.astype(object if dt == "BYTES" else np.float64), binary_data=binary
        )
        inputs.append(inp)
    return kserve.InferRequest(model_name=name, infer_inputs=inputs, request_id="r-1")


@pytest.mark.parametrize("binary", [True, False])
def test_kserve_client_infer_matches_the_model(services, binary):
    needs(kserve is not None, "the kserve SDK is not installed (make test installs it)")
    rows = services["X"].iloc[:15]

    async def call():
        config = kserve.RESTConfig(protocol="v2")
        async with kserve.InferenceRESTClient(config) as client:
            assert await client.is_server_ready(services["wine"].url)
            assert await client.is_model_ready(services["wine"].url, "wine")
            return await client.infer(
                services["wine"].url, _kserve_request(rows, "wine", binary), model_name="wine"
            )

    response = asyncio.run(call())
    assert response.id == "r-1"
    assert (
        response.outputs[0].as_numpy().tolist() == services["models"]["wine"].predict(rows).tolist()
    )


def test_kserve_request_on_the_versioned_route(services):
    needs(kserve is not None, "the kserve SDK is not installed (make test installs it)")
    rows = services["S"].iloc[:12]
    body, json_length = _kserve_request(rows, "words").to_rest()
    headers = {
        "Inference-Header-Content-Length": str(json_length),
        "Content-Type": "application/octet-stream",
    }
    r = httpx.post(
        services["words"].url + "/v2/models/words/versions/1/infer", content=body, headers=headers
    )
    assert r.status_code == 200, r.text
    length = int(r.headers.get("Inference-Header-Content-Length", len(r.content)))
    response = kserve.InferResponse.from_bytes(r.content, length)
    got = [
        v.decode() if isinstance(v, bytes) else v for v in response.outputs[0].as_numpy().tolist()
    ]
    assert got == services["models"]["words"].predict(rows).tolist()


# -- what is refused -----------------------------------------------------------------------
def _post_json(svc, path, body):
    return httpx.post(svc.url + path, json=body)


@pytest.mark.parametrize(
    "datatype,data,needle",
    [
        ("INT64", [1.5], "declared INT64 but holds 1.5"),
        ("BOOL", [True], "takes a number type"),
        ("BYTES", ["1.0"], "takes a number type"),
        ("UINT8", [300], "declared UINT8 but holds 300"),
    ],
)
def test_declared_datatypes_are_checked(services, datatype, data, needle):
    cols = list(services["X"].columns)
    inputs = [{"name": c, "shape": [1], "datatype": "FP64", "data": [1.0]} for c in cols]
    inputs[0] = {"name": cols[0], "shape": [1], "datatype": datatype, "data": data}
    r = _post_json(services["wine"], "/v2/models/wine/infer", {"inputs": inputs})
    assert r.status_code == 400
    assert set(r.json()) == {"error"} and needle in r.json()["error"]


def test_binary_sizes_that_do_not_add_up_are_refused(services):
    header = (
        b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", '
        b'"parameters": {"binary_data_size": 16}}]}'
    )
    r = httpx.post(
        services["wine"].url + "/v2/models/wine/infer",
        content=header + b"\0" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 400 and "binary data" in r.json()["error"]


def test_unknown_version_and_model_are_404_in_oip_shape(services):
    for path in (
        "/v2/models/wine/versions/9",
        "/v2/models/wine/versions/9/ready",
        "/v2/models/nosuch/infer",
    ):
        r = httpx.request(
            "POST" if path.endswith("infer") else "GET",
            services["wine"].url + path,
            json={"inputs": []},
        )
        assert r.status_code == 404 and set(r.json()) == {"error"}, (path, r.text)


@pytest.mark.parametrize(
    "datatype,values",
    [
        ("BOOL", [True, False, True]),
        ("UINT8", [0, 7, 255]),
        ("UINT16", [0, 65535]),
        ("UINT32", [1, 2**32 - 1]),
        ("UINT64", [3, 2**64 - 1]),
        ("INT8", [-128, 127]),
        ("INT16", [-5, 300]),
        ("INT32", [-(2**31), 2**31 - 1]),
        ("INT64", [-(2**63), 2**63 - 1]),
        ("FP16", [0.5, -2.0]),
        ("FP32", [1.5, -0.25]),
        ("FP64", [0.1, 1e300]),
        ("BYTES", ["a", "", "grün"]),
    ],
)
def test_every_datatype_survives_the_binary_encoding(datatype, values):
    from nbops.serving.runtime import oip

    raw = oip.encode(values, datatype)
    assert oip.decode(raw, datatype, len(values), "x") == values
    if triton is not None and datatype != "BYTES":  # the same bytes tritonclient writes
        inp = triton.InferInput("x", [len(values)], datatype)
        inp.set_data_from_numpy(np.asarray(values, dtype=triton.triton_to_np_dtype(datatype)))
        assert inp._get_binary_data() == raw


def test_bf16_inputs_decode_as_the_upper_half_of_float32():
    from nbops.serving.runtime import oip

    halves = (np.asarray([1.5, -2.0], dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    assert oip.decode(halves.tobytes(), "BF16", 2, "x") == [1.5, -2.0]


def test_integer_tensors_feed_float_columns_in_binary(services):
    client = _triton(services["wine"])
    rows = services["X"].iloc[:6].round()
    inputs = []
    for col in rows.columns:
        inp = triton.InferInput(col, [len(rows)], "INT32")
        inp.set_data_from_numpy(rows[col].to_numpy().astype(np.int32))
        inputs.append(inp)
    got = client.infer("wine", inputs).as_numpy("predict")
    assert got.tolist() == services["models"]["wine"].predict(rows).tolist()


def test_kserve_client_itself_on_the_versioned_route(services):
    needs(kserve is not None, "the kserve SDK is not installed (make test installs it)")
    rows = services["X"].iloc[:9]
    url = services["wine"].url + "/v2/models/wine/versions/1/infer"

    async def call():
        async with kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2")) as client:
            # a full URL: the client posts there as it is (binary inputs, JSON answer)
            return await client.infer(url, _kserve_request(rows, "wine"), is_graph_endpoint=True)

    response = asyncio.run(call())
    assert response["model_version"] == "1"
    assert response["outputs"][0]["data"] == services["models"]["wine"].predict(rows).tolist()
