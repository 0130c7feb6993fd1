"""The corpus (tests/corpus/*.ipynb: notebooks in the patterns of scikit-learn's gallery
and public notebooks) run plain and with every code cell under %%track, in two real
kernels reused across notebooks: nothing a reader sees differs, and the runs hold the
results a reader would name."""

from __future__ import annotations

import math
import os
import sys

import pytest
from conftest import ROOT, Kernel

sys.path.insert(0, str(ROOT / "tests" / "corpus"))
from runner import NOTEBOOKS, run_notebook  # noqa: E402

#: names that are plot bounds or counts in any notebook: never metrics
NEVER_METRICS = {
    "x_min",
    "x_max",
    "y_min",
    "y_max",
    "xx",
    "yy",
    "h",
    "n_samples",
    "n_features",
    "n_classes",
    "n_points",
}


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    work = tmp_path_factory.mktemp("corpus")
    env = {
        **os.environ,
        "NBOPS_STORE": str(work / "store"),
        "PYTHONPATH": str(ROOT / "src"),
        "MPLBACKEND": "Agg",
    }
    env.pop("JPY_SESSION_NAME", None)
    plain = Kernel(work, env)
    tracked = Kernel(work, env)
    try:
        assert tracked.run("%load_ext nbops")["status"] == "ok"
        yield plain, tracked
    finally:
        plain.close()
        tracked.close()


@pytest.fixture(scope="module")
def results(kernels):
    """Each notebook is run once; the tests below read what happened."""
    cache: dict = {}

    def get(path):
        if path.stem not in cache:
            cache[path.stem] = run_notebook(path, *kernels)
        return cache[path.stem]

    return get


def test_corpus_has_at_least_15_notebooks():
    assert len(NOTEBOOKS) >= 15


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tracked_notebook_behaves_as_plain(results, path):
    res = results(path)
    assert res.differences == [], f"cells that differ: {res.differences[:2]}"
    assert res.tracked_ns == res.plain_ns


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_headline_results_are_run_metrics(results, path):
    res = results(path)
    values = [v for run in res.runs for v in run["metrics"].values()]
    assert res.headline, "each notebook lists its headline results"
    for expr, value in res.headline.items():
        assert any(math.isclose(value, v, rel_tol=1e-9, abs_tol=1e-12) for v in values), (
            f"{expr} = {value} is not among the metrics of {path.stem}'s runs"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_plot_bound_or_count_is_a_metric(results, path):
    res = results(path)
    banned = NEVER_METRICS | set(res.meta.get("not_metrics", []))
    for run in res.runs:
        keys = set(run["metrics"])
        assert not keys & banned, f"{sorted(keys & banned)} recorded as metrics"
        assert not [k for k in keys if k.startswith("n_")], sorted(keys)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_searches_and_models_are_logged(results, path):
    res = results(path)
    models = [m for run in res.runs for m in run.get("models") or []]
    assert len(models) >= res.meta.get("min_models", 0), [m["name"] for m in models]
    assert all(run["status"] != "RUNNING" and not run.get("models_pending") for run in res.runs)
    search = res.meta.get("search")
    if search:
        run = next(r for r in res.runs if f"{search}.best_score" in r["metrics"])
        assert any(k.startswith(f"{search}.best_params.") for k in run["params"])
        assert any(a["name"] == f"{search}.cv_results.csv" for a in run["artifacts"])
        assert search in [m["name"] for m in run.get("models") or []]
