"""Running a cell as a tracked run: the work behind ``%%track``.

The cell runs exactly as it would untracked: same namespace (``shell.user_ns``),
same displayed value, same exception. Everything nbops adds happens before and
after, and any failure of nbops itself becomes a warning, never a broken cell.
"""

from __future__ import annotations

import ast
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import capture
from .run import Run, user_stacklevel

MAX_FINGERPRINT_BYTES = int(os.environ.get("NBOPS_MAX_FINGERPRINT_BYTES", 1 << 30))


@dataclass
class TrackOptions:
    """What ``%%track`` was asked to do (parsed by magics.py or built by sweeps)."""

    name: str | None = None
    experiment: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    artifacts: str | None = None
    model: str | None = None
    quiet: bool = False
    parent_id: str | None = None
    #: values that replace the cell's own literal assignments (sweep trials)
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    value: Any = None
    run: Run | None = None
    error: BaseException | None = None
    counts: dict[str, int] = field(default_factory=dict)


#: Called after a tracked cell ran, before its run ends: hook(run, user_ns, names, options)
#: where names are the names the cell bound or rebound. Model autolog plugs in here.
POST_CELL_HOOKS: list[Callable[[Run, dict, set[str], TrackOptions], None]] = []


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(f"nbops: {what} ({type(exc).__name__}: {exc}); the cell ran normally",
                  stacklevel=3)


def apply_overrides(tree: ast.Module, overrides: dict[str, Any]) -> set[str]:
    """Replace the value of top-level ``name = <literal>`` statements with overrides.
    Returns the names replaced."""
    done: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name) and target.id in overrides:
            node.value = ast.copy_location(_value_node(overrides[target.id]), node.value)
            done.add(target.id)
    ast.fix_missing_locations(tree)
    return done


def _value_node(value: Any) -> ast.expr:
    try:
        return ast.parse(repr(value), mode="eval").body if _literal_roundtrip(value) \
            else ast.Constant(value)
    except SyntaxError:
        return ast.Constant(value)


def _literal_roundtrip(value: Any) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError):
        return False


def _compile_cell(shell: Any, code: str, overrides: dict[str, Any]):
    """Compile a cell like IPython does; returns (body code, last-expression code|None)."""
    tree = ast.parse(code)
    missing = set(overrides) - apply_overrides(tree, overrides) if overrides else set()
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    filename = "<cell>"
    flags = 0
    if shell is not None:
        compiler = shell.compile
        # IPython counts the running cell before executing it: its number is one less
        filename = compiler.cache(code, max(shell.execution_count - 1, 0), raw_code=code)
        flags = compiler.flags
    body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    expr = compile(last, filename, "eval", flags=flags, dont_inherit=True) if last else None
    return body, expr, missing


def run_tracked_cell(
    source: str,
    options: TrackOptions,
    shell: Any = None,
    user_ns: dict[str, Any] | None = None,
) -> CellResult:
    """Run ``source`` in the shell's namespace as a tracked run.

    Returns a CellResult; if the cell raised, ``error`` holds the exception and the
    caller re-raises it (so the caller's frame, not ours, decides how it surfaces).
    """
    __tracebackhide__ = True
    ns = user_ns if user_ns is not None else shell.user_ns
    code = shell.transform_cell(source) if shell is not None else source
    result = CellResult()

    analysis = before = art_before = None
    read_fps: dict[str, Any] = {}
    try:
        analysis = capture.analyse_cell(code)
        before = capture.namespace_snapshot(ns)
        art_before = capture.glob_mtimes(options.artifacts)
        read_fps = {n: _fingerprint(ns[n]) for n in analysis.loaded
                    if n in ns and capture.is_data(ns[n])}
        run = Run(
            name=options.name,
            experiment=options.experiment,
            tags=options.tags,
            parent_id=options.parent_id,
            code={"source": source, "notebook": capture.notebook_path(shell),
                  **capture.git_info()},
        )
        result.run = run
    except Exception as exc:  # noqa: BLE001 - tracking must never break the cell
        _warn("could not start tracking this cell", exc)
        run = None

    status = "FINISHED"
    try:
        body, expr, missing = _compile_cell(shell, code, options.overrides)
        if missing:
            warnings.warn(
                f"nbops: the cell has no literal assignment of {sorted(missing)}; "
                "those values were set before the cell instead", stacklevel=2,
            )
            ns.update({k: options.overrides[k] for k in missing})
        exec(body, ns)  # noqa: S102 - running the user's own cell is the point
        if expr is not None:
            result.value = eval(expr, ns)  # noqa: S307
    except KeyboardInterrupt as exc:
        status, result.error = "KILLED", exc
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised by the caller
        status, result.error = "FAILED", exc

    if run is None:
        return result
    try:
        _record(run, ns, analysis, before, art_before, read_fps, options, result)
        run.end(status, error=result.error)
    except Exception as exc:  # noqa: BLE001
        _warn(f"could not record run {run.run_id}", exc)
        if not run._ended:
            try:
                run.end("FAILED", error=exc)
            except Exception:  # noqa: BLE001 - the store itself is failing; warned above
                pass
    return result


def _fingerprint(value: Any) -> dict[str, Any] | None:
    if hasattr(value, "memory_usage"):  # pandas: a DataFrame sums its columns
        usage = value.memory_usage(index=False, deep=False)
        nbytes = int(usage.sum()) if hasattr(usage, "sum") else int(usage)
    else:
        nbytes = int(value.nbytes)
    if nbytes > MAX_FINGERPRINT_BYTES:
        return None
    from ..datasets import fingerprint

    return fingerprint(value)


def _named(ns: dict[str, Any], names: list[str], option: str) -> dict[str, Any]:
    """The values of names given with an option; a missing name is a warning."""
    found = {}
    for name in names:
        if name in ns:
            found[name] = ns[name]
        else:
            warnings.warn(f"nbops: {option} names {name!r}, which the cell did not define",
                          stacklevel=user_stacklevel())
    return found


def _record(run, ns, analysis, before, art_before, read_fps, options, result) -> None:
    run.update_info(env=capture.env_info())  # after the cell: it sees the cell's imports
    changed = capture.changed_names(before, ns)
    skip = set(analysis.loop_vars)

    # a name the user asked for as a metric is a metric, even when assigned a literal
    params = {k: options.overrides.get(k, v) for k, v in analysis.literals.items()
              if k not in options.metrics}
    params.update({k: v for k, v in options.overrides.items() if k not in params})
    params.update(_named(ns, options.params, "--params"))
    run.log_params(params)

    metrics = {}
    for name in sorted((changed & analysis.assigned) - skip - set(params)):
        value = ns.get(name)
        if capture.is_numeric_scalar(value):
            metrics[name] = value
    metrics.update(_named(ns, options.metrics, "--metrics"))
    run.log_metrics(metrics)

    store = run.store
    fps = dict(read_fps)
    for name in sorted(changed):
        if capture.is_data(ns.get(name)) and name not in fps:
            fps[name] = _fingerprint(ns[name])
    skipped = sorted(n for n, fp in fps.items() if fp is None)
    if skipped:
        run.set_tag("nbops.unfingerprinted", ",".join(skipped))
    for name, fp in fps.items():
        if fp is None:
            continue
        store.add_dataset({**fp, "name": name, "source": "cell",
                           "first_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "first_run": run.run_id})
        run.add_input(fp["digest"])

    if options.artifacts:
        for path in capture.new_or_modified(art_before, capture.glob_mtimes(options.artifacts)):
            rel = os.path.relpath(path, Path.cwd()) if not os.path.isabs(options.artifacts) \
                else Path(path).name
            run.log_artifact(path, name=rel)

    for hook in POST_CELL_HOOKS:
        try:
            hook(run, ns, changed, options)
        except Exception as exc:  # noqa: BLE001 - one failing hook must not lose the run
            _warn(f"{getattr(hook, '__name__', hook)} failed for run {run.run_id}", exc)

    result.counts = {
        "params": len(run.params),
        "metrics": len(run.metrics),
        "artifacts": len(run.artifacts),
        "datasets": len(run.inputs),
    }


# scikit-learn model autolog is the default post-cell hook (nbops.tracking.autolog)
from .autolog import autolog_hook  # noqa: E402

POST_CELL_HOOKS.append(autolog_hook)
