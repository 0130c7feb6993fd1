"""Model files are written in the background; long cells get system metrics. Real
kernels; the writer is held busy with a job of the test's own to see the in-between."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT, Kernel

SETUP = """
import threading, json, nbops
from nbops.tracking import background
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
"""

HOLD = "gate = threading.Event()\nbackground.submit('hold', gate.wait)\n"


def stored(k, run_id: str) -> dict:
    """The run as the store has it now, read in the kernel without waiting for writes."""
    res = k.run(
        "from nbops.store import get_store as _gs\n"
        f"print(json.dumps(_gs().get_run({run_id!r}), default=str))",
        timeout=30,
    )
    assert res["status"] == "ok", res
    return json.loads(res["text"].strip().splitlines()[-1])


def newest_id(k) -> str:
    res = k.run("print(nbops.run_page(limit=1)['runs'][0]['run_id'])", timeout=30)
    return res["text"].strip()


@pytest.fixture(scope="module")
def k(kernel):
    assert kernel.run(SETUP)["status"] == "ok"
    return kernel


@pytest.fixture
def hold(k):
    """The writer is busy with a job that waits for ``gate``; set at the end whatever
    happened, so the next test starts with a free writer."""
    assert k.run(HOLD)["status"] == "ok"
    yield
    k.run("gate.set()", timeout=30)


def test_cell_returns_before_the_model_file_is_written_and_get_run_waits(k, hold):
    res = k.run("%%track -q -n bg\nclf = LogisticRegression(max_iter=500).fit(X, y)\n")
    assert res["status"] == "ok", res
    run_id = newest_id(k)
    pending = stored(k, run_id)
    assert pending["status"] == "RUNNING" and pending["models_pending"] == ["clf"]
    assert not pending.get("models")
    res = k.run(
        f"gate.set()\nr = nbops.get_run({run_id!r})\n"
        "print(r['status'], [m['name'] for m in r['models']], r['models_pending'])",
        timeout=60,
    )
    assert res["text"].split("\n")[0] == "FINISHED ['clf'] []"


def test_the_model_is_the_one_the_cell_ended_with(k, hold):
    assert (
        k.run("%%track -q -n snap\nsnap = LogisticRegression(C=0.5).fit(X, y)\n")["status"] == "ok"
    )
    run_id = newest_id(k)
    k.run("snap.set_params(C=99.0)")  # the next cell changes the model
    res = k.run(
        f"gate.set()\nimport nbops.registry\n"
        f"nbops.register({run_id!r}, 'snapshot')\n"
        "print(nbops.load_model('snapshot').C)",
        timeout=60,
    )
    assert res["status"] == "ok", res
    assert res["text"].strip() == "0.5"


def test_nbops_flush_waits_for_every_write(k, hold):
    assert (
        k.run("%%track -q -n flushed\nf = LogisticRegression(max_iter=500).fit(X, y)\n")["status"]
        == "ok"
    )
    run_id = newest_id(k)
    res = k.run("threading.Timer(0.3, gate.set).start()\n%nbops flush", timeout=60)
    assert res["status"] == "ok", res
    assert stored(k, run_id)["status"] == "FINISHED"


def test_a_kernel_dying_mid_write_leaves_the_run_saying_the_model_is_missing(tmp_path):
    env = {**os.environ, "NBOPS_STORE": str(tmp_path / "store"), "PYTHONPATH": str(ROOT / "src")}
    k = Kernel(tmp_path, env)
    try:
        assert k.run("%load_ext nbops")["status"] == "ok"
        assert k.run(SETUP + HOLD)["status"] == "ok"
        res = k.run("%%track -q -n dies\nclf = LogisticRegression(max_iter=500).fit(X, y)\n")
        assert res["status"] == "ok", res
        run_id = newest_id(k)
    finally:
        k.km.shutdown_kernel(now=True)  # killed: no atexit, the writer dies mid-job
        k.kc.stop_channels()
    import nbops
    from nbops.store import get_store

    nbops.set_store(tmp_path / "store")
    try:
        run = get_store().get_run(run_id)
    finally:
        nbops.set_store(None)
    # RUNNING as written; the store may report a run of a dead process as KILLED
    assert run["status"] in ("RUNNING", "KILLED") and run["models_pending"] == ["clf"]
    assert not run.get("models") and not any(a["kind"] == "model" for a in run["artifacts"])


def test_short_cell_gets_no_system_metrics(k):
    res = k.run("%%track -q -n short\nimport time\ntime.sleep(0.05)\n")
    assert res["status"] == "ok"
    run = stored(k, newest_id(k))
    assert not [m for m in run["metrics"] if m.startswith("system.")]


def test_long_cell_samples_cpu_and_memory_into_step_metrics(k):
    k.run(
        "import os\nos.environ['NBOPS_SYSMETRICS_AFTER'] = '0.2'\n"
        "os.environ['NBOPS_SYSMETRICS_EVERY'] = '0.2'"
    )
    try:
        res = k.run("%%track -q -n long\nimport time\ntime.sleep(1.2)\n", timeout=30)
    finally:
        k.run("del os.environ['NBOPS_SYSMETRICS_AFTER'], os.environ['NBOPS_SYSMETRICS_EVERY']")
    assert res["status"] == "ok"
    run_id = newest_id(k)
    res = k.run(
        f"h = nbops.metric_history({run_id!r}, 'system.memory_mb')\n"
        "print(json.dumps([len(h), float(h['value'].min())]))"
    )
    assert res["status"] == "ok", res
    steps, low = json.loads(res["text"])
    assert steps >= 3 and low > 10  # a Python process with numpy holds more than 10 MB
    assert "system.cpu_percent" in stored(k, run_id)["metrics"]


def test_gpu_use_is_sampled_through_nvidia_ml_py(monkeypatch):
    """The NVIDIA driver is outside this machine: a stand-in pynvml answers for one GPU."""
    import sys
    import types

    from nbops.tracking import sysmetrics

    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"
    fake.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=37, memory=5)
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=3 * 2**30)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sample = sysmetrics._Sampler().sample()
    assert sample["system.gpu_percent"] == 37.0 and sample["system.gpu_memory_mb"] == 3072
    assert sample["system.memory_mb"] > 10


def test_a_kernel_shutdown_waits_for_the_model_files(tmp_path):
    env = {**os.environ, "NBOPS_STORE": str(tmp_path / "store"), "PYTHONPATH": str(ROOT / "src")}
    k = Kernel(tmp_path, env)
    try:
        assert k.run("%load_ext nbops")["status"] == "ok"
        slow = "import time\nbackground.submit('slow', lambda: time.sleep(1.0))\n"
        assert k.run(SETUP + slow)["status"] == "ok"
        res = k.run("%%track -q -n shut\nclf = LogisticRegression(max_iter=500).fit(X, y)\n")
        assert res["status"] == "ok", res
        run_id = newest_id(k)
    finally:
        k.kc.stop_channels()
        k.km.shutdown_kernel(now=False)  # a normal shutdown: the kernel exits after its writes
    import nbops
    from nbops.store import get_store

    nbops.set_store(tmp_path / "store")
    try:
        run = get_store().get_run(run_id)
    finally:
        nbops.set_store(None)
    assert run["status"] == "FINISHED" and run["models_pending"] == []
    assert [m["name"] for m in run["models"]] == ["clf"]
