"""nbops.drift: default test choice (Evidently 0.7 rule), statistics against scipy,
verdicts, bad input, model drift, report renderings, log_drift."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import spatial, stats

import nbops
from nbops import DriftError
from nbops.drift import stats as dstats
from nbops.drift.compute import DriftWarning


def rng(seed=0):
    return np.random.default_rng(seed)


def frame(n, seed=0, shift=0.0, cat_p=(0.5, 0.3, 0.2)):
    r = rng(seed)
    return pd.DataFrame(
        {
            "x": r.normal(shift, 1, n),
            "y": r.normal(10, 2, n),
            "city": np.array(["ams", "ber", "cph"], dtype=object)[r.choice(3, n, p=cat_p)],
        }
    )


# -- the default test choice -----------------------------------------------------------


@pytest.mark.parametrize(
    "n_ref, values, expected",
    [
        (500, None, "ks"),  # numeric, many values, small reference
        (500, [0.0, 1.0, 2.0, 3.0], "chisquare"),  # numeric 3-5 values
        (500, [0.0, 1.0], "z"),  # numeric <= 2 values
        (5000, None, "wasserstein"),  # numeric, many values, large reference
        (5000, [0.0, 0.5, 1.0], "jensenshannon"),  # numeric few values, large reference
    ],
)
def test_default_numeric_test_follows_evidently_rule(n_ref, values, expected):
    r = rng(1)
    if values is None:
        ref, cur = r.normal(size=n_ref), r.normal(size=300)
    else:
        ref, cur = r.choice(values, n_ref), r.choice(values, 300)
    report = nbops.drift(pd.DataFrame({"v": ref}), pd.DataFrame({"v": cur}))
    assert report.column("v")["test"] == expected


@pytest.mark.parametrize(
    "n_ref, levels, expected",
    [
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1001, 3, "jensenshannon"),
        (1001, 2, "jensenshannon"),
    ],
)
def test_default_categorical_test_switches_at_1000_reference_rows(n_ref, levels, expected):
    r = rng(2)
    names = np.array(list("abcdef"), dtype=object)
    ref = pd.DataFrame({"c": names[r.integers(0, levels, n_ref)]})
    cur = pd.DataFrame({"c": names[r.integers(0, levels, 200)]})
    assert nbops.drift(ref, cur).column("c")["test"] == expected


def test_unique_values_are_counted_over_both_samples():
    # reference has 2 values, current adds a third: 3 together -> chi-square, not Z
    ref = pd.DataFrame({"v": rng().choice([0.0, 1.0], 400)})
    cur = pd.DataFrame({"v": rng(1).choice([0.0, 1.0, 2.0], 400)})
    assert nbops.drift(ref, cur).column("v")["test"] == "chisquare"


def test_integer_column_with_few_values_is_categorical_like_evidently():
    ref = pd.DataFrame({"rating": rng().integers(1, 8, 5000)})  # 7 values, int dtype
    cur = pd.DataFrame({"rating": rng(1).integers(1, 8, 5000)})
    row = nbops.drift(ref, cur).column("rating")
    assert row["type"] == "categorical" and row["test"] == "jensenshannon"
    assert "integer" in row["note"]


# -- statistics match the reference implementations --------------------------------------


def test_ks_matches_scipy():
    a, b = rng().normal(size=700), rng(1).normal(0.2, 1, 900)
    rep = nbops.drift(pd.DataFrame({"v": a}), pd.DataFrame({"v": b}))
    expected = stats.ks_2samp(a, b)
    row = rep.column("v")
    assert row["statistic"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert row["drifted"] == (expected.pvalue <= 0.05)


@pytest.mark.parametrize(
    "n, m, rel",
    [
        (5000, 5000, 1e-9),
        (3000, 7001, 1e-9),
        (90_000, 100_001, 1e-9),  # exact path
        (150_000, 160_000, 1e-4),  # binned path (> 200,000 values): bounded estimate
    ],
)
def test_wasserstein_normed_matches_scipy(n, m, rel):
    a, b = rng().gamma(2.0, 1.0, n), rng(1).gamma(2.2, 1.0, m)
    pair = dstats.numeric_pair(a, b)
    got = dstats.wasserstein_normed(pair).statistic
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert got == pytest.approx(expected, rel=rel)


def test_large_sample_wasserstein_is_within_its_bound_and_verdict_is_exact():
    a, b = rng().normal(0, 1, 400_000), rng(1).normal(0.1, 1, 400_000)
    pair = dstats.numeric_pair(a, b)
    exact = stats.wasserstein_distance(a, b) / np.std(a)
    assert exact == pytest.approx(0.1, abs=0.01)  # close to the threshold on purpose
    got = dstats.wasserstein_normed(pair, threshold=0.1).statistic
    assert abs(got - exact) < 0.01
    assert (got >= 0.1) == (exact >= 0.1)


def test_heavy_tailed_large_sample_falls_back_to_exact_wasserstein():
    a = rng().standard_cauchy(300_000)  # range is huge: histogram bounds are loose
    b = rng(1).standard_cauchy(300_000) + 0.05
    pair = dstats.numeric_pair(a, b)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert dstats.wasserstein_normed(pair, 0.1).statistic == pytest.approx(expected, rel=1e-9)


def test_chi_square_matches_scipy():
    ref = pd.DataFrame({"c": np.array(list("abcd"), dtype=object)[rng().integers(0, 4, 600)]})
    cur = pd.DataFrame({"c": np.array(list("abcd"), dtype=object)[rng(1).integers(0, 4, 900)]})
    row = nbops.drift(ref, cur).column("c")
    keys = sorted(set(ref.c) | set(cur.c))
    rc = ref.c.value_counts().reindex(keys, fill_value=0).to_numpy()
    cc = cur.c.value_counts().reindex(keys, fill_value=0).to_numpy()
    expected = stats.chisquare(cc, rc * len(cur) / len(ref))
    assert row["statistic"] == pytest.approx(expected.statistic)
    assert row["p_value"] == pytest.approx(expected.pvalue)


def test_category_absent_from_reference_is_infinite_chi_square_and_drift():
    ref = pd.DataFrame({"c": ["a", "b", "c"] * 100})
    cur = pd.DataFrame({"c": ["a", "b", "c", "d"] * 75})
    row = nbops.drift(ref, cur).column("c")
    assert row["p_value"] == 0.0 and row["drifted"]
    assert math.isinf(row["statistic"])


def test_z_test_matches_two_proportion_formula():
    ref = pd.DataFrame({"flag": ["no"] * 300 + ["yes"] * 100})
    cur = pd.DataFrame({"flag": ["no"] * 250 + ["yes"] * 150})
    row = nbops.drift(ref, cur).column("flag")
    p1, p2 = 100 / 400, 150 / 400
    pooled = (100 + 150) / 800
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert row["test"] == "z"
    assert row["statistic"] == pytest.approx(z)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert row["drifted"]


def test_jensen_shannon_matches_scipy_on_categories():
    r = rng()
    ref = pd.DataFrame({"c": np.array(list("abcde"), dtype=object)[r.integers(0, 5, 3000)]})
    cur = pd.DataFrame(
        {
            "c": np.array(list("abcde"), dtype=object)[
                r.choice(5, 2000, p=[0.4, 0.15, 0.15, 0.15, 0.15])
            ]
        }
    )
    row = nbops.drift(ref, cur).column("c")
    keys = list("abcde")
    p = ref.c.value_counts(normalize=True).reindex(keys).to_numpy()
    q = cur.c.value_counts(normalize=True).reindex(keys).to_numpy()
    assert row["statistic"] == pytest.approx(spatial.distance.jensenshannon(p, q))


def test_jensen_shannon_on_numbers_uses_sturges_bins_over_both_samples():
    a, b = rng().normal(size=4000), rng(1).normal(0.3, 1, 3000)
    rep = nbops.drift(pd.DataFrame({"v": a}), pd.DataFrame({"v": b}), method="jensenshannon")
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
    p = np.histogram(a, edges)[0] / len(a)
    q = np.histogram(b, edges)[0] / len(b)
    assert rep.column("v")["statistic"] == pytest.approx(
        spatial.distance.jensenshannon(p, q), rel=1e-6
    )


def test_psi_fills_empty_bins_before_the_log():
    ref = np.array([0.5, 0.5, 0.0])
    cur = np.array([0.4, 0.4, 0.2])
    filled = np.array([0.5, 0.5, 0.0001])
    expected = float(((filled - cur) * np.log(filled / cur)).sum())
    assert dstats.psi(ref, cur).statistic == pytest.approx(expected)


# -- verdicts ---------------------------------------------------------------------------


def test_real_shift_is_detected_and_no_shift_is_not():
    ref = frame(5000, seed=1)
    same = frame(5000, seed=2)
    shifted = frame(5000, seed=3, shift=0.8, cat_p=(0.2, 0.3, 0.5))
    calm = nbops.drift(ref, same)
    assert not calm.drifted and calm.drifted_columns == []
    moved = nbops.drift(ref, shifted)
    assert moved.drifted
    assert set(moved.drifted_columns) == {"x", "city"}
    assert moved.share == pytest.approx(2 / 3)


def test_dataset_verdict_uses_drift_share():
    ref, cur = frame(3000, 1), frame(3000, 2, shift=1.0)  # only x drifts: share 1/3
    assert not nbops.drift(ref, cur).drifted
    assert nbops.drift(ref, cur, drift_share=0.3).drifted


def test_method_can_be_forced_for_all_columns_or_per_column():
    ref, cur = frame(3000, 1), frame(3000, 2)
    rep = nbops.drift(ref, cur, method="psi")
    assert set(rep.summary["test"]) == {"psi"}
    rep = nbops.drift(ref, cur, method={"x": "ks", "city": "chisquare"})
    assert rep.column("x")["test"] == "ks"
    assert rep.column("city")["test"] == "chisquare"
    assert rep.column("y")["test"] == "wasserstein"


def test_threshold_override_changes_the_verdict():
    ref, cur = frame(20000, 1), frame(20000, 2, shift=0.07)
    default = nbops.drift(ref, cur).column("x")
    assert not default["drifted"] and default["threshold"] == 0.1
    strict = nbops.drift(ref, cur, threshold={"x": 0.05}).column("x")
    assert strict["drifted"] and strict["threshold"] == 0.05


def test_unknown_method_error_lists_the_methods():
    with pytest.raises(DriftError) as err:
        nbops.drift(frame(100), frame(100), method="energy")
    for name in ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"):
        assert name in str(err.value)


def test_numeric_only_method_on_categorical_column_is_a_clear_error():
    with pytest.raises(DriftError, match="city"):
        nbops.drift(frame(100), frame(100), method="ks")


# -- bad input --------------------------------------------------------------------------


def test_columns_missing_from_one_side_are_listed_and_warned():
    ref = frame(500).assign(old=1.0)
    cur = frame(500, 1).assign(new="n")
    with pytest.warns(DriftWarning, match="missing from one side"):
        rep = nbops.drift(ref, cur)
    assert rep.missing == {"reference_only": ["old"], "current_only": ["new"]}
    assert sorted(rep.summary["column"]) == ["city", "x", "y"]
    assert rep.to_dict()["missing"]["reference_only"] == ["old"]


def test_empty_current_data_is_a_clear_error():
    with pytest.raises(DriftError, match="current data has no rows"):
        nbops.drift(frame(100), frame(100).iloc[:0])


def test_all_missing_column_is_skipped_with_the_reason():
    ref = frame(500).assign(blank=np.nan)
    cur = frame(500, 1).assign(blank=np.nan)
    rep = nbops.drift(ref, cur)
    assert "blank" not in list(rep.summary["column"])
    (skip,) = rep.skipped
    assert skip["column"] == "blank" and "all values are missing" in skip["reason"]
    assert rep.n_tested == 3


def test_mixed_type_column_is_treated_as_categorical_and_noted():
    ref = pd.DataFrame({"m": pd.Series([1, "a", 2.5, "b"] * 50, dtype=object)})
    cur = pd.DataFrame({"m": pd.Series([1, "a", "b", "c"] * 50, dtype=object)})
    row = nbops.drift(ref, cur).column("m")
    assert row["type"] == "categorical"
    assert "mixed types" in row["note"]
    assert row["drifted"]  # "c" is new


def test_missing_values_and_infinities_are_dropped_before_testing():
    a = rng().normal(size=800)
    b = rng(1).normal(size=800)
    b_dirty = np.concatenate([b, [np.nan] * 50, [np.inf, -np.inf]])
    rep = nbops.drift(pd.DataFrame({"v": a}), pd.DataFrame({"v": b_dirty}))
    row = rep.column("v")
    assert row["n_current"] == 800
    assert row["p_value"] == pytest.approx(stats.ks_2samp(a, b).pvalue)


def test_non_dataframe_input_is_a_clear_error():
    with pytest.raises(DriftError, match="pass a pandas DataFrame"):
        nbops.drift("ref.csv", frame(10))


# -- target, prediction and model drift -------------------------------------------------


def test_model_drift_flags_a_quality_drop_in_classification():
    r = rng(5)
    y_ref, y_cur = r.integers(0, 2, 4000), r.integers(0, 2, 4000)
    good = np.where(r.random(4000) < 0.9, y_ref, 1 - y_ref)  # 90% right
    bad = np.where(r.random(4000) < 0.7, y_cur, 1 - y_cur)  # 70% right
    ref = pd.DataFrame({"f": r.normal(size=4000), "label": y_ref, "pred": good})
    cur = pd.DataFrame({"f": r.normal(size=4000), "label": y_cur, "pred": bad})
    rep = nbops.drift(ref, cur, target="label", prediction="pred")
    assert rep.model["task"] == "classification"
    acc = rep.model["metrics"]["accuracy"]
    assert acc["reference"] == pytest.approx(0.9, abs=0.02)
    assert acc["current"] == pytest.approx(0.7, abs=0.02)
    assert acc["flagged"] and rep.model["drifted"]
    roles = dict(zip(rep.summary["column"], rep.summary["role"], strict=True))
    assert roles == {"f": "feature", "label": "target", "pred": "prediction"}
    assert rep.n_tested == 1  # the share counts feature columns only


def test_model_drift_in_regression_uses_rmse_and_mae():
    r = rng(6)
    y_ref, y_cur = r.normal(50, 10, 3000), r.normal(50, 10, 3000)
    ref = pd.DataFrame({"y": y_ref, "p": y_ref + r.normal(0, 1, 3000)})
    cur = pd.DataFrame({"y": y_cur, "p": y_cur + r.normal(0, 3, 3000)})
    rep = nbops.drift(ref, cur, target="y", prediction="p")
    assert rep.model["task"] == "regression"
    assert rep.model["metrics"]["rmse"]["current"] == pytest.approx(3, rel=0.1)
    assert rep.model["metrics"]["rmse"]["flagged"]
    same = nbops.drift(ref, ref.sample(frac=1, random_state=0), target="y", prediction="p")
    assert not same.model["drifted"]


def test_binary_scores_get_roc_auc():
    r = rng(7)
    y = r.integers(0, 2, 2000)
    score = np.clip(y * 0.6 + r.random(2000) * 0.5, 0, 1)
    df = pd.DataFrame({"y": y, "s": score})
    rep = nbops.drift(df, df, target="y", prediction="s")
    assert rep.model["metrics"]["roc_auc"]["reference"] > 0.9
    assert not rep.model["drifted"]


# -- report renderings ------------------------------------------------------------------


def test_summary_has_the_documented_columns():
    rep = nbops.drift(frame(500), frame(500, 1))
    assert list(rep.summary.columns[:7]) == [
        "column",
        "type",
        "test",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
    ]
    assert len(rep.summary) == 3


def test_to_json_round_trips_through_from_dict():
    rep = nbops.drift(frame(500), frame(500, 1, shift=1))
    data = json.loads(rep.to_json())
    assert data["drifted"] == rep.drifted and data["share"] == rep.share
    again = nbops.DriftReport.from_dict(data)
    assert again.drifted_columns == rep.drifted_columns
    assert again.summary.equals(rep.summary)


def test_html_of_a_million_rows_is_small_self_contained_and_aggregated(tmp_path):
    n = 1_000_000
    r = rng(3)
    ref = pd.DataFrame(
        {
            "a": r.normal(size=n),
            "b": r.exponential(size=n),
            "c": np.array(list("xyz"), dtype=object)[r.integers(0, 3, n)],
        }
    )
    cur = ref.assign(a=ref.a + 0.5)
    rep = nbops.drift(ref, cur)
    path = tmp_path / "report.html"
    page = rep.to_html(path)
    assert path.read_text(encoding="utf-8") == page
    assert path.stat().st_size < 5_000_000
    assert "<script src" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "DecompressionStream" in page  # plotly.js travels inside, compressed
    dist = rep.distributions["a"]
    assert len(dist["reference"]) == 50 and sum(dist["current"]) == pytest.approx(1, abs=1e-4)


def test_inline_rendering_shows_verdict_and_columns():
    rep = nbops.drift(frame(500), frame(500, 1, shift=1))
    page = rep._repr_html_()
    assert "Dataset drift detected" in page or "No dataset drift" in page
    assert "<td>x</td>" in page and "<html" not in page


def test_figure_is_a_plotly_figure_of_aggregated_bars():
    rep = nbops.drift(frame(2000), frame(2000, 1))
    fig = rep.figure("x")
    assert [t.name for t in fig.data] == ["reference", "current"]
    assert len(fig.data[0].y) == 50
    with pytest.raises(DriftError, match="no distribution"):
        rep.figure("nope")


def test_nbops_drift_stays_callable_after_importing_the_package():
    import nbops.drift.report  # noqa: F401 - binds the package as an attribute

    assert callable(nbops.drift)
    assert nbops.drift(frame(50), frame(50, 1)).n_tested == 3


# -- log_drift --------------------------------------------------------------------------


def test_log_drift_stores_metrics_and_report_artifacts(store):
    rep = nbops.drift(frame(800), frame(800, 1, shift=1))
    out = nbops.log_drift(rep)
    run = nbops.get_run(out["run_id"])
    assert run["metrics"]["drift_share"] == pytest.approx(rep.share)
    assert run["metrics"]["drift.x.drifted"] == 1.0
    names = {a["name"]: a for a in run["artifacts"]}
    assert {"drift_report.json", "drift_report.html"} <= set(names)
    from nbops.store import get_store

    stored = get_store().artifacts.path(names["drift_report.json"]["sha256"]).read_text()
    assert json.loads(stored)["drifted"] == rep.drifted


def test_log_drift_goes_to_the_active_run_or_a_given_finished_run(store):
    rep = nbops.drift(frame(300), frame(300, 1))
    with nbops.start_run(name="monitor") as run:
        assert nbops.log_drift(rep)["run_id"] == run.run_id
    with nbops.start_run(name="earlier") as other:
        pass
    nbops.log_drift(rep, run_id=other.run_id)
    assert "drift_share" in nbops.get_run(other.run_id)["metrics"]
    with pytest.raises(nbops.RunNotFoundError):
        nbops.log_drift(rep, run_id="nope")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DriftError, match="DriftReport"):
            nbops.log_drift({"drifted": True})
