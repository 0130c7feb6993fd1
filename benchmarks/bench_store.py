"""The store at scale: open, list, write and size at 100,000 and 1,000,000 runs, beside
MLflow 3.17.2's search_runs on its default SQLite store.

Each run has 5 params, 5 metrics (one with 10 steps), 2 tags and the captured
environment. The 100,000-run store is written through the public API
(``nbops.start_run`` ... ``end``), in one process. The 1,000,000-run store is written
directly in the store's format (a snapshot built from real run documents, with new
ids and values), because a million runs through the API take about 20 minutes here;
``generated`` in the results says which. MLflow gets 10,000 runs (through
``MlflowClient.log_batch``); its figures at 100,000 and 1,000,000 runs are linear
extrapolations, marked as such.

Every timing of a "fresh process" is a new Python process that imports the library
and lists all runs as a DataFrame (``nbops.runs()`` / ``mlflow.search_runs()``).

    .venv-bench/bin/python benchmarks/bench_store.py            # full (about 35 min)
    .venv-bench/bin/python benchmarks/bench_store.py --mlflow-db /tmp/mlflow-10k.db
        # keeps the generated MLflow database there, and reuses it next time (10 min)
    .venv/bin/python benchmarks/bench_store.py --quick          # 2,000 / 10,000 runs

Writes benchmarks/results/store.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "store.json"


def one_run(nbops, i: int) -> None:
    with nbops.start_run(
        name=f"run-{i}", experiment="bench", tags={"team": "vision", "kind": "bench"}
    ):
        nbops.log_params({f"p{k}": (i * 7 + k) % 13 for k in range(5)})
        for step in range(10):
            nbops.log_metric("loss", 1.0 / (step + 1 + i % 5), step=step)
        nbops.log_metrics({f"m{k}": (i % 100) / 100 + k for k in range(4)})


GENERATE = """
import sys, time
sys.path.insert(0, {here!r})
import nbops
from bench_store import one_run
nbops.set_store({store!r})
t = time.perf_counter()
for i in range({start}, {stop}):
    one_run(nbops, i)
print(time.perf_counter() - t)
"""


def py(code: str, python: str = sys.executable, env: dict | None = None) -> str:
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout


def generate_api(store: Path, n: int) -> float:
    """Write n runs through the API in one fresh process; returns seconds."""
    return float(py(GENERATE.format(here=str(HERE), store=str(store), start=0, stop=n)))


def generate_direct(store: Path, n: int) -> float:
    """Write n runs straight into a snapshot: 1 run through the API gives real
    documents, which are copied with new ids, names and values."""
    from nbops.store import logfile
    from nbops.store.runs import key_id

    t0 = time.perf_counter()
    seed = store.parent / "seed"
    generate_api(seed, 1)
    import nbops.store as st

    src = st.Store(seed)
    src.compact()
    snap = next((seed / "snapshots").iterdir())
    run = next(iter(src.storage.live_table("runs").values()))
    steps = next(iter(src.storage.live_table("metric_steps").values()))
    new = logfile.new_id()
    folder = store / "snapshots" / new
    folder.mkdir(parents=True)
    for name in ("environments.jsonl", "code.jsonl"):
        shutil.copy(snap / name, folder / name)
    with (
        open(folder / "runs.jsonl", "wb") as runs_out,
        open(folder / "metric_steps.jsonl", "wb") as steps_out,
    ):
        for i in range(n):
            run_id = os.urandom(6).hex()
            doc = dict(
                run,
                run_id=run_id,
                name=f"run-{i}",
                params={f"p{k}": (i * 7 + k) % 13 for k in range(5)},
                metrics={
                    "loss": 1.0 / (10 + i % 5),
                    **{f"m{k}": (i % 100) / 100 + k for k in range(4)},
                },
            )
            runs_out.write(logfile.seal(str(key_id(run_id)).encode() + b"\t" + logfile.dumps(doc)))
            ref = f"{run_id}/loss"
            sdoc = dict(
                steps, ref=ref, run_id=run_id, values=[1.0 / (s + 1 + i % 5) for s in range(10)]
            )
            steps_out.write(logfile.seal(str(key_id(ref)).encode() + b"\t" + logfile.dumps(sdoc)))
    (folder / "manifest").write_bytes(
        logfile.seal(
            logfile.dumps(
                {
                    "snapshot": new,
                    "log": None,
                    "at": 0,
                    "tables": {"runs": n, "metric_steps": n, "environments": 1, "code": 1},
                }
            )
        )
    )
    (store / "nbops.db").write_bytes(logfile.header_line(logfile.new_id(), new, None))
    shutil.rmtree(seed)
    return time.perf_counter() - t0


def store_bytes(store: Path) -> dict[str, int]:
    durable = sum(
        p.stat().st_size
        for p in store.rglob("*")
        if p.is_file() and p.name != "nbops.frame" and not p.name.endswith(".lock")
    )
    cache = (store / "nbops.frame").stat().st_size if (store / "nbops.frame").exists() else 0
    return {"durable": durable, "cache": cache}


OPEN_NBOPS = """
import time, resource
t = time.perf_counter()
import nbops
nbops.set_store({store!r})
df = nbops.runs()
dt = time.perf_counter() - t
print(dt, len(df), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def fresh_open(store: Path, python: str = sys.executable, repeat: int = 3) -> dict:
    times, rss, rows = [], [], 0
    for _ in range(repeat):
        dt, rows, mb = py(OPEN_NBOPS.format(store=str(store)), python).split()
        times.append(float(dt))
        rss.append(float(mb))
    return {
        "seconds": statistics.median(times),
        "all_seconds": times,
        "peak_rss_mb": max(rss),
        "rows": int(rows),
    }


AFTER_WRITE = """
import sys, time, statistics
sys.path.insert(0, {here!r})
import nbops
from bench_store import one_run
nbops.set_store({store!r})
nbops.runs()
after = []
for i in range(12):
    one_run(nbops, 10_000_000 + i)
    t = time.perf_counter()
    df = nbops.runs()
    after.append(time.perf_counter() - t)
assert df.iloc[0]["name"] == "run-10000011", df.iloc[0]["name"]
print(statistics.median(after[2:]))
"""

# a tracked run in both stores, alternating in one process, so machine load hits both
TRACKED_BOTH = """
import sys, time, statistics
sys.path.insert(0, {here!r})
import nbops
from bench_store import one_run
stores = {stores!r}
times = {{s: [] for s in stores}}
for s in stores:
    nbops.set_store(s)
    one_run(nbops, 30_000_000)
for rnd in range(10):
    for s in stores:
        nbops.set_store(s)
        for i in range(10):
            t = time.perf_counter()
            one_run(nbops, 30_000_001 + rnd * 10 + i)
            times[s].append(time.perf_counter() - t)
print(" ".join(str(statistics.median(times[s])) for s in stores))
"""

FIRST_TRACKED = """
import sys, time
t = time.perf_counter()
sys.path.insert(0, {here!r})
import nbops
from bench_store import one_run
nbops.set_store({store!r})
one_run(nbops, 20_000_000)
print(time.perf_counter() - t)
"""


def tracked_figures(small: Path, big: Path) -> dict:
    """Tracked-run cost in a store of 100 runs and in ``big``, measured side by side."""
    t_small, t_big = map(
        float, py(TRACKED_BOTH.format(here=str(HERE), stores=[str(small), str(big)])).split()
    )
    first: dict[Path, list[float]] = {small: [], big: []}
    for _ in range(3):
        for store in (small, big):
            first[store].append(float(py(FIRST_TRACKED.format(here=str(HERE), store=str(store)))))
    return {
        "tracked_run_s": {"at_100": t_small, "at_scale": t_big, "ratio": t_big / t_small},
        "first_tracked_run_fresh_process_s": {
            "at_100": statistics.median(first[small]),
            "at_scale": statistics.median(first[big]),
            "ratio": statistics.median(first[big]) / statistics.median(first[small]),
        },
    }


def measure_nbops(n: int, root: Path, direct: bool, small: Path) -> dict:
    store = root / f"nbops-{n}"
    gen = generate_direct(store, n) if direct else generate_api(store, n)
    size = store_bytes(store)
    (store / "nbops.frame").unlink(missing_ok=True)
    cold = fresh_open(store, repeat=1)  # no cache: builds it from the snapshot and log
    warm = fresh_open(store)
    size = store_bytes(store)
    out = {
        "runs": n,
        "generated": "format written directly" if direct else "public API",
        "generate_s": gen,
        "bytes_per_run": size["durable"] / n,
        "cache_bytes_per_run": size["cache"] / n,
        "open_and_list_fresh_process": warm,
        "open_and_list_without_cache": cold,
    }
    out["runs_after_write_s"] = float(py(AFTER_WRITE.format(here=str(HERE), store=str(store))))
    out.update(tracked_figures(small, store))
    return out


# -- MLflow ------------------------------------------------------------------------------

MLFLOW_GEN = """
import time, mlflow, warnings
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
mlflow.set_tracking_uri({uri!r})
client = MlflowClient()
exp = client.create_experiment("bench")
env = {{"python": "3.11", "packages": "..."}}
t = time.perf_counter()
for i in range({n}):
    run = client.create_run(exp, run_name=f"run-{{i}}",
                            tags={{"team": "vision", "kind": "bench"}})
    rid = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("loss", 1.0 / (s + 1 + i % 5), now, s) for s in range(10)]
    metrics += [Metric(f"m{{k}}", (i % 100) / 100 + k, now, 0) for k in range(4)]
    params = [Param(f"p{{k}}", str((i * 7 + k) % 13)) for k in range(5)]
    client.log_batch(rid, metrics=metrics, params=params,
                     tags=[RunTag("mlflow.source.name", "bench.py")])
    client.set_terminated(rid)
print(time.perf_counter() - t)
"""

MLFLOW_OPEN = """
import time, resource, warnings
warnings.filterwarnings("ignore")
t = time.perf_counter()
import mlflow
mlflow.set_tracking_uri({uri!r})
mlflow.search_experiments()  # opens the database
t1 = time.perf_counter()
df = mlflow.search_runs(experiment_names=["bench"], max_results=1_000_000)
t2 = time.perf_counter()
print(t2 - t, t2 - t1, len(df), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def measure_mlflow(n: int, root: Path, python: str, reuse: str | None = None) -> dict | None:
    try:
        py("import mlflow", python)
    except RuntimeError:
        return None
    db = root / "mlflow.db"
    uri = f"sqlite:///{db}"
    if reuse and Path(reuse).exists():  # generating 10,000 MLflow runs takes ~25 min here
        shutil.copy(reuse, db)
        gen = None
    else:
        gen = float(py(MLFLOW_GEN.format(uri=uri, n=n), python))
        if reuse:
            shutil.copy(db, reuse)
    times, search, rss = [], [], []
    for _ in range(3):
        dt, ds, rows, mb = py(MLFLOW_OPEN.format(uri=uri), python).split()
        times.append(float(dt))
        search.append(float(ds))
        rss.append(float(mb))
    secs, per = statistics.median(times), statistics.median(search)
    fixed = secs - per  # import and opening the database
    size = db.stat().st_size
    version = py("import mlflow; print(mlflow.__version__)", python).strip()
    return {
        "version": version,
        "runs": int(rows),
        "generate_s": gen,
        "generated": "MlflowClient.log_batch, one run at a time"
        + (
            ""
            if gen is not None
            else " (database reused from an earlier run of "
            "this benchmark; only the reads were measured in this run)"
        ),
        "search_runs_fresh_process_s": secs,
        "search_runs_call_s": per,
        "peak_rss_mb": max(rss),
        "bytes_per_run": size / n,
        "rows": int(rows),
        "extrapolated": {
            "note": "not measured: import time plus search_runs time scaled linearly "
            "in runs from the measured point",
            "fresh_process_s_at_100000": fixed + per * 100_000 / n,
            "fresh_process_s_at_1000000": fixed + per * 1_000_000 / n,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 / 10,000 runs")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--million", type=int, default=1_000_000)
    ap.add_argument("--mlflow-runs", type=int, default=10_000)
    ap.add_argument("--mlflow-python", default=sys.executable)
    ap.add_argument("--mlflow-db", help="reuse (or keep) the generated MLflow database here")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    if args.quick:
        args.runs, args.million, args.mlflow_runs = 2_000, 10_000, 500
    root = Path(tempfile.mkdtemp(prefix="nbops-bench-store-"))
    results: dict = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        }
    }
    try:
        small = root / "small"
        generate_api(small, 100)
        results["nbops"] = measure_nbops(args.runs, root, direct=False, small=small)
        results["nbops_large"] = measure_nbops(args.million, root, direct=True, small=small)
        results["mlflow"] = (
            measure_mlflow(args.mlflow_runs, root, args.mlflow_python, args.mlflow_db)
            if args.mlflow_runs
            else None
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    big = results["nbops"]
    results["targets"] = {
        "open_list_100k_under_1s": big["open_and_list_fresh_process"]["seconds"] < 1.0,
        "rss_100k_under_500mb": big["open_and_list_fresh_process"]["peak_rss_mb"] < 500,
        "runs_after_write_under_100ms": big["runs_after_write_s"] < 0.1,
        "tracked_run_within_1_5x": big["tracked_run_s"]["ratio"] <= 1.5,
        "first_tracked_run_within_1_5x": big["first_tracked_run_fresh_process_s"]["ratio"] <= 1.5,
        "bytes_per_run_under_1_5kb": big["bytes_per_run"] <= 1536,
        "open_list_1m_under_5s": results["nbops_large"]["open_and_list_fresh_process"]["seconds"]
        < 5.0,
        "rss_1m_under_2gb": results["nbops_large"]["open_and_list_fresh_process"]["peak_rss_mb"]
        < 2048,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
