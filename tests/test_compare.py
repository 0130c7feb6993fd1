"""The plain-data twins of the compare widget (diff, best_run, table, figures), and the
widget's behaviour driven in-process through the same calls its controls make."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nbops
from nbops import evaluation
from nbops.widgets.compare import CompareView, compare_widget


@pytest.fixture
def three_runs(store):
    """Three finished runs in two experiments and one failed run."""
    ids = []
    for i, (exp, kind) in enumerate([("wine", "rf"), ("wine", "gb"), ("iris", "rf")]):
        with nbops.start_run(name=f"run{i}", experiment=exp, tags={"team": "a"}) as run:
            run.log_params({"alpha": 0.1 * (i + 1), "kind": kind, "seed": 0})
            for step in range(4):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            run.log_metric("acc", [0.8, 0.9, 0.85][i])
            ids.append(run.run_id)
    with pytest.raises(ValueError):
        with nbops.start_run(name="broken", experiment="wine") as run:
            run.log_metric("acc", 0.99)
            raise ValueError("boom")
    ids.append(run.run_id)
    return ids


def test_diff_lists_what_differs_between_runs(three_runs):
    a, b = three_runs[:2]
    table = nbops.diff(a, b)
    assert list(table.columns) == ["section", "key", a, b, "differs"]
    rows = {(r.section, r.key): (r[a], r[b]) for _, r in table.iterrows()}
    assert rows[("params", "kind")] == ("rf", "gb")
    assert rows[("metrics", "acc")] == (0.8, 0.9)
    assert ("params", "seed") not in rows  # same in both: left out
    assert table["differs"].all()


def test_diff_can_show_every_row_and_marks_missing_values(three_runs):
    a, b, c, broken = three_runs
    table = nbops.diff([a, broken], only_differing=False, sections=["params", "metrics"])
    rows = {(r.section, r.key): (r[a], r[broken], r.differs) for _, r in table.iterrows()}
    assert rows[("params", "kind")] == ("rf", "—", True)
    assert rows[("metrics", "acc")] == (0.8, 0.99, True)
    assert rows[("metrics", "loss")][2] is True


def test_diff_includes_env_and_datasets_sections(three_runs):
    import numpy as np
    import pandas as pd

    from nbops.datasets import fingerprint
    from nbops.store import get_store

    frames = [pd.DataFrame({"x": np.arange(5)}), pd.DataFrame({"x": np.arange(6)})]
    ids = []
    for frame in frames:
        with nbops.start_run(name="data") as run:
            fp = fingerprint(frame)
            get_store().add_dataset({**fp, "name": "train"})
            run.add_input(fp["digest"])
            ids.append(run.run_id)
    table = nbops.diff(*ids, sections=["datasets", "env"], only_differing=False)
    data_row = table[table.section == "datasets"].iloc[0]
    assert data_row.key == "train" and data_row.differs
    env_keys = set(table[table.section == "env"].key)
    assert "python" in env_keys and any(k.startswith("packages.") for k in env_keys)


def test_code_diff_shows_cell_source_changes(store):
    from nbops.tracking.cell import TrackOptions, run_tracked_cell

    ns: dict = {}
    a = run_tracked_cell("alpha = 1\nscore = alpha * 2\n", TrackOptions(), user_ns=ns).run
    b = run_tracked_cell("alpha = 1\nscore = alpha * 3\n", TrackOptions(), user_ns=ns).run
    patch = evaluation.code_diff(a.run_id, b.run_id)
    assert "-score = alpha * 2" in patch and "+score = alpha * 3" in patch
    table = nbops.diff(a.run_id, b.run_id, sections=["code"])
    assert list(table.key) == ["source"]


def test_diff_with_unknown_ids_names_them(three_runs):
    with pytest.raises(nbops.RunNotFoundError, match="nope1, nope2"):
        nbops.diff(three_runs[0], "nope1", "nope2")


def test_diff_needs_two_runs(three_runs):
    with pytest.raises(nbops.NbopsError, match="two or more"):
        nbops.diff(three_runs[0])


def test_best_run_by_metric_and_direction(three_runs):
    assert nbops.best_run("acc")["run_id"] == three_runs[1]  # the failed 0.99 is ignored
    assert nbops.best_run("acc", mode="min")["run_id"] == three_runs[0]
    assert nbops.best_run("acc", experiment="iris")["run_id"] == three_runs[2]
    assert nbops.best_run("loss", mode="min")["metrics"]["loss"] == pytest.approx(1 / 6)
    assert nbops.best_run("acc", runs=[three_runs[0], three_runs[2]])["name"] == "run2"


def test_best_run_for_unknown_metric_lists_the_known_ones(three_runs):
    with pytest.raises(nbops.NbopsError, match=r"'accuracy'.*\['acc', 'loss'\]"):
        nbops.best_run("accuracy")


def test_tag_best_moves_the_best_tag(three_runs):
    first = evaluation.tag_best("acc", mode="min")
    assert first["tags"]["best"] == "true" and first["run_id"] == three_runs[0]
    second = evaluation.tag_best("acc", mode="max")
    assert nbops.get_run(second["run_id"])["tags"] == {
        "team": "a",
        "best": "true",
        "best_metric": "acc",
        "best_mode": "max",
    }
    assert nbops.get_run(three_runs[0])["tags"]["best"] == "false"


def test_table_view_filters_sorts_and_pages(three_runs):
    frame = nbops.runs()
    page, total = evaluation.table_view(
        frame, status="FINISHED", sort_by="metrics.acc", ascending=False, page_size=2
    )
    assert total == 3 and list(page.name) == ["run1", "run2"]
    page, _ = evaluation.table_view(
        frame, status="FINISHED", sort_by="metrics.acc", ascending=False, page_size=2, page=1
    )
    assert list(page.name) == ["run0"]
    assert evaluation.table_view(frame, experiment="iris")[1] == 1
    assert evaluation.table_view(frame, tag="team=a")[1] == 3
    assert evaluation.table_view(frame, tag="team=b")[1] == 0
    assert evaluation.table_view(frame, tag="nosuchtag")[1] == 0
    assert evaluation.table_view(frame, text="brok")[1] == 1


def test_only_differing_columns_drops_constant_ones(three_runs):
    frame = nbops.runs(status="FINISHED")
    page, _ = evaluation.table_view(frame, only_differing=True)
    assert "params.seed" not in page.columns and "tags.team" not in page.columns
    assert "params.kind" in page.columns and "metrics.acc" in page.columns


def test_metric_curves_has_one_trace_per_run_and_step_metric(three_runs):
    fig = evaluation.metric_curves(three_runs[:2])
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == [0, 1, 2, 3]
    assert fig.data[0].y[0] == pytest.approx(1.0)
    fig = evaluation.metric_curves(three_runs[:2], metrics=["acc"])
    assert [len(t.x) for t in fig.data] == [1, 1]


def test_parallel_coordinates_maps_params_and_metric(three_runs):
    fig = evaluation.parallel_coordinates(three_runs[:3], metric="acc")
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert set(dims) == {"alpha", "kind", "acc"}  # seed is constant: no axis
    assert list(dims["kind"].ticktext) == ["gb", "rf"]
    assert list(dims["acc"].values) == [0.8, 0.9, 0.85]  # in the order given


def test_parallel_coordinates_unknown_metric_is_error(three_runs):
    with pytest.raises(nbops.NbopsError, match="'f1'"):
        evaluation.parallel_coordinates(metric="f1")


# -- the widget --------------------------------------------------------------------


def test_empty_store_shows_no_runs_yet(store):
    view = compare_widget()
    assert "no runs yet" in view.value


def test_compare_with_unknown_ids_names_them(three_runs):
    with pytest.raises(nbops.RunNotFoundError, match="abc123"):
        nbops.compare_widget(runs=[three_runs[0], "abc123"])


def test_compare_accepts_ids_or_the_runs_dataframe(three_runs):
    assert len(compare_widget(runs=three_runs[:2]).frame) == 2
    frame = nbops.runs(experiment="wine")
    assert list(compare_widget(runs=frame).frame.run_id) == list(frame.run_id)


def test_widget_filters_sort_and_paginate(three_runs):
    view = compare_widget(page_size=10)
    assert isinstance(view, CompareView) and "4 of 4 runs" in view.pager.value
    view.status.value = "FINISHED"
    assert "3 of 4 runs" in view.pager.value and "broken" not in view.table.value
    view.sort_by.value = "metrics.acc"
    view.order.value = True  # ascending
    assert list(view.view.name) == ["run0", "run2", "run1"]
    view.page_size.value = 10
    view.only_diff.value = True
    assert "seed" not in view.table.value and "kind" in view.table.value


def test_widget_pages_through_many_runs(store):
    for i in range(30):
        with nbops.start_run(name=f"r{i:02d}") as run:
            run.log_metric("acc", i / 30)
    view = compare_widget(page_size=10)
    assert "page 1 of 3" in view.pager.value and view.prev.disabled
    view.next.click()
    view.next.click()
    assert "page 3 of 3" in view.pager.value and view.next.disabled
    assert len(view.view) == 10 and len(view.pick.options) == 10


def test_widget_selection_drives_diff_curves_and_best(three_runs):
    view = compare_widget(runs=three_runs[:3], metric="acc")
    view.pick.value = tuple(three_runs[:2])
    assert sorted(view.selected) == sorted(three_runs[:2])
    view.tabs.selected_index = 1  # Diff
    shown = view.diff_out.outputs[-1]["data"]["text/html"]
    assert "kind" in shown and "gb" in shown
    view.tabs.selected_index = 2  # Curves
    assert view.curves_out.outputs[-1]["data"]["application/vnd.plotly.v1+json"]
    view.tabs.selected_index = 3  # Parallel
    assert view.par_out.outputs
    view.tabs.selected_index = 4  # Best
    assert three_runs[1] in view.best_info.value
    view.best_button.click()
    assert nbops.get_run(three_runs[1])["tags"]["best"] == "true"
    assert "tagged best" in view.best_info.value
    view.best_mode.value = "min"
    assert three_runs[0] in view.best_info.value


def test_widget_reads_through_the_api_only():
    source = Path(nbops.__file__).parent / "widgets" / "compare.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom):
            imported.add((node.module or "") + ":" + ",".join(a.name for a in node.names))
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not any("store" in name or "tinydb" in name for name in imported), imported
    assert "open(" not in source.read_text()


def test_parallel_coordinates_puts_params_spanning_decades_on_a_log_axis(store):
    for lr in (1e-4, 1e-2, 1.0):
        with nbops.start_run() as run:
            run.log_params({"lr": lr})
            run.log_metric("acc", lr)
    fig = evaluation.parallel_coordinates(metric="acc")
    axis = fig.data[0].dimensions[0]
    assert axis.label == "log10(lr)" and sorted(axis.values) == pytest.approx([-4, -2, 0])
