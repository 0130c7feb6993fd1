"""The model file contract: how a fitted model becomes bytes and back, safely.

A model is written with skops (``skops.io``), never pickle, to a file named
``model.skops``. Saving records what a later load must check:

- ``sha256`` of the file (the content address in the store);
- ``trusted_types``: the types skops reports as untrusted in this very file (tree
  models need ``sklearn.tree._tree.Tree``, for instance). They are the user's own
  types at save time, so loading one's own model needs no list from the user, while
  a file that asks for other types than the record is refused;
- ``flavour``, ``library_versions`` and a ``signature`` (input columns and dtypes,
  output task/dtype/classes).

Loading reads the bytes once, checks the sha256 (a mismatch raises
:class:`nbops.ModelIntegrityError` and nothing is loaded), then checks the file's
untrusted types against the record, and only then hands the bytes to skops.

This module knows nothing about the store, so the serving code can rely on it
alone. scikit-learn, skops, numpy and pandas are imported inside functions.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ._errors import ModelIntegrityError, RegistryError
from ._util import to_jsonable
from .serving.runtime.codec import sha256_bytes, skops_trust

MODEL_FILE_NAME = "model.skops"
FLAVOUR = "sklearn"
TASKS = ("classification", "regression", "other")

__all__ = [
    "FLAVOUR",
    "MODEL_FILE_NAME",
    "check_model_bytes",
    "dump_model",
    "infer_signature",
    "is_fitted_estimator",
    "is_sklearn_estimator",
    "library_versions",
    "load_model_file",
    "normalise_signature",
    "sha256_bytes",
]


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a model file depends on (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in (
        ("sklearn", "scikit-learn"),
        ("skops", "skops"),
        ("numpy", "numpy"),
        ("pandas", "pandas"),
    ):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


# -- what counts as a model ----------------------------------------------------------
def is_sklearn_estimator(obj: Any) -> bool:
    """True for instances of scikit-learn's ``BaseEstimator`` (and subclasses from other
    libraries). Never imports scikit-learn: if it is not loaded, nothing is an estimator."""
    if isinstance(obj, type) or "sklearn.base" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def is_fitted_estimator(obj: Any) -> bool:
    """True for a scikit-learn estimator that has been fitted."""
    if not is_sklearn_estimator(obj):
        return False
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError:
        return False
    except (TypeError, AttributeError, ValueError):
        # third-party estimators without the fitted-attribute convention
        return False
    return True


def _class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


# -- signature -----------------------------------------------------------------------
def _dtype_name(dtype: Any) -> str:
    kind = getattr(dtype, "kind", None)
    if kind in ("U", "S", "O", "T"):
        return "str"
    return str(dtype)


def infer_signature(model: Any, X: Any = None) -> dict[str, Any]:
    """The signature of a fitted model: ``{"inputs": [{"name", "dtype"}, ...],
    "outputs": {"task", "dtype", "classes"?}}``.

    Inputs come from ``X`` when given (a DataFrame gives names and dtypes; an array
    gives its dtype), else from the model (``feature_names_in_`` / ``n_features_in_``,
    dtype float64). Raises RegistryError if ``X``'s columns differ from the columns
    the model was fitted on."""
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    n_features = getattr(model, "n_features_in_", None)

    columns = getattr(X, "columns", None)
    if X is not None and columns is not None and hasattr(X, "dtypes"):
        inputs = [{"name": str(c), "dtype": _dtype_name(X[c].dtype)} for c in columns]
        if names is not None and [i["name"] for i in inputs] != names:
            raise RegistryError(
                f"the DataFrame given for the signature has columns {[str(c) for c in columns]}"
                f" but the model was fitted on {names}; pass the training DataFrame (or "
                "X[model.feature_names_in_])"
            )
        source = "dataframe"
    elif X is not None and hasattr(X, "shape") and hasattr(X, "dtype"):
        width = X.shape[1] if len(X.shape) > 1 else 1
        if n_features is not None and width != n_features:
            raise RegistryError(
                f"the array given for the signature has {width} columns but the model was "
                f"fitted on {n_features}; pass the training data"
            )
        cols = names or [f"x{i}" for i in range(width)]
        inputs = [{"name": c, "dtype": _dtype_name(X.dtype)} for c in cols]
        source = "array"
    else:
        if names is not None:
            cols = names
        elif n_features is not None:
            cols = [f"x{i}" for i in range(int(n_features))]
        else:
            cols = []
        inputs = [{"name": c, "dtype": "float64"} for c in cols]
        source = "model"

    outputs: dict[str, Any]
    from sklearn.base import is_classifier, is_regressor

    classes = getattr(model, "classes_", None)
    if is_classifier(model) and classes is not None:
        import numpy as np

        classes = np.asarray(classes)
        outputs = {
            "task": "classification",
            "dtype": _dtype_name(classes.dtype),
            "classes": to_jsonable(classes.tolist()),
        }
    elif is_regressor(model):
        outputs = {"task": "regression", "dtype": "float64"}
    else:
        outputs = {"task": "other", "dtype": None}
    return {"inputs": inputs, "outputs": outputs, "source": source}


def normalise_signature(signature: Any, model: Any) -> dict[str, Any]:
    """A signature from what the user gave: None (infer from the model), a DataFrame or
    array (the training inputs), or a dict with ``inputs`` (and optionally ``outputs``)."""
    if signature is None:
        return infer_signature(model)
    if not isinstance(signature, Mapping):
        return infer_signature(model, signature)
    inputs = signature.get("inputs")
    if not isinstance(inputs, list) or not all(
        isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in inputs
    ):
        raise RegistryError(
            "signature['inputs'] must be a list of {'name': column, 'dtype': 'float64'} "
            "dicts; or pass the training DataFrame as signature=X_train"
        )
    outputs = signature.get("outputs")
    if outputs is None:
        outputs = infer_signature(model)["outputs"]
    elif not isinstance(outputs, Mapping) or outputs.get("task") not in TASKS:
        raise RegistryError(
            f"signature['outputs'] must be a dict with 'task' one of {list(TASKS)}; "
            "leave it out to infer it from the model"
        )
    return {
        "inputs": [{"name": i["name"], "dtype": str(i.get("dtype") or "float64")} for i in inputs],
        "outputs": dict(outputs),
        "source": signature.get("source", "user"),
    }


# -- writing -------------------------------------------------------------------------
def dump_model(model: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Write a fitted scikit-learn model to ``path`` with skops.

    Returns the file's facts for the model record: ``sha256``, ``size``, ``flavour``,
    ``file_name``, ``model_class``, ``trusted_types`` and ``library_versions``.
    Raises RegistryError for something that is not a fitted scikit-learn estimator."""
    if not is_sklearn_estimator(model):
        raise RegistryError(
            f"cannot save a {type(model).__name__} as a model: nbops saves fitted "
            "scikit-learn estimators and pipelines (flavour 'sklearn')"
        )
    if not is_fitted_estimator(model):
        raise RegistryError(
            f"the {type(model).__name__} is not fitted; call .fit(X, y) before logging it"
        )
    import skops.io as sio

    try:
        data = sio.dumps(model)
    except Exception as exc:  # skops raises a variety of types for unsupported objects
        raise RegistryError(
            f"skops cannot save this {type(model).__name__}: {exc}. nbops never falls back "
            "to pickle; use estimators skops supports (scikit-learn and its common types)"
        ) from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return {
        "sha256": sha256_bytes(data),
        "size": len(data),
        "flavour": FLAVOUR,
        "file_name": MODEL_FILE_NAME,
        "model_class": _class_path(model),
        "trusted_types": skops_trust(data, [])[0],
        "library_versions": library_versions(),
    }


# -- reading -------------------------------------------------------------------------
def check_model_bytes(
    data: bytes, sha256: str, trusted_types: Iterable[str], source: str = "the model file"
) -> list[str]:
    """Check model bytes against their record; returns the types to trust when loading.

    Raises ModelIntegrityError if the bytes do not hash to ``sha256`` or if the file
    asks skops to trust a type that is not in ``trusted_types``."""
    _check_sha256(data, sha256, source)
    try:
        needed, unexpected = skops_trust(data, trusted_types)
    except Exception as exc:
        raise ModelIntegrityError(f"{source} is not a readable skops file: {exc}") from exc
    if unexpected:
        raise _types_refused(source, unexpected, sorted(trusted_types))
    return needed


def _check_sha256(data: bytes, sha256: str, source: str) -> None:
    actual = sha256_bytes(data)
    if actual != sha256:
        raise ModelIntegrityError(
            f"{source} hashes to {actual[:12]}, but {sha256[:12]} was recorded when it was "
            "saved: it was changed or replaced afterwards, so nbops will not load it. Restore "
            "the original file or log and register the model again."
        )


def _types_refused(source: str, unexpected: Any, recorded: list[str]) -> ModelIntegrityError:
    return ModelIntegrityError(
        f"{source} asks to trust types {unexpected} that were not recorded when it was "
        f"saved (recorded: {recorded}); nbops refuses to load it"
    )


def load_model_file(path: str | os.PathLike, sha256: str, trusted_types: Iterable[str]) -> Any:
    """Load a model file after checking it against its record (see
    :func:`check_model_bytes`). Raises ModelIntegrityError and loads nothing when a
    check fails, RegistryError when the file is missing."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(
            f"model file {path} is missing; it may have been deleted with its model version"
        ) from None
    trusted = sorted(trusted_types)
    _check_sha256(data, sha256, f"model file {path}")
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    # skops audits the file before constructing anything: it refuses any type beyond
    # the default-safe ones and ``trusted``, which is the recorded-types check itself
    try:
        return sio.loads(data, trusted=trusted)
    except UntrustedTypesFoundException:
        _, unexpected = skops_trust(data, trusted)
        raise _types_refused(f"model file {path}", unexpected, trusted) from None
