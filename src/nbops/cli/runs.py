"""`nbops runs` and `nbops show`: list and inspect recorded runs."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from ._common import _print_frame, console_width, fail, store_check

DEFAULT_LIMIT = 20


def _add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs",
        help="list runs as a table that fits the terminal (or --format json|csv)",
        description="List recorded runs, newest first. The table shows name, status, start, "
        "duration, the main metrics and the params that differ; --columns picks "
        "others (metrics and params also by their short names).",
    )
    store_check(p)
    p.add_argument("--experiment", "-e")
    p.add_argument("--status", choices=["RUNNING", "FINISHED", "FAILED", "KILLED"])
    p.add_argument("--filter", help='pandas query, e.g. "`metrics.acc` > 0.9"')
    p.add_argument(
        "--columns",
        "-c",
        metavar="COLS",
        help="comma-separated columns, e.g. name,status,acc,params.max_depth",
    )
    p.add_argument(
        "--sort",
        "-s",
        metavar="COL",
        help="sort by this column (a leading - or --desc: descending), e.g. --sort=-acc",
    )
    p.add_argument("--desc", action="store_true", help="sort descending")
    p.add_argument(
        "--limit",
        "-n",
        type=int,
        metavar="N",
        help=f"show at most N runs (table default {DEFAULT_LIMIT}; 0: all)",
    )
    p.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        from ._table import resolve_column

        frame = nbops.runs(experiment=args.experiment, status=args.status, filter=args.filter)
        if args.experiment and not len(frame):
            known = sorted(set(nbops.runs()["experiment"].dropna()))
            if args.experiment not in known:
                fail(
                    f"no experiment {args.experiment!r} in the store {args.store_path}; "
                    f"experiments: {', '.join(known) if known else 'none yet'}"
                )
        if args.limit is not None and args.limit < 0:
            fail("--limit must be 0 (all) or more")
        if args.sort:
            desc = args.desc or args.sort.startswith("-")
            key = resolve_column(frame, args.sort.lstrip("-"))
            frame = frame.sort_values(
                key, ascending=not desc, na_position="last", kind="stable"
            ).reset_index(drop=True)
        cols = (
            [resolve_column(frame, c.strip()) for c in args.columns.split(",") if c.strip()]
            if args.columns
            else None
        )
        total = len(frame)
        limit = (
            args.limit
            if args.limit is not None
            else (DEFAULT_LIMIT if args.format == "table" else 0)
        )
        if limit:
            frame = frame.head(limit)
        if args.format != "table":
            _print_frame(frame[cols] if cols else frame, args.format)
            return 0
        if not total:
            what = " ".join(filter(None, [args.status, "runs"]))
            where = f" in experiment {args.experiment!r}" if args.experiment else ""
            match = " matching --filter" if args.filter else ""
            print(
                f"no {what}{where}{match}"
                if args.filter or args.status or args.experiment
                else f"no runs yet in {args.store_path}"
            )
            return 0
        print_table(frame, total, cols)
        return 0

    p.set_defaults(handler=handle)


def print_table(frame: Any, total: int, cols: list[str] | None = None) -> None:
    """Print ``frame`` (the first of ``total`` runs) as a table that fits the terminal,
    then a line for the runs and columns left out. ``cols``: the user's columns, in
    their order (default: the columns a person reads first)."""
    from ._table import default_columns, render

    width = console_width()
    left_out = render(frame, cols or default_columns(frame), width, ordered=bool(cols))
    notes = []
    if total > len(frame):
        notes.append(
            f"{len(frame)} of {total} runs, {total - len(frame)} more (--limit 0 shows all)"
        )
    if left_out:
        notes.append(
            f"{len(left_out)} more column{'s' if len(left_out) > 1 else ''} did "
            f"not fit in {width} characters (pick with --columns)"
        )
    if notes:
        print(textwrap.fill("; ".join(notes), width=width))


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show one run as JSON")
    store_check(p)
    p.add_argument("run_id")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        print(json.dumps(nbops.get_run(args.run_id), indent=2, default=str))
        return 0

    p.set_defaults(handler=handle)
