"""The ``nbops`` command. Each subcommand lives in a module of this package as an
``_add_<name>(sub)`` function that declares its arguments and a handler; handlers
import what they need lazily. To add a command, write its module and list it in
``COMMANDS`` below.

The store: ``--store PATH`` (anywhere on the line), else ``$NBOPS_STORE``, else the
nearest ``.nbops`` folder at or above the working directory (nbops/_config.py). Commands
that read the store (declared with ``store_check``) never create one: without a store
they say where they looked and exit 2. Every error is one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .._errors import NbopsError
from ._common import Parser, cli_terms, is_store, missing_store_message
from .check import _add_check, _add_monitor
from .demo import _add_demo
from .drift import _add_drift
from .info import _add_info
from .registry import _add_registry
from .runs import _add_runs, _add_show
from .serving import _add_export, _add_serve
from .store import _add_store
from .sync import _add_pull, _add_push

# Subcommands, in the order `nbops --help` lists them. Add yours here.
COMMANDS = [
    _add_runs,
    _add_show,
    _add_info,
    _add_demo,
    _add_registry,
    _add_export,
    _add_serve,
    _add_drift,
    _add_push,
    _add_pull,
    _add_check,
    _add_monitor,
    _add_store,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``nbops`` parser with every subcommand of ``COMMANDS``."""
    parser = Parser(prog="nbops", description="notebook-native MLOps", top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _resolve_store(args: argparse.Namespace) -> tuple[Path, str]:
    from .. import _config

    if args.store:
        path = Path(args.store).expanduser().resolve()
        os.environ[_config.ENV_STORE] = str(path)  # subprocesses (serve) inherit it
        _config.set_store_path(None)
        return path, "from --store"
    path = _config.store_path()
    return path, _config.store_source(path)


def main(argv: list[str] | None = None) -> int:
    """Run ``nbops`` with ``argv`` (default: sys.argv); returns the exit code: 0 ok,
    2 error; `nbops drift` returns 1 for drift."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if command is None:
        names = ", ".join(_commands(parser))
        what = f"unknown option {extra[0]}" if extra else "no command given"
        print(
            f"nbops: error: {what}; commands: {names} (`nbops COMMAND --help` for one)",
            file=sys.stderr,
        )
        return 2
    if extra:  # said by the subcommand's own parser, in its terms
        _commands(parser)[command].error(
            f"unknown option{'s' if len(extra) > 1 else ''} {' '.join(extra)}"
        )
    verbose = getattr(args, "verbose", False)
    # "registry rollback", "store check": the nested subcommand too (dest "<group>_command")
    command = " ".join(
        [command]
        + [v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)]
    )
    with warnings.catch_warnings():
        if not verbose:  # a warning is one line too, not a source line and a category
            warnings.showwarning = _one_line_warning
        return _run(args, command, verbose)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"nbops: warning: {cli_terms(str(message))}", file=sys.stderr)


def _run(args: argparse.Namespace, command: str, verbose: bool) -> int:
    """Resolve and check the store, run the handler, turn every error into one line."""
    try:
        if getattr(args, "store_mode", "none") != "none":
            path, source = _resolve_store(args)
            args.store_path, args.store_source = path, source
            if verbose:
                print(f"nbops: store {path} ({source})", file=sys.stderr)
            if args.store_mode == "read" and not is_store(path):
                raise NbopsError(missing_store_message(path, source))
        return int(args.handler(args) or 0)
    except NbopsError as exc:
        print(f"nbops {command}: error: {cli_terms(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a path the user gave: unwritable, missing folder, ...
        if verbose:
            raise
        what = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        print(f"nbops {command}: error: {what}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line and exit 2 (1 means drift)
        if verbose:
            raise
        print(
            f"nbops {command}: internal error: {type(exc).__name__}: "
            f"{cli_terms(str(exc))} (--verbose shows the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
