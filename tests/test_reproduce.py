"""nbops.reproduce(run_id) in a real kernel: re-run a recorded cell, compare, warn."""

from __future__ import annotations

import json

CELL = "%%track -q -n original\nalpha = 0.5\nscore = float((data * alpha).sum())\n"


def run_py(kernel, code: str) -> str:
    res = kernel.run(code)
    assert res["status"] == "ok", res
    return res["text"].strip().splitlines()[-1] if res["text"].strip() else ""


def last_id(kernel, name: str) -> str:
    return run_py(kernel, f"import nbops\nprint(nbops.runs(filter=\"name == '{name}'\").run_id[0])")


def test_reproduce_reruns_with_recorded_params_and_metrics_match(kernel):
    kernel.run("import numpy as np\ndata = np.arange(10.0)")
    assert kernel.run(CELL)["status"] == "ok"
    original = last_id(kernel, "original")
    kernel.run("alpha = 99")  # the namespace drifted; the recorded param wins
    out = run_py(
        kernel,
        f"import json, warnings\nwith warnings.catch_warnings(record=True) as w:\n"
        f"    warnings.simplefilter('always')\n    r = nbops.reproduce({original!r})\n"
        "print(json.dumps([r.run_id, r.status, r.matches, r.differences, len(w)]))",
    )
    run_id, status, matches, differences, n_warnings = json.loads(out)
    assert status == "FINISHED" and matches and differences == [] and n_warnings == 0
    new = json.loads(run_py(kernel, f"print(json.dumps(nbops.get_run({run_id!r}), default=str))"))
    assert new["tags"]["reproduced_from"] == original
    assert new["params"]["alpha"] == 0.5 and new["metrics"]["score"] == 22.5


def test_reproduce_reports_metric_difference_and_warns_on_new_data(kernel):
    kernel.run("import numpy as np\ndata = np.arange(10.0)")
    assert kernel.run(CELL)["status"] == "ok"
    original = last_id(kernel, "original")
    kernel.run("data = np.arange(12.0)")
    res = kernel.run(
        f"r = nbops.reproduce({original!r})\nprint(r.metrics.to_json(orient='records'))"
    )
    assert res["status"] == "ok", res
    rows = json.loads(next(line for line in res["text"].splitlines() if line.startswith("[{")))
    score = next(r for r in rows if r["metric"] == "score")
    assert score["original"] == 22.5 and score["reproduced"] == 33.0
    assert score["difference"] == 10.5 and score["same"] is False
    assert "ReproduceWarning" in res["text"] and "input data differ" in res["text"]


def test_reproduce_warns_when_package_versions_differ(kernel):
    kernel.run("import numpy as np\ndata = np.arange(10.0)")
    assert kernel.run(CELL)["status"] == "ok"
    original = last_id(kernel, "original")
    # the original was recorded under another numpy: edit its record as an old run would be
    kernel.run(
        "from nbops.store import get_store\n"
        f"doc = nbops.get_run({original!r})\n"
        "doc['env']['packages']['numpy'] = '0.0.1'\n"
        f"get_store().update_run({original!r}, {{'env': doc['env']}})"
    )
    res = kernel.run(f"r = nbops.reproduce({original!r})\nprint(r.differences)")
    assert res["status"] == "ok", res
    assert "package versions differ: numpy" in res["text"] and "original 0.0.1" in res["text"]


def test_reproduce_a_sweep_trial_uses_its_swept_values(kernel):
    res = kernel.run(
        '%%track -q -n sw --sweep "alpha=[1.0,3.0]" --objective score\n'
        "import numpy as np\ndata = np.arange(10.0)\n"
        "alpha = 0.5\nscore = float((data * alpha).sum())\n"
    )
    assert res["status"] == "ok", res
    trial = last_id(kernel, "sw-2")
    out = run_py(
        kernel, f"r = nbops.reproduce({trial!r})\nprint(r.matches, r.metrics.reproduced[0])"
    )
    assert out == "True 135.0"


def test_reproduce_unknown_run_and_run_without_cell(kernel):
    res = kernel.run("nbops.reproduce('000000000000')")
    assert res["error"]["ename"] == "RunNotFoundError" and "000000000000" in res["error"]["evalue"]
    run_py(
        kernel, "with nbops.start_run(name='scripted') as r:\n    r.log_metric('m', 1)\nprint(1)"
    )
    res = kernel.run(f"nbops.reproduce({last_id(kernel, 'scripted')!r})")
    assert (
        res["error"]["ename"] == "NbopsError"
        and "no recorded cell source" in res["error"]["evalue"]
    )


def test_reproduce_of_failing_cell_records_failed_run_and_raises(kernel):
    res = kernel.run(
        "%%track -q -n fails\nlimit = 3\nif limit > 2:\n    raise RuntimeError('too big')\n"
    )
    assert res["status"] == "error"
    original = last_id(kernel, "fails")
    res = kernel.run(f"nbops.reproduce({original!r})")
    assert res["error"]["ename"] == "RuntimeError"
    status = run_py(kernel, "print(nbops.runs(filter=\"name == 'fails-reproduced'\").status[0])")
    assert status == "FAILED"
