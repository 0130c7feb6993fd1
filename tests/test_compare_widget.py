"""nbops.compare_widget() in a real IPython kernel: it displays as a widget, or says why not."""

from __future__ import annotations

import json


def widget_states(res) -> str:
    opens = [c["data"] for k, c in res["outputs"] if k in ("comm_open", "comm_msg")]
    return json.dumps(opens)


def test_empty_store_displays_no_runs_yet(kernel):
    res = kernel.run("import nbops\nnbops.compare_widget()")
    assert res["status"] == "ok", res
    assert any("application/vnd.jupyter.widget-view+json" in d for d in res["data"])
    assert "no runs yet" in widget_states(res)


def test_compare_displays_tabs_over_tracked_runs(kernel):
    for alpha in (0.1, 0.2):
        res = kernel.run(f"%%track -q -e cmp\nalpha = {alpha}\nscore = alpha * 10\n")
        assert res["status"] == "ok", res
    res = kernel.run("view = nbops.compare_widget(experiment='cmp', metric='score')\nview")
    assert res["status"] == "ok", res
    states = widget_states(res)
    for title in ("Runs", "Diff", "Curves", "Parallel", "Best"):
        assert f'"{title}"' in states
    assert "2 of 2 runs" in states and "only columns that differ" in states


def test_compare_unknown_run_ids_is_an_error_naming_them(kernel):
    res = kernel.run("nbops.compare_widget(runs=['feedbeef0000'])")
    assert res["status"] == "error"
    assert res["error"]["ename"] == "RunNotFoundError"
    assert "feedbeef0000" in res["error"]["evalue"]
