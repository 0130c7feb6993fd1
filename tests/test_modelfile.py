"""The model file contract: skops files, sha256 and trusted types checked before loading."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from nbops import ModelIntegrityError, NbopsError, RegistryError
from nbops.modelfile import (
    MODEL_FILE_NAME,
    check_model_bytes,
    dump_model,
    infer_signature,
    is_fitted_estimator,
    load_model_file,
    normalise_signature,
)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.integers(0, 5, size=60)})
    y = (X["a"] + rng.normal(scale=0.1, size=60) > 0).astype(int)
    return X, y


def test_roundtrip_predicts_the_same(tmp_path, frame):
    X, y = frame
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    facts = dump_model(model, tmp_path / MODEL_FILE_NAME)
    loaded = load_model_file(tmp_path / MODEL_FILE_NAME, facts["sha256"], facts["trusted_types"])
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert facts["flavour"] == "sklearn"
    assert facts["file_name"] == "model.skops"
    assert facts["model_class"] == "sklearn.pipeline.Pipeline"
    assert set(facts["library_versions"]) == {"python", "sklearn", "skops", "numpy", "pandas"}
    assert facts["size"] == (tmp_path / MODEL_FILE_NAME).stat().st_size


def test_file_is_skops_not_pickle(tmp_path, frame):
    X, y = frame
    dump_model(LogisticRegression().fit(X, y), tmp_path / "m.skops")
    assert zipfile.is_zipfile(tmp_path / "m.skops")
    assert "schema.json" in zipfile.ZipFile(tmp_path / "m.skops").namelist()


def test_tree_model_records_and_reuses_its_trusted_types(tmp_path, frame):
    X, y = frame
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    facts = dump_model(model, tmp_path / "tree.skops")
    assert "sklearn.tree._tree.Tree" in facts["trusted_types"]
    loaded = load_model_file(tmp_path / "tree.skops", facts["sha256"], facts["trusted_types"])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_changed_bytes_raise_integrity_error(tmp_path, frame):
    X, y = frame
    facts = dump_model(LogisticRegression().fit(X, y), tmp_path / "m.skops")
    data = bytearray((tmp_path / "m.skops").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "m.skops").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="was changed or replaced"):
        load_model_file(tmp_path / "m.skops", facts["sha256"], facts["trusted_types"])


def test_file_needing_unrecorded_types_is_refused(tmp_path, frame):
    # a correct hash is not enough: a file that asks for types nobody recorded is refused
    X, y = frame
    facts = dump_model(DecisionTreeClassifier().fit(X, y), tmp_path / "tree.skops")
    with pytest.raises(ModelIntegrityError, match=r"sklearn\.tree\._tree\.Tree"):
        load_model_file(tmp_path / "tree.skops", facts["sha256"], trusted_types=[])


def test_check_model_bytes_returns_the_types_to_trust(tmp_path, frame):
    X, y = frame
    facts = dump_model(DecisionTreeClassifier().fit(X, y), tmp_path / "tree.skops")
    data = (tmp_path / "tree.skops").read_bytes()
    assert (
        check_model_bytes(data, facts["sha256"], facts["trusted_types"]) == facts["trusted_types"]
    )


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match="missing"):
        load_model_file(tmp_path / "nope.skops", "0" * 64, [])


def test_unfitted_and_non_estimators_are_refused(tmp_path):
    with pytest.raises(RegistryError, match="not fitted"):
        dump_model(LogisticRegression(), tmp_path / "m.skops")
    with pytest.raises(RegistryError, match="scikit-learn estimators"):
        dump_model({"weights": [1, 2]}, tmp_path / "m.skops")
    assert issubclass(RegistryError, NbopsError)
    assert not (tmp_path / "m.skops").exists()


def test_signature_from_training_dataframe(frame):
    X, y = frame
    X = X.assign(colour=np.array(["red", "blue", "green"] * 20))
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["colour"])]
    )
    model = make_pipeline(pre, LogisticRegression()).fit(X, y)
    sig = infer_signature(model, X)
    assert sig["inputs"] == [
        {"name": "a", "dtype": "float64"},
        {"name": "b", "dtype": "int64"},
        {"name": "colour", "dtype": "str"},
    ]
    assert sig["outputs"] == {"task": "classification", "dtype": "int64", "classes": [0, 1]}


def test_signature_of_regressor_without_data(frame):
    X, y = frame
    sig = infer_signature(LinearRegression().fit(X.to_numpy(), y))
    assert sig["inputs"] == [{"name": "x0", "dtype": "float64"}, {"name": "x1", "dtype": "float64"}]
    assert sig["outputs"]["task"] == "regression"


def test_signature_with_wrong_columns_is_refused(frame):
    X, y = frame
    model = LogisticRegression().fit(X, y)
    with pytest.raises(RegistryError, match=r"fitted on \['a', 'b'\]"):
        infer_signature(model, X[["b", "a"]])


def test_user_signature_is_validated(frame):
    X, y = frame
    model = LogisticRegression().fit(X, y)
    sig = normalise_signature({"inputs": [{"name": "a"}, {"name": "b", "dtype": "int64"}]}, model)
    assert sig["inputs"][0] == {"name": "a", "dtype": "float64"}
    assert sig["outputs"]["classes"] == [0, 1]
    with pytest.raises(RegistryError, match="list of"):
        normalise_signature({"inputs": "a,b"}, model)
    with pytest.raises(RegistryError, match="task"):
        normalise_signature({"inputs": [], "outputs": {"task": "ranking"}}, model)


def test_is_fitted_estimator():
    assert not is_fitted_estimator(LogisticRegression())
    assert not is_fitted_estimator(LogisticRegression)
    assert not is_fitted_estimator(np.zeros(3))


def test_estimator_check_does_not_import_sklearn():
    code = (
        "import sys, nbops.modelfile as m; "
        "assert not m.is_sklearn_estimator(object()); "
        "assert 'sklearn' not in sys.modules and 'skops' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
