"""The jupyter_server extension behind the nbops JupyterLab sidebar.

Installing nbops enables it (``etc/jupyter/jupyter_server_config.d/nbops.json`` in the
wheel). It serves an authenticated REST API under ``<base_url>/nbops/api/`` whose
handlers call the public nbops API only; see :mod:`nbops.server.handlers`.
"""

from __future__ import annotations

from typing import Any

EXTENSION_NAME = "nbops.server"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION_NAME}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (for ``jupyter labextension develop``)."""
    return [{"src": "../labextension", "dest": "nbops-labextension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import setup_handlers

    store = setup_handlers(serverapp.web_app, root_dir=getattr(serverapp, "root_dir", None))
    serverapp.log.info(
        "nbops: REST API at %snbops/api/ on the store %s",
        serverapp.web_app.settings.get("base_url", "/"),
        store,
    )


# the name older jupyter_server versions look for
load_jupyter_server_extension = _load_jupyter_server_extension
