"""Fallback incident actions for the alarm panel, until the events part's routes are wired in.

``attach_wall`` installs these only when the app has no ``/api/incidents/.../ack`` route of its
own. They keep nothing: each action is published back on the live feed as an ``incident`` item
(``{"id", "state", "by", "at", "reason"}``), so every wall shows the change at once. The real
routes (events part) change the stored incident and publish the same kind of item.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from xueliang.api.deps import NodeDep, Operator
from xueliang.gateway.models import utcnow
from xueliang.gateway.node import Node

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/incidents", tags=["wall"])

INCIDENT_KIND = "incident"


class DismissBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(..., min_length=1, max_length=500, description="Why this is not a real incident")


class IncidentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    state: str
    by: str
    at: str
    reason: str = ""


def _publish(node: Node, incident_id: str, state: str, by: str, reason: str = "") -> IncidentChange:
    change = IncidentChange(id=incident_id, state=state, by=by, at=utcnow().isoformat(), reason=reason)
    node.live.publish(INCIDENT_KIND, "", change.model_dump())
    log.info("incident %s %s by %s (wall fallback route)", incident_id, state, by)
    return change


@router.post("/{incident_id}/ack", summary="Acknowledge an incident (wall fallback)")
async def acknowledge(incident_id: str, principal: Operator, node: NodeDep) -> IncidentChange:
    return _publish(node, incident_id, "acknowledged", principal.name)


@router.post("/{incident_id}/dismiss", summary="Dismiss an incident with a reason (wall fallback)")
async def dismiss(incident_id: str, body: DismissBody, principal: Operator, node: NodeDep) -> IncidentChange:
    return _publish(node, incident_id, "dismissed", principal.name, body.reason)


@router.post("/{incident_id}/escalate", summary="Escalate an incident to a case (wall fallback)")
async def escalate(incident_id: str, principal: Operator, node: NodeDep) -> IncidentChange:
    return _publish(node, incident_id, "escalated", principal.name)


def has_incident_routes(paths: list[str]) -> bool:
    """Whether the app already serves incident actions (the events part's routes)."""
    return any(path.startswith("/api/incidents/") and path.endswith("/ack") for path in paths)
