"""DriftReport: per-column results, the dataset verdict, and its renderings (plain
data, JSON, a self-contained HTML file, inline notebook HTML); ``log_drift`` stores
one on a run."""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import DriftError
from .._util import to_jsonable

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_COLUMNS = ["column", "type", "test", "statistic", "p_value", "threshold", "drifted"]


@dataclass
class DriftReport:
    """What ``nbops.drift`` found. ``drifted`` is the dataset verdict, ``share`` the share
    of drifted feature columns, ``summary`` one row per tested column."""

    columns: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    missing: dict[str, list[str]]
    drift_share: float
    share: float
    n_drifted: int
    n_tested: int
    drifted: bool
    model: dict[str, Any] | None = None
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    rows: dict[str, int] = field(default_factory=dict)
    target: str | None = None
    prediction: str | None = None
    created: str = ""
    engine: str = "pandas"  # which engine computed it: "pandas" or "duckdb"

    def __repr__(self) -> str:
        verdict = "DRIFT" if self.drifted else "no drift"
        return (
            f"<DriftReport {verdict}: {self.n_drifted}/{self.n_tested} columns drifted "
            f"(share {self.share:.2f}, limit {self.drift_share:.2f})>"
        )

    # -- plain data --------------------------------------------------------------------
    @property
    def summary(self) -> pd.DataFrame:
        """DataFrame: column, type, test, statistic, p_value, threshold, drifted (+ role,
        note), one row per tested column."""
        import pandas as pd

        cols = [*SUMMARY_COLUMNS, "role", "note"]
        return pd.DataFrame([{k: r.get(k) for k in cols} for r in self.columns], columns=cols)

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns whose test says drift, in report order."""
        return [r["column"] for r in self.columns if r["drifted"]]

    def column(self, name: str) -> dict[str, Any]:
        """The result of one column; DriftError naming the tested columns otherwise."""
        for r in self.columns:
            if r["column"] == name:
                return dict(r)
        raise DriftError(
            f"column {name!r} was not tested; tested: {[r['column'] for r in self.columns]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as JSON-safe plain data."""
        return to_jsonable(
            {
                "created": self.created,
                "engine": self.engine,
                "drifted": self.drifted,
                "share": self.share,
                "drift_share": self.drift_share,
                "n_drifted": self.n_drifted,
                "n_tested": self.n_tested,
                "rows": self.rows,
                "target": self.target,
                "prediction": self.prediction,
                "columns": self.columns,
                "skipped": self.skipped,
                "missing": self.missing,
                "model": self.model,
                "distributions": self.distributions,
            },
            strict=True,
        )

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON (NaN as null, infinities as strings)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """A report from :meth:`to_dict`'s output (unknown keys are ignored)."""
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in keys})

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics (what ``log_drift`` logs and alert rules read):
        drift_share, drifted, n_drifted, ``<column>.score``, ``<column>.drifted``, and
        model quality values (``model.<name>.current``)."""
        out: dict[str, float] = {
            "drift_share": self.share,
            "drifted": float(self.drifted),
            "n_drifted": float(self.n_drifted),
        }
        for r in self.columns:
            score = r["p_value"] if r.get("p_value") is not None else r["statistic"]
            if score is not None and math.isfinite(score):
                out[f"drift.{r['column']}.score"] = float(score)
            if r.get("statistic") is not None and math.isfinite(r["statistic"]):
                out[f"drift.{r['column']}.statistic"] = float(r["statistic"])
            out[f"drift.{r['column']}.drifted"] = float(r["drifted"])
        if self.model:
            out["model_drifted"] = float(self.model["drifted"])
            for name, m in self.model["metrics"].items():
                if m["current"] is not None and math.isfinite(m["current"]):
                    out[name] = float(m["current"])
        return out

    # -- HTML --------------------------------------------------------------------------
    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """One self-contained HTML page (plotly.js embedded compressed, so it opens
        offline). Writes it to ``path`` when given; returns the HTML."""
        page = _page(self, full=True)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        return _page(self, full=False)

    def figure(self, column: str):
        """Plotly Figure of ``column``'s reference and current distributions."""
        from .plots import distribution_figure

        return distribution_figure(self, column)


# -- the HTML page ----------------------------------------------------------------------

_PLOTLY_GZ_B64: str | None = None


def _plotly_js_b64() -> str:
    """plotly.min.js gzipped and base64-encoded (about 1.9 MB instead of 4.8 MB); read
    from the installed plotly package without importing it, cached per process."""
    global _PLOTLY_GZ_B64
    if _PLOTLY_GZ_B64 is None:
        import importlib.util

        spec = importlib.util.find_spec("plotly")
        if spec is None or not spec.submodule_search_locations:
            raise DriftError("plotly is not installed; `pip install plotly` to render reports")
        js = Path(list(spec.submodule_search_locations)[0], "package_data", "plotly.min.js")
        _PLOTLY_GZ_B64 = base64.b64encode(gzip.compress(js.read_bytes(), 6, mtime=0)).decode()
    return _PLOTLY_GZ_B64


_CSS = """
.nbops-drift{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;
  color:#222;max-width:1100px}
.nbops-drift h2{margin:.2em 0}.nbops-drift h3{margin:1em 0 .3em}
.nbops-drift .verdict{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:600}
.nbops-drift .bad{background:#fde2e1;color:#a11}.nbops-drift .good{background:#e1f5e4;color:#163}
.nbops-drift table{border-collapse:collapse;margin:.4em 0}
.nbops-drift th,.nbops-drift td{border-bottom:1px solid #ddd;padding:3px 9px;text-align:left}
.nbops-drift tr.drift td{background:#fff1f0}
.nbops-drift .plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));
  gap:6px}
.nbops-drift .muted{color:#666}
"""

_LOADER = """
(function(){
  var root = document.getElementById("%(id)s");
  var figs = JSON.parse(document.getElementById("%(id)s-figs").textContent);
  function draw(){
    figs.forEach(function(f){
      var el = root.querySelector('[data-fig="' + f.id + '"]');
      if (el) window.Plotly.newPlot(el, f.spec.data, f.spec.layout,
                                    {displaylogo:false, responsive:true});
    });
  }
  if (window.Plotly) { draw(); return; }
  if (!window.__nbopsPlotly) {
    window.__nbopsPlotly = (async function(){
      var b64 = document.getElementById("%(id)s-plotly").textContent.trim();
      var bin = atob(b64), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      var code = await new Response(stream).text();
      var define = window.define; window.define = undefined;  // no AMD loader capture
      try { (0, eval)(code); } finally { window.define = define; }
    })();
  }
  window.__nbopsPlotly.then(draw);
})();
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _page(report: DriftReport, full: bool) -> str:
    import uuid

    from .plots import distribution_spec, scores_spec

    uid = "nbops-drift-" + uuid.uuid4().hex[:8]
    e = html.escape
    verdict = (
        "<span class='verdict bad'>Dataset drift detected</span>"
        if report.drifted
        else "<span class='verdict good'>No dataset drift</span>"
    )
    parts = [
        f"<div class='nbops-drift' id='{uid}'>",
        "<h2>nbops drift report</h2>",
        f"<p>{verdict} &nbsp; {report.n_drifted} of {report.n_tested} columns drifted "
        f"(share {report.share:.2f}; the dataset drifts at &ge; {report.drift_share:.2f}). "
        f"<span class='muted'>Reference {report.rows.get('reference', 0):,} rows, current "
        f"{report.rows.get('current', 0):,} rows; {e(report.created)}</span></p>",
    ]
    if report.model:
        m = report.model
        parts.append(
            f"<h3>Model quality ({e(m['task'])})</h3><table><tr><th>metric</th>"
            "<th>reference</th><th>current</th><th>relative drop</th><th>flagged</th>"
            "</tr>"
        )
        for name, v in m["metrics"].items():
            cls = " class='drift'" if v["flagged"] else ""
            parts.append(
                f"<tr{cls}><td>{e(name)}</td><td>{_fmt(v['reference'])}</td>"
                f"<td>{_fmt(v['current'])}</td><td>{_fmt(v['relative_drop'])}</td>"
                f"<td>{_fmt(v['flagged'])}</td></tr>"
            )
        parts.append(
            f"</table><p>Model drift: <b>{'yes' if m['drifted'] else 'no'}</b> "
            f"(limit: a relative drop above {m['quality_drop']:g})</p>"
        )
    parts.append(
        "<h3>Columns</h3><table><tr><th>column</th><th>role</th><th>type</th>"
        "<th>test</th><th>statistic</th><th>p-value</th><th>threshold</th>"
        "<th>drift</th><th>note</th></tr>"
    )
    for r in sorted(report.columns, key=lambda r: (not r["drifted"], r["column"])):
        cls = " class='drift'" if r["drifted"] else ""
        parts.append(
            f"<tr{cls}><td>{e(r['column'])}</td><td>{e(r['role'])}</td><td>{e(str(r['type']))}"
            f"</td><td>{e(r['test'])}</td><td>{_fmt(r['statistic'])}</td>"
            f"<td>{_fmt(r['p_value'])}</td><td>{_fmt(r['threshold'])}</td>"
            f"<td>{'DRIFT' if r['drifted'] else 'ok'}</td><td class='muted'>{e(r['note'])}"
            "</td></tr>"
        )
    parts.append("</table>")
    if report.skipped:
        parts.append(
            "<h3>Skipped columns</h3><ul>"
            + "".join(f"<li><b>{e(s['column'])}</b>: {e(s['reason'])}</li>" for s in report.skipped)
            + "</ul>"
        )
    only_ref, only_cur = report.missing.get("reference_only"), report.missing.get("current_only")
    if only_ref or only_cur:
        parts.append("<h3>Columns missing from one side</h3><ul>")
        if only_ref:
            parts.append(f"<li>only in reference: {e(', '.join(only_ref))}</li>")
        if only_cur:
            parts.append(f"<li>only in current: {e(', '.join(only_cur))}</li>")
        parts.append("</ul>")

    figs = []
    if report.columns:
        figs.append({"id": "scores", "spec": scores_spec(report)})
    order = sorted(report.columns, key=lambda r: (not r["drifted"], r["column"]))
    for i, r in enumerate(order):
        dist = report.distributions.get(r["column"])
        if dist is not None:
            figs.append({"id": f"c{i}", "spec": distribution_spec(r["column"], dist, r)})
    if figs:
        parts.append("<h3>Distributions</h3>")
        parts.append("<div data-fig='scores'></div>" if figs[0]["id"] == "scores" else "")
        parts.append(
            "<div class='plots'>"
            + "".join(f"<div data-fig='{f['id']}'></div>" for f in figs if f["id"] != "scores")
            + "</div>"
        )
        figs_json = json.dumps(to_jsonable(figs, strict=True), separators=(",", ":")).replace(
            "</", "<\\/"
        )
        parts.append(f"<script type='application/json' id='{uid}-figs'>{figs_json}</script>")
        parts.append(f"<script type='text/plain' id='{uid}-plotly'>{_plotly_js_b64()}</script>")
        parts.append(f"<script>{_LOADER % {'id': uid}}</script>")
    parts.append("</div>")
    body = "\n".join(parts)
    style = f"<style>{_CSS}</style>"
    if not full:
        return style + body
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>nbops drift report</title>" + style + "</head><body>" + body + "</body></html>"
    )
