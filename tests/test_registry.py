"""The model registry: register, stages, aliases, load, rollback, history, lineage, delete."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import nbops
from nbops import ModelIntegrityError, NbopsError, RegistryError, RunNotFoundError
from nbops import registry as reg
from nbops.store import get_store


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x1": rng.normal(size=80), "x2": rng.normal(size=80)})
    y = (X["x1"] - X["x2"] > 0).astype(int)
    return X, y


def train_run(data, model=None, name="train", **metrics):
    X, y = data
    model = model if model is not None else LogisticRegression(C=0.5)
    with nbops.start_run(name=name) as run:
        model.fit(X, y)
        nbops.log_model(model, signature=X)
        run.log_metrics({"accuracy": float(model.score(X, y)), **metrics})
    return run.run_id


@pytest.fixture
def three_versions(store, data):
    for i in range(3):
        reg.register(train_run(data, LogisticRegression(C=0.1 * (i + 1))), "churn")
    return "churn"


# -- capturing -----------------------------------------------------------------------
def test_log_model_records_skops_artifact_and_signature(store, data):
    run_id = train_run(data)
    run = nbops.get_run(run_id)
    (entry,) = run["models"]
    assert entry["name"] == "model" and entry["flavour"] == "sklearn"
    assert entry["signature"]["inputs"] == [
        {"name": "x1", "dtype": "float64"},
        {"name": "x2", "dtype": "float64"},
    ]
    assert entry["signature"]["outputs"]["classes"] == [0, 1]
    (artifact,) = [a for a in run["artifacts"] if a["kind"] == "model"]
    assert artifact == {
        "name": "model.skops",
        "sha256": entry["sha256"],
        "size": entry["size"],
        "kind": "model",
    }
    assert get_store().artifacts.verify(entry["sha256"]).is_file()


def test_log_model_needs_an_active_run(store, data):
    X, y = data
    with pytest.raises(NbopsError, match="no active run"):
        nbops.log_model(LogisticRegression().fit(X, y))


def test_log_model_links_training_frame_as_input(store, data):
    run_id = train_run(data)
    run = nbops.get_run(run_id)
    assert len(run["inputs"]) == 1
    assert get_store().get_dataset(run["inputs"][0])["shape"] == [80, 2]


# -- registering ---------------------------------------------------------------------
def test_register_counts_versions_per_name(store, data):
    run_id = train_run(data)
    assert [reg.register(run_id, "a")["version"] for _ in range(3)] == [1, 2, 3]
    assert reg.register(run_id, "b")["version"] == 1
    rec = reg.get_model("a", version=2)
    assert rec["run_id"] == run_id and rec["stage"] is None and rec["aliases"] == []
    assert rec["trusted_types"] == [] and rec["file_name"] == "model.skops"
    assert set(rec["library_versions"]) == {"python", "sklearn", "skops", "numpy", "pandas"}


def test_register_inside_the_open_run(store, data):
    X, y = data
    with nbops.start_run() as run:
        nbops.log_model(LogisticRegression().fit(X, y))
        rec = nbops.register(run.run_id, "inside")
    assert rec["version"] == 1


def test_register_run_without_model_names_run_and_fix(store):
    with nbops.start_run(name="nomodel") as run:
        run.log_metric("loss", 1.0)
    with pytest.raises(RegistryError, match=rf"run {run.run_id} .*nbops\.log_model\(model\)"):
        reg.register(run.run_id, "m")
    assert reg.models().empty


def test_register_unknown_run(store):
    with pytest.raises(RunNotFoundError, match="nope"):
        reg.register("nope", "m")


def test_register_bad_name(store, data):
    run_id = train_run(data)
    with pytest.raises(RegistryError, match="not usable"):
        reg.register(run_id, "../etc")


def test_register_picks_among_several_models(store, data):
    X, y = data
    with nbops.start_run() as run:
        nbops.log_model(LogisticRegression().fit(X, y), name="lr")
        nbops.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), name="tree")
    with pytest.raises(RegistryError, match=r"several models \['lr', 'tree'\]"):
        reg.register(run.run_id, "m")
    assert reg.register(run.run_id, "m", model="tree")["model_class"].endswith(
        "DecisionTreeClassifier"
    )


# -- stages --------------------------------------------------------------------------
def test_promotion_archives_the_previous_production(three_versions):
    reg.transition("churn", 1, "Production", reason="first")
    reg.transition("churn", 2, "Staging")
    rec = reg.transition("churn", 2, "production", reason="better auc")
    assert rec["stage"] == "Production"
    stages = reg.models("churn").set_index("version")["stage"].to_dict()
    assert stages == {1: "Archived", 2: "Production", 3: None}
    hist = reg.model_history("churn")
    archived = hist[(hist.version == 1) & (hist.to == "Archived")].iloc[0]
    assert archived["from"] == "Production" and "superseded by version 2" in archived.reason


def test_archive_existing_false_allows_two_in_production(three_versions):
    reg.transition("churn", 1, "Production")
    reg.transition("churn", 2, "Production", archive_existing=False)
    assert list(reg.models("churn").stage) == ["Production", "Production", None]


def test_unknown_stage_lists_the_valid_ones(three_versions):
    before = len(reg.model_history("churn"))
    with pytest.raises(RegistryError, match="'Staging', 'Production', 'Archived'"):
        reg.transition("churn", 1, "Prod")
    assert len(reg.model_history("churn")) == before


def test_unknown_version_and_model_say_what_exists(three_versions):
    with pytest.raises(RegistryError, match=r"no version 7; it has v1 \(None\), v2"):
        reg.transition("churn", 7, "Staging")
    with pytest.raises(RegistryError, match=r"no registered model 'churm'.*\['churn'\]"):
        reg.get_model("churm")
    with pytest.raises(RegistryError, match="not a version number"):
        reg.get_model("churn", version="two")


def test_same_stage_is_a_no_op(three_versions):
    reg.transition("churn", 1, "Staging")
    n = len(reg.model_history("churn"))
    reg.transition("churn", 1, "Staging")
    assert len(reg.model_history("churn")) == n


# -- aliases and lookup ----------------------------------------------------------------
def test_alias_moves_between_versions(three_versions):
    reg.set_alias("churn", "champion", 1)
    reg.set_alias("churn", "champion", 3, reason="retrained")
    assert reg.get_model("churn", alias="champion")["version"] == 3
    assert reg.get_model("churn", version=1)["aliases"] == []
    last = reg.model_history("churn").iloc[-1]
    assert (last.action, last.alias, last["from"], last.to) == ("set_alias", "champion", 1, 3)
    reg.delete_alias("churn", "champion")
    with pytest.raises(RegistryError, match="no alias 'champion'"):
        reg.get_model("churn", alias="champion")


def test_bad_aliases_are_refused(three_versions):
    for bad in ("2", "production", "latest", "a/b", ""):
        with pytest.raises(RegistryError):
            reg.set_alias("churn", bad, 1)


def test_get_by_stage_and_default_latest(three_versions):
    assert reg.get_model("churn")["version"] == 3
    reg.transition("churn", 2, "Staging")
    assert reg.get_model("churn", stage="Staging")["version"] == 2
    with pytest.raises(RegistryError, match="no version of 'churn' is in stage Production"):
        reg.get_model("churn", stage="Production")
    with pytest.raises(RegistryError, match="one of version=, stage= or alias="):
        reg.get_model("churn", version=1, stage="Staging")


# -- loading -------------------------------------------------------------------------
def test_load_returns_a_working_model(store, data):
    X, y = data
    reg.register(train_run(data), "m")
    reg.set_alias("m", "champion", 1)
    model = nbops.load_model("m", alias="champion")
    assert model.score(X, y) > 0.8


def test_load_tree_model_without_listing_types(store, data):
    X, y = data
    reg.register(train_run(data, DecisionTreeClassifier(max_depth=3)), "tree")
    assert reg.get_model("tree")["trusted_types"] == ["sklearn.tree._tree.Tree"]
    np.testing.assert_array_equal(
        reg.load_model("tree", version=1).predict(X),
        DecisionTreeClassifier(max_depth=3).fit(X, y).predict(X),
    )


def test_tampered_model_file_raises_integrity_error(store, data):
    rec = reg.register(train_run(data), "m")
    path = get_store().artifacts.path(rec["sha256"])
    os.chmod(path, 0o644)
    data_bytes = bytearray(path.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0x01
    path.write_bytes(bytes(data_bytes))
    with pytest.raises(ModelIntegrityError, match=rec["sha256"][:12]):
        reg.load_model("m")


def test_record_with_other_trusted_types_refuses_the_file(store, data):
    rec = reg.register(train_run(data, DecisionTreeClassifier(max_depth=2)), "tree")
    store_ = get_store()
    store_.models.update({"trusted_types": []}, doc_ids=[store_.models.doc_id_of("ref", "tree/1")])
    with pytest.raises(ModelIntegrityError, match="refuses to load"):
        reg.load_model("tree", version=rec["version"])


# -- rollback --------------------------------------------------------------------------
def test_rollback_restores_the_previous_production(three_versions):
    reg.transition("churn", 1, "Production")
    reg.transition("churn", 3, "Production")
    rec = nbops.rollback("churn", reason="v3 drifted")
    assert rec["version"] == 1 and rec["stage"] == "Production"
    assert reg.get_model("churn", version=3)["stage"] == "Archived"
    moves = reg.model_history("churn").query("action == 'rollback'")
    assert moves[["version", "from", "to"]].values.tolist() == [
        [3, "Production", "Archived"],
        [1, "Archived", "Production"],
    ]
    assert set(moves.reason) == {"v3 drifted"}
    # a second rollback undoes the first
    assert reg.rollback("churn")["version"] == 3


def test_rollback_skips_deleted_versions(three_versions):
    reg.transition("churn", 1, "Production")
    reg.transition("churn", 2, "Production")
    reg.transition("churn", 3, "Production")
    reg.delete_model_version("churn", 2)
    assert reg.rollback("churn")["version"] == 1


def test_rollback_without_previous_production_is_clear(three_versions):
    with pytest.raises(RegistryError, match="no version of 'churn' is in Production"):
        reg.rollback("churn")
    reg.transition("churn", 2, "Production")
    with pytest.raises(RegistryError, match="no earlier Production version"):
        reg.rollback("churn")
    assert reg.get_model("churn", version=2)["stage"] == "Production"


# -- history, models, lineage ----------------------------------------------------------
def test_history_has_who_when_from_to_why(three_versions):
    reg.transition("churn", 1, "Staging", reason="looks good")
    hist = nbops.model_history("churn")
    assert list(hist.columns) == reg.HISTORY_COLUMNS
    assert list(hist.action) == ["register"] * 3 + ["transition"]
    last = hist.iloc[-1]
    assert (last.version, last["from"], last.to, last.reason) == (1, None, "Staging", "looks good")
    assert last.user and str(hist.time.dtype).startswith("datetime64")
    with pytest.raises(RegistryError, match="no registered model"):
        reg.model_history("nothing")


def test_models_lists_versions_with_run_metrics(store, data):
    reg.register(train_run(data, f1=0.5), "a")
    reg.register(train_run(data, f1=0.7), "b")
    reg.set_alias("b", "champion", 1)
    frame = nbops.models()
    assert list(frame.name) == ["a", "b"]
    assert list(frame["metrics.f1"]) == [0.5, 0.7]
    assert frame.aliases.tolist() == [[], ["champion"]]
    assert reg.models("b").shape[0] == 1


def test_lineage_follows_model_to_run_data_and_env(store, data):
    rec = reg.register(train_run(data), "m")
    lin = nbops.lineage("m", 1)
    assert lin["model"]["sha256"] == rec["sha256"]
    assert lin["run"]["run_id"] == rec["run_id"]
    assert "accuracy" in lin["run"]["metrics"]
    assert "git_commit" in lin["run"]["code"]
    (ds,) = lin["datasets"]
    assert ds["shape"] == [80, 2] and ds["schema"] == {"x1": "float64", "x2": "float64"}
    assert lin["environment"]["python"]


# -- deleting --------------------------------------------------------------------------
def test_delete_refuses_production_and_removes_unshared_files(store, data):
    shared_run = train_run(data)
    reg.register(shared_run, "m")  # v1
    reg.register(shared_run, "m")  # v2 shares v1's file
    own = reg.register(train_run(data, LogisticRegression(C=3.0)), "m")  # v3
    reg.transition("m", 3, "Production")
    with pytest.raises(RegistryError, match="in Production and cannot be deleted"):
        reg.delete_model_version("m", 3)
    reg.transition("m", 3, "Archived")
    path3 = get_store().artifacts.path(own["sha256"])
    reg.delete_model_version("m", 3)
    assert not path3.exists()
    shared = reg.get_model("m", version=1)
    reg.delete_model_version("m", 1)
    assert get_store().artifacts.path(shared["sha256"]).exists()
    assert reg.load_model("m", version=2) is not None
    assert list(reg.models("m").version) == [2]
    assert reg.model_history("m").action.tolist()[-2:] == ["delete", "delete"]


# -- several processes -----------------------------------------------------------------
WORKER = textwrap.dedent("""
    import sys, time
    from nbops import registry as reg
    version, start, rounds = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    for i in range(rounds):
        reg.transition("churn", version, "Production", reason=f"p{version} round {i}")
        reg.register(reg.get_model("churn", version=1)["run_id"], "other")
""")


def test_concurrent_transitions_keep_one_production(three_versions, store):
    rounds = 8
    start = time.time() + 2.0
    env = {**os.environ, "NBOPS_STORE": str(store)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(v), str(start), str(rounds)], env=env)
        for v in (1, 2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    frame = reg.models("churn")
    assert (frame.stage == "Production").sum() == 1
    hist = reg.model_history("churn")
    promotions = hist[(hist.to == "Production") & (hist.action == "transition")]
    # every call that changed the stage is in the log, and the log replays to the state
    assert len(promotions) >= 2
    state: dict[int, str | None] = {1: None, 2: None, 3: None}
    for row in hist.to_dict("records"):
        if row["action"] in ("transition", "rollback"):
            assert state[row["version"]] == row["from"]
            state[row["version"]] = row["to"]
    assert state == frame.set_index("version")["stage"].to_dict()
    # concurrent registers get distinct version numbers
    assert sorted(reg.models("other").version) == list(range(1, 2 * rounds + 1))


def test_import_registry_stays_light():
    code = (
        "import sys, nbops.registry, nbops.modelfile; "
        "heavy = [m for m in ('pandas', 'sklearn', 'skops', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
