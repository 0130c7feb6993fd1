"""Render benchmarks/results/*.json as the markdown table in docs/benchmarks.md.

    python benchmarks/report.py          # rewrite docs/benchmarks.md, print the table

Every row comes from a result file written by a benchmark that ran nbops and its
peer in one run on the same machine and data; a missing file leaves its rows out.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "benchmarks.md"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def rows() -> list[tuple[str, str, str, str, str]]:
    """(what, peer, peer value, nbops value, ratio) rows."""
    out = []
    t = _load("tracking")
    if t:
        out += [
            ("one run: 5 params, 5 metrics, 1 artifact", "MLflow", f"{t['run']['mlflow_ms']:.3g} ms",
             f"{t['run']['nbops_ms']:.3g} ms", f"{t['run']['speedup']:.0f}x faster"),
            ("one run, 10,000 vs 100 runs in the store", "-", "-",
             f"{t['run_scaling']['nbops_ms_at_10000']:.3g} vs "
             f"{t['run_scaling']['nbops_ms_at_100']:.3g} ms",
             f"{t['run_scaling']['ratio_10000_vs_100']:.2f}x"),
            ("log_metric per step", "MLflow", _ms(t["log_metric_step"]["mlflow_us"] / 1e6),
             f"{t['log_metric_step']['nbops_us']:.3g} us",
             f"{t['log_metric_step']['speedup']:.0f}x faster"),
            ("list 1,000 runs (search_runs / nbops.runs)", "MLflow",
             _ms(t["search"]["mlflow_search_runs_1000_s"]), _ms(t["search"]["nbops_runs_1000_s"]),
             f"{t['search']['speedup_1000']:.0f}x faster"),
            ("nbops.runs() over 10,000 runs", "-", "-", _ms(t["search"]["nbops_runs_10000_s"]),
             "target < 200 ms"),
        ]
        if "track_cell" in t:
            c = t["track_cell"]
            out.append(("%%track overhead on a small cell", "-", "-",
                        f"{c['overhead_ms']:.2g} ms", "-"))
    c = _load("compare")
    if c:
        b = c["compare_build"]
        out.append(("nbops.compare_widget() build, 1,000 / 10,000 runs", "-", "-",
                    f"{b['1000']['build_ms_median']:.3g} / {b['10000']['build_ms_median']:.3g} ms",
                    "target < 500 ms"))
        s = c["sweep"]
        out.append(("sweep overhead per trial", "MLflow nested runs",
                    f"{s['mlflow_nested_runs_overhead_ms_per_trial']:.3g} ms",
                    f"{s['nbops_sweep_overhead_ms_per_trial']:.3g} ms",
                    f"{s['overhead_ratio_mlflow_over_nbops']:.0f}x less"))
    r = _load("registry")
    if r:
        nb, ml = r["seconds"]["nbops"]["median"], r["seconds"]["mlflow_skops"]["median"]
        ratio = r["ratio_peer_over_nbops_median"]["mlflow_skops"]
        out.append(("log model + register + promote + load", "MLflow (skops)",
                    _ms(ml["total"]), _ms(nb["total"]), f"{ratio['total']:.1f}x faster"))
        pinned = r["ratio_peer_over_nbops_median"].get("mlflow_skops_pinned_requirements")
        if pinned:
            out.append(("same, MLflow given pip requirements", "MLflow (skops)", "-", "-",
                        f"{pinned['total']:.1f}x faster"))
    d = _load("drift")
    if d:
        big = d["large"]
        out.append((f"data drift, {big['rows']['reference']:,} rows x {big['columns']} columns",
                    "Evidently 0.7.23", _ms(big["evidently"]["seconds"]),
                    _ms(big["nbops"]["seconds"]), f"{big['speedup']:.0f}x faster"))
        out.append(("drift: peak memory / input size", "Evidently 0.7.23",
                    f"{big['evidently']['memory_x_input']:.2f}x",
                    f"{big['nbops']['memory_x_input']:.2f}x", "-"))
        out.append(("drift: per-column verdicts that agree", "Evidently 0.7.23", "-", "-",
                    f"{big['verdict_agreement']:.0%}"))
    v = _load("serving")
    if v:
        nb, ml, ra = v["nbops"], v["mlflow"], v["ratios"]
        out += [
            ("serving: requests/s, 1-row, concurrency 8", "mlflow models serve",
             f"{ml['rps']:.0f}", f"{nb['rps']:.0f}", f"{ra['rps_nbops_over_mlflow']:.1f}x more"),
            ("serving: p99 latency", "mlflow models serve", f"{ml['p99_ms']:.3g} ms",
             f"{nb['p99_ms']:.3g} ms", f"{ra['p99_mlflow_over_nbops']:.1f}x lower"),
            ("serving: cold start to first /ping", "mlflow models serve",
             f"{ml['cold_start_s']:.3g} s", f"{nb['cold_start_s']:.3g} s",
             f"{ra['cold_start_mlflow_over_nbops']:.1f}x faster"),
        ]
    s = _load("server")
    if s and isinstance(s.get("mlflow"), dict):
        out.append((f"lab API: page of 50 of {s['runs']:,} runs", "MLflow runs/search",
                    f"{s['mlflow']['newest_page']['median_ms']:.3g} ms",
                    f"{s['nbops']['newest_page']['median_ms']:.3g} ms",
                    f"{1 / s['ratio_nbops_over_mlflow']['newest_page']:.0f}x faster"))
    return out


def table() -> str:
    lines = ["| what | peer | peer's result | nbops | nbops vs peer |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows()]
    return "\n".join(lines)


def main() -> None:
    text = (
        "# Benchmarks\n\n"
        "`make bench` runs each benchmark: nbops and its peer in one run, on the same data, "
        "on the same machine (2 cores; shared machines are noisy, so read the ratios, "
        "not the absolute times). Raw numbers are in `benchmarks/results/*.json`; this "
        "page is generated from them by `python benchmarks/report.py`.\n\n"
        + table() + "\n"
    )
    DOC.write_text(text)
    print(table())


if __name__ == "__main__":
    main()
