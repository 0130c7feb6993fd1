"""scikit-learn autolog for ``%%track``: find the fitted models a cell produced, record
their params (``get_params``) and log them with a signature from the training DataFrame
and a bounded sample of it as the model's drift reference.

It runs as a post-cell hook (see :data:`nbops.tracking.cell.POST_CELL_HOOKS`). A model
is a fitted scikit-learn estimator with ``predict`` that the cell bound, rebound, or
called ``.fit`` on; ``%%track --model VAR`` names one explicitly. Estimators that are
parts of another found model (the steps of a pipeline) are not logged twice.
Nothing here imports scikit-learn unless the user's code already did.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from ..modelfile import infer_signature, is_fitted_estimator

FIT_METHODS = ("fit", "fit_transform", "fit_predict", "partial_fit")


def fitted_names(source: str) -> set[str]:
    """Names the cell calls a fit method on (``clf.fit(X, y)``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        node.func.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in FIT_METHODS and isinstance(node.func.value, ast.Name)
    }


def fit_inputs(source: str) -> list[str]:
    """Names the cell passes as the data (first argument or ``X=``) to a fit method
    (``clf.fit(X_train, y)``, ``make_pipeline(...).fit(X_train, y)``), in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in FIT_METHODS):
            continue
        data = node.args[0] if node.args else next(
            (kw.value for kw in node.keywords if kw.arg == "X"), None)
        if isinstance(data, ast.Name) and data.id not in out:
            out.append(data.id)
    return out


def _parts(model: Any) -> list[int]:
    """ids of the estimators nested inside ``model`` (pipeline steps, wrapped estimators)."""
    try:
        params = model.get_params(deep=True)
    except Exception:  # noqa: BLE001 - a broken get_params only loses the dedup
        return []
    ids = []
    for value in params.values():
        if hasattr(value, "get_params"):
            ids.append(id(value))
    return ids


def find_models(ns: Mapping[str, Any], names: Iterable[str]) -> list[tuple[str, Any]]:
    """(name, model) of the fitted predictors among ``names``, without nested parts."""
    found = [(n, ns[n]) for n in sorted(set(names))
             if n in ns and is_fitted_estimator(ns[n]) and hasattr(ns[n], "predict")]
    nested = {i for _, model in found for i in _parts(model)}
    return [(n, m) for n, m in found if id(m) not in nested]


def training_frame(model: Any, ns: Mapping[str, Any], prefer: Iterable[str],
                   first: Iterable[str] = ()) -> Any:
    """A DataFrame in ``ns`` whose columns are exactly the model's ``feature_names_in_``
    (names in ``first`` -- the frames the cell passed to ``fit`` --, then in ``prefer``,
    then the largest such frame), or None."""
    wanted = getattr(model, "feature_names_in_", None)
    if wanted is None:
        return None
    wanted = [str(c) for c in wanted]

    def matches(value: Any) -> bool:
        columns = getattr(value, "columns", None)
        return (type(value).__name__ == "DataFrame" and columns is not None
                and len(columns) == len(wanted) and [str(c) for c in columns] == wanted)

    passed = [ns[n] for n in first if n in ns and matches(ns[n])]
    preferred = [ns[n] for n in sorted(set(prefer)) if n in ns and matches(ns[n])]
    pool = passed or preferred or [v for k, v in list(ns.items()) if not k.startswith("_") and matches(v)]
    return max(pool, key=len) if pool else None


def estimator_params(model: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` without nested estimators and non-scalar values."""
    out = {}
    for key, value in model.get_params(deep=True).items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif hasattr(value, "item") and getattr(value, "shape", None) == ():
            out[key] = value.item()
    return out


def log_params_of(run: Any, var: str, model: Any, prefix: bool) -> None:
    """Record a model's params on the run; a name the run already holds with another
    value is recorded as ``var.name`` instead, so nothing is overwritten."""
    params = {}
    for key, value in estimator_params(model).items():
        name = f"{var}.{key}" if prefix else key
        if name in run.params and run.params[name] != value:
            name = f"{var}.{key}"
        if name in run.params:
            continue
        params[name] = value
    run.log_params(params)


def autolog_hook(run: Any, ns: dict[str, Any], names: set[str], options: Any) -> None:
    """The ``%%track`` post-cell hook: log the cell's fitted models and their params."""
    explicit = getattr(options, "model", None)
    source = ((run.store.get_run(run.run_id).get("code") or {}).get("source") or "")
    if explicit:
        if explicit not in ns:
            warnings.warn(f"nbops: --model names {explicit!r}, which is not defined",
                          stacklevel=2)
            return
        if not is_fitted_estimator(ns[explicit]):
            warnings.warn(f"nbops: --model {explicit}: a {type(ns[explicit]).__name__} is not "
                          "a fitted scikit-learn estimator, so it was not logged", stacklevel=2)
            return
        found = [(explicit, ns[explicit])]
    else:
        if "sklearn.base" not in __import__("sys").modules:
            return
        found = find_models(ns, set(names) | fitted_names(source))
    if not found:
        return
    from ..registry import _NAME_RE, log_model

    for var, model in found:
        log_params_of(run, var, model, prefix=len(found) > 1)
        frame = training_frame(model, ns, prefer=names, first=fit_inputs(source))
        signature = infer_signature(model, frame)
        # the training frame also becomes the model's stored drift reference (a sample)
        log_model(model, name=var if _NAME_RE.match(var) else "model", signature=signature,
                  run=run, reference=frame)
