"""The DuckDB engine gives the pandas engine's answers: same method and verdict per
column on every agreement case, scores equal or within 1e-9 relative (the tolerance
docs/data-and-drift.md states); files, folders and globs as input; engine choice."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

import nbops
from nbops import DriftError

pytest.importorskip("duckdb")
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_drift import generate  # noqa: E402 - the benchmark's data is the agreement data

TOLERANCE = 1e-9


def score(row):
    return row["p_value"] if row["p_value"] is not None else row["statistic"]


def assert_same(ref, cur, **kw):
    """Both engines on the same data: same columns, methods, verdicts, scores."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = nbops.drift(ref, cur, engine="pandas", **kw)
        b = nbops.drift(ref, cur, engine="duckdb", **kw)
    assert a.engine == "pandas" and b.engine == "duckdb"
    assert [r["column"] for r in a.columns] == [r["column"] for r in b.columns]
    assert a.skipped == b.skipped and a.missing == b.missing
    for ra in a.columns:
        rb = b.column(ra["column"])
        assert (rb["type"], rb["test"], rb["drifted"]) == (ra["type"], ra["test"], ra["drifted"])
        assert (rb["n_reference"], rb["n_current"]) == (ra["n_reference"], ra["n_current"])
        assert score(rb) == pytest.approx(score(ra), rel=TOLERANCE, abs=1e-12), ra["column"]
    assert (a.drifted, a.n_drifted, a.n_tested) == (b.drifted, b.n_drifted, b.n_tested)
    return a, b


@pytest.mark.parametrize("n_ref,n_cur", [(800, 5_000), (20_000, 20_000), (120_000, 150_000)])
def test_engines_agree_on_the_benchmark_cases(n_ref, n_cur):
    # small reference: KS / chi-square / Z; large: Wasserstein / Jensen-Shannon, and above
    # 200,000 values the histogram estimate of Wasserstein with its exact fallback
    ref, cur = generate(n_ref, n_cur)
    a, _ = assert_same(ref, cur)
    assert {r["test"] for r in a.columns} >= (
        {"ks", "chisquare"} if n_ref <= 1000 else {"wasserstein", "jensenshannon"}
    )


def test_small_reference_ks_is_exact():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"v": rng.normal(0, 1, 500)})
    cur = pd.DataFrame({"v": rng.normal(0.2, 1, 3_000)})
    a, b = assert_same(ref, cur)
    assert b.column("v")["statistic"] == a.column("v")["statistic"]
    assert b.column("v")["p_value"] == a.column("v")["p_value"]


@pytest.mark.parametrize("method", ["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"])
def test_engines_agree_on_every_forced_method(method):
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3_000), "few": rng.choice([0.0, 1.0, 2.5], 3_000)})
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.1, 1.2, 2_000),
            "few": rng.choice([0.0, 1.0, 2.5], 2_000, p=[0.5, 0.3, 0.2]),
        }
    )
    assert_same(ref, cur, method=method)


def test_engines_agree_on_categories_booleans_and_small_integers():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(
        {
            "city": rng.choice(list("abcdef"), 4_000),
            "flag": rng.random(4_000) < 0.3,
            "grade": rng.integers(1, 6, 4_000),
            "count": rng.integers(0, 500, 4_000),
        }
    )
    cur = pd.DataFrame(
        {
            "city": rng.choice(list("abcdefg"), 3_000),
            "flag": rng.random(3_000) < 0.5,
            "grade": rng.integers(1, 6, 3_000),
            "count": rng.integers(0, 520, 3_000),
        }
    )
    a, _ = assert_same(ref, cur)
    assert a.column("grade")["type"] == "categorical" and a.column("count")["type"] == "numeric"
    assert a.column("city")["drifted"]  # a value the reference never had


def test_engines_agree_on_missing_values_infinities_and_skipped_columns():
    rng = np.random.default_rng(4)
    r, c = rng.normal(0, 1, 2_000), rng.normal(0, 1, 2_000)
    r[::7], c[::5], c[3] = np.nan, np.nan, np.inf
    ref = pd.DataFrame(
        {"v": r, "empty": np.nan, "when": pd.date_range("2024", periods=2_000, freq="h")}
    )
    cur = pd.DataFrame(
        {"v": c, "empty": np.nan, "when": pd.date_range("2025", periods=2_000, freq="h")}
    )
    a, _ = assert_same(ref, cur)
    assert {s["column"] for s in a.skipped} == {"empty", "when"}


def test_engines_agree_on_thresholds_columns_and_a_heavy_tail():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"tail": rng.pareto(1.2, 150_000), "x": rng.normal(0, 1, 150_000)})
    cur = pd.DataFrame({"tail": rng.pareto(1.1, 120_000), "x": rng.normal(0.05, 1, 120_000)})
    assert_same(ref, cur, threshold={"x": 0.04}, columns=["tail", "x"])


def test_engines_agree_on_model_quality():
    rng = np.random.default_rng(6)
    y_r, y_c = rng.integers(0, 2, 3_000), rng.integers(0, 2, 3_000)
    ref = pd.DataFrame(
        {
            "f": rng.normal(size=3_000),
            "y": y_r,
            "p": np.where(rng.random(3_000) < 0.9, y_r, 1 - y_r),
        }
    )
    cur = pd.DataFrame(
        {
            "f": rng.normal(size=3_000),
            "y": y_c,
            "p": np.where(rng.random(3_000) < 0.7, y_c, 1 - y_c),
        }
    )
    a, b = assert_same(ref, cur, target="y", prediction="p")
    assert a.model == b.model and b.model["drifted"]


# -- files, folders and globs ------------------------------------------------------------


@pytest.fixture
def parquet(tmp_path):
    ref, cur = generate(3_000, 2_000)
    (tmp_path / "ref").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(ref)), 3)):
        ref.iloc[part].to_parquet(tmp_path / "ref" / f"part-{i}.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    return tmp_path, ref, cur


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_folder_glob_and_file_inputs_give_the_frames_report(parquet, engine):
    tmp, ref, cur = parquet
    expected = nbops.drift(ref, cur, engine="pandas").summary
    for ref_in in (tmp / "ref", str(tmp / "ref" / "part-*.parquet")):
        got = nbops.drift(ref_in, tmp / "cur.parquet", engine=engine)
        assert got.rows == {"reference": 3_000, "current": 2_000}
        assert got.summary["test"].tolist() == expected["test"].tolist()
        assert got.summary["drifted"].tolist() == expected["drifted"].tolist()


def test_auto_streams_files_through_duckdb_when_they_do_not_fit(parquet):
    tmp, ref, cur = parquet
    assert nbops.drift(tmp / "ref", tmp / "cur.parquet").engine == "pandas"
    report = nbops.drift(tmp / "ref", tmp / "cur.parquet", memory_limit="1MB")
    assert report.engine == "duckdb"
    assert nbops.drift(ref, cur, memory_limit="1MB").engine == "pandas"  # frames stay


def test_cli_engine_and_memory_flags(parquet, capsys):
    from nbops.cli import main

    tmp, _, _ = parquet
    code = main(
        [
            "drift",
            str(tmp / "ref"),
            str(tmp / "cur.parquet"),
            "--engine",
            "duckdb",
            "--memory",
            "256MB",
            "--json",
        ]
    )
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "duckdb" and code == (1 if out["drifted"] else 0)


def test_bad_engine_memory_and_paths_are_clear_errors(tmp_path):
    ref, cur = generate(100, 100)
    with pytest.raises(DriftError, match="unknown engine 'spark'"):
        nbops.drift(ref, cur, engine="spark")
    with pytest.raises(DriftError, match="'lots' is not a size"):
        nbops.drift(ref, cur, engine="duckdb", memory_limit="lots")
    with pytest.raises(DriftError, match="matches no files"):
        nbops.drift(str(tmp_path / "*.parquet"), cur, engine="duckdb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DriftError, match="holds no .parquet files"):
        nbops.drift(tmp_path / "empty", cur)


def test_duckdb_reads_only_aggregates_for_the_plot(parquet):
    tmp, _, _ = parquet
    report = nbops.drift(tmp / "ref", tmp / "cur.parquet", engine="duckdb")
    plot = report.distributions["num_00"]
    assert len(plot["edges"]) == 51 and sum(plot["reference"]) == pytest.approx(1.0)
    assert Path(tmp / "cur.parquet").exists()


# -- prediction logs ---------------------------------------------------------------------


def service_folder(tmp_path, ref, cur):
    """A service folder as nbops.export writes it, with a prediction log and feedback in
    the service's own line format."""
    import json

    folder = tmp_path / "service"
    (folder / "logs").mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"model_name": "m", "version": 1}))
    with (
        open(folder / "logs" / "predictions.jsonl", "w") as fh,
        open(folder / "logs" / "feedback.jsonl", "w") as fb,
    ):
        for i, row in enumerate(cur.to_dict("records")):
            inputs = {k: v for k, v in row.items() if k not in ("prediction", "target")}
            fh.write(
                json.dumps(
                    {
                        "id": f"r{i}",
                        "request_id": "q",
                        "ts": 1_700_000_000 + i,
                        "version": "1",
                        "latency_ms": 1.0,
                        "prediction": row["prediction"],
                        "inputs": inputs,
                    }
                )
                + "\n"
            )
            fb.write(
                json.dumps({"id": f"r{i}", "label": row["target"], "ts": 1_700_000_000 + i}) + "\n"
            )
    return folder


def test_monitor_streams_prediction_logs_through_duckdb_with_the_same_answer(tmp_path):
    rng = np.random.default_rng(7)

    def frame(n, shift):
        x = rng.normal(shift, 1, n)
        target = (x + rng.normal(0, 0.5, n) > 0).astype(int)
        return pd.DataFrame(
            {
                "x": x,
                "city": rng.choice(list("abc"), n),
                "prediction": (x > 0).astype(int),
                "target": target,
            }
        )

    ref, cur = frame(3_000, 0.0), frame(2_000, 0.4)
    folder = service_folder(tmp_path, ref, cur)
    a = nbops.monitor(folder, reference=ref, sync=False, engine="pandas")
    b = nbops.monitor(folder, reference=ref, sync=False, engine="duckdb", memory_limit="256MB")
    assert b.engine == "duckdb" and b.rows == a.rows
    for ra in a.columns:
        rb = b.column(ra["column"])
        assert (rb["test"], rb["drifted"]) == (ra["test"], ra["drifted"])
        assert score(rb) == pytest.approx(score(ra), rel=TOLERANCE)
    assert a.model["metrics"] == b.model["metrics"]
