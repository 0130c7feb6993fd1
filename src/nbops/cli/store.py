"""`nbops store check|repair|compact|import-tinydb`: the operator's tools for a store.

``check`` exits 0 for a healthy store and 1 when it found damage; it never writes.
``repair`` moves damaged lines to the store's ``quarantine/`` folder, keeps every intact
transaction, and prints what it did. ``import-tinydb PATH`` copies the tables of a
TinyDB JSON file into the store (the file itself is only read).
"""

from __future__ import annotations

import argparse
import json

from ._common import store_check


def _add_store(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="check, repair or compact the store; import TinyDB files")
    inner = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    check = inner.add_parser("check", help="report damaged lines (exit 1 if any); never writes")
    check.add_argument("--format", "-f", choices=["text", "json"], default="text")
    store_check(check)
    check.set_defaults(handler=_check)

    repair = inner.add_parser("repair", help="move damaged lines to quarantine/, keep the rest")
    store_check(repair)
    repair.set_defaults(handler=_repair)

    compact = inner.add_parser("compact", help="fold the log into a new snapshot now")
    store_check(compact)
    compact.set_defaults(handler=_compact)

    imp = inner.add_parser("import-tinydb", help="copy a TinyDB JSON file's tables in")
    imp.add_argument("path", help="the TinyDB JSON file (left as it is)")
    store_check(imp, "write")
    imp.set_defaults(handler=_import)


def _check(args: argparse.Namespace) -> int:
    from ..store.repair import check

    report = check(args.store_path)
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0 if report["healthy"] else 1
    for note in report["notes"]:
        print(f"note: {note}")
    if report["healthy"]:
        print(f"store {report['store']}: healthy ({report['lines']} intact lines)")
        return 0
    print(
        f"store {report['store']}: {len(report['damage'])} damaged line(s), "
        f"{report['lines']} intact"
    )
    for d in report["damage"]:
        what = f"; touched {', '.join(d['touched'])}" if d["touched"] else ""
        print(
            f"  {d['file']} line {d['line']} (byte {d['offset']}, {d['length']} bytes): "
            f"{d['reason']}{what}"
        )
    print("Reads skip these lines; `nbops store repair` moves them to quarantine/.")
    return 1


def _repair(args: argparse.Namespace) -> int:
    from ..store.repair import repair

    result = repair(args.store_path)
    if not result["moved"]:
        print(f"store {args.store_path}: nothing to repair ({result['kept']} intact lines)")
        return 0
    print(
        f"moved {len(result['moved'])} damaged line(s) to quarantine, kept "
        f"{result['kept']} intact line(s):"
    )
    for d in result["moved"]:
        what = f" ({', '.join(d['touched'])})" if d["touched"] else ""
        print(f"  {d['file']} line {d['line']}{what}")
    for path in result["quarantine"]:
        print(f"  -> {path}")
    return 0


def _compact(args: argparse.Namespace) -> int:
    from ..store import Store

    done = Store(args.store_path).compact()
    print("compacted" if done else "another process is compacting the store right now")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..store import Store

    counts = Store(args.store_path).import_tinydb(args.path)
    total = sum(counts.values())
    detail = ", ".join(f"{n} into {t}" for t, n in counts.items()) or "no documents"
    print(f"imported {total} document(s) from {args.path}: {detail}")
    return 0
