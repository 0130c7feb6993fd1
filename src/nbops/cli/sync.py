"""`nbops push URI` and `nbops pull URI`: share runs and models through an MLflow
tracking server."""

from __future__ import annotations

import argparse
import json

from ._common import store_check


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "uri",
        help="MLflow tracking URI, e.g. http://mlflow.example:5000 "
        "(credentials: MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD)",
    )
    p.add_argument(
        "--experiment",
        action="extend",
        nargs="+",
        metavar="E",
        help="only these experiments (several after one flag, or the flag repeated; default: all)",
    )
    p.add_argument(
        "--models",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also registered model versions (default: yes)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _report(summary, as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary)
    return 0 if summary.ok else 1


def _add_push(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="send runs and models to an MLflow tracking server")
    _common(p)
    store_check(p, "read")
    p.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        return _report(
            nbops.push(
                args.uri, experiments=args.experiment, models=args.models, dry_run=args.dry_run
            ),
            args.json,
        )

    p.set_defaults(handler=handle)


def _add_pull(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="bring runs and models from an MLflow tracking server")
    _common(p)
    store_check(p, "write")
    p.add_argument(
        "--artifacts", action="store_true", help="download every artifact now (default: on demand)"
    )

    def handle(args: argparse.Namespace) -> int:
        import nbops

        return _report(
            nbops.pull(
                args.uri, experiments=args.experiment, models=args.models, artifacts=args.artifacts
            ),
            args.json,
        )

    p.set_defaults(handler=handle)
