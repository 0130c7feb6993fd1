"""`nbops drift`: compare two files for data drift. Exit code 0: no drift, 1: drift,
2: an error (bad file, column, flag or --html path), so a pipeline can tell them apart."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import _print_frame, fail


def _add_drift(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "drift",
        help="compare two CSV/Parquet files for data drift (exit 0: none, 1: drift, 2: error)",
    )
    p.add_argument(
        "reference",
        help="reference data: .csv, .parquet, a folder of Parquet "
        "files or a quoted glob ('logs/*.parquet')",
    )
    p.add_argument("current", help="current data, the same kinds")
    p.add_argument("--html", metavar="OUT", help="also write the HTML report to OUT")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--columns", help="comma-separated columns to compare (default: all)")
    p.add_argument("--target", metavar="COL", help="the target column (a label, not a feature)")
    p.add_argument("--prediction", metavar="COL", help="the model's prediction column")
    p.add_argument("--method", help="force one test for every column")
    p.add_argument("--threshold", type=float)
    p.add_argument("--drift-share", type=float, default=0.5)
    p.add_argument(
        "--engine",
        choices=("auto", "pandas", "duckdb"),
        default="auto",
        help="pandas (in memory) or duckdb (streams Parquet within --memory); "
        "auto: duckdb when the files would not fit",
    )
    p.add_argument(
        "--memory",
        metavar="SIZE",
        help="memory limit, e.g. 1GB (default: half of the available memory)",
    )

    def handle(args: argparse.Namespace) -> int:
        import nbops

        if args.html:
            out = Path(args.html).expanduser()
            if out.is_dir():
                fail(f"--html {args.html} is a folder; give a file name, e.g. {out / 'drift.html'}")
            if not out.resolve().parent.is_dir():
                fail(f"--html {args.html}: the folder {out.resolve().parent} does not exist")
        report = nbops.drift(
            args.reference,
            args.current,
            engine=args.engine,
            memory_limit=args.memory,
            columns=args.columns.split(",") if args.columns else None,
            target=args.target,
            prediction=args.prediction,
            method=args.method,
            threshold=args.threshold,
            drift_share=args.drift_share,
        )  # paths: read (or streamed) by the engine
        if args.html:
            report.to_html(args.html)
        if args.json:
            print(report.to_json(indent=2))
        else:
            _print_frame(report.summary.drop(columns=["note"]), "table")
            print(
                ("DRIFT" if report.drifted else "no drift")
                + f": {report.n_drifted}/{report.n_tested} columns drifted "
                f"(share {report.share:.2f}, limit {report.drift_share:.2f})"
            )
            if args.html:
                print(f"report: {args.html}")
        return 1 if report.drifted else 0

    p.set_defaults(handler=handle)
