"""``nbops.drift_widget(reference, current, ...)``: a column picker, the distribution
overlay of the picked column, a test selector and a threshold for it, and the dataset
verdict.

The view is thin: every change calls ``nbops.drift`` with per-column ``method`` /
``threshold`` overrides (exactly what a user would pass) and redraws from the
returned DriftReport; the figure is ``DriftReport.figure``.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w  # this module loads only when nbops.drift_widget is first used

from ..drift import compute, stats

AUTO = "auto (Evidently 0.7 rule)"


def drift_widget(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    target: str | None = None,
    prediction: str | None = None,
    method: str | dict[str, str] | None = None,
    threshold: float | dict[str, float] | None = None,
    drift_share: float = 0.5,
) -> DriftView:
    """An ipywidgets view of ``nbops.drift(reference, current, ...)`` (same arguments).
    Raises what ``nbops.drift`` raises for bad input."""
    return DriftView(
        reference,
        current,
        columns=columns,
        target=target,
        prediction=prediction,
        method=method,
        threshold=threshold,
        drift_share=drift_share,
    )


class DriftView(w.VBox):
    """The drift widget: the report's summary table and per-column plots, with per-column
    method and threshold overrides that recompute the report (``nbops.drift_widget``)."""

    def __init__(
        self, reference: Any, current: Any, method: Any = None, threshold: Any = None, **kwargs: Any
    ) -> None:
        self._ref, self._cur, self._kwargs = reference, current, kwargs
        self._base_method, self._base_threshold = method, threshold
        self.method_overrides: dict[str, str] = {}
        self.threshold_overrides: dict[str, float] = {}
        self._quiet = False
        self.report = self._compute()

        self.verdict = w.HTML()
        self.column = w.Dropdown(description="column", options=self._column_options())
        self.method = w.Dropdown(description="test")
        self.threshold = w.BoundedFloatText(description="threshold", min=0.0, max=1e9, step=0.01)
        self.detail = w.HTML()
        self.error = w.HTML()
        self.plot = w.Output(layout=w.Layout(min_height="280px"))
        self.table = w.HTML()
        self.column.observe(lambda _: self._show_column(), names="value")
        self.method.observe(self._on_method, names="value")
        self.threshold.observe(self._on_threshold, names="value")
        super().__init__(
            [
                self.verdict,
                w.HBox([self.column, self.method, self.threshold]),
                self.error,
                self.detail,
                self.plot,
                self.table,
            ]
        )
        self._refresh()

    # -- the API calls ---------------------------------------------------------------
    def _merged(self, base: Any, overrides: dict[str, Any]) -> Any:
        if not overrides:
            return base
        cols = [r["column"] for r in self.report.columns] if hasattr(self, "report") else []
        merged = {}
        for col in set(cols) | set(overrides):
            value = overrides.get(col)
            if value is None:
                value = base.get(col) if isinstance(base, dict) else base
            if value is not None:
                merged[col] = value
        return merged or None

    def _compute(self):
        import warnings

        import nbops

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", compute.DriftWarning)  # listed in the view
            return nbops.drift(
                self._ref,
                self._cur,
                method=self._merged(self._base_method, self.method_overrides),
                threshold=self._merged(self._base_threshold, self.threshold_overrides),
                **self._kwargs,
            )

    def _recompute(self) -> None:
        try:
            self.report = self._compute()
            self.error.value = ""
        except Exception as exc:  # noqa: BLE001 - shown in the view, the old report stays
            self.error.value = f"<span style='color:#a11'>{html.escape(str(exc))}</span>"
        self._refresh()

    # -- events ----------------------------------------------------------------------
    def _on_method(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        col = self.column.value
        if change["new"] == AUTO:
            self.method_overrides.pop(col, None)
        else:
            self.method_overrides[col] = change["new"]
        self.threshold_overrides.pop(col, None)  # a new test starts at its own default
        self._recompute()

    def _on_threshold(self, change: dict[str, Any]) -> None:
        if self._quiet or change["new"] is None:
            return
        self.threshold_overrides[self.column.value] = float(change["new"])
        self._recompute()

    # -- drawing ---------------------------------------------------------------------
    def _column_options(self) -> list[str]:
        rows = sorted(self.report.columns, key=lambda r: (not r["drifted"], r["column"]))
        return [r["column"] for r in rows]

    def _refresh(self) -> None:
        rep = self.report
        color = "#a11" if rep.drifted else "#163"
        text = "Dataset drift detected" if rep.drifted else "No dataset drift"
        extra = ""
        if rep.missing.get("reference_only") or rep.missing.get("current_only"):
            extra += (
                f"; only in reference: {rep.missing['reference_only']}, only in current: "
                f"{rep.missing['current_only']}"
            )
        if rep.skipped:
            extra += "; skipped: " + ", ".join(s["column"] for s in rep.skipped)
        if rep.model:
            extra += f"; model drift: {'yes' if rep.model['drifted'] else 'no'}"
        self.verdict.value = (
            f"<b style='color:{color}'>{text}</b>: {rep.n_drifted} of {rep.n_tested} columns "
            f"drifted (share {rep.share:.2f}, limit {rep.drift_share:.2f}){html.escape(extra)}"
        )
        drifted = set(rep.drifted_columns)
        self.table.value = (
            "<div style='font-size:12px'>"
            + " &nbsp; ".join(
                f"<span style='color:{'#a11' if c in drifted else '#555'}'>{html.escape(c)}</span>"
                for c in self._column_options()
            )
            + "</div>"
        )
        self._show_column()

    def _show_column(self) -> None:
        from IPython.display import display

        col = self.column.value
        if col is None:
            return
        row = self.report.column(col)
        self._quiet = True
        try:
            options = [AUTO] + [name for name, m in stats.METHODS.items() if row["type"] in m.kinds]
            self.method.options = options
            self.method.value = self.method_overrides.get(col, AUTO)
            self.threshold.value = row["threshold"]
        finally:
            self._quiet = False
        score = "p-value" if row["p_value"] is not None else "statistic"
        value = row["p_value"] if row["p_value"] is not None else row["statistic"]
        self.detail.value = (
            f"<b>{html.escape(col)}</b> ({row['type']}, {row['role']}): test "
            f"<b>{row['test']}</b>, {score} {value:.4g}, threshold {row['threshold']:g} -> "
            + ("<b style='color:#a11'>DRIFT</b>" if row["drifted"] else "no drift")
            + (f" <i>{html.escape(row['note'])}</i>" if row["note"] else "")
        )
        self.plot.clear_output(wait=True)
        with self.plot:
            display(self.report.figure(col))
