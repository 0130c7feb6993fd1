"""Alerts: threshold rules on monitoring metrics, delivered to channels.

    import nbops
    nbops.alerts.add("drift_share", ">=", 0.3, channel=nbops.alerts.slack(url))
    nbops.alerts.add("drift.*.score", ">=", 0.2)           # every column's score (glob)
    nbops.alerts.add("accuracy", "<", 0.85, channel=nbops.alerts.email("me@x.org"))
    report = nbops.drift(reference, current)
    nbops.alerts.check(report)      # also done by nbops.log_drift(report)
    nbops.alerts.history()          # DataFrame of fired alerts

Rules live in the store (table ``alert_rules``), so every kernel and the CLI share
them. A fired alert always goes to the local log (the ``nbops.alerts`` logger) and
to the rule's channel, and is stored as an event of kind "alert" with the delivery
outcome. A failing channel (unreachable webhook, SMTP refusal) never raises into
the caller: the event records ``delivered: False`` and the reason, and a warning is
shown.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import operator
import sys
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from ._errors import AlertDeliveryWarning, AlertError
from ._util import current_user, utc_now

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("nbops.alerts")
RULES_TABLE = "alert_rules"

#: what a rule may do besides notifying (None: only notify)
ACTIONS = (None, "retrain")
OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
PRESETS = ("json", "slack", "dingtalk", "wecom")


# -- channels ----------------------------------------------------------------------------


def log_channel() -> dict[str, Any]:
    """Only the local log (every alert goes there anyway)."""
    return {"type": "log"}


def webhook(
    url: str, preset: str = "json", timeout: float = 5.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An HTTP POST of a JSON payload. ``preset``: "json" (nbops' own payload with the
    alert fields), "slack", "dingtalk" or "wecom" (their text-message formats)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise AlertError(f"webhook url must start with http:// or https://, got {url!r}")
    if preset not in PRESETS:
        raise AlertError(f"unknown webhook preset {preset!r}; use one of: {', '.join(PRESETS)}")
    return {
        "type": "webhook",
        "url": url,
        "preset": preset,
        "timeout": float(timeout),
        "headers": dict(headers or {}),
    }


def slack(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """A Slack incoming webhook (``{"text": ...}``); AlertError for a bad URL."""
    return webhook(url, "slack", timeout)


def dingtalk(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """A DingTalk robot webhook (its text-message format); AlertError for a bad URL."""
    return webhook(url, "dingtalk", timeout)


def wecom(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """A WeCom (WeChat Work) group-robot webhook; AlertError for a bad URL."""
    return webhook(url, "wecom", timeout)


def email(
    to: str | list[str],
    host: str = "localhost",
    port: int = 25,
    sender: str | None = None,
    username: str | None = None,
    password: str | None = None,
    starttls: bool = False,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Email over SMTP. The password is kept in the rule as given: prefer an SMTP relay
    that needs none, or pass it from an environment variable."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients or not all("@" in r for r in recipients):
        raise AlertError(f"email needs recipient addresses like 'me@example.org', got {to!r}")
    return {
        "type": "email",
        "to": recipients,
        "host": host,
        "port": int(port),
        "sender": sender or f"nbops@{host}",
        "username": username,
        "password": password,
        "starttls": bool(starttls),
        "timeout": float(timeout),
    }


def _as_channel(channel: Any) -> dict[str, Any]:
    if channel is None or channel == "log":
        return log_channel()
    if isinstance(channel, str):
        if channel.startswith(("http://", "https://")):
            return webhook(channel)
        if "@" in channel:
            return email(channel)
        raise AlertError(
            f"unknown channel {channel!r}; use 'log', a webhook URL, an email address, or "
            "nbops.alerts.webhook/slack/dingtalk/wecom/email(...)"
        )
    if isinstance(channel, dict) and channel.get("type") in ("log", "webhook", "email"):
        return dict(channel)
    raise AlertError(f"a channel is 'log', a URL, an address or a channel dict, got {channel!r}")


# -- rules -------------------------------------------------------------------------------


def _store():
    from .store import get_store

    return get_store()


def add(
    metric: str,
    op: str,
    value: float,
    channel: Any = "log",
    name: str | None = None,
    action: str | None = None,
    model: str | None = None,
    data: dict[str, str] | None = None,
    notebook: str | None = None,
) -> dict[str, Any]:
    """Add a rule: fire when ``metric op value`` holds. ``metric`` is a metric name
    (``drift_share``, ``accuracy``, ``latency_p99_ms``, ``drift.<column>.score``...) or a
    glob over names (``drift.*.score``).

    ``action="retrain"`` makes the rule act as well as notify: when it fires during
    :func:`nbops.monitor_service` (or ``nbops monitor``), the Production version of
    ``model`` (default: the monitored service's model) is retrained with
    :func:`nbops.retrain`, its inputs replaced by ``data`` (variable -> source: a file,
    ``"traffic"`` for the service's labelled traffic, or ``"model:NAME@VERSION"``), by
    re-running its recorded cell, or the training ``notebook`` when given.
    Returns the stored rule (with its ``rule_id``). Raises AlertError for an unknown
    operator or action, a non-numeric value or a bad channel."""
    if action not in ACTIONS:
        raise AlertError(
            f"unknown action {action!r}; use one of {[a for a in ACTIONS if a]} "
            "or leave it out to only notify"
        )
    if action is None and (model or data or notebook):
        raise AlertError(
            "model=, data= and notebook= belong to action='retrain'; add action='retrain'"
        )
    if data is not None and not (
        isinstance(data, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
    ):
        raise AlertError(
            "data maps the training cell's variable names to sources, e.g. "
            "{'train_df': 'traffic'} or {'train_df': 'data/latest.csv'}"
        )
    if op not in OPS:
        raise AlertError(f"unknown operator {op!r}; use one of: {' '.join(OPS)}")
    if not isinstance(metric, str) or not metric:
        raise AlertError("metric must be a metric name such as 'drift_share'")
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise AlertError(f"value must be a number, got {value!r}") from None
    rule = {
        "rule_id": uuid.uuid4().hex[:10],
        "name": name or f"{metric} {op} {threshold:g}",
        "metric": metric,
        "op": op,
        "value": threshold,
        "channel": _as_channel(channel),
        "created": utc_now(),
        "enabled": True,
    }
    if action is not None:
        rule["action"] = {"type": action, "model": model, "data": dict(data or {})}
        if notebook is not None:
            rule["action"]["notebook"] = str(notebook)
    _store().add_rule(rule)
    return _public(rule)


def _public(rule: dict[str, Any]) -> dict[str, Any]:
    out = dict(rule)
    ch = dict(out.get("channel") or {})
    if ch.get("password"):
        ch["password"] = "***"
    out["channel"] = ch
    return out


def rules() -> list[dict[str, Any]]:
    """All rules, oldest first (passwords masked)."""
    return [_public(r) for r in _store().rules()]


def remove(rule_id: str) -> None:
    """Delete a rule; AlertError naming the known ids if there is none."""
    if not _store().remove_rule(rule_id):
        known = [r["rule_id"] for r in rules()]
        raise AlertError(f"no alert rule {rule_id!r}; rules: {known}")


def clear() -> int:
    """Delete every rule; returns how many there were."""
    return _store().clear_rules()


# -- evaluation --------------------------------------------------------------------------


def _metrics_of(source: Any) -> dict[str, float]:
    if hasattr(source, "metrics") and callable(source.metrics):
        return dict(source.metrics())
    if isinstance(source, dict):
        return source
    raise AlertError(
        f"check() needs a dict of metrics or a report with .metrics(), got {type(source).__name__}"
    )


def check(source: Any, context: str | None = None) -> list[dict[str, Any]]:
    """Evaluate every rule against ``source`` (a DriftReport or a dict {metric: value})
    and deliver the alerts that fire. Returns the stored alert events. Delivery
    failures are recorded, warned about, and never raised."""
    metrics = _metrics_of(source)
    fired = []
    for rule in _store().rules():
        if not rule.get("enabled", True):
            continue
        keys = (
            [k for k in metrics if fnmatch.fnmatchcase(k, rule["metric"])]
            if any(ch in rule["metric"] for ch in "*?[")
            else ([rule["metric"]] if rule["metric"] in metrics else [])
        )
        for key in keys:
            try:
                value = float(metrics[key])
            except (TypeError, ValueError):
                continue
            if math.isnan(value) or not OPS[rule["op"]](value, rule["value"]):
                continue
            fired.append(_fire(rule, key, value, context))
    return fired


def _fire(rule: dict[str, Any], metric: str, value: float, context: str | None) -> dict[str, Any]:
    message = (
        f"nbops alert '{rule['name']}': {metric} = {value:.6g} "
        f"({rule['op']} {rule['value']:g})" + (f" [{context}]" if context else "")
    )
    log.warning(message)
    channel = rule["channel"]
    delivered, error = True, None
    try:
        if channel["type"] == "webhook":
            _send_webhook(channel, message, rule, metric, value, context)
        elif channel["type"] == "email":
            _send_email(channel, message, rule, metric, value, context)
    except Exception as exc:  # noqa: BLE001 - a channel must never break the caller
        delivered, error = False, f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"nbops: alert not delivered by {channel['type']}: {error}",
            AlertDeliveryWarning,
            stacklevel=3,
        )
    event = {
        "kind": "alert",
        "source": "alerts",
        "action": "fired",
        "who": current_user(),
        "when": utc_now(),
        "rule_id": rule["rule_id"],
        "rule": rule["name"],
        "metric": metric,
        "op": rule["op"],
        "threshold": rule["value"],
        "value": value,
        "message": message,
        "channel": channel["type"],
        "delivered": delivered,
        "error": error,
        "context": context,
    }
    if rule.get("action"):  # done by whoever monitors (nbops.monitor_service), not here
        event["pending_action"] = dict(rule["action"])
    try:
        _store().add_event(event)
    except Exception as exc:  # noqa: BLE001 - storing must not break the caller either
        warnings.warn(
            f"nbops: alert could not be stored: {exc}", AlertDeliveryWarning, stacklevel=3
        )
    return event


def payload(preset: str, message: str, alert: dict[str, Any]) -> dict[str, Any]:
    """The JSON body a webhook preset sends."""
    if preset == "slack":
        return {"text": message}
    if preset in ("dingtalk", "wecom"):
        return {"msgtype": "text", "text": {"content": message}}
    return {"text": message, "alert": alert}


def _send_webhook(channel, message, rule, metric, value, context) -> None:
    import urllib.error
    import urllib.request

    alert = {
        "rule_id": rule["rule_id"],
        "rule": rule["name"],
        "metric": metric,
        "op": rule["op"],
        "threshold": rule["value"],
        "value": value,
        "context": context,
    }
    body = json.dumps(payload(channel["preset"], message, alert)).encode()
    req = urllib.request.Request(
        channel["url"],
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "nbops-alerts",
            **channel.get("headers", {}),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=channel.get("timeout", 5.0)) as resp:
            text = resp.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise AlertError(f"webhook {channel['url']} answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise AlertError(f"webhook {channel['url']} unreachable: {exc.reason}") from None
    if channel["preset"] in ("dingtalk", "wecom"):  # they answer 200 with an error code
        try:
            code = json.loads(text).get("errcode", 0)
        except (ValueError, AttributeError):
            code = 0
        if code:
            raise AlertError(f"webhook {channel['url']} refused the message: {text[:200]}")


def _send_email(channel, message, rule, metric, value, context) -> None:
    import smtplib
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = f"[nbops alert] {rule['name']}"
    msg["From"] = channel["sender"]
    msg["To"] = ", ".join(channel["to"])
    msg.set_content(
        f"{message}\n\nmetric: {metric}\nvalue: {value}\nrule: {rule['metric']} "
        f"{rule['op']} {rule['value']}\ncontext: {context or '-'}\n"
    )
    with smtplib.SMTP(channel["host"], channel["port"], timeout=channel["timeout"]) as smtp:
        if channel.get("starttls"):
            smtp.starttls()
        if channel.get("username"):
            smtp.login(channel["username"], channel.get("password") or "")
        smtp.send_message(msg)


# -- history -----------------------------------------------------------------------------

HISTORY_COLUMNS = [
    "when",
    "rule_id",
    "rule",
    "metric",
    "op",
    "threshold",
    "value",
    "channel",
    "delivered",
    "error",
    "context",
    "message",
]


def history(rule_id: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """Fired alerts (events of kind "alert"), oldest first; ``limit`` keeps the newest."""
    import pandas as pd

    events = [
        e
        for e in _store().all_events()
        if e.get("kind") == "alert" and (rule_id is None or e.get("rule_id") == rule_id)
    ]
    events.sort(key=lambda e: e.get("when", ""))
    if limit is not None:
        events = events[-int(limit) :] if limit > 0 else []
    return pd.DataFrame(
        [{k: e.get(k) for k in HISTORY_COLUMNS} for e in events], columns=HISTORY_COLUMNS
    )


_module = sys.modules[__name__]  # `nbops.alerts` resolves to this module
