"""The nbops command: runs, show, the machine formats, run ids by prefix."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbops

ROOT = Path(__file__).resolve().parents[1]


def cli(
    *args: str,
    env_store: Path | None = None,
    cwd: Path | None = None,
    columns: int = 100,
    **env: str,
) -> subprocess.CompletedProcess:
    """`nbops ARGS` in a subprocess, with --store first when env_store is given."""
    store = ["--store", str(env_store)] if env_store is not None else []
    environ = {**os.environ, "COLUMNS": str(columns), **env}
    return subprocess.run(
        [sys.executable, "-m", "nbops.cli", *store, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


def make_runs(n: int, experiment: str = "cli") -> list[str]:
    ids = []
    for i in range(n):
        with nbops.start_run(name=f"r{i}", experiment=experiment, capture_env=False) as run:
            nbops.log_metric("acc", i / 10)
        ids.append(run.run_id)
    return ids


def test_runs_table_names_every_run(store):
    make_runs(3)
    table = cli("runs", env_store=store)
    assert table.returncode == 0, table.stderr
    assert all(f"r{i}" in table.stdout for i in range(3))


def test_runs_json_and_csv_keep_every_column_and_row(store):
    ids = make_runs(3)
    as_json = json.loads(cli("runs", "--format", "json", env_store=store).stdout)
    assert [r["run_id"] for r in as_json] == ids[::-1]
    assert {"end_time", "parent_id", "metrics.acc"} <= set(as_json[0])
    rows = list(csv.DictReader(io.StringIO(cli("runs", "-f", "csv", env_store=store).stdout)))
    assert {r["metrics.acc"] for r in rows} == {"0.0", "0.1", "0.2"}


def test_show_prints_one_run(store):
    (run_id,) = make_runs(1)
    out = cli("show", run_id, env_store=store)
    assert json.loads(out.stdout)["run_id"] == run_id


def test_show_takes_the_short_id_the_table_shows(store):
    (run_id,) = make_runs(1)
    table = cli("runs", env_store=store).stdout
    assert run_id[:8] in table
    out = cli("show", run_id[:8], env_store=store)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["run_id"] == run_id


def test_show_unknown_run_is_clear_error(store):
    make_runs(1)
    out = cli("show", "nope00", env_store=store)
    assert out.returncode == 2 and "no run 'nope00'" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_store_without_runs_says_no_runs_yet(store):
    with nbops.start_run(name="gone", capture_env=False) as run:
        pass
    out = cli("runs", "--status", "FAILED", env_store=store)
    assert out.returncode == 0 and "no FAILED runs" in out.stdout
    assert run.run_id  # the store exists, holding one finished run
