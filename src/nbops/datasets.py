"""Dataset fingerprints: a content digest, shape and schema of a DataFrame or array.

The digest hashes the values with pandas' vectorised row hashing (plus column
names and dtypes), so two frames with the same content share a digest wherever
they came from, and any changed cell gives a new one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ._errors import NbopsError


def fingerprint(obj: Any) -> dict[str, Any]:
    """``{digest, kind, shape, schema}`` of a pandas DataFrame / Series or a numpy array.

    Raises NbopsError for anything else."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256()
    if isinstance(obj, pd.Series):
        obj = obj.to_frame(name=obj.name if obj.name is not None else 0)
        kind = "series"
    elif isinstance(obj, pd.DataFrame):
        kind = "dataframe"
    elif isinstance(obj, np.ndarray):
        kind = "ndarray"
    else:
        raise NbopsError(
            f"cannot fingerprint a {type(obj).__name__}; pass a pandas DataFrame, Series "
            "or numpy array"
        )
    if kind == "ndarray":
        h.update(f"ndarray|{obj.dtype.str}|{obj.shape}".encode())
        if obj.dtype.hasobject:
            h.update(pd.util.hash_pandas_object(pd.Series(obj.ravel()), index=False)
                     .to_numpy().tobytes())
        else:
            h.update(np.ascontiguousarray(obj).view(np.uint8).ravel().data)
        schema = {"values": str(obj.dtype)}
        shape = list(obj.shape)
    else:
        schema = {str(c): str(t) for c, t in obj.dtypes.items()}
        h.update(repr(list(schema.items())).encode())
        try:
            rows = pd.util.hash_pandas_object(obj, index=True).to_numpy()
        except TypeError:  # unhashable cells (lists, dicts): fall back to their repr
            rows = pd.util.hash_pandas_object(obj.astype(str), index=True).to_numpy()
        h.update(rows.tobytes())
        shape = list(obj.shape)
    return {"digest": h.hexdigest()[:32], "kind": kind, "shape": shape, "schema": schema}
