"""Run an exported service folder as a local process (for notebooks, the widget, the CLI)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .._errors import NbopsError


class ServiceStartError(NbopsError):
    """The service process did not become ready."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalService:
    """A ``serve.py`` process on 127.0.0.1. ``url``, ``stop()``, ``request_counts()``;
    also a context manager."""

    def __init__(self, path: str | os.PathLike, port: int | None = None,
                 token: str | None = None, timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser().resolve()
        if not (self.path / "serve.py").is_file():
            raise NbopsError(f"{self.path} has no serve.py; export a model there first with "
                             "nbops.export(name, path=...)")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        cmd = [sys.executable, str(self.path / "serve.py"), "--port", str(self.port)]
        if token:
            cmd += ["--token", token]
        (self.path / "logs").mkdir(exist_ok=True)
        self._stderr = open(self.path / "logs" / "service.stderr", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(cmd, cwd=self.path, stdout=subprocess.DEVNULL,
                                        stderr=self._stderr)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._stderr.close()
                err = (self.path / "logs" / "service.stderr").read_text().strip()
                raise ServiceStartError(f"the service in {self.path} exited at start-up: "
                                        f"{err[-2000:] or 'no message'}")
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
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL); its logs are flushed on the way out."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._stderr.closed:
            self._stderr.close()

    def get(self, route: str) -> str:
        req = urllib.request.Request(self.url + route)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def request_counts(self) -> dict[str, int]:
        """Requests so far by route and status, e.g. {"/invocations 200": 12}, from
        /metrics."""
        counts: dict[str, int] = {}
        pattern = re.compile(r'nbops_requests_total\{route="([^"]*)",status="(\d+)",'
                             r'version="[^"]*"\} (\d+)')
        for route, status, n in pattern.findall(self.get("/metrics")):
            key = f"{route} {status}"
            counts[key] = counts.get(key, 0) + int(n)
        return counts

    def __enter__(self) -> LocalService:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalService {self.url} {state} ({self.path})>"


def start_service(path: str | os.PathLike, port: int | None = None,
                  token: str | None = None) -> LocalService:
    """Start ``serve.py`` of an export on 127.0.0.1 and wait until ``/ping`` answers.
    Returns a LocalService (``.url``, ``.stop()``). Raises ServiceStartError with the
    service's own message when it cannot start (e.g. a changed model file)."""
    return LocalService(path, port=port, token=token)
