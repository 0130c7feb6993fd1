"""%%track --sweep in a real IPython kernel: one child run per trial under one parent."""

from __future__ import annotations

import json
import time

import pytest

CELL = "alpha = 0.5\ndepth = 2\nscore = alpha * depth\n"


def runs_json(kernel, code: str = "nbops.runs()") -> list[dict]:
    res = kernel.run(
        f"import nbops, json; print({code}.to_json(orient='records', date_format='iso'))"
    )
    assert res["status"] == "ok", res
    return json.loads(res["text"].strip().splitlines()[-1])


def get_run(kernel, run_id: str) -> dict:
    res = kernel.run(f"print(json.dumps(nbops.get_run({run_id!r}), default=str))")
    return json.loads(res["text"].strip().splitlines()[-1])


def children(kernel, parent_id: str) -> list[dict]:
    return [r for r in runs_json(kernel) if r["parent_id"] == parent_id]


def parent_named(kernel, name: str) -> dict:
    return next(r for r in runs_json(kernel) if r["name"] == name)


def test_grid_sweep_injects_values_in_place_of_cell_literals(kernel):
    res = kernel.run(
        '%%track --name grid1 --sweep "alpha=[0.1,1.0] depth=range(2,5)" --objective score\n' + CELL
    )
    assert res["status"] == "ok", res
    parent = parent_named(kernel, "grid1")
    kids = children(kernel, parent["run_id"])
    assert len(kids) == 6
    for kid in kids:
        assert kid["status"] == "FINISHED"
        assert kid["metrics.score"] == pytest.approx(kid["params.alpha"] * kid["params.depth"])
    assert {(k["params.alpha"], k["params.depth"]) for k in kids} == {
        (a, d) for a in (0.1, 1.0) for d in (2, 3, 4)
    }
    record = get_run(kernel, parent["run_id"])
    assert record["sweep"]["best_params"] == {"alpha": 1.0, "depth": 4}
    assert record["sweep"]["best_value"] == 4.0
    assert record["params"]["space.depth"] == "range(2,5)"
    assert "alpha = 0.5" in record["code"]["source"]


def test_sweep_shows_a_notebook_progress_bar_and_summary(kernel):
    res = kernel.run('%%track -n bar --sweep "alpha=[1,2,3]" --objective score\n' + CELL)
    assert res["status"] == "ok", res
    views = [d for d in res["data"] if "application/vnd.jupyter.widget-view+json" in d]
    assert views, res["data"]  # tqdm.notebook's bar, not text on stderr
    # the bar's widgets are then updated over comm messages
    updates = json.dumps(
        [c["data"] for k, c in res["outputs"] if k == "comm_msg"], ensure_ascii=False
    ).replace("\u2007", " ")
    assert "trial 3/3" in updates and "best score=6" in updates
    summary = res["data"][-1]["text/html"]
    assert "nbops sweep" in summary and "best score=6" in summary


def test_random_sweep_with_loguniform_and_seed(kernel):
    res = kernel.run(
        '%%track -q -n rnd --sweep "alpha=loguniform(1e-4,1e-1) depth=[1,2]" '
        "--search random --trials 4 --seed 3 --objective score --minimize\n" + CELL
    )
    assert res["status"] == "ok", res
    parent = parent_named(kernel, "rnd")
    kids = children(kernel, parent["run_id"])
    assert len(kids) == 4
    assert all(1e-4 <= k["params.alpha"] <= 1e-1 for k in kids)
    record = get_run(kernel, parent["run_id"])["sweep"]
    assert record["mode"] == "min" and record["seed"] == 3
    assert record["best_value"] == pytest.approx(min(k["metrics.score"] for k in kids))


def test_bayes_sweep_in_a_cell(kernel):
    res = kernel.run(
        '%%track -q -n bayes1 --sweep "alpha=uniform(0,1) depth=[1,2]" --search bayes '
        "--trials 6 --seed 0 --objective score --maximize\n" + CELL
    )
    assert res["status"] == "ok", res
    parent = parent_named(kernel, "bayes1")
    assert len(children(kernel, parent["run_id"])) == 6
    assert get_run(kernel, parent["run_id"])["sweep"]["search"] == "bayes"


def test_malformed_sweep_spec_is_usage_error_pointing_at_token(kernel):
    before = len(runs_json(kernel))
    res = kernel.run('%%track --sweep "alpha=[0.1,1] depth=rang(2,5)"\nnever_ran = 1\n')
    assert res["status"] == "error"
    assert res["error"]["ename"] == "UsageError"
    text = res["error"]["evalue"]
    assert "rang" in text and "depth=rang(2,5)" in text and "^^^" in text
    assert len(runs_json(kernel)) == before
    assert kernel.run("print('never_ran' in dir())")["text"].strip() == "False"


def test_sweep_options_without_sweep_are_usage_error(kernel):
    res = kernel.run("%%track --trials 3\nx = 1\n")
    assert res["status"] == "error" and res["error"]["ename"] == "UsageError"
    assert "--trials" in res["error"]["evalue"] and "--sweep" in res["error"]["evalue"]


def test_unknown_objective_errors_after_first_trial(kernel):
    res = kernel.run('%%track -q -n badobj --sweep "alpha=[1,2,3]" --objective accuracy\n' + CELL)
    assert res["status"] == "error"
    assert res["error"]["ename"] == "SweepError"
    assert "'accuracy'" in res["error"]["evalue"] and "['score']" in res["error"]["evalue"]
    parent = parent_named(kernel, "badobj")
    assert parent["status"] == "FAILED"
    assert len(children(kernel, parent["run_id"])) == 1


def test_failing_trial_is_recorded_and_sweep_continues(kernel):
    res = kernel.run(
        '%%track -q -n flaky --sweep "depth=[1,2,3]" --objective score\n'
        "depth = 1\n"
        "if depth == 2:\n"
        "    raise ValueError('depth 2 breaks')\n"
        "score = depth * 10\n"
    )
    assert res["status"] == "ok", res
    assert "depth 2 breaks" in res["text"] or any(
        "depth 2 breaks" in c.get("text", "") for _, c in res["outputs"]
    )
    parent = parent_named(kernel, "flaky")
    kids = {k["params.depth"]: k["status"] for k in children(kernel, parent["run_id"])}
    assert kids == {1: "FINISHED", 2: "FAILED", 3: "FINISHED"}
    assert parent["status"] == "FINISHED"
    assert get_run(kernel, parent["run_id"])["sweep"]["best_params"] == {"depth": 3}


def test_interrupt_stops_sweep_and_keeps_finished_trials(kernel):
    msg_id = kernel.kc.execute(
        '%%track -q -n interrupted --sweep "pause=[0.0,0.0,30.0,0.0]"\n'
        "import time\n"
        "pause = 0.0\n"
        "time.sleep(pause)\n"
        "score = 1.0\n"
    )
    time.sleep(4)
    kernel.interrupt()
    while True:
        msg = kernel.kc.get_shell_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id:
            break
    assert msg["content"]["ename"] == "KeyboardInterrupt"
    parent = parent_named(kernel, "interrupted")
    assert parent["status"] == "KILLED"
    kids = sorted((k["name"], k["status"]) for k in children(kernel, parent["run_id"]))
    assert kids == [
        ("interrupted-1", "FINISHED"),
        ("interrupted-2", "FINISHED"),
        ("interrupted-3", "KILLED"),
    ]
