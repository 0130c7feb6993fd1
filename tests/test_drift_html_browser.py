"""The HTML drift report draws its plots in a real browser with no network: headless
Debian chromium via Playwright's Python client."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from conftest import needs

import nbops

CHROMIUM = "/usr/bin/chromium"


def test_html_report_renders_plots_offline(tmp_path):
    needs(os.path.exists(CHROMIUM), f"Debian chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        needs(False, "playwright's Python client (pip install playwright)")
    r = np.random.default_rng(0)
    ref = pd.DataFrame({"a": r.normal(size=5000), "c": r.choice(["x", "y"], 5000)})
    cur = pd.DataFrame({"a": r.normal(1, 1, 5000), "c": r.choice(["x", "y"], 5000)})
    path = tmp_path / "report.html"
    nbops.drift(ref, cur).to_html(path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        requests = []
        page.on("request", lambda req: requests.append(req.url))
        page.goto(path.as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot').length === 3", timeout=30_000
        )
        bars = page.locator(".js-plotly-plot .bars path").count()
        text = page.inner_text("body")
        browser.close()
    assert bars > 0
    assert "Dataset drift detected" in text or "No dataset drift" in text
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests
