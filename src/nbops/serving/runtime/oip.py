"""The Open Inference Protocol v2 (KServe v2 / Triton HTTP), with its binary tensor
extension.

Routes (``http.py``): ``GET /v2`` (server metadata, extensions ``binary_tensor_data``),
``/v2/health/live|ready``, ``GET /v2/models/{name}[/versions/{v}]`` (model metadata),
``.../ready``, ``POST .../infer``. Errors are ``{"error": "<message>"}``.

An inference request is JSON: ``{"id"?, "parameters"?, "inputs": [{"name", "shape",
"datatype", "data" | "parameters": {"binary_data_size": n}}], "outputs"?: [{"name",
"parameters"?: {"binary_data": bool}}]}``. The inputs are one tensor per signature
column (shape ``[rows]`` or ``[rows, 1]``), or a single ``[rows, columns]`` tensor in
signature order. Every declared datatype is checked against the column it feeds and
every value against the declared datatype (``INT64`` carrying ``1.5`` is a 400).

**Binary tensor extension.** With the header ``Inference-Header-Content-Length: N`` the
body is N bytes of JSON followed by the raw tensors, in input order, for each input
whose parameters give ``binary_data_size``. Raw tensors are little-endian, row-major;
``BOOL`` is one byte per value; ``BYTES`` is each element as a 4-byte little-endian
length and its bytes; ``BF16`` is the upper half of an IEEE float32. The response
carries an output as raw bytes when the request asks for it (``"binary_data": true``
on the output, or ``"binary_data_output": true`` in the request's parameters): that
output's JSON then has ``parameters.binary_data_size`` instead of ``data``, the
response's ``Inference-Header-Content-Length`` gives the JSON's length, and its
content type is ``application/octet-stream``.

The one output is ``predict``; its datatype is the same in model metadata and in
every response (``output_datatype`` in ``model.py``).
"""

import struct
from typing import Any

from .codec import bad, dumps, json_body
from .inputs import Table

HEADER = "inference-header-content-length"
NUMPY_OF = {
    "BOOL": "|b1",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
SIZE_OF = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "BF16": 2,
    "FP32": 4,
    "FP64": 8,
}
DATATYPES = (*SIZE_OF, "BYTES")
INT_RANGE = {
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
}
# which declared datatypes may feed a column of each signature kind
FITS = {
    "float": {"FP16", "BF16", "FP32", "FP64", *INT_RANGE},
    "int": set(INT_RANGE),
    "bool": {"BOOL"},
    "str": {"BYTES"},
    "any": {"FP16", "BF16", "FP32", "FP64", "BOOL", "BYTES", *INT_RANGE},
}


class InferRequest:
    """A parsed request: ``payload`` (the JSON part), ``tensors`` (flat value lists),
    ``binary_output`` (answer with raw bytes)."""

    def __init__(self, payload: dict, tensors: list[list[Any]], binary_output: bool) -> None:
        self.payload, self.tensors, self.binary_output = payload, tensors, binary_output


def read_request(body: bytes, header: str | None) -> InferRequest:
    """Split and decode an infer body (JSON, or JSON + binary tensors when ``header``,
    the Inference-Header-Content-Length, is given). Raises a 400 ServiceError."""
    if header is not None:
        try:
            n = int(header)
        except ValueError:
            raise bad(
                f"Inference-Header-Content-Length must be a byte count, got {header!r}",
                "BAD_REQUEST",
            ) from None
        if not 0 <= n <= len(body):
            raise bad(
                f"Inference-Header-Content-Length is {n} but the body has only {len(body)} bytes",
                "BAD_REQUEST",
            )
        payload, raw = json_body(body[:n]), memoryview(body)[n:]
    else:
        payload, raw = json_body(body), memoryview(b"")
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("inputs"), list)
        or not payload["inputs"]
    ):
        raise bad('the body must be {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    if "parameters" in payload and not isinstance(payload["parameters"], dict):
        raise bad("parameters must be an object")
    if "id" in payload and not isinstance(payload["id"], str):
        raise bad("id must be a string")
    binary = _binary_output(payload)
    tensors, offset = [], 0
    for k, t in enumerate(payload["inputs"]):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("shape"), list)
            or not all(type(s) is int and s >= 0 for s in t["shape"])
            or t.get("datatype") not in DATATYPES
            or not isinstance(t.get("name"), str)
        ):
            raise bad(
                f"inputs[{k}] needs 'name', 'shape' (non-negative ints), 'datatype' "
                f"(one of {', '.join(DATATYPES)}) and 'data' or binary data"
            )
        count = 1
        for s in t["shape"]:
            count *= s
        params = t.get("parameters", {})
        if not isinstance(params, dict):
            raise bad(f"inputs[{k}].parameters must be an object")
        size = params.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(raw):
                raise bad(
                    f"inputs[{k}] ({t['name']}) claims {size!r} bytes of binary data "
                    f"but {len(raw) - offset} remain in the body"
                )
            values = decode(bytes(raw[offset : offset + size]), t["datatype"], count, t["name"])
            offset += size
        else:
            if not isinstance(t.get("data"), list):
                raise bad(
                    f"inputs[{k}] ({t['name']}) has no 'data' list and no "
                    "binary_data_size parameter"
                )
            values = _flatten(t["data"])
            _check_values(values, t["datatype"], t["name"])
        if len(values) != count:
            raise bad(f"inputs[{k}] ({t['name']}) has shape {t['shape']} but {len(values)} values")
        tensors.append(values)
    if offset != len(raw):
        raise bad(
            f"the body has {len(raw) - offset} bytes of binary data that no input "
            "claims (binary_data_size)"
        )
    return InferRequest(payload, tensors, binary)


def to_table(req: InferRequest, signature: Any) -> Table:
    """The request's rows, with every declared datatype checked against the column it
    feeds. Raises a 400 ServiceError."""
    inputs = req.payload["inputs"]
    kinds = {c: k for c, k, _ in signature.inputs}
    if len(inputs) == 1 and len(inputs[0]["shape"]) == 2 and inputs[0]["name"] not in kinds:
        t = inputs[0]
        rows_n, width = t["shape"]
        for col, kind, _ in signature.inputs:
            _check_fits(t["datatype"], kind, f"inputs[0] ({t['name']})", col)
        data = req.tensors[0]
        return Table(None, [data[i * width : (i + 1) * width] for i in range(rows_n)])
    names = [t["name"] for t in inputs]
    for k, t in enumerate(inputs):
        if len(t["shape"]) > 2 or (len(t["shape"]) == 2 and t["shape"][1] != 1):
            raise bad(
                f"inputs[{k}] ({t['name']}) must have shape [rows] or [rows, 1], or "
                f"send one [rows, {len(signature.columns)}] tensor; got {t['shape']}"
            )
        if t["name"] in kinds:
            _check_fits(t["datatype"], kinds[t["name"]], f"inputs[{k}]", t["name"])
    if len({len(v) for v in req.tensors}) != 1:
        raise bad("every input tensor needs the same number of rows")
    return Table(names, [list(r) for r in zip(*req.tensors, strict=False)])


def _check_fits(datatype: str, kind: str, where: str, column: str) -> None:
    if datatype not in FITS[kind]:
        want = {
            "float": "a number type (FP64, FP32, INT64, ...)",
            "int": "an integer type (INT64, INT32, ...)",
            "bool": "BOOL",
            "str": "BYTES",
        }.get(kind, "a type")
        raise bad(f"{where} declares datatype {datatype}, but column {column!r} takes {want}")


def _check_values(values: list, datatype: str, name: str) -> None:
    for v in values:
        if not _fits_one(v, datatype):
            raise bad(f"input {name!r} is declared {datatype} but holds {v!r}")


def _fits_one(v: Any, datatype: str) -> bool:
    t = type(v)
    if datatype == "BYTES":
        return t is str
    if datatype == "BOOL":
        return t is bool
    if datatype in INT_RANGE:
        lo, hi = INT_RANGE[datatype]
        return t is int and lo <= v <= hi
    return t is int or t is float


def _flatten(data: list) -> list:
    if data and isinstance(data[0], list):
        out: list = []
        for item in data:
            out.extend(_flatten(item) if isinstance(item, list) else [item])
        return out
    return data


# -- raw tensors ----------------------------------------------------------------------
def decode(raw: bytes, datatype: str, count: int, name: str) -> list[Any]:
    """Plain values of a raw tensor. Raises a 400 ServiceError for a size mismatch."""
    if datatype == "BYTES":
        out, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise bad(f"input {name!r}: truncated BYTES element length")
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + n > len(raw):
                raise bad(f"input {name!r}: a BYTES element claims {n} bytes past the end")
            try:
                out.append(raw[pos : pos + n].decode("utf-8"))
            except UnicodeDecodeError:
                raise bad(f"input {name!r}: a BYTES element is not UTF-8 text") from None
            pos += n
        return out
    size = SIZE_OF[datatype]
    if len(raw) != count * size:
        raise bad(
            f"input {name!r}: {len(raw)} bytes of {datatype} data for {count} values "
            f"({count * size} bytes expected)"
        )
    import numpy as np

    if datatype == "BF16":
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).astype(np.float64).tolist()
    arr = np.frombuffer(raw, dtype=NUMPY_OF[datatype])
    if datatype.startswith("FP"):
        if not np.isfinite(arr).all():
            return [float(v) for v in arr.tolist()]  # the signature check names the column
        return arr.astype(np.float64).tolist()
    return arr.tolist()


def encode(values: list[Any], datatype: str) -> bytes:
    """The raw bytes of a flat list of values as ``datatype``."""
    if datatype == "BYTES":
        parts = []
        for v in values:
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    import numpy as np

    return np.asarray(values, dtype=NUMPY_OF[datatype]).tobytes()


def as_datatype(preds: list[Any], datatype: str) -> list[Any]:
    """Predictions as JSON values of ``datatype`` (BYTES as text)."""
    if datatype == "BYTES":
        return [p if isinstance(p, str) else str(p) for p in preds]
    if datatype == "BOOL":
        return [bool(p) for p in preds]
    if datatype in INT_RANGE:
        return [int(p) for p in preds]
    return [float(p) for p in preds]


def _binary_output(payload: dict) -> bool:
    """Whether the response carries ``predict`` as raw bytes; checks ``outputs``."""
    binary = bool((payload.get("parameters") or {}).get("binary_data_output", False))
    wanted = payload.get("outputs")
    if wanted is None:
        return binary
    if not isinstance(wanted, list) or not all(
        isinstance(o, dict) and isinstance(o.get("parameters", {}), dict) for o in wanted
    ):
        raise bad('outputs must be a list of {"name": ..., "parameters": {...}}')
    names = [o.get("name") for o in wanted]
    if any(n != "predict" for n in names):
        raise bad(
            f"unknown outputs {[n for n in names if n != 'predict']}; the model "
            "has one output, 'predict'"
        )
    for o in wanted:
        if "binary_data" in o.get("parameters", {}):
            binary = bool(o["parameters"]["binary_data"])
    return binary


def response(
    model_name: str, version: str, rid: str, preds: list[Any], datatype: str, req: InferRequest
) -> tuple[bytes, dict[str, str], str]:
    """(body, extra headers, media type) of an infer response, binary where asked."""
    payload = req.payload
    values = as_datatype(preds, datatype)
    out: dict[str, Any] = {"name": "predict", "shape": [len(values)], "datatype": datatype}
    rid_out = payload.get("id") if isinstance(payload.get("id"), str) else rid
    head = {"model_name": model_name, "model_version": version, "id": rid_out}
    if not req.binary_output:
        out["data"] = values
        return dumps({**head, "outputs": [out]}), {}, "application/json"
    raw = encode(values, datatype)
    out["parameters"] = {"binary_data_size": len(raw)}
    header = dumps({**head, "outputs": [out]})
    return (
        header + raw,
        {"Inference-Header-Content-Length": str(len(header))},
        "application/octet-stream",
    )
