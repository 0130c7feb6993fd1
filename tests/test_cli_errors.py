"""Errors on the command line: one line, in command-line terms, exit code 2; `nbops
drift` keeps 1 for drift only (issue 15, findings 4, 5 and 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from test_cli import cli

import nbops


def one_line_error(out, *needles: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def model(store):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    with nbops.start_run(name="lr", capture_env=False) as run:
        nbops.log_model(LogisticRegression().fit(X, (X.a > 0).astype(int)), signature=X)
    nbops.register(run.run_id, "wine-forest")
    return store


@pytest.fixture
def tables(tmp_path):
    r = np.random.default_rng(0)
    ref = pd.DataFrame({"x": r.normal(size=500), "y": r.integers(0, 2, 500)})
    cur = pd.DataFrame({"x": r.normal(size=500), "y": r.integers(0, 2, 500)})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path


def test_export_canary_that_is_not_json(model, tmp_path):
    out = cli(
        "export",
        "wine-forest",
        "--path",
        str(tmp_path / "svc"),
        "--canary",
        "notjson",
        env_store=model,
    )
    one_line_error(out, "--canary", "not valid JSON", '"version"')


def test_export_to_an_unwritable_path(model):
    out = cli("export", "wine-forest", "--path", "/proc/xx", env_store=model)
    one_line_error(out, "/proc/xx")


def test_export_into_a_used_folder_names_the_flag_not_the_keyword(model, tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "keep.txt").write_text("x")
    out = cli("export", "wine-forest", "--path", str(tmp_path / "svc"), env_store=model)
    one_line_error(out, "--overwrite")
    assert "overwrite=True" not in out.stderr


def test_unknown_model_names_the_command_not_the_function(model):
    out = cli("registry", "list", "nosuch", env_store=model)
    one_line_error(out, "nbops registry list: error:", "nosuch", "nbops registry register")
    assert "nbops.register(" not in out.stderr


def test_drift_html_into_a_missing_folder_is_exit_2_not_drift(tables):
    out = cli("drift", "ref.csv", "cur.csv", "--html", "/nonexistent/dir/r.html", cwd=tables)
    one_line_error(out, "--html", "/nonexistent/dir")


def test_drift_target_that_is_not_a_column(tables):
    out = cli("drift", "ref.csv", "cur.csv", "--target", "nope", cwd=tables)
    one_line_error(out, "target", "'nope'", "x, y")


def test_drift_exit_codes_0_for_none_and_1_for_drift(tables):
    assert cli("drift", "ref.csv", "cur.csv", "--target", "y", cwd=tables).returncode == 0
    shifted = pd.read_csv(tables / "cur.csv").assign(x=lambda f: f.x + 3)
    shifted.to_csv(tables / "shifted.csv", index=False)
    assert cli("drift", "ref.csv", "shifted.csv", cwd=tables).returncode == 1


def test_api_drift_with_a_missing_target_raises_drift_error():
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    with pytest.raises(nbops.DriftError, match="'nope'"):
        nbops.drift(ref, ref, target="nope")
    with pytest.raises(nbops.DriftError, match="prediction column 'pred'"):
        nbops.drift(ref, ref, target="label", prediction="pred")


def test_unknown_top_level_option_lists_the_commands():
    out = cli("--bogus")
    one_line_error(out, "--bogus", "runs", "drift", "--help")
    assert "arguments are required" not in out.stderr


def test_unknown_option_of_a_command_points_to_its_help(store):
    out = cli("runs", "--limt", "3", env_store=store)
    one_line_error(out, "--limt", "nbops runs --help")


def test_missing_argument_is_one_line(store):
    out = cli("show", env_store=store)
    one_line_error(out, "run_id", "nbops show --help")


def test_warnings_are_one_line_too(tables):
    pd.read_csv(tables / "cur.csv").assign(extra=1.0).to_csv(tables / "more.csv", index=False)
    out = cli("drift", "ref.csv", "more.csv", cwd=tables)
    assert out.returncode in (0, 1), out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbops: warning:") and "extra" in lines[0]
