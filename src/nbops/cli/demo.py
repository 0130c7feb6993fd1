"""`nbops demo`: run the example notebooks end to end."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the example notebooks end to end")
    p.add_argument("--output", "-o", default="demo_output",
                   help="folder for executed notebooks and the demo store")
    p.add_argument("--notebooks", default=None,
                   help="folder of notebooks (default: the project's example_notebooks)")

    def handle(args: argparse.Namespace) -> int:
        from ..demo import run_demo

        return run_demo(Path(args.output), Path(args.notebooks) if args.notebooks else None)

    p.set_defaults(handler=handle)

