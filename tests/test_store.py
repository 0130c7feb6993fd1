"""The store: TinyDB's API over an append-only log that is atomic, multi-process safe and
O(change) per write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
from tinydb import Query

from nbops import (
    ArtifactError,
    ModelIntegrityError,
    RunNotFoundError,
    StoreDamageWarning,
    StoreError,
)
from nbops.store import Store
from nbops.store.storage import LogStorage


def test_tinydb_api_works_over_the_log(tmp_path):
    db = Store(tmp_path).table("things")
    a = db.insert({"k": 1, "tag": "x"})
    db.insert_multiple([{"k": 2, "tag": "y"}, {"k": 3, "tag": "y"}])
    assert [d["k"] for d in db.search(Query().tag == "y")] == [2, 3]
    db.update({"tag": "z"}, Query().k == 2)
    db.update(lambda doc: doc.update(k=doc["k"] * 10), doc_ids=[a])
    assert db.get(doc_id=a)["k"] == 10
    db.upsert({"k": 4, "tag": "new"}, Query().k == 4)
    db.remove(Query().tag == "y")
    assert sorted(d["k"] for d in db.all()) == [2, 4, 10]
    again = Store(tmp_path).table("things")  # a second reader sees the same state
    assert sorted((d["k"], d["tag"]) for d in again.all()) == [(2, "z"), (4, "new"), (10, "x")]


def test_query_cache_sees_writes_from_another_process(tmp_path):
    table = Store(tmp_path).table("t")
    table.insert({"v": 1})
    assert len(table.search(Query().v == 2)) == 0  # cached now
    code = f"from nbops.store import Store; Store({str(tmp_path)!r}).table('t').insert({{'v': 2}})"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert len(table.search(Query().v == 2)) == 1


def test_a_write_appends_only_the_change(tmp_path):
    store = Store(tmp_path)
    runs = store.runs
    runs.insert_multiple({"run_id": f"r{i}", "payload": "x" * 200} for i in range(2000))
    size = os.path.getsize(tmp_path / "nbops.db")
    runs.update({"status": "FINISHED"}, doc_ids=[store.run_doc_id("r5")])
    grown = os.path.getsize(tmp_path / "nbops.db") - size
    assert 0 < grown < 100  # one small line, not a rewrite of 2000 documents


def test_nan_and_inf_round_trip(tmp_path):
    Store(tmp_path).runs.insert(
        {"run_id": "a", "metrics": {"n": float("nan"), "i": float("inf"), "m": float("-inf")}}
    )
    metrics = Store(tmp_path).get_run("a")["metrics"]
    assert metrics["n"] != metrics["n"] and metrics["i"] == float("inf")
    assert metrics["m"] == float("-inf")


def test_unknown_run_id_names_it(tmp_path):
    with pytest.raises(RunNotFoundError, match="'nope'"):
        Store(tmp_path).get_run("nope")


def test_damaged_line_is_named_skipped_and_never_overwritten(tmp_path):
    Store(tmp_path).runs.insert({"run_id": "a"})
    path = tmp_path / "nbops.db"
    with open(path, "ab") as fh:
        fh.write(b"{this is not json\n")
        fh.write(b'[["put","runs",2,{"run_id":"b"}]]\n')  # no checksum: not trusted
    before = path.read_bytes()
    with pytest.warns(StoreDamageWarning, match=r"nbops\.db line 3 \(byte \d+"):
        assert Store(tmp_path).get_run("a")["run_id"] == "a"
    with pytest.warns(StoreDamageWarning):
        Store(tmp_path).runs.insert({"run_id": "c"})
    assert path.read_bytes().startswith(before)  # appended after, nothing rewritten


def test_foreign_file_is_refused_not_overwritten(tmp_path):
    (tmp_path / "nbops.db").write_text('{"_default": {}}\n')
    with pytest.raises(StoreError, match="not an nbops store file"):
        Store(tmp_path).runs.insert({"run_id": "a"})
    assert (tmp_path / "nbops.db").read_text() == '{"_default": {}}\n'


def test_unfinished_last_line_is_ignored_and_repaired(tmp_path):
    Store(tmp_path).runs.insert({"run_id": "a"})
    with open(tmp_path / "nbops.db", "ab") as fh:
        fh.write(b'[["put","runs",2,{"run_id":"tor')  # a writer died mid-line
    store = Store(tmp_path)
    assert [d["run_id"] for d in store.all_runs()] == ["a"]
    store.runs.insert({"run_id": "b"})
    assert [d["run_id"] for d in Store(tmp_path).all_runs()] == ["a", "b"]


def test_compaction_keeps_every_document(tmp_path, monkeypatch):
    from nbops.store import storage

    monkeypatch.setattr(storage, "COMPACT_MIN_BYTES", 100_000)
    store = Store(tmp_path)
    doc_id = store.runs.insert({"run_id": "a", "n": 0})
    for i in range(6000):  # many updates of one doc trigger a compaction
        store.runs.update({"n": i + 1}, doc_ids=[doc_id])
    store.runs.insert({"run_id": "b"})
    lines = (tmp_path / "nbops.db").read_bytes().count(b"\n")
    assert lines < 3000  # 6001 writes, compacted as the log outgrew 100 kB
    fresh = Store(tmp_path)
    assert fresh.get_run("a")["n"] == 6000 and fresh.get_run("b")
    assert store.get_run("a")["n"] == 6000


WRITER = textwrap.dedent(
    """
    import sys
    import nbops
    nbops.set_store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        with nbops.start_run(name=f"{sys.argv[2]}-{i}", capture_env=False) as run:
            nbops.log_params({"worker": sys.argv[2], "i": i})
            nbops.log_metric("m", i)
        print(run.run_id, flush=True)
    """
)


def test_several_processes_writing_lose_nothing(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "s"), f"w{k}", "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    acknowledged = set()
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        acknowledged.update(out.split())
    store = Store(tmp_path / "s")
    runs = {d["run_id"]: d for d in store.all_runs()}
    assert len(acknowledged) == 240 and acknowledged == set(runs)
    assert all(d["status"] == "FINISHED" and "m" in d["metrics"] for d in runs.values())
    ids = [int(i) for i in store.storage.live_table("runs")]
    assert len(ids) == len(set(ids)) == 240


def test_writer_killed_mid_stream_leaves_readable_store_with_acknowledged_runs(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "s"), "w", "100000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged = []
    deadline = time.time() + 60
    while len(acknowledged) < 300 and time.time() < deadline:
        acknowledged.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acknowledged += [line.strip() for line in proc.stdout.read().splitlines()]
    store = Store(tmp_path / "s")
    finished = {d["run_id"] for d in store.all_runs() if d["status"] == "FINISHED"}
    assert set(filter(None, acknowledged)) <= finished
    store.runs.insert({"run_id": "after-crash"})  # and it stays writable
    assert Store(tmp_path / "s").get_run("after-crash")


def test_store_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        Store(tmp_path / "f")


def test_unwritable_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        folder = tmp_path / "f" / "store"
        (tmp_path / "f").write_text("x")  # a parent that is a file: not creatable even as root
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o500)
    with pytest.raises(StoreError, match="writable folder"):
        LogStorage(folder / "nbops.db")


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "a/../../b", "C:\\x", "", "a\x00b"])
def test_artifact_names_that_escape_the_store_are_refused(tmp_path, name):
    from nbops.store import safe_name

    with pytest.raises(ArtifactError):
        safe_name(name)


def test_artifacts_are_content_addressed_and_verified(tmp_path):
    store = Store(tmp_path)
    src = tmp_path / "a.txt"
    src.write_text("hello")
    sha, size = store.artifacts.put_file(src)
    assert size == 5 and store.artifacts.put_file(src) == (sha, 5)
    path = store.artifacts.verify(sha)
    assert path.read_text() == "hello"
    os.chmod(path, 0o644)
    path.write_text("tampered")
    with pytest.raises(ModelIntegrityError, match="was changed after it was stored"):
        store.artifacts.verify(sha)


def test_a_failed_transaction_leaves_no_trace_in_memory_or_on_disk(tmp_path):
    store = Store(tmp_path)
    store.runs.insert({"run_id": "kept"})
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.runs.insert({"run_id": "ghost"})
            raise RuntimeError("abort")
    assert [d["run_id"] for d in store.all_runs()] == ["kept"]
    assert store.runs.doc_id_of("run_id", "ghost") is None
    assert [d["run_id"] for d in Store(tmp_path).all_runs()] == ["kept"]
    store.runs.insert({"run_id": "next"})  # ids stay consistent afterwards
    assert [d["run_id"] for d in Store(tmp_path).all_runs()] == ["kept", "next"]


def test_a_format_1_store_is_read_and_converted_by_the_next_write(tmp_path):
    (tmp_path / "nbops.db").write_bytes(
        b'{"nbops_store": 1}\n'
        b'[["put","runs",1,{"run_id":"old1","status":"FINISHED","params":{"a":1}}]]\n'
        b'[["upd","runs",1,{"status":"FAILED"}]]\n'
    )
    assert Store(tmp_path).get_run("old1")["status"] == "FAILED"
    Store(tmp_path).insert_run({"run_id": "new1", "name": "after"})
    assert (tmp_path / "nbops.db").read_bytes().startswith(b'{"nbops_store":2')
    fresh = Store(tmp_path)
    assert fresh.get_run("old1")["params"] == {"a": 1} and fresh.get_run("new1")
    assert fresh.check()["healthy"]


def test_a_last_line_that_lost_only_its_newline_is_kept(tmp_path):
    store = Store(tmp_path)
    store.insert_run({"run_id": "a" * 12, "name": "first"})
    store.insert_run({"run_id": "b" * 12, "name": "last"})
    path = tmp_path / "nbops.db"
    path.write_bytes(path.read_bytes()[:-1])  # the final newline flipped away
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is damaged: no warning
        assert [r["name"] for r in Store(tmp_path).all_runs()] == ["first", "last"]
    Store(tmp_path).insert_run({"run_id": "c" * 12, "name": "next"})
    fresh = Store(tmp_path)
    assert [r["name"] for r in fresh.all_runs()] == ["first", "last", "next"]
    assert fresh.check()["healthy"]
