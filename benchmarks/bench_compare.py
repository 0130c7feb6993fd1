"""Comparison and sweep speed: nbops.compare_widget build time over 100 / 1,000 / 10,000 runs,
and a sweep's per-trial overhead next to the same loop under MLflow (nested runs).

Run with an interpreter that has both installed (``make bench`` uses .venv-bench):

    .venv-bench/bin/python benchmarks/bench_compare.py [--quick]

Writes benchmarks/results/compare.json with absolute times and nbops/MLflow ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "compare.json"
SPACE = {"alpha": [0.001, 0.01, 0.1, 1.0, 10.0], "depth": list(range(2, 12))}  # 50 trials


def fill(store_path: Path, n: int, seed: int = 0) -> None:
    """n finished runs with varied params, metrics and tags (bulk insert)."""
    from nbops.store import Store

    rng = random.Random(seed)
    store = Store(store_path)
    docs = []
    for i in range(n):
        docs.append(
            {
                "run_id": f"r{i:011d}",
                "name": f"run-{i}",
                "experiment": f"exp{i % 4}",
                "parent_id": None,
                "status": rng.choice(["FINISHED"] * 9 + ["FAILED"]),
                "start_time": f"2026-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}.000+00:00",
                "end_time": "2026-01-02T00:00:00.000+00:00",
                "duration": rng.random() * 10,
                "params": {
                    "alpha": rng.choice([0.01, 0.1, 1.0]),
                    "depth": rng.randint(2, 10),
                    "kind": rng.choice(["rf", "gb", "lr"]),
                    "seed": 0,
                },
                "metrics": {"accuracy": rng.random(), "f1": rng.random(), "loss": rng.random()},
                "tags": {"team": rng.choice(["a", "b"])},
                "code": {},
                "env": {},
                "inputs": [],
                "artifacts": [],
                "error": None,
            }
        )
    for start in range(0, n, 1000):
        store.runs.insert_multiple(docs[start : start + 1000])


def drop_runs_cache() -> None:
    from nbops.tracking import api

    if hasattr(api, "_runs_cache"):
        api._runs_cache = None


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def compare_build(work: Path, sizes: list[int], repeat: int) -> dict:
    import nbops

    out = {}
    for n in sizes:
        path = work / f"runs{n}"
        fill(path, n)
        nbops.set_store(path)
        nbops.compare_widget()  # warm-up: imports of pandas, ipywidgets, plotly

        def cold():
            drop_runs_cache()  # as right after a new run was recorded
            return nbops.compare_widget()

        cold_times = timed(cold, repeat)
        warm_times = timed(nbops.compare_widget, repeat)
        view = nbops.compare_widget()
        assert f"{n:,} of {n:,} runs" in view.pager.value, view.pager.value
        out[str(n)] = {
            "build_ms_median": statistics.median(cold_times) * 1e3,
            "build_ms_min": min(cold_times) * 1e3,
            "build_ms_unchanged_store_median": statistics.median(warm_times) * 1e3,
        }
    out["target_ms_at_1000"] = 500
    return out


def train(alpha: float, depth: int) -> float:
    """A small, fixed amount of real work per trial (the same for both tools)."""
    total = 0.0
    for i in range(2000):
        total += (alpha * i) % (depth + 1)
    return total / 2000


def grid() -> list[dict]:
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(SPACE))


def loop_plain() -> None:
    for params in grid():
        train(**params)


def loop_mlflow(mlflow) -> None:
    best = None
    with mlflow.start_run(run_name="sweep"):
        mlflow.log_params({f"space.{k}": repr(v) for k, v in SPACE.items()})
        for k, params in enumerate(grid()):
            with mlflow.start_run(run_name=f"sweep-{k}", nested=True):
                mlflow.log_params(params)
                score = train(**params)
                mlflow.log_metric("score", score)
            if best is None or score > best[0]:
                best = (score, params)
        mlflow.log_metric("best_score", best[0])
        mlflow.log_params({f"best.{k}": v for k, v in best[1].items()})


def loop_nbops(nbops) -> None:
    nbops.sweep(train, SPACE, objective="score", progress=False)


def sweep_overhead(work: Path, repeat: int) -> dict:
    import mlflow

    import nbops

    trials = len(grid())
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_experiment("sweep")
    nbops.set_store(work / "sweep-store")
    for fn in (loop_plain, lambda: loop_mlflow(mlflow), lambda: loop_nbops(nbops)):
        fn()  # warm-up: imports, schema creation
    plain = statistics.median(timed(loop_plain, repeat))
    ml = statistics.median(timed(lambda: loop_mlflow(mlflow), repeat))
    nb = statistics.median(timed(lambda: loop_nbops(nbops), repeat))
    ml_over = (ml - plain) / trials
    nb_over = (nb - plain) / trials
    return {
        "trials": trials,
        "plain_loop_ms_per_trial": plain / trials * 1e3,
        "mlflow_nested_runs_overhead_ms_per_trial": ml_over * 1e3,
        "nbops_sweep_overhead_ms_per_trial": nb_over * 1e3,
        "overhead_ratio_mlflow_over_nbops": ml_over / nb_over if nb_over > 0 else None,
        "peer": f"mlflow {mlflow.__version__} (sqlite store), nested runs in a loop",
    }


def cell_sweep_overhead(work: Path, repeat: int) -> dict:
    """%%track --sweep over a small cell vs running the same cell in a plain loop
    (no MLflow equivalent: MLflow has no cell magic)."""
    from IPython.core.interactiveshell import InteractiveShell

    import nbops

    nbops.set_store(work / "cell-store")
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbops")
    body = "alpha = 0.1\ndepth = 3\nscore = sum((alpha * i) % (depth + 1) for i in range(2000))\n"
    spec = " ".join(f"{k}={v!r}".replace(" ", "") for k, v in SPACE.items())
    loop = (
        "for alpha in {a}:\n    for depth in {d}:\n        score = sum((alpha * i) % (depth + 1)"
        " for i in range(2000))\n"
    ).format(a=SPACE["alpha"], d=SPACE["depth"])
    trials = len(grid())
    shell.run_cell(f'%%track -q --sweep "{spec}" --objective score\n' + body, silent=True)
    plain = statistics.median(timed(lambda: shell.run_cell(loop, silent=True), repeat))
    swept = statistics.median(
        timed(
            lambda: shell.run_cell(
                f'%%track -q --sweep "{spec}" --objective score\n' + body, silent=True
            ),
            repeat,
        )
    )
    return {
        "trials": trials,
        "plain_loop_ms_per_trial": plain / trials * 1e3,
        "cell_sweep_overhead_ms_per_trial": (swept - plain) / trials * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    warnings.filterwarnings("ignore")
    import logging

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)

    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    os.chdir(work)
    out: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    out["compare_build"] = compare_build(work, [100, 1000, 10_000], repeat)
    out["sweep"] = sweep_overhead(work, repeat)
    out["cell_sweep"] = cell_sweep_overhead(work, repeat)
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out["quick"] = bool(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
