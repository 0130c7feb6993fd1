"""scikit-learn autolog for ``%%track``: find the fitted models a cell produced, record
their params (``get_params``) and log them with a signature from the training DataFrame
and a bounded sample of it as the model's drift reference.

It runs after a tracked cell that finished (a failed cell logs no model). A model is a
fitted scikit-learn estimator with ``predict`` that the cell bound, rebound, keeps in a
dict or list it bound, or called ``fit`` on (also in a loop, bound to no name: see
:mod:`.provenance`); ``%%track --model VAR`` names one explicitly. Estimators that are
parts of another found model (the steps of a pipeline) are not logged twice.
Nothing here imports scikit-learn unless the user's code already did.
"""

from __future__ import annotations

import ast
import pickle
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..modelfile import infer_signature, is_fitted_estimator
from .log_model import NAME_RE, log_model
from .run import user_stacklevel
from .searches import is_search, log_search

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
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FIT_METHODS
        and isinstance(node.func.value, ast.Name)
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
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FIT_METHODS
        ):
            continue
        data = (
            node.args[0]
            if node.args
            else next((kw.value for kw in node.keywords if kw.arg == "X"), None)
        )
        if isinstance(data, ast.Name) and data.id not in out:
            out.append(data.id)
    return out


def _parts(model: Any) -> list[int]:
    """ids of the estimators nested inside ``model`` (pipeline steps, wrapped estimators)."""
    try:
        params = model.get_params(deep=True)
    except Exception:  # noqa: BLE001 - a broken get_params only loses the dedup
        return []
    ids = (
        [id(model.best_estimator_)]
        if is_search(model) and hasattr(model, "best_estimator_")
        else []
    )
    for value in params.values():
        if hasattr(value, "get_params"):
            ids.append(id(value))
    return ids


MAX_MODELS = 10


def _containers(ns: Mapping[str, Any], names: Iterable[str]) -> list[tuple[str, Any]]:
    """(name, value) of estimators held one level down in dicts, lists and tuples bound
    to ``names`` (``models = {"lr": ..., "rf": ...}`` -> ``models.lr``)."""
    out = []
    for name in sorted(set(names)):
        value = ns.get(name)
        if isinstance(value, dict):
            items = [(f"{name}.{k}", v) for k, v in list(value.items())[:100]]
        elif isinstance(value, (list, tuple)):
            items = [(f"{name}.{i}", v) for i, v in enumerate(value[:100])]
        else:
            continue
        for key, item in items:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                key, item = f"{name}.{item[0]}", item[1]  # [("lr", LogisticRegression())]
            out.append((key, item))
    return out


def _is_model(value: Any) -> bool:
    return is_search(value) or (is_fitted_estimator(value) and hasattr(value, "predict"))


def find_models(
    ns: Mapping[str, Any],
    names: Iterable[str],
    fitted: Iterable[Any] = (),
    loop_vars: Iterable[str] = (),
) -> list[tuple[str, Any]]:
    """(name, model) of the fitted predictors the cell produced, without nested parts
    (pipeline steps, a search's best estimator): those bound to ``names``, held in
    containers bound to them, and ``fitted`` (estimators the cell called ``fit`` on,
    in call order). An estimator bound to no name is named after its class; one held
    by a container and a loop variable is named after the container."""
    names, loop_vars = set(names), set(loop_vars)
    by_id: dict[int, str] = {}
    found: list[tuple[str, Any]] = []
    named = [(n, ns[n]) for n in sorted(names - loop_vars) if n in ns]
    looped = [(n, ns[n]) for n in sorted(names & loop_vars) if n in ns]
    for name, value in [*named, *_containers(ns, names), *looped]:
        if id(value) not in by_id and _is_model(value):
            by_id[id(value)] = name
            found.append((name, value))
    bound = {id(v): k for k, v in list(ns.items()) if not k.startswith("_")}
    taken = {n for n, _ in found}
    for value in fitted:
        if id(value) in by_id or not _is_model(value):
            continue
        name = bound.get(id(value)) or type(value).__name__.lower()
        base, k = name, 2
        while name in taken:
            name, k = f"{base}-{k}", k + 1
        taken.add(name)
        by_id[id(value)] = name
        found.append((name, value))
    nested = {i for _, model in found for i in _parts(model)}
    return [(n, m) for n, m in found if id(m) not in nested]


def training_frame(
    model: Any, ns: Mapping[str, Any], prefer: Iterable[str], first: Iterable[str] = ()
) -> Any:
    """A DataFrame in ``ns`` whose columns are exactly the model's ``feature_names_in_``
    (names in ``first`` -- the frames the cell passed to ``fit`` --, then in ``prefer``,
    then the largest such frame), or None."""
    wanted = getattr(model, "feature_names_in_", None)
    if wanted is None:
        return None
    wanted = [str(c) for c in wanted]

    def matches(value: Any) -> bool:
        """A DataFrame whose columns are exactly the model's features."""
        columns = getattr(value, "columns", None)
        return (
            type(value).__name__ == "DataFrame"
            and columns is not None
            and len(columns) == len(wanted)
            and [str(c) for c in columns] == wanted
        )

    passed = [ns[n] for n in first if n in ns and matches(ns[n])]
    preferred = [ns[n] for n in sorted(set(prefer)) if n in ns and matches(ns[n])]
    pool = (
        passed
        or preferred
        or [v for k, v in list(ns.items()) if not k.startswith("_") and matches(v)]
    )
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


@dataclass
class ModelJob:
    """A model to write: a snapshot of it (pickled on the cell's thread, so the next
    cell may change the model while the file is written), its signature and frame."""

    name: str
    snapshot: Any
    signature: dict[str, Any]
    frame: Any = None

    def model(self) -> Any:
        """The model as it was when the cell ended."""
        return pickle.loads(self.snapshot) if isinstance(self.snapshot, bytes) else self.snapshot


def _snapshot(model: Any) -> Any:
    try:
        return pickle.dumps(model, protocol=5)
    except Exception:  # noqa: BLE001 - an unpicklable model is written as it is
        return model


def plan_cell_models(
    run: Any,
    ns: dict[str, Any],
    names: set[str],
    options: Any,
    source: str,
    fitted: Iterable[Any] = (),
) -> list[ModelJob]:
    """Record the params of the models a finished cell produced and return the model
    files to write: ``--model VAR`` only that one, else every fitted predictor
    (:func:`find_models`, at most :data:`MAX_MODELS`). A search records its best
    params, score, candidates and table (:mod:`.searches`) and its best estimator is
    the model written. :func:`write_models` writes the files."""
    explicit = getattr(options, "model", None)
    if explicit:
        if explicit not in ns:
            warnings.warn(
                f"nbops: --model names {explicit!r}, which is not defined",
                stacklevel=user_stacklevel(),
            )
            return []
        if not _is_model(ns[explicit]):
            warnings.warn(
                f"nbops: --model {explicit}: a {type(ns[explicit]).__name__} is not "
                "a fitted scikit-learn estimator, so it was not logged",
                stacklevel=user_stacklevel(),
            )
            return []
        found = [(explicit, ns[explicit])]
    else:
        if "sklearn.base" not in sys.modules:
            return []
        from .capture import analyse_cell

        found = find_models(
            ns, set(names) | fitted_names(source), fitted, loop_vars=analyse_cell(source).loop_vars
        )
    if len(found) > MAX_MODELS:
        warnings.warn(
            f"nbops: the cell fitted {len(found)} models; the first {MAX_MODELS} "
            f"are logged ({', '.join(n for n, _ in found[MAX_MODELS:])} are not)",
            stacklevel=user_stacklevel(),
        )
        found = found[:MAX_MODELS]
    inputs = fit_inputs(source)
    jobs = []
    plain = [m for _, m in found if not is_search(m)]
    for var, model in found:
        if is_search(model):
            log_search(run, var, model)
            model = getattr(model, "best_estimator_", None)
            if model is None:  # refit=False: no model to write
                continue
        else:
            log_params_of(run, var, model, prefix=len(plain) > 1)
        frame = training_frame(model, ns, prefer=names, first=inputs)
        if frame is not None:
            frame = frame.copy(deep=False)  # columns the next cell adds do not show up
        jobs.append(
            ModelJob(
                var if NAME_RE.match(var) else "model",
                _snapshot(model),
                infer_signature(model, frame),
                frame,
            )
        )
    return jobs


def write_models(run: Any, jobs: list[ModelJob]) -> dict[str, str]:
    """Write the model files of ``jobs`` to ``run`` (``log_model``; the training frame
    becomes each model's stored drift reference). One model that cannot be written
    does not stop the others. Returns {name: why} of the models not written."""
    failed = {}
    for job in jobs:
        try:
            log_model(
                job.model(), name=job.name, signature=job.signature, run=run, reference=job.frame
            )
        except Exception as exc:  # noqa: BLE001 - named on the run, the others still written
            failed[job.name] = f"{type(exc).__name__}: {exc}"[:500]
    return failed
