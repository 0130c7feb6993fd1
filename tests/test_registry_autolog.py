"""%%track autolog in a real kernel: fitted scikit-learn models are logged with their
params and a signature from the training DataFrame, and can be registered and loaded."""

from __future__ import annotations

import json

import pytest

SETUP = """
import numpy as np, pandas as pd, nbops, json
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
rng = np.random.default_rng(0)
X = pd.DataFrame({"f": rng.normal(size=120), "n": rng.integers(0, 9, size=120)})
y = (X.f + X.n / 9 > 0.5).astype(int)
X_train, X_test, y_train, y_test = X[:90], X[90:], y[:90], y[90:]
"""


@pytest.fixture(scope="module")
def k(kernel):
    res = kernel.run(SETUP)
    assert res["status"] == "ok", res
    return kernel


def last_run(k) -> dict:
    res = k.run("print(json.dumps(nbops.get_run(nbops.runs().run_id[0]), default=str))")
    assert res["status"] == "ok", res
    return json.loads(res["text"])


def test_tracked_cell_logs_fitted_model_params_and_signature(k):
    res = k.run(
        "%%track -q -n rf\n"
        "rf = RandomForestClassifier(n_estimators=7, max_depth=3, random_state=0)\n"
        "rf.fit(X_train, y_train)\n"
        "acc = rf.score(X_test, y_test)\n"
    )
    assert res["status"] == "ok", res
    run = last_run(k)
    assert run["params"]["n_estimators"] == 7 and run["params"]["max_depth"] == 3
    assert run["params"]["criterion"] == "gini"
    (entry,) = run["models"]
    assert entry["name"] == "rf"
    assert entry["trusted_types"] == ["sklearn.tree._tree.Tree"]
    assert entry["signature"]["inputs"] == [
        {"name": "f", "dtype": "float64"},
        {"name": "n", "dtype": "int64"},
    ]
    assert entry["signature"]["outputs"]["classes"] == [0, 1]
    res = k.run(
        f"nbops.register({run['run_id']!r}, 'rf-model')\n"
        "m = nbops.load_model('rf-model')\n"
        "print((m.predict(X_test) == rf.predict(X_test)).all())"
    )
    assert res["status"] == "ok", res
    assert res["text"].strip() == "True"


def test_fit_on_an_existing_estimator_is_detected(k):
    k.run("lr = LogisticRegression(C=0.25)")
    res = k.run("%%track -q -n refit\nlr.fit(X_train, y_train)\n")
    assert res["status"] == "ok", res
    run = last_run(k)
    assert [m["name"] for m in run["models"]] == ["lr"]
    assert run["params"]["C"] == 0.25


def test_pipeline_steps_are_not_logged_twice(k):
    res = k.run(
        "%%track -q -n pipe\n"
        "clf = LogisticRegression()\n"
        "pipe = make_pipeline(StandardScaler(), clf).fit(X_train, y_train)\n"
    )
    assert res["status"] == "ok", res
    run = last_run(k)
    assert [m["name"] for m in run["models"]] == ["pipe"]
    assert run["models"][0]["model_class"] == "sklearn.pipeline.Pipeline"
    assert run["params"]["logisticregression__C"] == 1.0


def test_model_option_picks_one_of_several(k):
    res = k.run(
        "%%track -q -n two --model b\n"
        "a = LogisticRegression().fit(X_train, y_train)\n"
        "b = RandomForestClassifier(n_estimators=3).fit(X_train, y_train)\n"
    )
    assert res["status"] == "ok", res
    run = last_run(k)
    assert [m["name"] for m in run["models"]] == ["b"]


def test_model_option_naming_nothing_warns_and_cell_still_runs(k):
    res = k.run("%%track -q -n missing --model nothere\nzz = 5\n")
    assert res["status"] == "ok", res
    assert "--model names 'nothere'" in "".join(res["text"])
    run = last_run(k)
    assert run["status"] == "FINISHED" and not run.get("models")


def test_unfitted_estimator_is_not_logged(k):
    res = k.run("%%track -q -n unfit\nraw = LogisticRegression()\n")
    assert res["status"] == "ok", res
    run = last_run(k)
    assert not run.get("models")


def test_register_untracked_cell_run_without_model_explains(k):
    res = k.run("%%track -q -n nomodel\nw = 3\n")
    assert res["status"] == "ok"
    run_id = last_run(k)["run_id"]
    res = k.run(f"nbops.register({run_id!r}, 'x')")
    assert res["status"] == "error"
    assert res["error"]["ename"] == "RegistryError"
    assert "%%track --model VAR" in res["error"]["evalue"]


def test_tracked_cell_stores_the_training_frame_as_the_reference(k):
    res = k.run(
        "%%track -q -n withref\n"
        "ref_rf = RandomForestClassifier(n_estimators=3, random_state=0)\n"
        "ref_rf.fit(X_train, y_train)\n"
    )
    assert res["status"] == "ok", res
    run = last_run(k)
    (entry,) = run["models"]
    ref = entry["reference"]
    assert ref["rows"] == ref["total_rows"] == 90 and ref["columns"] == ["f", "n"]
    assert ref["sampled"] is False
    assert any(a["kind"] == "reference" and a["sha256"] == ref["sha256"] for a in run["artifacts"])
    res = k.run(
        f"nbops.register({run['run_id']!r}, 'with-ref')\n"
        "back = nbops.load_reference('with-ref')\n"
        "print(back.equals(X_train.reset_index(drop=True)), dict(back.dtypes.astype(str)))"
    )
    assert res["status"] == "ok", res
    assert res["text"].strip() == "True {'f': 'float64', 'n': 'int64'}"
