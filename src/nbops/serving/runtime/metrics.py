"""Prometheus text for ``GET /metrics`` (exposition format 0.0.4).

Series: ``nbops_requests_total{route,status,version}`` (counter),
``nbops_request_duration_seconds{route}`` (histogram, seconds),
``nbops_predictions_total{version}`` (rows scored), ``nbops_in_flight_requests``,
the ``process_*`` gauges, and ``nbops_canary_share{candidate}`` while a canary runs.
Routes are labelled by their template (``/v2/models/{name}/infer``), never by the raw
path, so a scan of odd URLs cannot blow up the label set (they count as ``other``).

With ``serve.py --workers N`` every worker writes its counters to
``logs/metrics/<pid>.json`` once a second (and on exit); whichever worker answers
``/metrics`` adds the others' files to its own live counters, so the totals cover the
whole service, as Prometheus' own multi-process mode does.
"""

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ROUTES = (
    "/invocations",
    "/ping",
    "/health",
    "/version",
    "/metrics",
    "/canary",
    "/feedback",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/docs",
    "/openapi.json",
)


def route_label(path: str) -> str:
    """The route template of a request path (``other`` for unknown paths)."""
    if path in ROUTES:
        return path
    if path.startswith("/v2/models/"):
        parts = path[len("/v2/models/") :].split("/")
        versioned = len(parts) >= 3 and parts[1] == "versions"
        rest = parts[3:] if versioned else parts[1:]
        base = "/v2/models/{name}" + ("/versions/{version}" if versioned else "")
        if not rest:
            return base
        if rest in (["infer"], ["ready"]):
            return f"{base}/{rest[0]}"
    return "other"


class Metrics:
    """Request counters and latency histograms of one process (see the module doc)."""

    def __init__(self, shared: Path | None = None) -> None:
        self.requests: dict[tuple[str, int, str], int] = {}
        self.hist: dict[str, list[float]] = {}
        self.rows: dict[str, int] = {}
        self.in_flight = 0
        self.started = time.time()
        self.shared = shared
        self._stop = threading.Event()

    def observe(self, route: str, status: int, version: str, seconds: float) -> None:
        """Count one answered request."""
        key = (route, status, version)
        self.requests[key] = self.requests.get(key, 0) + 1
        h = self.hist.get(route)
        if h is None:
            h = self.hist[route] = [0.0] * (len(BUCKETS) + 2)  # buckets, sum, count
        for k, bound in enumerate(BUCKETS):
            if seconds <= bound:
                h[k] += 1
                break
        h[-2] += seconds
        h[-1] += 1

    # -- several workers -----------------------------------------------------------
    def start_sharing(self) -> None:
        """Write this worker's counters to the shared folder every second."""
        if self.shared is None:
            return
        self.shared.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._share_loop, name="metrics-share", daemon=True).start()

    def _share_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.write_share()

    def write_share(self) -> None:
        """Write this worker's counters now (atomically)."""
        if self.shared is None:
            return
        state = {
            "requests": [[r, s, v, n] for (r, s, v), n in self.requests.items()],
            "hist": self.hist,
            "rows": self.rows,
        }
        path = self.shared / f"{os.getpid()}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def stop_sharing(self) -> None:
        """Stop the writer and write the final counters."""
        self._stop.set()
        self.write_share()

    def _totals(self) -> tuple[dict, dict, dict]:
        requests, rows = dict(self.requests), dict(self.rows)
        hist = {k: list(v) for k, v in self.hist.items()}
        if self.shared is None or not self.shared.is_dir():
            return requests, hist, rows
        for path in self.shared.glob("*.json"):
            if path.stem == str(os.getpid()):
                continue
            try:
                other = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for r, s, v, n in other.get("requests", []):
                requests[(r, int(s), v)] = requests.get((r, int(s), v), 0) + n
            for route, h in other.get("hist", {}).items():
                mine = hist.setdefault(route, [0.0] * (len(BUCKETS) + 2))
                hist[route] = [a + b for a, b in zip(mine, h, strict=False)]
            for v, n in other.get("rows", {}).items():
                rows[v] = rows.get(v, 0) + n
        return requests, hist, rows

    def render(self, canary: Any = None) -> str:
        """The Prometheus text of all workers' counters."""
        requests, hists, rows = self._totals()
        out = [
            "# HELP nbops_requests_total HTTP requests by route, status and model version",
            "# TYPE nbops_requests_total counter",
        ]
        for (route, status, version), n in sorted(requests.items()):
            out.append(
                f'nbops_requests_total{{route="{route}",status="{status}",version="{version}"}} {n}'
            )
        out += [
            "# HELP nbops_request_duration_seconds request latency",
            "# TYPE nbops_request_duration_seconds histogram",
        ]
        for route, h in sorted(hists.items()):
            cum = 0.0
            for k, bound in enumerate(BUCKETS):
                cum += h[k]
                out.append(
                    f'nbops_request_duration_seconds_bucket{{route="{route}",'
                    f'le="{bound}"}} {int(cum)}'
                )
            out.append(
                f'nbops_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {int(h[-1])}'
            )
            out.append(f'nbops_request_duration_seconds_sum{{route="{route}"}} {h[-2]:.6f}')
            out.append(f'nbops_request_duration_seconds_count{{route="{route}"}} {int(h[-1])}')
        out += [
            "# HELP nbops_predictions_total rows scored by model version",
            "# TYPE nbops_predictions_total counter",
        ]
        for version, n in sorted(rows.items()):
            out.append(f'nbops_predictions_total{{version="{version}"}} {n}')
        t = os.times()
        out += [
            "# HELP nbops_in_flight_requests requests being handled",
            "# TYPE nbops_in_flight_requests gauge",
            f"nbops_in_flight_requests {self.in_flight}",
            "# HELP process_cpu_seconds_total user and system CPU time",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {t.user + t.system:.3f}",
            "# HELP process_resident_memory_bytes resident memory",
            "# TYPE process_resident_memory_bytes gauge",
            f"process_resident_memory_bytes {_rss_bytes()}",
            "# HELP process_start_time_seconds start time since the epoch",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started:.3f}",
        ]
        if canary is not None:
            out += [
                "# HELP nbops_canary_share percent of traffic routed to the candidate",
                "# TYPE nbops_canary_share gauge",
                f'nbops_canary_share{{candidate="{canary.candidate.label}"}} {canary.share}',
            ]
        return "\n".join(out) + "\n"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
