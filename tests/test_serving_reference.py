"""The training data as the default drift reference: a bounded sample is stored with
the model when it is logged, carried into the registry, copied into the export, and
used by ``nbops.monitor`` on a real service's prediction log."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import nbops
from nbops.serving.local import LocalService


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory, wine):
    """One version logged with reference=X (no reference given to export), served."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = wine
    root = tmp_path_factory.mktemp("reference")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    model = RandomForestClassifier(30, random_state=0).fit(X, y)
    with nbops.start_run(name="wine-ref") as run:
        entry = nbops.log_model(model, signature=X, reference=X)
    record = nbops.register(run.run_id, "wine")
    info = nbops.export("wine", version=1, path=root / "svc")
    service = LocalService(info["path"])
    yield {
        "X": X,
        "y": y,
        "model": model,
        "entry": entry,
        "record": record,
        "info": info,
        "service": service,
        "root": root,
    }
    service.stop()
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


def test_log_model_stores_the_reference_and_register_carries_it(served):
    X = served["X"]
    ref = served["entry"]["reference"]
    assert ref["format"] == "parquet" and ref["rows"] == ref["total_rows"] == len(X)
    assert ref["sampled"] is False and ref["columns"] == list(X.columns)
    run = nbops.get_run(served["record"]["run_id"])
    (artifact,) = [a for a in run["artifacts"] if a["kind"] == "reference"]
    assert artifact["name"] == "reference.parquet" and artifact["sha256"] == ref["sha256"]
    assert served["record"]["reference"] == ref
    back = nbops.load_reference("wine", version=1)
    pd.testing.assert_frame_equal(back, X.reset_index(drop=True))


def test_export_copies_the_reference_with_predictions(served):
    folder = Path(served["info"]["path"])
    meta = json.loads((folder / "model.json").read_text())
    assert meta["reference"]["file"] == "reference.parquet"
    assert meta["reference"]["source"] == "training sample"
    assert meta["reference"]["rows"] == len(served["X"])
    assert meta["reference"]["sample_sha256"] == served["entry"]["reference"]["sha256"]
    assert served["info"]["reference"]["file"] == "reference.parquet"
    frame = pd.read_parquet(folder / "reference.parquet")
    assert list(frame.columns) == [*served["X"].columns, "prediction"]
    assert frame["prediction"].tolist() == served["model"].predict(served["X"]).tolist()


def test_monitor_uses_the_stored_reference_on_a_shifted_stream(served):
    X = served["X"]
    live = X.sample(150, replace=True, random_state=3)
    live["proline"] = live["proline"] * 2.5
    with httpx.Client(base_url=served["service"].url, timeout=30) as client:
        r = client.post(
            "/invocations",
            json={
                "dataframe_split": {"columns": list(X.columns), "data": live.to_numpy().tolist()}
            },
            headers={"X-Request-ID": "shifted"},
        )
    assert r.status_code == 200, r.text
    time.sleep(0.5)  # the service flushes its log every 0.2 s
    report = nbops.monitor(served["info"]["path"])  # no reference= given
    assert isinstance(report, nbops.DriftReport)
    assert "proline" in report.drifted_columns
    assert "alcohol" not in report.drifted_columns


def test_a_large_training_frame_keeps_a_deterministic_bounded_sample(store, monkeypatch):
    from sklearn.linear_model import LinearRegression

    monkeypatch.setenv("NBOPS_REFERENCE_ROWS", "100")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"a": rng.normal(size=500), "b": rng.integers(0, 9, 500)}, index=np.arange(1000, 1500)
    )
    frame = X.assign(extra=1.0)  # columns beyond the model's inputs are not kept
    model = LinearRegression().fit(X, X.a + X.b)
    entries = []
    for _ in range(2):
        with nbops.start_run():
            entries.append(nbops.log_model(model, signature=X, reference=frame)["reference"])
    ref = entries[0]
    assert ref["rows"] == 100 and ref["total_rows"] == 500 and ref["sampled"] is True
    assert ref["columns"] == ["a", "b"]
    assert entries[1]["sha256"] == ref["sha256"]  # same data, same sample, same file
    with nbops.start_run() as run:
        nbops.log_model(model, signature=X, reference=frame)
    nbops.register(run.run_id, "lin")
    sample = nbops.load_reference("lin")
    assert len(sample) == 100 and list(sample.columns) == ["a", "b"]
    # rows of the original frame, in their original order
    merged = sample.merge(X.reset_index(), on=["a", "b"], how="left")
    assert merged["index"].notna().all() and merged["index"].is_monotonic_increasing


def test_no_sample_is_stored_when_turned_off(store, monkeypatch, wine):
    from sklearn.tree import DecisionTreeClassifier

    X, y = wine
    monkeypatch.setenv("NBOPS_REFERENCE_ROWS", "0")
    with nbops.start_run() as run:
        entry = nbops.log_model(
            DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), reference=X
        )
    assert "reference" not in entry
    assert not [a for a in nbops.get_run(run.run_id)["artifacts"] if a["kind"] == "reference"]


def test_bad_references_are_refused_before_anything_is_written(store, wine):
    from sklearn.tree import DecisionTreeClassifier

    X, y = wine
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    with nbops.start_run() as run:
        with pytest.raises(nbops.RegistryError, match="lacks the model's input columns"):
            nbops.log_model(model, signature=X, reference=X.drop(columns=["proline"]))
        with pytest.raises(nbops.RegistryError, match="must be the training DataFrame"):
            nbops.log_model(model, signature=X, reference=X.to_numpy())
    assert not nbops.get_run(run.run_id)["artifacts"]


def test_without_a_reference_monitor_says_how_to_pass_one(store, tmp_path, wine):
    from sklearn.tree import DecisionTreeClassifier

    X, y = wine
    with nbops.start_run() as run:
        nbops.log_model(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), signature=X)
    nbops.register(run.run_id, "plain")
    with pytest.raises(nbops.RegistryError, match="no training sample"):
        nbops.load_reference("plain")
    with pytest.raises(nbops.NbopsError, match="no stored training sample"):
        nbops.export("plain", path=tmp_path / "x", reference_target=y)
    info = nbops.export("plain", path=tmp_path / "svc")
    assert info["reference"] is None
    assert not list(Path(info["path"]).glob("reference.*"))
    with pytest.raises(nbops.NbopsError) as err:
        nbops.monitor(info["path"])
    assert "reference=X_train" in str(err.value) and "'plain' v1" in str(err.value)
    # an explicit reference still works, and reference=False exports none
    info = nbops.export("plain", path=tmp_path / "svc2", reference=X)
    assert info["reference"]["source"] == "export(reference=)"
    assert (Path(info["path"]) / "reference.parquet").is_file()


def test_reference_false_and_a_mismatched_target(store, tmp_path, wine, monkeypatch):
    from sklearn.tree import DecisionTreeClassifier

    X, y = wine
    monkeypatch.setenv("NBOPS_REFERENCE_ROWS", "50")
    with nbops.start_run() as run:
        nbops.log_model(
            DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), signature=X, reference=X
        )
    nbops.register(run.run_id, "small")
    info = nbops.export("small", path=tmp_path / "none", reference=False)
    assert info["reference"] is None and not list(Path(info["path"]).glob("reference.*"))
    with pytest.raises(nbops.NbopsError, match="keeps 50 of 178 rows"):
        nbops.export("small", path=tmp_path / "t", reference_target=y)


def test_cli_export_keeps_the_sample_unless_told_not_to(store, tmp_path, wine):
    import subprocess
    import sys

    from sklearn.tree import DecisionTreeClassifier

    X, y = wine
    with nbops.start_run() as run:
        nbops.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), signature=X, reference=X)
    nbops.register(run.run_id, "wine")
    for flag, expected in (([], True), (["--no-reference"], False)):
        out = tmp_path / f"svc{len(flag)}"
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "nbops.cli",
                "--store",
                str(store),
                "export",
                "wine",
                "--path",
                str(out),
                *flag,
            ],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr
        assert (out / "reference.parquet").is_file() is expected
        assert ("reference" in json.loads((out / "model.json").read_text())) is expected
