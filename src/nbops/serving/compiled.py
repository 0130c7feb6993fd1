"""Models as numpy programs (``model.npz``), written at export, so the service predicts
without importing scikit-learn (see ``runtime/predictors.py`` for the format).

Supported: decision trees, random / extra-trees forests and gradient boosting
regressors; linear models (LinearRegression, Ridge, Lasso, ElasticNet, SGD, Logistic
regression, linear SVMs, ...); and scikit-learn pipelines whose steps are
StandardScaler, SimpleImputer (numbers), OneHotEncoder, OrdinalEncoder or a
ColumnTransformer of those (or of pipelines of those, ``passthrough`` and ``drop``),
followed by a supported model. The export keeps the program only if it gives exactly
the model's predictions on probe rows: for trees every split threshold, the float32
values beside it and random rows; for the rest random rows spread over each column's
training range and every category; and the reference data in both cases. Otherwise
nothing is written and the service loads the model with scikit-learn, as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TREES = {
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
}
BOOSTING = {"sklearn.ensemble._gb.GradientBoostingRegressor"}
LINEAR = {
    f"sklearn.linear_model.{m}"
    for m in (
        "_base.LinearRegression",
        "_ridge.Ridge",
        "_ridge.RidgeCV",
        "_ridge.RidgeClassifier",
        "_ridge.RidgeClassifierCV",
        "_coordinate_descent.Lasso",
        "_coordinate_descent.LassoCV",
        "_coordinate_descent.ElasticNet",
        "_coordinate_descent.ElasticNetCV",
        "_logistic.LogisticRegression",
        "_logistic.LogisticRegressionCV",
        "_stochastic_gradient.SGDClassifier",
        "_stochastic_gradient.SGDRegressor",
        "_perceptron.Perceptron",
        "_passive_aggressive.PassiveAggressiveClassifier",
        "_bayes.BayesianRidge",
        "_huber.HuberRegressor",
    )
} | {"sklearn.svm._classes.LinearSVC", "sklearn.svm._classes.LinearSVR"}
SUPPORTED = TREES | BOOSTING | LINEAR  # final models


class _Unsupported(Exception):
    pass


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


class _Builder:
    """Collects arrays under short names while a spec is built."""

    def __init__(self) -> None:
        self.arrays: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        import numpy as np

        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            if not all(isinstance(v, str) for v in arr.ravel().tolist()):
                raise _Unsupported("mixed object values")
            arr = arr.astype(str)
        if arr.dtype.kind not in "iufbU":
            raise _Unsupported(f"dtype {arr.dtype}")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = arr
        return name


def _categories(b: _Builder, cats: list) -> list[str]:
    import numpy as np

    out = []
    for c in cats:
        values = list(np.asarray(c).tolist())
        if any(v is None or (isinstance(v, float) and v != v) for v in values):
            raise _Unsupported("missing values among the categories")
        out.append(b.add(np.asarray(c)))
    return out


def _transformer(t: Any, b: _Builder, width: int, names: list[str] | None) -> list[dict]:
    import numpy as np

    path = _class_path(t)
    if path == "sklearn.pipeline.Pipeline":
        steps: list[dict] = []
        for _, inner in t.steps:
            if inner in (None, "passthrough"):
                continue
            steps += _transformer(inner, b, width, names)
            width = None  # widths after the first step are checked by the probes
        return steps
    if path == "sklearn.preprocessing._data.StandardScaler":
        return [
            {
                "op": "scale",
                "mean": b.add(t.mean_) if t.with_mean and t.mean_ is not None else None,
                "scale": b.add(t.scale_) if t.with_std and t.scale_ is not None else None,
            }
        ]
    if path == "sklearn.impute._base.SimpleImputer":
        stats = np.asarray(t.statistics_)
        if (
            t.add_indicator
            or stats.dtype.kind not in "iuf"
            or np.isnan(stats).any()
            or not (isinstance(t.missing_values, float) and t.missing_values != t.missing_values)
        ):
            raise _Unsupported("imputer")
        return [{"op": "impute", "fill": b.add(stats.astype(np.float64))}]
    if path == "sklearn.preprocessing._encoders.OneHotEncoder":
        if (
            t.drop_idx_ is not None
            or getattr(t, "_infrequent_enabled", False)
            or t.handle_unknown not in ("error", "ignore")
        ):
            raise _Unsupported("one-hot options")
        return [
            {
                "op": "onehot",
                "categories": _categories(b, t.categories_),
                "unknown": t.handle_unknown,
            }
        ]
    if path == "sklearn.preprocessing._encoders.OrdinalEncoder":
        if getattr(t, "_infrequent_enabled", False) or np.dtype(t.dtype) != np.float64:
            raise _Unsupported("ordinal options")
        unknown = t.unknown_value if t.handle_unknown == "use_encoded_value" else None
        return [
            {
                "op": "ordinal",
                "categories": _categories(b, t.categories_),
                "unknown_value": None if unknown is None else float(unknown),
            }
        ]
    if path == "sklearn.compose._column_transformer.ColumnTransformer":
        return [_column_transformer(t, b, names)]
    raise _Unsupported(path)


def _column_transformer(ct: Any, b: _Builder, names: list[str] | None) -> dict:
    import numpy as np

    n_in = int(ct.n_features_in_)
    parts = []
    for _, trans, cols in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        idx = np.arange(n_in)[cols] if isinstance(cols, slice) else np.asarray(cols)
        if idx.dtype.kind == "b":
            idx = np.nonzero(idx)[0]
        elif idx.dtype.kind in "OU":
            if names is None:
                raise _Unsupported("column names without a signature")
            idx = np.asarray([names.index(str(c)) for c in idx.tolist()])
        idx = [int(i) for i in idx.tolist()]
        if not idx:
            continue
        steps = (
            []
            if isinstance(trans, str) and trans == "passthrough"
            else _transformer(trans, b, len(idx), names)
        )
        parts.append({"cols": idx, "steps": steps})
    return {"op": "columns", "parts": parts, "sparse": bool(getattr(ct, "sparse_output_", False))}


def _final(model: Any, b: _Builder) -> dict:
    import numpy as np

    path = _class_path(model)
    if path in LINEAR:
        coef = np.asarray(model.coef_, dtype=np.float64)
        classifier = hasattr(model, "classes_")
        if not classifier and coef.ndim != 1:
            raise _Unsupported("multi-output regression")
        spec = {
            "op": "linear",
            "coef": b.add(coef),
            "intercept": b.add(np.asarray(model.intercept_, dtype=np.float64)),
            "task": "classification" if classifier else "regression",
        }
        if classifier:
            spec["classes"] = b.add(np.asarray(model.classes_))
        return spec
    arrays = tree_arrays(model)
    if arrays is None:
        raise _Unsupported(path)
    spec = {
        "op": "trees",
        "depth": int(arrays.pop("depth")),
        "task": str(arrays.pop("task")),
        "mode": str(arrays.pop("mode")),
        "init": float(arrays.pop("init")),
    }
    classes = arrays.pop("classes", None)
    if classes is not None:
        spec["classes"] = b.add(classes)
    for k, v in arrays.items():
        b.arrays["t_" + k] = v
    return spec


def tree_arrays(model: Any) -> dict[str, Any] | None:
    """The arrays of a supported single-output tree model, or None."""
    import numpy as np

    path = _class_path(model)
    if path not in TREES | BOOSTING or getattr(model, "n_outputs_", 1) != 1:
        return None
    init = 0.0
    if path in BOOSTING:
        if model.init_ == "zero":
            init = 0.0
        elif _class_path(model.init_) == "sklearn.dummy.DummyRegressor":
            init = float(np.asarray(model.init_.constant_).ravel()[0])
        else:
            return None
        trees = [est for est in model.estimators_[:, 0]]
    else:
        trees = list(model.estimators_) if hasattr(model, "estimators_") else [model]
    forest = path in TREES and hasattr(model, "estimators_")
    classifier = hasattr(model, "classes_")
    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    offset = 0
    for est in trees:
        t = est.tree_
        n = t.node_count
        leaf = t.children_left == -1
        idx = np.arange(n, dtype=np.int64) + offset
        feature.append(np.where(leaf, 0, t.feature).astype(np.int64))
        threshold.append(np.where(leaf, np.inf, t.threshold).astype(np.float64))
        left.append(np.where(leaf, idx, t.children_left + offset).astype(np.int64))
        right.append(np.where(leaf, idx, t.children_right + offset).astype(np.int64))
        if classifier:
            v = np.array(t.value[:, 0, : len(model.classes_)], dtype=np.float64)
            if forest:  # DecisionTreeClassifier.predict_proba's normalisation
                norm = v.sum(axis=1)[:, np.newaxis]
                norm[norm == 0.0] = 1.0
                v = v / norm
        else:
            v = np.array(t.value[:, 0, :1], dtype=np.float64)
            if path in BOOSTING:
                v = model.learning_rate * v  # predict_stages adds scale * value
        value.append(v)
        roots.append(offset)
        offset += n
    arrays = {
        "feature": np.concatenate(feature),
        "threshold": np.concatenate(threshold),
        "left": np.concatenate(left),
        "right": np.concatenate(right),
        "value": np.concatenate(value),
        "roots": np.asarray(roots, dtype=np.int64),
        "depth": max(int(e.tree_.max_depth) for e in trees),
        "task": "classification" if classifier else "regression",
        "mode": "boost" if path in BOOSTING else ("average" if forest else "sum"),
        "init": init,
        "n_features": int(model.n_features_in_),
    }
    if classifier:
        classes = np.asarray(model.classes_)
        if classes.dtype.kind not in "iufbU":
            classes = classes.astype(str)
        arrays["classes"] = classes
    return arrays


def program(model: Any, inputs: list[dict]) -> tuple[dict, dict[str, Any]] | None:
    """(spec, arrays) of the numpy program for ``model`` with signature ``inputs``, or
    None when some part of it is not supported."""
    names = [str(i["name"]) for i in inputs]
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None and [str(n) for n in fitted] != names:
        return None
    b = _Builder()
    steps: list[dict] = []
    final = model
    try:
        if _class_path(model) == "sklearn.pipeline.Pipeline":
            for _, t in model.steps[:-1]:
                if t in (None, "passthrough"):
                    continue
                steps += _transformer(t, b, len(names), names)
            final = model.steps[-1][1]
        spec_model = _final(final, b)
    except (_Unsupported, AttributeError, ValueError):
        return None
    if spec_model["op"] == "trees":
        b.arrays.pop("t_n_features", None)
    spec = {"format": 2, "n_features": len(names), "steps": steps, "model": spec_model}
    return spec, b.arrays


# -- probes ---------------------------------------------------------------------------
def tree_probe_rows(arrays: dict[str, Any], width: int, rng: Any) -> Any:
    """Rows that exercise every split: thresholds, their float32 neighbours, random rows."""
    import numpy as np

    split = np.isfinite(arrays["t_threshold"])
    feats, thr = arrays["t_feature"][split], arrays["t_threshold"][split]
    lo, hi = np.full(width, -1.0), np.full(width, 1.0)
    for f in range(width):
        t = thr[feats == f]
        if t.size:
            lo[f], hi[f] = t.min() - 1.0, t.max() + 1.0
    rows = [rng.uniform(lo, hi, size=(2000, width))]
    if thr.size:
        picks = rng.integers(0, thr.size, size=min(thr.size, 4000))
        base = rng.uniform(lo, hi, size=(picks.size, width))
        t32 = thr[picks].astype(np.float32)
        for shift in (
            t32,
            np.nextafter(t32, np.float32(np.inf)),
            np.nextafter(t32, np.float32(-np.inf)),
            thr[picks],
        ):
            rows_b = base.copy()
            rows_b[np.arange(picks.size), feats[picks]] = shift
            rows.append(rows_b)
    return np.concatenate(rows)


def probe_columns(
    inputs: list[dict], reference: Any, spec: dict, arrays: dict, n: int = 3000, seed: int = 0
) -> dict[str, list]:
    """Probe values per column: random numbers over the reference's range (or a wide
    default) and every category the encoders know, then the reference rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    width = len(inputs)
    cats: dict[int, list] = {}
    for step in _all_steps(spec["steps"]):
        if step["op"] in ("onehot", "ordinal"):
            for j, name in zip(step["_cols"], step["categories"], strict=False):
                cats[j] = arrays[name].tolist()
    cols: dict[str, list] = {}
    if spec["model"]["op"] == "trees" and not spec["steps"]:
        block = tree_probe_rows(arrays, width, rng)
        for j, i in enumerate(inputs):
            cols[i["name"]] = block[:, j].tolist()
    else:
        for j, i in enumerate(inputs):
            if j in cats:
                cols[i["name"]] = [cats[j][k] for k in rng.integers(0, len(cats[j]), n)]
                continue
            lo, hi = -3.0, 3.0
            if reference is not None and i["name"] in getattr(reference, "columns", []):
                try:
                    v = np.asarray(reference[i["name"]], dtype=np.float64)
                    v = v[np.isfinite(v)]
                    if v.size:
                        span = max(float(v.max() - v.min()), 1.0)
                        lo, hi = float(v.min()) - 0.1 * span, float(v.max()) + 0.1 * span
                except (TypeError, ValueError):
                    pass
            values = rng.uniform(lo, hi, n)
            kind = str(i.get("dtype") or "float64")
            cols[i["name"]] = (
                np.round(values).astype(np.int64).tolist()
                if kind.startswith(("int", "uint"))
                else values.tolist()
            )
    if reference is not None:
        try:
            ref = reference[[i["name"] for i in inputs]].dropna()
            for i in inputs:
                cols[i["name"]] += ref[i["name"]].tolist()
        except (KeyError, TypeError, AttributeError):
            pass
    return cols


def _all_steps(steps: list[dict], cols: list[int] | None = None) -> list[dict]:
    out = []
    for step in steps:
        if step["op"] == "columns":
            for part in step["parts"]:
                out += _all_steps(part["steps"], part["cols"])
        else:
            if step["op"] in ("onehot", "ordinal"):
                step["_cols"] = cols if cols is not None else list(range(len(step["categories"])))
            out.append(step)
            cols = None  # later steps of a part see encoded columns
    return out


def compile_model(
    model: Any, dest: Path, reference: Any = None, inputs: list[dict] | None = None
) -> bool:
    """Write ``dest`` (npz) for a supported model whose numpy program reproduces its
    predictions exactly on probe rows; returns False (and writes nothing) otherwise.
    ``inputs`` is the signature's input list (default: the model's feature count,
    float64); ``reference`` a DataFrame of training rows used as extra probes."""
    import warnings

    import numpy as np

    from .runtime.predictors import NumpyPredictor

    if inputs is None:
        width = getattr(model, "n_features_in_", None)
        if width is None:
            return False
        inputs = [{"name": f"x{i}", "dtype": "float64"} for i in range(int(width))]
    built = program(model, inputs)
    if built is None:
        return False
    spec, arrays = built
    cols = probe_columns(inputs, reference, spec, arrays)
    for step in _all_steps(spec["steps"]):
        step.pop("_cols", None)
    import pandas as pd

    frame = pd.DataFrame(cols)
    for i in inputs:
        if str(i.get("dtype") or "float64").startswith("float"):
            frame[i["name"]] = frame[i["name"]].astype("float64")
    names = getattr(model, "feature_names_in_", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = np.asarray(
                model.predict(frame if names is not None else frame.to_numpy(dtype=np.float64))
            )
        except (ValueError, TypeError):
            return False
    rows = frame.astype(object).values.tolist()
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp.npz")
    linear = spec["model"]["op"] == "linear"
    fortran_first = names is not None  # a DataFrame reaches the model column-major
    layouts = (
        [(seq, fortran) for seq in (False, True) for fortran in (fortran_first, not fortran_first)]
        if linear
        else [(False, False)]
    )
    for sequential, fortran in layouts:
        spec["model"]["sequential"] = sequential
        spec["model"]["fortran"] = fortran
        np.savez(tmp, spec=np.asarray(json.dumps(spec)), **arrays)
        try:
            got = NumpyPredictor(tmp).predict_rows(rows)
        except Exception:
            tmp.unlink(missing_ok=True)
            raise
        if (
            got is not None
            and np.asarray(got).shape == expected.shape
            and np.array_equal(np.asarray(got), expected)
        ):
            tmp.replace(dest)
            return True
    tmp.unlink(missing_ok=True)
    return False
