"""The store as it grows: writes cost what changed, environments are stored once, the
runs() frame follows writes instead of being rebuilt, compaction runs under writers,
and runs of writers that died read as KILLED."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd

import nbops
from nbops.store import Store
from nbops.store.frame import from_docs


def _size(store):
    return os.path.getsize(store / "nbops.db")


def test_step_flushes_do_not_write_a_big_param_again(store):
    with nbops.start_run(capture_env=False) as run:
        nbops.log_param("blob", "b" * 1_000_000)
        run.flush()
        after_param = _size(store)
        for step in range(5000):
            nbops.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 500 == 499:
                run.flush()
    grown = _size(store) - after_param
    assert grown < 300_000  # 5,000 steps and 10 flushes; the 1 MB param is written once


def test_an_update_writes_only_the_fields_that_changed(store):
    with nbops.start_run(capture_env=False) as run:
        nbops.log_params({f"p{i}": "v" * 1000 for i in range(20)})
        run.flush()
        before = _size(store)
        nbops.log_metric("acc", 0.9)
        run.flush()
    assert _size(store) - before < 300  # one metric, not 20 kB of params again


def test_the_environment_is_stored_once_for_many_runs(store):
    for i in range(5):
        with nbops.start_run(name=f"r{i}"):
            pass
    log = (store / "nbops.db").read_bytes()
    assert log.count(b'"python":') == 1
    env = nbops.get_run(nbops.runs()["run_id"][0])["env"]
    assert env["python"] and isinstance(env["packages"], dict)
    listed = Store(store).all_runs()[0]  # the listing carries them too
    assert listed["env"] == env and "env_ref" not in listed


def test_runs_after_a_write_is_patched_and_matches_a_fresh_build(store):
    runs = []
    for i in range(6):
        with nbops.start_run(
            name=f"r{i}", experiment="e" if i % 2 else "f", capture_env=False
        ) as run:
            nbops.log_params({"i": i, "kind": "odd" if i % 2 else "even"})
            nbops.log_metric("acc", i / 10)
        runs.append(run.run_id)
    first = nbops.runs()
    assert len(first) == 6
    nbops.set_run_tags(runs[2], {"best": "yes"})
    with nbops.start_run(name="new", capture_env=False):
        nbops.log_metric("acc", 0.5)
        nbops.log_param("extra", [1, 2])
    patched = nbops.runs()
    assert patched["name"].iloc[0] == "new" and len(patched) == 7
    assert patched.set_index("run_id").loc[runs[2], "tags.best"] == "yes"
    docs = Store(store).storage.live_table("runs")
    rebuilt = from_docs(docs)
    for col in ("name", "status", "params.i", "params.extra", "metrics.acc", "tags.best"):
        a = patched.set_index("run_id")[col].sort_index()
        b = rebuilt.set_index("run_id")[col].sort_index()
        a, b = a.astype(object), b.astype(object)
        a, b = a.where(a.notna(), None), b.where(b.notna(), None)  # missing is missing
        pd.testing.assert_series_equal(a, b, check_names=False)
    from nbops.store import get_store

    get_store().runs.remove(doc_ids=[get_store().run_doc_id(runs[0])])  # a row goes
    get_store().update_run(runs[1], {"status": "KILLED"})  # a row changes
    again = nbops.runs().set_index("run_id")
    assert runs[0] not in again.index and len(again) == 6
    assert again.loc[runs[1], "status"] == "KILLED" and again.loc[runs[2], "tags.best"] == "yes"


def test_a_fresh_process_lists_from_the_cache_and_the_log_tail(store):
    for i in range(3):
        with nbops.start_run(name=f"r{i}", capture_env=False):
            nbops.log_metric("acc", i)
    Store(store).compact()  # writes the snapshot and the runs cache
    with nbops.start_run(name="after", capture_env=False):
        nbops.log_metric("acc", 9)
    assert (store / "nbops.frame").exists()
    code = f"import nbops; nbops.set_store({str(store)!r}); print(','.join(nbops.runs()['name']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "after,r2,r1,r0", out.stderr


def test_a_planted_cache_file_cannot_run_code(store, tmp_path):
    with nbops.start_run(name="r", capture_env=False):
        pass
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (store / "nbops.frame").write_bytes(
        pickle.dumps({"format": 1, "log": "x", "pos": 0, "frame": Evil()})
    )
    Store(store).compact()
    code = f"import nbops; nbops.set_store({str(store)!r}); print(len(nbops.runs()))"
    (store / "nbops.frame").write_bytes(
        pickle.dumps({"format": 1, "log": "x", "pos": 0, "frame": Evil()})
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr
    assert not marker.exists()


WRITER = textwrap.dedent(
    """
    import sys
    import nbops
    nbops.set_store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        with nbops.start_run(name=f"{sys.argv[2]}-{i}", capture_env=False) as run:
            nbops.log_params({"worker": sys.argv[2], "i": i, "pad": "x" * 2000})
            nbops.log_metric("m", i)
        print(run.run_id, flush=True)
    """
)


def test_compaction_under_four_writers_loses_nothing(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "NBOPS_COMPACT_BYTES": "60000"}  # compact every ~25 runs
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "s"), f"w{k}", "50"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(4)
    ]
    nbops.set_store(tmp_path / "s")
    seen = [0]
    try:
        while any(p.poll() is None for p in procs):  # a reader all along: never breaks
            count = len(nbops.runs())
            assert count >= seen[-1]
            seen.append(count)
    finally:
        nbops.set_store(None)
    acknowledged = set()
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0
        acknowledged.update(out.split())
    assert len(list((tmp_path / "s" / "snapshots").iterdir())) == 1  # compacted, old removed
    store = Store(tmp_path / "s")
    runs = {d["run_id"]: d for d in store.all_runs()}
    assert acknowledged == set(runs) and len(runs) == 200
    assert all(
        d["status"] == "FINISHED" and d["metrics"]["m"] == d["params"]["i"] for d in runs.values()
    )
    nbops.set_store(tmp_path / "s")
    try:
        assert len(nbops.runs()) == 200
    finally:
        nbops.set_store(None)


ORPHAN = textwrap.dedent(
    """
    import sys, time
    import nbops
    nbops.set_store(sys.argv[1])
    run = nbops.start_run(name="doomed", capture_env=False)
    print(run.run_id, flush=True)
    time.sleep(60)
    """
)


def test_a_run_whose_writer_was_killed_reads_as_killed(store, tmp_path):
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True
    )
    run_id = proc.stdout.readline().strip()
    assert nbops.get_run(run_id)["status"] == "RUNNING"  # alive: still running
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.1)  # liveness answers are cached for a second
    assert nbops.get_run(run_id)["status"] == "KILLED"
    assert nbops.runs().set_index("run_id").loc[run_id, "status"] == "KILLED"
    assert nbops.run_page()["runs"][0]["status"] == "KILLED"


def test_a_reused_pid_does_not_keep_a_run_running(store):
    from nbops.store.procs import host

    s = Store(store)
    s.insert_run(
        {"run_id": "a" * 12, "status": "RUNNING", "host": host(), "pid": 1, "proc": "00000000:1"}
    )  # pid 1 lives, but started at another time
    s.insert_run(
        {
            "run_id": "b" * 12,
            "status": "RUNNING",
            "host": "elsewhere",
            "pid": 1,
            "proc": "00000000:1",
        }
    )  # another host: nothing can be said
    assert s.get_run("a" * 12)["status"] == "KILLED"
    assert s.get_run("b" * 12)["status"] == "RUNNING"


def test_the_next_writer_removes_temp_files_of_dead_writers(store):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (store / "artifacts").mkdir(parents=True)
    leftover = store / "artifacts" / f".incoming-{dead.pid}-abc"
    leftover.write_bytes(b"half a file")
    mine = store / "artifacts" / f".incoming-{os.getpid()}-xyz"
    mine.write_bytes(b"being written")
    with nbops.start_run(capture_env=False):
        pass
    assert not leftover.exists() and mine.exists()


def test_one_run_is_read_without_loading_every_run(store):
    ids = []
    for i in range(30):
        with nbops.start_run(name=f"r{i}", capture_env=False) as run:
            nbops.log_metric("loss", i, step=0)
            nbops.log_metric("loss", i + 1, step=1)
        ids.append(run.run_id)
    Store(store).compact()
    with nbops.start_run(name="tail", capture_env=False) as run:
        pass
    fresh = Store(store)
    assert fresh.get_run(ids[7][:8])["name"] == "r7"  # from the snapshot, by prefix
    assert fresh.get_run(run.run_id)["name"] == "tail"  # from the log's tail
    assert fresh.get_steps(ids[3], "loss")["values"] == [3, 4]
    assert fresh.get_steps(ids[3], "nope") is None
    assert not fresh.storage.loaded("runs") and not fresh.storage.loaded("metric_steps")


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import nbops
    nbops.set_store(sys.argv[1])
    for i in range(100000):
        with nbops.start_run(name=f"r{i}", capture_env=False) as run:
            nbops.log_params({"i": i, "pad": "x" * 3000})
            nbops.log_metric("m", i)
        print(run.run_id, flush=True)
    """
)


def test_writers_killed_while_compacting_lose_no_acknowledged_run(tmp_path):
    import random

    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    env = {**os.environ, "NBOPS_COMPACT_BYTES": "30000"}  # compactions all the time
    rng = random.Random(3)
    acknowledged = set()
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "s")],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.time() + rng.uniform(0.8, 2.0)
        while time.time() < deadline and (line := proc.stdout.readline()):
            acknowledged.add(line.strip())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acknowledged.update(x.strip() for x in proc.stdout.read().splitlines() if x.strip())
    store = Store(tmp_path / "s")
    runs = {d["run_id"]: d for d in store.all_runs()}
    assert acknowledged <= set(runs) and len(acknowledged) > 50
    assert all(runs[r]["status"] == "FINISHED" for r in acknowledged)
    assert store.check()["healthy"]
    store.insert_run({"run_id": "f" * 12})  # the next writer cleans what the dead left
    assert not list((tmp_path / "s").glob(".nbops.db.*"))
    assert store.compact() and len(list((tmp_path / "s" / "snapshots").iterdir())) == 1
