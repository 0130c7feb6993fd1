"""Which numbers of a tracked cell are results (metrics) and which are other values.

The rule (docs/tracking.md says the same):

1. A value a scoring function returned during the cell is a metric (see
   :mod:`nbops.tracking.provenance`), named after the function and the data it was
   given: ``accuracy_score(y_test, pred)`` -> ``accuracy_score.y_test``.
2. A numeric scalar the cell binds is a metric when its name says it is a result
   (:func:`is_result_name`: accuracy, loss, score, error, r2, auc, f1, ...), or when
   ``--metrics`` names it.
3. Every other numeric scalar the cell binds (plot bounds, counts, rebound literals)
   is an *other value*: kept on the run under ``values``, never under ``metrics``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .._util import plain_scalar

#: words that make a name a result, matched against the name's parts
RESULT_WORDS = {
    "acc",
    "accuracy",
    "auc",
    "f1",
    "f2",
    "fbeta",
    "precision",
    "recall",
    "prec",
    "score",
    "scores",
    "loss",
    "error",
    "err",
    "mse",
    "rmse",
    "mae",
    "mape",
    "smape",
    "msle",
    "rmsle",
    "medae",
    "r2",
    "rsquared",
    "logloss",
    "nll",
    "deviance",
    "kappa",
    "mcc",
    "brier",
    "jaccard",
    "iou",
    "dice",
    "bleu",
    "rouge",
    "perplexity",
    "likelihood",
    "loglik",
    "silhouette",
    "ari",
    "nmi",
    "ami",
    "metric",
    "explained",
    "sensitivity",
    "specificity",
    "tpr",
    "fpr",
    "gini",
}
_WORDS = re.compile(r"[a-z]+\d*|\d+")
_PREFIXES = ("accurac", "precision", "recall", "loss", "error")


def is_result_name(name: str) -> bool:
    """True when a variable name reads as a result: one of its parts (split at ``_``,
    case changes and dots) is a result word such as accuracy, loss, score, error, r2,
    auc or f1, or it starts with one (``accuracies``, ``losses``)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    parts = [p for chunk in re.split(r"[_.\s-]+", spaced) for p in _WORDS.findall(chunk)]
    return any(p in RESULT_WORDS or p.startswith(_PREFIXES) for p in parts)


def is_numeric_scalar(value: Any) -> bool:
    """An int or float (numpy scalars included), not a bool or complex."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if type(value).__module__ == "numpy":
        import numpy as np

        return isinstance(value, np.number) and not isinstance(value, np.complexfloating)
    return False


def _key(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


def _folds(values: Any) -> list[float] | None:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return out or None


def _mean_std(folds: list[float]) -> tuple[float, float]:
    mean = sum(folds) / len(folds)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in folds) / len(folds))


_REPORT_AVERAGES = ("macro avg", "weighted avg", "micro avg", "samples avg")


def from_records(records: list[Any]) -> tuple[list[tuple[str, float]], dict[str, Any]]:
    """The (key, value) metrics and the other values that recorded calls produced, in
    call order. A key may repeat; :func:`unique_keys` names the repeats."""
    metrics: list[tuple[str, float]] = []
    values: dict[str, Any] = {}
    for rec in records:
        value = rec.value
        if rec.kind == "metric" or rec.kind == "score":
            base = _key(rec.owner, rec.func) if rec.kind == "score" else rec.func
            key = _key(base, rec.data)
            if is_numeric_scalar(value):
                metrics.append((key, float(plain_scalar(value))))
            else:  # per-class arrays (average=None): kept, not a metric
                folds = _folds(value) if hasattr(value, "__len__") else None
                if folds:
                    values[key] = folds
        elif rec.kind == "cv" and rec.func == "cross_val_score":
            folds = _folds(value)
            if folds:
                key = _key(rec.func, rec.scoring, rec.data)
                mean, std = _mean_std(folds)
                metrics += [(f"{key}.mean", mean), (f"{key}.std", std)]
                values[f"{key}.folds"] = folds
        elif rec.kind == "cv" and isinstance(value, dict):
            for name, arr in value.items():
                folds = _folds(arr) if not isinstance(arr, list) or arr else None
                if not folds:
                    continue
                key = _key(rec.func, str(name), rec.data)
                mean, std = _mean_std(folds)
                if str(name).startswith(("test_", "train_")):
                    metrics += [(f"{key}.mean", mean), (f"{key}.std", std)]
                else:  # fit_time, score_time
                    values[f"{key}.mean"] = mean
                values[f"{key}.folds"] = folds
        elif rec.kind == "report" and isinstance(value, dict):
            base = _key(rec.func, rec.data)
            for label, row in value.items():
                if isinstance(row, dict):
                    for stat, number in row.items():
                        if not is_numeric_scalar(number):
                            continue
                        key = f"{base}.{label.replace(' ', '_')}.{stat}"
                        if label in _REPORT_AVERAGES and stat != "support":
                            metrics.append((key, float(number)))
                        else:
                            values[key] = plain_scalar(number)
                elif is_numeric_scalar(row):
                    metrics.append((f"{base}.{label}", float(row)))
    return metrics, values


def unique_keys(
    pairs: list[tuple[str, float]], limit: int = 20
) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics from (key, value) pairs: a key called again with the same value is kept
    once, with another value it becomes ``key-2``, ``key-3`` ... up to ``limit``; the
    values past the limit are returned as other values (``key.more``)."""
    metrics: dict[str, float] = {}
    seen: dict[str, list[float]] = {}
    more: dict[str, Any] = {}
    for key, value in pairs:
        got = seen.setdefault(key, [])
        if any(v == value or (math.isnan(v) and math.isnan(value)) for v in got):
            continue
        got.append(value)
        if len(got) > limit:
            more.setdefault(f"{key}.more", []).append(value)
            continue
        metrics[key if len(got) == 1 else f"{key}-{len(got)}"] = value
    return metrics, more


def split_bound(
    names: list[str], ns: dict[str, Any], asked: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, other values) of the numeric scalars bound to ``names``: a metric when
    the name reads as a result or was asked for with ``--metrics``."""
    metrics, values = {}, {}
    for name in names:
        value = ns.get(name)
        if not is_numeric_scalar(value):
            continue
        if name in asked or is_result_name(name):
            metrics[name] = plain_scalar(value)
        else:
            values[name] = plain_scalar(value)
    return metrics, values
