"""What a tracked cell records: results by provenance, the metric rule, searches, loops
and failed cells, in a real kernel."""

from __future__ import annotations

import json
import time

import pytest

SETUP = """
import numpy as np, nbops, json
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split, cross_val_score, GridSearchCV
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from sklearn.metrics import accuracy_score, classification_report, f1_score
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
"""


@pytest.fixture(scope="module")
def k(kernel):
    res = kernel.run(SETUP)
    assert res["status"] == "ok", res
    return kernel


def run_named(k, name: str) -> dict:
    res = k.run(
        f"rid = [r for r in nbops.run_page(limit=500)['runs'] if r['name'] == {name!r}]"
        "[0]['run_id']\nprint(json.dumps(nbops.get_run(rid), default=str))"
    )
    assert res["status"] == "ok", res
    return json.loads(res["text"].strip().splitlines()[-1])


def track(k, name: str, body: str) -> dict:
    res = k.run(f"%%track -q -n {name}\n{body}")
    assert res["status"] == "ok", res
    return run_named(k, name)


def test_score_printed_in_an_f_string_is_a_metric(k):
    run = track(
        k,
        "fstring",
        "clf = LogisticRegression(max_iter=500).fit(X_train, y_train)\n"
        "print(f'accuracy: {accuracy_score(y_test, clf.predict(X_test)):.3f}')\n",
    )
    res = k.run("print(accuracy_score(y_test, clf.predict(X_test)))")
    assert run["metrics"]["accuracy_score.y_test"] == float(res["text"])


def test_score_computed_in_a_helper_function_is_a_metric(k):
    run = track(
        k,
        "helper",
        "def evaluate(model):\n"
        "    return f1_score(y_test, model.predict(X_test), average='macro')\n"
        "m = SVC().fit(X_train, y_train)\nprint(evaluate(m))\n",
    )
    res = k.run("print(f1_score(y_test, m.predict(X_test), average='macro'))")
    assert run["metrics"]["f1_score.y_test"] == float(res["text"])


def test_estimator_score_is_a_metric_and_not_counted_twice(k):
    run = track(
        k,
        "score",
        "est = LogisticRegression(max_iter=500).fit(X_train, y_train)\n"
        "print(est.score(X_test, y_test))\n",
    )
    res = k.run("print(est.score(X_test, y_test))")
    assert run["metrics"] == {"est.score.X_test": float(res["text"])}


def test_classification_report_figures(k):
    run = track(
        k,
        "report",
        "rep = SVC().fit(X_train, y_train)\n"
        "print(classification_report(y_test, rep.predict(X_test)))\n",
    )
    res = k.run(
        "d = classification_report(y_test, rep.predict(X_test), output_dict=True)\n"
        "print(d['accuracy'], d['macro avg']['f1-score'], d['0']['recall'])"
    )
    acc, macro_f1, recall0 = map(float, res["text"].split())
    metrics = run["metrics"]
    assert metrics["classification_report.y_test.accuracy"] == acc
    assert metrics["classification_report.y_test.macro_avg.f1-score"] == macro_f1
    assert run["values"]["classification_report.y_test.0.recall"] == recall0  # per class


def test_cross_val_score_mean_std_and_folds(k):
    run = track(
        k, "cv", "cv_scores = cross_val_score(SVC(), X, y, cv=4)\nprint(cv_scores.mean())\n"
    )
    res = k.run("print(json.dumps(list(map(float, cv_scores))))")
    folds = json.loads(res["text"])
    assert run["values"]["cross_val_score.y.folds"] == folds
    mean = sum(folds) / len(folds)
    std = (sum((f - mean) ** 2 for f in folds) / len(folds)) ** 0.5
    assert run["metrics"]["cross_val_score.y.mean"] == pytest.approx(mean)
    assert run["metrics"]["cross_val_score.y.std"] == pytest.approx(std)


def test_plot_bounds_counts_and_rebound_literals_are_other_values(k):
    run = track(
        k,
        "bounds",
        "x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1\n"
        "n_samples = np.int64(len(X))\nalpha = 1\nalpha = alpha * 2\n"
        "val_accuracy = 0.5 + 0.25\n",
    )
    assert run["metrics"] == {"val_accuracy": 0.75}
    assert run["values"]["x_min"] == pytest.approx(3.3) and run["values"]["n_samples"] == 150
    assert run["values"]["alpha"] == 2 and "alpha" not in run["params"]


def test_long_literal_is_a_digest_and_length(k):
    run = track(k, "long", f"text = {'a' * 5000!r}\nshort = 'kept'\n")
    assert run["params"]["short"] == "kept"
    assert run["params"]["text"]["length"] == 5000 and len(run["params"]["text"]["sha256"]) == 64


def test_scoring_functions_are_restored_after_the_cell(k):
    track(
        k, "restore", "from sklearn.metrics import r2_score\nr = r2_score([1, 2, 3], [1, 2, 2])\n"
    )
    res = k.run(
        "import sklearn.metrics as skm, sklearn.base as skb\n"
        "print(r2_score is skm.r2_score, accuracy_score is skm.accuracy_score,\n"
        "      hasattr(skm.r2_score, '__nbops_original__'),\n"
        "      hasattr(skb.ClassifierMixin.score, '__nbops_original__'))"
    )
    assert res["text"].split() == ["True", "True", "False", "False"]


def test_grid_search_records_best_params_score_model_and_candidates(k):
    run = track(
        k,
        "grid",
        "grid = GridSearchCV(SVC(), {'C': [0.1, 1, 10, 100], "
        "'kernel': ['linear', 'rbf'], 'gamma': ['scale', 'auto', 0.1]}, cv=3)\n"
        "grid.fit(X_train, y_train)\nprint(grid.best_score_)\n",
    )
    res = k.run("print(json.dumps({'p': grid.best_params_, 's': grid.best_score_}))")
    best = json.loads(res["text"])
    assert {k: v for k, v in run["params"].items() if k.startswith("grid.best_params.")} == {
        f"grid.best_params.{k}": v for k, v in best["p"].items()
    }
    assert "estimator__C" not in run["params"]
    assert run["metrics"]["grid.best_score"] == best["s"]
    (model,) = run["models"]
    assert model["name"] == "grid" and model["model_class"] == "sklearn.svm._classes.SVC"
    assert any(a["name"] == "grid.cv_results.csv" for a in run["artifacts"])
    res = k.run(
        f"kids = nbops.run_page(limit=500, parent={run['run_id']!r})['runs']\n"
        "print(len(kids), max(r['metrics']['mean_test_score'] for r in kids))"
    )
    count, top = res["text"].split()
    assert int(count) == 20 and float(top) == best["s"]  # 24 candidates, the top 20 kept


def test_every_model_fitted_in_a_loop_is_logged(k):
    run = track(
        k, "loop", "for C in [0.1, 1.0, 10.0]:\n    looped = SVC(C=C).fit(X_train, y_train)\n"
    )
    cs = sorted(v for key, v in run["params"].items() if key.endswith(".C"))
    assert len(run["models"]) == 3 and cs == [0.1, 1.0, 10.0]


def test_models_in_a_dict_are_logged_under_their_keys(k):
    run = track(
        k,
        "dict",
        "zoo = {'lr': LogisticRegression(max_iter=500), 'svc': SVC()}\n"
        "for est in zoo.values():\n    est.fit(X_train, y_train)\n",
    )
    assert sorted(m["name"] for m in run["models"]) == ["zoo.lr", "zoo.svc"]


def test_models_past_the_cap_are_named_in_a_warning(k):
    res = k.run("%%track -q -n many\nfor C in range(1, 13):\n    SVC(C=C).fit(X_train, y_train)\n")
    assert res["status"] == "ok" and "12 models; the first 10 are logged" in res["text"]
    assert len(run_named(k, "many")["models"]) == 10


def test_a_failed_cell_logs_no_model(k):
    res = k.run(
        "%%track -q -n fails\nhalf = SVC().fit(X_train, y_train)\nraise RuntimeError('late')\n"
    )
    assert res["status"] == "error"
    for _ in range(50):  # ipykernel aborts requests that arrive right after an error
        if k.run("pass")["status"] == "ok":
            break
        time.sleep(0.05)
    run = run_named(k, "fails")
    assert run["status"] == "FAILED" and not run.get("models") and not run["artifacts"]


def test_tracking_a_cell_never_imports_sklearn(tmp_path):
    import subprocess
    import sys

    code = (
        "import os, sys\nfrom IPython.testing.globalipapp import start_ipython\n"
        f"os.environ['NBOPS_STORE'] = {str(tmp_path / 'store')!r}\n"
        "ip = start_ipython()\nip.run_line_magic('load_ext', 'nbops')\n"
        "ip.run_cell('%%track -q\\nscore = 0.5\\n')\n"
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_a_score_bound_to_a_result_name_is_recorded_under_that_name_only(k):
    run = track(
        k,
        "bound",
        "bound_clf = SVC().fit(X_train, y_train)\n"
        "test_acc = accuracy_score(y_test, bound_clf.predict(X_test))\n"
        "print(f1_score(y_test, bound_clf.predict(X_test), average='macro'))\n",
    )
    assert set(run["metrics"]) == {"test_acc", "f1_score.y_test"}
