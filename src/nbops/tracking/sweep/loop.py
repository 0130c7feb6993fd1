"""The sweep loop shared by ``nbops.sweep`` (a function) and ``%%track --sweep`` (a
cell): one parent run, one child run per trial, the best trial on the parent.

The parent run records the search space (params ``space.<name>``), the best trial
(tag ``best_trial``), and a ``sweep`` field with the best params and objective value.
A trial that raises is a FAILED child and the sweep goes on; KeyboardInterrupt marks
the interrupted trial and the parent KILLED, keeps the finished trials, and re-raises.
A cell trial reports the swept names it has no literal assignment of as data
(``CellResult.missing``); the sweep says so once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .. import capture
from ..run import Run, user_stacklevel
from .search import Bayes, better, check_params, plan_trials, resolve_mode
from .spec import Space, SweepError, as_space, plain

if TYPE_CHECKING:
    import pandas as pd

    from ..cell import TrackOptions


@dataclass
class Trial:
    """One trial of a sweep: its run, status, params, objective value and metrics."""

    number: int
    run_id: str | None
    status: str
    params: dict[str, Any]
    value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class SweepResult:
    """What a sweep did: the parent run, every trial, and the best one."""

    parent_id: str
    status: str
    search: str
    objective: str | None
    mode: str
    trials: list[Trial]
    best_run_id: str | None = None
    best_params: dict[str, Any] | None = None
    best_value: float | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per trial: number, run_id, status, the params, the objective value."""
        import pandas as pd

        rows = [
            {
                "trial": t.number,
                "run_id": t.run_id,
                "status": t.status,
                **{f"params.{k}": v for k, v in t.params.items()},
                self.objective or "value": t.value,
            }
            for t in self.trials
        ]
        return pd.DataFrame(rows)

    def _line(self) -> str:
        done = sum(t.status == "FINISHED" for t in self.trials)
        failed = sum(t.status == "FAILED" for t in self.trials)
        best = ""
        if self.best_run_id:
            best = (
                f" · best {self.objective}={self.best_value:.6g} ({self.mode}) in run "
                f"{self.best_run_id} with {self.best_params}"
            )
        return (
            f"nbops sweep {self.parent_id} {self.status}: {self.search}, "
            f"{done} finished, {failed} failed of {len(self.trials)} trials{best}"
        )

    def __repr__(self) -> str:
        return self._line()

    def _repr_html_(self) -> str:
        import html

        return (
            f'<div class="nbops-sweep" style="font:12px monospace;color:#57606a">'
            f"{html.escape(self._line())}</div>"
        )


class _Progress:
    """tqdm: a notebook bar in Jupyter, text on stderr in a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            with warnings.catch_warnings():  # tqdm warns when ipywidgets is absent
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=f"trial 0/{total}", unit="trial")
        self.total = total

    def step(self, k: int, objective: str | None, best: float | None) -> None:
        """Show trial ``k`` done and the best value so far."""
        if self.bar is None:
            return
        self.bar.set_description(f"trial {k}/{self.total}", refresh=False)
        if best is not None:
            self.bar.set_postfix_str(f"best {objective}={best:.4g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


RunTrial = Callable[[int, dict[str, Any], str], tuple[str | None, str, dict, BaseException | None]]


def _sweep(
    run_trial: RunTrial,
    space: Space,
    parent: Run,
    search: str,
    trials: int | None,
    objective: str | None,
    mode: str | None,
    seed: int | None,
    progress: bool,
) -> SweepResult:
    """The loop both entry points share. ``run_trial(k, params, parent_id)`` runs one
    trial and returns (run_id, status, metrics, error)."""
    check_params(space, search, trials, seed)
    if search == "bayes" and objective is None:
        raise SweepError(
            "search='bayes' needs an objective: name the metric to optimise "
            "with objective='...' (--objective METRIC)"
        )
    mode_given = mode is not None
    mode = resolve_mode(mode, objective)
    plan, total = plan_trials(space, search, trials, seed, mode)

    parent.set_tags({"nbops.sweep": "parent"})
    parent.log_params(
        {
            "search": search,
            "trials": total,
            "seed": seed,
            **{f"space.{k}": v for k, v in space.text.items()},
        }
    )
    parent.flush()  # the space is on record even if the kernel dies mid-sweep

    result = SweepResult(parent.run_id, "RUNNING", search, objective, mode, [])
    bar = _Progress(total, progress)
    checked = False
    best: Trial | None = None
    status, error = "FINISHED", None
    try:
        for k in range(1, total + 1):
            if isinstance(plan, Bayes):
                params = plan.ask()
            else:
                params = next(plan, None)
                if params is None:
                    break
            params = {n: plain(v) for n, v in params.items()}
            run_id, trial_status, metrics, exc = run_trial(k, params, parent.run_id)
            trial = Trial(
                k,
                run_id,
                trial_status,
                params,
                metrics=dict(metrics),
                error=f"{type(exc).__name__}: {exc}" if exc else None,
            )
            result.trials.append(trial)
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            if trial_status == "FINISHED" and not checked:
                checked = True
                objective = _check_objective(objective, metrics, search, k, run_id)
                result.objective = objective
                if objective and not mode_given:
                    mode = result.mode = resolve_mode(None, objective)
            if objective is not None and trial_status == "FINISHED":
                raw = metrics.get(objective)
                trial.value = float(raw) if raw is not None else None
            if trial_status == "FAILED":
                warnings.warn(
                    f"nbops: sweep trial {k} (run {run_id}) failed: {trial.error}; "
                    "the sweep goes on",
                    stacklevel=3,
                )
            if isinstance(plan, Bayes):
                plan.tell(trial.value)
            if better(trial.value, best.value if best else None, mode):
                best = trial
            bar.step(k, objective, best.value if best else None)
    except KeyboardInterrupt as exc:
        status, error = "KILLED", exc
    except BaseException as exc:  # recorded on the parent, then re-raised below
        status, error = "FAILED", exc
    finally:
        bar.close()
    fatal = error

    finished = sum(t.status == "FINISHED" for t in result.trials)
    if status == "FINISHED" and result.trials and finished == 0:
        status = "FAILED"
        error = SweepError(
            f"all {len(result.trials)} trials of sweep {parent.run_id} failed; "
            "see the child runs' errors"
        )
        warnings.warn(f"nbops: {error}", stacklevel=3)
    record: dict[str, Any] = {
        "search": search,
        "space": dict(space.text),
        "trials_planned": total,
        "objective": objective,
        "mode": mode,
        "seed": seed,
        "trial_ids": [t.run_id for t in result.trials],
        "finished": finished,
        "failed": sum(t.status == "FAILED" for t in result.trials),
        "killed": sum(t.status == "KILLED" for t in result.trials),
        "best_run_id": None,
        "best_params": None,
        "best_value": None,
    }
    if best is not None:
        result.best_run_id, result.best_params, result.best_value = (
            best.run_id,
            best.params,
            best.value,
        )
        record.update(best_run_id=best.run_id, best_params=best.params, best_value=best.value)
        parent.set_tag("best_trial", best.run_id)
        parent.log_metric(f"best_{objective}", best.value)
    if objective:
        parent.log_params({"objective": objective, "mode": mode})
    parent.log_metrics({"trials_finished": finished, "trials_failed": record["failed"]})
    parent.update_info(sweep=record)
    parent.end(status, error=error)
    result.status = status
    if fatal is not None:
        raise fatal
    return result


def _check_objective(
    objective: str | None, metrics: dict, search: str, k: int, run_id: str | None
) -> str | None:
    produced = sorted(metrics)
    if objective is not None:
        if objective not in metrics:
            raise SweepError(
                f"the objective metric {objective!r} was not produced by trial {k} "
                f"(run {run_id}); the metrics it produced are {produced or 'none'}. "
                "Pass one of those as the objective (--objective METRIC)."
            )
        return objective
    if len(produced) == 1:
        return produced[0]
    return None  # several metrics and no objective: trials are recorded, no best is picked


# -- entry points ---------------------------------------------------------------------


def sweep(
    fn: Callable[..., Any],
    space: Space | str | dict[str, Any],
    search: str = "grid",
    trials: int | None = None,
    objective: str | None = None,
    mode: str | None = None,
    seed: int | None = None,
    name: str | None = None,
    experiment: str | None = None,
    tags: dict[str, Any] | None = None,
    progress: bool = True,
) -> SweepResult:
    """Call ``fn(**params)`` once per trial, each trial a child run of one parent run.

    ``fn`` may return a number (logged as the metric ``objective``, or ``"objective"``),
    a dict of metrics, or None after logging metrics itself with ``nbops.log_metric``
    (the trial's run is the active run). ``space`` is a dict of lists / ranges /
    scipy.stats distributions, or a spec string. ``search`` is grid (default; all
    combinations, at most ``trials``), random (``trials`` samples, default 10) or bayes
    (Optuna TPE, default 20 trials, needs ``objective``). ``mode`` is "max" or "min"
    (default: "min" for loss/error-like objective names, else "max").

    Returns a :class:`SweepResult`. Raises SweepError for a bad space or an objective no
    trial produces; re-raises KeyboardInterrupt after marking the parent KILLED.
    """
    from .. import api

    if not callable(fn):
        raise SweepError(f"sweep needs a function to call, got {type(fn).__name__}")
    parsed = as_space(space)
    check_params(parsed, search, trials, seed)
    fname = getattr(fn, "__name__", "fn")
    parent_name = name or f"sweep-{fname}"
    code: dict[str, Any] = {**capture.git_info(), "function": fname}
    try:
        import inspect

        code["source"] = inspect.getsource(fn)
    except (OSError, TypeError):
        pass
    parent = Run(
        name=parent_name, experiment=experiment, tags=tags, code=code, env=capture.env_info()
    )

    def run_trial(k: int, params: dict, parent_id: str):
        """Run trial ``k``; returns (run id, status, metrics, error)."""
        run = api.start_run(
            name=f"{parent_name}-{k}",
            experiment=parent.experiment,
            tags={**(tags or {}), "nbops.trial": k},
            parent_id=parent_id,
        )
        try:
            run.log_params(params)
            out = fn(**params)
            if isinstance(out, dict):
                run.log_metrics(out)
            elif out is not None:
                run.log_metric(objective or "objective", out)
        except BaseException as exc:
            run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", error=exc)
            return run.run_id, run.status, dict(run.metrics), exc
        run.end("FINISHED")
        return run.run_id, "FINISHED", dict(run.metrics), None

    return _sweep(run_trial, parsed, parent, search, trials, objective, mode, seed, progress)


def sweep_cell(
    source: str,
    space: Space | str | dict[str, Any],
    options: TrackOptions,
    shell: Any = None,
    search: str = "grid",
    trials: int | None = None,
    objective: str | None = None,
    mode: str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """The work behind ``%%track --sweep``: run the cell once per trial with the swept
    values in place of its own literal assignments, each trial a child run."""
    __tracebackhide__ = True
    from ..cell import run_tracked_cell

    parsed = as_space(space)
    check_params(parsed, search, trials, seed)
    parent_name = options.name or "sweep"
    parent = Run(
        name=parent_name,
        experiment=options.experiment,
        tags=options.tags,
        parent_id=options.parent_id,
        code={"source": source, "notebook": capture.notebook_path(shell), **capture.git_info()},
        env=capture.env_info(),
    )

    told: set[str] = set()

    def run_trial(k: int, params: dict, parent_id: str):
        """Run trial ``k``; returns (run id, status, metrics, error)."""
        trial_options = replace(
            options,
            name=f"{parent_name}-{k}",
            parent_id=parent_id,
            overrides=params,
            tags={**options.tags, "nbops.trial": str(k)},
            quiet=True,
        )
        res = run_tracked_cell(source, trial_options, shell=shell)
        new = res.missing - told
        if new:  # a swept name the cell sets without a literal: said once, not per trial
            told.update(new)
            warnings.warn(
                f"nbops: the cell has no literal assignment of {sorted(new)}; each trial "
                "sets those names before the cell runs",
                stacklevel=user_stacklevel(),
            )
        run = res.run
        if run is None:
            return None, "FAILED", {}, res.error or SweepError("tracking failed")
        return run.run_id, res.status, dict(run.metrics), res.error

    return _sweep(run_trial, parsed, parent, search, trials, objective, mode, seed, progress)
