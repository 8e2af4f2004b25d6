"""Prometheus metrics of one server process (aggregated over workers in multiprocess mode)."""

from __future__ import annotations

import os
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: Paths reported by name; anything else is reported as "other" (keeps label cardinality bounded).
KNOWN_PATHS = ("/v1/predict", "/v1/model", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")


def multiprocess_dir() -> str | None:
    """The prometheus_client multiprocess folder when several workers share the metrics, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """Requests by path and status, latency, batch sizes, inference time, errors and queue depth."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        shared = multiprocess_dir() is not None
        # In multiprocess mode values live in files and are collected from there; otherwise in our own registry
        # (several apps in one process never collide).
        self.registry = None if shared else CollectorRegistry()
        kw: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter("etk_requests", "HTTP requests by path, method and status",
                                ["path", "method", "status"], **kw)
        self.latency = Histogram("etk_request_duration_seconds", "HTTP request latency", ["path"],
                                 buckets=LATENCY_BUCKETS, **kw)
        self.batch_size = Histogram("etk_batch_size", "inputs per inference run", buckets=BATCH_BUCKETS, **kw)
        self.inference = Histogram("etk_inference_duration_seconds", "time of one inference run",
                                   buckets=LATENCY_BUCKETS, **kw)
        self.errors = Counter("etk_errors", "errors by kind: client (4xx), client_gone (499: left before the "
                              "answer), queue_full (503 on /v1/predict), server (other 5xx), inference", ["kind"],
                              **kw)
        gauge_kw = {"multiprocess_mode": "livesum"} if shared else {}
        self.queue_depth = Gauge("etk_queue_depth", "requests waiting for inference", **gauge_kw, **kw)
        self.in_flight = Gauge("etk_requests_in_flight", "HTTP requests being handled", **gauge_kw, **kw)

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        path = path if path in KNOWN_PATHS else "other"
        self.requests.labels(path, method, str(status)).inc()
        self.latency.labels(path).observe(seconds)
        if status == 499:  # the client left before the answer: neither its error nor ours
            self.errors.labels("client_gone").inc()
        elif 400 <= status < 500:
            self.errors.labels("client").inc()
        elif status == 503 and path == "/v1/predict":
            self.errors.labels("queue_full").inc()
        elif status >= 500 and status != 503:
            self.errors.labels("server").inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = self.registry
        if registry is None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @staticmethod
    def process_exited() -> None:
        """Tell the multiprocess collector this worker is gone (its live gauges stop counting)."""
        if multiprocess_dir() is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
