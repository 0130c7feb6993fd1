"""A fitted hyperparameter search (``GridSearchCV``, ``RandomizedSearchCV``,
``HalvingGridSearchCV`` ...) as a tracked cell records it.

* ``best_params_`` -> params ``<var>.best_params.<name>``;
* ``best_score_`` -> metric ``<var>.best_score`` (and ``<var>.best_<scorer>`` for a
  multi-metric search that refits on one scorer);
* ``best_estimator_`` -> the model, logged under ``<var>`` (see autolog);
* the best :data:`MAX_CANDIDATES` candidates by rank -> child runs of the cell's run,
  each with the candidate's params and its mean / std test scores;
* the whole ``cv_results_`` -> the table artifact ``<var>.cv_results.csv``.
"""

from __future__ import annotations

import io
import math
from typing import Any

from .._util import plain_scalar
from .run import Run

MAX_CANDIDATES = 20


def is_search(obj: Any) -> bool:
    """A fitted scikit-learn search: it has ``cv_results_`` and ``best_params_``."""
    try:
        return isinstance(getattr(obj, "cv_results_", None), dict) and hasattr(obj, "best_params_")
    except Exception:  # noqa: BLE001 - a property that raises: not a fitted search
        return False


def _plain(value: Any) -> Any:
    value = plain_scalar(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)  # an estimator or a list as a candidate's value: its repr


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _score_keys(results: dict[str, Any]) -> list[str]:
    return [k[len("mean_test_") :] for k in results if k.startswith("mean_test_")]


def log_search(run: Run, var: str, search: Any) -> dict[str, Any]:
    """Record a fitted search on ``run`` (see the module docstring). Returns
    ``{"candidates": child run ids, "table": artifact name or None}``."""
    results = search.cv_results_
    run.log_params({f"{var}.best_params.{k}": _plain(v) for k, v in search.best_params_.items()})
    best = _number(getattr(search, "best_score_", None))
    if best is not None:
        run.log_metric(f"{var}.best_score", best)
    refit = getattr(search, "refit", True)
    scorers = _score_keys(results)
    if isinstance(refit, str) and refit in scorers and best is not None:
        run.log_metric(f"{var}.best_{refit}", best)

    rank_key = next(
        (
            f"rank_test_{s}"
            for s in ([refit] if isinstance(refit, str) else [])
            if f"rank_test_{s}" in results
        ),
        "rank_test_score",
    )
    params = list(results.get("params") or [])
    ranks = list(results.get(rank_key, range(1, len(params) + 1)))
    order = sorted(range(len(params)), key=lambda i: (int(ranks[i]), i))[:MAX_CANDIDATES]
    children = []
    for position, i in enumerate(order, 1):
        child = Run(
            name=f"{var}-candidate-{position}",
            experiment=run.experiment,
            parent_id=run.run_id,
            store=run.store,
            tags={"nbops.candidate": str(position), "nbops.search": var},
            code={"search_of": run.run_id},
        )
        child.log_params({k: _plain(v) for k, v in params[i].items()})
        for scorer in scorers:
            for stat in ("mean", "std"):
                value = _number(results[f"{stat}_test_{scorer}"][i])
                if value is not None:
                    child.log_metric(f"{stat}_test_{scorer}", value)
        child.log_metric("rank", int(ranks[i]))
        child.end("FINISHED")
        children.append(child.run_id)
    table = _table(results)
    name = None
    if table is not None:
        name = run.log_artifact_bytes(table, f"{var}.cv_results.csv", kind="table")["name"]
    run.set_tag(f"nbops.search.{var}", f"{len(params)} candidates, {len(children)} as child runs")
    return {"candidates": children, "table": name}


def _table(results: dict[str, Any]) -> bytes | None:
    try:
        import pandas as pd

        frame = pd.DataFrame(
            {k: (list(map(repr, v)) if k == "params" else list(v)) for k, v in results.items()}
        )
        out = io.StringIO()
        frame.to_csv(out, index=False)
        return out.getvalue().encode()
    except Exception:  # noqa: BLE001 - a table we cannot build leaves the rest recorded
        return None
