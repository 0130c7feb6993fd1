"""The JupyterLab extension in a real browser: JupyterLab on a loopback port with a
token, Debian's Chromium driven headless by Playwright's Python client.

One walk through the user's path: open a notebook, run a ``%%track`` cell, see the
badge and the new run in the nbops sidebar, move a model version to Production from
the sidebar, and check the store changed. Screenshots land in tests/ui/screenshots/
(git-ignored); `make screenshots` writes them to docs/img/ for the docs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs
from labserver import CHROMIUM, CHROMIUM_ARGS, ROOT, running_lab

# screenshots go to a git-ignored folder, so the suite changes no tracked file;
# `make screenshots` sets NBOPS_SCREENSHOTS=docs/img to refresh the docs' pictures
IMG = Path(os.environ.get("NBOPS_SCREENSHOTS") or ROOT / "tests" / "ui" / "screenshots")
if not IMG.is_absolute():
    IMG = ROOT / IMG
IMG.mkdir(parents=True, exist_ok=True)
LABEXT = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbops-labextension"

TRACKED_CELL = """%%track --name ui-demo --experiment lab --metrics accuracy
alpha = 0.5
accuracy = 0.875"""

pytestmark = pytest.mark.timeout(240)


def notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbops"),
        nbformat.v4.new_code_cell(TRACKED_CELL),
        nbformat.v4.new_code_cell("print(alpha * 2)"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def register_model(store: Path) -> None:
    """Model 'churn' v1 and v2 in the store, through the public API (a subprocess, so
    this test process keeps no store state of its own)."""
    code = """
import numpy as np, pandas as pd, nbops
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = pd.DataFrame({"x1": rng.normal(size=40), "x2": rng.normal(size=40)})
y = (X["x1"] > X["x2"]).astype(int)
for c in (0.5, 1.0):
    with nbops.start_run(name=f"train-C{c}", experiment="churn") as run:
        nbops.log_model(LogisticRegression(C=c).fit(X, y), signature=X)
        run.log_metric("accuracy", 0.8 + c / 10)
    nbops.register(run.run_id, "churn")
nbops.set_gates("churn", ["accuracy >= 0.8"])
nbops.transition("churn", 2, "Staging")
"""
    env = {**os.environ, "NBOPS_STORE": str(store)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free 127.0.0.1 port: yields (base_url, token, store)."""
    needs(
        Path(CHROMIUM).exists(),
        f"{CHROMIUM} is missing: apt-get install chromium (make test does it as root)",
    )
    needs(
        (LABEXT / "package.json").exists(),
        f"the nbops JupyterLab extension is not built into {LABEXT}: run `make labext`",
    )
    work = tmp_path_factory.mktemp("lab")
    store = work / "store"
    register_model(store)
    notebook(work / "demo.ipynb")
    with running_lab(work, store, ready="/nbops/api/runs") as (base, token):
        yield base, token, store


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    base, token, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 860})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/lab/tree/demo.ipynb?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
        # the kernel is up once the status bar says "Python 3 (ipykernel) | Idle"
        page.wait_for_function(
            "() => /ipykernel\\)?\\s*\\|\\s*Idle/.test("
            "document.querySelector('#jp-main-statusbar')?.textContent || '')",
            timeout=60_000,
        )
        yield page
        context.close()
        browser.close()


def store_api(store: Path, code: str):
    """Evaluate ``code`` against the store with the public API in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", f"import json, nbops; print(json.dumps({code}, default=str))"],
        env={**os.environ, "NBOPS_STORE": str(store)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def run_cell(page, index: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def test_tracked_cell_run_shows_in_the_sidebar_and_a_version_moves_to_production(page, lab):
    _, _, store = lab
    IMG.mkdir(parents=True, exist_ok=True)

    # 1. run the notebook's %load_ext and %%track cells
    run_cell(page, 0)
    page.locator(".jp-Notebook .jp-Cell").nth(0).locator(
        ".jp-InputPrompt", has_text="[1]"
    ).wait_for()
    # the sidebar is open while the tracked cell runs: it must refresh by itself
    page.locator(".jp-SideBar.jp-mod-left [data-id='nbops-sidebar']").click()
    page.locator(".nbops-sidebar .nbops-run").first.wait_for()  # the two training runs
    run_cell(page, 1)
    badge = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".nbops-badge[data-run-id]")
    badge.wait_for()
    run_id = badge.get_attribute("data-run-id")
    assert badge.get_attribute("data-status") == "FINISHED"

    # the badge names the run the kernel wrote to the store
    newest = store_api(store, "nbops.run_page(limit=1, parent='none')['runs'][0]")
    assert newest["run_id"] == run_id
    assert newest["name"] == "ui-demo" and newest["metrics"] == {"accuracy": 0.875}
    assert page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".nbops-badge").count() == 0

    # 2. the sidebar lists the run with its key metric, well before its 15 s poll
    row = page.locator(f".nbops-run[data-run-id='{run_id}']")
    row.wait_for(timeout=8_000)
    assert "ui-demo" in row.inner_text() and "accuracy=0.875" in row.inner_text()
    assert row.get_attribute("data-status") == "FINISHED"
    page.screenshot(path=str(IMG / "lab-sidebar.png"))

    # 3. the run detail view
    row.click()
    detail = page.locator(".nbops-run-detail")
    detail.wait_for(state="visible")
    assert run_id in detail.inner_text() and "alpha" in detail.inner_text()
    page.screenshot(path=str(IMG / "lab-run-detail.png"))
    detail.locator(".nbops-back").click()

    # 4. move churn v1 to Production from the sidebar, with a reason
    version = page.locator(".nbops-version[data-model='churn'][data-version='1']")
    assert version.get_attribute("data-stage") == "None"
    version.locator(".nbops-stage-select").select_option("Production")
    version.locator(".nbops-reason").fill("passed the UI review")
    version.locator(".nbops-move").click()
    page.wait_for_selector(
        ".nbops-version[data-model='churn'][data-version='1'][data-stage='Production']"
    )
    # the gate rules and each version's last verdict (the move evaluated them)
    assert (
        "accuracy >= 0.8"
        in page.locator(".nbops-model[data-model='churn'] .nbops-gate-rules").inner_text()
    )
    gates = page.locator(".nbops-version[data-model='churn'][data-version='1'] .nbops-gates")
    gates.wait_for()
    assert gates.inner_text() == "gates passed 1/1 (Production)"
    assert "PASS accuracy >= 0.8" in gates.get_attribute("title")
    page.screenshot(path=str(IMG / "lab-registry.png"))

    # 5. the store changed, with the reason in the audit log
    record = store_api(store, "nbops.get_model('churn', 1)")
    assert record["stage"] == "Production"
    last = store_api(store, "nbops.model_history('churn').iloc[-1].to_dict()")
    assert (last["action"], last["to"], last["reason"]) == (
        "transition",
        "Production",
        "passed the UI review",
    )
    assert store_api(store, "nbops.get_model('churn', 2)['stage']") == "Staging"


def test_toggle_track_command_adds_and_removes_the_magic(page, lab):
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode, cell selected
    page.keyboard.press("Control+Alt+t")
    cell.locator(".nbops-badge").wait_for()
    assert cell.locator(".jp-InputArea-editor").inner_text().startswith("%%track")
    page.screenshot(path=str(IMG / "lab-tracked-cell.png"))
    page.keyboard.press("Control+Alt+t")
    cell.locator(".nbops-badge").wait_for(state="detached")
    assert not cell.locator(".jp-InputArea-editor").inner_text().startswith("%%track")
