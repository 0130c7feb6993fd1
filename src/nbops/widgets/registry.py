"""The registry widget: models and versions, stage/alias/rollback controls, history and
lineage, and the gate rules with the last evaluation of each version. A thin view:
every button calls a function of :mod:`nbops.registry` (the same a user would call) and
shows what came back; nothing here changes the store itself.

``nbops.registry_widget(name=None)`` returns one.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from .. import registry
from .._errors import NbopsError

STAGE_COLOURS = {
    "Production": "#1a7f37",
    "Staging": "#9a6700",
    "Archived": "#6e7781",
    None: "#0969da",
}
_CSS = """<style>
.nbops-reg table{border-collapse:collapse;font:12px/1.4 system-ui,sans-serif;margin:4px 0}
.nbops-reg th,.nbops-reg td{border-bottom:1px solid #d0d7de;padding:3px 10px;text-align:left}
.nbops-reg th{background:#f6f8fa;font-weight:600}
.nbops-reg tr.sel td{background:#ddf4ff}
.nbops-reg-badge{border-radius:10px;padding:1px 8px;color:#fff;font-size:11px;white-space:nowrap}
.nbops-reg-alias{border:1px solid #8c959f;border-radius:10px;padding:0 6px;font-size:11px;margin-right:3px}
.nbops-reg-lin{display:flex;align-items:stretch;gap:6px;font:12px/1.4 system-ui,sans-serif;flex-wrap:wrap}
.nbops-reg-box{border:1px solid #8c959f;border-radius:6px;padding:6px 9px;min-width:120px;max-width:280px;background:#f6f8fa}
.nbops-reg-box b{display:block;margin-bottom:2px}
.nbops-reg-arrow{align-self:center;font-size:18px;color:#57606a}
.nbops-reg-muted{color:#57606a}
</style>"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def stage_badge(stage: str | None) -> str:
    """A coloured HTML badge naming the stage (None shows as "None")."""
    return (
        f'<span class="nbops-reg-badge" style="background:{STAGE_COLOURS.get(stage, "#57606a")}">'
        f"{_esc(stage or 'None')}</span>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _esc(value)


def versions_html(frame: Any, selected: int | None = None, max_metrics: int = 3) -> str:
    """The versions table of one model (a :func:`nbops.registry.models` frame)."""
    if not len(frame):
        return '<div class="nbops-reg-muted">no versions</div>'
    metrics = [c for c in frame.columns if c.startswith("metrics.")][:max_metrics]
    head = "".join(
        f"<th>{_esc(h)}</th>"
        for h in [
            "version",
            "stage",
            "aliases",
            "run",
            "created",
            "description",
            *[m[len("metrics.") :] for m in metrics],
        ]
    )
    rows = []
    for row in frame.to_dict("records"):
        aliases = "".join(
            f'<span class="nbops-reg-alias">@{_esc(a)}</span>' for a in row["aliases"]
        )
        created = row["created"].strftime("%Y-%m-%d %H:%M") if row["created"] is not None else ""
        cells = [
            f"v{row['version']}",
            stage_badge(row["stage"]),
            aliases,
            f"<code>{_esc(row['run_id'])}</code> {_esc(row.get('run_name'))}",
            created,
            _esc(row.get("description")),
        ]
        cells += [_fmt(row.get(m)) if row.get(m) == row.get(m) else "" for m in metrics]
        cls = ' class="sel"' if row["version"] == selected else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def history_html(frame: Any, limit: int = 50) -> str:
    """The audit log table (a :func:`nbops.model_history` frame), newest first."""
    if not len(frame):
        return '<div class="nbops-reg-muted">no events</div>'
    head = "".join(
        f"<th>{h}</th>"
        for h in ("time", "user", "action", "version", "from", "to", "alias", "reason")
    )
    rows = []
    for row in frame.iloc[::-1].head(limit).to_dict("records"):
        cells = [
            row["time"].strftime("%Y-%m-%d %H:%M:%S"),
            _esc(row["user"]),
            _esc(row["action"]),
            f"v{row['version']}",
            _esc(row["from"]),
            _esc(row["to"]),
            _esc(row["alias"]),
            _esc(row["reason"]),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def lineage_html(lin: dict[str, Any]) -> str:
    """A small left-to-right diagram: datasets -> run -> model version -> stage."""
    rec, run = lin["model"], lin["run"]
    boxes = []
    data = []
    for ds in lin.get("datasets") or []:
        if ds.get("missing"):
            data.append(f"<code>{_esc(ds['digest'][:10])}</code> (missing)")
        else:
            shape = "×".join(str(s) for s in ds.get("shape") or [])
            cols = ", ".join(list(ds.get("schema") or {})[:6])
            data.append(
                f"{_esc(ds.get('name') or 'data')} <span class='nbops-reg-muted'>"
                f"{shape}</span><br><span class='nbops-reg-muted'>{_esc(cols)}</span>"
            )
    boxes.append(
        "<b>datasets</b>"
        + ("<br>".join(data) if data else "<span class='nbops-reg-muted'>none recorded</span>")
    )
    if run.get("missing"):
        boxes.append(
            f"<b>run {_esc(run['run_id'])}</b><span class='nbops-reg-muted'>deleted</span>"
        )
    else:
        params = ", ".join(
            f"{_esc(k)}={_fmt(v)}" for k, v in list((run.get("params") or {}).items())[:5]
        )
        metrics = ", ".join(
            f"{_esc(k)}={_fmt(v)}" for k, v in list((run.get("metrics") or {}).items())[:4]
        )
        code = run.get("code") or {}
        commit = (code.get("git_commit") or "")[:8]
        env = lin.get("environment") or {}
        boxes.append(
            f"<b>run {_esc(run['run_id'])}</b>{_esc(run.get('name'))} · {_esc(run.get('status'))}"
            f"<br><span class='nbops-reg-muted'>params</span> {params or '–'}"
            f"<br><span class='nbops-reg-muted'>metrics</span> {metrics or '–'}"
            f"<br><span class='nbops-reg-muted'>git</span> {_esc(commit or 'none')}"
            f"{' (dirty)' if code.get('git_dirty') else ''} · python {_esc(env.get('python'))}"
        )
    kind = (rec.get("model_class") or "").rsplit(".", 1)[-1]
    boxes.append(
        f"<b>{_esc(rec['name'])} v{rec['version']}</b>{_esc(kind)}"
        f"<br><span class='nbops-reg-muted'>sha256</span> <code>{_esc(rec['sha256'][:12])}</code>"
        f"<br><span class='nbops-reg-muted'>inputs</span> "
        f"{len((rec.get('signature') or {}).get('inputs') or [])} columns"
    )
    aliases = " ".join(
        f'<span class="nbops-reg-alias">@{_esc(a)}</span>' for a in rec.get("aliases") or []
    )
    boxes.append(f"<b>stage</b>{stage_badge(rec.get('stage'))} {aliases}")
    arrow = '<div class="nbops-reg-arrow">→</div>'
    return (
        '<div class="nbops-reg-lin">'
        + arrow.join(f'<div class="nbops-reg-box">{b}</div>' for b in boxes)
        + "</div>"
    )


def gates_html(rules: list[str], evaluation: dict[str, Any] | None) -> str:
    """The model's gate rules and one version's last evaluation (rule, measured,
    threshold, pass/fail), as the API returns them (``nbops.gates``, ``get_model()["gates"]``)."""
    if not rules:
        head = (
            '<div class="nbops-reg-muted">no gate rules: any version may be promoted. '
            'Add some with nbops.set_gates(name, ["accuracy >= 0.9", ...])</div>'
        )
    else:
        head = (
            "<b>rules</b><ul>"
            + "".join(f"<li><code>{_esc(r)}</code></li>" for r in rules)
            + "</ul>"
        )
    if not evaluation:
        return head + '<div class="nbops-reg-muted">this version was not evaluated yet</div>'
    verdict = (
        "<span style='color:#1a7f37'>passed</span>"
        if evaluation.get("passed")
        else "<span style='color:#cf222e'>failed</span>"
    )
    rows = []
    for r in evaluation.get("results") or []:
        ok = "PASS" if r["passed"] else "FAIL"
        colour = "#1a7f37" if r["passed"] else "#cf222e"
        threshold = f"{r.get('op') or ''} {_fmt(r.get('threshold'))}".strip()
        rows.append(
            f"<tr><td><code>{_esc(r['rule'])}</code></td><td>{_fmt(r.get('measured'))}"
            f"</td><td>{threshold}</td><td style='color:{colour}'><b>{ok}</b></td>"
            f"<td class='nbops-reg-muted'>{_esc(r.get('detail'))}</td></tr>"
        )
    return (
        head + f"<div>last evaluation for {_esc(evaluation.get('stage'))}: {verdict} "
        f"<span class='nbops-reg-muted'>{_esc(evaluation.get('when'))}</span></div>"
        "<table><tr><th>rule</th><th>measured</th><th>threshold</th><th>result</th>"
        f"<th>detail</th></tr>{''.join(rows)}</table>"
    )


class RegistryWidget(W.VBox):
    """Models and their versions, with controls to move a version between stages, set
    an alias and roll back (each with a reason), and the selected version's history and
    lineage. Every action calls the :mod:`nbops.registry` API."""

    def __init__(self, name: str | None = None) -> None:
        self.model = W.Dropdown(description="model", layout=W.Layout(width="260px"))
        self.version = W.Dropdown(description="version", layout=W.Layout(width="180px"))
        self.refresh_button = W.Button(
            description="Refresh", icon="refresh", layout=W.Layout(width="100px")
        )
        self.table = W.HTML()
        self.reason = W.Text(
            placeholder="why? (recorded in the audit log)",
            description="reason",
            layout=W.Layout(width="420px"),
        )
        self.stage = W.Dropdown(
            options=[
                ("None", "None"),
                ("Staging", "Staging"),
                ("Production", "Production"),
                ("Archived", "Archived"),
            ],
            value="Staging",
            description="stage",
            layout=W.Layout(width="200px"),
        )
        self.move_button = W.Button(
            description="Move", button_style="primary", layout=W.Layout(width="90px")
        )
        self.force = W.Checkbox(
            value=False,
            description="override failed gates",
            indent=False,
            layout=W.Layout(width="190px"),
        )
        self.alias = W.Text(
            placeholder="champion", description="alias", layout=W.Layout(width="200px")
        )
        self.alias_button = W.Button(description="Set alias", layout=W.Layout(width="90px"))
        self.rollback_button = W.Button(
            description="Roll back",
            button_style="warning",
            icon="undo",
            layout=W.Layout(width="110px"),
        )
        self.status = W.HTML()
        self.history = W.HTML()
        self.lineage = W.HTML()
        self.gates = W.HTML()
        tabs = W.Tab(children=[self.lineage, self.history, self.gates])
        tabs.set_title(0, "Lineage")
        tabs.set_title(1, "History")
        tabs.set_title(2, "Gates")
        self.tabs = tabs

        self.model.observe(self._on_model, names="value")
        self.version.observe(lambda _: self._show_version(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.move_button.on_click(lambda _: self.move())
        self.alias_button.on_click(lambda _: self.set_alias())
        self.rollback_button.on_click(lambda _: self.rollback())

        super().__init__(
            children=[
                W.HTML(_CSS + "<b style='font:14px system-ui'>nbops · model registry</b>"),
                W.HBox([self.model, self.version, self.refresh_button]),
                self.table,
                self.reason,
                W.HBox(
                    [
                        self.stage,
                        self.move_button,
                        self.force,
                        self.alias,
                        self.alias_button,
                        self.rollback_button,
                    ]
                ),
                self.status,
                tabs,
            ]
        )
        self.add_class("nbops-reg")
        self.refresh(select=name)

    # -- reading ---------------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        """Re-read the registry; keep (or set) the selected model and version."""
        names = sorted(registry.models()["name"].unique().tolist())
        keep = select or self.model.value
        if select is not None and select not in names:
            self._say(f"no registered model {select!r} yet", error=True)
        self.model.options = names
        if names:
            self.model.value = keep if keep in names else names[0]
        self._load_model()

    def _on_model(self, _: Any) -> None:
        self._load_model()

    def _load_model(self, version: int | None = None) -> None:
        name = self.model.value
        if not name:
            self.table.value = (
                '<div class="nbops-reg-muted">no registered models yet: log one '
                "with nbops.log_model(model) in a run, then "
                'nbops.register(run_id, "name")</div>'
            )
            self.version.options = []
            self.history.value = self.lineage.value = self.gates.value = ""
            return
        frame = registry.models(name)
        self._frame = frame
        versions = [int(v) for v in frame["version"]]
        current = version or self.version.value
        self.version.options = [(f"v{v}", v) for v in versions]
        self.version.value = current if current in versions else versions[-1]
        self._show_version()

    def _show_version(self) -> None:
        name, version = self.model.value, self.version.value
        if not name or version is None:
            return
        self.table.value = versions_html(registry.models(name), selected=version)
        self.history.value = history_html(registry.model_history(name))
        self.lineage.value = lineage_html(registry.lineage(name, version))
        self.gates.value = gates_html(
            registry.gates(name), registry.get_model(name, version=version).get("gates")
        )

    # -- actions: each one calls the API and reports what came back --------------------
    def _say(self, text: str, error: bool = False) -> None:
        colour = "#cf222e" if error else "#1a7f37"
        self.status.value = (
            f'<pre style="color:{colour};white-space:pre-wrap;margin:2px 0;'
            f'font:12px monospace">{_esc(text)}</pre>'
        )

    def _reason(self) -> str | None:
        reason = self.reason.value.strip()
        if not reason:
            self._say("type a reason first: it goes into the audit log", error=True)
            return None
        return reason

    def _act(self, action: Any) -> None:
        reason = self._reason()
        if reason is None:
            return
        try:
            message, version = action(reason)
        except NbopsError as exc:
            self._show_version()  # a refused move may still have recorded a gate evaluation
            self._say(str(exc), error=True)
            return
        self.reason.value = ""
        self._load_model(version)
        self._say(message)

    def move(self) -> None:
        """Move the selected version to the chosen stage."""

        def act(reason: str) -> tuple[str, int]:
            stage = None if self.stage.value == "None" else self.stage.value
            rec = registry.transition(
                self.model.value, self.version.value, stage, reason=reason, force=self.force.value
            )
            self.force.value = False
            return f"{rec['name']} v{rec['version']} is now {rec['stage'] or 'None'}", rec[
                "version"
            ]

        self._act(act)

    def set_alias(self) -> None:
        """Point the typed alias at the selected version."""

        def act(reason: str) -> tuple[str, int]:
            rec = registry.set_alias(
                self.model.value, self.alias.value.strip(), self.version.value, reason=reason
            )
            return f"@{self.alias.value.strip()} now points to v{rec['version']}", rec["version"]

        self._act(act)

    def rollback(self) -> None:
        """Roll the selected model back to its previous Production version."""

        def act(reason: str) -> tuple[str, int]:
            rec = registry.rollback(self.model.value, reason=reason)
            return (f"rolled back: v{rec['version']} is Production again", rec["version"])

        self._act(act)


def registry_widget(name: str | None = None) -> RegistryWidget:
    """The registry widget (models, versions, stage/alias/rollback controls, history,
    lineage and gates), showing model ``name`` first when given."""
    return RegistryWidget(name=name)
