"""`nbops registry list|history|register|transition|alias|rollback|lineage`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import nbops
from nbops import registry as reg
from nbops.cli import main


@pytest.fixture
def two_versions(store):
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = (X.a > 0).astype(int)
    ids = []
    for c in (0.5, 2.0):
        with nbops.start_run(name=f"lr-{c}") as run:
            nbops.log_model(LogisticRegression(C=c).fit(X, y), signature=X)
            run.log_metric("acc", c / 4)
        ids.append(run.run_id)
    return ids


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_transition_list_history(two_versions, capsys):
    for run_id in two_versions:
        assert run_cli(capsys, "registry", "register", run_id, "churn")[0] == 0
    code, out, _ = run_cli(
        capsys, "registry", "transition", "churn", "1", "Production", "-r", "first"
    )
    assert code == 0 and "version 1: None -> Production" in out
    code, out, _ = run_cli(capsys, "registry", "transition", "churn", "2", "production")
    assert "version 2: None -> Production" in out and "version 1: Production -> Archived" in out
    code, out, _ = run_cli(capsys, "registry", "list", "-f", "json")
    rows = json.loads(out)
    assert [(r["version"], r["stage"], r["metrics.acc"]) for r in rows] == [
        (1, "Archived", 0.125),
        (2, "Production", 0.5),
    ]
    code, out, _ = run_cli(capsys, "registry", "history", "churn", "-f", "csv")
    assert code == 0 and out.count("\n") == 1 + 2 + 3 and "first" in out


def test_alias_rollback_and_lineage(two_versions, capsys):
    for run_id in two_versions:
        reg.register(run_id, "churn")
    reg.transition("churn", 1, "Production")
    reg.transition("churn", 2, "Production")
    code, out, _ = run_cli(capsys, "registry", "alias", "churn", "champion", "2")
    assert code == 0 and "churn@champion -> version 2" in out
    code, out, _ = run_cli(capsys, "registry", "rollback", "churn", "-r", "bad canary")
    assert code == 0 and "version 2 -> Archived, version 1 -> Production" in out
    code, out, _ = run_cli(capsys, "registry", "lineage", "churn", "--alias", "champion")
    assert code == 0
    assert f"run {two_versions[1]}" in out and "params:" not in out.split("run")[0]
    assert "dataset" in out and "shape [40, 2]" in out and "acc=0.5" in out
    lin = json.loads(
        run_cli(capsys, "registry", "lineage", "churn", "-s", "Production", "-f", "json")[1]
    )
    assert lin["model"]["version"] == 1 and lin["run"]["run_id"] == two_versions[0]
    assert (
        "v2 (Archived @champion)" in run_cli(capsys, "registry", "lineage", "churn", "-v", "2")[1]
    )


def test_errors_are_one_line_with_exit_code_2(two_versions, capsys):
    reg.register(two_versions[0], "churn")
    code, _, err = run_cli(capsys, "registry", "transition", "churn", "1", "Live")
    assert code == 2 and "unknown stage 'Live'" in err and "'Production'" in err
    code, _, err = run_cli(capsys, "registry", "rollback", "churn")
    assert code == 2 and "nothing to roll back" in err and "nbops registry transition" in err
    code, out, _ = run_cli(capsys, "registry", "list", "-f", "table")
    assert "churn" in out


def test_empty_registry_and_real_entry_point(store):
    with nbops.start_run(name="no-model"):  # a store with a run, no registered model
        pass
    res = subprocess.run(
        [sys.executable, "-m", "nbops.cli", "--store", str(store), "registry", "list"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "no registered models yet"
