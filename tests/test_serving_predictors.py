"""Exact numpy predictors (model.npz): linear models, trees, boosting and pipelines of
scalers, imputers and encoders reproduce scikit-learn's predictions bit for bit, and a
service whose model has one starts without importing scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import LinearSVC

import nbops
from nbops.serving.compiled import compile_model
from nbops.serving.runtime.predictors import NumpyPredictor


def _inputs(frame):
    return [
        {"name": c, "dtype": "str" if frame[c].dtype == object else str(frame[c].dtype)}
        for c in frame.columns
    ]


def _as_the_service_asks(rows, frame):
    """The DataFrame the service's scikit-learn path builds from request rows."""
    X = pd.DataFrame(rows, columns=list(frame.columns))
    for col in frame.columns:
        if frame[col].dtype.kind == "f":
            X[col] = X[col].astype("float64")
    return X


def _check_exact(model, frame, tmp_path, probe):
    path = tmp_path / "model.npz"
    assert compile_model(model, path, frame, inputs=_inputs(frame)), type(model).__name__
    predictor = NumpyPredictor(path)
    rows = probe.astype(object).values.tolist()
    # a batch, as one request: the same answer scikit-learn gives for that request
    assert predictor.predict_rows(rows) == model.predict(_as_the_service_asks(rows, frame)).tolist()
    # one row at a time (no memory layout to differ)
    for k in range(0, len(rows), 7):
        assert predictor.predict_rows([rows[k]]) == model.predict(probe.iloc[[k]]).tolist()


@pytest.fixture(scope="module")
def wine():
    return load_wine(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True, as_frame=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=5000),
        lambda: make_pipeline(StandardScaler(), LogisticRegression()),
        lambda: make_pipeline(StandardScaler(), RidgeClassifier()),
        lambda: make_pipeline(StandardScaler(), LinearSVC()),
        lambda: make_pipeline(StandardScaler(), SGDClassifier(random_state=0)),
        lambda: make_pipeline(
            SimpleImputer(), StandardScaler(), RandomForestClassifier(10, random_state=0)
        ),
    ],
    ids=[
        "logistic",
        "scaled-logistic",
        "ridge-classifier",
        "linear-svc",
        "sgd",
        "imputer-scaler-forest",
    ],
)
def test_classifiers_are_reproduced_exactly(make, wine, tmp_path):
    X, y = wine
    model = make().fit(X, y)
    probe = X.sample(60, random_state=1) * 1.01
    _check_exact(model, X, tmp_path, probe)


@pytest.mark.parametrize(
    "make",
    [
        LinearRegression,
        lambda: Ridge(alpha=0.5),
        lambda: ElasticNet(alpha=0.01),
        lambda: GradientBoostingRegressor(n_estimators=50, random_state=0),
        lambda: make_pipeline(StandardScaler(), LinearRegression()),
    ],
    ids=["linear", "ridge", "elastic-net", "gradient-boosting", "scaled-linear"],
)
def test_regressors_are_reproduced_exactly(make, diabetes, tmp_path):
    X, y = diabetes
    model = make().fit(X, y)
    probe = X.sample(80, random_state=2) * 0.97
    _check_exact(model, X, tmp_path, probe)


def test_column_transformer_with_encoders_and_imputer(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], 300),
            "grade": rng.choice(["low", "mid", "high"], 300),
            "size": rng.normal(size=300),
            "weight": rng.normal(size=300),
        }
    )
    frame.loc[::7, "weight"] = np.nan
    y = ((frame["colour"] == "red") ^ (frame["size"] > 0)).astype(int)
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["colour"]),
            (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["grade"]),
            (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["size", "weight"]),
        ),
        LogisticRegression(),
    ).fit(frame, y)
    probe = frame.sample(50, random_state=3).copy()
    probe.iloc[0, 0] = "purple"  # unknown category: ignored, as the encoder does
    _check_exact(model, frame, tmp_path, probe)


def test_unsupported_models_get_no_predictor(wine, tmp_path):
    X, y = wine
    model = GradientBoostingClassifier(n_estimators=5).fit(X, y)
    assert not compile_model(model, tmp_path / "m.npz", X, inputs=_inputs(X))
    assert not (tmp_path / "m.npz").exists()


def test_rows_the_program_cannot_score_fall_back(wine, tmp_path):
    X, y = wine
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert compile_model(model, tmp_path / "m.npz", X, inputs=_inputs(X))
    row = X.iloc[0].tolist()
    row[3] = float("nan")  # scikit-learn refuses NaN here; the program hands it back
    assert NumpyPredictor(tmp_path / "m.npz").predict_rows([row]) is None


def test_exported_services_start_without_scikit_learn(tmp_path, monkeypatch, wine, diabetes):
    monkeypatch.setenv("NBOPS_STORE", str(tmp_path / "store"))
    nbops.set_store(None)
    X, y = wine
    D, t = diabetes
    cases = {
        "forest": (RandomForestClassifier(20, random_state=0).fit(X, y), X),
        "scaled-logistic": (make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X),
        "boosting": (GradientBoostingRegressor(n_estimators=30).fit(D, t), D),
    }
    try:
        for name, (model, frame) in cases.items():
            with nbops.start_run(name=name) as run:
                nbops.log_model(model, signature=frame)
            nbops.register(run.run_id, name)
            info = nbops.export(name, version=1, path=tmp_path / name)
            assert info["compiled"], name
            rows = frame.iloc[:30]
            script = (
                "import json, sys; sys.path.insert(0, sys.argv[1])\n"
                "from pathlib import Path\n"
                "from runtime.service import Service\n"
                "from runtime.inputs import Table\n"
                "s = Service(Path(sys.argv[1])); s.load()\n"
                "cols = json.loads(sys.argv[2]); rows = json.loads(sys.argv[3])\n"
                "mv, preds, _ = s.score(Table(cols, rows))\n"
                "print(json.dumps({'preds': preds, 'sklearn': 'sklearn' in sys.modules}))\n"
            )
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    script,
                    info["path"],
                    json.dumps(list(rows.columns)),
                    json.dumps(rows.to_numpy().tolist()),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "PYTHONPATH": ""},
            )
            assert out.returncode == 0, out.stderr
            result = json.loads(out.stdout)
            assert result["sklearn"] is False, name
            assert result["preds"] == model.predict(rows).tolist(), name
    finally:
        nbops.set_store(None)
