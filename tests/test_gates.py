"""Promotion gates: the rule grammar, gates blocking a promotion with every rule's
result, forced overrides in the audit log, and each rule kind measured for real
(metrics, Production baselines, re-runs over seeds, quality, drift)."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import nbops
from nbops import GateError, GateRuleError, RegistryError
from nbops.registry import parse_rule
from nbops.tracking.cell import TrackOptions, run_tracked_cell


def frame(n=200, shift=0.0, seed=1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.normal(0, 1, n)})
    y = ((X["x1"] - shift) - X["x2"] + rng.normal(0, 0.7, n) > 0).astype(int)
    return X, y


def version(X, y, accuracy=None, rmse=None, name="churn", C=1.0):
    """Register a version trained on X, y with the given metrics."""
    model = LogisticRegression(C=C).fit(X, y)
    with nbops.start_run() as run:
        nbops.log_model(model, signature=X, reference=X)
        run.log_metrics(
            {
                "accuracy": accuracy if accuracy is not None else float(model.score(X, y)),
                **({"rmse": rmse} if rmse else {}),
            }
        )
    return nbops.register(run.run_id, name)["version"]


# -- the grammar ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "accuracy >= 0.9",
            {
                "kind": "metric",
                "metric": "accuracy",
                "op": ">=",
                "baseline": "number",
                "value": 0.9,
            },
        ),
        ("accuracy >= production", {"kind": "metric", "baseline": "production", "factor": 1.0}),
        (
            "rmse <= production * 1.05",
            {
                "kind": "metric",
                "metric": "rmse",
                "op": "<=",
                "baseline": "production",
                "factor": 1.05,
            },
        ),
        (
            "stable accuracy over 5 seeds: std <= 0.01",
            {"kind": "stable", "metric": "accuracy", "seeds": 5, "seed_param": None, "value": 0.01},
        ),
        (
            "stable f1 over 3 seeds of rs: std < 0.1",
            {"kind": "stable", "seed_param": "rs", "op": "<"},
        ),
        ("quality", {"kind": "quality"}),
        ("no drift vs production", {"kind": "drift"}),
        ("production: accuracy > 0.5", {"kind": "metric", "stages": ["Production"]}),
        ("Staging: quality", {"kind": "quality", "stages": ["Staging"]}),
    ],
)
def test_each_rule_kind_parses(text, expected):
    rule = parse_rule(text)
    assert rule["rule"] == text
    assert {k: rule[k] for k in expected} == expected
    if "stages" not in expected:
        assert rule["stages"] == ["Staging", "Production"]


@pytest.mark.parametrize(
    "text, wrong, says",
    [
        ("accuracy >== 0.9", ">==", "unknown comparison"),
        ("accuracy >= high", "high", "compare with a number or with 'production'"),
        ("accuracy >= production * x", "x", "the factor after '*'"),
        ("stable accuracy over 1 seeds: std <= 0.1", "1", "at least 2"),
        ("stable accuracy over 5 seeds: std >= 0.1", ">=", "std <= X"),
        ("stable accuracy over 5 runs: std <= 0.1", "runs", "'seeds'"),
        ("no drift vs staging", "staging", "'production'"),
        ("quality please", "please", "after the end of the rule"),
        ("accuracy >= 0.9 %", "%", "not part of the rule grammar"),
    ],
)
def test_bad_rule_error_points_at_the_wrong_part(text, wrong, says):
    with pytest.raises(GateRuleError) as err:
        parse_rule(text)
    message = str(err.value)
    assert says in message and text in message
    assert err.value.position == text.index(wrong)
    caret_line = message.splitlines()[2]
    assert caret_line.index("^") - 4 == text.index(wrong)


def test_set_gates_stores_rules_and_a_bad_rule_stores_nothing(store):
    assert nbops.gates("churn") == []
    nbops.set_gates("churn", ["accuracy >= 0.9", "quality"])
    with pytest.raises(GateRuleError, match="accuracy >= lots"):
        nbops.set_gates("churn", ["accuracy >= 0.5", "accuracy >= lots"])
    assert nbops.gates("churn") == ["accuracy >= 0.9", "quality"]
    assert nbops.registry.add_gate("churn", "rmse <= production") == [
        "accuracy >= 0.9",
        "quality",
        "rmse <= production",
    ]
    assert nbops.registry.remove_gate("churn", "quality") == [
        "accuracy >= 0.9",
        "rmse <= production",
    ]
    actions = [e["action"] for e in nbops.model_history("churn").to_dict("records")]
    assert actions == ["set_gates"] * 3


# -- blocking and overriding ---------------------------------------------------------
def test_failing_gate_blocks_the_move_and_lists_every_rule(store):
    X, y = frame()
    v = version(X, y, accuracy=0.8)
    nbops.set_gates("churn", ["accuracy >= 0.9", "accuracy >= 0.5"])
    with pytest.raises(GateError) as err:
        nbops.transition("churn", v, "Production", reason="ship it")
    message = str(err.value)
    assert "1 of 2 gate rules failed" in message
    assert "accuracy >= 0.9" in message and "FAIL" in message and "PASS" in message
    assert "0.8" in message and "force=True" in message
    assert [(r["rule"], r["measured"], r["threshold"], r["passed"]) for r in err.value.results] == [
        ("accuracy >= 0.9", 0.8, 0.9, False),
        ("accuracy >= 0.5", 0.8, 0.5, True),
    ]
    rec = nbops.get_model("churn", version=v)
    assert rec["stage"] is None  # nothing moved
    assert rec["gates"]["passed"] is False and rec["gates"]["stage"] == "Production"
    assert "transition" not in set(nbops.model_history("churn")["action"])


def test_passing_gates_move_the_version_and_keep_the_results(store):
    X, y = frame()
    v = version(X, y, accuracy=0.95)
    nbops.set_gates("churn", ["accuracy >= 0.9"])
    rec = nbops.transition("churn", v, "Staging")
    assert rec["stage"] == "Staging"
    assert rec["gates"]["passed"] and rec["gates"]["results"][0]["measured"] == 0.95
    assert nbops.models("churn")["gates"].tolist() == ["passed 1/1 (Staging)"]


def test_force_needs_a_reason_and_is_recorded_in_the_audit_log(store):
    X, y = frame()
    v = version(X, y, accuracy=0.7)
    nbops.set_gates("churn", ["accuracy >= 0.9"])
    with pytest.raises(RegistryError, match="needs a reason"):
        nbops.transition("churn", v, "Production", force=True)
    rec = nbops.transition("churn", v, "Production", force=True, reason="hotfix, approved")
    assert rec["stage"] == "Production"
    events = nbops.model_history("churn").to_dict("records")
    override = [e for e in events if e["action"] == "gate_override"]
    assert len(override) == 1 and override[0]["reason"] == "hotfix, approved"
    from nbops.registry import audit
    from nbops.store import get_store

    (raw,) = [e for e in audit.events(get_store(), "churn") if e["action"] == "gate_override"]
    assert raw["failed"] == ["accuracy >= 0.9"] and raw["results"][0]["measured"] == 0.7


def test_rules_prefixed_with_a_stage_apply_only_to_it(store):
    X, y = frame()
    v = version(X, y, accuracy=0.8)
    nbops.set_gates("churn", ["production: accuracy >= 0.9"])
    assert nbops.transition("churn", v, "Staging")["stage"] == "Staging"
    with pytest.raises(GateError):
        nbops.transition("churn", v, "Production")


def test_a_passing_evaluation_is_reused_for_the_same_move(store):
    X, y = frame()
    v = version(X, y, accuracy=0.95)
    nbops.set_gates("churn", ["accuracy >= 0.9"])
    nbops.evaluate_gates("churn", v, stage="Production")
    nbops.transition("churn", v, "Production")
    actions = list(nbops.model_history("churn")["action"])
    assert actions.count("gates") == 1


def test_every_evaluation_is_kept_with_the_version(store):
    X, y = frame()
    v = version(X, y, accuracy=0.85)
    nbops.set_gates("churn", ["accuracy >= 0.9"])
    nbops.evaluate_gates("churn", v, stage="Staging")
    nbops.set_gates("churn", ["accuracy >= 0.8"])
    nbops.evaluate_gates("churn", v, stage="Production")
    rec = nbops.get_model("churn", version=v)
    assert [(e["stage"], e["passed"]) for e in rec["gate_history"]] == [
        ("Staging", False),
        ("Production", True),
    ]
    assert rec["gate_evaluations"]["Staging"]["passed"] is False
    assert rec["gates"] == rec["gate_history"][-1]


# -- each kind measured ----------------------------------------------------------------
def test_production_baseline_with_a_factor(store):
    X, y = frame()
    v1 = version(X, y, accuracy=0.9, rmse=1.0)
    nbops.set_gates("churn", ["rmse <= production * 1.05", "accuracy >= production"])
    # nothing in Production yet: nothing to compare with, so the rules pass
    first = nbops.evaluate_gates("churn", v1)
    assert first["passed"] and "no version is in Production" in first["results"][0]["detail"]
    nbops.transition("churn", v1, "Production")
    v2 = version(X, y, accuracy=0.91, rmse=1.04)
    ok = nbops.evaluate_gates("churn", v2)
    assert ok["passed"] and ok["baseline_version"] == v1
    assert ok["results"][0]["threshold"] == pytest.approx(1.05)
    v3 = version(X, y, accuracy=0.89, rmse=1.2)
    bad = nbops.evaluate_gates("churn", v3)
    assert [r["passed"] for r in bad["results"]] == [False, False]


def test_missing_metric_fails_with_the_metrics_the_run_has(store):
    X, y = frame()
    v = version(X, y, accuracy=0.9)
    nbops.set_gates("churn", ["f1 >= 0.5"])
    (res,) = nbops.evaluate_gates("churn", v)["results"]
    assert not res["passed"] and "no metric 'f1'" in res["detail"] and "accuracy" in res["detail"]


def test_no_drift_and_quality_against_production_training_data(store):
    X, y = frame(seed=1)
    v1 = version(X, y)
    nbops.transition("churn", v1, "Production")
    nbops.set_gates("churn", ["no drift vs production", "quality"])
    same_X, same_y = frame(seed=2)
    assert nbops.evaluate_gates("churn", version(same_X, same_y))["passed"]
    moved_X, moved_y = frame(seed=3, shift=3.0)
    moved_X["x2"] = moved_X["x2"] * 4 + 5
    result = nbops.evaluate_gates("churn", version(moved_X, moved_y))
    drift_rule = result["results"][0]
    assert not drift_rule["passed"] and "x1" in drift_rule["detail"]
    assert drift_rule["measured"] == 1.0


TRAIN_CELL = """\
seed = 0
from sklearn.ensemble import RandomForestClassifier
model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=seed).fit(X, y)
accuracy = float(model.score(X_test, y_test))
"""


def tracked(source, ns, name="train"):
    result = run_tracked_cell(source, TrackOptions(name=name), user_ns=ns)
    assert result.error is None, result.error
    return result.run.run_id


def test_stable_rule_reruns_the_cell_over_seeds(store, monkeypatch):
    X, y = frame(n=300)
    ns = {"X": X.iloc[:200], "y": y.iloc[:200], "X_test": X.iloc[200:], "y_test": y.iloc[200:]}
    run_id = tracked(TRAIN_CELL, ns)
    assert "accuracy" in nbops.get_run(run_id)["metrics"]
    v = nbops.register(run_id, "forest")["version"]
    # the re-runs start from a copy of the namespace the gate is evaluated in
    import nbops.registry.gate_checks as gc

    monkeypatch.setattr(gc, "_namespace", lambda: dict(ns))
    nbops.set_gates("forest", ["stable accuracy over 3 seeds: std <= 0.5"])
    (res,) = nbops.evaluate_gates("forest", v)["results"]
    assert res["passed"], res
    assert len(res["values"]) == 3 and res["measured"] == pytest.approx(
        statistics.stdev(res["values"])
    )
    assert "seed=[0, 1, 2]" in res["detail"]
    reruns = nbops.runs()
    tagged = reruns[reruns["tags.reproduced_from"] == run_id]
    assert len(tagged) == 2
    assert sorted(tagged["params.seed"].astype(int)) == [1, 2]


def test_stable_rule_without_a_seed_fails_and_says_how_to_add_one(store):
    X, y = frame()
    ns = {"X": X, "y": y, "X_test": X, "y_test": y}
    source = TRAIN_CELL.replace("seed = 0\n", "").replace("random_state=seed", "random_state=0")
    v = nbops.register(tracked(source, ns), "forest")["version"]
    nbops.set_gates("forest", ["stable accuracy over 3 seeds: std <= 0.5"])
    (res,) = nbops.evaluate_gates("forest", v)["results"]
    assert not res["passed"] and "seed = 0" in res["detail"]


# -- the command line ------------------------------------------------------------------
def cli(capsys, *argv):
    from nbops.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_adds_rules_and_a_blocked_transition_exits_1_with_the_table(store, capsys):
    X, y = frame()
    v = version(X, y, accuracy=0.8)
    code, out, _ = cli(
        capsys, "registry", "gates", "churn", "--add", "accuracy >= 0.9", "--add", "accuracy >= 0.5"
    )
    assert code == 0 and out.splitlines() == ["accuracy >= 0.9", "accuracy >= 0.5"]
    code, out, _ = cli(capsys, "registry", "transition", "churn", str(v), "Production")
    assert code == 1
    assert "accuracy >= 0.9" in out and "FAIL" in out and "0.8" in out
    assert nbops.get_model("churn", version=v)["stage"] is None
    code, out, _ = cli(capsys, "registry", "gates", "churn", "--evaluate", "latest")
    assert code == 1 and "FAILED" in out
    code, out, _ = cli(
        capsys,
        "registry",
        "transition",
        "churn",
        str(v),
        "Production",
        "--force",
        "--reason",
        "known regression, approved",
    )
    assert code == 0 and nbops.get_model("churn", version=v)["stage"] == "Production"


def test_cli_bad_rule_exits_2_and_points_at_it(store, capsys):
    version(*frame())
    code, _, err = cli(capsys, "registry", "gates", "churn", "--add", "accuracy => 0.9")
    assert code == 2 and "unknown comparison '=>'" in err
    assert nbops.gates("churn") == []


def test_quality_rule_fails_on_training_data_with_many_missing_values(store):
    X, y = frame(seed=1)
    nbops.transition("churn", version(X, y), "Production")
    nbops.set_gates("churn", ["quality"])
    model = LogisticRegression().fit(X, y)
    holey = X.copy()
    holey.loc[holey.index[::2], "x1"] = np.nan  # half of a column missing
    with nbops.start_run() as run:
        nbops.log_model(model, signature=X, reference=holey)
        run.log_metric("accuracy", 0.9)
    v = nbops.register(run.run_id, "churn")["version"]
    (res,) = nbops.evaluate_gates("churn", v)["results"]
    assert not res["passed"] and res["measured"] == "fail"
    assert "missing x1" in res["detail"]


def test_stable_rule_in_a_real_kernel_leaves_the_users_variables_alone(kernel):
    setup = """
import numpy as np, pandas as pd, nbops
rng = np.random.default_rng(0)
X = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
y = (X.x1 + rng.normal(0, 0.8, 300) > 0).astype(int)
X_test, y_test = X.iloc[200:], y.iloc[200:]
X, y = X.iloc[:200], y.iloc[:200]
"""
    assert kernel.run(setup)["status"] == "ok"
    res = kernel.run("%%track --name forest -q\n" + TRAIN_CELL)
    assert res["status"] == "ok", res
    res = kernel.run(
        "before = id(model)\n"
        "run_id = nbops.runs(filter=\"name == 'forest'\").iloc[0]['run_id']\n"
        "v = nbops.register(run_id, 'kforest')['version']\n"
        "nbops.set_gates('kforest', ['stable accuracy over 3 seeds: std <= 0.5'])\n"
        "rec = nbops.transition('kforest', v, 'Staging')\n"
        "r = rec['gates']['results'][0]\n"
        "print(rec['stage'], r['passed'], len(r['values']), id(model) == before, seed)"
    )
    assert res["status"] == "ok", res
    assert res["text"].split() == ["Staging", "True", "3", "True", "0"]
