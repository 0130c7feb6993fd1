"""Read-only views of the registry as plain data (DataFrames, dicts) and the text the
CLI prints. Widgets and the lab sidebar show the same data; nothing here writes."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .._errors import RunNotFoundError
from ..store import get_store
from .naming import describe, names, resolve, unknown_model, versions_of

if TYPE_CHECKING:
    import pandas as pd

MODEL_COLUMNS = [
    "name",
    "version",
    "stage",
    "aliases",
    "run_id",
    "run_name",
    "created",
    "description",
    "model_class",
    "gates",
]


def _gate_summary(rec: dict[str, Any]) -> str | None:
    last = rec.get("gates")
    if not last:
        return None
    n_ok = sum(1 for r in last.get("results") or [] if r.get("passed"))
    verdict = "passed" if last.get("passed") else "failed"
    return f"{verdict} {n_ok}/{len(last.get('results') or [])} ({last.get('stage')})"


def models(name: str | None = None) -> pd.DataFrame:
    """Every registered version (of ``name`` if given): DataFrame(name, version, stage,
    aliases, run_id, run_name, created, description, model_class, gates -- the last gate
    verdict such as "passed 3/3 (Production)" --, metrics.* of the source run), sorted
    by name and version. Raises RegistryError for an unknown ``name``."""
    import pandas as pd

    store = get_store()
    if name is not None and not versions_of(store, name):
        raise unknown_model(store, name)
    rows = []
    for model_name in [name] if name is not None else names(store):
        for rec in versions_of(store, model_name):
            row = {k: rec.get(k) for k in MODEL_COLUMNS}
            row["aliases"] = list(rec.get("aliases") or [])
            row["gates"] = _gate_summary(rec)
            try:
                run = store.get_run(rec["run_id"])
            except RunNotFoundError:
                run = {}
            for key, value in (run.get("metrics") or {}).items():
                row[f"metrics.{key}"] = value
            rows.append(row)
    frame = pd.DataFrame(rows)
    if not len(frame):
        return pd.DataFrame(columns=MODEL_COLUMNS)
    frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
    for column in ("stage", "description", "run_name", "gates"):
        frame[column] = pd.Series([r[column] for r in rows], dtype=object)
    return frame[MODEL_COLUMNS + sorted(c for c in frame.columns if c not in MODEL_COLUMNS)]


def lineage(
    name: str, version: Any = None, stage: Any = None, alias: str | None = None
) -> dict[str, Any]:
    """Where a version came from: ``{"model": record, "run": {run_id, name, experiment,
    status, params, metrics, tags, code}, "datasets": [{digest, name, shape, schema}],
    "environment": {python, platform, packages}}``. A run or dataset that is no longer
    in the store appears with ``"missing": True``. Raises RegistryError for an unknown
    model or version."""
    store = get_store()
    rec = copy.deepcopy(resolve(store, name, version, stage, alias))
    try:
        run = store.get_run(rec["run_id"])
    except RunNotFoundError:
        return {
            "model": rec,
            "run": {"run_id": rec["run_id"], "missing": True},
            "datasets": [],
            "environment": {},
        }
    run_part = {
        k: run.get(k)
        for k in (
            "run_id",
            "name",
            "experiment",
            "status",
            "start_time",
            "end_time",
            "duration",
            "parent_id",
            "params",
            "metrics",
            "tags",
            "code",
        )
    }
    datasets = []
    for digest in run.get("inputs") or []:
        doc = store.get_dataset(digest)
        if doc is None:
            datasets.append({"digest": digest, "missing": True})
        else:
            datasets.append(
                {
                    k: doc.get(k)
                    for k in ("digest", "name", "kind", "shape", "schema", "source")
                    if k in doc
                }
            )
    return {
        "model": rec,
        "run": run_part,
        "datasets": datasets,
        "environment": run.get("env") or {},
    }


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_lineage(lin: dict[str, Any]) -> str:
    """The :func:`lineage` dict as an indented text tree (what the CLI prints)."""
    rec, run = lin["model"], lin["run"]
    lines = [
        f"model {rec['name']} {describe(rec)}  {rec.get('model_class') or ''}",
        f"  file {rec.get('file_name')} sha256 {rec['sha256'][:12]}"
        f"  trusted types {rec.get('trusted_types') or []}",
    ]
    origin = rec.get("lineage") or {}
    if origin.get("retrained_from"):
        data = origin.get("data") or {}
        shown = ", ".join(
            f"{var} = {d.get('dataset') or d.get('source')}" if isinstance(d, dict) else var
            for var, d in sorted(data.items())
        )
        lines.append(f"  retrained from v{origin['retrained_from']} with {shown}")
    if run.get("missing"):
        lines.append(f"  └─ run {run['run_id']} (no longer in the store)")
        return "\n".join(lines)
    lines.append(
        f"  └─ run {run['run_id']} {run.get('name')!r} {run.get('status')}"
        f"  experiment {run.get('experiment')}  started {run.get('start_time')}"
    )
    for section in ("params", "metrics"):
        values = run.get(section) or {}
        if values:
            shown = ", ".join(f"{k}={_short(v, 20)}" for k, v in sorted(values.items())[:12])
            more = f" (+{len(values) - 12} more)" if len(values) > 12 else ""
            lines.append(f"       {section}: {shown}{more}")
    code = run.get("code") or {}
    where = code.get("notebook") or code.get("script")
    git = code.get("git_commit")
    lines.append(
        f"       code: git {git[:10] if git else 'none'}"
        f"{' (dirty)' if code.get('git_dirty') else ''}"
        f"{'  in ' + where if where else ''}"
    )
    for ds in lin.get("datasets") or []:
        if ds.get("missing"):
            lines.append(f"       └─ dataset {ds['digest'][:12]} (not in the store)")
            continue
        schema = ds.get("schema") or {}
        lines.append(
            f"       └─ dataset {ds['digest'][:12]} {ds.get('name') or ''} "
            f"shape {ds.get('shape')}  {_short(schema, 70)}"
        )
    env = lin.get("environment") or {}
    packages = env.get("packages") or {}
    libs = ", ".join(
        f"{k} {packages[k]}"
        for k in ("scikit-learn", "sklearn", "pandas", "numpy")
        if k in packages
    )
    lines.append(f"       env: python {env.get('python', '?')}{'  ' + libs if libs else ''}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _threshold(result: dict[str, Any]) -> str:
    if result.get("threshold") is None:
        return "-"
    return f"{result.get('op') or ''} {_cell(result['threshold'])}".strip()


def format_gate_result(result: dict[str, Any]) -> str:
    """One gate result on one line: ``rule: measured 0.8, needs >= 0.9: FAIL (detail)``."""
    text = (
        f"{result['rule']}: measured {_cell(result.get('measured'))}, needs "
        f"{_threshold(result)}: {'PASS' if result['passed'] else 'FAIL'}"
    )
    return text + (f" ({result['detail']})" if result.get("detail") else "")


def format_gate_results(results: list[dict[str, Any]]) -> str:
    """Gate results as a text table: rule, measured, threshold, result (what the CLI
    prints and GateError's message holds)."""
    rows = [("rule", "measured", "threshold", "result")]
    for r in results:
        rows.append(
            (
                r["rule"],
                _cell(r.get("measured")),
                _threshold(r),
                ("PASS" if r["passed"] else "FAIL")
                + (f"  ({r['detail']})" if r.get("detail") else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row))
        for row in rows
    )
