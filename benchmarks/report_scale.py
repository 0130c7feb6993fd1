"""Benchmark tables of the store at scale, drift larger than memory, serving against
MLServer (OIP v2) and sync with an MLflow server, from benchmarks/results/*.json: the
summary rows (``more_sections``) and the detail tables benchmarks/report.py renders into
docs/benchmarks.md and the pages' ``<!-- bench:NAME -->`` blocks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(seconds: float) -> str:
    if seconds >= 1000:
        return f"{seconds:,.0f} s"
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _gib(n: float) -> str:
    return f"{n / 2**30:.2g} GiB"


def more_sections(sections: dict[str, list]) -> None:
    """The store, larger-than-memory drift, MLServer and sync rows of the summary."""
    st = _load("store")
    if st:
        out = sections.setdefault("store", [])
        nb, big, ml = st["nbops"], st["nbops_large"], st["mlflow"]
        op, opb = nb["open_and_list_fresh_process"], big["open_and_list_fresh_process"]
        out += [
            (
                f"import + list runs, fresh process: nbops {nb['runs']:,} runs, "
                f"MLflow {ml['runs']:,} runs",
                f"MLflow {ml['version']} (SQLite)",
                _ms(ml["search_runs_fresh_process_s"]),
                _ms(op["seconds"]),
                f"{ml['search_runs_fresh_process_s'] / op['seconds']:.0f}x faster "
                f"on {nb['runs'] // ml['runs']}x the runs",
            ),
            (
                "peak RSS of that process",
                f"MLflow {ml['version']} (SQLite)",
                f"{ml['peak_rss_mb']:.0f} MiB",
                f"{op['peak_rss_mb']:.0f} MiB",
                f"{ml['peak_rss_mb'] / op['peak_rss_mb']:.1f}x less",
            ),
            (
                f"import + list {big['runs']:,} runs, fresh process",
                "-",
                "-",
                f"{_ms(opb['seconds'])}, {opb['peak_rss_mb']:.0f} MiB peak RSS",
                "target < 5 s",
            ),
            (
                f"runs() right after a write, {nb['runs']:,} / {big['runs']:,} runs",
                "-",
                "-",
                f"{_ms(nb['runs_after_write_s'])} / {_ms(big['runs_after_write_s'])}",
                "target < 100 ms at 100,000",
            ),
            (
                f"one tracked run, {big['runs']:,} vs 100 runs in the store",
                "-",
                "-",
                f"{big['tracked_run_s']['at_scale'] * 1e3:.3g} vs "
                f"{big['tracked_run_s']['at_100'] * 1e3:.3g} ms",
                f"{big['tracked_run_s']['ratio']:.2f}x",
            ),
            (
                "store size per run",
                f"MLflow {ml['version']} (SQLite)",
                f"{ml['bytes_per_run']:,.0f} bytes",
                f"{nb['bytes_per_run']:,.0f} bytes",
                f"{ml['bytes_per_run'] / nb['bytes_per_run']:.1f}x smaller",
            ),
        ]
    d = _load("drift")
    if d and "larger_than_memory" in d:
        out = sections.setdefault("drift-large", [])
        lm = d["larger_than_memory"]
        sbs, ev = lm["side_by_side"], lm["side_by_side"]["evidently"]
        out += [
            (
                f"drift, {lm['rows_per_side']:,} rows x {lm['columns']} columns per side, "
                f"DuckDB engine, memory_limit {lm['memory_limit']}",
                "-",
                "-",
                f"{_ms(lm['duckdb']['seconds'])}, {_gib(lm['duckdb']['peak_rss_bytes'])} peak RSS",
                f"target < {_gib(lm['targets']['peak_rss_bytes'])} RSS",
            ),
            (
                f"drift, {sbs['rows_per_side']:,} rows per side: pandas / DuckDB engine",
                f"Evidently {ev['version']}",
                _ms(ev["seconds"]),
                f"{_ms(sbs['pandas']['seconds'])} / {_ms(sbs['duckdb']['seconds'])}",
                f"{ev['seconds'] / sbs['pandas']['seconds']:.0f}x / "
                f"{ev['seconds'] / sbs['duckdb']['seconds']:.0f}x faster",
            ),
        ]
    v = _load("serving")
    if v and "oip_v2" in v:
        out = sections.setdefault("mlserver", [])
        MLSERVER = _mlserver(v)
        for name, m in v["oip_v2"]["models"].items():
            nb, ms, ra = m["nbops"], m["mlserver"], m["ratios"]
            out.append(
                (
                    f"OIP v2 infer, {name}: requests/s / p99",
                    MLSERVER,
                    f"{ms['rps']:.0f} / {ms['p99_ms']:.3g} ms",
                    f"{nb['rps']:.0f} / {nb['p99_ms']:.3g} ms",
                    f"{ra['rps_nbops_over_mlserver']:.1f}x more / "
                    f"{ra['p99_mlserver_over_nbops']:.1f}x lower",
                )
            )
        models = v["oip_v2"]["models"].values()
        out.append(
            (
                "OIP v2 cold start to ready, the same models",
                MLSERVER,
                " / ".join(f"{m['mlserver']['cold_start_s']:.3g}" for m in models) + " s",
                " / ".join(f"{m['nbops']['cold_start_s']:.3g}" for m in models) + " s",
                " / ".join(f"{m['ratios']['cold_start_mlserver_over_nbops']:.0f}x" for m in models)
                + " faster",
            )
        )
    y = _load("sync")
    if y:
        out = sections.setdefault("sync", [])
        nb, sbs, tg = y["nbops"], y["side_by_side"], y["targets"]
        out += [
            (
                f"push {y['runs']:,} runs to a local mlflow server",
                "-",
                "-",
                _ms(nb["push_s"]),
                f"target < {tg['push_1000_s']:.0f} s: "
                + ("met" if nb["push_s"] < tg["push_1000_s"] else "not met here"),
            ),
            (
                "push again, nothing changed",
                "-",
                "-",
                _ms(nb["noop_repush_s"]),
                f"target < {tg['noop_repush_s']:.0f} s",
            ),
            (
                f"{sbs['runs']} runs: nbops push vs MLflow client, one call per value",
                "MLflow client",
                _ms(sbs["mlflow_client_per_value_s"]),
                _ms(sbs["nbops_push_s"]),
                f"{sbs['speedup']:.0f}x faster",
            ),
        ]


def _mlserver(v: dict) -> str:
    """ "MLServer X.Y.Z" as the serving result names it."""
    m = re.search(r"MLServer [\d.]+", v["oip_v2"]["what"])
    return m.group(0) if m else "MLServer"


def store_detail() -> str:
    """The store at 100,000 and 1,000,000 runs, then MLflow's SQLite store beside it."""
    st = _load("store")
    if not st:
        return ""
    cols = [st["nbops"], st["nbops_large"]]
    ml = st["mlflow"]

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(c) for c in cols) + " |"

    def vs(key: str):
        return lambda c: (
            f"{_ms(c[key]['at_scale'])} vs {_ms(c[key]['at_100'])} ({c[key]['ratio']:.2f}x)"
        )

    ex = ml["extrapolated"]
    return "\n".join(
        [
            "| nbops | " + " | ".join(f"{c['runs']:,} runs" for c in cols) + " |",
            "|---|---|---|",
            row("written", lambda c: c["generated"]),
            row(
                "fresh process: import and list every run",
                lambda c: (
                    f"{_ms(c['open_and_list_fresh_process']['seconds'])}, "
                    f"{c['open_and_list_fresh_process']['peak_rss_mb']:.0f} MiB peak RSS"
                ),
            ),
            row(
                "the same without the runs cache (first list after deleting `nbops.frame`)",
                lambda c: (
                    f"{_ms(c['open_and_list_without_cache']['seconds'])}, "
                    f"{c['open_and_list_without_cache']['peak_rss_mb']:.0f} MiB"
                ),
            ),
            row(
                "`runs()` right after a tracked run, same process",
                lambda c: _ms(c["runs_after_write_s"]),
            ),
            row(
                "one tracked run (5 params, 10 steps, end), vs a store of 100 runs",
                vs("tracked_run_s"),
            ),
            row(
                "first tracked run in a fresh process, vs 100 runs",
                vs("first_tracked_run_fresh_process_s"),
            ),
            row(
                "store size per run (log and snapshot), and what the runs cache adds",
                lambda c: f"{c['bytes_per_run']:,.0f} bytes, cache {c['cache_bytes_per_run']:,.0f}",
            ),
            "",
            f"| MLflow {ml['version']}, SQLite | {ml['runs']:,} runs (measured) "
            "| 100,000 runs (extrapolated) | 1,000,000 runs (extrapolated) |",
            "|---|---|---|---|",
            f"| fresh process: import mlflow, `search_runs()` | "
            f"{_ms(ml['search_runs_fresh_process_s'])} ({_ms(ml['search_runs_call_s'])} in "
            f"`search_runs`), {ml['peak_rss_mb']:.0f} MiB peak RSS | "
            f"{_ms(ex['fresh_process_s_at_100000'])} | {_ms(ex['fresh_process_s_at_1000000'])} |",
            f"| database size per run | {ml['bytes_per_run']:,.0f} bytes | - | - |",
            "",
            f"MLflow at 100,000 and 1,000,000 runs is extrapolated, {ex['note']}.",
        ]
    )


def drift_large() -> str:
    """Drift larger than memory (DuckDB), and the 1M-row pandas / DuckDB / Evidently runs."""
    d = _load("drift")
    if not d or "larger_than_memory" not in d:
        return ""
    lm = d["larger_than_memory"]
    sbs, dk = lm["side_by_side"], lm["duckdb"]
    n = f"{sbs['rows_per_side']:,}"
    same = sbs["pandas_duckdb_same_method_and_verdict"]
    return "\n".join(
        [
            f"| {lm['columns']} columns | time | peak memory |",
            "|---|---|---|",
            f"| DuckDB engine, {lm['rows_per_side']:,} rows per side "
            f"({lm['parquet_bytes_on_disk'] / 1e9:.2g} GB of Parquet), "
            f'`memory_limit="{lm["memory_limit"]}"` | {_ms(dk["seconds"])} | '
            f"{_gib(dk['peak_rss_bytes'])} RSS, whole process "
            f"(target < {_gib(lm['targets']['peak_rss_bytes'])}) |",
            f"| pandas engine, {n} rows per side | {_ms(sbs['pandas']['seconds'])} | "
            f"{_gib(sbs['pandas']['peak_extra_bytes'])} above the "
            f"{_gib(sbs['pandas']['input_bytes'])} of loaded data |",
            f"| DuckDB engine, same {n} rows, from Parquet | {_ms(sbs['duckdb']['seconds'])} | "
            f"{_gib(sbs['duckdb']['peak_rss_bytes'])} RSS, whole process |",
            f"| Evidently {sbs['evidently']['version']}, same {n} rows | "
            f"{_ms(sbs['evidently']['seconds'])} | {_gib(sbs['evidently']['peak_extra_bytes'])} "
            f"above the {_gib(sbs['evidently']['input_bytes'])} of loaded data |",
            "",
            f"pandas and DuckDB engines, same test and verdict per column at {n} rows: "
            f"{same:.0%} of the columns.",
        ]
    )


def mlserver_detail() -> str:
    """OIP v2 infer per model: nbops (1 process and --workers 2) vs MLServer."""
    v = _load("serving")
    if not v or "oip_v2" not in v:
        return ""
    peer = _mlserver(v)
    lines = [
        "| model | server | requests/s | p99 | cold start | vs MLServer |",
        "|---|---|---|---|---|---|",
    ]
    for m in v["oip_v2"]["models"].values():
        ra = m["ratios"]
        for key, label, ratio in [
            (
                "nbops",
                "nbops",
                f"{ra['rps_nbops_over_mlserver']:.1f}x the requests/s, "
                f"p99 {ra['p99_mlserver_over_nbops']:.1f}x lower, cold start "
                f"{ra['cold_start_mlserver_over_nbops']:.1f}x faster",
            ),
            (
                "nbops_workers_2",
                "nbops `--workers 2`",
                f"{ra['rps_nbops_2_workers_over_mlserver']:.1f}x the requests/s",
            ),
            ("mlserver", peer, ""),
        ]:
            r = m[key]
            lines.append(
                f"| {m['model'] if key == 'nbops' else ''} | {label} | {r['rps']:.0f} "
                f"| {r['p99_ms']:.3g} ms | {_ms(r['cold_start_s'])} | {ratio} |"
            )
    return "\n".join(lines)


def sync_detail() -> str:
    """Push to each way `mlflow server` serves, no-op re-push and pull of N runs, and 100
    runs vs MLflow's client per value."""
    y = _load("sync")
    if not y:
        return ""
    nb, sbs, tg = y["nbops"], y["side_by_side"], y["targets"]
    workers = y["server"].get("workers")
    names = {
        "uvicorn": f"`mlflow server` as it starts by default (uvicorn, {workers} workers)",
        "gunicorn": f"the same server behind gunicorn (`--gunicorn-opts`, {workers} workers)",
    }
    pushes = y.get("push_by_server") or {"uvicorn": {"push_s": nb["push_s"]}}
    rows = []
    for kind, m in sorted(pushes.items(), key=lambda km: km[0] != "uvicorn"):
        met = m["push_s"] < tg["push_1000_s"]
        cpu = (
            f"; CPU: server {m['server_cpu_s']:.0f} s, client {m['client_cpu_s']:.0f} s"
            if "server_cpu_s" in m
            else ""
        )
        rows.append(
            f"| push {y['runs']:,} runs to {names.get(kind, kind)} (target < "
            f"{tg['push_1000_s']:.0f} s: {'met' if met else '**not met** here'}) | "
            f"{_ms(m['push_s'])} ({y['runs'] / m['push_s']:.2g} runs/s{cpu}) | |"
        )
    return "\n".join(
        [
            "| | nbops | MLflow client, one call per value |",
            "|---|---|---|",
            *rows,
            f"| push again, nothing changed (target < {tg['noop_repush_s']:.0f} s) | "
            f"{_ms(nb['noop_repush_s'])} | |",
            f"| pull the {y['runs']:,} runs into an empty store | {_ms(nb['pull_s'])} | |",
            f"| the same {sbs['runs']} runs, side by side (target >= "
            f"{tg['speedup_vs_per_value']:.0f}x) | {_ms(sbs['nbops_push_s'])} | "
            f"{_ms(sbs['mlflow_client_per_value_s'])}: **{sbs['speedup']:.0f}x slower** |",
        ]
    )
