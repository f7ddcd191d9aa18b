"""Prometheus metrics of one service, fed from the sessions' records (no I/O).

One ``CollectorRegistry`` per app (never the process-global one), so two apps in one
process (tests) keep their own numbers. ``observe(record)`` folds one transcript record
into the counters; the service calls it for every record of every session it runs, in
order. Sessions by status are read from the service when scraped (``sessions``).

Names (all prefixed ``conductor_``): ``sessions{status}``, ``sessions_created_total``,
``provider_requests_total{provider,outcome}`` (outcome: ok, cached, error, interrupted),
``provider_errors_total{provider,kind}``, ``tokens_total{provider,type}``,
``cost_usd_total{provider}``, ``provider_latency_seconds{provider}``,
``provider_ttft_seconds{provider}``, ``tool_calls_total{tool,outcome}`` (ok, error,
rejected, interrupted), ``http_requests_total{route,method,status}``,
``http_request_duration_seconds{route}``, ``auth_failures_total{reason}``,
``rate_limited_total``, ``sse_watchers``, ``sse_dropped_total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..session import records as r

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class _Sessions(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("conductor_sessions", "Sessions of this service by status",
                              labels=["status"])
        for status, n in sorted(self.counts().items()):
            g.add_metric([status], n)
        yield g


class Metrics:
    """The service's metrics (see the module docstring)."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        reg = self.registry = CollectorRegistry(auto_describe=True)
        reg.register(_Sessions(counts))
        p = "conductor_"
        self.created = Counter(p + "sessions_created", "Sessions created", registry=reg)
        self.requests = Counter(p + "provider_requests", "Provider responses by outcome",
                                ["provider", "outcome"], registry=reg)
        self.errors = Counter(p + "provider_errors", "Provider errors by kind",
                              ["provider", "kind"], registry=reg)
        self.tokens = Counter(p + "tokens", "Tokens by type", ["provider", "type"],
                              registry=reg)
        self.cost = Counter(p + "cost_usd", "Cost in USD", ["provider"], registry=reg)
        self.latency = Histogram(p + "provider_latency_seconds", "Provider response time",
                                 ["provider"], buckets=_LATENCY, registry=reg)
        self.ttft = Histogram(p + "provider_ttft_seconds", "Time to the first token",
                              ["provider"], buckets=_TTFT, registry=reg)
        self.tools = Counter(p + "tool_calls", "Tool calls by outcome", ["tool", "outcome"],
                             registry=reg)
        self.http = Counter(p + "http_requests", "HTTP requests", ["route", "method", "status"],
                            registry=reg)
        self.http_time = Histogram(p + "http_request_duration_seconds",
                                   "HTTP request handling time (streams: until they end)",
                                   ["route"], registry=reg)
        self.auth_failures = Counter(p + "auth_failures", "Refused credentials",
                                     ["reason"], registry=reg)
        self.rate_limited = Counter(p + "rate_limited", "Requests refused with 429",
                                    registry=reg)
        self.watchers = Gauge(p + "sse_watchers", "Open event streams", registry=reg)
        self.dropped = Counter(p + "sse_dropped", "Event streams dropped for falling behind",
                               registry=reg)

    def observe(self, rec: Any) -> None:
        """Fold one transcript record into the counters."""
        t = type(rec)
        if t is r.AssistantRecord:
            outcome = ("cached" if rec.cached else "ok" if rec.status == "complete"
                       else "interrupted")
            self.requests.labels(rec.provider, outcome).inc()
            if outcome == "ok":
                self.latency.labels(rec.provider).observe(rec.duration)
                if rec.ttft is not None:
                    self.ttft.labels(rec.provider).observe(rec.ttft)
        elif t is r.ProviderErrorRecord:
            self.requests.labels(rec.provider, "error").inc()
            self.errors.labels(rec.provider, rec.kind or "unknown").inc()
        elif t is r.UsageRecord:
            if rec.cached:
                return
            for kind in ("input", "output", "cache_read", "cache_write", "reasoning"):
                n = getattr(rec, f"{kind}_tokens")
                if n:
                    self.tokens.labels(rec.provider, kind).inc(n)
            if rec.cost_usd:
                self.cost.labels(rec.provider).inc(rec.cost_usd)
        elif t is r.ToolResultRecord:
            outcome = ("interrupted" if rec.interrupted else "rejected" if rec.rejected
                       else "ok" if rec.ok else "error")
            self.tools.labels(rec.name, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
