"""nbops.drift_widget: a thin view that calls nbops.drift with per-column overrides;
and it renders as a widget in a real kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbops


@pytest.fixture
def data():
    r = np.random.default_rng(0)
    n = 20_000
    ref = pd.DataFrame(
        {"x": r.normal(size=n), "y": r.normal(size=n), "c": r.choice(["a", "b", "c"], n)}
    )
    cur = pd.DataFrame(
        {"x": r.normal(0.06, 1, n), "y": r.normal(1, 1, n), "c": r.choice(["a", "b", "c"], n)}
    )
    return ref, cur


def test_widget_shows_verdict_and_drifted_column_first(data):
    view = nbops.drift_widget(*data)
    assert view.column.options[0] == "y"
    assert "1 of 3 columns drifted" in view.verdict.value
    assert "wasserstein" in view.detail.value
    assert view.method.options[0].startswith("auto")
    assert "ks" in view.method.options and "chisquare" in view.method.options


def test_picking_a_categorical_column_offers_only_fitting_tests(data):
    view = nbops.drift_widget(*data)
    view.column.value = "c"
    assert "ks" not in view.method.options and "wasserstein" not in view.method.options
    assert "jensenshannon" in view.method.options


def test_selecting_a_test_and_threshold_recomputes_through_the_api(data):
    view = nbops.drift_widget(*data)
    view.column.value = "x"
    view.method.value = "ks"
    assert view.report.column("x")["test"] == "ks"
    assert view.threshold.value == 0.05
    view.method.value = "wasserstein"
    assert not view.report.column("x")["drifted"]
    view.threshold.value = 0.03  # x moved by ~0.06 std
    assert view.report.column("x")["drifted"]
    assert view.report.column("x")["threshold"] == 0.03
    assert "2 of 3 columns drifted" in view.verdict.value
    assert view.report.drifted  # 2/3 >= 0.5
    expected = nbops.drift(*data, method={"x": "wasserstein"}, threshold={"x": 0.03})
    assert view.report.drifted_columns == expected.drifted_columns


def test_widget_renders_in_a_real_kernel(kernel, tmp_path):
    r = np.random.default_rng(1)
    pd.DataFrame({"v": r.normal(size=500)}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"v": r.normal(2, 1, 500)}).to_csv(tmp_path / "cur.csv", index=False)
    res = kernel.run(
        "import nbops, pandas as pd\n"
        f"view = nbops.drift_widget(pd.read_csv(r'{tmp_path / 'ref.csv'}'), "
        f"pd.read_csv(r'{tmp_path / 'cur.csv'}'))\n"
        "print(view.report.drifted_columns)\n"
        "view"
    )
    assert res["status"] == "ok", res["error"]
    assert "['v']" in res["text"]
    assert any("application/vnd.jupyter.widget-view+json" in d for d in res["data"])
