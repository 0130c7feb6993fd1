"""A real JupyterLab for browser tests: a free 127.0.0.1 port, a token, its own config,
runtime and home folders, no news or update pop-ups, the nbops server extension on.

    with running_lab(work, store, ready="/nbops/api/runs") as (base, token):
        ...  # drive Debian's Chromium (CHROMIUM, CHROMIUM_ARGS) at f"{base}/lab?token={token}"
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# as root Chromium needs --no-sandbox; the rest keep it off the (closed) network
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(work: Path, store: Path) -> dict[str, str]:
    """Environment for JupyterLab (and helper processes) over ``store``, with config,
    runtime and home inside ``work``. Writes the config it needs."""
    config = work / "config"
    news = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # the server extension is enabled explicitly too, whatever the environment's config
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"nbops.server": True}}})
    )
    (work / "home").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "NBOPS_STORE": str(store),
        "HOME": str(work / "home"),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(work / "rt"),
        "PYTHONPATH": str(ROOT / "src"),
    }
    env.pop("JPY_SESSION_NAME", None)
    return env


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer {url} within {timeout} s")


@contextmanager
def running_lab(
    work: Path, store: Path, ready: str = "/api/status", timeout: float = 90
) -> Iterator[tuple[str, str]]:
    """JupyterLab serving ``work``; yields (base_url, token) once ``ready`` answers 200,
    stops it afterwards (its log tail is printed if it died)."""
    env = lab_env(work, store)
    port, token = free_port(), secrets.token_hex(16)
    log = open(work / "lab.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}{ready}?token={token}", proc, timeout)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if proc.returncode not in (0, -15, None):
            print((work / "lab.log").read_text(errors="replace")[-3000:])
