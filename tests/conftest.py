"""Shared fixtures: a fresh store per test, a real IPython kernel, and `needs()`.

`needs(condition, reason)` skips a test on a user's machine that lacks something
(Chromium, a peer library); under CI (CI=true) the same situation fails instead,
because CI installs everything the suite needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kernel import Kernel  # noqa: F401 - the fixtures' kernel; tests import it from here

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
