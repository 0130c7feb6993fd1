"""The one source of benchmark figures in the docs: benchmarks/results/*.json rendered as
markdown.

    python benchmarks/report.py          # rewrite docs/benchmarks.md and every block below
    python benchmarks/report.py --check  # exit 1 if a page is out of date with the results

Every row comes from a result file written by a benchmark that ran nbops and its
peer in one run on the same machine and data; a missing file leaves its rows out.

docs/benchmarks.md is generated whole. Other pages (README.md, docs/*.md) quote figures
only inside generated blocks::

    <!-- bench:NAME -->
    ...table written by this script...
    <!-- /bench -->

where NAME is one of ``BLOCKS``: ``summary`` (the full table), a section of it
(``tracking``, ``store``, ``compare``, ``registry``, ``drift``, ``drift-large``,
``serving``, ``mlserver``, ``server``, ``sync``) or a detail table (``registry-steps``,
``drift-detail``, ``store-detail``, ``drift-large-detail``, ``mlserver-detail``,
``sync-detail``). tests/test_docs_benchmarks.py fails when a
block is stale or a page quotes a figure that is in no result file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
DOC = ROOT / "docs" / "benchmarks.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- bench:([a-z-]+) -->\n)(.*?)(<!-- /bench -->)", re.S)
sys.path.insert(0, str(HERE))

from report_scale import (  # noqa: E402
    _load,
    _ms,
    drift_large,
    mlserver_detail,
    more_sections,
    store_detail,
    sync_detail,
)

HEADER = ["| what | peer | peer's result | nbops | nbops vs peer |", "|---|---|---|---|---|"]
# the sections of the summary, in the order the docs show them
SECTIONS = (
    "tracking",
    "store",
    "compare",
    "registry",
    "drift",
    "drift-large",
    "serving",
    "mlserver",
    "server",
    "sync",
)


def rows(section: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """(what, peer, peer value, nbops value, ratio) rows, of one section or all."""
    return [r for sec, group in _sections().items() if section in (None, sec) for r in group]


def _sections() -> dict[str, list[tuple[str, str, str, str, str]]]:
    sections: dict[str, list] = {}
    t = _load("tracking")
    if t:
        out = sections.setdefault("tracking", [])
        out += [
            (
                "one run: 5 params, 5 metrics, 1 artifact",
                "MLflow",
                f"{t['run']['mlflow_ms']:.3g} ms",
                f"{t['run']['nbops_ms']:.3g} ms",
                f"{t['run']['speedup']:.0f}x faster",
            ),
            (
                "one run, 10,000 vs 100 runs in the store",
                "-",
                "-",
                f"{t['run_scaling']['nbops_ms_at_10000']:.3g} vs "
                f"{t['run_scaling']['nbops_ms_at_100']:.3g} ms",
                f"{t['run_scaling']['ratio_10000_vs_100']:.2f}x",
            ),
            (
                "log_metric per step",
                "MLflow",
                _ms(t["log_metric_step"]["mlflow_us"] / 1e6),
                f"{t['log_metric_step']['nbops_us']:.3g} us",
                f"{t['log_metric_step']['speedup']:.0f}x faster",
            ),
            (
                "list 1,000 runs (search_runs / nbops.runs)",
                "MLflow",
                _ms(t["search"]["mlflow_search_runs_1000_s"]),
                _ms(t["search"]["nbops_runs_1000_s"]),
                f"{t['search']['speedup_1000']:.0f}x faster",
            ),
            (
                "nbops.runs() over 10,000 runs",
                "-",
                "-",
                _ms(t["search"]["nbops_runs_10000_s"]),
                "target < 200 ms",
            ),
        ]
        if "track_cell" in t:
            c = t["track_cell"]
            out.append(
                ("%%track overhead on a small cell", "-", "-", f"{c['overhead_ms']:.2g} ms", "-")
            )
    c = _load("compare")
    if c:
        out = sections.setdefault("compare", [])
        b = c["compare_build"]
        out.append(
            (
                "nbops.compare_widget() build, 1,000 / 10,000 runs",
                "-",
                "-",
                f"{b['1000']['build_ms_median']:.3g} / {b['10000']['build_ms_median']:.3g} ms",
                "target < 500 ms",
            )
        )
        if "cell_sweep" in c:
            out.append(
                (
                    "%%track --sweep overhead per trial over a plain loop",
                    "-",
                    "-",
                    f"{c['cell_sweep']['cell_sweep_overhead_ms_per_trial']:.2g} ms",
                    "-",
                )
            )
        s = c["sweep"]
        out.append(
            (
                "sweep overhead per trial",
                "MLflow nested runs",
                f"{s['mlflow_nested_runs_overhead_ms_per_trial']:.3g} ms",
                f"{s['nbops_sweep_overhead_ms_per_trial']:.3g} ms",
                f"{s['overhead_ratio_mlflow_over_nbops']:.0f}x less",
            )
        )
    r = _load("registry")
    if r:
        out = sections.setdefault("registry", [])
        nb, ml = r["seconds"]["nbops"]["median"], r["seconds"]["mlflow_skops"]["median"]
        ratio = r["ratio_peer_over_nbops_median"]["mlflow_skops"]
        out.append(
            (
                "log model + register + promote + load",
                "MLflow (skops)",
                _ms(ml["total"]),
                _ms(nb["total"]),
                f"{ratio['total']:.1f}x faster",
            )
        )
        pinned = r["ratio_peer_over_nbops_median"].get("mlflow_skops_pinned_requirements")
        if pinned:
            out.append(
                (
                    "same, MLflow given pip requirements",
                    "MLflow (skops)",
                    "-",
                    "-",
                    f"{pinned['total']:.1f}x faster",
                )
            )
    d = _load("drift")
    if d:
        out = sections.setdefault("drift", [])
        big = d["large"]
        out.append(
            (
                f"data drift, {big['rows']['reference']:,} rows x {big['columns']} columns",
                "Evidently 0.7.23",
                _ms(big["evidently"]["seconds"]),
                _ms(big["nbops"]["seconds"]),
                f"{big['speedup']:.0f}x faster",
            )
        )
        out.append(
            (
                "drift: peak memory / input size",
                "Evidently 0.7.23",
                f"{big['evidently']['memory_x_input']:.2f}x",
                f"{big['nbops']['memory_x_input']:.2f}x",
                "-",
            )
        )
        out.append(
            (
                "drift: per-column verdicts that agree",
                "Evidently 0.7.23",
                "-",
                "-",
                f"{big['verdict_agreement']:.0%}",
            )
        )
    v = _load("serving")
    if v:
        out = sections.setdefault("serving", [])
        nb, ml, ra = v["nbops"], v["mlflow"], v["ratios"]
        out += [
            (
                "serving: requests/s, 1-row, concurrency 8",
                "mlflow models serve",
                f"{ml['rps']:.0f}",
                f"{nb['rps']:.0f}",
                f"{ra['rps_nbops_over_mlflow']:.1f}x more",
            ),
            (
                "serving: p99 latency",
                "mlflow models serve",
                f"{ml['p99_ms']:.3g} ms",
                f"{nb['p99_ms']:.3g} ms",
                f"{ra['p99_mlflow_over_nbops']:.1f}x lower",
            ),
            (
                "serving: cold start to first /ping",
                "mlflow models serve",
                f"{ml['cold_start_s']:.3g} s",
                f"{nb['cold_start_s']:.3g} s",
                f"{ra['cold_start_mlflow_over_nbops']:.1f}x faster",
            ),
        ]
    s = _load("server")
    if s and isinstance(s.get("mlflow"), dict):
        out = sections.setdefault("server", [])
        out.append(
            (
                f"lab API: page of 50 of {s['runs']:,} runs",
                "MLflow runs/search",
                f"{s['mlflow']['newest_page']['median_ms']:.3g} ms",
                f"{s['nbops']['newest_page']['median_ms']:.3g} ms",
                f"{1 / s['ratio_nbops_over_mlflow']['newest_page']:.0f}x faster",
            )
        )
    more_sections(sections)
    return {k: sections[k] for k in sorted(sections, key=SECTIONS.index)}


def table(section: str | None = None) -> str:
    """The rows (of one section, or all) as a markdown table."""
    return "\n".join(HEADER + [f"| {' | '.join(r)} |" for r in rows(section)])


def registry_steps() -> str:
    """Per-step medians of the registry benchmark, nbops and each MLflow variant."""
    r = _load("registry")
    if not r:
        return ""
    variants = [
        ("nbops", "nbops"),
        ("mlflow_skops", "MLflow (skops)"),
        ("mlflow_cloudpickle", "MLflow (cloudpickle)"),
        ("mlflow_skops_pinned_requirements", "MLflow (skops, pinned requirements)"),
    ]
    variants = [(k, label) for k, label in variants if k in r["seconds"]]
    steps = [
        ("log", "log model to a run"),
        ("register", "register"),
        ("promote", "promote + alias"),
        ("load", "load by alias"),
        ("total", "total"),
    ]
    lines = [
        "| step | " + " | ".join(label for _, label in variants) + " |",
        "|---" * (len(variants) + 1) + "|",
    ]
    for key, label in steps:
        cells = [_ms(r["seconds"][k]["median"][key]) for k, _ in variants]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ratios = r["ratio_peer_over_nbops_median"]
    lines.append(
        "| MLflow / nbops, total | - | "
        + " | ".join(f"{ratios[k]['total']:.1f}x" for k, _ in variants[1:])
        + " |"
    )
    return "\n".join(lines)


def drift_detail() -> str:
    """Time, memory and verdict agreement of the large drift case, nbops vs Evidently."""
    d = _load("drift")
    if not d:
        return ""
    big = d["large"]
    n, e = big["nbops"], big["evidently"]
    cols = big["columns"]
    agree = round(big["verdict_agreement"] * cols)
    return "\n".join(
        [
            f"| {big['rows']['reference']:,} x {cols} | nbops | Evidently {e['version']} |",
            "|---|---|---|",
            f"| time | {_ms(n['seconds'])} | {_ms(e['seconds'])} |",
            f"| peak memory above the loaded data | {n['memory_x_input']:.2f}x input | "
            f"{e['memory_x_input']:.2f}x input |",
            f"| per-column verdicts that agree | {agree}/{cols} ({big['verdict_agreement']:.0%})"
            + (", dataset verdict agrees" if big.get("dataset_verdict_agrees") else "")
            + " | |",
        ]
    )


BLOCKS = {
    "summary": table,
    **{sec: (lambda sec=sec: table(sec)) for sec in SECTIONS},
    "registry-steps": registry_steps,
    "drift-detail": drift_detail,
    "store-detail": store_detail,
    "drift-large-detail": drift_large,
    "mlserver-detail": mlserver_detail,
    "sync-detail": sync_detail,
}


def page() -> str:
    """docs/benchmarks.md, whole."""
    return (
        "# Benchmarks\n\n"
        "`make bench` runs each benchmark: nbops and its peer in one run, on the same data, "
        "on the same machine (2 cores; shared machines are noisy, so read the ratios, "
        "not the absolute times). Raw numbers are in `benchmarks/results/*.json`; this "
        "page is generated from them by `python benchmarks/report.py`, and so are the "
        "figures other pages quote.\n\n"
        + table()
        + "\n\n## Registry, step by step\n\n"
        + registry_steps()
        + "\n\n## Drift, 1,000,000 rows\n\n"
        + drift_detail()
        + "\n\n## Drift larger than memory\n\n"
        + drift_large()
        + "\n\n## Store at scale\n\n"
        + store_detail()
        + "\n\n## Serving on OIP v2, against MLServer\n\n"
        + mlserver_detail()
        + "\n\n## Sync with an MLflow server\n\n"
        "The server (SQLite, MLflow's default 4 workers) runs on the same two cores as the "
        "client; a fresh server for each push.\n\n" + sync_detail() + "\n"
    )


def fill_blocks(text: str) -> str:
    """``text`` with every ``<!-- bench:NAME -->`` block rewritten from the results.
    Raises KeyError for an unknown NAME."""

    def one(m: re.Match) -> str:
        if m.group(2) not in BLOCKS:
            raise KeyError(f"unknown benchmark block {m.group(2)!r}; known: {sorted(BLOCKS)}")
        return m.group(1) + BLOCKS[m.group(2)]() + "\n" + m.group(4)

    return BLOCK.sub(one, text)


def stale() -> list[Path]:
    """Pages whose benchmark figures differ from what the results render."""
    out = [DOC] if not DOC.exists() or DOC.read_text() != page() else []
    return out + [p for p in PAGES if p != DOC and p.read_text() != fill_blocks(p.read_text())]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        old = stale()
        for p in old:
            print(f"{p.relative_to(ROOT)} is out of date; run python benchmarks/report.py")
        return 1 if old else 0
    DOC.write_text(page())
    for p in PAGES:
        if p != DOC and (new := fill_blocks(p.read_text())) != p.read_text():
            p.write_text(new)
            print(f"updated {p.relative_to(ROOT)}")
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
