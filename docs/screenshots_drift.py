"""Regenerate the drift report screenshots in docs/img/ (headless Debian chromium via
Playwright's Python client; no downloaded browser):

    .venv/bin/python docs/screenshots_drift.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from playwright.sync_api import sync_playwright
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import nbops

IMG = Path(__file__).resolve().parent / "img"


def shifted_report() -> nbops.DriftReport:
    """The real-shift case of example_notebooks/04_data_and_drift.ipynb."""
    data = load_breast_cancer(as_frame=True).frame
    features = [c for c in data.columns if c != "target"][:10]
    train, rest = train_test_split(data, test_size=0.6, random_state=0, stratify=data.target)
    valid, rest = train_test_split(rest, test_size=0.5, random_state=0, stratify=rest.target)
    model = RandomForestClassifier(n_estimators=100, random_state=0)
    model.fit(train[features], train.target)
    reference = valid[features + ["target"]].assign(prediction=model.predict(valid[features]))
    weights = rest["mean radius"].rank(pct=True) ** 3
    shifted = rest.sample(n=250, replace=True, weights=weights, random_state=1)
    shifted = shifted.assign(**{"mean area": shifted["mean area"] / 100})
    current = shifted[features + ["target"]].assign(prediction=model.predict(shifted[features]))
    return nbops.drift(reference, current, target="target", prediction="prediction")


def million_row_report() -> nbops.DriftReport:
    n = 1_000_000
    r = np.random.default_rng(42)
    ref = pd.DataFrame({"amount": r.lognormal(3, 1, n), "age": r.normal(40, 12, n),
                        "channel": r.choice(["web", "app", "shop"], n, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"amount": r.lognormal(3.2, 1, n), "age": r.normal(40, 12, n),
                        "channel": r.choice(["web", "app", "shop"], n, p=[0.3, 0.5, 0.2])})
    return nbops.drift(ref, cur)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        for name, report in (("drift-report", shifted_report()),
                             ("drift-report-1m", million_row_report())):
            html = Path(tmp, f"{name}.html")
            report.to_html(html)
            page.goto(html.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot').length >= "
                f"{len(report.distributions) + 1}", timeout=30_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(IMG / f"{name}.png"), full_page=False)
            plots = page.locator(".plots")
            plots.screenshot(path=str(IMG / f"{name}-plots.png"))
            print(name, html.stat().st_size // 1024, "KiB")
        browser.close()


if __name__ == "__main__":
    main()
