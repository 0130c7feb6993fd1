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


# -- registry ------------------------------------------------------------------------


def _add_registry(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="model registry: versions, stages, aliases, audit")
    reg = p.add_subparsers(dest="registry_command", required=True)

    def show(frame: Any, fmt: str, empty: str) -> None:
        if fmt == "table" and not len(frame):
            print(empty)
            return
        if fmt == "table" and "aliases" in frame.columns:
            frame = frame.assign(aliases=[",".join(a) for a in frame["aliases"]])
        _print_frame(frame, fmt)

    def pick(q: argparse.ArgumentParser) -> None:
        q.add_argument("--version", "-v", help="version number (default: the latest)")
        q.add_argument("--stage", "-s", help="the latest version in this stage")
        q.add_argument("--alias", "-a", help="the version holding this alias")

    def fmt(q: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json", "csv")):
        q.add_argument("--format", "-f", choices=choices, default=choices[0])

    q = reg.add_parser("list", help="registered models and versions with stage and metrics")
    q.add_argument("name", nargs="?")
    fmt(q)

    def do_list(args: argparse.Namespace) -> int:
        from . import registry

        show(registry.models(args.name), args.format, "no registered models yet")
        return 0

    q.set_defaults(handler=do_list)

    q = reg.add_parser("history", help="audit log: who moved which version when, and why")
    q.add_argument("name", nargs="?")
    fmt(q)

    def do_history(args: argparse.Namespace) -> int:
        from . import registry

        show(registry.history(args.name), args.format, "no registry events yet")
        return 0

    q.set_defaults(handler=do_history)

    q = reg.add_parser("register", help="register the model logged by a run")
    q.add_argument("run_id")
    q.add_argument("name")
    q.add_argument("--description", "-d")
    q.add_argument("--model", "-m", help="which model, when the run logged several")

    def do_register(args: argparse.Namespace) -> int:
        from . import registry

        rec = registry.register(args.run_id, args.name, description=args.description,
                                model=args.model)
        print(f"registered {rec['name']} version {rec['version']} from run {rec['run_id']}")
        return 0

    q.set_defaults(handler=do_register)

    q = reg.add_parser("transition", help="move a version to None|Staging|Production|Archived")
    q.add_argument("name")
    q.add_argument("version")
    q.add_argument("stage")
    q.add_argument("--reason", "-r")
    q.add_argument("--keep-existing", action="store_true",
                   help="do not archive the current Production version")

    def do_transition(args: argparse.Namespace) -> int:
        from . import registry

        stage = None if args.stage.lower() == "none" else args.stage
        before = {v: s for v, s in registry.models(args.name)[["version", "stage"]].values}
        rec = registry.transition(args.name, args.version, stage,
                                  archive_existing=not args.keep_existing, reason=args.reason)
        print(f"{rec['name']} version {rec['version']}: {before.get(rec['version'])} -> "
              f"{rec['stage']}")
        after = registry.models(args.name)
        for v, s in after[["version", "stage"]].values:
            if v != rec["version"] and before.get(v) != s:
                print(f"{rec['name']} version {v}: {before.get(v)} -> {s}")
        return 0

    q.set_defaults(handler=do_transition)

    q = reg.add_parser("alias", help="point an alias at a version (or --delete it)")
    q.add_argument("name")
    q.add_argument("alias")
    q.add_argument("version", nargs="?")
    q.add_argument("--delete", action="store_true")
    q.add_argument("--reason", "-r")

    def do_alias(args: argparse.Namespace) -> int:
        from . import registry

        if args.delete:
            rec = registry.delete_alias(args.name, args.alias, reason=args.reason)
            print(f"{args.name}: alias {args.alias} removed from version {rec['version']}")
            return 0
        if args.version is None:
            raise NbopsError("give the version the alias should point to, or --delete")
        rec = registry.set_alias(args.name, args.alias, args.version, reason=args.reason)
        print(f"{args.name}@{args.alias} -> version {rec['version']}")
        return 0

    q.set_defaults(handler=do_alias)

    q = reg.add_parser("rollback", help="make the previous Production version Production again")
    q.add_argument("name")
    q.add_argument("--reason", "-r")

    def do_rollback(args: argparse.Namespace) -> int:
        from . import registry

        rec = registry.rollback(args.name, reason=args.reason)
        moves = registry.history(args.name).tail(2)
        old = [v for v in moves["version"] if v != rec["version"]]
        print(f"{args.name}: version {old[0] if old else '?'} -> Archived, "
              f"version {rec['version']} -> Production")
        return 0

    q.set_defaults(handler=do_rollback)

    q = reg.add_parser("lineage", help="model -> run -> datasets -> environment")
    q.add_argument("name")
    pick(q)
    fmt(q, ("text", "json"))

    def do_lineage(args: argparse.Namespace) -> int:
        from . import registry

        lin = registry.lineage(args.name, version=args.version, stage=args.stage,
                               alias=args.alias)
        if args.format == "json":
            print(json.dumps(lin, indent=2, default=str))
        else:
            print(registry.format_lineage(lin))
        return 0

    q.set_defaults(handler=do_lineage)


def _pick_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="registered model name")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--version", type=int)
    pick.add_argument("--stage", help="None, Staging, Production or Archived")
    pick.add_argument("--alias")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model version as a service folder (serve.py)")
    _pick_args(p)
    p.add_argument("--path", "-o", default="service", help="target folder (default: service)")
    p.add_argument("--canary", help='canary plan as JSON, e.g. \'{"version": 4, "steps": [10, 50, '
                   '100]}\'')
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export there")
    p.add_argument("--no-reference", action="store_true",
                   help="leave out the training-data sample stored with the version")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        canary = json.loads(args.canary) if args.canary else None
        info = nbops.export(args.name, version=args.version, stage=args.stage,
                            alias=args.alias, path=args.path, canary=canary,
                            overwrite=args.overwrite,
                            reference=False if args.no_reference else None)
        print(f"exported {info['model_name']} v{info['version']}"
              + (f" with canary v{info['candidate_version']}" if info["candidate_version"]
                 else "") + f" to {info['path']}")
        print(f"run it: python {Path(info['path']) / 'serve.py'} --port 8000")
        return 0

    p.set_defaults(handler=handle)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="export a model version to a temporary folder and serve it")
    _pick_args(p)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN'")

    def handle(args: argparse.Namespace) -> int:
        import tempfile

        import nbops

        with tempfile.TemporaryDirectory(prefix="nbops-serve-") as tmp:
            info = nbops.export(args.name, version=args.version, stage=args.stage,
                                alias=args.alias, path=Path(tmp) / "service")
            print(f"serving {info['model_name']} v{info['version']} on "
                  f"http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
            cmd = [sys.executable, str(Path(info["path"]) / "serve.py"), "--port",
                   str(args.port)] + (["--token", args.token] if args.token else [])
            return _run_until_stopped(cmd)

    p.set_defaults(handler=handle)


def _run_until_stopped(cmd: list[str]) -> int:
    """Run the service as a child; Ctrl-C or SIGTERM to this process stops the child
    too (SIGTERM alone would leave it running after the temporary folder is gone)."""
    import signal
    import subprocess

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    child = subprocess.Popen(cmd)
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _add_drift(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="compare two CSV/Parquet files for data drift")
    p.add_argument("reference", help="reference data (.csv, .parquet)")
    p.add_argument("current", help="current data (.csv, .parquet)")
    p.add_argument("--html", metavar="OUT", help="also write the HTML report to OUT")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--columns", help="comma-separated columns to compare (default: all)")
    p.add_argument("--target")
    p.add_argument("--prediction")
    p.add_argument("--method", help="force one test for every column")
    p.add_argument("--threshold", type=float)
    p.add_argument("--drift-share", type=float, default=0.5)

    def handle(args: argparse.Namespace) -> int:
        import nbops
        from nbops.drift.io import read_table

        report = nbops.drift(
            read_table(args.reference), read_table(args.current),
            columns=args.columns.split(",") if args.columns else None, target=args.target,
            prediction=args.prediction, method=args.method, threshold=args.threshold,
            drift_share=args.drift_share)
        if args.html:
            report.to_html(args.html)
        if args.json:
            print(report.to_json(indent=2))
        else:
            _print_frame(report.summary.drop(columns=["note"]), "table")
            print(("DRIFT" if report.drifted else "no drift")
                  + f": {report.n_drifted}/{report.n_tested} columns drifted "
                  f"(share {report.share:.2f}, limit {report.drift_share:.2f})")
            if args.html:
                print(f"report: {args.html}")
        return 1 if report.drifted else 0

    p.set_defaults(handler=handle)


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


if __name__ == "__main__":
    sys.exit(main())
