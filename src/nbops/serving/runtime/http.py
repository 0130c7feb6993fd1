"""The HTTP app: routes of the MLflow scoring protocol, the Open Inference Protocol v2,
Prometheus ``/metrics``, ``/canary`` and ``/feedback``, on FastAPI.

Errors take the shape of the protocol the path belongs to, including 404 and 405 for
paths and methods the service does not have and the 401 of the bearer token:
``{"error": "..."}`` under ``/v2``, ``{"error_code": "...", "message": "..."}``
elsewhere (MLflow's shape). The OpenAPI document (``/openapi.json``) lists, for every
route, each status and content type it answers with (see ``openapi.py``).
"""

import hmac
import math
import time
import zlib
from typing import Any

from .codec import ServiceError, bad, dumps, json_body
from .inputs import Table, parse_csv_table, parse_json_table, parse_parquet_table
from .metrics import route_label
from .model import ModelVersion
from .oip_routes import add_oip_routes
from .openapi import FEEDBACK_REQUEST, INVOCATION_REQUEST, OBJECT, Api, body, json_of, responses
from .service import Service

SERVICE_VERSION = "1"
MAX_BODY_BYTES = 20 * 1024 * 1024
THREAD_ROWS = 2000  # batches at least this big are scored off the event loop
OPEN_PATHS = frozenset({"/ping", "/health", "/v2/health/live", "/v2/health/ready"})
PARQUET = "application/vnd.apache.parquet"
INVOCATION_TYPES = ("application/json", "text/csv", PARQUET)


def is_oip(path: str) -> bool:
    """True for paths of the Open Inference Protocol (their errors are {"error": ...})."""
    return path == "/v2" or path.startswith("/v2/")


def error_response(
    path: str, status: int, code: str, message: str, headers: dict | None = None
) -> Any:
    """An error in the shape of the protocol ``path`` belongs to."""
    from starlette.responses import Response

    payload = {"error": message} if is_oip(path) else {"error_code": code, "message": message}
    return Response(
        dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


class Instrument:
    """ASGI wrapper: bearer token, in-flight count, per-route status/latency metrics,
    optional access log."""

    def __init__(self, app: Any, service: Service, access_log: bool = False) -> None:
        self.app, self.service, self.access_log = app, service, access_log

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        svc = self.service
        path = scope["path"]
        metrics = svc.metrics
        t0 = time.perf_counter()
        if svc.token and path not in OPEN_PATHS and not self._authorised(scope):
            await error_response(
                path,
                401,
                "UNAUTHENTICATED",
                "this service needs the header 'Authorization: Bearer <token>' with its token",
                {"WWW-Authenticate": "Bearer"},
            )(scope, receive, send)
            metrics.observe(route_label(path), 401, "", 0.0)
            self._log(scope, 401, t0)
            return
        status = [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_flight -= 1
            metrics.observe(
                route_label(path),
                status[0],
                scope.get("nbops_version", ""),
                time.perf_counter() - t0,
            )
            if self.access_log:
                self._log(scope, status[0], t0)

    def _log(self, scope: dict, status: int, t0: float) -> None:
        if not self.access_log:
            return
        client = scope.get("client") or ("-", 0)
        ms = (time.perf_counter() - t0) * 1000
        print(f'{client[0]} "{scope["method"]} {scope["path"]}" {status} {ms:.1f}ms', flush=True)

    def _authorised(self, scope: dict) -> bool:
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                expected = f"Bearer {self.service.token}".encode()
                return hmac.compare_digest(value, expected)
        return False


async def read_body(request: Any) -> bytes:
    """The request body, at most MAX_BODY_BYTES (413 beyond), gzip/deflate decoded
    when Content-Encoding says so."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            too_big = int(length) > MAX_BODY_BYTES
        except ValueError:
            raise bad("bad Content-Length header", "BAD_REQUEST") from None
        if too_big:
            raise ServiceError(
                413,
                "REQUEST_TOO_LARGE",
                f"the body has {length} bytes; the limit is {MAX_BODY_BYTES}; send smaller batches",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ServiceError(
                413,
                "REQUEST_TOO_LARGE",
                f"the body exceeds {MAX_BODY_BYTES} bytes; send smaller batches",
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
            data = d.decompress(data, MAX_BODY_BYTES + 1)
        except zlib.error as exc:
            raise bad(
                f"the {encoding} body cannot be decompressed: {exc}", "MALFORMED_REQUEST"
            ) from None
        if len(data) > MAX_BODY_BYTES or d.unconsumed_tail:
            raise ServiceError(
                413,
                "REQUEST_TOO_LARGE",
                f"the decompressed body exceeds {MAX_BODY_BYTES} bytes; send smaller batches",
            )
    elif encoding not in ("", "identity"):
        raise ServiceError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none",
        )
    return data


def create_app(service: Service, access_log: bool = False) -> Any:
    """The ASGI app of a service: Starlette routes wrapped for metrics and the token."""
    from contextlib import asynccontextmanager

    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response

    @asynccontextmanager
    async def lifespan(app: Any):
        if not service.ready:
            service.load()
        yield
        service.close()

    app = Api(f"nbops service: {service.name}", SERVICE_VERSION, lifespan=lifespan)

    def ok(obj: Any, status: int = 200) -> Any:
        return Response(dumps(obj), status_code=status, media_type="application/json")

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Any:
        return error_response(request.url.path, exc.status, exc.code, exc.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Any:
        path = request.url.path
        if exc.status_code == 404:
            msg = f"no route {path}; see /openapi.json for the routes of this service"
            return error_response(path, 404, "ENDPOINT_NOT_FOUND", msg)
        if exc.status_code == 405:
            msg = f"{request.method} is not allowed on {path}"
            return error_response(path, 405, "METHOD_NOT_ALLOWED", msg, exc.headers)
        return error_response(path, exc.status_code, "BAD_REQUEST", str(exc.detail))

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> Any:
        return error_response(
            request.url.path,
            500,
            "INTERNAL_ERROR",
            f"the service failed: {type(exc).__name__}: {exc}",
        )

    def not_ready(path: str) -> Any:
        return error_response(path, 503, "NOT_READY", "the model is still loading")

    health = {"application/json": {"schema": OBJECT}}

    @app.get(
        "/ping",
        summary="MLflow health check: 200 once the model is loaded",
        responses=responses({"text/plain": {"schema": {"type": "string"}}}, 503, auth=False),
    )
    async def ping(request: Request) -> Any:
        return PlainTextResponse("\n") if service.ready else not_ready("/ping")

    @app.get(
        "/health",
        summary="Health check: 200 once the model is loaded",
        responses=responses(health, 503, auth=False),
    )
    async def health_route(request: Request) -> Any:
        return ok({"status": "ok"}) if service.ready else not_ready("/health")

    @app.get(
        "/version",
        summary="The model name, versions and sha256",
        responses=responses(json_of(OBJECT)),
    )
    async def version(request: Request) -> Any:
        c = service.canary
        return ok(
            {
                "model_name": service.name,
                "version": service.stable.version,
                "sha256": service.stable.meta.get("sha256"),
                "candidate_version": c.candidate.version if c else None,
                "canary_status": c.status if c else None,
                "source_run": service.stable.meta.get("source_run"),
                "service": SERVICE_VERSION,
            }
        )

    async def score(
        table: Table, text: bool, request: Request, pinned: ModelVersion | None = None
    ) -> tuple:
        rid = request.headers.get("x-request-id")
        if rid is not None and (len(rid) > 64 or not rid.isprintable()):
            raise bad("X-Request-ID must be at most 64 printable characters")
        if len(table.rows) >= THREAD_ROWS:
            result = await run_in_threadpool(service.score, table, text, rid, pinned)
        else:
            result = service.score(table, text, rid, pinned)
        request.scope["nbops_version"] = result[0].label
        return result

    predictions = json_of(
        {
            "type": "object",
            "required": ["predictions"],
            "properties": {"predictions": {"type": "array"}},
        }
    )

    @app.post(
        "/invocations",
        summary="Score rows (MLflow scoring protocol)",
        responses=responses(predictions, 400, 413, 415),
        openapi_extra=body(
            {
                "application/json": {"schema": INVOCATION_REQUEST},
                "text/csv": {"schema": {"type": "string"}},
                PARQUET: {"schema": {"type": "string", "format": "binary"}},
            }
        ),
    )
    async def invocations(request: Request) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in INVOCATION_TYPES:
            raise ServiceError(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"content type {ctype or '(none)'!r} is not supported; send "
                f"one of {', '.join(INVOCATION_TYPES)}",
            )
        data = await read_body(request)
        if ctype == "text/csv":
            mv, preds, rid = await score(parse_csv_table(data), True, request)
        elif ctype == PARQUET:
            mv, preds, rid = await score(parse_parquet_table(data), False, request)
        else:
            mv, preds, rid = await score(parse_json_table(json_body(data)), False, request)
        return Response(
            b'{"predictions":' + dumps(preds) + b"}",
            media_type="application/json",
            headers={"x-request-id": rid, "x-model-version": mv.label},
        )

    @app.post(
        "/feedback",
        summary="Ground truth for logged predictions",
        responses=responses(json_of(OBJECT), 400, 413),
        openapi_extra=body(json_of(FEEDBACK_REQUEST)),
    )
    async def feedback(request: Request) -> Any:
        payload = json_body(await read_body(request))
        ids = payload.get("ids") if isinstance(payload, dict) else None
        labels = payload.get("labels") if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
            raise bad(
                'send {"ids": [...], "labels": [...]} with one label per id; ids '
                "are the prediction ids '<x-request-id>-<row>'"
            )
        for i, (pid, label) in enumerate(zip(ids, labels, strict=False)):
            if not isinstance(pid, str) or not isinstance(label, str | int | float | bool):
                raise bad(f"ids[{i}] must be a string and labels[{i}] a number or string")
            if isinstance(label, float) and not math.isfinite(label):
                raise bad(f"labels[{i}] must be finite")
        ts = time.time()
        for pid, label in zip(ids, labels, strict=False):
            service.feedback.append({"id": pid, "label": label, "ts": ts})
        return ok({"received": len(ids)})

    @app.get(
        "/canary",
        summary="The canary state: share, window, history",
        responses=responses(json_of(OBJECT)),
    )
    async def canary(request: Request) -> Any:
        if service.canary is None:
            return ok({"status": "off", "share": 0.0, "stable_version": service.stable.version})
        return ok(service.canary.describe())

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format 0.0.4)",
        responses=responses({"text/plain": {"schema": {"type": "string"}}}),
    )
    async def metrics(request: Request) -> Any:
        return PlainTextResponse(
            service.metrics.render(service.canary), media_type="text/plain; version=0.0.4"
        )

    add_oip_routes(app, service, ok, score, not_ready, read_body, SERVICE_VERSION)
    return Instrument(app.build(), service, access_log=access_log)
