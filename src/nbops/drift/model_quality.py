"""Model quality on both sides (accuracy, F1, ROC AUC; RMSE, MAE) and whether it
dropped: the model-drift part of a drift report, shared by both engines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import stats

if TYPE_CHECKING:
    import pandas as pd

# -- model quality -----------------------------------------------------------------

HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "roc_auc": True, "rmse": False, "mae": False}


def model_quality(
    ref: pd.DataFrame, cur: pd.DataFrame, target: str, prediction: str, quality_drop: float
) -> dict[str, Any]:
    """Quality on both sides and which metrics dropped by more than ``quality_drop``
    (relative to the reference value)."""
    task = _task(ref[target], ref[prediction])
    out: dict[str, Any] = {"task": task, "quality_drop": quality_drop, "metrics": {}}
    ref_m = _quality(ref[target], ref[prediction], task)
    cur_m = _quality(cur[target], cur[prediction], task)
    for key in ref_m:
        a, b = ref_m[key], cur_m.get(key)
        if a is None or b is None:
            continue
        change = b - a
        worse = -change if HIGHER_IS_BETTER[key] else change
        rel = worse / abs(a) if a else (0.0 if worse <= 0 else float("inf"))
        out["metrics"][key] = {
            "reference": a,
            "current": b,
            "change": change,
            "relative_drop": rel,
            "flagged": bool(rel > quality_drop),
        }
    out["drifted"] = any(v["flagged"] for v in out["metrics"].values())
    return out


def _task(y: pd.Series, p: pd.Series) -> str:
    from pandas.api import types as pt

    if pt.is_float_dtype(y.dtype) and y.nunique() > 20:
        return "regression"
    return "classification"


def _quality(y: pd.Series, p: pd.Series, task: str) -> dict[str, float | None]:
    import numpy as np
    from pandas.api import types as pt
    from sklearn import metrics

    ok = y.notna() & p.notna()
    y, p = y[ok], p[ok]
    if len(y) == 0:
        return {}
    if task == "regression":
        err = p.to_numpy(dtype=float) - y.to_numpy(dtype=float)
        return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
    classes = sorted(y.unique().tolist(), key=stats._sort_key)
    out: dict[str, float | None] = {}
    scores = (
        pt.is_float_dtype(p.dtype)
        and len(classes) == 2
        and p.between(0, 1).all()
        and not set(p.unique()) <= set(classes)
    )
    if scores:
        positive = classes[-1]
        out["roc_auc"] = (
            float(metrics.roc_auc_score(y == positive, p)) if y.nunique() == 2 else None
        )
        labels = np.where(p.to_numpy() >= 0.5, positive, classes[0])
    else:
        labels = p.to_numpy()
    y_arr = y.to_numpy()
    out["accuracy"] = float(metrics.accuracy_score(y_arr, labels))
    if len(classes) == 2:
        out["f1"] = float(metrics.f1_score(y_arr, labels, pos_label=classes[-1]))
    else:
        out["f1"] = float(metrics.f1_score(y_arr, labels, average="macro"))
    return out
