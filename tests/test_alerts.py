"""nbops.alerts: rules in the store, evaluation against metrics and drift reports,
delivery to a real local webhook server and a real local SMTP server, failures
recorded and never raised, history from the events table."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

import nbops
from nbops.alerts import AlertDeliveryWarning, AlertError

# -- a real webhook receiver on 127.0.0.1 --------------------------------------------------


class Receiver:
    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((self.path, json.loads(body)))
                if self.path == "/broken":
                    self.send_response(500)
                    self.end_headers()
                    return
                answer = (
                    b'{"errcode": 310000, "errmsg": "keywords not in content"}'
                    if self.path == "/dingtalk-refuses"
                    else b'{"errcode": 0}'
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# -- a real (small) SMTP server on 127.0.0.1 ----------------------------------------------


class SMTPServer:
    """Speaks enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, QUIT. With refuse=True it
    rejects every recipient (550)."""

    def __init__(self, refuse: bool = False):
        self.messages: list[dict] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                def say(line):
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 localhost test SMTP")
                mail = {"rcpt": [], "data": ""}
                while True:
                    line = self.rfile.readline().decode().rstrip("\r\n")
                    if not line:
                        return
                    cmd = line[:4].upper()
                    if cmd in ("EHLO", "HELO"):
                        say("250 localhost")
                    elif cmd == "MAIL":
                        mail["from"] = line
                        say("250 OK")
                    elif cmd == "RCPT":
                        if refuse:
                            say("550 mailbox unavailable")
                        else:
                            mail["rcpt"].append(line)
                            say("250 OK")
                    elif cmd == "DATA":
                        say("354 end with .")
                        chunks = []
                        while True:
                            chunk = self.rfile.readline().decode()
                            if chunk in (".\r\n", ".\n", ""):
                                break
                            chunks.append(chunk)
                        mail["data"] = "".join(chunks)
                        outer.messages.append(dict(mail))
                        say("250 queued")
                    elif cmd == "QUIT":
                        say("221 bye")
                        return
                    else:
                        say("250 OK")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp():
    s = SMTPServer()
    yield s
    s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drifting_report():
    r = np.random.default_rng(0)
    ref = pd.DataFrame({"a": r.normal(size=2000), "b": r.normal(size=2000)})
    cur = pd.DataFrame({"a": r.normal(1.0, 1, 2000), "b": r.normal(size=2000)})
    return nbops.drift(ref, cur)


# -- rules -------------------------------------------------------------------------------


def test_rules_are_stored_listed_and_removed(store):
    rule = nbops.alerts.add("drift_share", ">=", 0.3)
    assert rule["channel"] == {"type": "log"}
    assert [r["rule_id"] for r in nbops.alerts.rules()] == [rule["rule_id"]]
    nbops.alerts.remove(rule["rule_id"])
    assert nbops.alerts.rules() == []
    with pytest.raises(AlertError, match="no alert rule"):
        nbops.alerts.remove("nope")


def test_bad_rules_are_refused_with_clear_errors(store):
    with pytest.raises(AlertError, match="unknown operator"):
        nbops.alerts.add("drift_share", "=>", 0.3)
    with pytest.raises(AlertError, match="number"):
        nbops.alerts.add("drift_share", ">", "high")
    with pytest.raises(AlertError, match="preset"):
        nbops.alerts.webhook("http://127.0.0.1:1/x", preset="teams")
    with pytest.raises(AlertError, match="unknown channel"):
        nbops.alerts.add("drift_share", ">", 0.3, channel="pager")


def test_a_rule_fires_on_a_drift_report_and_is_in_history(store, caplog):
    rule = nbops.alerts.add("drift_share", ">=", 0.5)
    nbops.alerts.add("drift_share", ">=", 0.9)  # does not hold: share is 0.5
    with caplog.at_level("WARNING", logger="nbops.alerts"):
        fired = nbops.alerts.check(drifting_report(), context="nightly")
    assert [e["rule_id"] for e in fired] == [rule["rule_id"]]
    assert "drift_share = 0.5" in caplog.text
    hist = nbops.alerts.history()
    assert len(hist) == 1
    row = hist.iloc[0]
    assert row["metric"] == "drift_share" and row["value"] == 0.5
    assert bool(row["delivered"]) and row["context"] == "nightly"


def test_glob_rule_fires_once_per_matching_column(store):
    nbops.alerts.add("drift.*.drifted", "==", 1)
    fired = nbops.alerts.check(drifting_report())
    assert [e["metric"] for e in fired] == ["drift.a.drifted"]


def test_plain_metrics_such_as_latency_can_be_checked(store):
    nbops.alerts.add("latency_p99_ms", ">", 250)
    nbops.alerts.add("accuracy", "<", 0.8)
    fired = nbops.alerts.check({"latency_p99_ms": 300.0, "accuracy": 0.91})
    assert [e["metric"] for e in fired] == ["latency_p99_ms"]


def test_log_drift_evaluates_the_rules(store):
    nbops.alerts.add("drift_share", ">=", 0.5)
    nbops.log_drift(drifting_report())
    assert len(nbops.alerts.history()) == 1


# -- webhook channels --------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, check",
    [
        (
            "json",
            lambda body: body["alert"]["metric"] == "drift_share" and "drift_share" in body["text"],
        ),
        ("slack", lambda body: set(body) == {"text"} and "drift_share" in body["text"]),
        (
            "dingtalk",
            lambda body: body["msgtype"] == "text" and "drift_share" in body["text"]["content"],
        ),
        (
            "wecom",
            lambda body: body["msgtype"] == "text" and "drift_share" in body["text"]["content"],
        ),
    ],
)
def test_webhook_presets_post_their_payload(store, receiver, preset, check):
    nbops.alerts.add(
        "drift_share",
        ">=",
        0.5,
        channel=nbops.alerts.webhook(f"{receiver.url}/hook", preset=preset),
    )
    (event,) = nbops.alerts.check(drifting_report())
    assert event["delivered"] and event["error"] is None
    ((path, body),) = receiver.posts
    assert path == "/hook" and check(body)


def test_unreachable_webhook_is_recorded_not_raised(store):
    url = f"http://127.0.0.1:{free_port()}/hook"
    nbops.alerts.add("drift_share", ">=", 0.5, channel=url)
    with pytest.warns(AlertDeliveryWarning, match="not delivered"):
        (event,) = nbops.alerts.check(drifting_report())
    assert not event["delivered"] and "unreachable" in event["error"]
    row = nbops.alerts.history().iloc[0]
    assert not row["delivered"] and "unreachable" in row["error"]


def test_webhook_http_error_and_dingtalk_refusal_are_failed_deliveries(store, receiver):
    nbops.alerts.add("drift_share", ">=", 0.5, channel=f"{receiver.url}/broken")
    nbops.alerts.add(
        "drift_share", ">=", 0.5, channel=nbops.alerts.dingtalk(f"{receiver.url}/dingtalk-refuses")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlertDeliveryWarning)
        events = nbops.alerts.check(drifting_report())
    assert [e["delivered"] for e in events] == [False, False]
    assert "HTTP 500" in events[0]["error"]
    assert "refused" in events[1]["error"]
    assert len(receiver.posts) == 2


# -- email -------------------------------------------------------------------------------


def test_email_is_sent_over_smtp(store, smtp):
    nbops.alerts.add(
        "drift_share",
        ">=",
        0.5,
        channel=nbops.alerts.email(
            "ops@example.org", host="127.0.0.1", port=smtp.port, sender="nbops@example.org"
        ),
    )
    (event,) = nbops.alerts.check(drifting_report())
    assert event["delivered"], event["error"]
    (mail,) = smtp.messages
    assert "ops@example.org" in mail["rcpt"][0]
    assert "Subject: [nbops alert] drift_share >= 0.5" in mail["data"]
    assert "drift_share = 0.5" in mail["data"]


def test_smtp_refusal_is_recorded_not_raised(store):
    server = SMTPServer(refuse=True)
    try:
        nbops.alerts.add(
            "drift_share",
            ">=",
            0.5,
            channel=nbops.alerts.email("ops@example.org", host="127.0.0.1", port=server.port),
        )
        with pytest.warns(AlertDeliveryWarning):
            (event,) = nbops.alerts.check(drifting_report())
    finally:
        server.close()
    assert not event["delivered"] and "Refused" in event["error"]
    assert server.messages == []


def test_email_password_is_masked_in_listing(store):
    nbops.alerts.add(
        "accuracy",
        "<",
        0.8,
        channel=nbops.alerts.email("me@example.org", username="me", password="s3cret"),
    )
    assert nbops.alerts.rules()[0]["channel"]["password"] == "***"
