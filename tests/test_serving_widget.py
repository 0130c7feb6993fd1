"""The export widget and the CLI, driven as a user would: a real kernel, a real process."""

from __future__ import annotations

import json
import subprocess
import sys

SETUP = """
import nbops
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
X, y = load_wine(return_X_y=True, as_frame=True)
with nbops.start_run(name="w") as run:
    nbops.log_model(RandomForestClassifier(5, random_state=0).fit(X, y), signature=X)
nbops.register(run.run_id, "wine")
nbops.transition("wine", 1, "Production")
"""


def test_export_widget_exports_starts_counts_and_stops(kernel):
    assert kernel.run(SETUP)["status"] == "ok"
    code = """
import httpx
w = nbops.export_widget("wine", path="svc-widget")
display(w)
info = w.do_export()
svc = w.do_start()
body = {"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:2].values.tolist()}}
for _ in range(3):
    httpx.post(svc.url + "/invocations", json=body)
counts = w.do_refresh()
url = svc.url
w.do_stop()
print(json.dumps({"v": info["version"], "counts": counts, "running": svc.running,
                  "sample": "curl" in w.sample.value, "status": w.status.value,
                  "start_disabled": w.start_button.disabled}))
"""
    res = kernel.run("import json\n" + code)
    assert res["status"] == "ok", res["error"]
    out = json.loads(res["text"].strip().splitlines()[-1])
    assert out["v"] == 1 and out["counts"]["/invocations 200"] == 3
    assert out["running"] is False and out["sample"] and "stopped" in out["status"]
    assert out["start_disabled"] is False
    assert any("application/vnd.jupyter.widget-view+json" in d for d in res["data"])


def test_export_widget_shows_registry_errors(kernel):
    assert kernel.run(SETUP)["status"] == "ok"
    res = kernel.run("""
w = nbops.export_widget("wine", path="svc-err")
w.pick.value = "alias"; w.value.value = "nosuch"
print(w.do_export(), w.status.value)
""")
    assert res["status"] == "ok", res["error"]
    assert "no alias &#x27;nosuch&#x27;" in res["text"] and res["text"].startswith("None")


def test_cli_export_writes_a_runnable_folder(store, tmp_path):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    import nbops

    X, y = load_wine(return_X_y=True, as_frame=True)
    with nbops.start_run() as run:
        nbops.log_model(RandomForestClassifier(3, random_state=0).fit(X, y), signature=X)
    nbops.register(run.run_id, "wine")
    out = subprocess.run([sys.executable, "-m", "nbops.cli", "--store", str(store), "export",
                          "wine", "--version", "1", "--path", str(tmp_path / "svc")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "exported wine v1" in out.stdout
    assert (tmp_path / "svc" / "serve.py").is_file()
    bad = subprocess.run([sys.executable, "-m", "nbops.cli", "--store", str(store), "export",
                          "wine", "--version", "7", "--path", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no version 7" in bad.stderr
