"""What the OpenAPI document says each route answers: every status and content type
the service really returns, with the error shape of the route's protocol."""

from typing import Any

MLFLOW_ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
}
OIP_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
WHY = {
    400: "bad request: the body, a column or a value is wrong (the message says which)",
    401: "missing or wrong bearer token (only when the service runs with --token)",
    404: "no such model or version",
    413: "the body is larger than the limit",
    415: "unsupported content type",
    503: "the model is still loading",
}
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "BF16", "FP32", "FP64", "BYTES"]
TENSOR = {"type": "object", "required": ["name", "shape", "datatype"],
          "properties": {"name": {"type": "string"},
                         "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                         "datatype": {"type": "string", "enum": DATATYPES},
                         "data": {"type": "array"}, "parameters": {"type": "object"}}}
# Request schemas are supersets of what the service accepts: whatever they refuse, the
# service refuses too. It also refuses some bodies they allow (columns of unequal
# length, a value of the wrong type for its column), which JSON Schema cannot express.
INFER_REQUEST = {"type": "object", "required": ["inputs"],
                 "properties": {"id": {"type": "string"}, "parameters": {"type": "object"},
                                "inputs": {"type": "array", "minItems": 1, "items": TENSOR},
                                "outputs": {"type": "array", "items": {
                                    "type": "object", "required": ["name"],
                                    "properties": {"name": {"type": "string"},
                                                   "parameters": {"type": "object"}}}}}}
_TABLE = {"type": ["array", "object"]}
INVOCATION_REQUEST = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "dataframe_split": {"type": "object", "required": ["data"], "properties": {
            "columns": {"type": "array", "items": {"type": ["string", "integer"]}},
            "data": {"type": "array", "items": {"type": "array"}}}},
        "dataframe_records": {"type": "array", "items": {"type": "object"}},
        "instances": _TABLE, "inputs": _TABLE, "params": {"type": "object"}},
    "oneOf": [{"required": [k]} for k in ("dataframe_split", "dataframe_records",
                                          "instances", "inputs")]}
FEEDBACK_REQUEST = {"type": "object", "required": ["ids", "labels"],
                    "properties": {"ids": {"type": "array", "items": {"type": "string"}},
                                   "labels": {"type": "array", "items": {
                                       "type": ["string", "number", "boolean"]}}}}
INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": TENSOR},
    },
}
MODEL_METADATA = {
    "type": "object",
    "required": ["name", "versions", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": TENSOR},
        "outputs": {"type": "array", "items": TENSOR},
    },
}
OBJECT = {"type": "object"}


def json_of(schema: dict) -> dict:
    """A content map with one JSON schema."""
    return {"application/json": {"schema": schema}}


def responses(
    ok: dict,
    *errors: int,
    oip: bool = False,
    ok_status: int = 200,
    ok_text: str = "OK",
    auth: bool = True,
) -> dict[int | str, Any]:
    """The ``responses`` of a route: ``ok`` (a content map) and the error statuses,
    each with the error shape of the route's protocol (401 too when ``auth``)."""
    shape = OIP_ERROR if oip else MLFLOW_ERROR
    out: dict[int | str, Any] = {ok_status: {"description": ok_text, "content": ok}}
    for status in sorted({*errors, *((401,) if auth else ())}):
        out[status] = {"description": WHY[status], "content": json_of(shape)}
    return out


def body(content: dict[str, dict]) -> dict:
    """``openapi_extra`` for a required request body with these content types."""
    return {"requestBody": {"required": True, "content": content}}
