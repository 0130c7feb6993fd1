"""The canary: a share of traffic goes to a candidate version, step by step.

``canary.json`` in the service folder holds the plan (``folder`` of the candidate,
``steps`` in percent, ``min_requests`` per step, ``max_error_rate``, ``max_p99_ms``).
The state (step, status, reason, history) is kept in ``logs/canary_state.json`` (written
atomically after every change), so a restart goes on where the service stopped. Each
step, rollback and promotion is appended to ``logs/events.jsonl`` through the
service's ``write_event``.
"""

import json
import math
import os
import threading
import time
import uuid
from typing import Any

from .codec import StartupError
from .model import ModelVersion


def percentile_99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class Canary:
    """Routes a share of traffic to a candidate version and moves through ``steps``.

    A step passes when the candidate has served ``min_requests`` with an error rate of
    at most ``max_error_rate`` and a p99 latency of at most ``max_p99_ms``. It fails as
    soon as it can no longer pass (more errors or slow requests than the step allows),
    and the canary rolls back to 0% for good. A candidate request that raises is
    answered by the stable version, so clients never see the candidate's failures."""

    def __init__(self, service: Any, candidate: ModelVersion, config: dict) -> None:
        self.service = service
        self.candidate = candidate
        steps = [float(s) for s in config.get("steps") or [10, 50, 100]]
        if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(steps):
            raise StartupError(f"canary steps {steps} must rise within (0, 100]")
        if steps[-1] != 100:
            steps.append(100.0)
        self.steps = steps
        self.min_requests = int(config.get("min_requests", 200))
        self.max_error_rate = float(config.get("max_error_rate", 0.01))
        self.max_p99_ms = float(config.get("max_p99_ms", 200))
        self.state_path = service.folder / "logs" / "canary_state.json"
        self.lock = threading.Lock()
        self.step = 0
        self.status = "running"
        self.reason = ""
        self.history: list[dict] = []
        self._n = 0
        self._reset_window()
        if self.state_path.is_file():
            saved = json.loads(self.state_path.read_text())
            if saved.get("candidate") == candidate.label:
                self.step = int(saved.get("step", 0))
                self.status = saved.get("status", "running")
                self.reason = saved.get("reason", "")
                self.history = saved.get("history", [])

    def _reset_window(self) -> None:
        self.served = 0
        self.errors = 0
        self.slow = 0
        self.latencies: list[float] = []

    @property
    def share(self) -> float:
        """The percent of traffic the candidate gets now."""
        if self.status == "running":
            return self.steps[self.step]
        return 100.0 if self.status == "promoted" else 0.0

    def choose(self) -> ModelVersion:
        """The version that serves the next request."""
        if self.status == "promoted":
            return self.candidate
        if self.status != "running":
            return self.service.stable
        share = self.steps[self.step]
        n = self._n = self._n + 1
        # deterministic spread: exactly `share` percent of every 100 requests
        if int(n * share // 100) != int((n - 1) * share // 100):
            return self.candidate
        return self.service.stable

    def record(self, ok: bool, latency_ms: float, error: str = "") -> None:
        """Count one candidate request; step, promote or roll back when due."""
        if self.status != "running":
            return
        with self.lock:
            self.served += 1
            self.latencies.append(latency_ms)
            if not ok:
                self.errors += 1
                self.last_error = error
            if latency_ms > self.max_p99_ms:
                self.slow += 1
            budget_errors = self.max_error_rate * self.min_requests
            budget_slow = 0.01 * self.min_requests
            if self.errors > budget_errors:
                self._rollback(
                    f"candidate error rate {self.errors}/{self.served} exceeds "
                    f"max_error_rate {self.max_error_rate} at "
                    f"{self.share:g}% (last error: {error})"
                )
            elif self.slow > budget_slow:
                self._rollback(
                    f"candidate p99 latency exceeds max_p99_ms {self.max_p99_ms} "
                    f"at {self.share:g}%: {self.slow} of {self.served} requests "
                    "were slower"
                )
            elif self.served >= self.min_requests:
                p99 = percentile_99(self.latencies)
                rate = self.errors / self.served
                if p99 > self.max_p99_ms:
                    self._rollback(
                        f"candidate p99 {p99:.1f} ms exceeds max_p99_ms "
                        f"{self.max_p99_ms} at {self.share:g}%"
                    )
                elif rate > self.max_error_rate:
                    self._rollback(
                        f"candidate error rate {rate:.3f} exceeds max_error_rate "
                        f"{self.max_error_rate} at {self.share:g}%"
                    )
                else:
                    self._advance(rate, p99)

    def _stats(self) -> dict:
        return {
            "served": self.served,
            "errors": self.errors,
            "p99_ms": round(percentile_99(self.latencies), 3),
        }

    def _advance(self, rate: float, p99: float) -> None:
        before = self.share
        if self.step + 1 < len(self.steps):
            self.step += 1
            self._event(
                "canary_step",
                before,
                self.share,
                f"{self.served} requests at {before:g}% within limits (error rate "
                f"{rate:.3f}, p99 {p99:.1f} ms)",
            )
        else:
            self.status = "promoted"
            self.reason = (
                f"{self.served} requests at 100% within limits; version "
                f"{self.candidate.label} promoted"
            )
            self._event("canary_promoted", before, 100.0, self.reason)
        self._reset_window()

    def _rollback(self, reason: str) -> None:
        before = self.share
        self.status = "rolled_back"
        self.reason = reason
        self._event("canary_rollback", before, 0.0, reason)
        self._reset_window()

    def _event(self, kind: str, before: float, after: float, reason: str) -> None:
        event = {
            "id": uuid.uuid4().hex[:16],
            "kind": kind,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model_name": self.candidate.name,
            "candidate": self.candidate.version,
            "stable": self.service.stable.version,
            "from_share": before,
            "to_share": after,
            "reason": reason,
            "stats": self._stats(),
        }
        self.history.append(event)
        self.service.write_event(event)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "candidate": self.candidate.label,
                    "step": self.step,
                    "status": self.status,
                    "reason": self.reason,
                    "history": self.history,
                },
                indent=1,
            )
        )
        os.replace(tmp, self.state_path)

    def describe(self) -> dict:
        """The state as JSON-ready data (GET /canary)."""
        return {
            "status": self.status,
            "share": self.share,
            "steps": self.steps,
            "stable_version": self.service.stable.version,
            "candidate_version": self.candidate.version,
            "min_requests": self.min_requests,
            "max_error_rate": self.max_error_rate,
            "max_p99_ms": self.max_p99_ms,
            "window": self._stats(),
            "reason": self.reason,
            "history": self.history,
        }
