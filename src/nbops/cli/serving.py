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
    p.add_argument(
        "--canary", help='canary plan as JSON, e.g. \'{"version": 4, "steps": [10, 50, 100]}\''
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export there")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="leave out the training-data sample stored with the version",
    )
    p.add_argument("--image", help="container image the manifests run (default NAME:VERSION)")
    p.add_argument(
        "--canary-percent",
        type=int,
        metavar="N",
        help="kserve.yaml: send N%% of traffic to this version (canaryTrafficPercent)",
    )

    def handle(args: argparse.Namespace) -> int:
        import nbops

        canary = _canary_plan(args.canary) if args.canary else None
        info = nbops.export(
            args.name,
            version=args.version,
            stage=args.stage,
            alias=args.alias,
            path=args.path,
            canary=canary,
            overwrite=args.overwrite,
            reference=False if args.no_reference else None,
            image=args.image,
            canary_percent=args.canary_percent,
        )
        print(
            f"exported {info['model_name']} v{info['version']}"
            + (f" with canary v{info['candidate_version']}" if info["candidate_version"] else "")
            + f" to {info['path']}"
        )
        print(f"run it: python {Path(info['path']) / 'serve.py'} --port 8000")
        print(
            f"deploy it: docker build -t {info['image']} {info['path']}, push, then "
            "kubectl apply -f kserve.yaml (KServe) or -f k8s.yaml"
        )
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
    p.add_argument("--workers", type=int, default=1, help="service processes (default 1)")
    p.add_argument("--access-log", action="store_true", help="print one line per request")

    def handle(args: argparse.Namespace) -> int:
        import tempfile

        import nbops

        _check_port_free("127.0.0.1", args.port)
        if args.workers < 1:
            fail(f"--workers must be at least 1, got {args.workers}")
        with tempfile.TemporaryDirectory(prefix="nbops-serve-") as tmp:
            info = nbops.export(
                args.name,
                version=args.version,
                stage=args.stage,
                alias=args.alias,
                path=Path(tmp) / "service",
            )
            # the service prints where it listens once the port is bound
            print(f"serving {info['model_name']} v{info['version']} (Ctrl-C stops)", flush=True)
            cmd = [
                sys.executable,
                str(Path(info["path"]) / "serve.py"),
                "--port",
                str(args.port),
                "--workers",
                str(args.workers),
            ]
            cmd += ["--token", args.token] if args.token else []
            cmd += ["--access-log"] if args.access_log else []
            return _run_until_stopped(cmd)

    p.set_defaults(handler=handle)


def _check_port_free(host: str, port: int) -> None:
    """One-line error (exit 2) when ``host:port`` cannot be bound, before anything else
    happens."""
    import socket

    if not 0 < port < 65536:
        fail(f"--port {port} is not a port number (1-65535)")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            fail(
                f"port {port} on {host} is not available ({exc.strerror or exc}); pick "
                "another with --port"
            )


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
