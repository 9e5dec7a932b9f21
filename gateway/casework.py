"""The case side inside a node: anomalies from the bus become incidents and cases, delivered to the
governance centre's intake through the node's durable outbox; incident changes go to the live feed.

The ``anomalies`` topic is read by the consumer group ``cases``: a message is acknowledged only
after the case service has taken it in, so a crash re-delivers it (aggregation makes a repeat
harmless); messages left pending by a dead consumer are claimed after ``CLAIM_IDLE_S``. While the
bus cannot be reached the consumer retries at growing intervals (0.5 s up to 10 s), with one warning
for the outage and one line when the bus answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from pathlib import Path

from pydantic import ValidationError

from xueliang.events.errors import TableError
from xueliang.events.models import CameraContext, Case, Incident
from xueliang.events.service import CaseService, ServiceState
from xueliang.events.settings import EventsSettings
from xueliang.gateway.errors import ConfigError, ConfigProblem, NotFound, StoreError
from xueliang.gateway.leadership import Role
from xueliang.gateway.models import CameraRecord
from xueliang.gateway.node import Node
from xueliang.gateway.outage import OutageLog
from xueliang.inference.anomaly import Anomaly

log = logging.getLogger(__name__)

ANOMALY_TOPIC = "anomalies"
GROUP = "cases"
CLAIM_IDLE_S = 60.0
CONTEXT_TTL_S = 60.0
CONTEXT_CACHE = 50_000


def resolve_paths(settings: EventsSettings, data_dir: Path) -> EventsSettings:
    """Relative data paths of the case side live under the node's data directory."""

    def under(path: Path) -> Path:
        return path if path.is_absolute() else data_dir / path

    return settings.model_copy(
        update={
            "evidence": settings.evidence.model_copy(update={"dir": under(settings.evidence.dir)}),
            "store": settings.store.model_copy(update={"sqlite_path": under(settings.store.sqlite_path)}),
        }
    )


def camera_context(camera: CameraRecord) -> CameraContext:
    location = camera.location
    return CameraContext(
        id=camera.id,
        name=camera.name,
        region_code=location.region_code,
        district=location.district,
        township=location.township,
        grid_code=location.grid_code,
        address=location.address,
        lat=location.lat,
        lon=location.lon,
        place=camera.category or "other",
    )


def incident_view(incident: Incident, change: str, camera_name: str = "") -> dict[str, object]:
    """What the wall's alarm panel shows of an incident (JSON-ready)."""
    return {
        "id": incident.id,
        "change": change,
        "camera_id": incident.camera_id,
        "camera_name": camera_name,
        "rule": incident.rule,
        "zone": incident.zone,
        "state": str(incident.state),
        "grade": str(incident.grade) if incident.grade else None,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "count": incident.count,
        "peak_value": incident.peak_value,
        "case_code": incident.case_code,
        "dismiss_reason": incident.dismiss_reason,
        "acknowledged_by": incident.acknowledged_by,
        "evidence_url": f"/api/incidents/{incident.id}/evidence.jpg",
    }


class CaseWork:
    """Owns the ``CaseService`` of the node and feeds it from the bus."""

    def __init__(self, node: Node, settings: EventsSettings) -> None:
        self.node = node
        events = resolve_paths(settings, node.settings.node.data_dir)
        if not events.public_url:  # QR codes and the intake's status links need an absolute URL
            events = events.model_copy(update={"public_url": node.settings.http.base_url})
        self.settings = events
        self.service = self._new_service()
        self.role = Role("cases")  # in scale-out, only the lease holder runs the case side
        self._contexts: OrderedDict[str, tuple[float, CameraContext]] = OrderedDict()
        self.consumed = 0
        self.malformed = 0

    def _new_service(self) -> CaseService:
        return CaseService(
            self.settings, self.node.stores.outbox, on_case=self._case_changed, on_incident=self._incident_changed
        )

    async def start(self) -> None:
        """Check the grading, routing and mapping tables and open the case store; a broken table
        refuses the start with every offending row named (as a ``ConfigError``)."""
        try:
            await self.service.start()
        except TableError as exc:
            problems = [ConfigProblem(f"{p.source}: {p.where}", p.message, "correct the table") for p in exc.problems]
            raise ConfigError("case tables", problems) from exc
        self.node.metrics.add_sampler("cases", self._sample)

    async def run(self) -> None:
        """The node service ``cases``. After a failure the service was stopped and its store closed:
        the supervisor's next run starts a new one on the same store (live incidents restored from
        it, committed cases not yet in the outbox added), as a process restart would."""
        if self.service.state is not ServiceState.STARTED:
            self.service = self._new_service()
            await self.service.start()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.service.run(), name="case-service")
                group.create_task(self._consume(), name="anomaly-consumer")
        finally:
            self.service.stop()
            await self.service.close()

    async def publish(self, anomaly: Anomaly) -> str:
        """Put one anomaly on the bus (what the patrol pipeline and the camera sweep call)."""
        return await self.node.stores.bus.publish(ANOMALY_TOPIC, anomaly.model_dump(mode="json"))

    async def context(self, camera_id: str) -> CameraContext:
        cached = self._contexts.get(camera_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CONTEXT_TTL_S:
            return cached[1]
        try:
            context = camera_context(await self.node.stores.cameras.get(camera_id))
        except NotFound:
            context = CameraContext(id=camera_id, name=camera_id)
        self._contexts[camera_id] = (now, context)
        self._contexts.move_to_end(camera_id)
        while len(self._contexts) > CONTEXT_CACHE:
            self._contexts.popitem(last=False)
        return context

    async def _consume(self) -> None:
        bus = self.node.stores.bus
        consumer = self.node.name
        outage = OutageLog(
            log,
            "cases",
            store="the bus",
            meanwhile="retrying at growing intervals (up to 10 s) until it answers; the anomalies wait on the bus",
            extra={"node": consumer},
        )
        while True:
            try:
                messages = await bus.claim_stale(ANOMALY_TOPIC, GROUP, consumer, min_idle_s=CLAIM_IDLE_S, count=100)
                if not messages:
                    messages = await bus.read(ANOMALY_TOPIC, GROUP, consumer, count=200, block_s=1.0)
            except StoreError as exc:
                outage.failed(f"cannot read anomalies from the bus: {exc}")
                await asyncio.sleep(outage.retry_in_s())
                continue
            outage.answered()
            for message in messages:
                try:
                    anomaly = Anomaly.model_validate(message.payload)
                except ValidationError as exc:
                    self.malformed += 1
                    log.warning("anomaly %s on the bus is malformed and skipped: %s", message.id, exc.errors()[:2])
                    continue
                await self.service.handle(anomaly, await self.context(anomaly.camera_id))
                self.consumed += 1
            if not messages:
                continue
            try:
                await bus.ack(ANOMALY_TOPIC, GROUP, [m.id for m in messages])
            except StoreError as exc:  # handled already: claimed again later, aggregation makes the repeat harmless
                again = f"claimed again after {CLAIM_IDLE_S:g} s"
                outage.failed(f"{len(messages)} handled anomalies not acknowledged, {again}: {exc}")

    async def _incident_changed(self, incident: Incident, change: str) -> None:
        name = (await self.context(incident.camera_id)).name
        self.node.live.publish("incident", incident.camera_id, incident_view(incident, change, name))

    async def _case_changed(self, case: Case) -> None:
        self.node.live.publish(
            "case",
            case.camera_id,
            {"code": case.code, "status": str(case.status), "grade": str(case.grade), "title": case.title_zh},
        )

    async def _sample(self) -> dict[str, float]:
        values = {k: float(v) for k, v in self.service.stats().items() if isinstance(v, int | float)}
        values["bus_consumed"] = float(self.consumed)
        values["bus_malformed"] = float(self.malformed)
        bus = await self.node.stores.bus.stats()
        values["bus_published"] = float(bus.published)
        values["bus_trimmed"] = float(bus.trimmed)
        values["bus_refused"] = float(bus.refused)
        for status, count in (await self.node.stores.outbox.counts()).items():
            values[f"outbox_{status}"] = float(count)
        return values
