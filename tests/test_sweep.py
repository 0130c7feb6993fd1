"""nbops.sweep(fn, space, ...): grid / random / bayes trials as child runs of one parent."""

from __future__ import annotations

import sys

import pytest
from conftest import needs

import nbops
from nbops.tracking.sweep import SweepError, SweepSpecError, parse_space, sweep


def children(parent_id: str) -> list[dict]:
    frame = nbops.runs()
    ids = frame[frame.parent_id == parent_id].run_id
    return [nbops.get_run(i) for i in ids]


def test_grid_sweep_runs_every_combination_as_child_runs(store):
    seen = []

    def train(alpha, depth):
        seen.append((alpha, depth))
        return {"score": alpha * depth}

    res = sweep(
        train, {"alpha": [0.5, 1.0], "depth": range(1, 4)}, objective="score", progress=False
    )
    assert sorted(seen) == sorted((a, d) for a in (0.5, 1.0) for d in (1, 2, 3))
    kids = children(res.parent_id)
    assert len(kids) == 6 and {k["status"] for k in kids} == {"FINISHED"}
    assert sorted((k["params"]["alpha"], k["params"]["depth"]) for k in kids) == sorted(seen)
    parent = nbops.get_run(res.parent_id)
    assert parent["params"]["space.alpha"] == "[0.5, 1.0]"
    assert parent["params"]["space.depth"] == "range(1, 4)"
    assert parent["sweep"]["best_params"] == {"alpha": 1.0, "depth": 3}
    assert parent["sweep"]["best_value"] == 3.0
    assert parent["tags"]["best_trial"] == res.best_run_id
    assert nbops.get_run(res.best_run_id)["metrics"]["score"] == 3.0
    assert parent["metrics"]["best_score"] == 3.0 and parent["status"] == "FINISHED"


def test_minimize_picks_the_smallest_value(store):
    res = sweep(
        lambda x: {"score": (x - 2) ** 2},
        {"x": [0, 1, 2, 3]},
        objective="score",
        mode="min",
        progress=False,
    )
    assert res.best_params == {"x": 2} and res.best_value == 0


def test_loss_like_objective_is_minimised_by_default(store):
    res = sweep(
        lambda x: {"val_loss": abs(x - 1)}, {"x": [0, 1, 3]}, objective="val_loss", progress=False
    )
    assert res.mode == "min" and res.best_params == {"x": 1}


def test_random_sweep_samples_scipy_distributions_reproducibly(store):
    from scipy.stats import loguniform

    space = {"lr": loguniform(1e-4, 1e-1), "layers": [1, 2, 3]}
    a = sweep(
        lambda lr, layers: lr * layers, space, search="random", trials=5, seed=7, progress=False
    )
    b = sweep(
        lambda lr, layers: lr * layers, space, search="random", trials=5, seed=7, progress=False
    )
    lrs = [t.params["lr"] for t in a.trials]
    assert len(lrs) == 5 and all(1e-4 <= v <= 1e-1 for v in lrs)
    assert len(set(lrs)) == 5
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert a.objective == "objective"  # a bare number returned by fn
    assert all(type(t.params["lr"]) is float for t in a.trials)  # plain, JSON-able


def test_random_sweep_accepts_a_spec_string(store):
    res = sweep(
        lambda lr, d: lr + d,
        "lr=loguniform(1e-4,1e-1) d=range(0,3)",
        search="random",
        trials=4,
        seed=0,
        progress=False,
    )
    assert len(res.trials) == 4
    assert all(t.params["d"] in (0, 1, 2) for t in res.trials)


def test_bayes_sweep_uses_optuna_tpe_and_finds_a_good_point(store):
    import importlib.util

    needs(
        importlib.util.find_spec("optuna") is not None,
        "optuna for bayes search: pip install 'nbops[bayes]'",
    )
    res = sweep(
        lambda x, kind: {"loss": (x - 0.3) ** 2 + (kind != "b")},
        "x=uniform(0,1) kind=['a','b']",
        search="bayes",
        trials=25,
        seed=1,
        objective="loss",
        progress=False,
    )
    assert len(res.trials) == 25 and res.mode == "min"
    assert res.best_params["kind"] == "b" and res.best_value < 0.05
    assert nbops.get_run(res.parent_id)["sweep"]["search"] == "bayes"


def test_bayes_without_optuna_says_how_to_install(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(SweepError, match=r"pip install 'nbops\[bayes\]'"):
        sweep(lambda x: x, {"x": [1, 2]}, search="bayes", objective="objective", progress=False)


def test_bayes_needs_an_objective(store):
    with pytest.raises(SweepError, match="needs an objective"):
        sweep(lambda x: x, {"x": [1, 2]}, search="bayes", progress=False)


def test_failing_trial_is_failed_child_and_sweep_goes_on(store):
    def train(x):
        if x == 2:
            raise ValueError("bad x")
        return {"score": x}

    with pytest.warns(UserWarning, match="trial 2 .* failed: ValueError: bad x"):
        res = sweep(train, {"x": [1, 2, 3]}, objective="score", progress=False)
    statuses = {t.params["x"]: t.status for t in res.trials}
    assert statuses == {1: "FINISHED", 2: "FAILED", 3: "FINISHED"}
    failed = nbops.get_run(res.trials[1].run_id)
    assert failed["status"] == "FAILED" and "bad x" in failed["error"]["message"]
    assert res.status == "FINISHED" and res.best_params == {"x": 3}
    assert nbops.get_run(res.parent_id)["sweep"]["failed"] == 1


def test_keyboard_interrupt_kills_parent_and_keeps_finished_trials(store):
    def train(x):
        if x == 3:
            raise KeyboardInterrupt
        return {"score": x}

    with pytest.raises(KeyboardInterrupt):
        sweep(train, {"x": [1, 2, 3, 4]}, objective="score", progress=False, name="stopped")
    frame = nbops.runs()
    parent = frame[frame.name == "stopped"].iloc[0]
    assert parent.status == "KILLED"
    kids = {k["params"]["x"]: k["status"] for k in children(parent.run_id)}
    assert kids == {1: "FINISHED", 2: "FINISHED", 3: "KILLED"}
    record = nbops.get_run(parent.run_id)["sweep"]
    assert record["best_params"] == {"x": 2} and record["finished"] == 2


def test_unknown_objective_fails_after_first_trial_naming_metrics(store):
    calls = []

    def train(x):
        calls.append(x)
        return {"acc": 0.5, "f1": 0.4}

    with pytest.raises(SweepError) as info:
        sweep(train, {"x": [1, 2, 3]}, objective="accuracy", progress=False, name="typo")
    msg = str(info.value)
    assert "'accuracy'" in msg and "['acc', 'f1']" in msg
    assert calls == [1]
    parent = nbops.runs(filter="name == 'typo'").iloc[0]
    assert parent.status == "FAILED"


def test_trial_function_can_log_step_metrics_to_its_run(store):
    def train(epochs):
        for e in range(epochs):
            nbops.log_metric("loss", 1 / (e + 1), step=e)

    res = sweep(train, {"epochs": [2, 3]}, objective="loss", progress=False)
    hist = nbops.metric_history(res.trials[1].run_id, "loss")
    assert list(hist.step) == [0, 1, 2]
    assert res.best_params == {"epochs": 3}


def test_text_progress_bar_in_a_terminal_shows_trials_and_best(store, capsys):
    sweep(lambda x: {"score": x}, {"x": [1, 5, 2]}, objective="score")
    err = capsys.readouterr().err
    assert "trial 3/3" in err and "best score=5" in err


def test_grid_with_a_distribution_is_refused(store):
    with pytest.raises(SweepError, match="lr is a distribution.*random"):
        sweep(lambda lr: lr, "lr=loguniform(1e-4,1e-1)", progress=False)


def test_all_trials_failing_marks_parent_failed(store):
    with pytest.warns(UserWarning):
        res = sweep(lambda x: 1 / 0, {"x": [1, 2]}, progress=False)
    assert res.status == "FAILED" and res.best_run_id is None
    assert nbops.get_run(res.parent_id)["status"] == "FAILED"


def test_spec_parses_lists_ranges_spaces_and_distributions():
    space = parse_space(
        "alpha = [0.01, 0.1, 1]  depth=range(2,8), kind='gini' "
        "lr=loguniform(1e-4,1e-1) n=logspace(0,2,3)"
    )
    assert space.values["alpha"] == [0.01, 0.1, 1]
    assert space.values["depth"] == [2, 3, 4, 5, 6, 7]
    assert space.values["kind"] == ["gini"]
    assert space.values["n"] == [1.0, 10.0, 100.0]
    assert space.values["lr"].support() == (1e-4, 1e-1)
    assert space.text["depth"] == "range(2,8)"


@pytest.mark.parametrize(
    ("spec", "token"),
    [
        ("alpha=[1] junk", "junk"),
        ("alpha=[1,2] depth=range(x)", "depth=range(x)"),
        ("alpha=[1] depth=explode(3)", "depth=explode(3)"),
        ("depth=[]", "depth=[]"),
        ("lr=loguniform(1,0.1)", "lr=loguniform(1,0.1)"),
        ("alpha=[1] alpha=[2]", "alpha=[2]"),
        ("nothing here", "nothing here"),
        ("a=__import__('os')", "a=__import__('os')"),
    ],
)
def test_malformed_spec_points_at_the_bad_token(spec, token):
    with pytest.raises(SweepSpecError) as info:
        parse_space(spec)
    assert info.value.token == token
    lines = str(info.value).splitlines()
    assert lines[-2].strip() == spec
    start = lines[-1].index("^")
    assert lines[-2][start : start + len(token)] == token
