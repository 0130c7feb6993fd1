"""``nbops check``: the checks a CI pipeline runs, from a file, to an exit code.

Checks are read from ``nbops.toml`` (an array of tables ``[[check]]``) or, when there
is none, from ``[[tool.nbops.check]]`` in ``pyproject.toml``::

    [[check]]
    name = "no drift in this week's data"
    kind = "drift"            # also: "quality", "gates", "notebook"
    reference = "data/train.csv"
    current = "data/week48.csv"

    [[check]]
    kind = "gates"
    model = "wine"
    version = "latest"

Kinds and their keys (``name`` is optional everywhere):

- ``quality``: ``data`` (a data source), optional ``reference`` (a source to compare
  with) and ``fail_on`` ("fail", the default, or "warn").
- ``drift``: ``reference``, ``current`` (sources), optional ``columns``, ``threshold``,
  ``drift_share``. Fails when the dataset drifts.
- ``gates``: ``model``, ``version`` (``latest``, a number, a stage or an alias;
  default latest), ``stage`` (the move the rules are for; default Production). One
  result per rule.
- ``notebook``: ``path``, optional ``timeout`` (seconds per cell, default 600) and
  ``kernel``. Fails when a cell raises (run with nbclient).

A data source is a file (.csv, .tsv, .parquet), ``dataset:NAME[@VERSION]`` (a version
logged with ``nbops.log_dataset(df, NAME, source=FILE)``: the file, checked against the
version's digest), ``model:NAME[@VERSION]`` (the training sample stored with a
registered version) or ``service:FOLDER`` (the inputs a service logged). Relative paths are read from the folder of the check file.

Exit codes: 0 every check passed, 1 a check failed, 2 the configuration or an input
is wrong (then no verdict can be given). :func:`to_junit` writes JUnit XML, one
testcase per check and per gate rule.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ._errors import CheckConfigError, NbopsError

KINDS = ("quality", "drift", "gates", "notebook")
KEYS = {
    "quality": {"data", "reference", "fail_on"},
    "drift": {"reference", "current", "columns", "threshold", "drift_share"},
    "gates": {"model", "version", "stage"},
    "notebook": {"path", "timeout", "kernel"},
}
REQUIRED = {
    "quality": ("data",),
    "drift": ("reference", "current"),
    "gates": ("model",),
    "notebook": ("path",),
}


def _toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CheckConfigError(f"cannot read {path}: {exc}") from None


def find_config(path: str | Path | None = None) -> Path:
    """The check file: ``path`` when given, else ``./nbops.toml``, else
    ``./pyproject.toml`` when it has ``[tool.nbops.check]``. Raises CheckConfigError
    when there is none."""
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise CheckConfigError(f"no check file {str(file)!r}")
        return file
    for candidate in (Path("nbops.toml"), Path("pyproject.toml")):
        if candidate.is_file() and (
            candidate.name == "nbops.toml" or (_toml(candidate).get("tool") or {}).get("nbops")
        ):
            return candidate
    raise CheckConfigError(
        "no checks found: write them as [[check]] tables in nbops.toml, "
        "or as [[tool.nbops.check]] in pyproject.toml (see docs/ci.md)"
    )


def load_checks(path: str | Path | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """(the file, its checks, validated). Raises CheckConfigError naming the check and
    the key that is wrong."""
    file = find_config(path)
    data = _toml(file)
    checks = (
        data.get("check")
        if file.name != "pyproject.toml"
        else ((data.get("tool") or {}).get("nbops") or {}).get("check")
    )
    where = "[[check]]" if file.name != "pyproject.toml" else "[[tool.nbops.check]]"
    if not isinstance(checks, list) or not checks:
        raise CheckConfigError(f"{file} has no {where} tables; see docs/ci.md for the format")
    out = []
    for i, check in enumerate(checks, 1):
        label = f"check {i}" + (f" ({check.get('name')!r})" if check.get("name") else "")
        kind = check.get("kind")
        if kind not in KINDS:
            raise CheckConfigError(
                f"{file}: {label} has kind {kind!r}; use one of {', '.join(KINDS)}"
            )
        unknown = sorted(set(check) - KEYS[kind] - {"name", "kind"})
        if unknown:
            raise CheckConfigError(
                f"{file}: {label} ({kind}) has unknown keys {unknown}; "
                f"it takes {sorted(KEYS[kind])}"
            )
        missing = [k for k in REQUIRED[kind] if not check.get(k)]
        if missing:
            raise CheckConfigError(f"{file}: {label} ({kind}) needs {missing}")
        out.append({**check, "name": check.get("name") or _default_name(check)})
    return file, out


def _default_name(check: dict[str, Any]) -> str:
    kind = check["kind"]
    if kind == "drift":
        return f"drift {check['reference']} -> {check['current']}"
    if kind == "quality":
        return f"quality of {check['data']}"
    if kind == "gates":
        return f"gates of {check['model']} {check.get('version', 'latest')}"
    return f"notebook {check['path']}"


def read_source(source: str, base: Path) -> Any:
    """A data source (see the module docstring) as a DataFrame. Raises CheckConfigError
    for a source that cannot be read."""
    try:
        if source.startswith("model:"):
            from .registry import load_reference
            from .registry.naming import pick
            from .store import get_store

            name, _, which = source[len("model:") :].partition("@")
            rec = pick(get_store(), name, which or "latest")
            return load_reference(name, version=rec["version"])
        if source.startswith("dataset:"):
            return _dataset_rows(source, base)
        if source.startswith("service:"):
            from .serving.monitor import prediction_log

            folder = Path(source[len("service:") :]).expanduser()
            log = prediction_log(folder if folder.is_absolute() else base / folder)
            return log.drop(
                columns=[
                    c
                    for c in ("id", "request_id", "time", "version", "latency_ms")
                    if c in log.columns
                ]
            )
        from .drift.io import read_table

        file = Path(source).expanduser()
        return read_table(file if file.is_absolute() else base / file)
    except NbopsError as exc:
        raise CheckConfigError(f"cannot read {source!r}: {exc}") from None


def _dataset_rows(source: str, base: Path) -> Any:
    """The rows of a logged dataset version, read back from the file it was logged with
    (its ``source``) and checked against its digest."""
    from .datasets import dataset, fingerprint
    from .drift.io import read_table

    name, _, which = source[len("dataset:") :].partition("@")
    rec = dataset(name, int(which) if which else None)
    origin = rec.get("source")
    candidates = [Path(origin).expanduser(), base / origin] if origin else []
    file = next((p for p in candidates if p.is_file()), None)
    if file is None:
        raise CheckConfigError(
            f"dataset {name}@{rec['version']} keeps a fingerprint, not rows, and its source "
            f"{origin!r} is not a file here; log it with nbops.log_dataset(df, {name!r}, "
            "source='path/to/file.csv') or check the file itself"
        )
    frame = read_table(file)
    if fingerprint(frame)["digest"] != rec["digest"]:
        raise CheckConfigError(
            f"{file} changed since it was logged as dataset "
            f"{name}@{rec['version']}: its digest differs"
        )
    return frame


def _case(name: str, passed: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "passed": passed, "message": message, **extra}


def _quality(check: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    from .quality import check_quality

    data = read_source(check["data"], base)
    reference = read_source(check["reference"], base) if check.get("reference") else None
    report = check_quality(data, reference=reference)
    floor = check.get("fail_on", "fail")
    problems = report.problems(floor)
    text = "; ".join(f"{p['check']} {p.get('column') or ''}: {p['message']}" for p in problems)
    return [
        _case(
            check["name"],
            not problems,
            f"quality level {report.level}" + (f": {text}" if text else ""),
            measured=report.level,
            threshold=f"below {floor}",
        )
    ]


def _drift(check: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    from .drift import drift

    options = {k: check[k] for k in ("columns", "threshold", "drift_share") if k in check}
    report = drift(
        read_source(check["reference"], base), read_source(check["current"], base), **options
    )
    message = (
        f"{report.n_drifted} of {report.n_tested} columns drifted (share "
        f"{report.share:.2f}, limit {report.drift_share:.2f})"
    )
    if report.drifted:
        message += ": " + ", ".join(report.drifted_columns)
    return [
        _case(
            check["name"],
            not report.drifted,
            message,
            measured=report.share,
            threshold=report.drift_share,
        )
    ]


def _gates(check: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    from .registry import evaluate_gates
    from .registry.naming import pick
    from .registry.views import format_gate_result
    from .store import get_store

    try:
        rec = pick(get_store(), check["model"], check.get("version", "latest"))
    except NbopsError as exc:
        raise CheckConfigError(str(exc)) from None
    result = evaluate_gates(check["model"], rec["version"], stage=check.get("stage", "Production"))
    if not result["results"]:
        return [
            _case(check["name"], True, f"{check['model']} has no gate rules for {result['stage']}")
        ]
    return [
        _case(
            f"{check['name']}: {r['rule']}",
            r["passed"],
            format_gate_result(r),
            measured=r.get("measured"),
            threshold=r.get("threshold"),
        )
        for r in result["results"]
    ]


def _notebook(check: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(check["path"])
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise CheckConfigError(f"no notebook {str(path)!r}")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(check.get("timeout", 600)),
        kernel_name=check.get("kernel", "python3"),
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        import re

        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the traceback's terminal colours
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return [
            _case(
                check["name"], False, lines[-1] if lines else "a cell raised", detail=text[-4000:]
            )
        ]
    cells = sum(1 for c in nb.cells if c.cell_type == "code")
    return [_case(check["name"], True, f"{cells} code cells ran without error")]


RUNNERS = {"quality": _quality, "drift": _drift, "gates": _gates, "notebook": _notebook}


def run_checks(path: str | Path | None = None, only: list[str] | None = None) -> dict[str, Any]:
    """Run the checks of the check file (see :func:`find_config`); ``only`` keeps the
    checks with these names. Returns ``{file, passed, exit_code, checks: [{name, kind,
    status ("passed", "failed", "error"), seconds, cases: [{name, passed, message,
    measured, threshold}], error}]}``. A check whose input is wrong is an "error"
    (exit code 2); the others still run. Raises CheckConfigError when the file itself
    is wrong."""
    file, checks = load_checks(path)
    if only:
        unknown = sorted(set(only) - {c["name"] for c in checks})
        if unknown:
            raise CheckConfigError(
                f"no checks named {unknown} in {file}; it has {[c['name'] for c in checks]}"
            )
        checks = [c for c in checks if c["name"] in only]
    base = file.resolve().parent
    results = []
    for check in checks:
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"name": check["name"], "kind": check["kind"], "error": None}
        try:
            entry["cases"] = RUNNERS[check["kind"]](check, base)
            entry["status"] = "passed" if all(c["passed"] for c in entry["cases"]) else "failed"
        except (CheckConfigError, NbopsError, OSError, ValueError) as exc:
            entry.update(status="error", cases=[], error=f"{type(exc).__name__}: {exc}")
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        results.append(entry)
    statuses = {r["status"] for r in results}
    code = 2 if "error" in statuses else 1 if "failed" in statuses else 0
    return {"file": str(file), "passed": code == 0, "exit_code": code, "checks": results}


def to_junit(report: dict[str, Any]) -> str:
    """The report of :func:`run_checks` as JUnit XML: one testsuite, one testcase per
    check (per rule for gates); failures carry the measured values, input problems are
    errors."""
    from xml.etree import ElementTree as ET

    cases = [(c, case) for c in report["checks"] for case in (c["cases"] or [None])]
    suite = ET.Element(
        "testsuite",
        name="nbops check",
        tests=str(len(cases)),
        failures=str(sum(1 for _, k in cases if k and not k["passed"])),
        errors=str(sum(1 for c, k in cases if k is None)),
        time=f"{sum(c['seconds'] for c in report['checks']):.3f}",
    )
    for check, case in cases:
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"nbops.{check['kind']}",
            name=case["name"] if case else check["name"],
            time=f"{check['seconds'] / max(len(check['cases']), 1):.3f}",
        )
        if case is None:
            ET.SubElement(
                tc, "error", message=check["error"] or "error", type="CheckConfigError"
            ).text = check["error"]
        elif not case["passed"]:
            body = case["message"]
            if case.get("measured") is not None:
                body += f"\nmeasured: {case['measured']}\nthreshold: {case.get('threshold')}"
            if case.get("detail"):
                body += "\n" + case["detail"]
            ET.SubElement(tc, "failure", message=case["message"], type="CheckFailed").text = body
    root = ET.Element(
        "testsuites",
        name="nbops",
        tests=suite.get("tests"),
        failures=suite.get("failures"),
        errors=suite.get("errors"),
        time=suite.get("time"),
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def format_report(report: dict[str, Any]) -> str:
    """The report as the lines ``nbops check`` prints: one per check and per case."""
    lines = []
    mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}
    for check in report["checks"]:
        lines.append(
            f"{mark[check['status']]:5} {check['name']}  [{check['kind']}, {check['seconds']:.1f}s]"
        )
        if check["error"]:
            lines.append(f"      {check['error']}")
        for case in check["cases"]:
            if len(check["cases"]) > 1 or not case["passed"] or check["kind"] != "gates":
                lines.append(f"      {'ok ' if case['passed'] else 'x  '} {case['message']}")
    verdict = {
        0: "all checks passed",
        1: "a check failed",
        2: "a check could not run (configuration or input)",
    }[report["exit_code"]]
    lines.append(f"nbops check: {verdict} ({len(report['checks'])} checks)")
    return "\n".join(lines)
