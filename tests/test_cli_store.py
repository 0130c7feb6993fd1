"""Which store the command line reads: one rule, said by --verbose and `nbops info`;
read commands never create a store; --store anywhere on the line (issue 15, finding 3)."""

from __future__ import annotations

import json
import os

import pytest
from test_cli import cli, make_runs

import nbops

READ_COMMANDS = [
    ("runs",),
    ("show", "abcdef12"),
    ("info",),
    ("registry", "list"),
    ("registry", "history"),
    ("export", "wine"),
    ("serve", "wine"),
]


def no_env() -> dict[str, str]:
    return {"NBOPS_STORE": ""}


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_command_without_a_store_creates_nothing_and_says_where_it_looked(tmp_path, command):
    missing = tmp_path / "nonexistent" / "x"
    out = cli(*command, "--store", str(missing), cwd=tmp_path, **no_env())
    assert out.returncode == 2, out
    assert str(missing) in out.stderr and "--store" in out.stderr
    assert "NBOPS_STORE" in out.stderr  # how to point to one
    assert len(out.stderr.strip().splitlines()) == 1
    assert not out.stdout or command == ("info",)  # info shows what it resolved
    assert not (tmp_path / "nonexistent").exists()


def test_default_store_missing_is_exit_2_and_no_dot_nbops_appears(tmp_path):
    out = cli("runs", cwd=tmp_path, **no_env())
    assert out.returncode == 2 and str(tmp_path / ".nbops") in out.stderr
    assert "no .nbops folder at or above the working directory" in out.stderr
    assert not (tmp_path / ".nbops").exists()


def test_a_folder_that_is_not_a_store_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    out = cli("runs", "--store", str(tmp_path / "data"), cwd=tmp_path, **no_env())
    assert out.returncode == 2 and "is not an nbops store" in out.stderr
    assert list((tmp_path / "data").iterdir()) == []


def test_store_flag_works_anywhere_on_the_line(store):
    make_runs(2)
    for args in (
        ["--store", str(store), "runs", "-f", "json"],
        ["runs", "--store", str(store), "-f", "json"],
        ["runs", "-f", "json", "--store", str(store)],
    ):
        out = cli(*args, **no_env())
        assert out.returncode == 0, (args, out.stderr)
        assert len(json.loads(out.stdout)) == 2


def test_store_flag_after_a_nested_subcommand(store):
    make_runs(1)
    out = cli("registry", "list", "--store", str(store), **no_env())
    assert out.returncode == 0, out.stderr


def test_nearest_store_above_the_working_directory_is_found(store, tmp_path):
    project = store.parent / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    store.rename(project / ".nbops") if store.exists() else None
    nbops.set_store(project / ".nbops")
    make_runs(1)
    nbops.set_store(None)
    out = cli("runs", "--verbose", cwd=project / "notebooks" / "deep", **no_env())
    assert out.returncode == 0, out.stderr
    assert str(project / ".nbops") in out.stderr and "nearest .nbops" in out.stderr


def test_verbose_says_which_store_and_why(store):
    make_runs(1)
    out = cli("runs", "--verbose", env_store=store)
    assert f"store {store} (from --store)" in out.stderr
    out = cli("runs", "--verbose", NBOPS_STORE=str(store))
    assert f"store {store} (from $NBOPS_STORE)" in out.stderr


def test_info_prints_store_path_size_and_counts(store):
    make_runs(3, experiment="a")
    make_runs(1, experiment="b")
    out = cli("info", env_store=store)
    assert out.returncode == 0, out.stderr
    lines = {ln.split()[0]: ln.split(None, 1)[1] for ln in out.stdout.splitlines()}
    assert lines["store"].startswith(str(store)) and "--store" in lines["store"]
    assert lines["runs"].startswith("4")
    assert lines["experiments"].startswith("2: a, b")
    assert lines["models"].startswith("0")
    size, unit = lines["size"].split()
    assert float(size) > 0 and unit in ("B", "KB", "MB", "GB")


def test_unknown_experiment_says_it_does_not_exist_and_lists_known(store):
    make_runs(1, experiment="wine")
    out = cli("runs", "-e", "nosuch", env_store=store)
    assert out.returncode == 2
    assert "no experiment 'nosuch'" in out.stderr and "wine" in out.stderr


def test_known_experiment_with_no_matching_runs_is_not_an_error(store):
    make_runs(1, experiment="wine")
    out = cli("runs", "-e", "wine", "--status", "FAILED", env_store=store)
    assert out.returncode == 0 and "no FAILED runs in experiment 'wine'" in out.stdout


def test_write_through_the_api_still_creates_the_store(tmp_path, monkeypatch):
    # the rule is for read commands; recording a run is what creates a store
    monkeypatch.setenv("NBOPS_STORE", str(tmp_path / "new"))
    nbops.set_store(None)
    make_runs(1)
    out = cli("runs", **{"NBOPS_STORE": os.environ["NBOPS_STORE"]})
    assert out.returncode == 0 and "r0" in out.stdout
