"""`nbops runs` and `nbops show`: list and inspect recorded runs."""

from __future__ import annotations

import argparse
import json

from ._common import _print_frame


def _add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--experiment", "-e")
    p.add_argument("--status", choices=["RUNNING", "FINISHED", "FAILED", "KILLED"])
    p.add_argument("--filter", help="pandas query, e.g. \"`metrics.acc` > 0.9\"")
    p.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        frame = nbops.runs(experiment=args.experiment, status=args.status, filter=args.filter)
        if args.format == "table":
            keep = [c for c in frame.columns if c not in ("end_time", "parent_id")]
            frame = frame[keep]
        _print_frame(frame, args.format)
        return 0

    p.set_defaults(handler=handle)


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show one run as JSON")
    p.add_argument("run_id")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        print(json.dumps(nbops.get_run(args.run_id), indent=2, default=str))
        return 0

    p.set_defaults(handler=handle)

