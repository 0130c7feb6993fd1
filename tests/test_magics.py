"""%%track in a real IPython kernel: the cell behaves as untracked, and a run is recorded."""

from __future__ import annotations

import json
import time

import pytest


def last_run(kernel) -> dict:
    res = kernel.run(
        "import nbops, json; print(json.dumps(nbops.get_run(nbops.runs().run_id[0]), default=str))"
    )
    assert res["status"] == "ok", res
    return json.loads(res["text"].strip().splitlines()[-1])


def test_tracked_cell_records_params_metrics_and_code(kernel):
    res = kernel.run(
        "%%track --name first --tag team=a\n"
        "alpha = 0.5\n"
        "depth = 3\n"
        "layers = [16, 8]\n"
        "import numpy as np\n"
        "score = float(np.mean([1, 2, 3])) * alpha\n"
        "n = np.int64(7)\n"
        "for i in range(3):\n"
        "    pass\n"
        "score * 2\n"
    )
    assert res["status"] == "ok", res
    assert any(d.get("text/plain") == "2.0" for d in res["data"])  # the cell's own Out value
    run = last_run(kernel)
    assert run["name"] == "first" and run["status"] == "FINISHED"
    assert run["params"] == {"alpha": 0.5, "depth": 3, "layers": [16, 8]}
    assert run["metrics"] == {"score": 1.0}  # n is a count: another value, not a metric
    assert run["values"] == {"n": 7}  # the loop variable i is neither
    assert run["tags"] == {"team": "a"}
    assert "alpha = 0.5" in run["code"]["source"]
    assert run["env"]["packages"]["numpy"]
    assert run["duration"] >= 0


def test_tracked_cell_shows_summary_after_output(kernel):
    res = kernel.run("%%track -n summarised\nx = 1\nx + 1\n")
    kinds = [k for k, _ in res["outputs"] if k in ("execute_result", "display_data")]
    assert kinds == ["execute_result", "display_data"]
    html = res["data"][-1]["text/html"]
    assert "nbops" in html and "FINISHED" in html


def test_quiet_hides_summary(kernel):
    res = kernel.run("%%track --quiet\ny = 2\n")
    assert res["data"] == []


def test_tracked_cell_keeps_namespace_like_untracked(kernel):
    kernel.run("%%track -q\nzz = [1, 2]\ndef helper(v):\n    return v * 2\nzz2 = helper(zz[0])\n")
    res = kernel.run("print(zz, helper(3), zz2)")
    assert res["text"].strip() == "[1, 2] 6 2"


def test_semicolon_suppresses_output_like_untracked(kernel):
    res = kernel.run("%%track -q\n1 + 1;\n")
    assert res["data"] == []


def test_failed_cell_records_failed_run_and_raises_same_exception(kernel):
    res = kernel.run("%%track -n broken -q\nv = 1\nraise ValueError('boom')\n")
    assert res["status"] == "error"
    assert res["error"]["ename"] == "ValueError" and res["error"]["evalue"] == "boom"
    run = last_run(kernel)
    assert run["status"] == "FAILED"
    assert run["error"]["type"] == "ValueError" and "boom" in run["error"]["traceback"]
    assert kernel.run("print(v)")["text"].strip() == "1"  # partial effects stay, as untracked


def test_interrupted_cell_records_killed_run(kernel):
    msg_id = kernel.kc.execute(
        "%%track -n slow -q\nimport time\nfor _ in range(600):\n    time.sleep(0.1)\n"
    )
    time.sleep(1.5)
    kernel.interrupt()
    while True:
        msg = kernel.kc.get_shell_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id:
            break
    assert msg["content"]["status"] == "error"
    assert msg["content"]["ename"] == "KeyboardInterrupt"
    # ipykernel aborts requests that arrive right after an error: ask once it settled
    for _ in range(20):
        if kernel.run("pass")["status"] == "ok":
            break
        time.sleep(0.1)
    assert last_run(kernel)["status"] == "KILLED"


def test_unknown_option_is_usage_error_and_cell_not_run(kernel):
    res = kernel.run("%%track --bogus 1\nnot_run = 1\n")
    assert res["status"] == "error"
    assert res["error"]["ename"] == "UsageError"
    assert "--bogus" in res["error"]["evalue"]
    assert kernel.run("print('not_run' in dir())")["text"].strip() == "False"


def test_dataframes_read_and_created_are_fingerprinted(kernel):
    kernel.run("import pandas as pd\nsrc = pd.DataFrame({'a': range(5), 'b': list('abcde')})")
    res = kernel.run("%%track -q -n data\nout = src.assign(c=src.a * 2)\n")
    assert res["status"] == "ok", res
    run = last_run(kernel)
    assert len(run["inputs"]) == 2
    check = kernel.run(
        "from nbops.store import get_store\n"
        f"docs = [get_store().get_dataset(d) for d in {run['inputs']!r}]\n"
        "print(sorted((d['name'], tuple(d['shape'])) for d in docs))"
    )
    assert check["text"].strip() == "[('out', (5, 3)), ('src', (5, 2))]"


def test_artifacts_written_by_the_cell_are_stored(kernel):
    res = kernel.run(
        "%%track -q --artifacts 'out/*.txt'\n"
        "import os\nos.makedirs('out', exist_ok=True)\n"
        "open('out/report.txt', 'w').write('hello')\n"
    )
    assert res["status"] == "ok", res
    run = last_run(kernel)
    assert [(a["name"], a["size"]) for a in run["artifacts"]] == [("out/report.txt", 5)]


def test_extra_params_and_metrics_by_name(kernel):
    kernel.run("import math\ncfg = {'k': 1}")
    res = kernel.run("%%track -q --params cfg --metrics lr\nlr = math.sqrt(4)\nother = 'x'\n")
    assert res["status"] == "ok"
    run = last_run(kernel)
    assert run["params"]["cfg"] == {"k": 1} and run["metrics"]["lr"] == 2.0


def test_a_metrics_name_assigned_a_literal_is_only_a_metric(kernel):
    res = kernel.run("%%track -q --metrics accuracy\naccuracy = 0.93\nseed = 1\n")
    assert res["status"] == "ok"
    run = last_run(kernel)
    assert run["metrics"] == {"accuracy": 0.93} and run["params"] == {"seed": 1}


def test_unwritable_store_warns_and_cell_still_runs(kernel, tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    res = kernel.run(f"import nbops\nnbops.set_store({str(blocker / 'store')!r})\n")
    res = kernel.run("%%track\nresult_value = 40 + 2\nresult_value\n")
    assert res["status"] == "ok"
    assert any(d.get("text/plain") == "42" for d in res["data"])
    assert "nbops" in "".join(c.get("text", "") for k, c in res["outputs"] if k == "stream")
    kernel.run("nbops.set_store(None)")


def test_load_ext_does_not_import_heavy_libraries(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, time\nfrom IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\nt = time.perf_counter()\nip.run_line_magic('load_ext', 'nbops')\n"
        "dt = time.perf_counter() - t\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'plotly', 'scipy') if m in sys.modules]\n"
        "print(heavy, dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    heavy, _ = out.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("line", ["%nbops runs", "%nbops runs --experiment default"])
def test_nbops_line_magic_lists_runs(kernel, line):
    res = kernel.run(line)
    assert res["status"] == "ok" and "run_id" in res["data"][0]["text/plain"]
