"""nbops push/pull against a local `mlflow server` (MLflow 3.17.2, SQLite backend, local
artifact destination), and MLflow's own client logging the same runs value by value.

    .venv/bin/python benchmarks/bench_sync.py            # 1,000 runs; --runs N to change

One run starts the server on 127.0.0.1, records N runs in an nbops store (5 params,
5 metrics of 100 steps each, one small artifact, the environment as nbops captures it)
and measures:

- push of the N runs (target: 1,000 in < 60 s), a no-op re-push (< 5 s), and a pull
  of them into an empty store;
- side by side, 100 such runs: nbops push vs a script using MlflowClient per value
  (create_run, log_param x 5, log_metric x 500, log_artifact, set_terminated), as users
  commonly write it (target: nbops >= 10x faster).

Writes benchmarks/results/sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
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


def start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
            "--workers",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return proc, uri
        except OSError:
            time.sleep(0.2)
    raise SystemExit("mlflow server did not start: " + (tmp / "server.log").read_text()[-2000:])


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--side-by-side", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    import mlflow

    import nbops

    with tempfile.TemporaryDirectory(prefix="nbops-bench-sync-") as tmp_name:
        tmp = Path(tmp_name)
        artifact = tmp / "notes.txt"
        artifact.write_text("a small artifact\n" * 20)
        proc, uri = start_server(tmp)
        try:
            print(f"[sync] recording {args.runs} runs ...", flush=True)
            record_s = make_store(tmp / "store", args.runs, "bench", artifact)
            print(f"[sync] pushing {args.runs} runs to {uri} ...", flush=True)
            t0 = time.perf_counter()
            pushed = nbops.push(uri, experiments=["bench"])
            push_s = time.perf_counter() - t0
            assert pushed.ok and len(pushed.created) == args.runs, pushed
            t0 = time.perf_counter()
            again = nbops.push(uri, experiments=["bench"])
            repush_s = time.perf_counter() - t0
            assert len(again.unchanged) == args.runs, again
            print(
                f"[sync] push {push_s:.1f} s, no-op re-push {repush_s:.2f} s; pulling ...",
                flush=True,
            )
            nbops.set_store(tmp / "pulled")
            t0 = time.perf_counter()
            pulled = nbops.pull(uri, experiments=["bench"])
            pull_s = time.perf_counter() - t0
            assert pulled.ok and len(pulled.created) == args.runs, pulled

            n = args.side_by_side
            make_store(tmp / "small", n, "bench-small", artifact)
            t0 = time.perf_counter()
            small = nbops.push(uri, experiments=["bench-small"])
            nbops_small_s = time.perf_counter() - t0
            assert small.ok and len(small.created) == n
            print(
                f"[sync] nbops push of {n} runs {nbops_small_s:.1f} s; MLflow per value ...",
                flush=True,
            )
            mlflow_small_s = mlflow_per_value(uri, n, "bench-mlflow", artifact)
        finally:
            stop_server(proc)
            nbops.set_store(None)
    result = {
        "benchmark": "sync",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "server": {
            "mlflow": mlflow.__version__,
            "backend": "sqlite",
            "artifacts": "local folder via the server (--artifacts-destination)",
            "workers": 2,
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
        "side_by_side": {
            "runs": n,
            "nbops_push_s": nbops_small_s,
            "mlflow_client_per_value_s": mlflow_small_s,
            "speedup": mlflow_small_s / nbops_small_s,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"push {args.runs} runs {push_s:.1f} s, no-op {repush_s:.2f} s, pull {pull_s:.1f} s; "
        f"{n} runs: nbops {nbops_small_s:.1f} s vs MLflow per value {mlflow_small_s:.1f} s "
        f"({mlflow_small_s / nbops_small_s:.0f}x) -> {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
