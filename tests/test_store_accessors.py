"""Typed accessors of the Store: every table is reachable without TinyDB tables or
private names, and what they return is safe to modify."""

from __future__ import annotations

import pytest

from nbops import RunNotFoundError, StoreError
from nbops.store import Store, copy_doc


def test_models_are_read_and_changed_by_name_and_version(tmp_path):
    store = Store(tmp_path)
    store.insert_model({"name": "tree", "version": 1, "stage": None})
    store.insert_model({"name": "tree", "version": 2, "stage": None})
    store.insert_model({"name": "app", "version": 1, "stage": None})
    assert store.model_names() == ["app", "tree"]
    assert [m["version"] for m in store.model_versions("tree")] == [1, 2]
    updated = store.update_model("tree", 2, {"stage": "Production"})
    assert updated["stage"] == "Production"
    assert Store(tmp_path).get_model("tree", 2)["stage"] == "Production"
    assert store.delete_model("tree", 1) and not store.delete_model("tree", 1)
    assert [m["version"] for m in Store(tmp_path).model_versions("tree")] == [2]


def test_a_model_version_is_recorded_once(tmp_path):
    store = Store(tmp_path)
    store.insert_model({"name": "tree", "version": 1})
    with pytest.raises(StoreError, match="already recorded"):
        store.insert_model({"name": "tree", "version": 1})


def test_events_and_datasets_accessors_list_in_order(tmp_path):
    store = Store(tmp_path)
    store.add_event({"action": "a"})
    store.add_event({"action": "b"})
    assert [e["action"] for e in Store(tmp_path).all_events()] == ["a", "b"]
    assert store.add_dataset({"digest": "d1", "name": "x"})
    assert not store.add_dataset({"digest": "d1", "name": "x"})
    store.insert_dataset({"digest": "d2", "name": "train", "version": 2})
    store.insert_dataset({"digest": "d3", "name": "train", "version": 1})
    assert [d["version"] for d in store.dataset_versions("train")] == [1, 2]
    assert len(store.all_datasets()) == 3


def test_alert_rules_accessors(tmp_path):
    store = Store(tmp_path)
    store.add_rule({"rule_id": "r1", "metric": "m"})
    store.add_rule({"rule_id": "r2", "metric": "n"})
    assert [r["rule_id"] for r in Store(tmp_path).rules()] == ["r1", "r2"]
    assert store.remove_rule("r1") and not store.remove_rule("r1")
    assert store.clear_rules() == 1 and store.rules() == []


def test_a_collection_keeps_records_of_a_new_feature_by_key(tmp_path):
    mappings = Store(tmp_path).collection("sync_mappings", key="run_id")
    mappings.insert({"run_id": "a", "remote": "1"})
    mappings.upsert({"run_id": "a", "remote": "2"})
    mappings.upsert({"run_id": "b", "remote": "3"})
    with pytest.raises(StoreError, match="exists already"):
        mappings.insert({"run_id": "b", "remote": "4"})
    again = Store(tmp_path).collection("sync_mappings", key="run_id")
    assert again.get("a")["remote"] == "2" and len(again) == 2
    assert again.update("b", {"remote": "5"})["remote"] == "5"
    assert [r["remote"] for r in again.find(remote="5")] == ["5"]
    assert again.remove("a") and again.clear() == 1 and again.all() == []


def test_records_returned_are_copies(tmp_path):
    store = Store(tmp_path)
    store.insert_run({"run_id": "abcdef123456", "params": {"a": 1}})
    doc = store.get_run("abcdef123456")
    doc["params"]["a"] = 99
    assert store.get_run("abcdef123456")["params"]["a"] == 1
    nested = {"x": [{"y": 1}]}
    assert copy_doc(nested) == nested and copy_doc(nested)["x"][0] is not nested["x"][0]


def test_run_ids_resolve_by_unique_prefix(tmp_path):
    store = Store(tmp_path)
    store.insert_run({"run_id": "abcdef123456"})
    store.insert_run({"run_id": "abcdef999999"})
    store.insert_run({"run_id": "123456abcdef"})
    assert store.get_run("123456")["run_id"] == "123456abcdef"
    assert store.resolve_run_id("abcdef1") == "abcdef123456"
    with pytest.raises(RunNotFoundError, match="ambiguous.*abcdef123456, abcdef999999"):
        store.get_run("abcdef")
    with pytest.raises(RunNotFoundError, match="at least 6 characters"):
        store.get_run("12345")
