"""The export widget: pick a model version, export it, start / stop a local service.

A thin view: Export calls :func:`nbops.export`, Start calls
:func:`nbops.start_service`, the counts come from the service's ``/metrics``
(:meth:`LocalService.request_counts`) and stay live through a
:class:`nbops.serving.local.CountsPoller` (a background thread that polls every
``refresh_every`` seconds while the service runs and the widget is open). Nothing
here is needed to do the same in code.
"""

from __future__ import annotations

import json
from typing import Any


class ExportWidget:
    """``nbops.export_widget()``: ``.widget`` is the ipywidgets box (shown by display)."""

    def __init__(
        self, name: str | None = None, path: str = "service", refresh_every: float = 2.0
    ) -> None:
        import ipywidgets as w

        from .. import registry
        from ..store import get_store

        names = get_store().model_names()
        _ = registry  # the registry module is the source of the names and versions
        self.service: Any = None
        self.poller: Any = None
        self.refresh_every = refresh_every
        self.info: dict[str, Any] | None = None
        self.model = w.Dropdown(
            options=names,
            value=name if name in names else (names[0] if names else None),
            description="model",
        )
        self.pick = w.ToggleButtons(
            options=["version", "stage", "alias"], value="stage", description="pick by"
        )
        self.value = w.Text(value="Production", description="value")
        self.path = w.Text(value=str(path), description="folder")
        self.export_button = w.Button(description="Export", button_style="primary")
        self.start_button = w.Button(description="Start", disabled=True)
        self.stop_button = w.Button(description="Stop", disabled=True)
        self.refresh_button = w.Button(description="Refresh counts", disabled=True)
        self.status = w.HTML(value="")
        self.sample = w.HTML(value="")
        self.counts = w.HTML(value="")
        self.export_button.on_click(lambda _: self.do_export())
        self.start_button.on_click(lambda _: self.do_start())
        self.stop_button.on_click(lambda _: self.do_stop())
        self.refresh_button.on_click(lambda _: self.do_refresh())
        self.widget = w.VBox(
            [
                w.HBox([self.model, self.pick]),
                w.HBox([self.value, self.path]),
                w.HBox(
                    [self.export_button, self.start_button, self.stop_button, self.refresh_button]
                ),
                self.status,
                self.sample,
                self.counts,
            ]
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _say(self, text: str, error: bool = False) -> None:
        import html

        colour = "#b00020" if error else "inherit"
        self.status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def do_export(self) -> dict[str, Any] | None:
        """Export the chosen version to the folder in the form; returns export's info,
        or None after showing the error."""
        from .._errors import NbopsError
        from ..serving.export import export

        if self.service is not None:
            self.do_stop()
        value: Any = self.value.value.strip()
        if self.pick.value == "version":
            value = int(value) if value.isdigit() else value
        try:
            self.info = export(
                self.model.value, path=self.path.value, overwrite=True, **{self.pick.value: value}
            )
        except NbopsError as exc:
            self._say(str(exc), error=True)
            return None
        self._say(
            f"exported {self.info['model_name']} v{self.info['version']} to {self.info['path']}"
        )
        self.start_button.disabled = False
        return self.info

    def do_start(self) -> Any:
        """Start the exported service locally and show where it listens; returns the
        LocalService, or None after showing the error."""
        import html

        from .. import registry
        from .._errors import NbopsError
        from ..serving.export import sample_request
        from ..serving.local import start_service

        if self.info is None:
            return None
        try:
            self.service = start_service(self.info["path"])
        except NbopsError as exc:
            self._say(str(exc), error=True)
            return None
        rec = registry.get_model(self.info["model_name"], version=self.info["version"])
        body = json.dumps(sample_request(rec))
        self._say(f"running at {self.service.url}")
        self.sample.value = (
            "<pre>"
            + html.escape(
                f"curl -s {self.service.url}/invocations -H 'Content-Type: application/json' "
                f"-d '{body}'"
            )
            + "</pre>"
        )
        self.start_button.disabled = True
        self.stop_button.disabled = self.refresh_button.disabled = False
        self.show_counts({})
        self.poller = self.service.watch(
            self.show_counts,
            interval=self.refresh_every,
            keep_going=self.is_open,
            on_exit=self._service_exited,
        )
        return self.service

    def show_counts(self, counts: dict[str, int]) -> None:
        """Render request counts (called by the poller thread and by Refresh)."""
        import html
        import time

        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in sorted(counts.items())
        )
        live = f"live, every {self.refresh_every:g} s; updated {time.strftime('%H:%M:%S')}"
        self.counts.value = (
            f"<table><tr><th>route status</th><th>requests</th></tr>{rows}"
            f"</table><small>{live}</small>"
        )

    def do_refresh(self) -> dict[str, int]:
        """Read the running service's request counts from /metrics ({} when stopped)."""
        if self.service is None or not self.service.running:
            return {}
        counts = self.service.request_counts()
        self.show_counts(counts)
        return counts

    def is_open(self) -> bool:
        """False once the ipywidgets view was closed (its comm is gone)."""
        return self.widget.comm is not None

    def _service_exited(self, returncode: int | None) -> None:
        if self.service is None:
            return
        self._say(
            f"the service at {self.service.url} exited (status {returncode}); see "
            f"{self.service.path / 'logs' / 'service.stderr'}",
            error=returncode != 0,
        )
        self.service.stop()  # already ended: this only closes its stderr file
        self.service = None
        self.start_button.disabled = self.info is None
        self.stop_button.disabled = self.refresh_button.disabled = True

    def do_stop(self) -> None:
        """Stop the count poller and the local service."""
        if self.poller is not None:
            self.poller.stop()
            self.poller = None
        if self.service is not None:
            self.service.stop()
            self._say(f"stopped {self.service.url}")
            self.service = None
        self.start_button.disabled = self.info is None
        self.stop_button.disabled = self.refresh_button.disabled = True

    def close(self) -> None:
        """Stop the counts poller and the service, and close the widget."""
        self.do_stop()
        self.widget.close()


def export_widget(
    name: str | None = None, path: str = "service", refresh_every: float = 2.0
) -> ExportWidget:
    """A widget to export model ``name`` and run it locally (display it in a cell); the
    request counts of a running service refresh every ``refresh_every`` seconds."""
    return ExportWidget(name, path, refresh_every)
