"""Models as numpy programs (``model.npz``), so the service predicts without scikit-learn.

Importing scikit-learn costs a second or more at start-up, and its per-call input
validation dominates a one-row prediction. For the models it can express, the export
writes ``model.npz`` (no pickle: ``allow_pickle=False``) holding a JSON ``spec`` and
the arrays it names, and keeps the file only when this module reproduces the model's
predictions exactly on probe rows. The spec is a list of preprocessing ``steps``
followed by a ``model``:

- ``scale`` (StandardScaler: ``(X - mean) / scale``), ``impute`` (SimpleImputer on
  numbers: NaN -> the fitted statistic), ``onehot`` and ``ordinal`` (encoders; a
  category never seen in training gives zeros, the encoded unknown value, or falls
  back to the model when the encoder would raise), ``columns`` (ColumnTransformer:
  parts on column subsets, stacked in order, plus a passthrough remainder);
- ``linear`` (``X @ coef.T + intercept``, then ``> 0`` / argmax over ``classes``
  for classifiers; ``sequential`` sums column by column, as scipy does for sparse
  input; ``fortran`` multiplies a column-major copy, as scikit-learn does with a
  DataFrame, because BLAS may round differently by layout) or ``trees`` (decision trees, random / extra-trees forests, gradient
  boosting regressors: inputs rounded to float32 as scikit-learn does, every tree
  walked at once, leaf values summed in the model's order).

``predict_rows`` returns None for rows the program cannot score exactly (missing
values reaching a model, strings where numbers go, an unknown category an encoder
would refuse); the service then asks the real model, which gives the same answer or
scikit-learn's own error.
"""

import json
from pathlib import Path
from typing import Any


class _Unscoreable(Exception):
    """These rows need the real model."""


class NumpyPredictor:
    """The numpy program of ``model.npz``; ``predict_rows(rows)`` -> list or None."""

    def __init__(self, path: Path) -> None:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            self.arrays = {k: z[k] for k in z.files}
        self.np = np
        self.spec = json.loads(str(self.arrays.pop("spec")))
        self.n_features = int(self.spec["n_features"])
        self.model = self.spec["model"]
        if self.model["op"] == "trees":
            self.trees = TreeArrays(self.arrays, self.model)

    def predict_rows(self, rows: list[list[Any]]) -> list[Any] | None:
        """Predictions for rows in signature order (plain values), or None when the
        program cannot score them exactly."""
        np = self.np
        try:
            X = np.array(rows, dtype=np.float64)
        except (ValueError, TypeError):
            X = np.array(rows, dtype=object)
        try:
            return self.predict(X).tolist()
        except _Unscoreable:
            return None

    def predict(self, X: Any) -> Any:
        """Predictions for a 2-D array (float64, or object when it holds strings)."""
        np = self.np
        if X.shape[0] == 0:
            return np.empty(0)
        for step in self.spec["steps"]:
            X = self._step(step, X)
        X = _floats(np, X)
        if np.isnan(X).any():
            raise _Unscoreable
        if self.model["op"] == "trees":
            return self.trees.predict(X)
        return self._linear(self.model, X)

    # -- steps ------------------------------------------------------------------------
    def _step(self, step: dict, X: Any) -> Any:
        np, a = self.np, self.arrays
        op = step["op"]
        if op == "scale":
            X = _floats(np, X)
            if step.get("mean"):
                X = X - a[step["mean"]]
            if step.get("scale"):
                X = X / a[step["scale"]]
            return X
        if op == "impute":
            X = _floats(np, X).copy()
            fill = a[step["fill"]]
            missing = np.isnan(X)
            if missing.any():
                X[missing] = np.broadcast_to(fill, X.shape)[missing]
            return X
        if op in ("onehot", "ordinal"):
            return self._encode(step, X)
        if op == "columns":
            parts = []
            for part in step["parts"]:
                sub = X[:, part["cols"]]
                for inner in part["steps"]:
                    sub = self._step(inner, sub)
                parts.append(_floats(np, sub))
            return np.hstack(parts) if parts else np.empty((X.shape[0], 0))
        raise ValueError(f"model.npz has an unknown step {op!r}; export the model again")

    def _encode(self, step: dict, X: Any) -> Any:
        np, a = self.np, self.arrays
        onehot = step["op"] == "onehot"
        blocks = []
        for j, name in enumerate(step["categories"]):
            cats = a[name].tolist()
            lookup = {c: k for k, c in enumerate(cats)}
            codes = []
            for v in X[:, j].tolist():
                k = lookup.get(v)
                if k is None:
                    if v is None or (isinstance(v, float) and v != v):
                        raise _Unscoreable
                    if step.get("unknown") == "ignore":
                        k = -1
                    elif step.get("unknown_value") is not None:
                        k = -2
                    else:
                        raise _Unscoreable
                codes.append(k)
            codes = np.asarray(codes, dtype=np.int64)
            if onehot:
                block = np.zeros((X.shape[0], len(cats)))
                hit = codes >= 0
                block[np.nonzero(hit)[0], codes[hit]] = 1.0
            else:
                block = codes.astype(np.float64)[:, None]
                block[codes == -2, 0] = float(step["unknown_value"])
            blocks.append(block)
        return np.hstack(blocks)

    # -- models -----------------------------------------------------------------------
    def _linear(self, m: dict, X: Any) -> Any:
        np, a = self.np, self.arrays
        coef, intercept = a[m["coef"]], a[m["intercept"]]
        coef_t = coef.T if coef.ndim == 2 else coef
        if m.get("fortran"):  # the memory layout scikit-learn saw (BLAS sums by layout)
            X = np.asfortranarray(X)
        if m.get("sequential"):  # scipy's sparse product: row by row, column by column
            scores = np.zeros((X.shape[0],) + coef_t.shape[1:])
            for j in range(X.shape[1]):
                scores = scores + (X[:, j : j + 1] if coef_t.ndim == 2 else X[:, j]) * coef_t[j]
        else:
            scores = X @ coef_t
        scores = scores + intercept
        if m["task"] != "classification":
            return scores
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        idx = (scores > 0).astype(np.int64) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return a[m["classes"]].take(idx)


def _floats(np: Any, X: Any) -> Any:
    if X.dtype == np.float64:
        return X
    try:
        return X.astype(np.float64)
    except (ValueError, TypeError):
        raise _Unscoreable from None


class TreeArrays:
    """Tree models as flat arrays: every tree walked at once for a batch of rows.

    ``mode`` is ``average`` (forests: class fractions or values averaged over trees),
    ``sum`` (one tree) or ``boost`` (gradient boosting: ``init`` plus the scaled leaf
    values, added tree by tree in order, exactly as scikit-learn adds them)."""

    def __init__(self, arrays: dict[str, Any], spec: dict) -> None:
        import numpy as np

        self.np = np
        a = {k[2:]: v for k, v in arrays.items() if k.startswith("t_")}
        self.feature, self.threshold = a["feature"], a["threshold"]
        self.left, self.right = a["left"], a["right"]
        self.value, self.roots = a["value"], a["roots"]
        self.depth = int(spec["depth"])
        self.task = spec["task"]
        self.mode = spec["mode"]
        self.init = float(spec.get("init", 0.0))
        self.classes = arrays.get(spec.get("classes") or "", None)

    def predict(self, X: Any) -> Any:
        """Predictions for a float64 array without NaN."""
        np = self.np
        out = [self._predict(X[start : start + 4096]) for start in range(0, X.shape[0], 4096)]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _predict(self, X: Any) -> Any:
        np = self.np
        x = X.astype(np.float32).astype(np.float64)
        n = x.shape[0]
        nodes = np.broadcast_to(self.roots, (n, self.roots.shape[0])).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            go_left = x[rows, self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(go_left, self.left[nodes], self.right[nodes])
        leaf = self.value[nodes]  # (rows, trees, outputs)
        if self.mode == "boost":
            start = np.full((n, 1, leaf.shape[2]), self.init)
            total = np.cumsum(np.concatenate([start, leaf], axis=1), axis=1)[:, -1, :]
        elif leaf.shape[1] > 1:
            total = np.cumsum(leaf, axis=1)[:, -1, :]
        else:
            total = leaf[:, 0, :]
        if self.mode == "average":
            total = total / self.roots.shape[0]
        if self.task == "classification":
            return self.classes.take(np.argmax(total, axis=1))
        return total[:, 0]
