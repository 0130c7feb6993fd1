"""What the docs promise about the command line and the service matches what they do
(issue 15, finding 11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_deployment_docs_list_the_canary_gauge_as_canary_only():
    text = " ".join((ROOT / "docs" / "deployment.md").read_text().split())
    runtime = (ROOT / "src" / "nbops" / "serving" / "runtime" / "metrics.py").read_text()
    assert "while a canary runs" in runtime  # what the service does
    assert "only while a canary runs, `nbops_canary_share" in text


def test_drift_docs_promise_the_exit_codes_the_command_has(tmp_path):
    text = " ".join((ROOT / "docs" / "data-and-drift.md").read_text().split())
    assert "0 otherwise, 2 on an error" in text
    out = subprocess.run(
        [sys.executable, "-m", "nbops.cli", "drift", "nope.csv", "nope.csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
