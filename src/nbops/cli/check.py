"""`nbops check [FILE]` (CI checks -> exit code, JUnit XML, JSON) and `nbops monitor
SERVICE` (drift, accuracy and alert actions of a service on a schedule)."""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .._errors import NbopsError


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="run the checks of nbops.toml / pyproject.toml for CI: "
        "exit 0 pass, 1 fail, 2 bad config or input",
    )
    p.add_argument(
        "file",
        nargs="?",
        help="check file (default: ./nbops.toml, else [tool.nbops.check] in ./pyproject.toml)",
    )
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only the check with this name (repeatable)",
    )

    def do_check(args: argparse.Namespace) -> int:
        from .._errors import CheckConfigError
        from ..check import format_report, run_checks, to_junit

        try:
            report = run_checks(args.file, only=args.only)
        except CheckConfigError as exc:
            if args.junit:  # CI shows why no check ran, not a missing report
                broken = {
                    "name": "configuration",
                    "kind": "config",
                    "status": "error",
                    "cases": [],
                    "error": f"CheckConfigError: {exc}",
                    "seconds": 0.0,
                }
                Path(args.junit).write_text(to_junit({"checks": [broken]}))
            raise
        if args.junit:
            Path(args.junit).write_text(to_junit(report))
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            print(format_report(report))
        return report["exit_code"]

    p.set_defaults(handler=do_check)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """``"10m"`` -> 600.0 seconds (units s, m, h, d; a bare number is seconds). Raises
    NbopsError for anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise NbopsError(f"--every {text!r} is not an interval; use e.g. 30s, 10m, 1h")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _folder_of(target: str, folder: str | None) -> Path:
    if target.startswith(("http://", "https://")):
        if not folder:
            raise NbopsError(
                f"{target} is a URL: its prediction log lives in the service's "
                "folder; pass it with --folder PATH"
            )
        import urllib.request

        with urllib.request.urlopen(target.rstrip("/") + "/version", timeout=5) as r:
            served = json.loads(r.read())
        path = Path(folder).expanduser().resolve()
        meta = json.loads((path / "model.json").read_text())
        if meta.get("model_name") != served.get("model_name"):
            raise NbopsError(
                f"{target} serves {served.get('model_name')!r} but {path} holds "
                f"{meta.get('model_name')!r}; pass the service's own folder"
            )
        return path
    return Path(target).expanduser().resolve()


def _add_monitor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="check a service's traffic for drift and accuracy on a "
        "schedule, fire alert rules and their actions",
    )
    p.add_argument("service", help="the service folder, or its URL with --folder")
    p.add_argument("--folder", help="the service folder when SERVICE is a URL")
    p.add_argument("--every", default="10m", help="interval between checks (30s, 10m, 1h)")
    p.add_argument("--once", action="store_true", help="one check, then exit")
    p.add_argument(
        "--no-act", action="store_true", help="fire alerts but do not run their actions (retrain)"
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="also run the service from the folder (on --port), so that a retrain "
        "can restart it with its canary; stopped on exit",
    )
    p.add_argument("--port", type=int, help="the port of --serve (default: a free one)")

    def do_monitor(args: argparse.Namespace) -> int:
        from ..loop import monitor_service

        interval = parse_interval(args.every)
        folder = _folder_of(args.service, args.folder)
        target: Any = folder
        if args.serve:
            from ..serving.local import start_service

            target = start_service(folder, port=args.port)
            print(f"nbops monitor: serving {folder.name} at {target.url}", flush=True)
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            print(f"nbops monitor: stopping ({signal.Signals(signum).name})", flush=True)
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop.is_set():
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                try:
                    tick = monitor_service(target, act=not args.no_act)
                except NbopsError as exc:  # no traffic yet, a service restarting: try again
                    print(f"{stamp} {folder.name}: {exc}", flush=True)
                else:
                    m = tick["metrics"]
                    acc = f", accuracy {m['accuracy']:.3f}" if "accuracy" in m else ""
                    print(
                        f"{stamp} {folder.name}: drift share {m.get('drift_share', 0):.2f}"
                        f"{acc}; {len(tick['fired'])} alert(s)",
                        flush=True,
                    )
                    for action in tick["actions"]:
                        print(
                            f"    {action['action']}: {action.get('status')} "
                            f"v{action.get('version', '?')} {action.get('error') or ''}",
                            flush=True,
                        )
                if args.once:
                    break
                stop.wait(interval)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if target is not folder:
                target.stop()
        return 0

    p.set_defaults(handler=do_monitor)


__all__ = ["_add_check", "_add_monitor", "parse_interval"]
