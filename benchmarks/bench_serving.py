"""Serving: an nbops export vs `mlflow models serve` (MLflow 3.17.2) on one model.

The model is a 50-tree RandomForest over the wine data (random_state=0), trained
identically in both environments (same scikit-learn version). Both servers get the
same one-row `dataframe_split` request from the same load generator
(benchmarks/loadgen.py) at concurrency 8, and both must return the same predictions.
Cold start is the time from starting the process to the first successful `/ping`.

Run: `make bench-serving` (needs .venv-bench with mlflow==3.17.2; writes
benchmarks/results/serving.json).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_PY = Path(os.environ.get("NBOPS_BENCH_PYTHON", ROOT / ".venv-bench" / "bin" / "python"))
sys.path.insert(0, str(HERE))

from loadgen import run_load  # noqa: E402

CONCURRENCY = 8
DURATION = float(os.environ.get("BENCH_DURATION", 15))
COLD_RUNS = 3

MLFLOW_SAVE = r"""
import sys, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
X, y = load_wine(return_X_y=True, as_frame=True)
model = RandomForestClassifier(50, random_state=0).fit(X, y)
mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(X, model.predict(X)),
                         skops_trusted_types=["sklearn.tree._tree.Tree"])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start(cmd: list[str], port: int, env: dict | None = None) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    while not ping(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited: {proc.stderr.read().decode()[-2000:]}")
        if time.perf_counter() - t0 > 120:
            proc.kill()
            raise RuntimeError(f"{cmd[:3]} did not answer /ping within 120 s")
        time.sleep(0.005)
    return proc, time.perf_counter() - t0


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def post(port: int, body: bytes) -> list:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["predictions"]


def measure(name: str, cmd_for_port, body: bytes, check: bytes, env=None) -> tuple[dict, list]:
    colds = []
    for _ in range(COLD_RUNS):
        port = free_port()
        proc, cold = start(cmd_for_port(port), port, env)
        colds.append(cold)
        stop(proc)
    port = free_port()
    proc, _ = start(cmd_for_port(port), port, env)
    try:
        predictions = post(port, check)
        print(f"{name}: cold start {statistics.median(colds):.2f} s; load...", flush=True)
        result = run_load("127.0.0.1", port, "/invocations", body, concurrency=CONCURRENCY,
                          duration=DURATION)
    finally:
        stop(proc)
    result["cold_start_s"] = round(statistics.median(colds), 3)
    result["cold_start_runs_s"] = [round(c, 3) for c in colds]
    print(name, result, flush=True)
    return result, predictions


def main() -> int:
    if not BENCH_PY.is_file():
        print(f"{BENCH_PY} is missing: run `make bench-serving` (creates .venv-bench with "
              "mlflow==3.17.2)", file=sys.stderr)
        return 2
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    import nbops

    X, y = load_wine(return_X_y=True, as_frame=True)
    one_row = json.dumps({"dataframe_split": {"columns": list(X.columns),
                                              "data": X.iloc[:1].to_numpy().tolist()}}).encode()
    check = json.dumps({"dataframe_split": {"columns": list(X.columns),
                                            "data": X.to_numpy().tolist()}}).encode()
    with tempfile.TemporaryDirectory(prefix="nbops-bench-serving-") as tmp:
        tmp = Path(tmp)
        os.environ["NBOPS_STORE"] = str(tmp / "store")
        nbops.set_store(None)
        model = RandomForestClassifier(50, random_state=0).fit(X, y)
        with nbops.start_run(name="bench-serving") as run:
            nbops.log_model(model, signature=X)
        nbops.register(run.run_id, "wine")
        info = nbops.export("wine", version=1, path=tmp / "nbops-service")
        serve_py = str(Path(info["path"]) / "serve.py")
        nb, nb_preds = measure("nbops", lambda port: [sys.executable, serve_py, "--port",
                                                      str(port)], one_row, check)

        subprocess.run([str(BENCH_PY), "-c", MLFLOW_SAVE, str(tmp / "mlflow-model")],
                       check=True)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{tmp / 'mlruns'}",
               # mlflow starts `uvicorn` from PATH: its own venv's
               "PATH": f"{BENCH_PY.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        mlflow_bin = str(BENCH_PY.parent / "mlflow")
        ml, ml_preds = measure(
            "mlflow", lambda port: [mlflow_bin, "models", "serve", "-m",
                                    str(tmp / "mlflow-model"), "--env-manager", "local",
                                    "-h", "127.0.0.1", "-p", str(port)], one_row, check, env)
    if nb_preds != ml_preds:
        print("the two servers disagree on the predictions", file=sys.stderr)
        return 1
    out = {
        "what": "nbops export (serve.py) vs `mlflow models serve` (MLflow 3.17.2): 50-tree "
                "RandomForest on wine, one-row dataframe_split requests, concurrency 8",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "same_predictions": True,
        "nbops": nb,
        "mlflow": ml,
        "ratios": {
            "rps_nbops_over_mlflow": round(nb["rps"] / ml["rps"], 2),
            "p50_mlflow_over_nbops": round(ml["p50_ms"] / nb["p50_ms"], 2),
            "p99_mlflow_over_nbops": round(ml["p99_ms"] / nb["p99_ms"], 2),
            "cold_start_mlflow_over_nbops": round(ml["cold_start_s"] / nb["cold_start_s"], 2),
        },
    }
    out["targets"] = {
        "rps_at_least_3x": out["ratios"]["rps_nbops_over_mlflow"] >= 3,
        "lower_p99": nb["p99_ms"] < ml["p99_ms"],
        "cold_start_under_1s": nb["cold_start_s"] < 1.0,
    }
    dest = HERE / "results" / "serving.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["ratios"]), json.dumps(out["targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
