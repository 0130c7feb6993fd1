"""nbops.compare_widget in a real JupyterLab, rendered by Debian's Chromium (headless, via
Playwright's Python client): the widget draws its run table and plotly panes, the
"tag as best" button writes the tag to the store, and the screenshots for
docs/compare-and-sweep.md are taken here.

Reuses the lab harness of tests/ui/test_lab.py (ports, server wait, browser flags).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs
from labserver import CHROMIUM, CHROMIUM_ARGS, lab_env, running_lab

from .test_lab import IMG, run_cell, store_api

pytestmark = pytest.mark.timeout(240)

POPULATE = """
import numpy as np, nbops
from sklearn.datasets import load_wine
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler
X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)
def train(alpha, penalty, epochs=6):
    clf = SGDClassifier(alpha=alpha, penalty=penalty, random_state=0)
    for e in range(epochs):
        clf.partial_fit(X[::2], y[::2], classes=np.unique(y))
        nbops.log_metric("val_accuracy", clf.score(X[1::2], y[1::2]), step=e)
    return {"accuracy": clf.score(X[1::2], y[1::2])}
nbops.sweep(train, {"alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "penalty": ["l2", "l1"]},
            objective="accuracy", experiment="wine", name="sgd", progress=False)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free loopback port over a store with a 10-trial sweep."""
    needs(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium")
    import nbformat

    work = tmp_path_factory.mktemp("lab-compare")
    store = work / "store"
    subprocess.run(
        [sys.executable, "-c", POPULATE], env=lab_env(work, store), check=True, timeout=120
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import nbops"),
        nbformat.v4.new_code_cell(
            'view = nbops.compare_widget(experiment="wine", metric="accuracy")\nview'
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, work / "compare.ipynb")
    with running_lab(work, store) as (base, token):
        yield base, token, store


def test_compare_widget_renders_and_tags_the_best_run(lab):
    from playwright.sync_api import sync_playwright

    base, token, store = lab
    IMG.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 980}).new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/lab/tree/compare.ipynb?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
        page.wait_for_function(
            "() => /ipykernel\\)?\\s*\\|\\s*Idle/.test("
            "document.querySelector('#jp-main-statusbar')?.textContent || '')",
            timeout=60_000,
        )
        page.evaluate(
            "() => document.querySelector('.jp-SideBar.jp-mod-left .lm-mod-current')?.click()"
        )  # fold the file browser: more room for the widget
        run_cell(page, 0)
        run_cell(page, 1)
        output = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-Cell-outputArea")
        output.locator(".nbops-cmp table").wait_for()
        assert "11 of 11 runs" in output.inner_text()  # 10 trials and their parent
        table_text = output.locator(".nbops-cmp table").inner_text()
        assert "sgd-1" in table_text and "penalty" in table_text

        # select two trials for the diff, then show the table filtered to finished trials
        select = output.locator(".widget-select-multiple select")
        values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        select.select_option(values[1:3])
        output.locator(".widget-checkbox input").check()
        page.wait_for_function("() => document.querySelector('.nbops-cmp th') !== null")
        output.screenshot(path=str(IMG / "compare-widget.png"))

        output.locator(".lm-TabBar-tab", has_text="Diff").click()
        output.locator("text=cell source").or_(
            output.locator("td", has_text="alpha")
        ).first.wait_for()
        output.locator(".lm-TabBar-tab", has_text="Parallel").click()
        output.locator(".js-plotly-plot .parcoords").wait_for()
        output.screenshot(path=str(IMG / "compare-parallel.png"))
        output.locator(".lm-TabBar-tab", has_text="Curves").click()
        output.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for()

        output.locator(".lm-TabBar-tab", has_text="Best").click()
        output.locator("button", has_text="tag as best").click()
        output.locator("text=tagged best").wait_for()
        browser.close()

    best = store_api(store, "nbops.best_run('accuracy', experiment='wine')")
    assert best["tags"]["best"] == "true" and best["tags"]["best_metric"] == "accuracy"
