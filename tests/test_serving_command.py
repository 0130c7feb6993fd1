"""serve.py's command line and `nbops serve`: the port from --port or $PORT, the line
that says where the service listens once bound, --access-log, a taken port as a
one-line error with exit 2, and --workers with /metrics adding up every worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

import nbops
from nbops.serving.local import free_port


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    root = tmp_path_factory.mktemp("command")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    with nbops.start_run(name="wine") as run:
        nbops.log_model(model, signature=X)
    nbops.register(run.run_id, "wine")
    info = nbops.export("wine", version=1, path=root / "svc")
    yield {"path": info["path"], "X": X, "model": model, "store": root / "store"}
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


class Serve:
    """serve.py as a child process whose stdout is read line by line."""

    def __init__(self, folder, args=(), env=None):
        self.proc = subprocess.Popen(
            [sys.executable, "serve.py", *args],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def first_line(self, timeout=30):
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        assert time.monotonic() < deadline
        return line.strip()

    def stop(self):
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=20)
        return out, err


def _score(url, folder, n=3):
    rows = folder["X"].iloc[:n]
    r = httpx.post(
        url + "/invocations",
        json={"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == folder["model"].predict(rows).tolist()


def test_port_comes_from_the_environment_and_the_service_says_where_it_listens(folder):
    port = free_port()
    svc = Serve(folder["path"], env={"PORT": str(port)})
    try:
        line = svc.first_line()
        assert line == f"nbops service: wine v1 listening on http://127.0.0.1:{port}"
        _score(f"http://127.0.0.1:{port}", folder)  # bound by the time it says so
    finally:
        svc.stop()


def test_port_flag_wins_over_the_environment(folder):
    port = free_port()
    svc = Serve(folder["path"], ["--port", str(port)], env={"PORT": "1"})
    try:
        assert svc.first_line().endswith(f"127.0.0.1:{port}")
    finally:
        svc.stop()


def test_access_log_prints_one_line_per_request(folder):
    port = free_port()
    svc = Serve(folder["path"], ["--port", str(port), "--access-log"])
    try:
        svc.first_line()
        _score(f"http://127.0.0.1:{port}", folder)
        httpx.get(f"http://127.0.0.1:{port}/nope")
        time.sleep(0.2)
    finally:
        out, _ = svc.stop()
    assert re.search(r'"POST /invocations" 200 [\d.]+ms', out), out
    assert re.search(r'"GET /nope" 404', out), out


def test_a_taken_port_is_a_one_line_error(folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "serve.py", "--port", str(port)],
            cwd=folder["path"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr and "--port" in res.stderr


def test_nbops_serve_refuses_a_taken_port_before_exporting(folder, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "nbops.cli",
                "--store",
                str(folder["store"]),
                "serve",
                "wine",
                "--version",
                "1",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and f"port {port}" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not list(tmp_path.glob("nbops-serve-*"))  # nothing was exported


def test_workers_share_the_socket_and_add_up_their_metrics(folder):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    svc = Serve(folder["path"], ["--port", str(port), "--workers", "2"])
    try:
        assert svc.first_line().endswith(f"listening on {url} (2 workers)")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for _ in range(30):
            with httpx.Client() as c:  # a new connection each time: both workers answer
                _score_with(c, url, folder)
        time.sleep(1.5)  # workers share their counters every second
        text = httpx.get(url + "/metrics").text
        served = sum(
            int(n)
            for n in re.findall(
                r'nbops_requests_total\{route="/invocations",status="200",version="1"\} (\d+)', text
            )
        )
        assert served == 30, text
    finally:
        svc.stop()


def _score_with(client, url, folder):
    rows = folder["X"].iloc[:2]
    r = client.post(url + "/invocations", json={"instances": rows.to_numpy().tolist()})
    assert r.status_code == 200


def test_workers_are_refused_with_a_canary(folder, tmp_path):
    import json
    import shutil

    svc = tmp_path / "svc"
    shutil.copytree(folder["path"], svc)
    shutil.copytree(
        folder["path"], svc / "canary", ignore=shutil.ignore_patterns("canary", "runtime", "logs")
    )
    (svc / "canary.json").write_text(json.dumps({"folder": "canary", "steps": [50]}))
    res = subprocess.run(
        [sys.executable, "serve.py", "--workers", "2", "--port", str(free_port())],
        cwd=svc,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "canary runs in one process" in res.stderr


def _children(pid):
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else None


def test_a_worker_that_dies_is_replaced(folder):
    import signal

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    svc = Serve(folder["path"], ["--port", str(port), "--workers", "2"])
    try:
        svc.first_line()
        deadline = time.monotonic() + 20
        while (kids := _children(svc.proc.pid)) is not None and len(kids) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if kids is None:
            pytest.skip("/proc does not list child processes here")
        os.kill(kids[0], signal.SIGKILL)
        while True:
            now = _children(svc.proc.pid)
            if len(now) == 2 and kids[0] not in now:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.05)
        for _ in range(10):
            with httpx.Client() as c:
                _score_with(c, url, folder)
    finally:
        out, err = svc.stop()
    assert svc.proc.returncode == 0, err
