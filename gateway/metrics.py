"""Prometheus metrics of one node, in a registry of its own (no import-time globals).

Counters that parts keep themselves (queue refusals, detector drops, ...) are sampled into gauges
by ``Metrics.sample`` on a short period, so the parts stay free of Prometheus.

Values read from a store (the registry's counts by status, ...) are collected at scrape time, the
Prometheus way: a part registers a *refresher* (``add_refresher``), and ``/metrics`` awaits
``Metrics.refresh()`` before rendering. A scrape storm cannot hammer the store: the refreshers run
at most once every ``refresh_every_s`` (a scrape inside that window serves the last run's values),
concurrent scrapes await the same run, and each refresher is cut at ``refresh_timeout_s``. A
refresher that fails (``GatewayError``) or is cut keeps its last values; that is logged once per
outage, counted in ``xueliang_metrics_refresh_failures_total{refresher}``, and its recovery logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from xueliang.gateway.errors import GatewayError

log = logging.getLogger(__name__)

Sampler = Callable[[], Awaitable[Mapping[str, float]]]
# Sets its own gauges from its source; raises GatewayError when the source cannot be read.
Refresher = Callable[[], Awaitable[object]]

REFRESH_EVERY_S = 5.0  # at most one run of the refreshers this often, however many scrapes come
REFRESH_TIMEOUT_S = 2.0  # one refresher's limit; a scrape never waits longer for it (Prometheus allows 10 s)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "Refresher", "Sampler"]


class Metrics:
    def __init__(
        self, node: str, *, refresh_every_s: float = REFRESH_EVERY_S, refresh_timeout_s: float = REFRESH_TIMEOUT_S
    ) -> None:
        self.registry = CollectorRegistry()
        self.node = node
        self.refresh_every_s = refresh_every_s
        self.refresh_timeout_s = refresh_timeout_s
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
        self.refresh_failures = Counter(
            "xueliang_metrics_refresh_failures_total",
            "Scrape-time refreshes that failed or timed out; the refresher's last values were served",
            ["refresher"],
            registry=self.registry,
        )
        self._samplers: dict[str, Sampler] = {}
        self._refreshers: dict[str, Refresher] = {}
        self._failing: set[str] = set()  # refreshers in an outage (warned once)
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at: float | None = None  # monotonic start of the last run

    def add_sampler(self, component: str, sampler: Sampler) -> None:
        self._samplers[component] = sampler

    async def sample(self) -> None:
        for component, sampler in self._samplers.items():
            for name, value in (await sampler()).items():
                self.sampled.labels(component, name).set(value)

    def add_refresher(self, name: str, refresher: Refresher) -> None:
        """Run ``refresher`` before scrapes (see the module docstring); ``name`` replaces one of that name."""
        self._refreshers[name] = refresher

    async def refresh(self) -> None:
        """Bring the refreshers' gauges up to date for a scrape, unless a run started less than
        ``refresh_every_s`` ago; a run in progress is awaited, not repeated. Raises nothing a refresher
        raises (a store outage, a timeout, a defect): its last values stay, the others go on."""
        if self._refreshing is None:
            now = time.monotonic()
            if self._refreshed_at is not None and now - self._refreshed_at < self.refresh_every_s:
                return
            self._refreshed_at = now
            self._refreshing = asyncio.create_task(self._refresh_all(), name="metrics-refresh")
            self._refreshing.add_done_callback(self._refresh_ended)
        # Shielded: a scrape that goes away (client gone) does not cancel the run the others await.
        await asyncio.shield(self._refreshing)

    def _refresh_ended(self, task: asyncio.Task[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None

    async def _refresh_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name, refresher in self._refreshers.items():
                group.create_task(self._refresh_one(name, refresher), name=f"metrics-refresh-{name}")

    async def _refresh_one(self, name: str, refresher: Refresher) -> None:
        try:
            async with asyncio.timeout(self.refresh_timeout_s):
                await refresher()
        except Exception as exc:  # one refresher must never cost the scrape the node's other metrics
            self.refresh_failures.labels(name).inc()
            expected = isinstance(exc, GatewayError | TimeoutError)
            reason = str(exc) or f"no answer within {self.refresh_timeout_s:g} s"
            if name in self._failing:
                log.debug("metrics: %s still not refreshed: %s", name, reason)
                return
            self._failing.add(name)
            log.warning(
                "metrics: %s not refreshed; its last values are served until it answers: %s",
                name,
                reason if expected else repr(exc),
                exc_info=None if expected else exc,  # not a store outage: a defect, with its traceback
            )
            return
        if name in self._failing:
            self._failing.discard(name)
            log.info("metrics: %s refreshed again", name)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
