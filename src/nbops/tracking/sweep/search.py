"""How a sweep picks its trials: grid and random through scikit-learn's
``ParameterGrid`` / ``ParameterSampler`` (random also takes scipy.stats
distributions), bayes through Optuna's TPE sampler (the optional ``[bayes]`` extra).
:func:`plan_trials` gives an iterator of param dicts (grid, random) or a :class:`Bayes`
that is asked for each trial and told its result.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from typing import Any

from .spec import Space, SweepError

SEARCHES = ("grid", "random", "bayes")
DEFAULT_TRIALS = {"random": 10, "bayes": 20}
#: objective names that are minimised when no direction is given
_LOSS_LIKE = re.compile(r"(loss|error|err$|mse|mae|rmse|mape|logloss|deviance)", re.I)


def grid(space: Space, trials: int | None) -> tuple[list[dict], int]:
    """Every combination (ParameterGrid), at most ``trials``; SweepError for a
    distribution in the space."""
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


def random(space: Space, trials: int, seed: int | None) -> list[dict]:
    """``trials`` samples of the space (ParameterSampler; fewer for a small grid)."""
    from sklearn.model_selection import ParameterSampler

    with warnings.catch_warnings():  # a small all-list space: fewer trials, said below
        warnings.simplefilter("ignore", UserWarning)
        return list(ParameterSampler(dict(space.values), n_iter=trials, random_state=seed))


class Bayes:
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
        """The params of the next trial."""
        self.trial = self.study.ask(self.dists)
        return {
            n: (self.decode[n][v] if n in self.decode else v) for n, v in self.trial.params.items()
        }

    def tell(self, value: float | None) -> None:
        """The objective of the last trial (None or not finite: a failed trial)."""
        if value is None or not math.isfinite(value):
            self.study.tell(self.trial, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(self.trial, value)


def resolve_mode(mode: str | None, objective: str | None) -> str:
    """ "max" or "min": ``mode`` when given, else "min" for loss/error-like objectives."""
    if mode is None:
        return "min" if objective and _LOSS_LIKE.search(objective) else "max"
    if mode not in ("max", "min"):
        raise SweepError(f"mode must be 'max' or 'min', not {mode!r}")
    return mode


def better(value: float | None, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` in direction ``mode`` (NaN never does)."""
    if value is None or math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def check_params(space: Space, search: str, trials: int | None, seed: int | None) -> None:
    """SweepError for an unknown search, a bad number of trials or a bad seed."""
    if search not in SEARCHES:
        raise SweepError(f"unknown search {search!r}; use one of {', '.join(SEARCHES)}")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise SweepError(f"trials must be a positive integer, not {trials!r}")
    if seed is not None and not isinstance(seed, int):
        raise SweepError(f"seed must be an integer, not {seed!r}")


def plan_trials(
    space: Space, search: str, trials: int | None, seed: int | None, mode: str
) -> tuple[Iterator[dict] | Bayes, int]:
    """(params iterator or Bayes, number of trials) for ``search`` over ``space``."""
    if search == "grid":
        points, total = grid(space, trials)
        return iter(points), total
    if search == "random":
        points = random(space, trials or DEFAULT_TRIALS["random"], seed)
        return iter(points), len(points)
    return Bayes(space, mode, seed), trials or DEFAULT_TRIALS["bayes"]
