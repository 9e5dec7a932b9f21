"""Cases: list, detail, QR code, evidence, retry of dead deliveries; and the intake's signed callback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse

from xueliang.api.deps import MAX_OFFSET, CaseWorkDep, IntakeClient, NodeDep, Operator, Staff
from xueliang.events.errors import CallbackRejected, CaseNotFound
from xueliang.events.models import Case, CaseStatus
from xueliang.events.qr import case_qr
from xueliang.gateway.casework import CaseWork
from xueliang.gateway.errors import Conflict, NotFound

router = APIRouter(tags=["cases"])


async def _case(work: CaseWork, code: str) -> Case:
    try:
        return await work.service.store.get_case(code)
    except CaseNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case {code}") from exc


@router.get("/api/cases", summary="Cases, newest first, optionally by status")
async def list_cases(
    work: CaseWorkDep,
    _: Staff,
    status_: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Cases to skip (paging: 0, limit, 2*limit, ...)")
    ] = 0,
) -> list[Case]:
    return await work.service.store.cases(status_ or list(CaseStatus), limit=limit, newest_first=True, offset=offset)


@router.get("/api/cases/{code}", summary="One case with its status history")
async def get_case(code: str, work: CaseWorkDep, _: Staff) -> Case:
    return await _case(work, code)


@router.get("/api/cases/{code}/qr.{kind}", summary="QR code of the case's public status page (svg or png)")
async def case_qr_image(code: str, kind: str, work: CaseWorkDep, _: Staff) -> Response:
    if kind not in ("svg", "png"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "QR codes come as .svg or .png")
    await _case(work, code)
    qr = case_qr(work.service.settings.public_url, code)  # CaseWork fills it in (http.base_url) when unset
    return Response(qr.svg if kind == "svg" else qr.png, media_type="image/svg+xml" if kind == "svg" else "image/png")


@router.get("/api/cases/{code}/evidence.jpg", summary="The annotated evidence snapshot", response_class=Response)
async def case_evidence(code: str, work: CaseWorkDep, _: Staff) -> FileResponse:
    case = await _case(work, code)
    if case.evidence is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {code} has no evidence")
    path = work.service.evidence.root / case.evidence.path
    if not path.is_file():
        raise HTTPException(
            status.HTTP_410_GONE,
            f"案件 {code} 的证据文件缺失（已被保留策略或人工删除）/ evidence file of case {code} is missing "
            "(removed by the retention policy or by hand)",
        )
    return FileResponse(path, media_type="image/jpeg")


@router.post("/api/cases/{code}/retry", summary="Send a dead case again (after fixing the cause)")
async def retry_case(code: str, node: NodeDep, work: CaseWorkDep, _: Operator) -> dict[str, str]:
    case = await _case(work, code)
    try:
        refusal = await work.service.resend_refusal(case)  # after a code collision: another case's item
        if refusal is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, refusal)
        await node.stores.outbox.retry(code)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {code} is not in the outbox") from exc
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"case {code} is not dead: {exc}") from exc
    work.service.forwarder.wake()
    return {"code": code, "outbox": "pending"}


@router.post("/api/intake/callback", summary="Status report from the governance centre's intake (signed)")
async def intake_callback(request: Request, work: CaseWorkDep, _: IntakeClient) -> JSONResponse:
    body = await request.body()
    try:
        result = await work.service.status.handle_callback("POST", request.url.path, request.headers, body)
    except CallbackRejected as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.http_status)
    return JSONResponse(result.model_dump(mode="json"))
