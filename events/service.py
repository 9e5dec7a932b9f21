"""``CaseService``: anomalies in, cases out to the intake; what the gateway's composition root runs.

    service = CaseService(settings.events, outbox=stores.outbox)
    await service.start()                  # opens the store, checks the tables (GradingTableError)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(service.run())      # forwarder, sweeper, overdue check, poller, retention
        ... await service.handle(anomaly, camera) ...
    service.stop(); await service.close()

How nothing is lost and nothing is sent twice. The case and its outbox item live in different stores
(the event store; the gateway's outbox), so the order is:

1. draw the code (durable sequence), write the evidence file;
2. ONE event-store transaction: the case (status ``new``) + its first history + evidence index +
   the incident's ``case_code``;
3. ``outbox.add(code, {"case": ..., "body": mapped})``: idempotent by the code;
4. the case becomes ``queued``; or ``dead`` when the outbox already holds ANOTHER case (another
   incident) under that code: two nodes share ``codes.node_tag``, and sending this one as that one
   would lose it silently, so it is logged as an error and left for the operator, whose retry of
   it is refused too (``resend_refusal``): the item under the code is the other case's.

The case record itself is built in ``case_record`` (pure); steps 3-4 are ``case_outbox.CaseOutbox``.

A crash after 2 leaves a ``new`` case: ``start()`` adds every ``new`` case to the outbox again (a
second ``add`` of a code that made it is a no-op), so no committed case is lost. A crash before 2
leaves at most an unused code (a gap) and an unindexed file. The case code is the outbox key and
the intake's ``Idempotency-Key``, so redelivery after a crash never makes a second case.

One incident, one case: an incident first graded to no case is graded again (with its peak and the
time of the frame) each time the aggregator hands it back (``REVIEW``: a new peak, or a time-window
edge crossed), and gets its case when it earns a grade. ``open_case`` refuses (``InvalidTransition``)
an incident that has a case or whose case is being opened by another task meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from xueliang.events.aggregation import Aggregator, TransitionKind, check_action
from xueliang.events.case_outbox import CaseOutbox
from xueliang.events.case_record import build_case, evidence_note
from xueliang.events.codes import CaseCodes
from xueliang.events.errors import EventsError, EvidenceError, InvalidTransition
from xueliang.events.evidence import EvidenceStore, PruneReport
from xueliang.events.forwarder import DeliveryResult, Forwarder, Outcome, build_client
from xueliang.events.grading import Assessment, Grader
from xueliang.events.mapping import FieldMapping
from xueliang.events.models import (
    FINAL_STATUSES,
    CameraContext,
    Case,
    CaseStatus,
    Grade,
    Incident,
    IncidentState,
    StatusEntry,
)
from xueliang.events.outbox import OutboxPort
from xueliang.events.settings import EventsSettings
from xueliang.events.status import StatusTracker
from xueliang.events.store import EventStore, SqliteEventStore
from xueliang.inference.anomaly import Anomaly, Evidence

log = logging.getLogger(__name__)


class ServiceState(enum.StrEnum):
    NEW = "new"
    STARTED = "started"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class CaseService:
    def __init__(
        self,
        settings: EventsSettings,
        outbox: OutboxPort,
        *,
        store: EventStore | None = None,
        client: httpx.AsyncClient | None = None,
        on_case: Callable[[Case], Awaitable[None]] | None = None,
        on_delivery: Callable[[DeliveryResult], Awaitable[None]] | None = None,
        on_incident: Callable[[Incident, str], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.store: EventStore = store or SqliteEventStore(settings.store.sqlite_path)
        self.state = ServiceState.NEW
        self.aggregator = Aggregator(settings.aggregation, self.store.put_incident)
        self.codes = CaseCodes(settings.codes.node_tag, self.store, settings.timezone)
        self.evidence = EvidenceStore(settings.evidence, timezone=settings.timezone, public_url=settings.public_url)
        self.status = StatusTracker(self.store, settings.callback, on_change=on_case)
        self.forwarder = Forwarder(settings.forwarder, outbox, on_result=self._delivered, client=client)
        self.cases_out = CaseOutbox(outbox, self.store, wake=self.forwarder.wake, on_case=on_case)
        self._client = client
        self._on_delivery = on_delivery
        self._on_incident = on_incident
        self._cameras: dict[str, CameraContext] = {}
        self._opening: set[str] = set()  # incidents whose case is being opened now
        self._stopping = asyncio.Event()
        self.cases_created = 0
        self.evidence_failures = 0  # cases created without their evidence: its file could not be written
        self._grader: Grader | None = None
        self._mapping: FieldMapping | None = None

    @property
    def grader(self) -> Grader:
        if self._grader is None:
            raise RuntimeError("CaseService.start() has not run")
        return self._grader

    @property
    def mapping(self) -> FieldMapping:
        if self._mapping is None:
            raise RuntimeError("CaseService.start() has not run")
        return self._mapping

    async def start(self) -> None:
        """Check the tables (``GradingTableError``/``MappingTableError``), open the store, recover."""
        self._grader = Grader.from_settings(self.settings.tables, self.settings.timezone)
        self._mapping = FieldMapping.load(self.settings.tables.intake_mapping, self.settings.timezone)
        self.aggregator.time_mark = self._grader.time_mark
        await self.store.open()
        self.aggregator.restore(await self.store.live_incidents(closed_within_s=self.aggregator.restore_window_s))
        for case in await self.store.cases([CaseStatus.NEW], limit=1_000_000, newest_first=False):
            log.info("case %s: committed but not yet in the outbox; adding it now", case.code)
            await self._enqueue(case)
        self.state = ServiceState.STARTED

    # -- anomalies -------------------------------------------------------------------------------
    async def handle(self, anomaly: Anomaly, camera: CameraContext) -> list[Case]:
        """Aggregate one anomaly; returns the cases it raised (usually none)."""
        self._cameras[camera.id] = camera
        cases: list[Case] = []
        for transition in self.aggregator.observe(anomaly):
            incident, kind = transition.incident, transition.kind
            if kind == TransitionKind.REVIEW:  # grown or past a window edge: graded with the frame's time
                case = None
                if self.settings.auto_case and not incident.case_code and incident.id not in self._opening:
                    case = await self._raise(incident, camera, transition.evidence, anomaly.observed_at)
                if case is not None:
                    cases.append(case)
                    await self._incident_changed(incident, "graded")
                continue
            if kind == TransitionKind.RAISED and self.settings.auto_case:
                case = await self._raise(incident, camera, transition.evidence, incident.first_seen)
                if case is not None:
                    cases.append(case)
            await self._incident_changed(incident, kind.value)
        return cases

    async def _incident_changed(self, incident: Incident, change: str) -> None:
        """Tell the listener (the live wall) that an incident was raised, re-opened, closed or acted on."""
        if self._on_incident is not None:
            await self._on_incident(incident, change)

    async def _raise(
        self, incident: Incident, camera: CameraContext, evidence: Evidence | None, at: datetime
    ) -> Case | None:
        assessment = self.grader.assess(incident.rule, incident.peak_value, camera, at)
        if assessment is None:
            log.info(
                "incident %s (camera %s, %s): value %s at %s grades to no case",
                incident.id,
                camera.id,
                incident.rule,
                incident.peak_value,
                at.isoformat(),
            )
            return None
        return await self.open_case(incident, camera, assessment, evidence, created_by="auto")

    async def open_case(
        self,
        incident: Incident,
        camera: CameraContext,
        assessment: Assessment,
        evidence: Evidence | None,
        *,
        created_by: str,
    ) -> Case:
        """The incident's one case (``InvalidTransition`` if it has one, or one is being opened now)."""
        with self._only_case(incident):
            code = await self.codes.next_code(camera.region_code, incident.first_seen)
            ref = None
            not_saved = ""  # the history note when the evidence could not be written
            if evidence is not None and evidence.jpeg:
                try:
                    ref = await self.evidence.save(code, incident.first_seen, evidence)
                except EvidenceError as exc:
                    self.evidence_failures += 1
                    not_saved = evidence_note(exc)
                    log.warning("case %s: no evidence attached: %s", code, exc)
            case = build_case(
                code,
                incident,
                camera,
                assessment,
                evidence=ref,
                created_by=created_by,
                now=datetime.now(UTC),
                timezone=self.settings.timezone,
                public_url=self.settings.public_url,
                evidence_not_saved=not_saved,
            )
            before = (incident.case_code, incident.grade)
            incident.case_code = code  # written with the case, in one transaction
            incident.grade = assessment.grade
            try:
                await self.store.create_case(case, incident)
            except BaseException:
                incident.case_code, incident.grade = before  # not stored: the incident has no case yet
                raise
            self.cases_created += 1
            log.info(
                "case %s: %s grade %s for incident %s (camera %s)",
                code,
                incident.rule,
                assessment.grade,
                incident.id,
                camera.id,
            )
            await self._enqueue(case)
            return case

    @contextlib.contextmanager
    def _only_case(self, incident: Incident) -> Iterator[None]:
        """Held while the incident's case is being opened: a second opening meanwhile is refused."""
        self._check_no_case(incident)
        self._opening.add(incident.id)
        try:
            yield
        finally:
            self._opening.discard(incident.id)

    def _check_no_case(self, incident: Incident) -> None:
        if incident.case_code or incident.id in self._opening:
            raise InvalidTransition(
                f"incident {incident.id} already has case {incident.case_code or '(being opened now)'}"
            )

    async def _enqueue(self, case: Case) -> None:
        await self.cases_out.enqueue(case, self.mapping.apply(case))

    async def resend_refusal(self, case: Case) -> str | None:
        """Why ``case`` must not be re-sent under its code (after a code collision), or None: the
        operator's retry may go ahead (``CaseOutbox.resend_refusal``)."""
        return await self.cases_out.resend_refusal(case)

    async def _delivered(self, result: DeliveryResult) -> None:
        if result.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE):
            await self.status.apply_receipt(result.key, result.receipt, result.sent_at)
        elif result.outcome == Outcome.DEAD:
            entry = StatusEntry(
                status=CaseStatus.DEAD, at=datetime.now(UTC), note=result.error[:500], source="forwarder"
            )
            await self.store.apply_status(result.key, entry)
        if self._on_delivery is not None:
            await self._on_delivery(result)

    # -- operators -------------------------------------------------------------------------------
    async def incident(self, incident_id: str) -> Incident:
        """A live incident, or a stored one."""
        live = self.aggregator.find(incident_id)
        return live if live is not None else await self.store.get_incident(incident_id)

    async def acknowledge(self, incident_id: str, user: str) -> Incident:
        incident = self.aggregator.acknowledge(incident_id, user, datetime.now(UTC))
        await self._incident_changed(incident, "acknowledged")
        return incident

    async def dismiss(self, incident_id: str, user: str, reason: str) -> Incident:
        incident = self.aggregator.dismiss(incident_id, user, reason)
        await self._incident_changed(incident, "dismissed")
        return incident

    async def escalate(
        self, incident_id: str, user: str, *, grade: Grade | None = None, camera: CameraContext | None = None
    ) -> Case:
        """Create a case by hand (the grade defaults to the table's, else blue)."""
        incident = await self.incident(incident_id)
        check_action(incident, "escalate")
        context = camera or self._cameras.get(incident.camera_id) or CameraContext(id=incident.camera_id)
        chosen = (
            grade
            or incident.grade
            or self.grader.grade(incident.rule, incident.peak_value, context.place, incident.first_seen)
        )
        assessment = self.grader.assess(
            incident.rule, incident.peak_value, context, incident.first_seen, grade=chosen or Grade.BLUE
        )
        assert assessment is not None  # a grade is forced
        evidence = self.aggregator.best_evidence(incident_id)
        self._check_no_case(incident)  # before its state changes: an automatic case may be opening
        if self.aggregator.find(incident_id) is not None:
            self.aggregator.escalate(incident_id, user)
        else:
            incident.state = IncidentState.ESCALATED
            incident.escalated_by = user
        case = await self.open_case(incident, context, assessment, evidence, created_by=user)
        await self._incident_changed(incident, "escalated")
        return case

    # -- background ------------------------------------------------------------------------------
    async def sweep(self, now: datetime | None = None) -> int:
        closed = self.aggregator.sweep(now or datetime.now(UTC))
        for transition in closed:
            await self._incident_changed(transition.incident, transition.kind.value)
        return len(closed)

    async def prune_evidence(self, now: datetime | None = None) -> PruneReport:
        open_codes = await self.store.case_codes([s for s in CaseStatus if s not in FINAL_STATUSES])
        report = await self.evidence.prune(await self.store.evidence_rows(), open_codes, now or datetime.now(UTC))
        for code in report.deleted:
            await self.store.remove_evidence(code)
        return report

    async def _poll(self) -> None:
        client = self._client or build_client(self.settings.forwarder)
        try:
            await self.status.poll_once(client, self.settings.forwarder)
        finally:
            if self._client is None:
                await client.aclose()

    async def _every(self, interval_s: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(interval_s):
                    await self._stopping.wait()
            except TimeoutError:
                try:
                    await job()
                except EventsError as exc:
                    log.warning("%s failed: %s; trying again in %.0f s", name, exc, interval_s)

    async def run(self) -> None:
        """Forwarder and periodic jobs until ``stop()``."""
        if self.state != ServiceState.STARTED:
            raise RuntimeError(f"CaseService.run() needs start() first (state {self.state})")
        self.state = ServiceState.RUNNING
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.forwarder.run(), name="events-forwarder")
                group.create_task(self._every(self.settings.aggregation.sweep_interval_s, self.sweep, "sweep"))
                group.create_task(
                    self._every(
                        self.settings.status.overdue_check_interval_s, self.status.check_overdue, "overdue check"
                    )
                )
                group.create_task(
                    self._every(self.settings.evidence.prune_interval_s, self.prune_evidence, "evidence retention")
                )
                if self.settings.status.poll_interval_s > 0:
                    group.create_task(self._every(self.settings.status.poll_interval_s, self._poll, "status poll"))
                await self._stopping.wait()
                self.forwarder.stop()
        finally:
            self.state = ServiceState.STOPPED

    def stop(self) -> None:
        if self.state == ServiceState.RUNNING:
            self.state = ServiceState.STOPPING
        self._stopping.set()
        self.forwarder.stop()

    async def close(self) -> None:
        """Flush and close the store (``EventStoreError`` if the last write fails), then the evidence pool."""
        try:
            await self.store.close()
        finally:
            self.evidence.close()

    def stats(self) -> dict[str, Any]:
        agg = self.aggregator.stats
        fwd = self.forwarder.stats
        return {
            "anomalies": agg.observed,
            "incidents_raised": agg.raised,
            "incidents_reopened": agg.reopened,
            "incidents_closed": agg.closed,
            "incidents_live": agg.live,
            "candidates_dropped": agg.candidates_dropped,
            "refused_full": agg.refused_full,
            "evidence_bytes": agg.evidence_bytes,
            "evidence_evicted": agg.evidence_evicted,
            "cases_created": self.cases_created,
            "evidence_failures": self.evidence_failures,
            "delivered": fwd.delivered,
            "duplicates": fwd.duplicates,
            "transient_failures": fwd.transient_failures,
            "dead": fwd.dead,
            "breaker": str(self.forwarder.breaker.state),
            "breaker_opened": self.forwarder.breaker.stats.opened,
            "callbacks_refused": self.status.refused,
        }
