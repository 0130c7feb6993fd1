"""The ``nbops`` command. Each subcommand lives in a module of this package as an
``_add_<name>(sub)`` function that declares its arguments and a handler; handlers
import what they need lazily. To add a command, write its module and list it in
``COMMANDS`` below."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .._errors import NbopsError
from .demo import _add_demo
from .drift import _add_drift
from .registry import _add_registry
from .runs import _add_runs, _add_show
from .serving import _add_export, _add_serve

# Subcommands, in the order `nbops --help` lists them. Add yours here.
COMMANDS = [_add_runs, _add_show, _add_demo, _add_registry, _add_export, _add_serve,
            _add_drift]


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
