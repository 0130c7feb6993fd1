"""nbops.drift vs Evidently 0.7.23 DataDriftPreset on the same generated data.

    make bench-drift            # or: .venv/bin/python benchmarks/bench_drift.py

One run generates a reference and a current frame (default 1,000,000 rows x 25
columns: 20 numeric, 5 categorical, with shifts of several sizes, some near the
thresholds), writes them to Parquet once, then runs each tool in its own process on
those files: nbops in .venv, Evidently in .venv-bench-evidently (Evidently 0.7.23 does
not import with pandas 3, so it has its own environment with pandas < 3). Each worker
reports wall time of the drift call, the peak RSS increase during it (the kernel's
high-water mark is reset just before), the input size, and its per-column verdicts.
A second, small case (800-row reference) exercises the KS / chi-square / Z branch.

Larger than memory (``--large-rows``, default 20,000,000 per side): the same 25 columns
are written once as Parquet, one row group per million rows, and nbops' DuckDB engine
compares them with ``memory_limit="1GB"`` (target: peak RSS of the whole process under
1.5 GB). Side by side at the largest size that fits that limit in pandas
(``--fit-rows``, default 1,000,000 per side): the pandas engine, the DuckDB engine on the
same files, and Evidently. The big files are deleted afterwards (``--keep`` keeps them).

Writes benchmarks/results/drift.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "drift.json"
NBOPS_PY = ROOT / ".venv" / "bin" / "python"
EVIDENTLY_PY = ROOT / ".venv-bench-evidently" / "bin" / "python"


# -- data -----------------------------------------------------------------------------


def generate(n_ref: int, n_cur: int, seed: int = 7):
    """Reference and current frames: 20 numeric columns (mean shifts of 0 to 0.5 std,
    scale changes, NaNs, a low-cardinality one) and 5 categorical columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    # mean shift in reference-std units for each numeric column; Wasserstein (normed)
    # of a pure mean shift is about the shift itself, so 0.08-0.12 sit near 0.1
    shifts = [
        0,
        0,
        0,
        0,
        0,
        0.02,
        0.05,
        0.08,
        0.09,
        0.11,
        0.12,
        0.15,
        0.2,
        0.3,
        0.5,
        0,
        0,
        0,
        0.25,
        0,
    ]
    ref, cur = {}, {}
    for i, shift in enumerate(shifts):
        name = f"num_{i:02d}"
        sd = 1.0 + 0.25 * i
        if i == 15:  # lognormal, heavy right tail, scale change
            ref[name] = rng.lognormal(0, 1, n_ref)
            cur[name] = rng.lognormal(0, 1.1, n_cur)
        elif i == 16:  # uniform, no change, with missing values
            r, c = rng.uniform(-3, 3, n_ref), rng.uniform(-3, 3, n_cur)
            r[rng.random(n_ref) < 0.05] = np.nan
            c[rng.random(n_cur) < 0.08] = np.nan
            ref[name], cur[name] = r, c
        elif i == 17:  # a rounded measurement with 4 values (few uniques: JS branch)
            ref[name] = rng.choice([0.0, 0.5, 1.0, 1.5], n_ref, p=[0.4, 0.3, 0.2, 0.1])
            cur[name] = rng.choice([0.0, 0.5, 1.0, 1.5], n_cur, p=[0.3, 0.3, 0.25, 0.15])
        elif i == 19:  # variance change only
            ref[name] = rng.normal(10, sd, n_ref)
            cur[name] = rng.normal(10, sd * 1.3, n_cur)
        else:
            ref[name] = rng.normal(5, sd, n_ref)
            cur[name] = rng.normal(5 + shift * sd, sd, n_cur)
    levels = list("ABCDEFGHIJKL")
    cat_specs = [  # (number of levels, how much weight moves to the first level)
        (2, 0.3),
        (5, 0.10),
        (8, 0.25),
        (12, 0.6),
        (4, 1.0),
    ]
    for j, (k, move) in enumerate(cat_specs):
        name = f"cat_{j}"
        p = np.linspace(2, 1, k)
        p /= p.sum()
        q = p.copy()
        q[0] *= 1 + move
        q /= q.sum()
        ref[name] = np.array(levels[:k], dtype=object)[rng.choice(k, n_ref, p=p)]
        cur[name] = np.array(levels[:k], dtype=object)[rng.choice(k, n_cur, p=q)]
    return pd.DataFrame(ref), pd.DataFrame(cur)


# -- workers (each runs in the tool's own environment) ---------------------------------


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def worker(tool: str, ref_path: str, cur_path: str) -> dict:
    if tool == "nbops-duckdb":
        return duckdb_worker(ref_path, cur_path)
    import pandas as pd

    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    input_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    if tool == "nbops":
        import nbops

        def run():
            report = nbops.drift(ref, cur)
            return (
                {r["column"]: bool(r["drifted"]) for r in report.columns},
                {r["column"]: r["test"] for r in report.columns},
                {
                    r["column"]: (r["p_value"] if r["p_value"] is not None else r["statistic"])
                    for r in report.columns
                },
                bool(report.drifted),
            )

        version = nbops.__version__
    else:
        import evidently
        from evidently import Report
        from evidently.presets import DataDriftPreset

        def run():
            snap = Report([DataDriftPreset()], include_tests=True).run(
                current_data=cur, reference_data=ref
            )
            data = snap.dict()
            verdicts, methods, scores, dataset = {}, {}, {}, None
            for m in data["metrics"]:
                cfg = m["config"]
                if cfg.get("type", "").endswith("ValueDrift"):
                    methods[cfg["column"]] = cfg.get("method")
                    scores[cfg["column"]] = m["value"]
            for t in data["tests"]:
                name = t["name"]
                if name.startswith("Value Drift for column "):
                    verdicts[name[len("Value Drift for column ") :]] = t["status"] == "FAIL"
                elif name.startswith("Share of Drifted Columns"):
                    dataset = t["status"] == "FAIL"
            return verdicts, methods, scores, dataset

        version = evidently.__version__

    full = (ref, cur)
    ref, cur = full[0].head(300), full[1].head(300)
    run()  # warm-up: lazy imports are not what is measured
    ref, cur = full
    del full
    gc.collect()
    base_kb = _rss_kb("VmRSS")
    exact_peak = _reset_peak()
    t0 = time.perf_counter()
    verdicts, methods, scores, dataset = run()
    seconds = time.perf_counter() - t0
    peak_kb = _rss_kb("VmHWM")
    return {
        "tool": tool,
        "version": version,
        "seconds": seconds,
        "input_bytes": input_bytes,
        "peak_extra_bytes": max(0, peak_kb - base_kb) * 1024,
        "peak_is_exact": exact_peak,
        "rows": [len(ref), len(cur)],
        "verdicts": verdicts,
        "methods": methods,
        "scores": scores,
        "dataset_drift": dataset,
    }


def duckdb_worker(ref_path: str, cur_path: str, memory: str = "1GB") -> dict:
    """nbops' DuckDB engine straight on the files; the peak is the whole process's."""
    import nbops
    from nbops.drift.sources import parquet_bytes

    nbops.drift(ref_path, cur_path, engine="duckdb", memory_limit=memory, columns=["num_00"])
    gc.collect()
    base_kb = _rss_kb("VmRSS")
    exact_peak = _reset_peak()
    t0 = time.perf_counter()
    report = nbops.drift(ref_path, cur_path, engine="duckdb", memory_limit=memory)
    seconds = time.perf_counter() - t0
    peak_kb = _rss_kb("VmHWM")
    return {
        "tool": "nbops-duckdb",
        "version": nbops.__version__,
        "seconds": seconds,
        "memory_limit": memory,
        "input_bytes": parquet_bytes([ref_path, cur_path]),
        "peak_rss_bytes": peak_kb * 1024,
        "peak_extra_bytes": max(0, peak_kb - base_kb) * 1024,
        "peak_is_exact": exact_peak,
        "rows": [report.rows["reference"], report.rows["current"]],
        "verdicts": {r["column"]: bool(r["drifted"]) for r in report.columns},
        "methods": {r["column"]: r["test"] for r in report.columns},
        "scores": {
            r["column"]: (r["p_value"] if r["p_value"] is not None else r["statistic"])
            for r in report.columns
        },
        "dataset_drift": bool(report.drifted),
    }


def write_large(path_ref: Path, path_cur: Path, rows: int, chunk: int = 1_000_000) -> float:
    """Both sides as Parquet, one row group per ``chunk`` rows, never more than one chunk
    in memory; returns the seconds it took."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    writers = {}
    try:
        done, k = 0, 0
        while done < rows:
            n = min(chunk, rows - done)
            ref, cur = generate(n, n, seed=1000 + k)
            for path, frame in ((path_ref, ref), (path_cur, cur)):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if path not in writers:
                    writers[path] = pq.ParquetWriter(path, table.schema)
                writers[path].write_table(table, row_group_size=chunk)
            done, k = done + n, k + 1
            del ref, cur
    finally:
        for w in writers.values():
            w.close()
    return time.perf_counter() - t0


def larger_than_memory(rows: int, fit_rows: int, tmp: Path, keep: bool) -> dict:
    """The DuckDB engine at ``rows`` per side with a 1 GB limit, and pandas / DuckDB /
    Evidently side by side at ``fit_rows`` per side."""
    big_ref, big_cur = tmp / "big-ref.parquet", tmp / "big-cur.parquet"
    print(f"[big] writing {rows:,} rows x 25 columns per side ...", flush=True)
    gen_s = write_large(big_ref, big_cur, rows)
    disk = big_ref.stat().st_size + big_cur.stat().st_size
    print(f"[big] {disk / 1e9:.1f} GB of Parquet in {gen_s:.0f} s; nbops duckdb ...", flush=True)
    try:
        big = _run_worker(NBOPS_PY, "nbops-duckdb", big_ref, big_cur)
    finally:
        if not keep:
            big_ref.unlink(missing_ok=True)
            big_cur.unlink(missing_ok=True)
    print(
        f"[big] duckdb {big['seconds']:.1f} s, peak RSS {big['peak_rss_bytes'] / 2**30:.2f} GiB",
        flush=True,
    )
    fit_ref, fit_cur = tmp / "fit-ref.parquet", tmp / "fit-cur.parquet"
    write_large(fit_ref, fit_cur, fit_rows)
    print(f"[fit] {fit_rows:,} rows per side: pandas, duckdb, Evidently ...", flush=True)
    pandas_run = _run_worker(NBOPS_PY, "nbops", fit_ref, fit_cur)
    duck_run = _run_worker(NBOPS_PY, "nbops-duckdb", fit_ref, fit_cur)
    evidently_run = (
        _run_worker(EVIDENTLY_PY, "evidently", fit_ref, fit_cur) if EVIDENTLY_PY.exists() else None
    )
    same = [
        c
        for c in pandas_run["verdicts"]
        if pandas_run["verdicts"][c] == duck_run["verdicts"].get(c)
        and pandas_run["methods"][c] == duck_run["methods"].get(c)
    ]
    keys = ("seconds", "input_bytes", "peak_extra_bytes")
    return {
        "rows_per_side": rows,
        "columns": 25,
        "memory_limit": "1GB",
        "parquet_bytes_on_disk": disk,
        "generate_seconds": gen_s,
        "targets": {"peak_rss_bytes": 1.5 * 2**30},
        "duckdb": {
            k: big[k]
            for k in (
                "seconds",
                "input_bytes",
                "peak_rss_bytes",
                "peak_extra_bytes",
                "dataset_drift",
                "rows",
            )
        },
        "peak_rss_ok": big["peak_rss_bytes"] < 1.5 * 2**30,
        "methods": big["methods"],
        "side_by_side": {
            "rows_per_side": fit_rows,
            "pandas": {k: pandas_run[k] for k in keys},
            "duckdb": {k: duck_run[k] for k in (*keys, "peak_rss_bytes")},
            "evidently": (
                {k: evidently_run[k] for k in keys} | {"version": evidently_run["version"]}
                if evidently_run
                else "not run: .venv-bench-evidently is missing"
            ),
            "pandas_duckdb_same_method_and_verdict": len(same) / len(pandas_run["verdicts"]),
        },
    }


def _run_worker(python: Path, tool: str, ref_path: Path, cur_path: Path) -> dict:
    out = subprocess.run(
        [str(python), __file__, "--worker", tool, str(ref_path), str(cur_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise SystemExit(f"{tool} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(n_ref: int, n_cur: int, tmp: Path, label: str) -> dict:
    ref, cur = generate(n_ref, n_cur)
    ref_path, cur_path = tmp / f"{label}-ref.parquet", tmp / f"{label}-cur.parquet"
    ref.to_parquet(ref_path)
    cur.to_parquet(cur_path)
    del ref, cur
    print(f"[{label}] {n_ref:,} + {n_cur:,} rows: running nbops ...", flush=True)
    nb = _run_worker(NBOPS_PY, "nbops", ref_path, cur_path)
    print(f"[{label}] nbops {nb['seconds']:.2f} s; running Evidently ...", flush=True)
    ev = _run_worker(EVIDENTLY_PY, "evidently", ref_path, cur_path)
    print(f"[{label}] evidently {ev['seconds']:.2f} s", flush=True)
    cols = sorted(ev["verdicts"])
    agree = [c for c in cols if nb["verdicts"].get(c) == ev["verdicts"][c]]
    per_column = {
        c: {
            "nbops": nb["verdicts"].get(c),
            "evidently": ev["verdicts"][c],
            "nbops_test": nb["methods"].get(c),
            "evidently_test": ev["methods"].get(c),
            "nbops_score": nb["scores"].get(c),
            "evidently_score": ev["scores"].get(c),
        }
        for c in cols
    }
    return {
        "rows": {"reference": n_ref, "current": n_cur},
        "columns": len(cols),
        "nbops": {
            k: nb[k]
            for k in ("version", "seconds", "input_bytes", "peak_extra_bytes", "dataset_drift")
        }
        | {"memory_x_input": nb["peak_extra_bytes"] / nb["input_bytes"]},
        "evidently": {
            k: ev[k]
            for k in ("version", "seconds", "input_bytes", "peak_extra_bytes", "dataset_drift")
        }
        | {"memory_x_input": ev["peak_extra_bytes"] / ev["input_bytes"]},
        "speedup": ev["seconds"] / nb["seconds"],
        "memory_ratio_nbops_over_evidently": nb["peak_extra_bytes"]
        / max(1, ev["peak_extra_bytes"]),
        "verdict_agreement": len(agree) / len(cols) if cols else None,
        "dataset_verdict_agrees": nb["dataset_drift"] == ev["dataset_drift"],
        "disagreements": [c for c in cols if c not in agree],
        "per_column": per_column,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "REF", "CUR"))
    parser.add_argument(
        "--large-rows",
        type=int,
        default=20_000_000,
        help="rows per side of the larger-than-memory case (0: skip it)",
    )
    parser.add_argument(
        "--fit-rows",
        type=int,
        default=1_000_000,
        help="rows per side where pandas, DuckDB and Evidently run side by side",
    )
    parser.add_argument(
        "--only-large",
        action="store_true",
        help="run only the larger-than-memory case; keep the other results",
    )
    parser.add_argument("--keep", action="store_true", help="keep the big Parquet files")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    if not EVIDENTLY_PY.exists():
        raise SystemExit(f"{EVIDENTLY_PY} is missing; create it with `make bench-evidently-venv`")
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="nbops-bench-drift-") as tmp:
        if args.only_large:
            cases = {k: previous[k] for k in ("large", "small_reference") if k in previous}
        else:
            cases = {
                "large": compare(args.rows, args.rows, Path(tmp), "large"),
                "small_reference": compare(800, 5_000, Path(tmp), "small"),
            }
        if args.large_rows:
            cases["larger_than_memory"] = larger_than_memory(
                args.large_rows, args.fit_rows, Path(tmp), args.keep
            )
    result = {
        "benchmark": "drift",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "targets": {"seconds_at_1M": 3.0, "memory_x_input": 3.0, "verdict_agreement": 0.95},
        **cases,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if "large" in cases:
        big = cases["large"]
        print(
            f"nbops {big['nbops']['seconds']:.2f} s vs Evidently "
            f"{big['evidently']['seconds']:.1f} s ({big['speedup']:.0f}x faster); memory "
            f"{big['nbops']['memory_x_input']:.2f}x input vs "
            f"{big['evidently']['memory_x_input']:.2f}x; verdict agreement "
            f"{big['verdict_agreement']:.0%} (small reference: "
            f"{cases['small_reference']['verdict_agreement']:.0%})"
        )
    if "larger_than_memory" in cases:
        ltm = cases["larger_than_memory"]
        side = ltm["side_by_side"]
        print(
            f"{ltm['rows_per_side']:,} rows per side, 1 GB limit: DuckDB "
            f"{ltm['duckdb']['seconds']:.1f} s, peak RSS "
            f"{ltm['duckdb']['peak_rss_bytes'] / 2**30:.2f} GiB; at {side['rows_per_side']:,}: "
            f"pandas {side['pandas']['seconds']:.2f} s, DuckDB {side['duckdb']['seconds']:.2f} s"
            + (
                f", Evidently {side['evidently']['seconds']:.1f} s"
                if isinstance(side["evidently"], dict)
                else ""
            )
        )
    print(f"-> {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
