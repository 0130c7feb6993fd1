"""The push/pull round trip once more on the backend teams run: `mlflow server` on a real
PostgreSQL (Debian's packages; `make test` installs them when missing). The fixture makes
a throwaway cluster in a temporary folder with initdb, starts it with pg_ctl on a free
127.0.0.1 port and stops and deletes it afterwards, so nothing stays running."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
from conftest import needs
from test_sync import (
    HAS_MLFLOW_SERVER,
    free_port,
    make_model,
    make_runs,
    snapshot,
    start_mlflow,
    stop,
)


def pg_bin() -> str | None:
    """The folder with initdb and pg_ctl (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    hits = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(hits[-1]) if hits else None


def as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; Debian's package adds a postgres user
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="module")
def postgres():
    """``postgresql+psycopg2://nbops@127.0.0.1:PORT/mlflow`` of a fresh cluster, stopped after."""
    bindir = pg_bin()
    needs(bindir is not None, "PostgreSQL server binaries (Debian: apt-get install postgresql)")
    needs(importlib_util_find("psycopg2"), "psycopg2-binary is in the dev extra")
    root = tempfile.mkdtemp(prefix="nbops-pg-")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()

    def run(*cmd):
        return subprocess.run(
            as_postgres(list(cmd)),
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run(f"{bindir}/initdb", "-D", data, "-U", "nbops", "--auth=trust", "-E", "UTF8")
    run(
        f"{bindir}/pg_ctl",
        "-D",
        data,
        "-l",
        os.path.join(root, "log"),
        "-w",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
        "start",
    )
    try:
        subprocess.run(
            [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "nbops", "mlflow"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"postgresql+psycopg2://nbops@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


def importlib_util_find(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def pg_server(postgres, tmp_path_factory):
    needs(HAS_MLFLOW_SERVER, "mlflow==3.17.2 (the server) is in the dev extra")
    tmp = tmp_path_factory.mktemp("mlflow-pg")
    proc, uri = start_mlflow(postgres, tmp / "artifacts", tmp / "server.log")
    yield uri
    stop(proc)


def test_round_trip_through_mlflow_on_postgresql(pg_server, tmp_path, monkeypatch):
    import pandas as pd

    import nbops

    exp = f"pg-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NBOPS_STORE", str(tmp_path / "a"))
    nbops.set_store(None)
    make_runs(exp, tmp_path)
    name, _, _ = make_model(exp)
    before = snapshot(nbops.runs()["run_id"].tolist())
    pushed = nbops.push(pg_server, experiments=[exp])
    assert pushed.ok and len(pushed.created) == 4, pushed
    assert nbops.push(pg_server, experiments=[exp]).created == []

    nbops.set_store(tmp_path / "b")
    pulled = nbops.pull(pg_server, experiments=[exp], artifacts=True)
    assert pulled.ok and f"model:{name}/1" in pulled.created, pulled
    after = snapshot(nbops.runs()["run_id"].tolist())
    nbops.set_store(None)
    pd.testing.assert_frame_equal(before["runs"], after["runs"])
    assert before["files"] == after["files"]
    pd.testing.assert_frame_equal(before["models"], after["models"])
    pd.testing.assert_frame_equal(before["history"], after["history"])
    for key, (values, stamps) in before["histories"].items():
        assert after["histories"][key][0] == values
        assert after["histories"][key][1] == pytest.approx(stamps, abs=1)
