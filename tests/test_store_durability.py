"""The store under real faults: a full disk, foreign files, flipped bytes, a held lock.
An acknowledged write is on disk or it raised; damage is named, never read as data."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
from conftest import needs

import nbops
from nbops import NbopsError, StoreDamageWarning, StoreError
from nbops.store import Store

# -- a small disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB tmpfs mounted for this test (needs root; skipped elsewhere, outside CI)."""
    needs(
        os.geteuid() == 0 and shutil.which("mount") is not None,
        "mounting a small tmpfs for the full-disk tests needs root",
    )
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True
    )
    needs(done.returncode == 0, f"cannot mount a tmpfs here: {done.stderr.decode()[:200]}")
    yield mnt
    nbops.set_store(None)
    subprocess.run(["umount", "-l", str(mnt)], check=False)


class Filler:
    """Fills a disk to the last byte; ``free()`` gives the space back."""

    def __init__(self, folder):
        self.path = folder / "filler"
        self.fh = open(self.path, "wb", buffering=0)  # noqa: SIM115 - kept open until free()
        try:
            while True:
                self.fh.write(b"x" * 4096)
        except OSError:
            pass
        try:
            while True:
                self.fh.write(b"x")
        except OSError:
            pass

    def free(self):
        self.fh.close()
        self.path.unlink()


def _lines_all_intact(path) -> bool:
    data = path.read_bytes()
    return data.endswith(b"\n") and Store(path.parent).check()["healthy"]


def test_full_disk_end_raises_and_leaves_the_file_at_its_last_transaction(small_disk):
    nbops.set_store(small_disk / "s")
    run = nbops.start_run(name="big", capture_env=False)
    log = small_disk / "s" / "nbops.db"
    before = log.read_bytes()
    filler = Filler(small_disk)
    run.log_param("blob", "y" * 50_000)
    with pytest.raises(StoreError, match="No space left.*cut back"):
        run.end()
    assert log.read_bytes() == before and _lines_all_intact(log)
    code = (
        f"import nbops; nbops.set_store({str(small_disk / 's')!r}); "
        f"print(nbops.get_run({run.run_id!r})['status'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "RUNNING", out.stderr  # never half-written
    filler.free()
    nbops.end_run()  # the retry writes everything the run buffered
    assert nbops.get_run(run.run_id)["params"]["blob"] == "y" * 50_000
    assert _lines_all_intact(log)


def test_full_disk_in_a_failing_cell_keeps_the_users_exception_and_every_step(small_disk):
    nbops.set_store(small_disk / "s")
    filler = None
    with pytest.raises(ZeroDivisionError), pytest.warns(UserWarning, match="could not be saved"):
        with nbops.start_run(name="cell", capture_env=False) as run:
            for step in range(50):
                nbops.log_metric("loss", 1 / (step + 1), step=step)
            nbops.log_param("notes", "n" * 20_000)
            filler = Filler(small_disk)
            1 / 0  # noqa: B018 - the user's own error
    with pytest.raises(NbopsError, match="no active run"):
        nbops.log_metric("outside", 1.0)  # nothing outside a run goes into it
    filler.free()
    nbops.end_run()
    doc = nbops.get_run(run.run_id)
    assert doc["status"] == "FAILED" and doc["error"]["type"] == "ZeroDivisionError"
    assert len(nbops.metric_history(run.run_id, "loss")) == 50
    assert "outside" not in doc["metrics"]


def test_a_short_write_by_another_process_is_never_seen_by_readers(small_disk):
    store = Store(small_disk / "s")
    store.insert_run({"run_id": "a" * 12, "name": "kept"})
    filler = Filler(small_disk)
    with pytest.raises(StoreError):
        store.insert_run({"run_id": "b" * 12, "name": "x" * 30_000})
    filler.free()
    store.insert_run({"run_id": "c" * 12, "name": "after"})
    other = Store(small_disk / "s")  # as another process would
    assert [r["name"] for r in other.all_runs()] == ["kept", "after"]
    assert other.check()["healthy"]


# -- files nbops did not write -----------------------------------------------------------

FOREIGN = {
    "tinydb": b'{"_default": {"1": {"run_id": "x", "name": "mine"}}}',
    "no newline": b"some notes without a line break",
    "header only": b'{"nbops_store": 1}',
    "empty": b"",
    "binary": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_foreign_file_is_refused_and_left_byte_identical(store, kind):
    store.mkdir()
    path = store / "nbops.db"
    path.write_bytes(FOREIGN[kind])
    with pytest.raises(StoreError, match=r"nbops\.db is not an nbops store file"):
        nbops.runs()
    with pytest.raises(StoreError, match="not an nbops store file"):
        nbops.start_run(capture_env=False).end()
    assert path.read_bytes() == FOREIGN[kind]


def test_import_tinydb_brings_runs_in_and_leaves_the_file(tmp_path, store):
    src = tmp_path / "old.json"
    src.write_text(
        json.dumps(
            {
                "_default": {
                    "1": {
                        "run_id": "abc123abc123",
                        "name": "old",
                        "status": "FINISHED",
                        "params": {"a": 1},
                    }
                },
                "notes": {"1": {"text": "hi"}},
            }
        )
    )
    before = src.read_bytes()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "store",
            "import-tinydb",
            str(src),
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "imported 2 document(s)" in out.stdout
    assert nbops.get_run("abc123")["params"] == {"a": 1}
    assert src.read_bytes() == before


# -- flipped bytes -----------------------------------------------------------------------


def _fill(path, n=12):
    nbops.set_store(path)
    ids = []
    for i in range(n):
        with nbops.start_run(name=f"r{i}", capture_env=False) as run:
            nbops.log_params({"i": i, "kind": "flip"})
            for step in range(3):
                nbops.log_metric("loss", 1.0 / (step + 1 + i), step=step)
        ids.append(run.run_id)
    nbops.set_store(None)
    return ids


def _read_all(path):
    store = Store(path)
    return {d["run_id"]: (d["status"], d["params"], d["metrics"]) for d in store.all_runs()}


def test_every_flipped_byte_is_detected_and_the_rest_still_reads(tmp_path):
    _fill(tmp_path / "s")
    log = tmp_path / "s" / "nbops.db"
    original = log.read_bytes()
    truth = _read_all(tmp_path / "s")
    rng = random.Random(7)
    silent, hidden = [], []
    for _ in range(200):
        pos = rng.randrange(len(original))
        data = bytearray(original)
        data[pos] ^= rng.randrange(1, 256)
        log.write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                seen = _read_all(tmp_path / "s")
            except StoreError:  # the header itself: named, nothing is read as other data
                continue
        damaged = any(issubclass(w.category, StoreDamageWarning) for w in caught)
        changed = {k for k in truth if seen.get(k) != truth[k]} | (set(seen) - set(truth))
        if changed and not damaged:
            silent.append(pos)
        if len(truth) - len(changed) < len(truth) - 2:
            hidden.append(pos)  # one damaged line may cost its own run, never the others
    log.write_bytes(original)
    assert silent == [] and hidden == [], (silent, hidden)


def test_a_last_line_whose_newline_was_damaged_warns_and_a_torn_one_does_not(tmp_path):
    _fill(tmp_path / "s", n=2)
    log = tmp_path / "s" / "nbops.db"
    original = log.read_bytes()
    assert original.endswith(b"\n")
    log.write_bytes(original[:-1] + b"\xf7")  # the newline itself flipped
    with pytest.warns(StoreDamageWarning, match="newline"):
        _read_all(tmp_path / "s")
    last = original[original.rfind(b"\n", 0, len(original) - 1) + 1 :]
    log.write_bytes(original[: -len(last)] + last[: len(last) // 2])  # a crash mid-write
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreDamageWarning)
        assert len(_read_all(tmp_path / "s")) == 2


def _cli(*args, store):
    return subprocess.run(
        [sys.executable, "-m", "nbops.cli", "store", *args, "--store", str(store)],
        capture_output=True,
        text=True,
    )


def test_check_names_damage_and_repair_quarantines_it_keeping_the_rest(tmp_path):
    ids = _fill(tmp_path / "s")
    log = tmp_path / "s" / "nbops.db"
    lines = log.read_bytes().split(b"\n")
    victim = next(i for i, line in enumerate(lines) if ids[3].encode() in line)
    lines[victim] = lines[victim].replace(b'"r3"', b'"R3"')  # one flipped letter
    log.write_bytes(b"\n".join(lines))
    damaged = log.read_bytes()
    out = _cli("check", store=tmp_path / "s")
    assert out.returncode == 1
    assert f"line {victim + 1} (byte" in out.stdout and f"run {ids[3]}" in out.stdout
    assert log.read_bytes() == damaged  # check never writes
    with pytest.raises(StoreError, match="repair"):
        Store(tmp_path / "s").compact()  # it would drop the damaged line for good
    out = _cli("repair", store=tmp_path / "s")
    assert out.returncode == 0 and "moved 1 damaged line" in out.stdout, out.stderr
    quarantined = list((tmp_path / "s" / "quarantine").glob("*.damaged"))
    assert quarantined and b'"R3"' in quarantined[0].read_bytes()
    assert _cli("check", store=tmp_path / "s").returncode == 0
    readable = _read_all(tmp_path / "s")
    assert set(ids) - {ids[3]} <= set(readable)
    assert Store(tmp_path / "s").compact()


# -- the lock ----------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from nbops.store import Store
    store = Store(sys.argv[1])
    with store.transaction():
        print("holding", flush=True)
        time.sleep(30)
    """
)


def test_lock_timeout_names_the_holder_and_never_advises_deleting_the_lock(tmp_path, monkeypatch):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "s")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv("NBOPS_LOCK_TIMEOUT", "0.3")
        start = time.monotonic()
        with pytest.raises(StoreError) as err:
            Store(tmp_path / "s").insert_run({"run_id": "a" * 12})
        assert time.monotonic() - start < 5
        message = str(err.value)
        assert f"pid {holder.pid} on host" in message and "since" in message
        assert "Do not delete the lock file" in message
        assert "delete that lock" not in message and "delete the lock file." not in message
    finally:
        holder.kill()
        holder.wait()
    Store(tmp_path / "s").insert_run({"run_id": "b" * 12})  # released when it died
