"""`nbops runs` as a table a person reads: fits the terminal, picks the columns that
matter, --columns, --sort, --limit with "N more" (issue 15, finding 1)."""

from __future__ import annotations

import json

from test_cli import cli

import nbops


def wide_store(n_runs: int = 3, n_params: int = 60, n_metrics: int = 60) -> None:
    """Runs with 150-odd columns, as a real sweep with autologged params has."""
    for i in range(n_runs):
        with nbops.start_run(name=f"sweep-{i}", experiment="wide", capture_env=False):
            nbops.log_params({f"p{k:02d}": f"value-{k}" for k in range(n_params)})
            nbops.log_params({"max_depth": i + 1, "criterion": "gini"})
            nbops.log_metrics({f"m{k:02d}": k / 7 for k in range(n_metrics)})
            nbops.log_metric("accuracy", 0.5 + i / 10)


def test_table_fits_the_terminal_width(store):
    wide_store()
    for width in (60, 100, 160):
        out = cli("runs", env_store=store, columns=width)
        assert out.returncode == 0, out.stderr
        assert max(len(line) for line in out.stdout.splitlines()) <= width, out.stdout
    assert "did not fit in 60" in cli("runs", env_store=store, columns=60).stdout


def test_default_columns_are_name_status_start_duration_main_metrics_differing_params(store):
    wide_store()
    header = cli("runs", env_store=store, columns=400).stdout.splitlines()[0].split()
    for col in ("run", "name", "status", "start", "duration", "accuracy", "max_depth"):
        assert col in header, header
    assert "criterion" not in header  # the same in every run
    assert "p00" not in header  # also the same in every run
    assert header.index("name") < header.index("accuracy") < header.index("max_depth")


def test_columns_picks_and_orders_columns_by_short_or_full_name(store):
    wide_store()
    out = cli("runs", "--columns", "max_depth,name,metrics.m03", env_store=store)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["max_depth", "name", "m03"]


def test_unknown_column_is_a_one_line_error_listing_known_ones(store):
    wide_store(n_runs=1)
    out = cli("runs", "--columns", "name,nope", env_store=store)
    assert out.returncode == 2 and "no column 'nope'" in out.stderr and "accuracy" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_sort_ascending_and_descending(store):
    wide_store(n_runs=3)
    up = cli("runs", "--columns", "name", "--sort", "accuracy", env_store=store).stdout
    down = cli("runs", "--columns", "name", "--sort=-accuracy", env_store=store).stdout
    names_up = [ln.strip() for ln in up.splitlines()[2:]]
    names_down = [ln.strip() for ln in down.splitlines()[2:]]
    assert names_up == ["sweep-0", "sweep-1", "sweep-2"]
    assert names_down == names_up[::-1]


def test_limit_defaults_to_20_and_says_how_many_more(store):
    for i in range(25):
        with nbops.start_run(name=f"run-{i:02d}", capture_env=False):
            nbops.log_metric("loss", i)
    out = cli("runs", env_store=store).stdout
    assert "run-24" in out and "run-05" in out and "run-04" not in out
    assert "5 more" in out and "--limit 0" in out
    assert "run-22" not in cli("runs", "--limit", "2", env_store=store).stdout
    assert "run-00" in cli("runs", "--limit", "0", env_store=store).stdout


def test_json_is_unchanged_by_the_table_defaults(store):
    for i in range(25):
        with nbops.start_run(name=f"run-{i:02d}", capture_env=False):
            pass
    rows = json.loads(cli("runs", "--format", "json", env_store=store).stdout)
    assert len(rows) == 25 and "end_time" in rows[0]
    assert len(json.loads(cli("runs", "-f", "json", "-n", "3", env_store=store).stdout)) == 3


def test_start_is_shown_in_the_terminal_s_local_time(store):
    from datetime import datetime, timedelta

    with nbops.start_run(name="clock", capture_env=False) as run:
        pass
    started = datetime.fromisoformat(nbops.get_run(run.run_id)["start_time"])
    out = cli("runs", "--columns", "name,start", env_store=store, TZ="Asia/Kolkata").stdout
    shown = (started + timedelta(hours=5, minutes=30)).strftime("%m-%d %H:%M:%S")
    assert shown in out, (shown, out)
