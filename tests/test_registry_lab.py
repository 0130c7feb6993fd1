"""The registry widget in a real JupyterLab, driven by Debian's Chromium via Playwright.

It renders, and a stage move typed and clicked in the browser reaches the store.
With NBOPS_UPDATE_SCREENSHOTS=1 it also writes docs/img/registry_widget.png.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs
from labserver import CHROMIUM, ROOT, running_lab

SETUP = """\
import numpy as np, pandas as pd, nbops
from nbops import registry
from sklearn.ensemble import RandomForestClassifier
rng = np.random.default_rng(7)
X = pd.DataFrame({"tenure": rng.integers(1, 72, 300), "monthly": rng.normal(70, 20, 300),
                  "support_calls": rng.poisson(2, 300)})
y = ((X.support_calls > 2) | (X.tenure < 12)).astype(int)
for depth in (3, 5, 8):
    with nbops.start_run(name=f"rf-depth{depth}", experiment="churn") as run:
        rf = RandomForestClassifier(n_estimators=20, max_depth=depth, random_state=0).fit(X, y)
        nbops.log_model(rf, signature=X)
        run.log_params({"max_depth": depth, "n_estimators": 20})
        run.log_metrics({"accuracy": rf.score(X, y), "roc_auc": 0.80 + depth / 100})
    nbops.register(run.run_id, "churn", description=f"random forest, depth {depth}")
registry.transition("churn", 1, "Production", reason="first model")
registry.transition("churn", 2, "Production", reason="higher AUC on the March holdout")
registry.transition("churn", 3, "Staging", reason="candidate: deeper trees")
registry.set_alias("churn", "champion", 2, reason="serves the app")
"""


def _notebook(path: Path) -> None:
    cells = [SETUP, "w = nbops.registry_widget('churn')\nw.version.value = 2\nw"]
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": c,
            }
            for c in cells
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@pytest.fixture
def lab(tmp_path):
    needs(os.path.exists(CHROMIUM), f"Debian chromium at {CHROMIUM}")
    work = tmp_path / "lab"
    work.mkdir()
    _notebook(work / "registry.ipynb")
    store = tmp_path / "store"
    with running_lab(work, store) as (base, token):
        yield {"url": f"{base}/lab/tree/registry.ipynb?token={token}", "store": store}


def test_widget_renders_and_moves_a_version_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            select = page.locator(".jp-Dialog button:has-text('Select')")
            try:  # JupyterLab may ask which kernel to start
                select.wait_for(timeout=10_000)
                select.click()
            except Exception:  # noqa: BLE001 - no dialog: the kernel was already chosen
                pass
            page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=60_000)
            news = page.locator(".jp-Notification-Toast button:has-text('No')")
            if news.count():
                news.first.click()
            page.click(".lm-MenuBar-item:has-text('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            try:
                widget = page.wait_for_selector(".nbops-reg", timeout=60_000)
            except Exception:
                page.screenshot(path=str(lab["store"].parent / "lab-failure.png"))
                print("screenshot of the failure:", lab["store"].parent / "lab-failure.png")
                raise
            page.wait_for_selector(".nbops-reg-lin", timeout=30_000)
            text = widget.inner_text()
            assert "churn" in text and "Production" in text and "@champion" in text
            if os.environ.get("NBOPS_UPDATE_SCREENSHOTS") == "1":
                page.keyboard.press("Escape")
                page.keyboard.press("Control+b")  # hide the file browser for a wider view
                page.wait_for_timeout(500)
                widget.scroll_into_view_if_needed()
                widget.screenshot(path=str(ROOT / "docs" / "img" / "registry_widget.png"))
            # type a reason and move v3 to Production in the browser
            page.select_option(".nbops-reg select >> nth=1", label="v3")
            page.select_option(".nbops-reg select >> nth=2", label="Production")
            page.fill(".nbops-reg input[placeholder^='why?']", "promoted from the browser")
            page.click(".nbops-reg button:has-text('Move')")
            page.wait_for_selector(".nbops-reg :text('v3 is now Production')", timeout=30_000)
        finally:
            browser.close()

    env = {**os.environ, "NBOPS_STORE": str(lab["store"])}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import nbops, json; h = nbops.model_history('churn');"
            "print(json.dumps(h.tail(2)[['version', 'to', 'reason']].values.tolist()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [
        [3, "Production", "promoted from the browser"],
        [2, "Archived", "superseded by version 3: promoted from the browser"],
    ]
