"""REST handlers of the nbops server extension, under ``<base_url>/nbops/api/``.

=======  =============================================  =======================================
method   path                                           answer
=======  =============================================  =======================================
GET      ``/``                                          ``{version, store}``
GET      ``/runs?limit&offset&experiment&status&since&parent``  a page of runs (nbops.run_page)
GET      ``/runs/<run_id>``                             the run document (nbops.get_run)
GET      ``/runs/<run_id>/metrics/<key>``               ``{run_id, key, steps, values, timestamps}``
GET      ``/models``                                    ``{models: [{name, versions: [...]}]}``
GET      ``/models/<name>``                             ``{name, versions, history}``
GET      ``/models/<name>/history``                     ``{name, events: [...]}``
POST     ``/models/<name>/versions/<v>/transition``     body ``{stage, reason}``: the new record
POST     ``/models/<name>/rollback``                    body ``{reason}``: the record now in Production
=======  =============================================  =======================================

Every handler is authenticated by jupyter_server (token or login cookie, XSRF on POST):
without them the answer is 403. Bad input is 400 and an unknown run or model is 404,
each with a JSON ``message`` that says what was wrong. The handlers call the public
``nbops`` API only, in one worker thread so the server's event loop never blocks on
the store.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

import nbops
from nbops._errors import NbopsError, RunNotFoundError
from nbops.registry.naming import STAGES
from nbops.registry.views import MODEL_COLUMNS

# one thread: the store is read and written from a single place in this process
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbops-api")

# the stages as the REST API spells them, and the fields of a model version it returns
STAGE_NAMES = tuple(str(stage) for stage in STAGES)
MODEL_FIELDS = tuple(MODEL_COLUMNS)


def plain(value: Any) -> Any:
    """JSON-safe plain data: NaN/inf and pandas' missing values become None, timestamps
    ISO strings, numpy scalars Python numbers."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item) and getattr(value, "shape", None) == ():
        return plain(item())
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return plain(tolist())
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp
    if callable(isoformat):
        return None if str(value) == "NaT" else isoformat()
    if str(value) in ("<NA>", "NaT", "nan"):
        return None
    return str(value)


class NotFound(NbopsError):
    """What the URL names (a model, a version, a metric) does not exist: answered 404."""


class NbopsHandler(APIHandler):
    """Shared behaviour: run API calls off the event loop, turn nbops errors into
    4xx answers with a message."""

    auth_resource = "nbops"

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the API thread; nbops errors become 404 (unknown thing) or 400."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_executor, lambda: fn(*args, **kwargs))
        except (RunNotFoundError, NotFound) as exc:
            raise web.HTTPError(404, str(exc)) from None
        except NbopsError as exc:
            raise web.HTTPError(400, str(exc)) from None

    def send(self, data: Any) -> None:
        """Answer with ``data`` as strict JSON (NaN and infinities become null)."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(plain(data), allow_nan=False))

    def int_argument(self, name: str, default: int) -> int:
        """The query argument ``name`` as an int (``default`` when absent); 400 otherwise."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name}={raw!r} is not an integer") from None

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty); 400 for anything else."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError as exc:
            raise web.HTTPError(400, f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return body


class InfoHandler(NbopsHandler):
    """``GET /nbops/api``: the nbops version and the store this server shows."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """``{version, store}``."""
        path = await self.call(nbops.get_store_path)
        self.send({"version": nbops.__version__, "store": str(path)})


class RunsHandler(NbopsHandler):
    """``GET /nbops/api/runs``: one page of runs, newest first, with filters."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """A page of runs (limit, offset, experiment, status, since, parent)."""
        arg = self.get_query_argument
        page = await self.call(
            nbops.run_page,
            limit=self.int_argument("limit", 50),
            offset=self.int_argument("offset", 0),
            experiment=arg("experiment", None) or None,
            status=arg("status", None) or None,
            since=arg("since", None) or None,
            parent=arg("parent", None) or None,
        )
        self.send(page)


class RunHandler(NbopsHandler):
    """``GET /nbops/api/runs/ID``: one run with the names of its metrics."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        """The run's record; 404 for an unknown id."""
        run = await self.call(nbops.get_run, run_id)
        run["metric_keys"] = sorted(run.get("metrics") or {})
        self.send(run)


class MetricHistoryHandler(NbopsHandler):
    """``GET /nbops/api/runs/ID/metrics/KEY``: every logged value of one metric."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, key: str) -> None:
        """Steps, values and timestamps of one metric; 404 when unknown."""

        def history() -> dict[str, Any]:
            try:
                frame = nbops.metric_history(run_id, key)
            except RunNotFoundError:
                raise
            except NbopsError as exc:  # the run exists but has no such metric
                raise NotFound(str(exc)) from None
            return {
                "run_id": run_id,
                "key": key,
                "steps": frame["step"].tolist(),
                "values": frame["value"].tolist(),
                "timestamps": [t.isoformat() for t in frame["timestamp"]],
            }

        self.send(await self.call(history))


def _version_records(name: str | None = None) -> list[dict[str, Any]]:
    frame = nbops.models(name) if name is not None else nbops.models()
    records = []
    for row in frame.to_dict(orient="records"):
        rec = {k: plain(row.get(k)) for k in MODEL_FIELDS}
        rec["aliases"] = list(row.get("aliases") or [])
        rec["version"] = int(row["version"])
        rec["metrics"] = {
            k[len("metrics.") :]: plain(v)
            for k, v in row.items()
            if k.startswith("metrics.") and plain(v) is not None
        }
        # the last gate evaluation, rule by rule (rec["gates"] is its one-line summary)
        last = nbops.get_model(rec["name"], version=rec["version"]).get("gates") or {}
        rec["gate_results"] = last.get("results")
        records.append(rec)
    return records


def _known_model(name: str, version: int | None = None) -> None:
    """Raise NotFound unless model ``name`` (and its ``version``) is registered."""
    frame = nbops.models()
    names = set(frame["name"])
    if name not in names:
        known = ", ".join(sorted(names)) or "none yet"
        raise NotFound(
            f"no registered model {name!r}; registered models: {known}. "
            "Register one with nbops.register(run_id, name)"
        )
    if version is not None:
        versions = sorted(int(v) for v in frame.loc[frame["name"] == name, "version"])
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}; its versions are {versions}")


class ModelsHandler(NbopsHandler):
    """``GET /nbops/api/models``: every model with its versions and gate rules."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Every model, its versions (with the last gate verdict) and its gate rules."""
        records = await self.call(_version_records)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            grouped.setdefault(rec["name"], []).append(rec)
        rules = await self.call(lambda: {n: nbops.gates(n) for n in grouped})
        self.send(
            {"models": [{"name": n, "versions": v, "gates": rules[n]} for n, v in grouped.items()]}
        )


def _history(name: str) -> list[dict[str, Any]]:
    return plain(nbops.model_history(name).to_dict(orient="records"))


class ModelHandler(NbopsHandler):
    """``GET /nbops/api/models/NAME``: one model's versions, history and gate rules."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """One model; 404 when it is not registered."""

        def model() -> dict[str, Any]:
            _known_model(name)
            return {
                "name": name,
                "versions": _version_records(name),
                "history": _history(name),
                "gates": nbops.gates(name),
            }

        self.send(await self.call(model))


class ModelHistoryHandler(NbopsHandler):
    """``GET /nbops/api/models/NAME/history``: the model's audit log."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The audit events of one model, oldest first."""

        def events() -> dict[str, Any]:
            _known_model(name)
            return {"name": name, "events": _history(name)}

        self.send(await self.call(events))


class TransitionHandler(NbopsHandler):
    """``POST /nbops/api/models/NAME/versions/N/transition``: move a version (gates
    apply; ``force`` with a ``reason`` overrides them)."""

    @web.authenticated
    @authorized
    async def post(self, name: str, version: str) -> None:
        """Move the version to ``stage``; 400 with the gate table when a gate blocks it."""
        body = self.json_object()
        if "stage" not in body:
            raise web.HTTPError(
                400,
                f"say which stage to move {name} v{version} to: "
                f'{{"stage": one of {", ".join(STAGE_NAMES)}, "reason": "..."}}',
            )
        stage = body["stage"]
        if stage is not None and (
            not isinstance(stage, str)
            or stage.strip().lower() not in {s.lower() for s in STAGE_NAMES}
        ):
            raise web.HTTPError(
                400, f"unknown stage {stage!r}; use one of {', '.join(STAGE_NAMES)}"
            )
        if isinstance(stage, str) and stage.strip().lower() == "none":
            stage = None
        reason = _reason(body)
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise web.HTTPError(
                400,
                "force must be true or false (true overrides failed "
                "promotion gates and needs a reason)",
            )

        def move() -> dict[str, Any]:
            _known_model(name, int(version))
            return nbops.transition(name, int(version), stage, reason=reason, force=force)

        self.send(await self.call(move))


class RollbackHandler(NbopsHandler):
    """``POST /nbops/api/models/NAME/rollback``: the previous Production version back."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Roll the model back; 400 when there is nothing to roll back to."""
        reason = _reason(self.json_object())

        def back() -> dict[str, Any]:
            _known_model(name)
            return nbops.rollback(name, reason=reason)

        self.send(await self.call(back))


def _reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise web.HTTPError(400, "reason must be a string")
    return reason.strip() or None if reason else None


def _store_for(root_dir: str | None) -> Path:
    """The store this server shows: $NBOPS_STORE if set, else the nearest ``.nbops``
    upward from the server's root folder, else ``<root>/.nbops``. It is exported as
    NBOPS_STORE so that kernels started by this server write where the sidebar reads."""
    if os.environ.get("NBOPS_STORE"):
        return nbops.get_store_path()
    root = Path(root_dir or os.getcwd()).expanduser().resolve()
    found = next(
        (d / ".nbops" for d in (root, *root.parents) if (d / ".nbops").is_dir()), root / ".nbops"
    )
    os.environ["NBOPS_STORE"] = str(found)
    return nbops.set_store(found)


def setup_handlers(web_app: Any, root_dir: str | None = None) -> Path:
    """Add the nbops routes to a jupyter_server web app; returns the store folder."""
    store = _store_for(root_dir)
    base = url_path_join(web_app.settings.get("base_url", "/"), "nbops", "api")
    routes = [
        (r"/?", InfoHandler),
        (r"/runs/?", RunsHandler),
        (r"/runs/(?P<run_id>[^/]+)/?", RunHandler),
        (r"/runs/(?P<run_id>[^/]+)/metrics/(?P<key>.+)", MetricHistoryHandler),
        (r"/models/?", ModelsHandler),
        (r"/models/(?P<name>[^/]+)/?", ModelHandler),
        (r"/models/(?P<name>[^/]+)/history/?", ModelHistoryHandler),
        (r"/models/(?P<name>[^/]+)/versions/(?P<version>[0-9]+)/transition/?", TransitionHandler),
        (r"/models/(?P<name>[^/]+)/rollback/?", RollbackHandler),
    ]
    web_app.add_handlers(".*$", [(base + path, handler) for path, handler in routes])
    return store
