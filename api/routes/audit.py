"""The audit log, read-only (admins)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from xueliang.api.deps import AdminUser, NodeDep
from xueliang.gateway.models import AuditEntry

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit", summary="Audit entries, newest first")
async def audit(
    node: NodeDep,
    _: AdminUser,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[AuditEntry]:
    return await node.stores.audit.query(actor=actor, action=action, since=since, limit=limit)
