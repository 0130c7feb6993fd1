"""nbops.check_quality: missing, outliers, constant columns, duplicates, and schema /
category changes against a reference, each with a level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbops
from nbops.quality import QualityError


def clean(n=1000, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": r.normal(40, 10, n),
            "income": r.normal(50_000, 8_000, n),
            "city": np.array(["ams", "ber", "cph"], dtype=object)[r.integers(0, 3, n)],
        }
    )


def finding(report, check, column=None):
    hits = [f for f in report.findings if f["check"] == check and f["column"] == column]
    assert hits, f"no {check} finding for {column}: {report.findings}"
    return hits[0]


def test_clean_data_is_ok():
    report = nbops.check_quality(clean())
    assert report.level == "ok" and report.ok
    assert report.problems() == []


def test_missing_rate_levels():
    df = clean()
    df.loc[:99, "age"] = np.nan  # 10% -> warn
    df.loc[:499, "income"] = np.nan  # 50% -> fail
    report = nbops.check_quality(df)
    assert finding(report, "missing", "age")["level"] == "warn"
    assert finding(report, "missing", "age")["value"] == pytest.approx(0.1)
    assert finding(report, "missing", "income")["level"] == "fail"
    assert finding(report, "missing", "city")["level"] == "ok"
    assert report.level == "fail"


def test_all_missing_column_fails_with_a_clear_message():
    report = nbops.check_quality(clean().assign(blank=np.nan))
    f = finding(report, "missing", "blank")
    assert f["level"] == "fail" and "every value is missing" in f["message"]


def test_outlier_rate_uses_iqr_fences():
    df = clean()
    df.loc[:79, "income"] = 10_000_000.0  # 8% far outside -> warn
    report = nbops.check_quality(df)
    f = finding(report, "outliers", "income")
    assert f["value"] == pytest.approx(0.08, abs=0.01)
    assert f["level"] == "warn"
    assert finding(report, "outliers", "age")["level"] == "ok"


def test_constant_column_is_flagged():
    report = nbops.check_quality(clean().assign(country="NL"))
    assert finding(report, "constant", "country")["level"] == "warn"


def test_duplicate_rows_are_counted():
    df = clean(500)
    df = pd.concat([df, df.iloc[:100]], ignore_index=True)  # 100 of 600 duplicated
    f = finding(nbops.check_quality(df), "duplicates")
    assert f["value"] == pytest.approx(100 / 600)
    assert f["level"] == "fail"


def test_against_reference_added_removed_retyped_columns():
    ref = clean()
    cur = (
        clean(seed=1)
        .drop(columns=["income"])
        .assign(age=lambda d: d.age.round().astype(str), score=1.5)
    )
    report = nbops.check_quality(cur, reference=ref)
    assert finding(report, "removed_column", "income")["level"] == "fail"
    assert finding(report, "added_column", "score")["level"] == "warn"
    retyped = finding(report, "retyped_column", "age")
    assert retyped["level"] == "fail" and retyped["value"][0] == "float64"


def test_int_to_float_is_only_a_warning():
    ref = pd.DataFrame({"n": np.arange(100)})
    cur = pd.DataFrame({"n": np.arange(100, dtype=float)})
    assert finding(nbops.check_quality(cur, ref), "retyped_column", "n")["level"] == "warn"


def test_new_categories_against_reference():
    ref = clean()
    cur = clean(seed=2)
    cur.loc[:199, "city"] = "dub"  # 20% of rows in a category the reference lacks
    f = finding(nbops.check_quality(cur, reference=ref), "new_categories", "city")
    assert f["value"] == ["dub"]
    assert f["level"] == "fail" and "20.0%" in f["message"]


def test_summary_and_rendering():
    df = clean()
    df.loc[:99, "age"] = np.nan
    report = nbops.check_quality(df)
    summary = report.summary
    assert list(summary.columns) == ["check", "column", "level", "value", "message"]
    assert summary.iloc[0]["level"] == "warn"  # worst first
    page = report._repr_html_()
    assert "Data quality: WARN" in page and "age" in page
    assert report.to_dict()["level"] == "warn"


def test_limits_can_be_changed_and_bad_limits_are_refused():
    df = clean()
    df.loc[:19, "age"] = np.nan  # 2%
    assert finding(nbops.check_quality(df), "missing", "age")["level"] == "ok"
    strict = nbops.check_quality(df, limits={"missing": (0.01, 0.5)})
    assert finding(strict, "missing", "age")["level"] == "warn"
    with pytest.raises(QualityError, match="unknown limit"):
        nbops.check_quality(df, limits={"nulls": (0.1, 0.2)})
    with pytest.raises(QualityError, match="warn <= fail"):
        nbops.check_quality(df, limits={"missing": (0.5, 0.1)})


def test_bad_input_is_a_clear_error():
    with pytest.raises(QualityError, match="DataFrame"):
        nbops.check_quality([1, 2, 3])
    with pytest.raises(QualityError, match="reference"):
        nbops.check_quality(clean(), reference="ref.csv")
    assert issubclass(QualityError, nbops.NbopsError)


def test_empty_frame_fails_without_crashing():
    report = nbops.check_quality(clean().iloc[:0])
    assert report.level == "fail"
    assert finding(report, "rows")["message"] == "the data has no rows"
