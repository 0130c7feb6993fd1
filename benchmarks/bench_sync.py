"""nbops push/pull against a local `mlflow server` (MLflow 3.17.2, SQLite backend, local
artifact destination), and MLflow's own client logging the same runs value by value.

    .venv-bench/bin/python benchmarks/bench_sync.py      # 1,000 runs; --runs N to change

One run records N runs in an nbops store (5 params, 5 metrics of 100 steps each, one
small artifact, the environment as nbops captures it) and measures, each time on a fresh
server started on 127.0.0.1 with MLflow's default 4 workers:

- push of the N runs (target: 1,000 in < 60 s) to the server as `mlflow server` starts
  it by default (uvicorn), and once more to the same server behind gunicorn
  (``--gunicorn-opts``), with the CPU seconds the server and the client spent;
- on the default server: a no-op re-push (< 5 s) and a pull of the runs into an empty
  store;
- side by side, 100 such runs: nbops push vs a script using MlflowClient per value
  (create_run, log_param x 5, log_metric x 500, log_artifact, set_terminated), as users
  commonly write it (target: nbops >= 10x faster).

Writes benchmarks/results/sync.json (not with ``--side-by-side 0``, a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "sync.json"
PARAMS, METRICS, STEPS = 5, 5, 100
#: how `mlflow server` serves its app: uvicorn is its default, gunicorn its other choice
SERVERS = {"uvicorn": [], "gunicorn": ["--gunicorn-opts", "--log-level warning"]}


def start_server(tmp: Path, kind: str = "uvicorn") -> tuple[subprocess.Popen, str]:
    """`mlflow server` with MLflow's defaults (4 workers) on SQLite; returns once it
    answers and its start-up work (the job runner importing) has settled."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp.mkdir(parents=True, exist_ok=True)
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp / 'mlflow.db'}",
            "--artifacts-destination",
            str(tmp / "artifacts"),
            *SERVERS[kind],
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                settle(proc.pid)
                return proc, uri
        except OSError:
            time.sleep(0.2)
    raise SystemExit("mlflow server did not start: " + (tmp / "server.log").read_text()[-2000:])


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the processes of group ``pgid`` (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle(pgid: int, busy: float = 0.2, limit: float = 60.0) -> None:
    """Wait until the server uses less than ``busy`` CPU seconds a second."""
    end = time.monotonic() + limit
    before = group_cpu(pgid)
    while time.monotonic() < end:
        time.sleep(1.0)
        now = group_cpu(pgid)
        if now - before < busy:
            return
        before = now


def client_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def make_store(path: Path, n: int, experiment: str, artifact: Path) -> float:
    """N runs in a fresh nbops store; returns the seconds it took."""
    import nbops

    nbops.set_store(path)
    t0 = time.perf_counter()
    for i in range(n):
        with nbops.start_run(name=f"run-{i}", experiment=experiment):
            nbops.log_params({f"p{k}": (i * k if k % 2 else f"v{k}-{i}") for k in range(PARAMS)})
            for step in range(STEPS):
                for k in range(METRICS):
                    nbops.log_metric(f"m{k}", (step + 1) / (k + i + 1), step=step)
            nbops.log_artifact(artifact, name="notes.txt")
    return time.perf_counter() - t0


def mlflow_per_value(uri: str, n: int, experiment: str, artifact: Path) -> float:
    """The same runs logged as users commonly do: one MLflow call per value."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(experiment)
    t0 = time.perf_counter()
    for i in range(n):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        rid = run.info.run_id
        for k in range(PARAMS):
            client.log_param(rid, f"p{k}", i * k if k % 2 else f"v{k}-{i}")
        for step in range(STEPS):
            for k in range(METRICS):
                client.log_metric(rid, f"m{k}", (step + 1) / (k + i + 1), step=step)
        client.log_artifact(rid, str(artifact))
        client.set_terminated(rid)
    return time.perf_counter() - t0


def timed_push(uri: str, n: int, pgid: int) -> dict[str, float]:
    """Push experiment ``bench`` of the current store to the server whose processes form
    group ``pgid``: seconds, and CPU seconds of the server and of this client."""
    import nbops

    cpu0, server0, t0 = client_cpu(), group_cpu(pgid), time.perf_counter()
    pushed = nbops.push(uri, experiments=["bench"])
    seconds = time.perf_counter() - t0
    assert pushed.ok and len(pushed.created) == n, pushed
    return {
        "push_s": seconds,
        "server_cpu_s": group_cpu(pgid) - server0,
        "client_cpu_s": client_cpu() - cpu0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--side-by-side", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    import mlflow

    import nbops

    by_server: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nbops-bench-sync-") as tmp_name:
        tmp = Path(tmp_name)
        artifact = tmp / "notes.txt"
        artifact.write_text("a small artifact\n" * 20)
        print(f"[sync] recording {args.runs} runs ...", flush=True)
        record_s = make_store(tmp / "recorded", args.runs, "bench", artifact)
        nbops.set_store(None)
        for kind in ("gunicorn", "uvicorn"):  # the default server last: it does the rest
            shutil.copytree(tmp / "recorded", tmp / kind / "store")
            nbops.set_store(tmp / kind / "store")
            proc, uri = start_server(tmp / kind / "server", kind)
            try:
                print(f"[sync] pushing {args.runs} runs to {kind} at {uri} ...", flush=True)
                by_server[kind] = timed_push(uri, args.runs, proc.pid)
                print(f"[sync] {kind}: {by_server[kind]}", flush=True)
                if kind == "uvicorn":
                    rest = rest_of_bench(uri, tmp, args, artifact)
            finally:
                stop_server(proc)
                nbops.set_store(None)
    if not args.side_by_side:
        return 0
    push_s = by_server["uvicorn"]["push_s"]
    repush_s, pull_s, nbops_small_s, mlflow_small_s = rest
    n = args.side_by_side
    result = {
        "benchmark": "sync",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "server": {
            "mlflow": mlflow.__version__,
            "backend": "sqlite",
            "artifacts": "local folder via the server (--artifacts-destination)",
            "workers": 4,
            "default": "uvicorn",
        },
        "run_shape": {"params": PARAMS, "metrics": METRICS, "steps": STEPS, "artifacts": 1},
        "targets": {"push_1000_s": 60.0, "noop_repush_s": 5.0, "speedup_vs_per_value": 10.0},
        "runs": args.runs,
        "nbops": {
            "record_s": record_s,
            "push_s": push_s,
            "noop_repush_s": repush_s,
            "pull_s": pull_s,
            "push_runs_per_s": args.runs / push_s,
        },
        "push_by_server": by_server,
        "side_by_side": {
            "runs": n,
            "nbops_push_s": nbops_small_s,
            "mlflow_client_per_value_s": mlflow_small_s,
            "speedup": mlflow_small_s / nbops_small_s,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    pushes = ", ".join(f"{k} {v['push_s']:.1f} s" for k, v in by_server.items())
    print(
        f"push {args.runs} runs: {pushes}; no-op {repush_s:.2f} s, pull {pull_s:.1f} s; "
        f"{n} runs: nbops {nbops_small_s:.1f} s vs MLflow per value {mlflow_small_s:.1f} s "
        f"({mlflow_small_s / nbops_small_s:.0f}x) -> {RESULTS}"
    )
    return 0


def rest_of_bench(uri: str, tmp: Path, args: argparse.Namespace, artifact: Path) -> tuple:
    """No-op re-push, pull into an empty store, and the side by side on server ``uri``."""
    import nbops

    t0 = time.perf_counter()
    again = nbops.push(uri, experiments=["bench"])
    repush_s = time.perf_counter() - t0
    assert len(again.unchanged) == args.runs, again
    print(f"[sync] no-op re-push {repush_s:.2f} s; pulling ...", flush=True)
    nbops.set_store(tmp / "pulled")
    t0 = time.perf_counter()
    pulled = nbops.pull(uri, experiments=["bench"])
    pull_s = time.perf_counter() - t0
    assert pulled.ok and len(pulled.created) == args.runs, pulled
    print(f"[sync] pull {pull_s:.1f} s", flush=True)
    n = args.side_by_side
    if not n:
        return repush_s, pull_s, None, None
    make_store(tmp / "small", n, "bench-small", artifact)
    t0 = time.perf_counter()
    small = nbops.push(uri, experiments=["bench-small"])
    nbops_small_s = time.perf_counter() - t0
    assert small.ok and len(small.created) == n
    print(f"[sync] nbops push of {n} runs {nbops_small_s:.1f} s; MLflow per value ...", flush=True)
    return repush_s, pull_s, nbops_small_s, mlflow_per_value(uri, n, "bench-mlflow", artifact)


if __name__ == "__main__":
    sys.exit(main())
