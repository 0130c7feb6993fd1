"""A cell as a tracked run: what nbops does before and after the user's code.

In a notebook IPython itself runs a ``%%track`` cell (magics.py hands IPython the
cell body and brackets it with the ``pre_run_cell`` / ``post_run_cell`` events), so
the compiler, ``__future__`` flags, AST transformers, interactivity, top-level
``await``, the display hook and tracebacks are IPython's own. This module is the
part around it: :class:`TrackedCell` starts the run before the cell and records
params, results, other values, datasets, artifacts and models after it.

:func:`run_tracked_cell` runs a cell itself: sweeps (each trial swaps the cell's
literal assignments), ``nbops.reproduce`` and plain Python without a notebook. It
compiles with the shell's compiler and AST transformers when there is a shell.

Any failure of nbops is a warning; the run's status is the status of the user's code.
"""

from __future__ import annotations

import ast
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import NbopsError
from .._util import utc_now
from . import autolog, background, capture, provenance, results, sysmetrics
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
    """What running a tracked cell gave: its value, its run, the user's error, the
    counts shown in the summary, and the override names the cell has no literal for."""

    value: Any = None
    run: Run | None = None
    error: BaseException | None = None
    counts: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    #: the status of the user's code and the cell's own seconds (the run itself may
    #: still be writing model files in the background)
    status: str = "FINISHED"
    seconds: float = 0.0


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(
        f"nbops: {what} ({type(exc).__name__}: {exc}); the cell ran normally",
        stacklevel=user_stacklevel(),
    )


def status_of(error: BaseException | None) -> str:
    """FINISHED, KILLED (KeyboardInterrupt) or FAILED: the status of the user's code."""
    if error is None:
        return "FINISHED"
    return "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"


class TrackedCell:
    """One tracked cell from just before its code runs until :meth:`finish`.

    ``code`` is the cell as Python (after IPython's input transformations); it is
    analysed for literals and names. Starting never raises: a failure is a warning
    and the cell then runs untracked."""

    def __init__(
        self,
        source: str,
        options: TrackOptions,
        shell: Any = None,
        user_ns: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        self.options = options
        self.shell = shell
        self.ns = user_ns if user_ns is not None else shell.user_ns
        self.run: Run | None = None
        self.recording: provenance.Session | None = None
        self.watch: sysmetrics.Watch | None = None
        self.t0 = time.perf_counter()
        try:
            self.code = (
                code
                if code is not None
                else (shell.transform_cell(source) if shell is not None else source)
            )
            self.analysis = capture.analyse_cell(self.code)
            self.before = capture.namespace_snapshot(self.ns)
            self.art_before = capture.glob_mtimes(options.artifacts)
            self.read = {
                n: fingerprint(self.ns[n])
                for n in self.analysis.loaded
                if n in self.ns and capture.is_data(self.ns[n])
            }
            self.run = Run(
                name=options.name,
                experiment=options.experiment,
                tags=options.tags,
                parent_id=options.parent_id,
                code={
                    "source": source,
                    "notebook": capture.notebook_path(shell),
                    **capture.git_info(),
                },
            )
            self.recording = provenance.start(self.ns)
            self.watch = sysmetrics.watch(self.run)
        except Exception as exc:  # noqa: BLE001 - tracking must never break the cell
            _warn("could not start tracking this cell", exc)
            self._stop_recording()
            self.run = None

    def _stop_recording(self) -> provenance.Recorder | None:
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
        recording, self.recording = self.recording, None
        return recording.stop() if recording is not None else None

    def finish(self, error: BaseException | None = None, value: Any = None) -> CellResult:
        """Record what the cell did and end its run with the status of ``error``."""
        result = CellResult(
            value=value,
            run=self.run,
            error=error,
            status=status_of(error),
            seconds=time.perf_counter() - self.t0,
        )
        try:
            recorder = self._stop_recording()
        except Exception as exc:  # noqa: BLE001
            _warn("could not stop recording scores", exc)
            recorder = None
        run = self.run
        if run is None:
            return result
        status = status_of(error)
        try:
            jobs = _record(self, recorder, status, result)
            run.update_info(cell_seconds=round(result.seconds, 6))
            if jobs:  # the run ends once its model files are written
                run.update_info(models_pending=[j.name for j in jobs])
                run.flush()  # a kernel dying mid-write leaves the run saying so
                background.submit(run.run_id, lambda: _write_and_end(run, jobs, status, error))
            else:
                run.end(status, error=error)
        except Exception as exc:  # noqa: BLE001
            _warn(f"could not record all of run {run.run_id}", exc)
            try:
                run.end(status, error=error)  # what was logged so far, with the cell's status
            except Exception:  # noqa: BLE001,S110 - the store itself is failing; warned above
                pass
        return result


# -- running a cell ourselves (sweeps, reproduce, plain Python) ------------------------


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
        return (
            ast.parse(repr(value), mode="eval").body
            if _literal_roundtrip(value)
            else ast.Constant(value)
        )
    except SyntaxError:
        return ast.Constant(value)


def _literal_roundtrip(value: Any) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError):
        return False


def compile_cell(shell: Any, code: str, overrides: dict[str, Any]):
    """Compile a cell as IPython does (its compiler, so ``__future__`` imports carry
    over, and its AST transformers). Returns (body code, last-expression code or None,
    names in ``overrides`` the cell has no literal assignment of)."""
    tree = ast.parse(code)
    missing = set(overrides) - apply_overrides(tree, overrides) if overrides else set()
    filename, compiler = "<cell>", None
    if shell is not None:
        compiler = shell.compile
        filename = compiler.cache(code, max(shell.execution_count - 1, 0), raw_code=code)
        tree = shell.transform_ast(tree)
    quiet = code.rstrip().endswith(";")
    if shell is not None and hasattr(shell.displayhook, "semicolon_at_end_of_expression"):
        quiet = shell.displayhook.semicolon_at_end_of_expression(code)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not quiet:
        last = ast.Expression(tree.body.pop().value)
    if compiler is not None:
        body = compiler(tree, filename, "exec")
        expr = compiler(last, filename, "eval") if last else None
    else:
        body = compile(tree, filename, "exec", dont_inherit=True)
        expr = compile(last, filename, "eval", dont_inherit=True) if last else None
    return body, expr, missing


def run_tracked_cell(
    source: str, options: TrackOptions, shell: Any = None, user_ns: dict[str, Any] | None = None
) -> CellResult:
    """Run ``source`` in the shell's namespace (or ``user_ns``) as a tracked run.

    Returns a CellResult; if the cell raised, ``error`` holds the exception and the
    caller decides how it surfaces. Names in ``options.overrides`` without a literal
    assignment in the cell are set before it runs and listed in ``missing``."""
    __tracebackhide__ = True
    ns = user_ns if user_ns is not None else shell.user_ns
    code = shell.transform_cell(source) if shell is not None else source
    cell = TrackedCell(source, options, shell=shell, user_ns=ns, code=code)
    value, error, missing = None, None, set()
    try:
        body, expr, missing = compile_cell(shell, code, options.overrides)
        ns.update({k: options.overrides[k] for k in missing})
        exec(body, ns)  # noqa: S102 - running the user's own cell is the point
        if expr is not None:
            value = eval(expr, ns)  # noqa: S307
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised by the caller
        error = exc
    result = cell.finish(error, value)
    result.missing = missing
    return result


# -- what a finished cell recorded ----------------------------------------------------


def fingerprint(value: Any) -> dict[str, Any] | None:
    """The dataset fingerprint of a DataFrame or array; None when it is larger than
    ``$NBOPS_MAX_FINGERPRINT_BYTES``; ``{"not_fingerprinted": type, "reason": ...}``
    when it cannot be fingerprinted (an object array of mixed values)."""
    try:
        if hasattr(value, "memory_usage"):  # pandas: a DataFrame sums its columns
            usage = value.memory_usage(index=False, deep=False)
            nbytes = int(usage.sum()) if hasattr(usage, "sum") else int(usage)
        else:
            nbytes = int(value.nbytes)
        if nbytes > MAX_FINGERPRINT_BYTES:
            return None
        from ..datasets import fingerprint as dataset_fingerprint

        return dataset_fingerprint(value)
    except Exception as exc:  # noqa: BLE001 - a value we cannot read is named, not fatal
        kind = type(value).__name__
        dtype = getattr(value, "dtype", None)
        return {
            "not_fingerprinted": f"{kind}[{dtype}]" if dtype is not None else kind,
            "reason": f"{type(exc).__name__}: {str(exc)[:200]}",
        }


def _named(ns: dict[str, Any], names: list[str], option: str) -> dict[str, Any]:
    """The values of names given with an option; a missing name is a warning."""
    found = {}
    for name in names:
        if name in ns:
            found[name] = ns[name]
        else:
            warnings.warn(
                f"nbops: {option} names {name!r}, which the cell did not define",
                stacklevel=user_stacklevel(),
            )
    return found


def _each(log: Any, items: dict[str, Any], what: str) -> None:
    """Log ``items`` one by one: a name or value the store refuses is named in a
    warning and the rest is still recorded."""
    refused = []
    for key, value in items.items():
        try:
            log({key: value})
        except NbopsError as exc:
            refused.append(f"{key} ({exc})")
    if refused:
        warnings.warn(
            f"nbops: {len(refused)} {what}s not recorded: {'; '.join(refused)[:500]}",
            stacklevel=user_stacklevel(),
        )


def _record(
    cell: TrackedCell, recorder: Any, status: str, result: CellResult
) -> list[autolog.ModelJob]:
    """Log what the cell did on its run; returns the model files still to write."""
    run, ns, options, analysis = cell.run, cell.ns, cell.options, cell.analysis
    run.update_info(env=capture.env_info())  # after the cell: it sees the cell's imports
    changed = capture.changed_names(cell.before, ns)

    # a name the user asked for as a metric is a metric, even when assigned a literal
    params = {
        k: options.overrides.get(k, v)
        for k, v in analysis.literals.items()
        if k not in options.metrics
    }
    params.update({k: v for k, v in options.overrides.items() if k not in params})
    params.update(_named(ns, options.params, "--params"))
    _each(run.log_params, params, "param")

    bound = sorted((changed & analysis.assigned) - analysis.loop_vars - set(params))
    named, others = results.split_bound(bound, ns, set(options.metrics))
    values: dict[str, Any] = {}
    metric_pairs: list[tuple[str, float]] = []
    if recorder is not None:
        # a score the cell bound to a result name is recorded under that name only
        kept = {id(ns[n]) for n in named}
        records = [r for r in recorder.records if id(r.value) not in kept]
        metric_pairs, values = results.from_records(records)
    metrics, more = results.unique_keys(metric_pairs)
    values.update(more)
    metrics.update({k: v for k, v in named.items() if k not in metrics})
    values.update(others)
    asked = _named(ns, options.metrics, "--metrics")
    for name, value in asked.items():
        if results.is_numeric_scalar(value):
            metrics[name] = value
        else:
            warnings.warn(
                f"nbops: --metrics {name}: a {type(value).__name__} is not a "
                "number, so it was not recorded",
                stacklevel=user_stacklevel(),
            )
    _each(run.log_metrics, metrics, "metric")

    fps = dict(cell.read)
    for name in sorted(changed):
        if capture.is_data(ns.get(name)) and name not in fps:
            fps[name] = fingerprint(ns[name])
    skipped = sorted(n for n, fp in fps.items() if fp is None or "not_fingerprinted" in fp)
    if skipped:
        run.set_tag("nbops.unfingerprinted", ",".join(skipped))
    store = run.store
    for name, fp in fps.items():
        if fp is None:
            values[name] = {
                "not_fingerprinted": type(ns.get(name)).__name__,
                "reason": "larger than $NBOPS_MAX_FINGERPRINT_BYTES",
            }
        elif "not_fingerprinted" in fp:
            values[name] = fp
        else:
            store.add_dataset(
                {
                    **fp,
                    "name": name,
                    "source": "cell",
                    "first_seen": utc_now(),
                    "first_run": run.run_id,
                }
            )
            run.add_input(fp["digest"])
    if values:
        run.update_info(values=values)

    if options.artifacts:
        for path in capture.new_or_modified(
            cell.art_before, capture.glob_mtimes(options.artifacts)
        ):
            rel = (
                os.path.relpath(path, Path.cwd())
                if not os.path.isabs(options.artifacts)
                else Path(path).name
            )
            run.log_artifact(path, name=rel)

    jobs: list[autolog.ModelJob] = []
    if status == "FINISHED":  # a cell that failed logs no model
        try:
            jobs = autolog.plan_cell_models(
                run,
                ns,
                changed,
                options,
                cell.code,
                recorder.fitted if recorder is not None else [],
            )
        except Exception as exc:  # noqa: BLE001 - a failing model capture keeps the run
            _warn(f"could not log the models of run {run.run_id}", exc)

    result.counts = {
        "params": len(run.params),
        "metrics": len(run.metrics),
        "artifacts": len(run.artifacts),
        "datasets": len(run.inputs),
        "models": len(jobs),
    }
    return jobs


def _write_and_end(
    run: Run, jobs: list[autolog.ModelJob], status: str, error: BaseException | None
) -> None:
    """The background job of a cell with models: write them, then end the run. A model
    that could not be written is named in ``models_missing`` with the reason."""
    try:
        failed = autolog.write_models(run, jobs)
    except Exception as exc:  # noqa: BLE001 - the run still ends, saying what is missing
        failed = {j.name: f"{type(exc).__name__}: {exc}" for j in jobs}
    if failed:
        warnings.warn(
            f"nbops: run {run.run_id} could not write the models {sorted(failed)}: "
            f"{next(iter(failed.values()))}",
            stacklevel=1,
        )
        run.update_info(models_missing=failed)
    run.update_info(models_pending=[])
    run.end(status, error=error)
