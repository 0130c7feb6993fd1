"""The ``nbops`` command. Each subcommand is an ``_add_<name>(sub)`` function that
declares its arguments and a handler; handlers import what they need lazily."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ._errors import NbopsError

ROOT = Path(__file__).resolve().parents[2]


def _print_frame(frame: Any, fmt: str) -> None:
    if fmt == "json":
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif fmt == "csv":
        print(frame.to_csv(index=False), end="")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.max_columns", 30,
                               "display.width", 200):
            print(frame.to_string(index=False) if len(frame) else "no runs yet")


# -- runs / show ---------------------------------------------------------------------


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


# -- demo ----------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the example notebooks end to end")
    p.add_argument("--output", "-o", default="demo_output",
                   help="folder for executed notebooks and the demo store")
    p.add_argument("--notebooks", default=None,
                   help="folder of notebooks (default: the project's example_notebooks)")

    def handle(args: argparse.Namespace) -> int:
        from .demo import run_demo

        return run_demo(Path(args.output), Path(args.notebooks) if args.notebooks else None)

    p.set_defaults(handler=handle)


# Subcommands, in the order `nbops --help` lists them. Add yours here.
COMMANDS = [_add_runs, _add_show, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbops", description="notebook-native MLOps")
    parser.add_argument("--store", help="store folder (default: $NBOPS_STORE or ./.nbops)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.store:
        os.environ["NBOPS_STORE"] = str(Path(args.store).resolve())
    try:
        return int(args.handler(args) or 0)
    except NbopsError as exc:
        print(f"nbops: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
