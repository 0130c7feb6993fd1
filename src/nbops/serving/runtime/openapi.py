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
DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "BF16",
    "FP32",
    "FP64",
    "BYTES",
]
TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": DATATYPES},
        "data": {"type": "array"},
        "parameters": {"type": "object"},
    },
}
# Request schemas are supersets of what the service accepts: whatever they refuse, the
# service refuses too. It also refuses some bodies they allow (columns of unequal
# length, a value of the wrong type for its column), which JSON Schema cannot express.
INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "items": TENSOR},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
            },
        },
    },
}
_TABLE = {"type": ["array", "object"]}
INVOCATION_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dataframe_split": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "columns": {"type": "array", "items": {"type": ["string", "integer"]}},
                "data": {"type": "array", "items": {"type": "array"}},
            },
        },
        "dataframe_records": {"type": "array", "items": {"type": "object"}},
        "instances": _TABLE,
        "inputs": _TABLE,
        "params": {"type": "object"},
    },
    "oneOf": [
        {"required": [k]} for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
    ],
}
FEEDBACK_REQUEST = {
    "type": "object",
    "required": ["ids", "labels"],
    "properties": {
        "ids": {"type": "array", "items": {"type": "string"}},
        "labels": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
    },
}
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
# in metadata a shape may hold -1: "any number of rows"
TENSOR_METADATA = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
        "datatype": {"type": "string", "enum": DATATYPES},
    },
}
MODEL_METADATA = {
    "type": "object",
    "required": ["name", "versions", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": TENSOR_METADATA},
        "outputs": {"type": "array", "items": TENSOR_METADATA},
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


DOCS_HTML = """<!doctype html><html><head><title>{title}</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui"}});</script>
</body></html>"""


class Api:
    """Routes with their OpenAPI description, built into a Starlette app.

    A small stand-in for FastAPI's decorators (``get``, ``post``, ``add_api_route``,
    ``exception_handler``): the service writes every response itself, so it needs
    routing and a published contract, not request validation -- and Starlette alone
    starts in a fraction of FastAPI's time (no pydantic models to build)."""

    def __init__(self, title: str, version: str, lifespan: Any = None) -> None:
        self.title, self.version, self.lifespan = title, version, lifespan
        self.routes: list[tuple[str, str, Any]] = []
        self.paths: dict[str, dict[str, Any]] = {}
        self.handlers: dict[Any, Any] = {}

    def exception_handler(self, cls: Any) -> Any:
        """Decorator: answer exceptions of ``cls`` with this function."""

        def register(fn: Any) -> Any:
            self.handlers[cls] = fn
            return fn

        return register

    def get(self, path: str, **doc: Any) -> Any:
        """Decorator: a GET route (``summary``, ``responses``, ``openapi_extra``)."""
        return self._decorator(path, "GET", doc)

    def post(self, path: str, **doc: Any) -> Any:
        """Decorator: a POST route (``summary``, ``responses``, ``openapi_extra``)."""
        return self._decorator(path, "POST", doc)

    def _decorator(self, path: str, method: str, doc: dict[str, Any]) -> Any:
        def register(fn: Any) -> Any:
            self.add_api_route(path, fn, methods=[method], **doc)
            return fn

        return register

    def add_api_route(
        self,
        path: str,
        endpoint: Any,
        methods: list[str],
        summary: str = "",
        responses: dict | None = None,
        openapi_extra: dict | None = None,
        **_: Any,
    ) -> None:
        """Add ``endpoint(request)`` for ``methods`` on ``path`` and describe it."""
        for method in methods:
            self.routes.append((path, method, endpoint))
            op_id = f"{method.lower()}_{path}".replace("/", "_").replace("{", "").replace("}", "")
            op: dict[str, Any] = {
                "summary": summary,
                "operationId": op_id.strip("_"),
                "responses": {str(k): v for k, v in (responses or {}).items()},
            }
            op.update(openapi_extra or {})
            self.paths.setdefault(path, {})[method.lower()] = op

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the routes."""
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": self.paths,
        }

    def build(self) -> Any:
        """The Starlette app (with ``/openapi.json`` and ``/docs``)."""
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse, Response
        from starlette.routing import Route

        from .codec import dumps

        document = dumps(self.openapi())
        page = DOCS_HTML.format(title=self.title)

        async def openapi_json(request: Any) -> Any:
            return Response(document, media_type="application/json")

        async def docs(request: Any) -> Any:
            return HTMLResponse(page)

        routes = [Route(path, endpoint, methods=[method]) for path, method, endpoint in self.routes]
        routes += [
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ]
        return Starlette(routes=routes, exception_handlers=self.handlers, lifespan=self.lifespan)
