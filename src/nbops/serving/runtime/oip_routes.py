"""The Open Inference Protocol v2 routes (the protocol itself is in ``oip.py``):
server metadata and health, and model metadata, readiness and inference, each with
and without ``/versions/{version}``. A versioned request is answered by that version
(the stable one or the canary candidate), never routed by the canary."""

from collections.abc import Callable
from typing import Any

from . import oip
from .codec import ServiceError
from .model import V2_OF_KIND, ModelVersion
from .openapi import INFER_REQUEST, INFER_RESPONSE, MODEL_METADATA, body, json_of, responses
from .service import Service


def add_oip_routes(
    app: Any,
    service: Service,
    ok: Callable,
    score: Callable,
    not_ready: Callable,
    read_body: Callable,
    server_version: str,
) -> None:
    """Add the OIP v2 routes to ``app`` (``ok``, ``score``, ``not_ready`` and
    ``read_body`` are the HTTP app's helpers)."""
    from starlette.requests import Request
    from starlette.responses import Response

    server = json_of(
        {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        }
    )

    @app.get("/v2", summary="OIP v2 server metadata", responses=responses(server, oip=True))
    async def v2_server(request: Request) -> Any:
        return ok(
            {"name": "nbops", "version": server_version, "extensions": ["binary_tensor_data"]}
        )

    live = json_of({"type": "object", "properties": {"live": {"type": "boolean"}}})
    ready = json_of({"type": "object", "properties": {"ready": {"type": "boolean"}}})

    @app.get(
        "/v2/health/live",
        summary="OIP v2 liveness",
        responses=responses(live, oip=True, auth=False),
    )
    async def v2_live(request: Request) -> Any:
        return ok({"live": True})

    @app.get(
        "/v2/health/ready",
        summary="OIP v2 readiness",
        responses=responses(ready, 503, oip=True, auth=False),
    )
    async def v2_ready(request: Request) -> Any:
        return ok({"ready": True}) if service.ready else not_ready(request.url.path)

    def pick(request: Request) -> tuple[ModelVersion, bool]:
        name = request.path_params["name"]
        if name != service.name:
            raise ServiceError(
                404, "NOT_FOUND", f"no model {name!r}; this service serves {service.name!r}"
            )
        label = request.path_params.get("version")
        if label is None:
            return service.stable, False
        mv = service.version(label)
        if mv is None:
            raise ServiceError(
                404,
                "NOT_FOUND",
                f"model {name!r} has no version {label!r} "
                f"here; this service serves versions "
                f"{[v.label for v in service.versions()]}",
            )
        return mv, True

    def metadata(mv: ModelVersion) -> dict:
        return {
            "name": mv.name,
            "versions": [v.label for v in service.versions()],
            "platform": "sklearn",
            "inputs": [
                {"name": c, "datatype": V2_OF_KIND[k], "shape": [-1]}
                for c, k, _ in mv.signature.inputs
            ],
            "outputs": [{"name": "predict", "datatype": mv.output_datatype, "shape": [-1]}],
        }

    async def model_metadata(request: Request) -> Any:
        mv, _ = pick(request)
        return ok(metadata(mv))

    async def model_ready(request: Request) -> Any:
        mv, _ = pick(request)
        if not service.ready:
            return not_ready(request.url.path)
        return ok({"name": mv.name, "ready": True})

    async def infer(request: Request) -> Any:
        mv, pinned = pick(request)
        data = await read_body(request)
        req = oip.read_request(data, request.headers.get(oip.HEADER))
        table = oip.to_table(req, mv.signature)
        used, preds, rid = await score(table, False, request, mv if pinned else None)
        payload, headers, media = oip.response(
            used.name, used.label, rid, preds, used.output_datatype, req
        )
        return Response(payload, media_type=media, headers=headers)

    model_ready_doc = json_of(
        {"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}}
    )
    infer_ok = {
        "application/json": {"schema": INFER_RESPONSE},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }
    infer_body = body(
        {
            "application/json": {"schema": INFER_REQUEST},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }
    )
    for base, what in (
        ("/v2/models/{name}", ""),
        ("/v2/models/{name}/versions/{version}", " of one version"),
    ):
        # the contract names what this service serves: its model and its versions
        served = {"name": [service.name], "version": [v.label for v in service.versions()]}
        params = {
            "parameters": [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": served[p]},
                }
                for p in ("name", "version")
                if "{" + p + "}" in base
            ]
        }
        app.add_api_route(
            base,
            model_metadata,
            methods=["GET"],
            summary="OIP v2 model metadata" + what,
            openapi_extra=params,
            responses=responses(json_of(MODEL_METADATA), 404, oip=True),
        )
        app.add_api_route(
            base + "/ready",
            model_ready,
            methods=["GET"],
            summary="OIP v2 model readiness" + what,
            openapi_extra=params,
            responses=responses(model_ready_doc, 404, 503, oip=True),
        )
        app.add_api_route(
            base + "/infer",
            infer,
            methods=["POST"],
            summary="OIP v2 inference" + what + " (JSON or the binary tensor extension)",
            responses=responses(infer_ok, 400, 404, 413, 415, oip=True),
            openapi_extra={**infer_body, **params},
        )
