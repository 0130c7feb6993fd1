"""Shared fixtures: a fresh store per test, a real IPython kernel, and `needs()`.

`needs(condition, reason)` skips a test on a user's machine that lacks something
(Chromium, a peer library); under CI (CI=true) the same situation fails instead,
because CI installs everything the suite needs.
"""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the %%track corpus notebooks are run by test_track_corpus.py, not collected by nbval
collect_ignore_glob = ["corpus/*"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def needs(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI) when ``condition`` is false."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def pytest_configure(config):
    # Notebooks run by nbval and tests not using `store` write here, never into ./.nbops
    import tempfile

    os.environ["NBOPS_STORE"] = tempfile.mkdtemp(prefix="nbops-session-store-")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh, empty store folder used by nbops for this test."""
    import nbops

    path = tmp_path / "store"
    monkeypatch.setenv("NBOPS_STORE", str(path))
    nbops.set_store(None)
    yield path
    nbops.set_store(None)


class Kernel:
    """A real IPython kernel (ipykernel) driven over ZMQ, as Jupyter does."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120) -> dict:
        """Execute code; returns {status, outputs, text, error, data}."""
        msg_id = self.kc.execute(code)
        outputs, text, data = [], [], []
        error = None
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(
                    f"kernel did not finish within {timeout} s: {code[:80]}"
                ) from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            outputs.append((kind, content))
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                data.append(content["data"])
            elif kind == "error":
                error = content
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        if error is None and reply["content"]["status"] == "error":
            error = reply["content"]  # e.g. UsageError: printed, not sent as an error message
        return {
            "status": reply["content"]["status"],
            "outputs": outputs,
            "text": "".join(text),
            "error": error,
            "data": data,
        }

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One real kernel per test module, with its own store, nbops loaded."""
    work = tmp_path_factory.mktemp("kernel")
    env = {**os.environ, "NBOPS_STORE": str(work / "store"), "PYTHONPATH": str(ROOT / "src")}
    env.pop("JPY_SESSION_NAME", None)
    k = Kernel(work, env)
    k.store = work / "store"
    k.cwd = work
    res = k.run("%load_ext nbops")
    assert res["status"] == "ok", res
    yield k
    k.close()


@pytest.fixture
def jp_asyncio_loop():
    """Stand-ins for pytest-jupyter's two autouse fixtures. tests/test_server.py loads
    that plugin, whose fixtures would otherwise close the current event loop after every
    test of the session and so break Playwright's sync API in the browser tests;
    test_server.py uses the real ones."""
    yield None


@pytest.fixture
def jp_server_cleanup():
    yield
