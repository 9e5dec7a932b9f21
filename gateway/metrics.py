"""Prometheus metrics of one node, in a registry of its own (no import-time globals).

Counters that parts keep themselves (queue refusals, detector drops, ...) are sampled into gauges
by ``Metrics.sample`` on a short period, so the parts stay free of Prometheus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Sampler = Callable[[], Awaitable[Mapping[str, float]]]

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        self.node = node
        self.http_requests = Counter(
            "xueliang_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.audit_denials = Counter(
            "xueliang_auth_denials_total",
            "Requests refused for auth (401) or role (403)",
            ["status"],
            registry=self.registry,
        )
        self.sampled = Gauge(
            "xueliang_component_value",
            "Values sampled from the parts' own counters (queue depth, drops, lag, ...)",
            ["component", "name"],
            registry=self.registry,
        )
        self._samplers: dict[str, Sampler] = {}

    def add_sampler(self, component: str, sampler: Sampler) -> None:
        self._samplers[component] = sampler

    async def sample(self) -> None:
        for component, sampler in self._samplers.items():
            for name, value in (await sampler()).items():
                self.sampled.labels(component, name).set(value)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
