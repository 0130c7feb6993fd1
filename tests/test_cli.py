"""The nbops command: runs, show, demo."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import nbops

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env_store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbops.cli", "--store", str(env_store), *args],
                          capture_output=True, text=True)


def make_runs(n: int) -> list[str]:
    ids = []
    for i in range(n):
        with nbops.start_run(name=f"r{i}", experiment="cli") as run:
            nbops.log_metric("acc", i / 10)
        ids.append(run.run_id)
    return ids


def test_runs_table_json_csv(store):
    ids = make_runs(3)
    table = cli("runs", env_store=store)
    assert table.returncode == 0 and all(i in table.stdout for i in ids)
    as_json = json.loads(cli("runs", "--format", "json", env_store=store).stdout)
    assert [r["run_id"] for r in as_json] == ids[::-1]
    rows = list(csv.DictReader(io.StringIO(cli("runs", "-f", "csv", env_store=store).stdout)))
    assert {r["metrics.acc"] for r in rows} == {"0.0", "0.1", "0.2"}


def test_show_prints_one_run(store):
    (run_id,) = make_runs(1)
    out = cli("show", run_id, env_store=store)
    assert json.loads(out.stdout)["run_id"] == run_id


def test_show_unknown_run_is_clear_error(store):
    out = cli("show", "nope", env_store=store)
    assert out.returncode == 2 and "no run 'nope'" in out.stderr


def test_empty_store_says_no_runs(store):
    assert "no runs yet" in cli("runs", env_store=store).stdout


def test_demo_runs_notebooks_and_prints_where_outputs_are(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext nbops"),
                nbformat.v4.new_code_cell("%%track -n demo-run\nx = 1\ny = x * 2.0")]
    folder = tmp_path / "nbs"
    folder.mkdir()
    nbformat.write(nb, folder / "a.ipynb")
    out = subprocess.run([sys.executable, "-m", "nbops.cli", "demo", "-o", str(tmp_path / "out"),
                          "--notebooks", str(folder)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "demo-run" in out.stdout and str(tmp_path / "out") in out.stdout
    assert (tmp_path / "out" / "a.ipynb").exists()
