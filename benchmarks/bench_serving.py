"""Serving: an nbops export vs `mlflow models serve` (MLflow 3.17.2) and vs Seldon's
MLServer 1.7.1 (`mlserver` + `mlserver-sklearn`, OIP v2), measured in one run.

1. MLflow scoring protocol: a 50-tree RandomForest over the wine data (random_state=0),
   trained identically in both environments (same scikit-learn version); one-row
   `dataframe_split` requests. Cold start: process start to the first `/ping`.
2. Open Inference Protocol v2 against MLServer (single process: parallel_workers 0),
   for three models: the same random forest, a scaled logistic regression (wine) and a
   gradient boosting regressor (diabetes), each fitted once here and handed to both
   servers (the skops file to nbops, the joblib file to MLServer). Both get the same
   one-row `POST /v2/models/{name}/infer` request (one [1, n] FP64 tensor) and must
   return identical predictions for the whole data set. Cold start: process start to
   the first 200 from `/v2/models/{name}/ready`. nbops is also measured with
   `serve.py --workers 2`.

Every server gets the same load generator (benchmarks/loadgen.py) at concurrency 8.
Run: `make bench-serving` (creates .venv-bench with mlflow==3.17.2 and
.venv-bench-mlserver with mlserver 1.7.1; writes benchmarks/results/serving.json).
`BENCH_DURATION` sets the seconds of load per server (default 15).
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
MLSERVER_BIN = Path(
    os.environ.get("NBOPS_BENCH_MLSERVER", ROOT / ".venv-bench-mlserver" / "bin" / "mlserver")
)
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


def ping(port: int, path: str = "/ping") -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start(
    cmd: list[str], port: int, env: dict | None = None, ready: str = "/ping", cwd: str | None = None
) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    while not ping(port, ready):
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
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
    )
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
        result = run_load(
            "127.0.0.1", port, "/invocations", body, concurrency=CONCURRENCY, duration=DURATION
        )
    finally:
        stop(proc)
    result["cold_start_s"] = round(statistics.median(colds), 3)
    result["cold_start_runs_s"] = [round(c, 3) for c in colds]
    print(name, result, flush=True)
    return result, predictions


def mlflow_comparison() -> dict | None:
    """Section 1: returns the result dict, or None when the two disagree."""
    if not BENCH_PY.is_file():
        print(
            f"{BENCH_PY} is missing: run `make bench-serving` (creates .venv-bench with "
            "mlflow==3.17.2)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    import nbops

    X, y = load_wine(return_X_y=True, as_frame=True)
    one_row = json.dumps(
        {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:1].to_numpy().tolist()}}
    ).encode()
    check = json.dumps(
        {"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}}
    ).encode()
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
        nb, nb_preds = measure(
            "nbops", lambda port: [sys.executable, serve_py, "--port", str(port)], one_row, check
        )

        subprocess.run([str(BENCH_PY), "-c", MLFLOW_SAVE, str(tmp / "mlflow-model")], check=True)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"file://{tmp / 'mlruns'}",
            # mlflow starts `uvicorn` from PATH: its own venv's
            "PATH": f"{BENCH_PY.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        mlflow_bin = str(BENCH_PY.parent / "mlflow")
        ml, ml_preds = measure(
            "mlflow",
            lambda port: [
                mlflow_bin,
                "models",
                "serve",
                "-m",
                str(tmp / "mlflow-model"),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            one_row,
            check,
            env,
        )
    if nb_preds != ml_preds:
        print("nbops and mlflow disagree on the predictions", file=sys.stderr)
        return None
    out = {
        "what": "nbops export (serve.py) vs `mlflow models serve` (MLflow 3.17.2): 50-tree "
        "RandomForest on wine, one-row dataframe_split requests, concurrency 8",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
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
    print(json.dumps(out["ratios"]), json.dumps(out["targets"]))
    return out


# -- 2. OIP v2 against MLServer --------------------------------------------------------
def _models():
    """name -> (fitted model, X as a numpy array, description); fitted once, here."""
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True, as_frame=True)
    D, t = load_diabetes(return_X_y=True, as_frame=True)
    return {
        "random-forest": (
            RandomForestClassifier(50, random_state=0).fit(X.to_numpy(), y),
            X,
            "50-tree RandomForestClassifier, wine",
        ),
        "scaled-logistic": (
            make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), y),
            X,
            "StandardScaler + LogisticRegression, wine",
        ),
        "gradient-boosting": (
            GradientBoostingRegressor(random_state=0).fit(D.to_numpy(), t),
            D,
            "100-stage GradientBoostingRegressor, diabetes",
        ),
    }


def _infer_body(rows) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "data": rows.ravel().tolist(),
                }
            ]
        }
    ).encode()


def _infer(port: int, name: str, body: bytes) -> list:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/{name}/infer",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        out = json.loads(r.read())["outputs"][0]
    return [v[0] if isinstance(v, list) else v for v in out["data"]]


def _measure_oip(
    label: str, cmd_for_port, name: str, body: bytes, check: bytes, env=None, cwd=None
) -> tuple[dict, list]:
    ready = f"/v2/models/{name}/ready"
    colds = []
    for _ in range(COLD_RUNS):
        port = free_port()
        proc, cold = start(cmd_for_port(port), port, env, ready, cwd)
        colds.append(cold)
        stop(proc)
    port = free_port()
    proc, _ = start(cmd_for_port(port), port, env, ready, cwd)
    try:
        predictions = _infer(port, name, check)
        result = run_load(
            "127.0.0.1",
            port,
            f"/v2/models/{name}/infer",
            body,
            concurrency=CONCURRENCY,
            duration=DURATION,
        )
    finally:
        stop(proc)
    result["cold_start_s"] = round(statistics.median(colds), 3)
    result["cold_start_runs_s"] = [round(c, 3) for c in colds]
    print(f"{label}: {result}", flush=True)
    return result, predictions


def _mlserver_folder(folder: Path, name: str, model) -> None:
    import joblib

    folder.mkdir(parents=True)
    joblib.dump(model, folder / "model.joblib")
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
        )
    )


def oip_comparison() -> dict | None:
    """Section 2: nbops (1 and 2 workers) vs MLServer per model, or None when the
    predictions differ."""
    if not MLSERVER_BIN.is_file():
        print(f"{MLSERVER_BIN} is missing: run `make bench-mlserver-venv`", file=sys.stderr)
        raise SystemExit(2)
    import nbops

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="nbops-bench-oip-") as tmp:
        tmp = Path(tmp)
        os.environ["NBOPS_STORE"] = str(tmp / "store")
        nbops.set_store(None)
        for name, (model, frame, what) in _models().items():
            with nbops.start_run(name=f"bench-{name}") as run:
                nbops.log_model(model, signature=frame)
            nbops.register(run.run_id, name)
            info = nbops.export(name, version=1, path=tmp / f"nbops-{name}")
            serve_py = str(Path(info["path"]) / "serve.py")
            rows = frame.to_numpy()
            body, check = _infer_body(rows[:1]), _infer_body(rows)
            nb, nb_preds = _measure_oip(
                f"nbops {name}",
                lambda port, sp=serve_py: [sys.executable, sp, "--port", str(port)],
                name,
                body,
                check,
            )
            nb2, nb2_preds = _measure_oip(
                f"nbops --workers 2 {name}",
                lambda port, sp=serve_py: [
                    sys.executable,
                    sp,
                    "--port",
                    str(port),
                    "--workers",
                    "2",
                ],
                name,
                body,
                check,
            )
            repo = tmp / f"mlserver-{name}"
            _mlserver_folder(repo / name, name, model)

            env_ml = {
                **os.environ,
                "MLSERVER_PARALLEL_WORKERS": "0",
                "PATH": f"{MLSERVER_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }

            def ml_cmd(port: int, repo: Path = repo, env_ml: dict = env_ml) -> list[str]:
                env_ml.update(
                    {
                        "MLSERVER_HTTP_PORT": str(port),
                        "MLSERVER_GRPC_PORT": str(free_port()),
                        "MLSERVER_METRICS_PORT": str(free_port()),
                    }
                )
                return [str(MLSERVER_BIN), "start", str(repo)]

            ml, ml_preds = _measure_oip(f"mlserver {name}", ml_cmd, name, body, check, env=env_ml)
            expected = model.predict(rows).tolist()
            same = nb_preds == ml_preds == nb2_preds == expected
            if not same:
                print(f"{name}: the servers disagree on the predictions", file=sys.stderr)
                return None
            results[name] = {
                "model": what,
                "compiled": info["compiled"],
                "same_predictions": same,
                "nbops": nb,
                "nbops_workers_2": nb2,
                "mlserver": ml,
                "ratios": {
                    "rps_nbops_over_mlserver": round(nb["rps"] / ml["rps"], 2),
                    "rps_nbops_2_workers_over_mlserver": round(nb2["rps"] / ml["rps"], 2),
                    "p99_mlserver_over_nbops": round(ml["p99_ms"] / nb["p99_ms"], 2),
                    "cold_start_mlserver_over_nbops": round(
                        ml["cold_start_s"] / nb["cold_start_s"], 2
                    ),
                },
                "targets": {
                    "rps_at_least_3x": nb["rps"] >= 3 * ml["rps"],
                    "lower_p99": nb["p99_ms"] < ml["p99_ms"],
                    "cold_start_under_half_a_second": nb["cold_start_s"] < 0.5,
                },
            }
            print(
                name,
                json.dumps(results[name]["ratios"]),
                json.dumps(results[name]["targets"]),
                flush=True,
            )
    return {
        "what": "OIP v2 POST /v2/models/{name}/infer, one-row [1, n] FP64 tensor, "
        "concurrency 8: nbops serve.py (1 process, and --workers 2) vs MLServer "
        "1.7.1 + mlserver-sklearn (parallel_workers 0: one process)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "duration_s": DURATION,
        "models": results,
    }


def main() -> int:
    only = sys.argv[1] if len(sys.argv) > 1 else "all"
    dest = HERE / "results" / "serving.json"
    previous = json.loads(dest.read_text()) if dest.is_file() else {}
    out = dict(previous)
    if only in ("all", "mlflow"):
        first = mlflow_comparison()
        if first is None:
            return 1
        out.update(first)
    if only in ("all", "oip"):
        oip = oip_comparison()
        if oip is None:
            return 1
        out["oip_v2"] = oip
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
