"""Tree models as flat arrays, so the service scores them with numpy alone.

A scikit-learn forest predicts one row in a few milliseconds, most of it spent in
input validation and a joblib loop over the trees; importing scikit-learn costs a
second at start-up. For decision trees and random / extra-trees forests the export
writes the trees' nodes as arrays (``model.npz``, no pickle), and ``serve.py``
walks all trees at once. The arrays reproduce scikit-learn's arithmetic (inputs
rounded to float32, per-tree class fractions, trees summed in order), and the export
keeps them only if they give exactly the model's predictions on probe rows: every
split threshold, the values just beside it, random rows and the reference data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUPPORTED = {
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
}


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def tree_arrays(model: Any) -> dict[str, Any] | None:
    """The arrays of a supported single-output tree model, or None."""
    import numpy as np

    if _class_path(model) not in SUPPORTED or getattr(model, "n_outputs_", 1) != 1:
        return None
    forest = hasattr(model, "estimators_")
    trees = list(model.estimators_) if forest else [model]
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
        value.append(v)
        roots.append(offset)
        offset += n
    arrays = {
        "feature": np.concatenate(feature), "threshold": np.concatenate(threshold),
        "left": np.concatenate(left), "right": np.concatenate(right),
        "value": np.concatenate(value), "roots": np.asarray(roots, dtype=np.int64),
        "depth": np.asarray(max(int(e.tree_.max_depth) for e in trees)),
        "task": np.asarray("classification" if classifier else "regression"),
        "n_features": np.asarray(int(model.n_features_in_)),
        "average": np.asarray(forest),
    }
    if classifier:
        classes = np.asarray(model.classes_)
        if classes.dtype.kind not in "iufbU":
            classes = classes.astype(str)
        arrays["classes"] = classes
    return arrays


def probe_rows(arrays: dict[str, Any], reference: Any = None, n_random: int = 2000,
               seed: int = 0) -> Any:
    """Rows that exercise every split: thresholds, their float32 neighbours, random rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    width = int(arrays["n_features"])
    split = np.isfinite(arrays["threshold"])
    feats, thr = arrays["feature"][split], arrays["threshold"][split]
    lo = np.full(width, -1.0)
    hi = np.full(width, 1.0)
    for f in range(width):
        t = thr[feats == f]
        if t.size:
            lo[f], hi[f] = t.min() - 1.0, t.max() + 1.0
    rows = [rng.uniform(lo, hi, size=(n_random, width))]
    if thr.size:
        picks = rng.integers(0, thr.size, size=min(thr.size, 4000))
        base = rng.uniform(lo, hi, size=(picks.size, width))
        t32 = thr[picks].astype(np.float32)
        for shift in (t32, np.nextafter(t32, np.float32(np.inf)),
                      np.nextafter(t32, np.float32(-np.inf)), thr[picks]):
            b = base.copy()
            b[np.arange(picks.size), feats[picks]] = shift
            rows.append(b)
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim == 2 and ref.shape[1] == width:
            rows.append(ref[~np.isnan(ref).any(axis=1)])
    return np.concatenate(rows)


def compile_model(model: Any, dest: Path, reference: Any = None) -> bool:
    """Write ``dest`` (npz) for a supported tree model whose arrays reproduce its
    predictions exactly; returns False (and writes nothing) otherwise."""
    import warnings

    import numpy as np

    from .app import TreeArrays

    arrays = tree_arrays(model)
    if arrays is None:
        return False
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    try:
        probes = probe_rows(arrays, reference)
        compiled = TreeArrays(tmp)
        names = getattr(model, "feature_names_in_", None)
        X = probes
        if names is not None:
            import pandas as pd

            X = pd.DataFrame(probes, columns=list(names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = np.asarray(model.predict(X))
        got = compiled.predict(probes)
        if expected.shape != got.shape or not np.array_equal(expected, got):
            tmp.unlink()
            return False
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return True
