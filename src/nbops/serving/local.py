"""Run an exported service folder as a local process (for notebooks, the widget, the CLI)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._errors import NbopsError, ServiceStartError

__all__ = ["CountsPoller", "LocalService", "ServiceStartError", "free_port", "start_service"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalService:
    """A ``serve.py`` process on 127.0.0.1. ``url``, ``stop()``, ``request_counts()``;
    also a context manager.

    While it runs, a background thread copies the service's canary events
    (``logs/events.jsonl``) into the audit log of ``store`` (default: the store in use
    when it started), as the service itself never imports nbops."""

    def __init__(
        self,
        path: str | os.PathLike,
        port: int | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        store: str | os.PathLike | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not (self.path / "serve.py").is_file():
            raise NbopsError(
                f"{self.path} has no serve.py; export a model there first with "
                "nbops.export(name, path=...)"
            )
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        cmd = [sys.executable, str(self.path / "serve.py"), "--port", str(self.port)]
        if token:
            cmd += ["--token", token]
        (self.path / "logs").mkdir(exist_ok=True)
        self._stderr = open(self.path / "logs" / "service.stderr", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            cmd, cwd=self.path, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        self._wait_ready(timeout)
        self._store = store
        self._events_done = threading.Event()
        self._events = threading.Thread(target=self._sync_loop, name="canary-events", daemon=True)
        self._events.start()

    def _sync_loop(self) -> None:
        """Copy new canary events to the registry every 0.2 s while the service runs."""
        events = self.path / "logs" / "events.jsonl"
        seen = -1
        while True:
            stopping = self._events_done.wait(0.2) or self.process.poll() is not None
            size = events.stat().st_size if events.is_file() else 0
            if size != seen:
                seen = size
                self.sync_events()
            if stopping:
                return

    def sync_events(self) -> int:
        """Copy the service's canary events not yet in the store; returns how many.
        Failures are kept in ``events_error`` (the service goes on)."""
        from ..store import get_store
        from .events import sync_events

        try:
            store = self._store if self._store is not None else get_store().root
            self._store = store
            n = sync_events(self.path, store=store)
        except NbopsError as exc:
            self.events_error: BaseException | None = exc
            return 0
        self.events_error = None
        return n

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._stderr.close()
                err = (self.path / "logs" / "service.stderr").read_text().strip()
                raise ServiceStartError(
                    f"the service in {self.path} exited at start-up: {err[-2000:] or 'no message'}"
                )
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.02)
        self.stop()
        raise ServiceStartError(f"the service in {self.path} was not ready after {timeout}s")

    @property
    def running(self) -> bool:
        """True while the service process runs."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL); its logs are flushed on the way out
        and its last canary events copied to the store."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._stderr.closed:
            self._stderr.close()
        events = getattr(self, "_events", None)
        if events is not None and events.is_alive():
            self._events_done.set()
            events.join(10)

    def get(self, route: str) -> str:
        """The text of ``GET route`` (with the token). Raises urllib's errors."""
        req = urllib.request.Request(self.url + route)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def request_counts(self) -> dict[str, int]:
        """Requests so far by route and status, e.g. {"/invocations 200": 12}, from
        /metrics."""
        counts: dict[str, int] = {}
        pattern = re.compile(
            r'nbops_requests_total\{route="([^"]*)",status="(\d+)",'
            r'version="[^"]*"\} (\d+)'
        )
        for route, status, n in pattern.findall(self.get("/metrics")):
            key = f"{route} {status}"
            counts[key] = counts.get(key, 0) + int(n)
        return counts

    def watch(
        self, on_counts: Callable[[dict[str, int]], Any], interval: float = 2.0, **options: Any
    ) -> CountsPoller:
        """Start a :class:`CountsPoller` that passes this service's request counts to
        ``on_counts`` every ``interval`` seconds (when they changed) until it stops."""
        return CountsPoller(self, on_counts, interval=interval, **options).start()

    def __enter__(self) -> LocalService:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalService {self.url} {state} ({self.path})>"


def start_service(
    path: str | os.PathLike, port: int | None = None, token: str | None = None
) -> LocalService:
    """Start ``serve.py`` of an export on 127.0.0.1 and wait until ``/ping`` answers.
    Returns a LocalService (``.url``, ``.stop()``). Raises ServiceStartError with the
    service's own message when it cannot start (e.g. a changed model file)."""
    return LocalService(path, port=port, token=token)


class CountsPoller:
    """Polls a running service's ``/metrics`` in a daemon thread and hands its request
    counts to ``on_counts`` -- at once, then whenever they change (checked every
    ``interval`` seconds).

    It stops by itself when the service process ends (then ``on_exit(returncode)`` is
    called) or ``keep_going()`` returns False (e.g. its widget was closed), and on
    :meth:`stop`. A failed poll while the service still runs is kept in ``error`` and
    polling goes on. This is what keeps the export widget's counts live; it is plain
    Python, usable and testable without a browser."""

    def __init__(
        self,
        service: LocalService,
        on_counts: Callable[[dict[str, int]], Any],
        interval: float = 2.0,
        keep_going: Callable[[], bool] | None = None,
        on_exit: Callable[[int | None], Any] | None = None,
    ) -> None:
        if not interval > 0:
            raise NbopsError(
                f"the poll interval must be a positive number of seconds, not {interval!r}"
            )
        self.service = service
        self.on_counts = on_counts
        self.interval = float(interval)
        self.keep_going = keep_going
        self.on_exit = on_exit
        self.counts: dict[str, int] | None = None
        self.polls = 0
        self.error: BaseException | None = None
        self.reason: str | None = None  # why it stopped: "stopped", "service exited", "closed"
        self._halt = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, daemon=True, name=f"nbops-counts-{service.port}"
        )

    def start(self) -> CountsPoller:
        """Start polling; returns self."""
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """True while the polling thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait (up to ``timeout`` s) for the thread to end."""
        self._halt.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the polling thread to end."""
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._halt.is_set():
            if not self.service.running:
                self.reason = "service exited"
                if self.on_exit is not None:
                    self._call(self.on_exit, self.service.process.returncode)
                return
            if self.keep_going is not None and not self.keep_going():
                self.reason = "closed"
                return
            try:
                counts = self.service.request_counts()
            except (OSError, ValueError) as exc:  # URLError is an OSError
                self.error = exc  # a stopping service: the next round sees it exited
            else:
                self.polls += 1
                self.error = None
                if counts != self.counts:
                    self.counts = counts
                    self._call(self.on_counts, counts)
            self._halt.wait(self.interval)
        self.reason = "stopped"

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(*args)
        except Exception as exc:  # noqa: BLE001 - a broken view must not kill the poller
            self.error = exc
