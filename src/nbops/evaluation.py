"""Comparing runs as plain data: what ``nbops.compare_widget`` shows, returned as DataFrames,
dicts and plotly Figures, so tests, scripts and the CLI see exactly what the widget does.

- :func:`select_runs` the runs table for a list of ids, a DataFrame or an experiment
- :func:`table_view` filter / sort / "only columns that differ" / one page of it
- :func:`diff` params, metrics, code, datasets and environment of two or more runs
- :func:`code_diff` a unified diff of two runs' cell sources
- :func:`best_run`, :func:`tag_best` the best run by a metric, and marking it
- :func:`metric_curves`, :func:`parallel_coordinates` plotly figures
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import NbopsError, RunNotFoundError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

BASE_COLUMNS = (
    "run_id",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration",
    "parent_id",
)
DIFF_SECTIONS = ("run", "params", "metrics", "tags", "code", "datasets", "env")
_MISSING = "—"


# -- which runs ---------------------------------------------------------------------


def select_runs(runs: Any = None, experiment: str | None = None) -> pd.DataFrame:
    """The runs table (as ``nbops.runs()``) for ``runs``: None (all runs, or those of
    ``experiment``), a list of run ids (kept in that order), or a DataFrame that
    ``nbops.runs()`` returned. Raises RunNotFoundError naming every unknown id."""
    import pandas as pd

    from .tracking.api import runs as all_runs

    if runs is None:
        return all_runs(experiment=experiment)
    if isinstance(runs, pd.DataFrame):
        if "run_id" not in runs.columns:
            raise NbopsError(
                "the DataFrame has no run_id column; pass the DataFrame "
                "nbops.runs() returned, or a list of run ids"
            )
        ids = [str(i) for i in runs["run_id"]]
    elif isinstance(runs, str):
        ids = [runs]
    else:
        ids = [r["run_id"] if isinstance(r, dict) else str(r) for r in runs]
    frame = all_runs()
    known = set(frame["run_id"]) if len(frame) else set()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise RunNotFoundError(
            f"unknown run id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            "list the runs with nbops.runs() or `nbops runs`"
        )
    frame = frame.set_index("run_id", drop=False).loc[list(dict.fromkeys(ids))]
    if experiment is not None:
        frame = frame[frame["experiment"] == experiment]
    return frame.reset_index(drop=True)


def differing_columns(frame: pd.DataFrame) -> list[str]:
    """The ``params.*``, ``metrics.*`` and ``tags.*`` columns whose values are not the
    same in every row (a value missing in some rows counts as a difference)."""
    out = []
    for col in frame.columns:
        if not col.startswith(("params.", "metrics.", "tags.")):
            continue
        values = frame[col]
        if values.isna().all():
            continue
        if values.isna().any() or values.astype(str).nunique() > 1:
            out.append(col)
    return out


def table_view(
    frame: pd.DataFrame,
    status: str | None = None,
    experiment: str | None = None,
    tag: str | None = None,
    text: str | None = None,
    sort_by: str | None = None,
    ascending: bool = False,
    only_differing: bool = False,
    page: int = 0,
    page_size: int = 25,
) -> tuple[pd.DataFrame, int]:
    """One page of the runs table after filters and sorting; returns (page, rows that
    matched). ``tag`` is ``key`` (the tag is set) or ``key=value``; ``text`` matches
    run id or name. With ``only_differing`` the params/metrics/tags columns that are the
    same in every matching run are dropped."""
    view = frame
    if status:
        view = view[view["status"] == status]
    if experiment:
        view = view[view["experiment"] == experiment]
    if tag:
        key, sep, value = tag.partition("=")
        col = f"tags.{key.strip()}"
        if col not in view.columns:
            view = view.iloc[0:0]
        elif sep:
            view = view[view[col].astype(str) == value.strip()]
        else:
            view = view[view[col].notna()]
    if text:
        needle = text.lower()
        view = view[
            view["run_id"].str.contains(needle, regex=False)
            | view["name"].astype(str).str.lower().str.contains(needle, regex=False)
        ]
    if sort_by:
        if sort_by not in view.columns:
            raise NbopsError(
                f"cannot sort by {sort_by!r}: no such column; use one of "
                f"{', '.join(view.columns[:12])}, ..."
            )
        view = view.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable")
    if only_differing:
        keep = set(differing_columns(view))
        view = view[
            [
                c
                for c in view.columns
                if not c.startswith(("params.", "metrics.", "tags.")) or c in keep
            ]
        ]
    total = len(view)
    start = max(page, 0) * page_size
    return view.iloc[start : start + page_size], total


# -- diff ---------------------------------------------------------------------------


def _run_docs(runs: Sequence[Any]) -> list[dict[str, Any]]:
    from .tracking.api import get_run

    if len(runs) == 1 and not isinstance(runs[0], (str, dict)):
        runs = list(runs[0])  # diff([a, b, c]) or diff(frame.run_id)
    ids = [r["run_id"] if isinstance(r, dict) else str(r) for r in runs]
    docs, unknown = [], []
    for run_id in ids:
        try:
            docs.append(get_run(run_id))
        except RunNotFoundError:
            unknown.append(run_id)
    if unknown:
        raise RunNotFoundError(
            f"unknown run id{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; list the runs with nbops.runs()"
        )
    return docs


def _dataset_names(digests: Iterable[str]) -> dict[str, str]:
    from .store import get_store

    store = get_store()
    out = {}
    for digest in digests:
        doc = store.get_dataset(digest)
        out[digest] = (doc or {}).get("name") or digest[:12]
    return out


def _section_values(doc: dict[str, Any], section: str, names: dict[str, str]) -> dict:
    if section == "run":
        return {
            k: doc.get(k)
            for k in ("name", "experiment", "status", "parent_id", "start_time", "duration")
        }
    if section in ("params", "metrics", "tags"):
        return dict(doc.get(section) or {})
    if section == "code":
        code = doc.get("code") or {}
        return {
            k: code.get(k)
            for k in ("source", "notebook", "git_commit", "git_branch", "git_dirty")
            if k in code
        }
    if section == "datasets":
        return {names.get(d, d[:12]): d[:12] for d in doc.get("inputs") or []}
    if section == "env":
        env = doc.get("env") or {}
        out = {k: env.get(k) for k in ("python", "platform") if k in env}
        out.update({f"packages.{k}": v for k, v in (env.get("packages") or {}).items()})
        return out
    raise NbopsError(f"unknown diff section {section!r}; use any of {', '.join(DIFF_SECTIONS)}")


def _same(values: list[Any]) -> bool:
    def key(v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return ("number", "nan" if v != v else float(v))  # 1 == 1.0, nan == nan
        return ("other", repr(v))

    return len({key(v) for v in values}) == 1


def diff(
    *runs: Any,
    sections: Sequence[str] = DIFF_SECTIONS,
    only_differing: bool = True,
) -> pd.DataFrame:
    """Compare two or more runs side by side: ``nbops.diff("a1b2", "c3d4")``.

    Returns a DataFrame with columns ``section``, ``key``, one column per run id and
    ``differs``; sections are run, params, metrics, tags, code (cell source, notebook,
    git), datasets (input name -> digest) and env (python, platform, package versions).
    A value a run lacks is shown as "—". With ``only_differing`` (default) only rows that
    differ are kept. Raises RunNotFoundError naming unknown ids."""
    import pandas as pd

    docs = _run_docs(runs)
    if len(docs) < 2:
        raise NbopsError("diff needs two or more runs, e.g. nbops.diff(run_a, run_b)")
    for s in sections:
        if s not in DIFF_SECTIONS:
            raise NbopsError(f"unknown diff section {s!r}; use any of {', '.join(DIFF_SECTIONS)}")
    names = _dataset_names({d for doc in docs for d in doc.get("inputs") or []})
    ids = [d["run_id"] for d in docs]
    rows = []
    for section in sections:
        per_run = [_section_values(doc, section, names) for doc in docs]
        keys = list(dict.fromkeys(k for values in per_run for k in values))
        if section != "run":
            keys.sort()
        for key in keys:
            values = [v.get(key, _MISSING) for v in per_run]
            differs = not _same(values)
            if only_differing and not differs:
                continue
            rows.append(
                {
                    "section": section,
                    "key": key,
                    **dict(zip(ids, values, strict=True)),
                    "differs": differs,
                }
            )
    columns = ["section", "key", *ids, "differs"]
    return pd.DataFrame(rows, columns=columns)


def code_diff(run_a: Any, run_b: Any) -> str:
    """A unified diff of two runs' recorded cell sources ('' when they are the same)."""
    a, b = _run_docs([run_a, run_b])
    src_a = (a.get("code") or {}).get("source") or ""
    src_b = (b.get("code") or {}).get("source") or ""
    return "".join(
        difflib.unified_diff(
            src_a.splitlines(keepends=True),
            src_b.splitlines(keepends=True),
            fromfile=f"run {a['run_id']}",
            tofile=f"run {b['run_id']}",
        )
    )


# -- best run -------------------------------------------------------------------------


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise NbopsError(f"mode must be 'max' or 'min', not {mode!r}")


def best_run(
    metric: str,
    mode: str = "max",
    experiment: str | None = None,
    runs: Any = None,
    status: str | None = "FINISHED",
) -> dict[str, Any]:
    """The full record of the run with the highest (``mode="max"``) or lowest
    (``"min"``) value of ``metric`` among finished runs (of ``experiment``, or of
    ``runs``: ids or a DataFrame). Ties go to the newest run. Raises NbopsError naming
    the metric and the metrics that exist when no run has it."""
    from .tracking.api import get_run

    _check_mode(mode)
    frame = select_runs(runs, experiment=experiment)
    if status is not None and len(frame):
        frame = frame[frame["status"] == status]
    col = f"metrics.{metric.removeprefix('metrics.')}"
    values = frame[col].dropna() if col in frame.columns else None
    if values is None or values.empty:
        known = sorted(
            c[len("metrics.") :]
            for c in frame.columns
            if c.startswith("metrics.") and frame[c].notna().any()
        )
        where = f" in experiment {experiment!r}" if experiment else ""
        raise NbopsError(
            f"no {status.lower() + ' ' if status else ''}run{where} has the metric "
            f"{metric!r}; the metrics recorded are {known or 'none'}"
        )
    values = values.astype(float)
    # runs() is newest first, so idxmax/idxmin (first occurrence) prefer the newest
    index = values.idxmax() if mode == "max" else values.idxmin()
    return get_run(frame.loc[index, "run_id"])


def tag_best(
    metric: str,
    mode: str = "max",
    experiment: str | None = None,
    runs: Any = None,
) -> dict[str, Any]:
    """Find :func:`best_run` and tag it ``best=true`` (with ``best_metric`` and
    ``best_mode``); runs among the same candidates that were tagged ``best=true``
    before get ``best=false``, so exactly one carries it. Returns the tagged run."""
    from .store import get_store
    from .tracking.api import set_run_tags

    best = best_run(metric, mode=mode, experiment=experiment, runs=runs)
    candidates = select_runs(runs, experiment=experiment)
    with get_store().transaction():  # the old best loses the tag as the new one gets it
        if "tags.best" in candidates.columns:
            for run_id in candidates.loc[candidates["tags.best"] == "true", "run_id"]:
                if run_id != best["run_id"]:
                    set_run_tags(run_id, {"best": "false"})
        best["tags"] = set_run_tags(
            best["run_id"], {"best": "true", "best_metric": metric, "best_mode": mode}
        )
    return best


# -- figures --------------------------------------------------------------------------


def metric_curves(runs: Any, metrics: Sequence[str] | None = None) -> go.Figure:
    """A plotly line chart of the step metrics of ``runs`` (ids or a DataFrame): one
    trace per run and metric, x = step. ``metrics`` defaults to every metric with a
    history; a metric logged once is a single point."""
    import plotly.graph_objects as go

    from .store import get_store
    from .tracking.api import metric_history

    frame = select_runs(runs)
    store = get_store()
    fig = go.Figure()
    for _, row in frame.iterrows():
        keys = list(metrics) if metrics else store.step_keys(row["run_id"])
        for key in keys:
            try:
                hist = metric_history(row["run_id"], key)
            except NbopsError:  # this run lacks the metric
                continue
            fig.add_trace(
                go.Scatter(
                    x=hist["step"],
                    y=hist["value"],
                    mode="lines+markers",
                    name=f"{row['name']} · {key}",
                    hovertemplate=f"run {row['run_id']}<br>{key}"
                    "<br>step %{x}<br>value %{y}<extra></extra>",
                )
            )
    fig.update_layout(
        title="Metric curves",
        xaxis_title="step",
        yaxis_title="value",
        template="plotly_white",
        legend_title="run · metric",
    )
    if not fig.data:
        fig.add_annotation(
            text="no step metrics for these runs",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
        )
    return fig


def parallel_coordinates(
    runs: Any = None,
    metric: str | None = None,
    params: Sequence[str] | None = None,
    experiment: str | None = None,
) -> go.Figure:
    """A plotly parallel-coordinates figure: one axis per param (numeric, or categories
    mapped to positions) and a last axis for ``metric``, lines coloured by it. Runs
    without the metric are left out. ``metric`` defaults to the first metric."""
    import pandas as pd
    import plotly.graph_objects as go

    frame = select_runs(runs, experiment=experiment)
    metric_cols = [c for c in frame.columns if c.startswith("metrics.") and frame[c].notna().any()]
    if metric is None:
        if not metric_cols:
            raise NbopsError("these runs have no metrics to plot")
        metric = metric_cols[0][len("metrics.") :]
    col = f"metrics.{metric.removeprefix('metrics.')}"
    if col not in frame.columns or frame[col].notna().sum() == 0:
        raise NbopsError(
            f"no run here has the metric {metric!r}; the metrics are "
            f"{sorted(c[len('metrics.') :] for c in metric_cols) or 'none'}"
        )
    frame = frame[frame[col].notna()]
    if params is None:
        params = [
            c[len("params.") :]
            for c in frame.columns
            if c.startswith("params.")
            and frame[c].notna().any()
            and frame[c].astype(str).nunique() > 1
        ]
    dims = []
    for name in params:
        pcol = f"params.{name}"
        if pcol not in frame.columns:
            raise NbopsError(f"no run here has the param {name!r}")
        values = frame[pcol]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all():
            values = numeric.astype(float)
            if (values > 0).all() and values.max() / values.min() >= 100:
                # a loguniform-style param: spread the decades evenly (parcoords is linear)
                dims.append({"label": f"log10({name})", "values": values.map(math.log10).tolist()})
            else:
                dims.append({"label": name, "values": values.tolist()})
        else:
            labels = values.astype(str)
            cats = sorted(labels.unique())
            dims.append(
                {
                    "label": name,
                    "values": [cats.index(v) for v in labels],
                    "tickvals": list(range(len(cats))),
                    "ticktext": cats,
                }
            )
    metric_values = frame[col].astype(float).tolist()
    dims.append({"label": metric, "values": metric_values})
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": metric_values,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": metric}},
            },
            dimensions=dims,
        )
    )
    fig.update_layout(title=f"Params against {metric} ({len(frame)} runs)", template="plotly_white")
    return fig
