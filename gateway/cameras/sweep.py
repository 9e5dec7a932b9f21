"""The health sweep: every registered camera checked on a schedule, ``sweep.concurrency`` at a time.

Each round reads the registry page by page and runs :class:`HealthChecker` on every camera;
what changed (status, error, clock offset, or a ``last_seen`` older than
``sweep.last_seen_write_s``) is written back through :meth:`CameraService.record_health`, which
publishes status changes. A camera whose stored profiles are missing or stale (a different stream
URI, an unknown profile token) is re-probed in full. In scale-out one node sweeps at a time: the
round runs only while this node holds the ``camera-sweep`` lease.

Prometheus: ``xueliang_cameras{status}`` (registry counts, read at each scrape through the node's
metrics refresher ``camera-counts`` and after each round; in scale-out they come from the shared
store, so any node's scrape is fresh, not only the sweeping node's),
``xueliang_camera_sweep_duration_seconds``, ``xueliang_camera_sweep_last_timestamp_seconds``,
``xueliang_camera_sweep_checked``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field

from xueliang.gateway.cameras.health import HealthChecker
from xueliang.gateway.cameras.models import HealthResult
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.errors import GatewayError, SecretUnreadable, StoreError
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus
from xueliang.gateway.node import Node

log = logging.getLogger(__name__)

LEASE = "camera-sweep"
ACTOR = "system:sweep"


class SweepState(enum.StrEnum):
    CREATED = "created"
    WAITING = "waiting"  # between rounds
    SWEEPING = "sweeping"
    STANDBY = "standby"  # another node holds the sweep lease
    STOPPED = "stopped"


@dataclass(slots=True)
class SweepReport:
    """One round."""

    started_at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    checked: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    written: int = 0  # records written back
    reprobed: int = 0
    errors: int = 0  # cameras whose result could not be stored (registry unavailable, ...)


class HealthSweep:
    def __init__(self, node: Node, service: CameraService, checker: HealthChecker | None = None) -> None:
        self.node = node
        self.service = service
        self.settings = service.settings.sweep
        self.checker = checker or HealthChecker(self.settings, service.onvif, service.guard)
        self.state = SweepState.CREATED
        self.last: SweepReport | None = None
        self.rounds = 0
        self.standby_rounds = 0  # rounds skipped because another node holds the lease
        metrics = node.metrics
        self._cameras = metrics.gauge("xueliang_cameras", "Cameras in the registry by status", ("status",))
        self._duration = metrics.gauge("xueliang_camera_sweep_duration_seconds", "Duration of the last health sweep")
        self._last_time = metrics.gauge(
            "xueliang_camera_sweep_last_timestamp_seconds", "Unix time the last health sweep ended"
        )
        self._checked = metrics.gauge("xueliang_camera_sweep_checked", "Cameras checked by the last health sweep")
        metrics.add_refresher("camera-counts", self.count_cameras)

    def _enter(self, state: SweepState) -> None:
        allowed = {
            SweepState.CREATED: {SweepState.WAITING, SweepState.SWEEPING, SweepState.STOPPED},
            SweepState.WAITING: {SweepState.SWEEPING, SweepState.STANDBY, SweepState.STOPPED},
            SweepState.SWEEPING: {SweepState.WAITING, SweepState.STOPPED},
            SweepState.STANDBY: {SweepState.SWEEPING, SweepState.STOPPED},
            SweepState.STOPPED: {SweepState.WAITING},  # run() again after a stop
        }
        assert state in allowed[self.state], f"sweep: {self.state} -> {state} is not a transition"
        self.state = state

    async def run(self) -> None:
        """The node service: a round every ``interval_s`` while this node holds the lease."""
        self._enter(SweepState.WAITING)
        try:
            await self.refresh_counts()
            await asyncio.sleep(self.settings.first_delay_s)
            while True:
                started = time.monotonic()
                if await self._leader():
                    await self.sweep_once()  # ends WAITING
                else:
                    if self.state is not SweepState.STANDBY:
                        self._enter(SweepState.STANDBY)
                    self.standby_rounds += 1
                await asyncio.sleep(max(0.0, self.settings.interval_s - (time.monotonic() - started)))
        finally:
            self.state = SweepState.STOPPED

    async def _leader(self) -> bool:
        ttl = self.settings.interval_s * 2 + self.settings.timeout_s * 4
        try:
            return await self.node.stores.leases.acquire(LEASE, self.node.name, ttl)
        except StoreError as exc:
            log.warning("health sweep skipped: the sweep lease cannot be taken: %s", exc)
            return False

    async def count_cameras(self) -> dict[CameraStatus, int]:
        """Set ``xueliang_cameras{status}`` from the registry; raises ``StoreError``. The node's
        ``/metrics`` runs it at scrape time (a metrics refresher)."""
        counts = await self.service.summary()
        for status, number in counts.items():
            self._cameras.labels(status.value).set(number)
        return counts

    async def refresh_counts(self) -> dict[CameraStatus, int]:
        """``count_cameras`` at the start and end of a round; a store failure is logged, ``{}`` returned."""
        try:
            return await self.count_cameras()
        except StoreError as exc:
            log.warning("camera counts not refreshed: %s", exc)
            return {}

    async def sweep_once(self) -> SweepReport:
        """Check every camera once; returns the round's report (also kept as ``last``)."""
        self._enter(SweepState.SWEEPING)
        report = SweepReport()
        began = time.monotonic()
        limit = asyncio.Semaphore(self.settings.concurrency)
        page_size = self.settings.page_size
        async with asyncio.TaskGroup() as group:
            offset = 0
            while True:
                page = await self.service.list(CameraQuery(limit=page_size, offset=offset))
                for record in page:
                    await limit.acquire()
                    group.create_task(self._one(record, limit, report), name=f"sweep-{record.id}")
                if len(page) < page_size:
                    break
                offset += page_size
        report.duration_s = time.monotonic() - began
        self.last = report
        self.rounds += 1
        self._duration.set(report.duration_s)
        self._last_time.set(time.time())
        self._checked.set(report.checked)
        await self.refresh_counts()
        log.info(
            "health sweep: %d cameras in %.1f s (%s), %d written, %d re-probed, %d errors",
            report.checked, report.duration_s, ", ".join(f"{k} {v}" for k, v in sorted(report.by_status.items())),
            report.written, report.reprobed, report.errors,
        )  # fmt: skip
        self._enter(SweepState.WAITING)
        return report

    async def _one(self, record: CameraRecord, limit: asyncio.Semaphore, report: SweepReport) -> None:
        try:
            status = await self._check(record, report)
            report.by_status[status.value] = report.by_status.get(status.value, 0) + 1
        except GatewayError as exc:
            report.errors += 1
            log.warning("camera %s: health result not stored: %s", record.id, exc)
        finally:
            report.checked += 1
            limit.release()

    async def _check(self, record: CameraRecord, report: SweepReport) -> CameraStatus:
        try:
            password = self.service.password_of(record)
        except SecretUnreadable as exc:  # the stored password cannot be decrypted (key changed)
            health = HealthResult(CameraStatus.AUTH_FAILED, str(exc))
        else:
            health, media = await self.checker.check(record, password, self.service.endpoints.media(record.id))
            if media is not None:
                self.service.endpoints.set(record.id, media)
        if health.needs_probe and health.status is not CameraStatus.OFFLINE:
            report.reprobed += 1
            log.info("camera %s: profiles missing or stale; probing it again", record.id)
            updated = await self.service.reprobe(record.id, ACTOR)
            report.written += 1
            return updated.status
        stored = await self.service.record_health(record, health)
        if stored is not None:
            report.written += 1
        return health.status
