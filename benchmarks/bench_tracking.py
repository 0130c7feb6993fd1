"""Tracking speed: nbops vs MLflow (sqlite store), side by side in one process.

Run with an interpreter that has both installed (``make bench`` uses .venv-bench):

    .venv-bench/bin/python benchmarks/bench_tracking.py [--quick]

Writes benchmarks/results/tracking.json with absolute times and nbops/MLflow ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tracking.json"


def one_run_nbops(nbops, artifact: Path, i: int) -> None:
    with nbops.start_run(name=f"run-{i}", experiment="bench"):
        nbops.log_params({f"p{k}": k * i for k in range(5)})
        nbops.log_metrics({f"m{k}": k / (abs(i) + 1) for k in range(5)})
        nbops.log_artifact(artifact)


def one_run_mlflow(mlflow, artifact: Path, i: int) -> None:
    with mlflow.start_run(run_name=f"run-{i}"):
        mlflow.log_params({f"p{k}": k * i for k in range(5)})
        mlflow.log_metrics({f"m{k}": k / (abs(i) + 1) for k in range(5)})
        mlflow.log_artifact(str(artifact))


def per_call(fn, n: int) -> float:
    """Median over 5 batches of the mean seconds per call."""
    batches = []
    per_batch = max(1, n // 5)
    i = 0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(per_batch):
            fn(i)
            i += 1
        batches.append((time.perf_counter() - t0) / per_batch)
    return statistics.median(batches)


def fill_nbops(store_path: Path, n: int) -> None:
    """Add n finished runs quickly (bulk insert of realistic documents)."""
    from nbops.store import Store

    store = Store(store_path)
    docs = [
        {
            "run_id": f"fill{i:08d}",
            "name": f"fill-{i}",
            "experiment": "fill",
            "parent_id": None,
            "status": "FINISHED",
            "start_time": "2026-01-01T00:00:00.000+00:00",
            "end_time": "2026-01-01T00:00:01.000+00:00",
            "duration": 1.0,
            "params": {f"p{k}": k for k in range(5)},
            "metrics": {f"m{k}": k / 3 for k in range(5)},
            "tags": {},
            "code": {},
            "env": {},
            "inputs": [],
            "artifacts": [],
            "error": None,
        }
        for i in range(n)
    ]
    for start in range(0, n, 1000):
        store.runs.insert_multiple(docs[start : start + 1000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--track-only",
        action="store_true",
        help="only the %%%%track parts (no MLflow needed); the other results in the file are kept",
    )
    args = parser.parse_args()
    q = 5 if args.quick else 1
    if args.track_only:
        track_only(q)
        return

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_TRACKING_URI", "")
    import mlflow

    import nbops

    work = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    os.chdir(work)
    artifact = work / "model.txt"
    artifact.write_text("weights " * 64)
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    logging_quiet()
    nbops.set_store(work / "nbops-store")

    out: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "peer": f"mlflow {mlflow.__version__} (sqlite store)",
    }

    # warm up both (imports, schema creation)
    one_run_mlflow(mlflow, artifact, -1)
    one_run_nbops(nbops, artifact, -1)

    # 1. one run with 5 params, 5 metrics and one small artifact
    ml_run = per_call(lambda i: one_run_mlflow(mlflow, artifact, i), 100 // q)
    nb_run = per_call(lambda i: one_run_nbops(nbops, artifact, i), 500 // q)
    out["run"] = {
        "mlflow_ms": ml_run * 1e3,
        "nbops_ms": nb_run * 1e3,
        "speedup": ml_run / nb_run,
        "target_speedup": 20,
    }

    # 2. nbops run cost with 100 vs 10,000 runs in the store
    small, large = work / "s100", work / "s10000"
    fill_nbops(small, 100)
    fill_nbops(large, 10_000)
    nbops.set_store(small)
    at_100 = per_call(lambda i: one_run_nbops(nbops, artifact, i), 500 // q)
    nbops.set_store(large)
    at_10k = per_call(lambda i: one_run_nbops(nbops, artifact, i), 500 // q)
    out["run_scaling"] = {
        "nbops_ms_at_100": at_100 * 1e3,
        "nbops_ms_at_10000": at_10k * 1e3,
        "ratio_10000_vs_100": at_10k / at_100,
        "target_ratio_max": 1.5,
    }

    # 3. per-step metric logging
    with mlflow.start_run():
        ml_step = per_call(lambda i: mlflow.log_metric("loss", 1 / (i + 1), step=i), 500 // q)
    nbops.set_store(work / "nbops-store")
    with nbops.start_run():
        nb_step = per_call(lambda i: nbops.log_metric("loss", 1 / (i + 1), step=i), 200_000 // q)
    out["log_metric_step"] = {
        "mlflow_us": ml_step * 1e6,
        "nbops_us": nb_step * 1e6,
        "speedup": ml_step / nb_step,
        "target_speedup": 100,
    }

    # 4. listing runs: search_runs over 1,000 runs vs nbops.runs() over 1,000 and 10,000
    ml_search_store = work / "mlsearch.db"
    mlflow.set_tracking_uri(f"sqlite:///{ml_search_store}")
    mlflow.set_experiment("search")
    for i in range(1000 // q):
        one_run_mlflow_noart(mlflow, i)
    nb1k = work / "s1000"
    fill_nbops(nb1k, 1000 // q)
    t0 = time.perf_counter()
    frame = mlflow.search_runs(max_results=100_000)
    ml_search = time.perf_counter() - t0
    assert len(frame) == 1000 // q, len(frame)
    nbops.set_store(nb1k)
    nb_1k = best_of(lambda: uncached_runs(nbops), 3)
    nbops.set_store(large)
    nb_10k = best_of(lambda: uncached_runs(nbops), 3)
    nb_10k_cached = best_of(lambda: nbops.runs(), 3)
    from nbops.store.store import Store  # a fresh process: the store is read from disk

    t0 = time.perf_counter()
    cold = len(Store(large).all_runs())
    nb_cold = time.perf_counter() - t0
    out["search"] = {
        "mlflow_search_runs_1000_s": ml_search,
        "nbops_runs_1000_s": nb_1k,
        "speedup_1000": ml_search / nb_1k,
        "nbops_runs_10000_s": nb_10k,
        "nbops_runs_10000_unchanged_store_s": nb_10k_cached,
        "target_nbops_runs_10000_s": 0.2,
        "nbops_open_store_10000_runs_cold_s": nb_cold,
        "runs_seen": cold,
    }

    # 5. what %%track adds to a small cell (in-process IPython shell, no mlflow equivalent)
    nbops.set_store(work / "nbops-store")
    out["track_cell"] = track_cell_overhead(20 // q if q > 1 else 200)
    # 6. what %%track adds to whole notebooks: the corpus, plain vs tracked kernels
    out["track_corpus"] = corpus_overhead(quick=bool(args.quick))

    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out["quick"] = bool(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


def one_run_mlflow_noart(mlflow, i: int) -> None:
    with mlflow.start_run(run_name=f"s{i}"):
        mlflow.log_params({f"p{k}": k for k in range(5)})
        mlflow.log_metrics({f"m{k}": k / 3 for k in range(5)})


def track_cell_overhead(n: int) -> dict:
    """A small cell plain and under ``%%track`` in an in-process IPython shell (not
    silent: silent cells fire no run events and so are never tracked)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbops")
    shell.run_cell("import numpy as np\nX = np.random.default_rng(0).normal(size=(1000, 10))")
    body = "alpha = 0.1\ndepth = 3\nscore = float(X.mean()) + alpha\nloss = float(X.std())\n"
    shell.run_cell("%%track -q\n" + body)  # the first tracked cell captures the environment
    plain = [timed(lambda: shell.run_cell(body)) for _ in range(n)]
    tracked = [timed(lambda: shell.run_cell("%%track -q\n" + body)) for _ in range(n)]
    return {
        "untracked_cell_ms": min(plain) * 1e3,
        "tracked_cell_ms": min(tracked) * 1e3,
        "overhead_ms": (min(tracked) - min(plain)) * 1e3,
        "overhead_median_ms": (statistics.median(tracked) - statistics.median(plain)) * 1e3,
        "target_overhead_ms": 1.0,
        "cells": n,
    }


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def corpus_overhead(quick: bool = False) -> dict:
    """Wall time of the corpus notebooks (tests/corpus) cell by cell in a plain kernel
    and in a kernel where every cell is under ``%%track``, alternating cell by cell.
    Each round starts fresh kernels, so the first tracked cell's environment capture
    is included; a cell's time is its fastest over the rounds (the machine is shared,
    so single timings are noisy). Model files are written in the background: the
    wait for the last writes at the end of a round is reported too."""
    sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "corpus")]
    from kernel import Kernel
    from runner import NOTEBOOKS, run_notebook

    books = NOTEBOOKS[:4] if quick else NOTEBOOKS
    rounds = 1 if quick else 2
    best: dict[str, dict[str, float]] = {}
    drains, differing = [], 0
    for _ in range(rounds):
        work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
        env = {
            **os.environ,
            "NBOPS_STORE": str(work / "store"),
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(HERE.parent / "src"),
        }
        plain, tracked = Kernel(work, env), Kernel(work, env)
        try:
            assert tracked.run("%load_ext nbops")["status"] == "ok"
            for path in books:
                res = run_notebook(path, plain, tracked, details=False)
                differing += len(res.differences)
                for key, value in (("plain_s", res.plain_s), ("tracked_s", res.tracked_s)):
                    entry = best.setdefault(path.stem, {})
                    entry[key] = round(min(entry.get(key, value), value), 3)
            t0 = time.perf_counter()
            tracked.run("%nbops flush")
            drains.append(time.perf_counter() - t0)
        finally:
            plain.close(now=False)
            tracked.close(now=False)
    plain_s = sum(b["plain_s"] for b in best.values())
    tracked_s = sum(b["tracked_s"] for b in best.values())
    return {
        "notebooks": len(best),
        "rounds": rounds,
        "plain_s": plain_s,
        "tracked_s": tracked_s,
        "ratio": tracked_s / plain_s,
        "target_ratio_max": 1.3,
        "background_writes_left_at_end_s": max(drains),
        "differing_cells": differing,
        "per_notebook": best,
    }


def track_only(q: int) -> None:
    """Measure the %%track parts alone and merge them into the results file."""
    import nbops

    out = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    work = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    nbops.set_store(work / "nbops-store")
    out["track_cell"] = track_cell_overhead(20 // q if q > 1 else 200)
    out["track_corpus"] = corpus_overhead(quick=q > 1)
    out["track_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("track_cell", "track_corpus")}, indent=2))


def uncached_runs(nbops):
    """nbops.runs() as if the store had just changed (its cache dropped)."""
    from nbops.tracking import api

    api._runs_cache = None
    return nbops.runs()


def best_of(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def logging_quiet() -> None:
    import logging

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
