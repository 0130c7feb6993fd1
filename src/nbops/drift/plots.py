"""Plotly figures of a drift report, built from its aggregated distributions.

A report keeps, per column, shares per histogram bin (numeric) or per top category
(categorical), never raw rows; so a figure of a 1,000,000-row column is a few hundred
numbers. ``*_spec`` functions return plain plotly figure dicts (no plotly import, used
by the HTML report); ``*_figure`` wrap them in ``plotly.graph_objects.Figure``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from .report import DriftReport

REF_COLOR = "#4c78a8"
CUR_COLOR = "#f58518"


def distribution_spec(
    column: str, dist: dict[str, Any], row: dict[str, Any] | None = None, height: int = 260
) -> dict[str, Any]:
    """Reference vs current shares of one column as an overlaid bar chart (dict)."""
    if dist["kind"] == "numeric":
        edges = dist["edges"]
        x = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
        width = [b - a for a, b in zip(edges[:-1], edges[1:], strict=False)]
        common = {"x": x, "width": width, "opacity": 0.55}
        barmode = "overlay"
    else:
        common = {"x": dist["labels"]}
        barmode = "group"
    xaxis = {"type": "category"} if dist["kind"] != "numeric" else {}
    title = column
    if row is not None and row.get("test"):
        verdict = "DRIFT" if row["drifted"] else "no drift"
        score = row["p_value"] if row.get("p_value") is not None else row["statistic"]
        title = (
            f"{column}: {verdict} ({row['test']} {_fmt(score)}, threshold {_fmt(row['threshold'])})"
        )
    return {
        "data": [
            {
                "type": "bar",
                "name": "reference",
                "y": dist["reference"],
                "marker": {"color": REF_COLOR},
                **common,
            },
            {
                "type": "bar",
                "name": "current",
                "y": dist["current"],
                "marker": {"color": CUR_COLOR},
                **common,
            },
        ],
        "layout": {
            "title": {"text": title, "font": {"size": 13}},
            "barmode": barmode,
            "height": height,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
            "yaxis": {"title": {"text": "share"}, "tickformat": ".0%"},
            "xaxis": xaxis,
            "legend": {"orientation": "h", "y": -0.2},
            "template": "plotly_white",
        },
    }


def scores_spec(report: DriftReport) -> dict[str, Any]:
    """Bar chart of each column's score relative to its threshold (1 = on the line)."""
    names, ratios, colors = [], [], []
    for row in report.columns:
        names.append(row["column"])
        ratios.append(_relative(row))
        colors.append(CUR_COLOR if row["drifted"] else REF_COLOR)
    return {
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": ratios,
                "marker": {"color": colors},
                "hovertemplate": "%{x}: %{y:.3g} x threshold<extra></extra>",
            }
        ],
        "layout": {
            "title": {
                "text": "Drift strength (score relative to threshold; > 1 drifts)",
                "font": {"size": 13},
            },
            "height": 280,
            "margin": {"l": 50, "r": 10, "t": 40, "b": 80},
            "shapes": [
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": 1,
                    "y1": 1,
                    "line": {"dash": "dash", "color": "#888"},
                }
            ],
            "yaxis": {"type": "log"},
            "template": "plotly_white",
        },
    }


def _relative(row: dict[str, Any]) -> float:
    # p-value tests drift when p is small: strength threshold / p; distances: d / threshold
    thr = row["threshold"] or 1e-12
    if row.get("p_value") is not None:
        return min(thr / max(row["p_value"], 1e-300), 1e6)
    stat = row["statistic"] if row["statistic"] is not None else 0.0
    return max(min(stat / thr, 1e6), 1e-6)


def distribution_figure(report: DriftReport, column: str) -> go.Figure:
    """The distribution overlay of ``column`` as a plotly Figure."""
    import plotly.graph_objects as go

    from .._errors import DriftError

    dist = report.distributions.get(column)
    if dist is None:
        raise DriftError(
            f"no distribution for column {column!r} in this report; columns with plots: "
            f"{sorted(report.distributions)}"
        )
    row = next((r for r in report.columns if r["column"] == column), None)
    return go.Figure(distribution_spec(column, dist, row))


def scores_figure(report: DriftReport) -> go.Figure:
    """A plotly bar chart of every column's drift score against its threshold."""
    import plotly.graph_objects as go

    return go.Figure(scores_spec(report))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}"
