"""`nbops export` and `nbops serve`: a model version as a service."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._common import _pick_args, fail, store_check


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model version as a service folder (serve.py)")
    store_check(p)
    _pick_args(p)
    p.add_argument("--path", "-o", default="service", help="target folder (default: service)")
    p.add_argument("--canary", help='canary plan as JSON, e.g. \'{"version": 4, "steps": [10, 50, '
                   '100]}\'')
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export there")
    p.add_argument("--no-reference", action="store_true",
                   help="leave out the training-data sample stored with the version")

    def handle(args: argparse.Namespace) -> int:
        import nbops

        canary = _canary_plan(args.canary) if args.canary else None
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


def _canary_plan(text: str) -> dict:
    """The --canary value as a dict, or a one-line error that shows the expected form."""
    example = '--canary \'{"version": 2, "steps": [10, 50, 100]}\''
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--canary is not valid JSON ({exc.msg} at character {exc.pos}); e.g. {example}")
    if not isinstance(plan, dict):
        fail(f"--canary must be a JSON object, e.g. {example}")
    return plan


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="export a model version to a temporary folder and serve it")
    store_check(p)
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
