"""`nbops registry ...`: versions, stages, aliases, audit log."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._errors import GateError, NbopsError
from ._common import _print_frame, store_check


def _add_registry(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="model registry: versions, stages, aliases, audit")
    store_check(p)
    reg = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

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
        from .. import registry

        show(registry.models(args.name), args.format, "no registered models yet")
        return 0

    q.set_defaults(handler=do_list)

    q = reg.add_parser("history", help="audit log: who moved which version when, and why")
    q.add_argument("name", nargs="?")
    fmt(q)

    def do_history(args: argparse.Namespace) -> int:
        from .. import registry

        show(registry.model_history(args.name), args.format, "no registry events yet")
        return 0

    q.set_defaults(handler=do_history)

    q = reg.add_parser("register", help="register the model logged by a run")
    q.add_argument("run_id")
    q.add_argument("name")
    q.add_argument("--description", "-d")
    q.add_argument("--model", "-m", help="which model, when the run logged several")

    def do_register(args: argparse.Namespace) -> int:
        from .. import registry

        rec = registry.register(
            args.run_id, args.name, description=args.description, model=args.model
        )
        print(f"registered {rec['name']} version {rec['version']} from run {rec['run_id']}")
        return 0

    q.set_defaults(handler=do_register)

    q = reg.add_parser("transition", help="move a version to None|Staging|Production|Archived")
    q.add_argument("name")
    q.add_argument("version")
    q.add_argument("stage")
    q.add_argument("--reason", "-r")
    q.add_argument(
        "--keep-existing", action="store_true", help="do not archive the current Production version"
    )
    q.add_argument(
        "--force",
        action="store_true",
        help="move even when a promotion gate fails (needs --reason; audited)",
    )

    def do_transition(args: argparse.Namespace) -> int:
        from .. import registry

        stage = None if args.stage.lower() == "none" else args.stage
        before = {v: s for v, s in registry.models(args.name)[["version", "stage"]].values}
        try:
            rec = registry.transition(
                args.name,
                args.version,
                stage,
                archive_existing=not args.keep_existing,
                reason=args.reason,
                force=args.force,
            )
        except GateError as exc:
            print(str(exc))
            return 1
        if (rec.get("gates") or {}).get("stage") == rec["stage"]:
            print(registry.format_gate_results(rec["gates"]["results"]))
        print(
            f"{rec['name']} version {rec['version']}: {before.get(rec['version'])} -> "
            f"{rec['stage']}"
        )
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
        from .. import registry

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
        from .. import registry

        rec = registry.rollback(args.name, reason=args.reason)
        moves = registry.model_history(args.name).tail(2)
        old = [v for v in moves["version"] if v != rec["version"]]
        print(
            f"{args.name}: version {old[0] if old else '?'} -> Archived, "
            f"version {rec['version']} -> Production"
        )
        return 0

    q.set_defaults(handler=do_rollback)

    q = reg.add_parser(
        "gates",
        help="show, add or remove a model's promotion gate rules; "
        "--evaluate measures them on a version",
    )
    q.add_argument("name")
    q.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="RULE",
        help="add a rule, e.g. 'accuracy >= 0.9' (repeatable)",
    )
    q.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="RULE",
        help="remove a rule by its text (repeatable)",
    )
    q.add_argument("--clear", action="store_true", help="remove every rule")
    q.add_argument(
        "--evaluate",
        nargs="?",
        const="latest",
        metavar="VERSION",
        help="measure the rules on VERSION (latest, a number, a stage or an "
        "alias); exit 1 when one fails",
    )
    q.add_argument(
        "--stage",
        default="Production",
        help="the move --evaluate checks for (Staging or Production)",
    )
    q.add_argument("--reason", "-r")
    fmt(q, ("text", "json"))

    def do_gates(args: argparse.Namespace) -> int:
        from .. import registry
        from ..registry.naming import pick as pick_version
        from ..store import get_store

        if args.clear:
            registry.set_gates(args.name, [], reason=args.reason)
        for rule in args.add:
            registry.add_gate(args.name, rule, reason=args.reason)
        for rule in args.remove:
            registry.remove_gate(args.name, rule, reason=args.reason)
        rules = registry.gates(args.name)
        if args.evaluate is None:
            if args.format == "json":
                print(json.dumps({"name": args.name, "rules": rules}, indent=2))
            else:
                print("\n".join(rules) if rules else f"{args.name}: no gate rules")
            return 0
        version = pick_version(get_store(), args.name, args.evaluate)["version"]
        result = registry.evaluate_gates(args.name, version, stage=args.stage)
        if args.format == "json":
            print(json.dumps(result, indent=2, default=str))
        else:
            verdict = "passed" if result["passed"] else "FAILED"
            print(f"{args.name} version {version}, gates for {result['stage']}: {verdict}")
            if result["results"]:
                print(registry.format_gate_results(result["results"]))
        return 0 if result["passed"] else 1

    q.set_defaults(handler=do_gates)

    q = reg.add_parser("lineage", help="model -> run -> datasets -> environment")
    q.add_argument("name")
    pick(q)
    fmt(q, ("text", "json"))

    def do_lineage(args: argparse.Namespace) -> int:
        from .. import registry

        lin = registry.lineage(args.name, version=args.version, stage=args.stage, alias=args.alias)
        if args.format == "json":
            print(json.dumps(lin, indent=2, default=str))
        else:
            print(registry.format_lineage(lin))
        return 0

    q.set_defaults(handler=do_lineage)
