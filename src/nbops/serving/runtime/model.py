"""One model version of a service folder: ``model.json``, its model file, its predictor.

Start-up checks, in order: ``model.json`` exists, the model file hashes to the sha256
it records, and the numpy predictor (``model.npz``, when the export wrote one) hashes
to its own recorded sha256. Any failure is a :class:`StartupError` and the service
does not listen. The scikit-learn model itself is loaded only when there is no numpy
predictor (or an input needs the model), after skops' untrusted types in the file
are checked against the ones recorded at save time.
"""

import json
import threading
from pathlib import Path
from typing import Any

from .codec import StartupError, bad, sha256_file, skops_trust
from .inputs import Signature
from .predictors import NumpyPredictor

# the OIP v2 datatype of a signature value kind, and of a prediction's numpy kind
V2_OF_KIND = {"float": "FP64", "int": "INT64", "bool": "BOOL", "str": "BYTES", "any": "BYTES"}
V2_OF_DTYPE = {
    "float64": "FP64",
    "float32": "FP32",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
}


class ModelVersion:
    """A model version of the service folder: ``model.json`` plus its files."""

    def __init__(self, folder: Path) -> None:
        meta_path = folder / "model.json"
        if not meta_path.is_file():
            raise StartupError(
                f"{meta_path} is missing; export the model again with "
                "nbops.export(...) or `nbops export`"
            )
        self.folder = folder
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.name = str(self.meta.get("model_name") or self.meta.get("name") or "model")
        self.version = self.meta.get("version")
        self.label = str(self.version)
        self.file = folder / str(self.meta.get("file_name") or "model.skops")
        self.signature = Signature(self.meta.get("signature") or {})
        self.outputs = (self.meta.get("signature") or {}).get("outputs") or {}
        self.output_datatype = output_datatype(self.outputs)
        self._model: Any = None
        self._lock = threading.Lock()
        self.compiled: NumpyPredictor | None = None
        self._verify()

    def _verify(self) -> None:
        if not self.file.is_file():
            raise StartupError(f"model file {self.file} is missing; export the model again")
        actual = sha256_file(self.file)
        expected = self.meta.get("sha256")
        if actual != expected:
            raise StartupError(
                f"model file {self.file} hashes to {actual[:12]}, but model.json records "
                f"{str(expected)[:12]}: the file was changed after export, so the service "
                "will not start. Export the model again from the registry."
            )
        comp = self.meta.get("compiled")
        if comp:
            path = self.folder / comp["file"]
            if not (path.is_file() and sha256_file(path) == comp.get("sha256")):
                raise StartupError(
                    f"{path} is missing or does not match the sha256 in model.json; "
                    "export the model again"
                )
            self.compiled = NumpyPredictor(path)
            if self.compiled.n_features != len(self.signature.columns):
                self.compiled = None  # the signature disagrees: let the model decide

    @property
    def model(self) -> Any:
        """The scikit-learn object, loaded from the skops file on first use after its
        untrusted types are checked against the ones recorded at save time."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import skops.io as sio

                    data = self.file.read_bytes()
                    needed, unexpected = skops_trust(data, self.meta.get("trusted_types"))
                    if unexpected:
                        raise StartupError(
                            f"{self.file} asks to trust types {unexpected} that were not "
                            "recorded when it was saved; refusing to load it"
                        )
                    self._model = sio.loads(data, trusted=needed)
        return self._model

    def load(self) -> None:
        """Load the scikit-learn model now unless the numpy predictor serves it."""
        if self.compiled is None:
            self.model  # noqa: B018 - load now, not on the first request

    def matrix(self, table: Any) -> tuple[list[str], list[list[Any]]]:
        """Rows checked against the signature (see :meth:`Signature.matrix`)."""
        return self.signature.matrix(table)

    def text_matrix(self, table: Any) -> tuple[list[str], list[list[Any]]]:
        """CSV rows checked against the signature (see :meth:`Signature.text_matrix`)."""
        return self.signature.text_matrix(table)

    def predict(self, cols: list[str], rows: list[list[Any]]) -> list[Any]:
        """Predictions for checked rows, as plain JSON values."""
        if not rows:
            return []
        if self.compiled is not None:
            out = self.compiled.predict_rows(rows)
            if out is not None:
                return out
        return self._predict_model(cols, rows)

    def _predict_model(self, cols: list[str], rows: list[list[Any]]) -> list[Any]:
        model = self.model
        if getattr(model, "feature_names_in_", None) is not None or not self.signature.numeric:
            import pandas as pd

            X = pd.DataFrame(rows, columns=cols)
            for col, kind, _ in self.signature.inputs:
                if kind == "float":
                    X[col] = X[col].astype("float64")
        else:
            import numpy as np

            X = np.array(rows, dtype=np.float64)
        out = model.predict(X)
        tolist = getattr(out, "tolist", None)
        return tolist() if callable(tolist) else list(out)

    def checked_predict(self, cols: list[str], rows: list[list[Any]]) -> list[Any]:
        """:meth:`predict`, with scikit-learn's ValueError/TypeError as a 400."""
        try:
            return self.predict(cols, rows)
        except (ValueError, TypeError) as exc:  # scikit-learn's way of rejecting input
            raise bad(f"the model rejected the input: {exc}") from None


def output_datatype(outputs: dict) -> str:
    """The OIP v2 datatype of the predictions, as ``/infer`` returns them: the classes'
    dtype for a classifier, FP64 for a regressor, BYTES when unknown."""
    task = outputs.get("task")
    if task == "regression":
        return "FP64"
    if task == "classification":
        classes = outputs.get("classes") or []
        if classes and all(isinstance(c, bool) for c in classes):
            return "BOOL"
        if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            return "INT64"
        if classes and all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
            return "FP64"
        if classes:
            return "BYTES"
        return V2_OF_DTYPE.get(str(outputs.get("dtype")), "BYTES")
    return "BYTES"
