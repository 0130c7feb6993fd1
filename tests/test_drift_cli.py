"""`nbops drift REFERENCE CURRENT [--html out.html] [--json]` in a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


def nbops_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "nbops.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path):
    r = np.random.default_rng(0)
    ref = pd.DataFrame({"x": r.normal(size=3000), "c": r.choice(["a", "b", "c"], 3000)})
    cur = pd.DataFrame({"x": r.normal(1.0, 1, 3000), "c": r.choice(["a", "b", "c"], 3000)})
    same = pd.DataFrame({"x": r.normal(size=3000), "c": r.choice(["a", "b", "c"], 3000)})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    same.to_csv(tmp_path / "same.csv", index=False)
    return tmp_path


def test_cli_prints_summary_writes_html_and_exits_1_on_drift(files):
    out = nbops_cli("drift", "ref.csv", "cur.parquet", "--html", "report.html", cwd=files)
    assert out.returncode == 1, out.stderr
    assert "wasserstein" in out.stdout and "jensenshannon" in out.stdout
    assert "DRIFT: 1/2 columns drifted" in out.stdout
    assert (files / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_json_output_and_exit_0_without_drift(files):
    out = nbops_cli("drift", "ref.csv", "same.csv", "--json", cwd=files)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["drifted"] is False and {c["column"] for c in data["columns"]} == {"x", "c"}


def test_cli_bad_file_and_method_are_clear_errors(files):
    out = nbops_cli("drift", "ref.csv", "missing.csv", cwd=files)
    assert out.returncode == 2 and "no such file" in out.stderr
    (files / "data.xlsx").write_text("x")
    out = nbops_cli("drift", "ref.csv", "data.xlsx", cwd=files)
    assert out.returncode == 2 and ".parquet" in out.stderr
    out = nbops_cli("drift", "ref.csv", "same.csv", "--method", "energy", cwd=files)
    assert out.returncode == 2 and "wasserstein" in out.stderr
