"""The Python tracking API: start_run, log_*, runs(), get_run(), metric_history()."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

import nbops
from nbops import NbopsError, RunNotFoundError


def test_run_context_records_params_metrics_tags_and_status(store):
    with nbops.start_run(name="rf", experiment="wine", tags={"team": "a"}) as run:
        nbops.log_params({"max_depth": 3, "criterion": "gini"})
        nbops.log_metric("accuracy", 0.93)
        nbops.set_tag("stage", "dev")
    rec = nbops.get_run(run.run_id)
    assert rec["status"] == "FINISHED" and rec["name"] == "rf" and rec["experiment"] == "wine"
    assert rec["params"] == {"max_depth": 3, "criterion": "gini"}
    assert rec["metrics"] == {"accuracy": 0.93}
    assert rec["tags"] == {"team": "a", "stage": "dev"}
    assert rec["duration"] >= 0 and rec["end_time"] >= rec["start_time"]
    assert rec["env"]["python"].count(".") == 2


def test_exception_in_run_records_failed_and_propagates(store):
    with pytest.raises(ZeroDivisionError):
        with nbops.start_run() as run:
            1 / 0  # noqa: B018
    rec = nbops.get_run(run.run_id)
    assert rec["status"] == "FAILED" and rec["error"]["type"] == "ZeroDivisionError"


def test_keyboard_interrupt_records_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with nbops.start_run() as run:
            raise KeyboardInterrupt
    assert nbops.get_run(run.run_id)["status"] == "KILLED"


def test_step_metrics_are_one_document_per_run_and_key(store):
    with nbops.start_run() as run:
        for step in range(2500):
            nbops.log_metric("loss", 1.0 / (step + 1), step=step)
        nbops.log_metric("acc", 0.5)
    from nbops.store import get_store

    docs = get_store().metric_steps.all()
    assert len(docs) == 1 and len(docs[0]["values"]) == 2500
    hist = nbops.metric_history(run.run_id, "loss")
    assert list(hist.columns) == ["step", "value", "timestamp"]
    assert len(hist) == 2500 and hist["value"].iloc[-1] == pytest.approx(1 / 2500)
    assert nbops.get_run(run.run_id)["metrics"]["loss"] == pytest.approx(1 / 2500)
    assert nbops.metric_history(run.run_id, "acc")["value"].tolist() == [0.5]


def test_repeated_metric_without_step_builds_history(store):
    with nbops.start_run() as run:
        for v in (0.1, 0.2, 0.3):
            nbops.log_metric("m", v)
    hist = nbops.metric_history(run.run_id, "m")
    assert hist["step"].tolist() == [0, 1, 2] and hist["value"].tolist() == [0.1, 0.2, 0.3]


def test_nan_and_inf_metrics_round_trip(store):
    with nbops.start_run() as run:
        nbops.log_metrics({"nan": float("nan"), "inf": float("inf")})
        nbops.log_metric("curve", float("nan"), step=0)
    rec = nbops.get_run(run.run_id)
    assert math.isnan(rec["metrics"]["nan"]) and rec["metrics"]["inf"] == float("inf")
    assert math.isnan(nbops.metric_history(run.run_id, "curve")["value"][0])


def test_non_json_param_is_stored_as_repr_with_warning(store):
    class Thing:
        def __repr__(self):
            return "<Thing 7>"

    with nbops.start_run() as run:
        with pytest.warns(UserWarning, match="'obj'.*repr"):
            nbops.log_param("obj", Thing())
    assert nbops.get_run(run.run_id)["params"]["obj"] == "<Thing 7>"


def test_changing_a_logged_param_is_refused(store):
    with nbops.start_run():
        nbops.log_param("lr", 0.1)
        nbops.log_param("lr", 0.1)  # same value is fine
        with pytest.raises(NbopsError, match="'lr'.*already 0.1"):
            nbops.log_param("lr", 0.2)


def test_non_numeric_metric_is_a_clear_error(store):
    with nbops.start_run():
        with pytest.raises(NbopsError, match="not a number"):
            nbops.log_metric("acc", "high")


def test_logging_without_an_active_run_says_how_to_start_one(store):
    with pytest.raises(NbopsError, match="start_run"):
        nbops.log_metric("acc", 1.0)


def test_unknown_run_id_is_named(store):
    with pytest.raises(RunNotFoundError, match="'deadbeef'"):
        nbops.get_run("deadbeef")
    with pytest.raises(RunNotFoundError, match="'deadbeef'"):
        nbops.metric_history("deadbeef", "m")


def test_unknown_metric_lists_known_ones(store):
    with nbops.start_run() as run:
        nbops.log_metric("acc", 1)
    with pytest.raises(NbopsError, match=r"no metric 'loss'.*\['acc'\]"):
        nbops.metric_history(run.run_id, "loss")


def test_log_artifact_stores_file_by_hash(store, tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("abc")
    with nbops.start_run() as run:
        rec = nbops.log_artifact(f)
        f.write_text("other")
        with pytest.warns(UserWarning, match="report-1.txt"):
            second = nbops.log_artifact(f)
    assert rec["name"] == "report.txt" and rec["size"] == 3 and len(rec["sha256"]) == 64
    assert second["name"] == "report-1.txt"  # the first file is not overwritten
    names = [a["name"] for a in nbops.get_run(run.run_id)["artifacts"]]
    assert names == ["report.txt", "report-1.txt"]


def test_runs_dataframe_columns_filters_and_order(store):
    for i, exp in enumerate(["a", "a", "b"]):
        with nbops.start_run(name=f"r{i}", experiment=exp, tags={"k": i}):
            nbops.log_param("i", i)
            nbops.log_metric("score", i / 10)
    frame = nbops.runs()
    assert frame["name"].tolist() == ["r2", "r1", "r0"]  # newest first
    for col in [
        "run_id",
        "name",
        "experiment",
        "status",
        "start_time",
        "duration",
        "params.i",
        "metrics.score",
        "tags.k",
    ]:
        assert col in frame.columns
    assert nbops.runs(experiment="a")["name"].tolist() == ["r1", "r0"]
    assert nbops.runs(filter="`metrics.score` > 0.05")["name"].tolist() == ["r2", "r1"]
    assert nbops.runs(status="FAILED").empty
    with pytest.raises(NbopsError, match="unknown status"):
        nbops.runs(status="DONE")
    with pytest.raises(NbopsError, match="cannot apply filter"):
        nbops.runs(filter="`metrics.nope` >")


def test_runs_on_empty_store_is_empty_frame(store):
    frame = nbops.runs()
    assert frame.empty and "run_id" in frame.columns


def test_script_run_without_end_is_finished_at_exit(store):
    code = "import nbops\nr = nbops.start_run(name='script')\nnbops.log_metric('m', 1)\nprint(r.run_id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rec = nbops.get_run(out.stdout.strip())
    assert rec["status"] == "FINISHED" and rec["metrics"] == {"m": 1}


def test_set_store_switches_folder(tmp_path, store):
    other = tmp_path / "other"
    assert nbops.set_store(other) == other.resolve()
    with nbops.start_run() as run:
        pass
    assert nbops.get_store_path() == other.resolve()
    nbops.set_store(None)
    with pytest.raises(RunNotFoundError):
        nbops.get_run(run.run_id)


def test_nearest_store_folder_upward_is_used(tmp_path, monkeypatch):
    from nbops import _config

    monkeypatch.delenv("NBOPS_STORE", raising=False)
    (tmp_path / ".nbops").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert _config.store_path() == (tmp_path / ".nbops").resolve()
    monkeypatch.chdir(tmp_path.parent)
    assert _config.store_path() == (tmp_path.parent / ".nbops").resolve()


def test_runs_sees_runs_written_by_another_process(store):
    with nbops.start_run(name="here"):
        pass
    assert len(nbops.runs()) == 1
    code = "import nbops\nwith nbops.start_run(name='there'):\n    pass"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert sorted(nbops.runs()["name"]) == ["here", "there"]


def test_set_run_tags_changes_tags_of_a_finished_run(store):
    with nbops.start_run(tags={"a": 1}) as run:
        pass
    assert nbops.set_run_tags(run.run_id, {"best": True}) == {"a": "1", "best": "True"}
    assert nbops.get_run(run.run_id)["tags"] == {"a": "1", "best": "True"}
    with pytest.raises(RunNotFoundError):
        nbops.set_run_tags("nope", {"x": 1})


def test_subpackages_are_reachable_after_plain_import():
    code = (
        "import sys, nbops\nassert callable(nbops.registry.transition)\n"
        "assert callable(nbops.evaluation.diff)\nprint('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # reaching them stays lazy


# -- bad input ----------------------------------------------------------------------------


def test_a_param_changing_type_is_refused_like_any_change(store):
    with nbops.start_run(capture_env=False):
        nbops.log_param("p", 1)
        nbops.log_param("p", 1)  # the same value again is fine
        with pytest.raises(NbopsError, match="'p'.*already 1.*cannot change to True"):
            nbops.log_param("p", True)
        with pytest.raises(NbopsError, match="cannot change to 1.0"):
            nbops.log_param("p", 1.0)


@pytest.mark.parametrize("step", [1.7, "x", True, float("nan")])
def test_steps_are_integers(store, step):
    with nbops.start_run(capture_env=False):
        with pytest.raises(NbopsError, match="step .* of metric 'loss'"):
            nbops.log_metric("loss", 0.5, step=step)


def test_integral_float_steps_are_stored_as_integers(store):
    with nbops.start_run(capture_env=False) as run:
        nbops.log_metric("loss", 0.5, step=2.0)
    assert nbops.metric_history(run.run_id, "loss")["step"].tolist() == [2]


@pytest.mark.parametrize("name", ["", "a\x00b", "tab\there", "new\nline", "x" * 251, 5])
def test_metric_param_and_tag_names_are_validated(store, name):
    with nbops.start_run(capture_env=False):
        for log in (
            lambda: nbops.log_metric(name, 1.0),
            lambda: nbops.log_param(name, 1),
            lambda: nbops.set_tag(name, "v"),
        ):
            with pytest.raises(NbopsError, match="name"):
                log()


def test_names_up_to_250_characters_are_kept(store):
    with nbops.start_run(capture_env=False) as run:
        nbops.log_metric("m" * 250, 1.0)
    assert "m" * 250 in nbops.get_run(run.run_id)["metrics"]


def test_nested_runs_record_their_parent(store):
    with nbops.start_run(name="outer", capture_env=False) as outer:
        with nbops.start_run(name="inner", capture_env=False) as inner:
            pass
    assert nbops.get_run(inner.run_id)["parent_id"] == outer.run_id
    assert nbops.get_run(outer.run_id)["parent_id"] is None


def test_an_over_long_artifact_path_is_an_artifact_error(store):
    with nbops.start_run(capture_env=False):
        with pytest.raises(nbops.ArtifactError, match="artifact path"):
            nbops.log_artifact("/tmp/" + "d" * 300 + "/f.txt")
        with pytest.raises(nbops.ArtifactError, match="too long"):
            nbops.log_artifact("/tmp/" + "x" * 5000)
        with pytest.raises(nbops.ArtifactError, match="too long"):
            nbops.active_run().log_artifact_bytes(b"x", name="d/" * 600 + "f")


# -- run ids by prefix ----------------------------------------------------------------------


def test_api_functions_take_a_unique_run_id_prefix(store):
    with nbops.start_run(capture_env=False) as run:
        nbops.log_metric("loss", 0.5, step=0)
    prefix = run.run_id[:7]
    assert nbops.get_run(prefix)["run_id"] == run.run_id
    assert len(nbops.metric_history(prefix, "loss")) == 1
    assert nbops.set_run_tags(prefix, {"best": "yes"})["best"] == "yes"
    assert nbops.run_page(parent=prefix)["total"] == 0


def test_an_ambiguous_prefix_lists_the_candidates(store):
    from nbops.store import get_store

    get_store().insert_run({"run_id": "abcdef000001", "name": "a"})
    get_store().insert_run({"run_id": "abcdef000002", "name": "b"})
    with pytest.raises(nbops.RunNotFoundError, match="ambiguous.*abcdef000001, abcdef000002"):
        nbops.get_run("abcdef")
    assert nbops.get_run("abcdef000002")["name"] == "b"
