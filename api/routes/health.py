"""Liveness, readiness and Prometheus metrics: the only routes open without auth."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from xueliang.api.deps import NodeDep
from xueliang.gateway.errors import StoreError
from xueliang.gateway.metrics import CONTENT_TYPE_LATEST
from xueliang.gateway.models import CameraQuery

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(node: NodeDep) -> dict[str, str]:
    return {"status": "ok", "node": node.name}


@router.get("/readyz", summary="Readiness: stores reachable and services started")
async def readyz(node: NodeDep) -> JSONResponse:
    problems: list[str] = []
    if not node.ready.is_set():
        problems.append("services starting")
    try:
        await node.stores.cameras.count(CameraQuery(limit=1))
    except StoreError as exc:
        problems.append(f"stores: {exc}")
    body = {"status": "ready" if not problems else "not ready", "problems": problems, "backend": node.stores.backend}
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(node: NodeDep) -> Response:
    """Store-backed values (camera counts, ...) are read now, rate-limited and bounded
    (``Metrics.refresh``); a store that does not answer leaves its last values in the answer."""
    await node.metrics.refresh()
    return Response(node.metrics.render(), media_type=CONTENT_TYPE_LATEST)
