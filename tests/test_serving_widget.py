"""The export widget and the CLI, driven as a user would: a real kernel, a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

SETUP = """
import nbops
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
X, y = load_wine(return_X_y=True, as_frame=True)
with nbops.start_run(name="w") as run:
    nbops.log_model(RandomForestClassifier(5, random_state=0).fit(X, y), signature=X)
nbops.register(run.run_id, "wine")
nbops.transition("wine", 1, "Production")
"""


def test_export_widget_exports_starts_counts_and_stops(kernel):
    assert kernel.run(SETUP)["status"] == "ok"
    code = """
import httpx
w = nbops.export_widget("wine", path="svc-widget")
display(w)
info = w.do_export()
svc = w.do_start()
body = {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:2].values.tolist()}}
for _ in range(3):
    httpx.post(svc.url + "/invocations", json=body)
counts = w.do_refresh()
url = svc.url
w.do_stop()
print(json.dumps({"v": info["version"], "counts": counts, "running": svc.running,
                  "sample": "curl" in w.sample.value, "status": w.status.value,
                  "start_disabled": w.start_button.disabled}))
"""
    res = kernel.run("import json\n" + code)
    assert res["status"] == "ok", res["error"]
    out = json.loads(res["text"].strip().splitlines()[-1])
    assert out["v"] == 1 and out["counts"]["/invocations 200"] == 3
    assert out["running"] is False and out["sample"] and "stopped" in out["status"]
    assert out["start_disabled"] is False
    assert any("application/vnd.jupyter.widget-view+json" in d for d in res["data"])


def test_export_widget_counts_stay_live_and_the_poller_stops(kernel):
    assert kernel.run(SETUP)["status"] == "ok"
    code = """
import httpx, time
w = nbops.export_widget("wine", path="svc-live", refresh_every=0.3)
display(w)
w.do_export()
svc = w.do_start()
body = {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:2].values.tolist()}}
for _ in range(4):
    httpx.post(svc.url + "/invocations", json=body)
deadline = time.monotonic() + 10
while "<td>/invocations 200</td><td>4</td>" not in w.counts.value and time.monotonic() < deadline:
    time.sleep(0.05)
live = w.counts.value  # nobody pressed Refresh
poller = w.poller
svc.stop()  # the service ends outside the widget: the poller notices and ends
poller.join(10)
first = {"live": live, "alive": poller.alive, "reason": poller.reason,
         "polls": poller.polls, "status": w.status.value, "stop": w.stop_button.disabled}
svc2 = w.do_start()
poller2 = w.poller
w.close()  # closing the widget ends its poller and its service
print(json.dumps({**first, "alive2": poller2.alive, "reason2": poller2.reason,
                  "running2": svc2.running}))
"""
    res = kernel.run("import json\n" + code)
    assert res["status"] == "ok", res["error"]
    out = json.loads(res["text"].strip().splitlines()[-1])
    assert "<td>/invocations 200</td><td>4</td>" in out["live"], out["live"]
    assert out["polls"] >= 2
    assert out["alive"] is False and out["reason"] == "service exited"
    assert "exited" in out["status"] and out["stop"] is True
    assert out["alive2"] is False and out["reason2"] == "stopped"
    assert out["running2"] is False


def test_counts_poller_ends_when_its_view_closes(store, tmp_path):
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    import nbops

    X, y = load_wine(return_X_y=True, as_frame=True)
    with nbops.start_run() as run:
        nbops.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), signature=X)
    nbops.register(run.run_id, "tree")
    info = nbops.export("tree", path=tmp_path / "svc")
    seen, open_ = [], [True]
    with nbops.start_service(info["path"]) as svc:
        poller = svc.watch(seen.append, interval=0.1, keep_going=lambda: open_[0])
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        open_[0] = False
        poller.join(5)
        assert not poller.alive and poller.reason == "closed"
        assert seen and svc.running  # the service itself is left running
    with pytest.raises(nbops.NbopsError, match="positive number of seconds"):
        nbops.serving.local.CountsPoller(svc, print, interval=0)


def test_export_widget_shows_registry_errors(kernel):
    assert kernel.run(SETUP)["status"] == "ok"
    res = kernel.run("""
w = nbops.export_widget("wine", path="svc-err")
w.pick.value = "alias"; w.value.value = "nosuch"
print(w.do_export(), w.status.value)
""")
    assert res["status"] == "ok", res["error"]
    assert "no alias &#x27;nosuch&#x27;" in res["text"] and res["text"].startswith("None")


def test_cli_export_writes_a_runnable_folder(store, tmp_path):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    import nbops

    X, y = load_wine(return_X_y=True, as_frame=True)
    with nbops.start_run() as run:
        nbops.log_model(RandomForestClassifier(3, random_state=0).fit(X, y), signature=X)
    nbops.register(run.run_id, "wine")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "--store",
            str(store),
            "export",
            "wine",
            "--version",
            "1",
            "--path",
            str(tmp_path / "svc"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "exported wine v1" in out.stdout
    assert (tmp_path / "svc" / "serve.py").is_file()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "--store",
            str(store),
            "export",
            "wine",
            "--version",
            "7",
            "--path",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no version 7" in bad.stderr


def test_cli_serve_scores_a_registered_model_until_terminated(store, tmp_path):
    import os
    import signal

    import httpx
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    import nbops
    from nbops.serving.local import free_port

    X, y = load_wine(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    with nbops.start_run() as run:
        nbops.log_model(model, signature=X, reference=X)
    nbops.register(run.run_id, "wine")
    nbops.transition("wine", 1, "Production")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "--store",
            str(store),
            "serve",
            "wine",
            "--stage",
            "Production",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_root)},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "nbops serve did not answer /ping within 60 s"
            time.sleep(0.05)
        (folder,) = tmp_root.glob("nbops-serve-*/service")
        assert json.loads((folder / "model.json").read_text())["reference"]["rows"] == len(X)
        rows = X.iloc[:5]
        r = httpx.post(
            url + "/invocations",
            json={
                "dataframe_split": {"columns": list(X.columns), "data": rows.to_numpy().tolist()}
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == model.predict(rows).tolist()
        assert r.headers["x-model-version"] == "1"
        proc.terminate()  # SIGTERM to the CLI's pid: it stops its service and cleans up
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "serving wine v1" in out
        assert f"wine v1 listening on {url}" in out  # said by the service once bound
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/ping", timeout=1)
        assert not list(tmp_root.glob("nbops-serve-*"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        try:  # never leave the service behind, even when the CLI failed to stop it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
