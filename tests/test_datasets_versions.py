"""nbops.log_dataset / nbops.datasets: versions per name, profiles, runs that used
a dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbops
from nbops.datasets import dataset, fingerprint


def frame(seed=0, n=200):
    r = np.random.default_rng(seed)
    return pd.DataFrame({"age": r.normal(40, 10, n), "city": r.choice(["ams", "ber"], n)})


def test_first_log_is_version_one_with_profile_schema_and_digest(store):
    df = frame()
    df.loc[3, "age"] = np.nan
    rec = nbops.log_dataset(df, "customers", source="s3://bucket/customers.csv")
    assert rec["version"] == 1 and rec["name"] == "customers"
    assert rec["digest"] == fingerprint(df)["digest"]  # the one fingerprint, shared
    assert rec["shape"] == [200, 2]
    assert rec["schema"] == {"age": "float64", "city": str(df.city.dtype)}
    assert rec["source"] == "s3://bucket/customers.csv" and rec["first_seen"]
    age = rec["profile"]["age"]
    assert age["count"] == 199 and age["missing"] == 1 and age["unique"] == 199
    assert age["mean"] == pytest.approx(df.age.mean())
    assert age["q50"] == pytest.approx(df.age.median())
    assert age["min"] <= age["q25"] <= age["q75"] <= age["max"]
    city = rec["profile"]["city"]
    assert dict(city["top"]) == df.city.value_counts().to_dict()
    assert "mean" not in city


def test_new_version_only_when_the_digest_changes(store):
    a, b = frame(0), frame(1)
    assert nbops.log_dataset(a, "train")["version"] == 1
    assert nbops.log_dataset(a.copy(), "train")["version"] == 1  # same content
    assert nbops.log_dataset(b, "train")["version"] == 2
    assert nbops.log_dataset(a, "train")["version"] == 3  # changed back: a new version
    assert nbops.log_dataset(a, "other")["version"] == 1  # versions count per name
    table = nbops.datasets("train")
    assert list(table["version"]) == [1, 2, 3]
    assert table.loc[0, "digest"] == table.loc[2, "digest"] != table.loc[1, "digest"]


def test_datasets_lists_runs_that_used_each_version(store):
    df = frame()
    with nbops.start_run(name="fit") as run:
        nbops.log_dataset(df, "train")
    nbops.log_dataset(frame(5), "test")
    table = nbops.datasets()
    assert list(table.columns) == [
        "name",
        "version",
        "digest",
        "rows",
        "columns",
        "source",
        "first_seen",
        "runs",
    ]
    by_name = table.set_index("name")
    assert by_name.loc["train", "runs"] == [run.run_id]
    assert by_name.loc["test", "runs"] == []
    assert by_name.loc["train", "rows"] == 200
    assert dataset("train")["runs"] == [run.run_id]


def test_dataset_lookup_errors_name_what_exists(store):
    nbops.log_dataset(frame(), "train")
    with pytest.raises(nbops.NbopsError, match="logged datasets: \\['train'\\]"):
        dataset("trian")
    with pytest.raises(nbops.NbopsError, match="versions: \\[1\\]"):
        dataset("train", version=4)


def test_bad_input_is_a_clear_error(store):
    with pytest.raises(nbops.NbopsError, match="name"):
        nbops.log_dataset(frame(), "  ")
    with pytest.raises(nbops.NbopsError, match="DataFrame"):
        nbops.log_dataset({"a": [1]}, "x")


def test_series_and_arrays_are_profiled_too(store):
    rec = nbops.log_dataset(pd.Series([1.0, 2.0, 2.0], name="v"), "s")
    assert rec["profile"]["v"]["unique"] == 2
    rec = nbops.log_dataset(np.arange(6.0).reshape(3, 2), "arr")
    assert set(rec["profile"]) == {"0", "1"}
