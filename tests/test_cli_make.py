"""The make targets a new user runs first: `make demo` says what it is doing, `make test`
says what system packages it installs and why, and writes no tracked file (issue 15,
findings 2 and 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_demo_says_what_it_installs_before_installing(tmp_path):
    out = make("-n", "demo", f"VENV={tmp_path / 'venv'}")
    lines = out.stdout.splitlines()
    install = next(i for i, ln in enumerate(lines) if "pip install" in ln and ".[all]" in ln)
    said = [ln for ln in lines[:install] if ln.startswith("echo") and "installing nbops" in ln]
    assert said, out.stdout
    assert "--quiet" not in lines[install]  # pip's own progress lines show


def test_browser_says_what_it_installs_and_why_before_apt_get(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "apt-get $*" >> {calls}\necho fake-apt-ran\n')
    fake.chmod(0o755)
    out = make("browser", f"CHROMIUM={tmp_path / 'no-chromium'}", f"APT_GET={fake}")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "tests/ui" in text and "chromium" in text  # what and why
    if os.getuid() == 0:
        assert "about 130 Debian packages" in text
        assert text.index("about 130 Debian packages") < text.index("fake-apt-ran")
        assert "install -y -qq chromium" in calls.read_text()
    else:
        assert not calls.exists() and "apt-get install chromium" in text


def test_browser_installs_nothing_when_chromium_is_there(tmp_path):
    fake = tmp_path / "apt-get"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    out = make("browser", f"CHROMIUM={sys.executable}", f"APT_GET={fake}")
    assert out.returncode == 0 and out.stdout.strip() == ""


def test_browser_tests_write_screenshots_to_an_ignored_folder():
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from ui.test_lab import IMG
    finally:
        sys.path.remove(str(ROOT / "tests"))
    assert ROOT / "docs" not in IMG.parents
    probe = IMG / "probe.png"
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(probe)])
    assert ignored.returncode == 0, f"{probe} is not git-ignored"


def test_screenshots_target_writes_into_docs_on_purpose():
    out = make("-n", "screenshots", "CHROMIUM=/bin/sh")
    assert "NBOPS_SCREENSHOTS=docs/img" in out.stdout and "tests/ui" in out.stdout
