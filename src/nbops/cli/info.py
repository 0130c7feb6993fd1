"""`nbops info`: which store the commands use, why, and what is in it."""

from __future__ import annotations

import argparse

from ._common import is_store, missing_store_message, store_check


def _size(path) -> int:
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            continue
    return total


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="the store in use (path, why, size, counts) and versions")
    store_check(p, "inspect")

    def handle(args: argparse.Namespace) -> int:
        import platform

        import nbops

        def row(label: str, value: object) -> None:
            print(f"{label:<12}{value}")

        path, source = args.store_path, args.store_source
        row("nbops", f"{nbops.__version__} (Python {platform.python_version()})")
        row("store", f"{path} ({source})")
        if not is_store(path):
            raise nbops.NbopsError(missing_store_message(path, source))
        row("size", _human(_size(path)))
        frame = nbops.runs()
        statuses = frame["status"].value_counts() if len(frame) else {}
        row(
            "runs",
            f"{len(frame)}"
            + "".join(f", {n} {s.lower()}" for s, n in dict(statuses).items() if s != "FINISHED"),
        )
        experiments = sorted(set(frame["experiment"].dropna())) if len(frame) else []
        row(
            "experiments",
            f"{len(experiments)}" + (f": {', '.join(experiments)}" if experiments else ""),
        )
        models = nbops.models()
        names = sorted(set(models["name"])) if len(models) else []
        row(
            "models",
            f"{len(names)} ({len(models)} versions)" + (f": {', '.join(names)}" if names else ""),
        )
        row("datasets", len(nbops.datasets.datasets()))
        return 0

    p.set_defaults(handler=handle)
