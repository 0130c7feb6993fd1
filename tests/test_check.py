"""`nbops check`: checks from nbops.toml / pyproject.toml, exit codes 0/1/2, JUnit XML
read back with a real JUnit parser, JSON, and the CI examples of docs/ci.md."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from junitparser import Error, Failure, JUnitXml
from sklearn.linear_model import LogisticRegression

import nbops
from nbops.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, store, monkeypatch):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    train = pd.DataFrame({"x1": rng.normal(0, 1, 500), "x2": rng.normal(0, 1, 500)})
    train.to_csv(data / "train.csv", index=False)
    pd.DataFrame({"x1": rng.normal(0, 1, 400), "x2": rng.normal(0, 1, 400)}).to_csv(
        data / "week47.csv", index=False
    )
    pd.DataFrame({"x1": rng.normal(2.5, 1, 400), "x2": rng.normal(0, 1, 400)}).to_csv(
        data / "week48.csv", index=False
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def check(capsys, *argv):
    code = main(["check", *argv])
    return code, capsys.readouterr().out


def test_passing_drift_check_exits_0(project, capsys):
    write(
        project / "nbops.toml",
        """
        [[check]]
        name = "no drift in last week's data"
        kind = "drift"
        reference = "data/train.csv"
        current = "data/week47.csv"
    """,
    )
    code, out = check(capsys)
    assert code == 0, out
    assert "PASS  no drift in last week's data" in out and "all checks passed" in out


def test_drifted_data_exits_1_and_names_the_column(project, capsys):
    write(
        project / "nbops.toml",
        """
        [[check]]
        name = "no drift in this week's data"
        kind = "drift"
        reference = "data/train.csv"
        current = "data/week48.csv"
        drift_share = 0.5
    """,
    )
    code, out = check(capsys)
    assert code == 1 and "FAIL" in out and "x1" in out


@pytest.mark.parametrize(
    "body, says",
    [
        (
            '[[check]]\nkind = "drift"\nreference = "data/train.csv"\ncurrent = "data/nope.csv"\n',
            "nope.csv",
        ),
        ('[[check]]\nkind = "speed"\n', "kind 'speed'"),
        ('[[check]]\nkind = "drift"\nreference = "data/train.csv"\n', "needs ['current']"),
        (
            '[[check]]\nkind = "quality"\ndata = "data/train.csv"\ncolour = "red"\n',
            "unknown keys ['colour']",
        ),
        ('[[check]\nkind = "drift"\n', "cannot read"),
    ],
)
def test_bad_configuration_or_input_exits_2(project, capsys, body, says):
    (project / "nbops.toml").write_text(body)
    code = main(["check"])
    captured = capsys.readouterr()
    assert code == 2
    assert says in captured.out + captured.err


def test_no_check_file_exits_2(project, capsys):
    assert main(["check"]) == 2
    assert "[[check]]" in capsys.readouterr().err


def test_checks_in_pyproject(project, capsys):
    write(
        project / "pyproject.toml",
        """
        [project]
        name = "demo"

        [[tool.nbops.check]]
        kind = "quality"
        data = "data/week47.csv"
        reference = "data/train.csv"
    """,
    )
    code, out = check(capsys)
    assert code == 0 and "quality of data/week47.csv" in out


def register(accuracy):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x1": rng.normal(size=60), "x2": rng.normal(size=60)})
    y = (X.x1 > 0).astype(int)
    with nbops.start_run() as run:
        nbops.log_model(LogisticRegression().fit(X, y), signature=X, reference=X)
        run.log_metric("accuracy", accuracy)
    return nbops.register(run.run_id, "wine")["version"]


def test_junit_xml_has_one_testcase_per_check_and_rule(project, capsys):
    register(0.8)
    nbops.set_gates("wine", ["accuracy >= 0.9", "accuracy >= 0.5"])
    write(
        project / "nbops.toml",
        """
        [[check]]
        name = "drift"
        kind = "drift"
        reference = "data/train.csv"
        current = "data/week48.csv"

        [[check]]
        kind = "gates"
        model = "wine"
        version = "latest"

        [[check]]
        name = "broken input"
        kind = "quality"
        data = "data/missing.csv"
    """,
    )
    code = main(["check", "--junit", "report.xml"])
    capsys.readouterr()
    assert code == 2  # an input error outranks the failures
    xml = JUnitXml.fromfile(str(project / "report.xml"))
    cases = {case.name: case for suite in xml for case in suite}
    assert set(cases) == {
        "drift",
        "gates of wine latest: accuracy >= 0.9",
        "gates of wine latest: accuracy >= 0.5",
        "broken input",
    }
    failing = cases["gates of wine latest: accuracy >= 0.9"].result
    assert isinstance(failing[0], Failure) and "measured: 0.8" in failing[0].text
    assert "threshold: 0.9" in failing[0].text
    assert cases["gates of wine latest: accuracy >= 0.5"].is_passed
    assert isinstance(cases["drift"].result[0], Failure)
    assert isinstance(cases["broken input"].result[0], Error)
    assert xml.tests == 4 and xml.failures == 2 and xml.errors == 1


def test_json_report(project, capsys):
    register(0.95)
    nbops.set_gates("wine", ["accuracy >= 0.9"])
    write(project / "nbops.toml", '[[check]]\nkind = "gates"\nmodel = "wine"\nversion = "1"\n')
    code, out = check(capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["exit_code"] == 0
    (entry,) = report["checks"]
    assert entry["status"] == "passed" and entry["cases"][0]["measured"] == 0.95
    assert nbops.get_model("wine", version=1)["gates"]["passed"]


def test_notebook_check_fails_on_a_raising_cell(project, capsys):
    import nbformat

    for name, code in (("good", "x = 1 + 1\nprint(x)"), ("bad", "raise ValueError('broken')")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nbformat.write(nb, project / f"{name}.ipynb")
    write(
        project / "nbops.toml",
        """
        [[check]]
        kind = "notebook"
        path = "good.ipynb"

        [[check]]
        kind = "notebook"
        path = "bad.ipynb"
        timeout = 60
    """,
    )
    code, out = check(capsys)
    assert code == 1
    assert "PASS  notebook good.ipynb" in out
    assert "FAIL  notebook bad.ipynb" in out and "ValueError: broken" in out


def _doc_blocks(lang):
    text = (ROOT / "docs" / "ci.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_ci_examples_in_the_docs_are_valid_yaml_that_run_nbops_check():
    import yaml

    blocks = _doc_blocks("yaml")
    assert len(blocks) >= 3  # GitHub Actions, GitLab CI, pre-commit
    docs = [yaml.safe_load(b) for b in blocks]
    github = next(d for d in docs if "jobs" in d)
    steps = [s.get("run", "") for job in github["jobs"].values() for s in job["steps"]]
    assert any("nbops check" in s and "--junit" in s for s in steps)
    gitlab = next(d for d in docs if any(isinstance(v, dict) and "script" in v for v in d.values()))
    job = next(v for v in gitlab.values() if isinstance(v, dict) and "script" in v)
    assert any("nbops check" in line for line in job["script"])
    assert job["artifacts"]["reports"]["junit"]
    precommit = next(d for d in docs if "repos" in d)
    hook = precommit["repos"][0]["hooks"][0]
    assert "nbops check" in hook["entry"]


def test_the_toml_example_in_the_docs_is_what_check_reads(project, capsys):
    (toml,) = [b for b in _doc_blocks("toml") if "week48" in b][:1]
    (project / "nbops.toml").write_text(toml)
    register(0.95)
    code = main(["check", "--only", "no drift in this week's data"])
    assert code == 1  # week48 drifted in this fixture


def test_a_dataset_version_is_read_from_its_source_and_checked(project, capsys):
    train = pd.read_csv(project / "data" / "train.csv")
    nbops.log_dataset(train, "train", source="data/train.csv")
    write(
        project / "nbops.toml",
        """
        [[check]]
        kind = "drift"
        reference = "dataset:train@1"
        current = "data/week48.csv"
    """,
    )
    code, out = check(capsys)
    assert code == 1 and "x1" in out
    train.iloc[:10].to_csv(project / "data" / "train.csv", index=False)  # the file changed
    code, out = check(capsys)
    assert code == 2 and "changed since it was logged as dataset train@1" in out


def test_a_broken_check_file_still_writes_a_junit_report(project, capsys):
    (project / "nbops.toml").write_text('[[check]]\nkind = "speed"\n')
    assert main(["check", "--junit", "out.xml"]) == 2
    capsys.readouterr()
    xml = JUnitXml.fromfile(str(project / "out.xml"))
    (case,) = [c for suite in xml for c in suite]
    assert case.name == "configuration" and isinstance(case.result[0], Error)
    assert "kind 'speed'" in case.result[0].message
