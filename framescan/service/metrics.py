"""The service's metrics: counters and latency histograms in the Prometheus text format
(hand-written), and the ASGI middleware that counts and times every HTTP request."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_HELP = {
    "framescan_http_requests_total": ("counter", "HTTP requests by route, method and status."),
    "framescan_http_request_duration_seconds": ("histogram", "HTTP request latency by route (upload included)."),
    "framescan_scan_duration_seconds": ("histogram", "Time a clip spent in a worker."),
    "framescan_queue_wait_seconds": ("histogram", "Time an admitted clip waited for a worker."),
    "framescan_decisions_total": ("counter", "Scanned clips by decision (error: an error report)."),
    "framescan_scan_errors_total": ("counter", "Error reports by error code (scans and pre-scan rejections)."),
    "framescan_rejections_total": ("counter", "Requests refused before scanning, by reason."),
    "framescan_upload_bytes_total": ("counter", "Request body bytes received on POST /v1/scan."),
}


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    items = [f'{k}="{esc(str(v))}"' for k, v in labels]
    return "{" + ",".join(items) + "}" if items else ""


def _num(v: float) -> str:
    if v == math.inf:
        return "+Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Metrics:
    """Counters and histograms, thread-safe; ``render`` adds the gauges it is given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._hists: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            h = self._hists.get(key)
            if h is None:
                h = self._hists[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)  # buckets..., sum, count
            for i, b in enumerate(LATENCY_BUCKETS):
                if value <= b:
                    h[i] += 1
            h[-2] += value
            h[-1] += 1

    def counter(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self, gauges: Iterable[tuple[str, str, dict[str, str], float]] = ()) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
            hists = {k: list(v) for k, v in self._hists.items()}
        seen: set[str] = set()

        def header(name: str, kind: str, help_: str) -> None:
            if name not in seen:
                seen.add(name)
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} {kind}")

        for (name, labels), value in sorted(counters.items()):
            kind, help_ = _HELP.get(name, ("counter", name))
            header(name, kind, help_)
            lines.append(f"{name}{_labels(labels)} {_num(value)}")
        for (name, labels), h in sorted(hists.items()):
            kind, help_ = _HELP.get(name, ("histogram", name))
            header(name, kind, help_)
            for i, b in enumerate(LATENCY_BUCKETS):
                lines.append(f"{name}_bucket{_labels((*labels, ('le', _num(b))))} {_num(h[i])}")
            lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {_num(h[-1])}")
            lines.append(f"{name}_sum{_labels(labels)} {_num(round(h[-2], 6))}")
            lines.append(f"{name}_count{_labels(labels)} {_num(h[-1])}")
        for name, help_, labels, value in gauges:
            header(name, "counter" if name.endswith("_total") else "gauge", help_)
            lines.append(f"{name}{_labels(sorted(labels.items()))} {_num(value)}")
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Counts requests by route template, method and status, and times them (pure ASGI)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"
            method = scope.get("method", "")
            self.metrics.inc("framescan_http_requests_total", route=path, method=method, status=str(status[0]))
            self.metrics.observe(
                "framescan_http_request_duration_seconds", time.perf_counter() - t0, route=path, method=method
            )
