"""The registry widget: a view whose buttons call the registry API and report back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import nbops
from nbops import registry as reg


@pytest.fixture
def versions(store):
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = (X.a > 0).astype(int)
    for c in (0.5, 1.0, 2.0):
        with nbops.start_run(name=f"lr-{c}") as run:
            nbops.log_model(LogisticRegression(C=c).fit(X, y), signature=X)
            run.log_metric("acc", c / 4)
        reg.register(run.run_id, "churn", description=f"C={c}")
    reg.transition("churn", 1, "Production")
    return "churn"


def test_shows_versions_history_and_lineage(versions):
    w = nbops.registry_widget("churn")
    assert w.model.value == "churn" and w.version.value == 3
    assert w.table.value.count("<tr") == 4 and "Production" in w.table.value
    assert "acc" in w.table.value and "C=2.0" in w.table.value
    assert "register" in w.history.value
    assert "a, b" in w.lineage.value and "40×2" in w.lineage.value
    w.version.value = 1
    assert reg.get_model("churn", version=1)["sha256"][:12] in w.lineage.value


def test_move_needs_a_reason_then_calls_transition(versions):
    w = nbops.registry_widget("churn")
    w.version.value = 2
    w.stage.value = "Production"
    w.move_button.click()
    assert "reason" in w.status.value and reg.get_model("churn", version=2)["stage"] is None
    w.reason.value = "better recall"
    w.move_button.click()
    assert reg.get_model("churn", version=2)["stage"] == "Production"
    assert reg.get_model("churn", version=1)["stage"] == "Archived"
    assert "v2 is now Production" in w.status.value
    assert reg.model_history("churn").iloc[-2].reason == "better recall"
    assert "better recall" in w.history.value and w.reason.value == ""


def test_gates_tab_and_a_blocked_move_forced_with_a_reason(versions):
    nbops.set_gates("churn", ["acc >= 0.4"])
    w = nbops.registry_widget("churn")
    w.version.value = 1  # acc 0.125
    assert "acc &gt;= 0.4" in w.gates.value and "not evaluated yet" in w.gates.value
    w.stage.value = "Staging"
    w.reason.value = "try"
    w.move_button.click()
    assert "did not move to Staging" in w.status.value and "FAIL" in w.status.value
    assert reg.get_model("churn", version=1)["stage"] == "Production"  # unchanged
    assert "failed" in w.gates.value and "0.125" in w.gates.value
    w.force.value = True
    w.reason.value = "demo, approved"
    w.move_button.click()
    assert reg.get_model("churn", version=1)["stage"] == "Staging"
    assert w.force.value is False  # an override is for one move only
    assert "gate_override" in w.history.value


def test_alias_and_rollback_buttons(versions):
    w = nbops.registry_widget("churn")
    reg.transition("churn", 3, "Production")
    w.refresh()
    w.version.value = 3
    w.alias.value = "champion"
    w.reason.value = "new best"
    w.alias_button.click()
    assert reg.get_model("churn", alias="champion")["version"] == 3
    assert "@champion" in w.table.value
    w.reason.value = "latency regression"
    w.rollback_button.click()
    assert reg.get_model("churn", stage="Production")["version"] == 1
    assert "v1 is Production again" in w.status.value


def test_api_errors_are_shown_not_raised(versions):
    w = nbops.registry_widget("churn")
    w.alias.value = "2"  # an alias that looks like a version is refused by the API
    w.reason.value = "oops"
    w.alias_button.click()
    assert "confused with a version number" in w.status.value
    assert "#cf222e" in w.status.value


def test_empty_registry_explains_how_to_start(store):
    w = nbops.registry_widget()
    assert "nbops.register" in w.table.value and w.model.options == ()


def test_widget_in_a_real_kernel(kernel):
    code = """
import numpy as np, pandas as pd, nbops
from nbops import registry
from sklearn.linear_model import LogisticRegression
X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
y = (X.a > 9).astype(int)
for _ in range(2):
    with nbops.start_run() as run:
        nbops.log_model(LogisticRegression().fit(X, y), signature=X)
    nbops.register(run.run_id, "kmodel")
w = nbops.registry_widget("kmodel")
w.stage.value = "Staging"; w.reason.value = "from the kernel"; w.move_button.click()
print(nbops.get_model("kmodel", version=2)["stage"])
w
"""
    res = kernel.run(code)
    assert res["status"] == "ok", res
    assert res["text"].strip().endswith("Staging")
    (bundle,) = [d for d in res["data"] if "application/vnd.jupyter.widget-view+json" in d]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"]
