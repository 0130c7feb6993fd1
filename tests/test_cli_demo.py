"""`nbops demo`: the first thing a new user runs (issue 15, findings 2, 7, 10 and 12)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "example_notebooks"

TRAIN = """import nbops
for i, alpha in enumerate((0.1, 0.5, 0.9)):
    with nbops.start_run(name=f'model-{i}', experiment='demo'):
        nbops.log_params({'alpha': alpha})
        nbops.log_metric('score', round(1 - abs(alpha - 0.5), 3))
"""


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(TRAIN)]
    nbformat.write(nb, folder / "a.ipynb")
    return folder


def demo(cwd: Path, notebooks: Path, out: str = "out") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbops.cli", "demo", "-o", out, "--notebooks", str(notebooks)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "COLUMNS": "100"},
    )


def run_table(stdout: str) -> str:
    """The demo's run table: from the blank line after the notebooks to 'runs recorded'."""
    return stdout.split("\n\n", 1)[1].split("runs recorded")[0]


def test_demo_runs_notebooks_and_prints_where_outputs_are(tmp_path, notebooks):
    out = demo(tmp_path, notebooks)
    assert out.returncode == 0, out.stderr
    assert "[1/1] a.ipynb ... ok" in out.stdout
    assert "model-2" in out.stdout and "3 runs recorded" in out.stdout
    assert (tmp_path / "out" / "a.ipynb").exists()


def test_demo_twice_gives_the_same_run_table_from_a_fresh_store(tmp_path, notebooks):
    first = demo(tmp_path, notebooks)
    second = demo(tmp_path, notebooks)
    assert first.returncode == second.returncode == 0, second.stderr
    assert run_table(first.stdout) == run_table(second.stdout)
    assert "3 runs recorded" in second.stdout  # not 6
    assert "previous one is now" in second.stdout and "store.previous" in second.stdout
    assert (tmp_path / "out" / "store.previous").is_dir()


def test_the_printed_runs_command_works_as_printed(tmp_path, notebooks):
    out = demo(tmp_path, notebooks)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("List the runs:"))
    command = line.split(":", 1)[1].strip()
    env = {k: v for k, v in os.environ.items() if k != "NBOPS_STORE"}
    env["PATH"] = "/usr/bin:/bin"  # no venv on PATH, as after `make demo`
    ran = subprocess.run(
        command, shell=True, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert ran.returncode == 0, (command, ran.stderr)
    assert "model-0" in ran.stdout


def test_nothing_is_printed_after_the_demo_is_over(tmp_path, notebooks):
    out = demo(tmp_path, notebooks)  # waits for every process holding its stdout/stderr
    assert "Parent appears to have exited" not in out.stdout + out.stderr
    assert out.stdout.rstrip().splitlines()[-1].startswith(("List the runs:", "or, after"))


def test_readme_says_how_to_run_nbops_after_make_demo():
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/nbops" in readme and "source .venv/bin/activate" in readme


def _calls(path: Path, names: set[str]) -> list[ast.Call]:
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(ln for ln in cell.source.splitlines() if not ln.startswith("%"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in names:
                found.append(node)
    return found


def test_notebook_05_moves_the_versions_it_registered_not_fixed_numbers():
    path = NOTEBOOKS / "05_deploy_and_monitor.ipynb"
    calls = _calls(path, {"transition", "set_alias"})
    assert calls
    for call in calls:
        version = call.args[1] if len(call.args) > 1 else None
        assert not isinstance(version, ast.Constant), ast.unparse(call)
    for call in _calls(path, {"export"}):
        for kw in call.keywords:
            if kw.arg == "canary":
                plan = {
                    ast.literal_eval(k): v
                    for k, v in zip(kw.value.keys, kw.value.values, strict=True)
                }
                assert not isinstance(plan["version"], ast.Constant), ast.unparse(call)


@pytest.mark.timeout(300)
def test_quickstart_wine_runs_differ_and_have_one_best(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    shutil.copy(NOTEBOOKS / "01_quickstart.ipynb", folder)
    out = demo(tmp_path, folder)
    assert out.returncode == 0, out.stderr[-3000:]
    code = (
        "import nbops, json; f = nbops.runs(experiment='wine'); "
        "print(json.dumps(f[['metrics.accuracy', 'metrics.test_accuracy']]"
        ".max(axis=1).dropna().round(6).tolist()))"
    )
    scores = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "NBOPS_STORE": str(tmp_path / "out" / "store")},
    )
    values = __import__("json").loads(scores.stdout)
    assert len(values) >= 4 and len(set(values)) >= 3, values  # the runs differ
    assert values.count(max(values)) == 1 and max(values) < 1.0, values  # one real winner


def _experiments(path: Path) -> set[str]:
    import re

    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    found = re.findall(r"""--experiment\s+([\w-]+)|experiment\s*=\s*['"]([\w-]+)""", text)
    return {a or b for a, b in found}


def test_notebooks_that_pick_a_best_run_own_their_experiment():
    # 02 picks and reproduces the best run of its experiment: runs of another notebook,
    # trained on another split, must not compete there (the demo runs them in one store)
    quickstart = _experiments(NOTEBOOKS / "01_quickstart.ipynb")
    compare = _experiments(NOTEBOOKS / "02_compare_and_sweep.ipynb")
    assert quickstart and compare and not quickstart & compare, (quickstart, compare)
