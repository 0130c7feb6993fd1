"""Hyperparameter sweeps: run a cell (``%%track --sweep``) or a function
(``nbops.sweep``) once per trial, each trial a child run of one parent run.

grid and random use scikit-learn's ``ParameterGrid`` / ``ParameterSampler`` (random
also takes scipy.stats distributions such as ``loguniform(1e-4, 1e-1)``); bayes uses
Optuna's TPE sampler (the optional ``[bayes]`` extra).

A sweep spec is a string of ``name=expression`` tokens::

    alpha=[0.01,0.1,1] max_depth=range(2,8) lr=loguniform(1e-4,1e-1)

where an expression is a literal (a list is the set of choices, a scalar a single
value), ``range(...)``, ``linspace(...)`` / ``logspace(...)``, or a scipy.stats
distribution with literal arguments. Nothing in a spec is evaluated as code.

The parent run records the search space (params ``space.<name>``), the best trial
(tag ``best_trial``), and a ``sweep`` field with the best params and objective value.
A trial that raises is a FAILED child and the sweep goes on; KeyboardInterrupt marks
the interrupted trial and the parent KILLED, keeps the finished trials, and re-raises.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .._errors import NbopsError
from . import capture
from .run import Run

if TYPE_CHECKING:
    import pandas as pd

    from .cell import TrackOptions

SEARCHES = ("grid", "random", "bayes")
DEFAULT_TRIALS = {"random": 10, "bayes": 20}
#: objective names that are minimised when no direction is given
_LOSS_LIKE = re.compile(r"(loss|error|err$|mse|mae|rmse|mape|logloss|deviance)", re.I)
_SEQUENCES = {"range", "linspace", "logspace"}


class SweepError(NbopsError):
    """A sweep cannot run: a bad spec, search, objective, or a missing extra."""


class SweepSpecError(SweepError):
    """A sweep spec string is malformed; ``token`` is the offending part."""

    def __init__(self, message: str, spec: str = "", start: int = 0, end: int = 0) -> None:
        self.token = spec[start:end] if spec else ""
        pointer = ""
        if spec:
            pointer = f"\n  {spec}\n  {' ' * start}{'^' * max(1, end - start)}"
        super().__init__(f"bad sweep spec: {message}{pointer}")


# -- the search space -----------------------------------------------------------------


@dataclass
class Space:
    """A parsed search space: name -> list of choices or a scipy.stats frozen
    distribution; ``text`` keeps how each name was written, for the record."""

    values: dict[str, Any]
    text: dict[str, str]

    def distributions(self) -> list[str]:
        return [k for k, v in self.values.items() if _is_distribution(v)]


_NAME_EQ = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)")


def _top_level_starts(spec: str) -> list[re.Match]:
    """``name=`` matches that sit outside brackets and quotes."""
    depth, quote, found = 0, "", []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and (i == 0 or spec[i - 1] in " \t\n,;"):
            m = _NAME_EQ.match(spec, i)
            if m:
                found.append(m)
                i = m.end()
                continue
        i += 1
    return found


def parse_space(spec: str) -> Space:
    """Parse ``"alpha=[0.01,0.1,1] max_depth=range(2,8)"`` into a :class:`Space`.
    Raises SweepSpecError whose message points at the bad token."""
    if not spec or not spec.strip():
        raise SweepSpecError("it is empty; write name=values pairs such as "
                             "'alpha=[0.1,1] depth=range(2,6)'")
    starts = _top_level_starts(spec)
    head = spec[: starts[0].start()] if starts else spec
    if head.strip(" \t\n,;"):
        s = len(head) - len(head.lstrip())
        raise SweepSpecError(
            f"{head.strip()!r} is not a name=values pair", spec, s, len(head.rstrip()))
    values: dict[str, Any] = {}
    text: dict[str, str] = {}
    for i, m in enumerate(starts):
        stop = starts[i + 1].start() if i + 1 < len(starts) else len(spec)
        raw = spec[m.end():stop]
        expr = raw.strip().rstrip(",;").strip()
        lo = m.end() + (len(raw) - len(raw.lstrip()))
        name = m.group(1)
        if name in values:
            raise SweepSpecError(f"{name!r} is given twice", spec, m.start(), lo + len(expr))
        cut = _trailing_junk(expr)
        if cut is not None:
            junk = expr[cut:].strip()
            at = lo + expr.index(junk, cut)
            raise SweepSpecError(
                f"unexpected {junk!r} after {name}={expr[:cut].strip()}; write each "
                "parameter as name=values, separated by spaces", spec, at, at + len(junk))
        try:
            values[name] = _parse_values(name, expr)
        except SweepSpecError as exc:
            raise SweepSpecError(str(exc).removeprefix("bad sweep spec: "), spec,
                                 m.start(), max(lo + len(expr), m.end())) from None
        text[name] = expr
    return Space(values, text)


def _trailing_junk(expr: str) -> int | None:
    """Where a valid expression followed by stray words ends (``[1] junk`` -> 3)."""
    if _parses(expr):
        return None
    for cut in range(len(expr) - 1, 0, -1):
        if expr[cut - 1] in "])" + "0123456789'\"" and expr[cut] == " " and _parses(expr[:cut]):
            return cut
    return None


def _parses(expr: str) -> bool:
    try:
        ast.parse(expr, mode="eval")
    except SyntaxError:
        return False
    return True


def _parse_values(name: str, expr: str) -> Any:
    if not expr:
        raise SweepSpecError(f"{name}= has no values")
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError as exc:
        raise SweepSpecError(f"{name}={expr} is not a valid expression ({exc.msg})") from None
    if isinstance(node, ast.Call):
        return _parse_call(name, expr, node)
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise SweepSpecError(
            f"{name}={expr}: use a literal list, range(...), or a scipy.stats distribution "
            "such as loguniform(1e-4,1e-1)"
        ) from None
    if isinstance(value, (dict, set)):
        raise SweepSpecError(f"{name}={expr}: give the choices as a list")
    return _choices(name, value)


def _choices(name: str, value: Any) -> list:
    if isinstance(value, (list, tuple)):
        if not value:
            raise SweepSpecError(f"{name} has an empty list of values")
        return list(value)
    return [value]


def _parse_call(name: str, expr: str, node: ast.Call) -> Any:
    if not isinstance(node.func, ast.Name):
        raise SweepSpecError(f"{name}={expr}: only range(), linspace(), logspace() or a "
                             "scipy.stats distribution name can be called")
    fname = node.func.id
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except (ValueError, TypeError, SyntaxError):
        raise SweepSpecError(f"{name}={expr}: arguments must be literal numbers") from None
    if None in kwargs:
        raise SweepSpecError(f"{name}={expr}: **kwargs are not allowed")
    if fname == "range":
        try:
            values = list(range(*args, **kwargs))
        except TypeError as exc:
            raise SweepSpecError(f"{name}={expr}: {exc}") from None
        return _choices(name, values) if values else _raise_empty(name, expr)
    if fname in ("linspace", "logspace"):
        import numpy as np

        try:
            values = [float(v) for v in getattr(np, fname)(*args, **kwargs)]
        except (TypeError, ValueError) as exc:
            raise SweepSpecError(f"{name}={expr}: {exc}") from None
        return _choices(name, values) if values else _raise_empty(name, expr)
    import scipy.stats as st

    dist = getattr(st, fname, None)
    if not isinstance(dist, (st.rv_continuous, st.rv_discrete)):
        raise SweepSpecError(
            f"{name}={expr}: {fname!r} is not range, linspace, logspace or a scipy.stats "
            "distribution (e.g. loguniform, uniform, randint, norm)"
        )
    try:
        frozen = dist(*args, **kwargs)
        bounds = [float(x) for x in frozen.support()]
    except (TypeError, ValueError) as exc:
        raise SweepSpecError(f"{name}={expr}: {exc}") from None
    if any(math.isnan(b) for b in bounds):
        raise SweepSpecError(f"{name}={expr}: invalid arguments for {fname}")
    return frozen


def _raise_empty(name: str, expr: str):
    raise SweepSpecError(f"{name}={expr} gives no values")


def _is_distribution(value: Any) -> bool:
    return hasattr(value, "rvs") and hasattr(value, "support")


def as_space(space: Space | str | dict[str, Any]) -> Space:
    """A Space from a spec string, a dict (lists, ranges, arrays, scipy distributions
    or single values) or a Space."""
    if isinstance(space, Space):
        return space
    if isinstance(space, str):
        return parse_space(space)
    if not isinstance(space, dict) or not space:
        raise SweepError(
            "the search space must be a non-empty dict such as {'alpha': [0.1, 1], "
            "'lr': scipy.stats.loguniform(1e-4, 1e-1)} or a spec string "
            "'alpha=[0.1,1] depth=range(2,6)'"
        )
    values, text = {}, {}
    for name, value in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SweepError(f"search space name {name!r} is not a valid identifier")
        if _is_distribution(value):
            values[name] = value
            args = ", ".join(map(repr, getattr(value, "args", ())))
            text[name] = f"{getattr(getattr(value, 'dist', None), 'name', 'dist')}({args})"
        elif isinstance(value, str):
            values[name] = [value]
            text[name] = repr([value])
        else:
            try:
                choices = [_plain(v) for v in value] if not isinstance(value, (dict, set)) \
                    else None
            except TypeError:
                choices = [_plain(value)]
            if choices is None:
                raise SweepError(f"search space {name!r}: give the choices as a list")
            if not choices:
                raise SweepError(f"search space {name!r} has no values")
            values[name] = choices
            text[name] = repr(value) if isinstance(value, range) else repr(choices)
    return Space(values, text)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so values are JSON-able and cell literals."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value


# -- samplers -------------------------------------------------------------------------


def _grid(space: Space, trials: int | None) -> tuple[list[dict], int]:
    from sklearn.model_selection import ParameterGrid

    dists = space.distributions()
    if dists:
        raise SweepError(
            f"grid search needs lists of values, but {', '.join(dists)} "
            f"{'is a distribution' if len(dists) == 1 else 'are distributions'}; "
            "use search='random' (--search random) or 'bayes', or give a list"
        )
    grid = ParameterGrid({k: list(v) for k, v in space.values.items()})
    total = len(grid) if trials is None else min(trials, len(grid))
    return [grid[i] for i in range(total)], total


def _random(space: Space, trials: int, seed: int | None) -> list[dict]:
    from sklearn.model_selection import ParameterSampler

    with warnings.catch_warnings():  # a small all-list space: fewer trials, said below
        warnings.simplefilter("ignore", UserWarning)
        return list(ParameterSampler(dict(space.values), n_iter=trials, random_state=seed))


class _Bayes:
    """Optuna TPE through its ask/tell interface, so trials stay ours."""

    def __init__(self, space: Space, mode: str, seed: int | None) -> None:
        try:
            import optuna
        except ImportError:
            raise SweepError(
                "search='bayes' uses Optuna, which is not installed. Install it with "
                "`pip install 'nbops[bayes]'` (or `pip install optuna`), or use "
                "search='random'"
            ) from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.decode: dict[str, list] = {}
        self.dists = {n: self._distribution(optuna, n, v) for n, v in space.values.items()}
        self.study = optuna.create_study(
            direction="maximize" if mode == "max" else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
        self.trial = None

    def _distribution(self, optuna, name: str, value: Any):
        d = optuna.distributions
        if isinstance(value, list):
            if all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
                return d.CategoricalDistribution(value)
            self.decode[name] = value  # lists of lists etc.: choose by position
            return d.CategoricalDistribution(list(range(len(value))))
        kind = getattr(getattr(value, "dist", None), "name", "")
        low, high = (float(x) for x in value.support())
        if kind in ("loguniform", "reciprocal"):
            return d.FloatDistribution(low, high, log=True)
        if kind == "uniform":
            return d.FloatDistribution(low, high)
        if kind == "randint":
            return d.IntDistribution(int(low), int(high))
        raise SweepError(
            f"bayes search cannot use {name}={kind}(...); use a list, range(), "
            "uniform(loc, scale), loguniform(low, high) or randint(low, high), or "
            "search='random' for other distributions"
        )

    def ask(self) -> dict[str, Any]:
        self.trial = self.study.ask(self.dists)
        return {n: (self.decode[n][v] if n in self.decode else v)
                for n, v in self.trial.params.items()}

    def tell(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            self.study.tell(self.trial, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(self.trial, value)


# -- the sweep ------------------------------------------------------------------------


@dataclass
class Trial:
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

        rows = [{"trial": t.number, "run_id": t.run_id, "status": t.status,
                 **{f"params.{k}": v for k, v in t.params.items()},
                 self.objective or "value": t.value} for t in self.trials]
        return pd.DataFrame(rows)

    def _line(self) -> str:
        done = sum(t.status == "FINISHED" for t in self.trials)
        failed = sum(t.status == "FAILED" for t in self.trials)
        best = ""
        if self.best_run_id:
            best = (f" · best {self.objective}={self.best_value:.6g} ({self.mode}) in run "
                    f"{self.best_run_id} with {self.best_params}")
        return (f"nbops sweep {self.parent_id} {self.status}: {self.search}, "
                f"{done} finished, {failed} failed of {len(self.trials)} trials{best}")

    def __repr__(self) -> str:
        return self._line()

    def _repr_html_(self) -> str:
        import html

        return (f'<div class="nbops-sweep" style="font:12px monospace;color:#57606a">'
                f"{html.escape(self._line())}</div>")


def _resolve_mode(mode: str | None, objective: str | None) -> str:
    if mode is None:
        return "min" if objective and _LOSS_LIKE.search(objective) else "max"
    if mode not in ("max", "min"):
        raise SweepError(f"mode must be 'max' or 'min', not {mode!r}")
    return mode


def _better(value: float | None, best: float | None, mode: str) -> bool:
    if value is None or math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


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
        if self.bar is None:
            return
        self.bar.set_description(f"trial {k}/{self.total}", refresh=False)
        if best is not None:
            self.bar.set_postfix_str(f"best {objective}={best:.4g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_params(space: Space, search: str, trials: int | None, seed: int | None) -> None:
    if search not in SEARCHES:
        raise SweepError(f"unknown search {search!r}; use one of {', '.join(SEARCHES)}")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise SweepError(f"trials must be a positive integer, not {trials!r}")
    if seed is not None and not isinstance(seed, int):
        raise SweepError(f"seed must be an integer, not {seed!r}")


def _plan(space: Space, search: str, trials: int | None, seed: int | None, mode: str
          ) -> tuple[Iterator[dict] | _Bayes, int]:
    if search == "grid":
        points, total = _grid(space, trials)
        return iter(points), total
    if search == "random":
        points = _random(space, trials or DEFAULT_TRIALS["random"], seed)
        return iter(points), len(points)
    return _Bayes(space, mode, seed), trials or DEFAULT_TRIALS["bayes"]


RunTrial = Callable[[int, dict[str, Any], str], tuple[str | None, str, dict, BaseException | None]]


def _sweep(
    run_trial: RunTrial,
    space: Space,
    *,
    search: str,
    trials: int | None,
    objective: str | None,
    mode: str | None,
    seed: int | None,
    parent: Run,
    progress: bool,
) -> SweepResult:
    """The loop both entry points share. ``run_trial(k, params, parent_id)`` runs one
    trial and returns (run_id, status, metrics, error)."""
    _check_params(space, search, trials, seed)
    if search == "bayes" and objective is None:
        raise SweepError("search='bayes' needs an objective: name the metric to optimise "
                         "with objective='...' (--objective METRIC)")
    mode_given = mode is not None
    mode = _resolve_mode(mode, objective)
    plan, total = _plan(space, search, trials, seed, mode)

    parent.set_tags({"nbops.sweep": "parent"})
    parent.log_params({"search": search, "trials": total, "seed": seed,
                       **{f"space.{k}": v for k, v in space.text.items()}})
    parent.flush()  # the space is on record even if the kernel dies mid-sweep

    result = SweepResult(parent.run_id, "RUNNING", search, objective, mode, [])
    bar = _Progress(total, progress)
    checked = False
    best: Trial | None = None
    status, error = "FINISHED", None
    try:
        for k in range(1, total + 1):
            if isinstance(plan, _Bayes):
                params = plan.ask()
            else:
                params = next(plan, None)
                if params is None:
                    break
            params = {n: _plain(v) for n, v in params.items()}
            run_id, trial_status, metrics, exc = run_trial(k, params, parent.run_id)
            trial = Trial(k, run_id, trial_status, params, metrics=dict(metrics),
                          error=f"{type(exc).__name__}: {exc}" if exc else None)
            result.trials.append(trial)
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            if trial_status == "FINISHED" and not checked:
                checked = True
                objective = _check_objective(objective, metrics, search, k, run_id)
                result.objective = objective
                if objective and not mode_given:
                    mode = result.mode = _resolve_mode(None, objective)
            if objective is not None and trial_status == "FINISHED":
                raw = metrics.get(objective)
                trial.value = float(raw) if raw is not None else None
            if trial_status == "FAILED":
                warnings.warn(f"nbops: sweep trial {k} (run {run_id}) failed: {trial.error}; "
                              "the sweep goes on", stacklevel=3)
            if isinstance(plan, _Bayes):
                plan.tell(trial.value)
            if _better(trial.value, best.value if best else None, mode):
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
        error = SweepError(f"all {len(result.trials)} trials of sweep {parent.run_id} failed; "
                           "see the child runs' errors")
        warnings.warn(f"nbops: {error}", stacklevel=3)
    record: dict[str, Any] = {
        "search": search, "space": dict(space.text), "trials_planned": total,
        "objective": objective, "mode": mode, "seed": seed,
        "trial_ids": [t.run_id for t in result.trials],
        "finished": finished,
        "failed": sum(t.status == "FAILED" for t in result.trials),
        "killed": sum(t.status == "KILLED" for t in result.trials),
        "best_run_id": None, "best_params": None, "best_value": None,
    }
    if best is not None:
        result.best_run_id, result.best_params, result.best_value = \
            best.run_id, best.params, best.value
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


def _check_objective(objective: str | None, metrics: dict, search: str, k: int,
                     run_id: str | None) -> str | None:
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
    from . import api

    if not callable(fn):
        raise SweepError(f"sweep needs a function to call, got {type(fn).__name__}")
    parsed = as_space(space)
    _check_params(parsed, search, trials, seed)
    fname = getattr(fn, "__name__", "fn")
    parent_name = name or f"sweep-{fname}"
    code: dict[str, Any] = {**capture.git_info(), "function": fname}
    try:
        import inspect

        code["source"] = inspect.getsource(fn)
    except (OSError, TypeError):
        pass
    parent = Run(name=parent_name, experiment=experiment, tags=tags, code=code,
                 env=capture.env_info())

    def run_trial(k: int, params: dict, parent_id: str):
        run = api.start_run(name=f"{parent_name}-{k}", experiment=parent.experiment,
                            tags={**(tags or {}), "nbops.trial": k}, parent_id=parent_id)
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

    return _sweep(run_trial, parsed, search=search, trials=trials, objective=objective,
                  mode=mode, seed=seed, parent=parent, progress=progress)


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
    from .cell import run_tracked_cell

    parsed = as_space(space)
    _check_params(parsed, search, trials, seed)
    parent_name = options.name or "sweep"
    parent = Run(
        name=parent_name, experiment=options.experiment, tags=options.tags,
        parent_id=options.parent_id,
        code={"source": source, "notebook": capture.notebook_path(shell),
              **capture.git_info()},
        env=capture.env_info(),
    )

    def run_trial(k: int, params: dict, parent_id: str):
        trial_options = replace(
            options, name=f"{parent_name}-{k}", parent_id=parent_id, overrides=params,
            tags={**options.tags, "nbops.trial": str(k)}, quiet=True,
        )
        with warnings.catch_warnings():
            # a swept name the cell sets without a literal is set before the cell; say it
            # once (below), not once per trial
            warnings.filterwarnings("ignore", message="nbops: the cell has no literal")
            res = run_tracked_cell(source, trial_options, shell=shell)
        run = res.run
        if run is None:
            return None, "FAILED", {}, res.error or SweepError("tracking failed")
        return run.run_id, run.status, dict(run.metrics), res.error

    missing = set(parsed.values) - set(capture.analyse_cell(
        shell.transform_cell(source) if shell is not None else source).literals)
    if missing:
        warnings.warn(
            f"nbops: the cell has no literal assignment of {sorted(missing)}; each trial "
            "sets those names before the cell runs", stacklevel=2)
    return _sweep(run_trial, parsed, search=search, trials=trials, objective=objective,
                  mode=mode, seed=seed, parent=parent, progress=progress)
