"""What every subcommand shares: the parser class (``--store`` and ``--verbose`` anywhere
on the line, one-line errors), the store check of read commands, error messages in
command-line terms, printing frames, picking a model version."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from .._errors import NbopsError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, and which accepts the global options
    ``--store`` and ``--verbose`` on every (sub)command, so they work anywhere on the line.

    Subparsers are built with the parser's own class, so every level gets the options;
    below the top level their default is SUPPRESS, so a value given before the
    subcommand is not reset by the subcommand's parser."""

    def __init__(self, *args: Any, top: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default: Any = None if top else argparse.SUPPRESS
        self.add_argument(
            "--store",
            metavar="PATH",
            default=default,
            help="store folder (default: $NBOPS_STORE, else the nearest .nbops "
            "folder at or above the working directory)",
        )
        self.add_argument(
            "--verbose",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="say which store is used and why; full tracebacks",
        )

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and where help is, exit code 2."""
        message = message.replace("the following arguments are required", "missing")
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def store_check(p: argparse.ArgumentParser, mode: str = "read") -> None:
    """Declare how a command uses the store: "read" commands (and writes that need
    existing runs or models) refuse to start without one; "none" never opens it."""
    p.set_defaults(store_mode=mode)


def is_store(path: Path) -> bool:
    """Whether ``path`` holds an nbops store (not just any folder)."""
    from ..store.store import DB_FILE

    return (path / DB_FILE).is_file()


def missing_store_message(path: Path, source: str) -> str:
    """Where the command looked, and how to create or point to a store."""
    what = "is not an nbops store" if path.exists() else "does not exist"
    return (
        f"no nbops store: {path} {what} ({source}). Create one by tracking a run "
        "(%%track in a notebook, or `nbops demo`), or point to one with --store PATH "
        "or NBOPS_STORE=PATH"
    )


# Python-API advice in error messages, said the command-line way
_CLI_TERMS = [
    (
        re.compile(r"\bnbops\.register\(run_id, ('[^']*'|\"[^\"]*\")\)"),
        r"nbops registry register RUN_ID \1",
    ),
    (
        re.compile(r"\bnbops\.transition\(('[^']*'), version, 'Production'\)"),
        r"nbops registry transition \1 VERSION Production",
    ),
    (re.compile(r"\bnbops\.runs\(\)"), "nbops runs"),
    (re.compile(r"\bNBOPS_STORE or nbops\.set_store\(\)"), "--store or NBOPS_STORE"),
    (re.compile(r"\bpass path= a folder"), "pass --path a folder"),
    (re.compile(r"\bpass method=\{\.\.\.\} per column, or"), "pass --method"),
    (re.compile(r"\b([a-z][a-z_]*)=True\b"), lambda m: "--" + m.group(1).replace("_", "-")),
]


def cli_terms(message: str) -> str:
    """``message`` on one line, with Python-API advice replaced by flags and commands."""
    for pattern, repl in _CLI_TERMS:
        message = pattern.sub(repl, message)
    return " ".join(message.split())


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line error (exit code 2)."""
    raise NbopsError(message)


def console_width() -> int:
    """Columns of the terminal (or $COLUMNS); 100 when output is not a terminal."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 100


def _print_frame(frame: Any, fmt: str, empty: str = "no runs yet") -> None:
    if fmt == "json":
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif fmt == "csv":
        print(frame.to_csv(index=False), end="")
    else:
        import pandas as pd

        with pd.option_context(
            "display.max_rows", 200, "display.max_columns", 30, "display.width", console_width()
        ):
            print(frame.to_string(index=False) if len(frame) else empty)


def _pick_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="registered model name")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--version", type=int)
    pick.add_argument("--stage", help="None, Staging, Production or Archived")
    pick.add_argument("--alias")
