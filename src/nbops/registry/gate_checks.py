"""Evaluating promotion gates: each rule of :mod:`.gates` measured on one version.

Every rule gives one result ``{rule, kind, metric, measured, op, threshold, passed,
detail}``. ``measured`` is what the version has (a metric, a standard deviation, the
worst quality level, a drift share), ``threshold`` what it is held against. A rule that
cannot be measured (a missing metric, no training sample, a cell that cannot be re-run)
fails with ``detail`` saying why and what to do.

Seed discovery for ``stable`` rules: the seed is the param named by ``of PARAM``, else
the first recorded param of the version's run whose name (after any ``model.`` prefix)
is ``seed``, ``random_state``, ``random_seed`` or ends in ``_seed``, and which the
recorded cell assigns as a literal (``seed = 0``) -- only such a value can be replaced
on a re-run. The version's own run counts as the first seed; the others are
``seed + 1`` ... ``seed + N - 1``, each a re-run through :func:`nbops.reproduce` in a
copy of the kernel's namespace (the kernel's own variables are left alone). The
standard deviation is the sample one (``ddof=1``).
"""

from __future__ import annotations

import copy
import operator
import statistics
from typing import Any

from .._errors import NbopsError
from .._util import to_jsonable, utc_now
from ..store import Store, get_store
from .audit import record_event
from .gates import gates, parse_rule
from .naming import resolve, versions_of

GATED_STAGES = ("Staging", "Production")
#: how many evaluations a version keeps in ``gate_history`` (the audit log keeps all)
GATE_HISTORY = 20
_OPS = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
SEED_NAMES = ("seed", "random_state", "random_seed")


def applicable_rules(name: str, stage: str) -> list[dict[str, Any]]:
    """The parsed gate rules of model ``name`` that apply to a move to ``stage``."""
    return [r for r in (parse_rule(t) for t in gates(name)) if stage in r["stages"]]


def _result(
    rule: dict[str, Any], measured: Any, threshold: Any, passed: bool, detail: str | None = None
) -> dict[str, Any]:
    return {
        "rule": rule["rule"],
        "kind": rule["kind"],
        "metric": rule.get("metric"),
        "measured": to_jsonable(measured),
        "op": rule.get("op"),
        "threshold": to_jsonable(threshold),
        "passed": bool(passed),
        "detail": detail,
    }


def _production(store: Store, name: str) -> dict[str, Any] | None:
    hits = [r for r in versions_of(store, name) if r.get("stage") == "Production"]
    return hits[-1] if hits else None


def _run(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    found = store.find_run(rec["run_id"])
    return (
        found
        if found is not None
        else {"run_id": rec["run_id"], "metrics": {}, "params": {}, "missing": True}
    )


def _metric_rule(store, rule, rec, run, prod) -> dict[str, Any]:
    metric = rule["metric"]
    value = (run.get("metrics") or {}).get(metric)
    if value is None:
        known = sorted(run.get("metrics") or {})
        return _result(
            rule,
            None,
            rule.get("value"),
            False,
            f"run {rec['run_id']} has no metric {metric!r} (it has {known})",
        )
    if rule["baseline"] == "number":
        threshold = rule["value"]
    else:
        if prod is None:
            return _result(
                rule, value, None, True, "no version is in Production yet: nothing to compare with"
            )
        base = (_run(store, prod).get("metrics") or {}).get(metric)
        if base is None:
            return _result(
                rule,
                value,
                None,
                False,
                f"the Production version {prod['version']} has no metric {metric!r}",
            )
        threshold = float(base) * rule.get("factor", 1.0)
    try:
        passed = _OPS[rule["op"]](float(value), float(threshold))
    except (TypeError, ValueError):
        return _result(rule, value, threshold, False, f"{metric} is not a number")
    return _result(rule, float(value), threshold, passed)


def find_seed_param(run: dict[str, Any], wanted: str | None = None) -> str:
    """The name of the seed param of ``run`` that a re-run can replace (see the module
    docstring). Raises NbopsError saying how to make the seed replaceable."""
    from ..tracking.capture import analyse_cell

    source = (run.get("code") or {}).get("source") or ""
    literals = analyse_cell(source).literals if source else {}
    params = run.get("params") or {}
    if wanted is not None:
        if wanted in literals:
            return wanted
        raise NbopsError(
            f"the cell of run {run['run_id']} assigns no literal {wanted!r}; "
            f"write `{wanted} = 0` at its top and use it as the seed"
        )
    for key in [*params, *literals]:
        short = key.rsplit(".", 1)[-1].lower()
        if (short in SEED_NAMES or short.endswith("_seed")) and key in literals:
            return key
    raise NbopsError(
        f"cannot find a seed to vary in run {run['run_id']}: its cell assigns no literal "
        f"named seed, random_state or random_seed (params: {sorted(params)}). Write "
        "`seed = 0` at the top of the training cell and pass random_state=seed, or name "
        "the param in the rule: 'stable accuracy over 5 seeds of my_seed: std <= 0.01'"
    )


def _namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    base = dict(shell.user_ns) if shell is not None else {}
    base.setdefault("__name__", "__main__")
    return base


def _stable_rule(store, rule, rec, run, prod) -> dict[str, Any]:
    from ..tracking.reproduce import reproduce

    metric, n = rule["metric"], rule["seeds"]
    first = (run.get("metrics") or {}).get(metric)
    if first is None:
        return _result(
            rule, None, rule["value"], False, f"run {rec['run_id']} has no metric {metric!r}"
        )
    try:
        param = find_seed_param(run, rule.get("seed_param"))
    except NbopsError as exc:
        return _result(rule, None, rule["value"], False, str(exc))
    start = (run.get("params") or {}).get(param, 0)
    try:
        start = int(start)
    except (TypeError, ValueError):
        start = 0
    values, seeds = [float(first)], [start]
    for k in range(1, n):
        seed = start + k
        try:
            out = reproduce(
                run["run_id"],
                params={param: seed},
                namespace=_namespace(),
                name=f"{run.get('name') or rec['name']}-seed{seed}",
            )
        except Exception as exc:  # noqa: BLE001 - the gate reports why it could not measure
            return _result(
                rule,
                None,
                rule["value"],
                False,
                f"re-running the cell of run {run['run_id']} with {param}={seed} "
                f"failed: {type(exc).__name__}: {exc}",
            )
        value = (store.get_run(out.run_id).get("metrics") or {}).get(metric)
        if value is None:
            return _result(
                rule,
                None,
                rule["value"],
                False,
                f"the re-run {out.run_id} ({param}={seed}) logged no {metric!r}",
            )
        values.append(float(value))
        seeds.append(seed)
    std = statistics.stdev(values)
    res = _result(
        rule,
        std,
        rule["value"],
        _OPS[rule["op"]](std, rule["value"]),
        f"{metric} over {param}={seeds}: " + ", ".join(f"{v:.4g}" for v in values),
    )
    res["values"] = values
    return res


def _sample(store: Store, rec: dict[str, Any]) -> Any:
    from ..datasets import read_reference_file

    stored = rec.get("reference")
    if not stored:
        raise NbopsError(
            f"version {rec['version']} of {rec['name']!r} has no training sample; "
            "log the model with nbops.log_model(model, reference=X_train) (a "
            "%%track cell does it by itself)"
        )
    return read_reference_file(store.artifacts.verify(stored["sha256"]), stored["format"])


def _data_rule(store, rule, rec, run, prod) -> dict[str, Any]:
    if prod is None:
        return _result(
            rule, None, None, True, "no version is in Production yet: nothing to compare with"
        )
    try:
        current, reference = _sample(store, rec), _sample(store, prod)
    except NbopsError as exc:
        return _result(rule, None, None, False, str(exc))
    if rule["kind"] == "quality":
        from ..quality import check_quality

        report = check_quality(current, reference=reference)
        failing = [f"{f['check']} {f.get('column') or ''}".strip() for f in report.problems("fail")]
        return _result(
            rule,
            report.level,
            "not fail",
            report.level != "fail",
            f"vs the training data of v{prod['version']}"
            + (f": {', '.join(failing)}" if failing else ""),
        )
    from ..drift import drift

    report = drift(reference, current)
    detail = f"vs the training data of v{prod['version']}"
    if report.drifted:
        detail += ": drifted columns " + ", ".join(report.drifted_columns)
    res = _result(rule, report.share, report.drift_share, not report.drifted, detail)
    res["op"] = "<"
    return res


_CHECKS = {
    "metric": _metric_rule,
    "stable": _stable_rule,
    "quality": _data_rule,
    "drift": _data_rule,
}


def evaluate_gates(
    name: str, version: Any = None, stage: str = "Production", record: bool = True
) -> dict[str, Any]:
    """Measure every gate rule of model ``name`` that applies to ``stage`` on one
    version (default the latest; also ``"latest"``, a number). Returns
    ``{name, version, stage, when, passed, baseline_version, rules, results}``; with
    ``record`` the evaluation is kept with the version (``get_model(...)["gates"]`` is the
    last one, ``["gate_evaluations"][stage]`` the last per stage, ``["gate_history"]``
    the last :data:`GATE_HISTORY`, oldest first) and
    written to the audit log as a ``gates`` event (when the model has rules for
    ``stage``; without any the evaluation passes and records nothing). Evaluation never raises for a rule
    that fails or cannot be measured (that rule fails, with ``detail``); it raises
    RegistryError for an unknown model, version or stage."""
    from .naming import stage_name

    stage = stage_name(stage) or "Production"
    store = get_store()
    rec = copy.deepcopy(resolve(store, name, version=version))
    rules = applicable_rules(name, stage)
    prod = _production(store, name)
    if prod is not None and prod["version"] == rec["version"]:
        prod = None  # the Production version itself: nothing else to compare with
    run = _run(store, rec)
    results = [_CHECKS[r["kind"]](store, r, rec, run, prod) for r in rules]
    evaluation = {
        "name": name,
        "version": rec["version"],
        "stage": stage,
        "when": utc_now(),
        "passed": all(r["passed"] for r in results),
        "baseline_version": prod["version"] if prod else None,
        "rules": [r["rule"] for r in rules],
        "results": results,
    }
    if record and rules:  # a model without gate rules leaves no trace
        with store.transaction():
            current = store.get_model(name, rec["version"]) or rec
            by_stage = {**(current.get("gate_evaluations") or {}), stage: evaluation}
            kept = [*(current.get("gate_history") or []), evaluation][-GATE_HISTORY:]
            store.update_model(
                name,
                rec["version"],
                {"gates": evaluation, "gate_evaluations": by_stage, "gate_history": kept},
            )
            record_event(
                store,
                "gates",
                name,
                rec["version"],
                rec.get("stage"),
                stage,
                "passed" if evaluation["passed"] else "failed",
                passed=evaluation["passed"],
                results=results,
            )
    return evaluation


def reusable_evaluation(store: Store, rec: dict[str, Any], stage: str) -> dict[str, Any] | None:
    """The version's last evaluation when it still holds for a move to ``stage``: it
    passed, for that stage, against the same rules and the same Production version (a
    canary promotion after the gates passed need not re-run them). Else None."""
    rules = [r["rule"] for r in applicable_rules(rec["name"], stage)]
    prod = _production(store, rec["name"])
    baseline = prod["version"] if prod and prod["version"] != rec["version"] else None
    evaluations = rec.get("gate_evaluations") or {}
    # a passing Production evaluation also answers for Staging when it covered its rules
    for last in (evaluations.get(stage), evaluations.get("Production")):
        if (
            last
            and last.get("passed")
            and set(rules) <= set(last.get("rules") or [])
            and (last.get("stage") == stage or stage == "Staging")
            and (last.get("stage") != stage or last.get("rules") == rules)
            and last.get("baseline_version") == baseline
        ):
            return last
    return None


def gate_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per rule (rule, measured, threshold, passed, detail) for tables."""
    return [
        {
            "rule": r["rule"],
            "measured": r.get("measured"),
            "threshold": f"{r.get('op') or ''} {r.get('threshold')}".strip()
            if r.get("threshold") is not None
            else None,
            "passed": r["passed"],
            "detail": r.get("detail"),
        }
        for r in evaluation.get("results") or []
    ]


__all__ = [
    "GATED_STAGES",
    "applicable_rules",
    "evaluate_gates",
    "find_seed_param",
    "gate_rows",
    "reusable_evaluation",
]
