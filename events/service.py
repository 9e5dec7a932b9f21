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
from zoneinfo import ZoneInfo

import httpx

from xueliang.events.aggregation import Aggregator, TransitionKind, check_action
from xueliang.events.codes import CaseCodes, to_local
from xueliang.events.errors import EventsError, EvidenceError, InvalidTransition
from xueliang.events.evidence import EvidenceStore, PruneReport
from xueliang.events.forwarder import DeliveryResult, Forwarder, Outcome, build_client
from xueliang.events.grading import Assessment, Grader
from xueliang.events.mapping import FieldMapping
from xueliang.events.models import (
    FINAL_STATUSES,
    CameraContext,
    Case,
    CaseLocation,
    CaseStatus,
    Grade,
    Incident,
    IncidentState,
    StatusEntry,
)
from xueliang.events.outbox import OutboxEntry, OutboxPort
from xueliang.events.qr import status_url
from xueliang.events.settings import EventsSettings
from xueliang.events.status import StatusTracker
from xueliang.events.store import EventStore, SqliteEventStore
from xueliang.events.text import case_text
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
        self._client = client
        self._on_case = on_case
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
        self._mapping = FieldMapping.load(self.settings.tables.intake_mapping)
        self.aggregator.time_mark = _time_marks(self._grader)
        await self.store.open()
        windows = [self.aggregator.settings.default, *self.aggregator.settings.rules.values()]
        hold_s = max(w.quiet_s + w.hold_down_s for w in windows)
        self.aggregator.restore(await self.store.live_incidents(closed_within_s=hold_s))
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
        incident.grade = assessment.grade
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
                    not_saved = _evidence_note(exc)
                    log.warning("case %s: no evidence attached: %s", code, exc)
            now = datetime.now(UTC)
            text = case_text(
                rule=incident.rule,
                value=incident.peak_value,
                zone=incident.zone,
                camera=camera,
                grade=assessment.grade,
                category_zh=assessment.category.name_zh,
                category_en=assessment.category.name_en,
                first_seen=incident.first_seen,
                last_seen=incident.last_seen,
                count=incident.count,
                tier=assessment.tier,
                due_at=assessment.due_at,
                level=assessment.routing.level,
                unit_code=assessment.routing.unit_code,
                timezone=self.settings.timezone,
            )
            history = [StatusEntry(status=CaseStatus.NEW, at=now, note=f"created ({created_by})", source="gateway")]
            if not_saved:
                history.append(StatusEntry(status=CaseStatus.NEW, at=now, note=not_saved, source="gateway"))
            case = Case(
                code=code,
                incident_id=incident.id,
                title_zh=text.title_zh,
                title_en=text.title_en,
                description_zh=text.description_zh,
                description_en=text.description_en,
                location=CaseLocation(**camera.model_dump(include=set(CaseLocation.model_fields))),
                camera_id=camera.id,
                camera_name=camera.name,
                place=camera.place,
                rule=incident.rule,
                zone=incident.zone,
                value=incident.peak_value,
                observations=incident.count,
                observed_at=incident.first_seen,
                created_at=now,
                grade=assessment.grade,
                category_code=assessment.category.code,
                category_zh=assessment.category.name_zh,
                category_en=assessment.category.name_en,
                deadline_tier=assessment.tier,
                due_at=assessment.due_at,
                routing=assessment.routing,
                evidence=ref,
                status_url=status_url(self.settings.public_url, code),
                history=history,
                created_by=created_by,
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
        payload = {"case": case.model_dump(mode="json"), "body": self.mapping.apply(case)}
        added = await self.outbox.add(case.code, payload)
        if not added:
            held = _held_case(await self.outbox.get(case.code))
            if held.get("incident_id") != case.incident_id:
                await self._code_collision(case, held)
                return
        note = "in the outbox" if added else "in the outbox (already there)"
        await self.store.apply_status(case.code, StatusEntry(status=CaseStatus.QUEUED, at=datetime.now(UTC), note=note))
        self.forwarder.wake()
        if self._on_case is not None:
            await self._on_case(case)

    async def _code_collision(self, case: Case, held: dict[str, Any]) -> None:
        """The outbox holds ANOTHER case under this code (two nodes sharing a node tag): this one is
        never sent in its place; it goes dead with a reason the operator can act on."""
        other = _describe(held)
        log.error(
            "case %s: code collision: this case (incident %s, camera %s) and the one already in the outbox "
            "(%s) share the code; set a unique events.codes.node_tag per node. This case is marked dead",
            case.code,
            case.incident_id,
            case.camera_id,
            other,
        )
        note = (
            f"案件编号冲突：发件箱中已有同号的另一案件（{other}），请为每个节点设置唯一的 events.codes.node_tag / "
            f"case code collision: the outbox holds another case ({other}) under this code; "
            "set a unique events.codes.node_tag per node"
        )
        entry = StatusEntry(status=CaseStatus.DEAD, at=datetime.now(UTC), note=note, source="gateway")
        dead, _ = await self.store.apply_status(case.code, entry)
        if self._on_case is not None:
            await self._on_case(dead)

    async def resend_refusal(self, case: Case) -> str | None:
        """Why ``case`` must not be re-sent under its code, or None when the outbox item under the
        code is this case's own (the operator's retry may go ahead).

        After a code collision (``_code_collision``) the item under the code is ANOTHER case's:
        retrying it would re-send that case (or refuse it as "not dead"), never this one. Raises the
        gateway's ``NotFound`` when nothing is in the outbox under the code."""
        held = _held_case(await self.outbox.get(case.code))
        if held.get("incident_id") == case.incident_id:
            return None
        other = _describe(held)
        log.warning(
            "case %s: retry refused: the outbox item under this code is another case (%s), not this one (incident %s)",
            case.code,
            other,
            case.incident_id,
        )
        return (
            f"案件编号冲突：发件箱中编号 {case.code} 下是另一案件（{other}），本案件不能以此编号重新发送；"
            "请为每个节点设置唯一的 events.codes.node_tag / "
            f"case code collision: the outbox item under {case.code} is another case ({other}), so this case "
            "cannot be re-sent under this code; set a unique events.codes.node_tag per node"
        )

    async def _delivered(self, result: DeliveryResult) -> None:
        if result.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE):
            await self.status.apply_receipt(result.key, result.receipt)
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
                await asyncio.wait_for(self._stopping.wait(), timeout=interval_s)
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


def _time_marks(grader: Grader) -> Callable[[datetime], int]:
    """Which of the tables' time windows an instant's local minute lies in, as a bitmask: a change
    of the mark is a window edge crossed (what the aggregator re-grades an incident on)."""
    windows = [w.minutes() for w in grader.tables.grading.time_windows]
    marks = [sum(1 << i for i, w in enumerate(windows) if minute in w) for minute in range(24 * 60)]
    zone: ZoneInfo = grader.zone

    def mark(at: datetime) -> int:
        local = to_local(at, zone)
        return marks[local.hour * 60 + local.minute]

    return mark


def _held_case(item: OutboxEntry) -> dict[str, Any]:
    """The case an outbox item carries (``_enqueue`` writes ``{"case": ..., "body": ...}``); {} if none."""
    held = item.payload.get("case")
    return held if isinstance(held, dict) else {}


def _evidence_note(exc: EvidenceError) -> str:
    """The case history's note when its evidence was not saved: what to do first, the cause after."""
    if isinstance(exc.__cause__, OSError):
        zh = "证据未保存：证据文件写入失败，请释放磁盘空间或修正 events.evidence.dir 的权限"
    else:
        zh = "证据未保存：证据图像无法处理"
    return f"{zh} / evidence not saved: {exc}"


def _describe(held: dict[str, Any]) -> str:
    """The held case as an operator tells it apart: its incident and camera."""
    return f"incident {held.get('incident_id', '?')}, camera {held.get('camera_id', '?')}"
