"""The runs table for a terminal: the columns a person reads first, fitted to the
terminal's width, drawn by rich.

Default columns, in the order they get space: run id, name, (experiment, when the
runs come from several), status, start, duration, the metrics most runs share (up to
four), then the params whose values differ between the listed runs. Columns that do
not fit are left out, and the footer says so.
"""

from __future__ import annotations

import math
from typing import Any

from ._common import fail

ALIASES = {
    "run": "run_id",
    "id": "run_id",
    "start": "start_time",
    "end": "end_time",
    "parent": "parent_id",
}
ID_WIDTH = 8  # run ids resolve by unique prefix (6+ characters), as the lab badge shows them
HEADERS = {"run_id": "run", "start_time": "start", "end_time": "end", "parent_id": "parent"}
MAX_METRICS = 4
GAP = 2  # spaces between columns
STATUS_STYLE = {"FINISHED": "green", "FAILED": "red", "RUNNING": "yellow", "KILLED": "magenta"}


def resolve_column(frame: Any, name: str) -> str:
    """The frame column meant by ``name``: an exact column, a short name (``run``,
    ``start``) or a bare param/metric/tag key (``acc`` -> ``metrics.acc``)."""
    name = ALIASES.get(name, name)
    if name in frame.columns:
        return name
    for prefix in ("metrics.", "params.", "tags."):
        if prefix + name in frame.columns:
            return prefix + name
    import difflib

    base = [HEADERS.get(c, c) for c in frame.columns if "." not in c]
    groups = {
        g: [c.split(".", 1)[1] for c in frame.columns if c.startswith(g + ".")]
        for g in ("metrics", "params", "tags")
    }
    close = difflib.get_close_matches(name, base + [k for ks in groups.values() for k in ks])
    fail(
        f"no column {name!r}"
        + (f" (did you mean {', '.join(close)}?)" if close else "")
        + f"; columns: {', '.join(base)}"
        + "".join(f"; {g}: {_few(keys)}" for g, keys in groups.items() if keys)
    )


def _few(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def default_columns(frame: Any) -> list[str]:
    """The columns a person wants first, in the order they get space: run, name,
    status, the two main metrics, duration, start, (experiment), more metrics, the
    params that differ. ``display_order`` puts them in reading order."""
    metrics = [c for c in frame.columns if c.startswith("metrics.") and frame[c].notna().any()]
    # metrics most runs have first; a metric with one value for every run says little
    metrics.sort(
        key=lambda c: (
            -int(frame[c].notna().sum()),
            frame[c].dropna().astype(str).nunique() <= 1,
            c,
        )
    )
    metrics = metrics[:MAX_METRICS]
    params = [
        c
        for c in frame.columns
        if c.startswith("params.") and frame[c].dropna().astype(str).nunique() > 1
    ]
    params.sort(key=lambda c: (-int(frame[c].notna().sum()), c))
    several = frame["experiment"].nunique(dropna=True) > 1
    return (
        ["run_id", "name", "status", *metrics[:2], "duration", "start_time"]
        + (["experiment"] if several else [])
        + metrics[2:]
        + params
    )


def display_order(cols: list[str]) -> list[str]:
    """``cols`` in reading order: who and when first, then metrics, then params."""
    first = ["run_id", "name", "experiment", "status", "start_time", "duration"]
    rest = [c for c in cols if c not in first]
    metrics = [c for c in rest if c.startswith("metrics.")]
    return [c for c in first if c in cols] + metrics + [c for c in rest if c not in metrics]


def header(col: str, cols: list[str]) -> str:
    """``metrics.acc`` -> ``acc`` unless another shown column has the same short name."""
    if col in HEADERS:
        return HEADERS[col]
    if "." in col:
        short = col.split(".", 1)[1]
        if sum(c.split(".", 1)[-1] == short for c in cols) == 1:
            return short
    return col


def cell(col: str, value: Any) -> str:
    """One value as the table shows it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if col == "duration":
        return duration(float(value))
    if col in ("run_id", "parent_id"):
        return str(value)[:ID_WIDTH]
    if col in ("start_time", "end_time"):
        return local_time(str(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def local_time(stamp: str) -> str:
    """A stored UTC time stamp as the terminal's local time, ``11-26 14:43:45``."""
    from datetime import datetime

    try:
        return (
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            .astimezone()
            .strftime("%m-%d %H:%M:%S")
        )
    except ValueError:
        return stamp[5:19].replace("T", " ")


def duration(seconds: float) -> str:
    """``<1 ms``, ``420 ms``, ``4.2 s``, ``12 s``, ``3 m 05 s``, ``1 h 02 m``."""
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} m {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} m"


def fit(
    cols: list[str], cells: dict[str, list[str]], width: int, keep: int = 2
) -> tuple[list[str], dict[str, int]]:
    """The leading columns that fit in ``width`` characters, and each one's width. The
    first ``keep`` columns always stay; a long name column gives way before others do."""
    natural = {c: max([len(header(c, cols))] + [len(v) for v in cells[c]]) for c in cols}
    widths = {c: min(w, 40 if c == "name" else 24) for c, w in natural.items()}
    shown: list[str] = []
    used = 0
    for c in cols:
        need = widths[c] + (GAP if shown else 0)
        if len(shown) >= keep and used + need > width:
            # squeeze the name column (down to 12) before giving up on a column
            spare = widths.get("name", 0) - 12 if "name" in shown else 0
            if spare > 0 and used + need - spare <= width:
                widths["name"] -= used + need - width
                used = width
                shown.append(c)
                continue
            continue  # a narrower column further on may still fit
        used += need
        shown.append(c)
    return shown, widths


def render(frame: Any, cols: list[str], width: int, ordered: bool = False) -> list[str]:
    """Print the table, no wider than ``width``: the columns of ``cols`` that fit, in
    that order of importance, shown in reading order unless ``ordered`` (the user's
    own order). Returns the columns left out."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    cells = {c: [cell(c, v) for v in frame[c].tolist()] for c in cols}
    shown, widths = fit(cols, cells, width)
    if not ordered:
        shown = display_order(shown)
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        header_style="bold",
    )
    for c in shown:
        numeric = c == "duration" or c.startswith("metrics.")
        table.add_column(
            header(c, shown),
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=widths[c],
            min_width=min(widths[c], len(header(c, shown))),
        )
    for i in range(len(frame)):
        row = []
        for c in shown:
            text = cells[c][i]
            style = STATUS_STYLE.get(text) if c == "status" else None
            row.append(f"[{style}]{text}[/]" if style else _escape(text))
        table.add_row(*row)
    Console(width=width, soft_wrap=False, highlight=False).print(table)
    return [c for c in cols if c not in shown]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
