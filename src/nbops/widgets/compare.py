"""``nbops.compare_widget(...)``: an ipywidgets view over runs, with the run table, a diff of
selected runs, their metric curves, params against a metric, and the best run.

The view is thin: every number it shows comes from ``nbops.evaluation`` and the
tracking API (the same functions a user calls), and it never reads store files.
Panes other than the table are drawn when first opened, so building the view for
thousands of runs costs one ``nbops.runs()`` and one page of HTML.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w  # this module loads only when nbops.compare_widget is first used

from .. import evaluation

if TYPE_CHECKING:
    import pandas as pd

TABS = ("Runs", "Diff", "Curves", "Parallel", "Best")
ANY = "(any)"
_STYLE = """<style>
.nbops-cmp table{border-collapse:collapse;font:12px/1.4 var(--jp-code-font-family,monospace)}
.nbops-cmp th,.nbops-cmp td{padding:2px 8px;border-bottom:1px solid #d0d7de;text-align:left;
white-space:nowrap;max-width:18em;overflow:hidden;text-overflow:ellipsis}
.nbops-cmp th{background:#f6f8fa;position:sticky;top:0}
.nbops-cmp tr.sel td{background:#ddf4ff}
.nbops-cmp .FINISHED{color:#1a7f37}.nbops-cmp .FAILED{color:#cf222e}
.nbops-cmp .KILLED{color:#9a6700}.nbops-cmp .RUNNING{color:#0969da}
.nbops-cmp .d{background:#fff8c5}
</style>"""


def compare_widget(
    runs: Any = None, experiment: str | None = None, metric: str | None = None, page_size: int = 25
) -> Any:
    """An ipywidgets view to compare runs: ``runs`` is None (all runs, or those of
    ``experiment``), a list of run ids, or the DataFrame ``nbops.runs()`` returned;
    ``metric`` preselects the metric for the parallel-coordinates and best-run panes.

    Raises RunNotFoundError naming unknown run ids. With no runs it shows "no runs yet".
    """
    frame = evaluation.select_runs(runs, experiment=experiment)
    if frame.empty:
        return w.HTML(
            '<div class="nbops-cmp" style="padding:8px;color:#57606a"><b>nbops</b>: no runs '
            "yet. Put <code>%%track</code> on a cell or use "
            "<code>with nbops.start_run():</code>, then call <code>nbops.compare_widget()</code> "
            "again.</div>"
        )
    return CompareView(frame, metric=metric, page_size=page_size)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape(str(value))


def _label(col: str) -> str:
    return col.split(".", 1)[1] if col.startswith(("params.", "metrics.", "tags.")) else col


def _table_html(page: pd.DataFrame, selected: set[str], differing: set[str]) -> str:
    cols = [c for c in page.columns if c not in ("end_time", "parent_id")]
    groups = {"params.": "param", "metrics.": "metric", "tags.": "tag"}
    head = "".join(
        f'<th title="{html.escape(c)}">'
        f"{next((g + ' ' for p, g in groups.items() if c.startswith(p)), '')}"
        f"{html.escape(_label(c))}</th>"
        for c in cols
    )
    body = []
    for row in page.itertuples(index=False):
        values = dict(zip(page.columns, row, strict=True))
        cls = ' class="sel"' if values["run_id"] in selected else ""
        tds = []
        for c in cols:
            extra = values["status"] if c == "status" else ("d" if c in differing else "")
            tds.append(f'<td class="{extra}">{_cell(values[c])}</td>')
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return (
        f'{_STYLE}<div class="nbops-cmp" style="max-height:420px;overflow:auto">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</div>"
    )


class CompareView(w.VBox):
    """The comparison widget (a VBox: a title line over the tabs in TABS)."""

    def __init__(self, frame: pd.DataFrame, metric: str | None = None, page_size: int = 25) -> None:
        super().__init__()
        self.frame = frame
        self.page = 0
        self.selected: list[str] = []
        self._drawn: set[str] = set()
        metrics = [c for c in frame.columns if c.startswith("metrics.")]
        self.metric_names = [_label(c) for c in metrics]
        if metric is not None and f"metrics.{metric}" not in metrics:
            from .._errors import NbopsError

            raise NbopsError(
                f"none of these runs has the metric {metric!r}; their metrics "
                f"are {self.metric_names or 'none'}"
            )
        metric = metric or (self.metric_names[0] if self.metric_names else None)

        lay = w.Layout(width="auto")
        self.status = w.Dropdown(
            description="status",
            layout=lay,
            options=[ANY, *sorted(frame["status"].dropna().unique())],
        )
        self.experiment = w.Dropdown(
            description="experiment",
            layout=lay,
            options=[ANY, *sorted(frame["experiment"].dropna().unique())],
        )
        self.tag = w.Text(
            placeholder="tag key or key=value",
            description="tag",
            continuous_update=False,
            layout=w.Layout(width="220px"),
        )
        self.text = w.Text(
            placeholder="run id or name",
            description="search",
            continuous_update=False,
            layout=w.Layout(width="220px"),
        )
        sortable = [c for c in frame.columns if c not in ("parent_id", "end_time")]
        self.sort_by = w.Dropdown(
            description="sort by",
            layout=lay,
            options=[(_label(c) if c.count(".") else c, c) for c in sortable],
            value="start_time",
        )
        self.order = w.ToggleButtons(
            options=[("desc", False), ("asc", True)], value=False, style={"button_width": "52px"}
        )
        self.only_diff = w.Checkbox(
            description="only columns that differ", indent=False, layout=w.Layout(width="auto")
        )
        self.page_size = w.Dropdown(
            options=[10, 25, 50, 100],
            value=page_size if page_size in (10, 25, 50, 100) else 25,
            description="per page",
            layout=w.Layout(width="150px"),
        )
        self.prev = w.Button(
            icon="chevron-left", tooltip="previous page", layout=w.Layout(width="40px")
        )
        self.next = w.Button(
            icon="chevron-right", tooltip="next page", layout=w.Layout(width="40px")
        )
        self.pager = w.HTML()
        self.table = w.HTML()
        self.pick = w.SelectMultiple(description="select", rows=6, layout=w.Layout(width="520px"))
        self.picked = w.HTML()
        self.clear = w.Button(description="clear selection", layout=w.Layout(width="auto"))

        self.diff_out = w.Output()
        self.curves_out = w.Output()
        self.par_metric = w.Dropdown(
            options=self.metric_names, value=metric, description="metric", layout=lay
        )
        self.par_out = w.Output()
        self.best_metric = w.Dropdown(
            options=self.metric_names, value=metric, description="metric", layout=lay
        )
        self.best_mode = w.ToggleButtons(
            options=["max", "min"], value="max", style={"button_width": "52px"}
        )
        self.best_info = w.HTML()
        self.best_button = w.Button(
            description="tag as best (best=true)",
            icon="star",
            button_style="success",
            layout=w.Layout(width="auto"),
        )

        filters = w.HBox(
            [self.status, self.experiment, self.tag, self.text],
            layout=w.Layout(flex_flow="row wrap"),
        )
        sorting = w.HBox(
            [
                self.sort_by,
                self.order,
                self.only_diff,
                self.page_size,
                self.prev,
                self.pager,
                self.next,
            ],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        runs_pane = w.VBox(
            [filters, sorting, self.table, w.HBox([self.pick, w.VBox([self.picked, self.clear])])]
        )
        self.tabs = w.Tab(
            children=[
                runs_pane,
                self.diff_out,
                self.curves_out,
                w.VBox([self.par_metric, self.par_out]),
                w.VBox(
                    [w.HBox([self.best_metric, self.best_mode]), self.best_info, self.best_button]
                ),
            ],
            titles=TABS,
        )
        self.title = w.HTML()
        self.children = [self.title, self.tabs]

        for control in (
            self.status,
            self.experiment,
            self.tag,
            self.text,
            self.sort_by,
            self.order,
            self.only_diff,
            self.page_size,
        ):
            control.observe(self._filters_changed, names="value")
        self.prev.on_click(lambda _: self.go(self.page - 1))
        self.next.on_click(lambda _: self.go(self.page + 1))
        self.pick.observe(self._picked, names="value")
        self.clear.on_click(lambda _: self.select([]))
        self.tabs.observe(lambda _: self._draw_tab(), names="selected_index")
        self.par_metric.observe(lambda _: self._redraw("Parallel"), names="value")
        self.best_metric.observe(lambda _: self._redraw("Best"), names="value")
        self.best_mode.observe(lambda _: self._redraw("Best"), names="value")
        self.best_button.on_click(lambda _: self.tag_best())
        self.refresh()

    # -- the table -------------------------------------------------------------------
    def _query(self) -> dict[str, Any]:
        return {
            "status": None if self.status.value == ANY else self.status.value,
            "experiment": None if self.experiment.value == ANY else self.experiment.value,
            "tag": self.tag.value.strip() or None,
            "text": self.text.value.strip() or None,
            "sort_by": self.sort_by.value,
            "ascending": self.order.value,
            "only_differing": self.only_diff.value,
            "page_size": self.page_size.value,
        }

    def _filters_changed(self, _: Any = None) -> None:
        self.page = 0
        self._drawn.discard("Parallel")
        self.refresh()

    def go(self, page: int) -> None:
        """Show page ``page`` (0-based) of the filtered table."""
        self.page = max(0, min(page, self.pages - 1))
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the Runs tab's page from the filter, sort and page controls."""
        query = self._query()
        self.view, self.total = evaluation.table_view(self.frame, page=self.page, **query)
        self.pages = max(1, -(-self.total // query["page_size"]))
        differing = set(evaluation.differing_columns(self.view)) if len(self.view) > 1 else set()
        self.table.value = _table_html(self.view, set(self.selected), differing)
        self.pager.value = (
            f"page {self.page + 1} of {self.pages} · {self.total:,} of {len(self.frame):,} runs"
        )
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1
        self.title.value = (
            f"<b>nbops · compare</b> {len(self.frame):,} runs · {len(self.selected)} selected"
        )
        options = [
            (f"{r.run_id} · {r.name} · {r.status}", r.run_id)
            for r in self.view[["run_id", "name", "status"]].itertuples(index=False)
        ]
        self._syncing = True
        try:
            self.pick.options = options
            on_page = {run_id for _, run_id in options}
            self.pick.value = tuple(i for i in self.selected if i in on_page)
        finally:
            self._syncing = False
        self._show_selection()

    # -- selection ----------------------------------------------------------------------
    def _picked(self, change: dict) -> None:
        if getattr(self, "_syncing", False):
            return
        on_page = set(self.view["run_id"])
        keep = [i for i in self.selected if i not in on_page]
        self.select(keep + [i for i in self.view["run_id"] if i in change["new"]])

    def select(self, run_ids: list[str]) -> None:
        """Select runs (any ids in the table) for the diff and curves panes."""
        evaluation.select_runs(list(run_ids))  # unknown ids raise, naming them
        self.selected = list(dict.fromkeys(run_ids))
        self._drawn -= {"Diff", "Curves"}
        self.refresh()
        self._draw_tab()

    def _show_selection(self) -> None:
        if self.selected:
            ids = ", ".join(self.selected[:8]) + (" …" if len(self.selected) > 8 else "")
            self.picked.value = f"<b>{len(self.selected)} selected</b>: {html.escape(ids)}"
        else:
            self.picked.value = "select runs here for the Diff and Curves tabs"

    # -- the other panes ------------------------------------------------------------
    def _redraw(self, tab: str) -> None:
        self._drawn.discard(tab)
        self._draw_tab()

    def _draw_tab(self) -> None:
        tab = TABS[self.tabs.selected_index or 0]
        if tab in self._drawn or tab == "Runs":
            return
        self._drawn.add(tab)
        getattr(self, f"draw_{tab.lower()}")()

    def _subject(self) -> list[str]:
        # curves without a selection: the runs on the current page
        return self.selected or list(self.view["run_id"][:10])

    def draw_diff(self) -> None:
        """Redraw the Diff tab for the runs selected in the Runs tab."""
        if len(self.selected) < 2:
            _show(
                self.diff_out,
                {"text/html": "<i>select two or more runs in the Runs tab to diff them</i>"},
            )
            return
        table = evaluation.diff(*self.selected)
        parts = [_STYLE, '<div class="nbops-cmp">', table.to_html(index=False, na_rep=""), "</div>"]
        patch = evaluation.code_diff(self.selected[0], self.selected[1])
        if patch:
            parts.append(f"<b>cell source</b><pre>{html.escape(patch)}</pre>")
        _show(self.diff_out, {"text/html": "".join(parts), "text/plain": table.to_string()})

    def draw_curves(self) -> None:
        """Redraw the Curves tab (step metrics of the selected or listed runs)."""
        _show(self.curves_out, _figure(evaluation.metric_curves(self._subject())))

    def draw_parallel(self) -> None:
        """Redraw the Parallel tab for the chosen metric."""
        if not self.par_metric.value:
            _show(self.par_out, {"text/html": "<i>these runs have no metrics</i>"})
            return
        query = {**self._query(), "page_size": len(self.frame), "only_differing": False}
        ids = evaluation.table_view(self.frame, **query)[0]["run_id"].tolist()
        if not ids:
            _show(self.par_out, {"text/html": "<i>no runs match the filters</i>"})
            return
        _show(
            self.par_out,
            _figure(evaluation.parallel_coordinates(ids, metric=self.par_metric.value)),
        )

    def draw_best(self) -> None:
        """Show the best run for the chosen metric and direction, and enable tagging it."""
        if not self.best_metric.value:
            self.best_info.value = "<i>these runs have no metrics</i>"
            self.best_button.disabled = True
            return
        run = evaluation.best_run(
            self.best_metric.value, mode=self.best_mode.value, runs=self.frame
        )
        self.best_run = run
        value = run["metrics"][self.best_metric.value]
        params = ", ".join(f"{k}={v!r}" for k, v in run["params"].items())
        tagged = " · <b>tagged best</b>" if run["tags"].get("best") == "true" else ""
        self.best_info.value = (
            f"best by <b>{html.escape(self.best_metric.value)}</b> ({self.best_mode.value}): "
            f"run <code>{run['run_id']}</code> {html.escape(run['name'])} = {value:.6g}"
            f"{tagged}<br><small>{html.escape(params)}</small>"
        )
        self.best_button.disabled = False

    def tag_best(self) -> dict[str, Any]:
        """What the button does: ``evaluation.tag_best`` over these runs."""
        run = evaluation.tag_best(
            self.best_metric.value, mode=self.best_mode.value, runs=self.frame
        )
        self.frame = evaluation.select_runs(self.frame)  # show the new tags
        self.refresh()
        self._redraw("Best")
        return run


def _figure(fig: Any) -> dict[str, Any]:
    """The mime bundle JupyterLab renders a plotly figure from (no plotly.js download)."""
    import json

    import plotly.io as pio

    return {
        "application/vnd.plotly.v1+json": {
            **json.loads(pio.to_json(fig)),
            "config": {"displaylogo": False},
        },
        "text/plain": f"<plotly figure: {fig.layout.title.text}>",
    }


def _show(out: w.Output, bundle: dict[str, Any]) -> None:
    # set the Output's content directly: works in a kernel and in plain Python alike
    out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
