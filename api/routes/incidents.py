"""Incidents as operators handle them: list, evidence, acknowledge, dismiss, escalate to a case."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.deps import CaseWorkDep, Operator, Staff
from xueliang.events.errors import EventsError, IncidentNotFound
from xueliang.events.models import Grade
from xueliang.gateway.casework import incident_view

router = APIRouter(prefix="/api/incidents", tags=["incidents"])


class DismissRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=500, description="Why it is no incident (required, audited)")


class EscalateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: Grade | None = Field(None, description="Force a grade; default: the grading table's")


def _refuse(exc: EventsError) -> HTTPException:
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, IncidentNotFound) else status.HTTP_409_CONFLICT
    return HTTPException(code, detail=str(exc))


@router.get("", summary="Live incidents, newest first")
async def list_incidents(work: CaseWorkDep, _: Staff) -> list[dict[str, object]]:
    live = sorted(work.service.aggregator.live(), key=lambda i: i.last_seen, reverse=True)
    return [incident_view(i, "live", (await work.context(i.camera_id)).name) for i in live]


@router.get("/{incident_id}/evidence.jpg", summary="The best frame of a live incident", response_class=Response)
async def incident_evidence(incident_id: str, work: CaseWorkDep, _: Staff) -> Response:
    evidence = work.service.aggregator.best_evidence(incident_id)
    if evidence is None or not evidence.jpeg:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id} has no evidence frame in memory")
    return Response(evidence.jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})


@router.post("/{incident_id}/ack", summary="Acknowledge: an operator is on it")
async def acknowledge(incident_id: str, work: CaseWorkDep, who: Operator) -> dict[str, object]:
    try:
        incident = await work.service.acknowledge(incident_id, who.name)
    except EventsError as exc:
        raise _refuse(exc) from exc
    return incident_view(incident, "acknowledged")


@router.post("/{incident_id}/dismiss", summary="Dismiss with a reason (false alarm, known work, ...)")
async def dismiss(incident_id: str, body: DismissRequest, work: CaseWorkDep, who: Operator) -> dict[str, object]:
    try:
        incident = await work.service.dismiss(incident_id, who.name, body.reason)
    except EventsError as exc:
        raise _refuse(exc) from exc
    return incident_view(incident, "dismissed")


@router.post("/{incident_id}/escalate", status_code=status.HTTP_201_CREATED, summary="Make a case of it by hand")
async def escalate(incident_id: str, body: EscalateRequest, work: CaseWorkDep, who: Operator) -> dict[str, object]:
    try:
        incident = await work.service.incident(incident_id)
        case = await work.service.escalate(
            incident_id, who.name, grade=body.grade, camera=await work.context(incident.camera_id)
        )
    except EventsError as exc:
        raise _refuse(exc) from exc
    return {"code": case.code, "grade": str(case.grade), "status": str(case.status), "title": case.title_zh}
