"""`nbops demo`: run the example notebooks end to end, then show what they recorded and
how to look at it (a command that works as printed)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

DEMO_LIMIT = 20


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the example notebooks end to end in a fresh store")
    p.add_argument(
        "--output",
        "-o",
        default="demo_output",
        help="folder for executed notebooks and the demo store (default: "
        "demo_output; an earlier demo store there is moved aside)",
    )
    p.add_argument(
        "--notebooks",
        default=None,
        help="folder of notebooks (default: the project's example_notebooks)",
    )

    def handle(args: argparse.Namespace) -> int:
        from ..demo import run_demo

        code = run_demo(Path(args.output), Path(args.notebooks) if args.notebooks else None)
        summary(Path(args.output).resolve())
        return code

    p.set_defaults(handler=handle)


def summary(output: Path) -> None:
    """The demo's runs (columns that are the same on every rerun: no ids, no times),
    where the outputs are, and the command that lists the runs, as it can be typed."""
    import nbops

    from ._table import default_columns
    from .runs import print_table

    store = output / "store"
    nbops.set_store(store)
    frame = nbops.runs()
    print()
    if len(frame):
        metrics = [c for c in default_columns(frame) if c.startswith("metrics.")][:3]
        print_table(frame.head(DEMO_LIMIT), len(frame), ["name", "experiment", "status", *metrics])
    print(f"\n{len(frame)} runs recorded.")
    print(f"Executed notebooks: {_shown(output)}")
    print(f"Store:              {_shown(store)}")
    print(f"List the runs:      {_nbops_command()} runs --store {_shown(store)}")
    activate = Path(sys.prefix) / "bin" / "activate"
    if sys.prefix != sys.base_prefix and activate.exists():
        print(f"or, after `source {_shown(activate)}`: nbops runs --store {_shown(store)}")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def _nbops_command() -> str:
    """How to run this very nbops from the working directory: ``nbops`` when that is
    what PATH finds, else the script next to this Python (``.venv/bin/nbops``)."""
    script = Path(sys.executable).parent / "nbops"
    on_path = shutil.which("nbops")
    if on_path and script.exists() and os.path.samefile(on_path, script):
        return "nbops"
    if script.exists():
        shown = _shown(script)
        return shown if "/" in shown else f"./{shown}"
    return f"{_shown(Path(sys.executable))} -m nbops.cli"
