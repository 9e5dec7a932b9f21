"""Cameras: list, search, read (operators and technicians); add, change, delete, re-probe and bulk
import (technicians). Passwords go in, never out: responses carry ``has_password`` only.

Errors: a body that does not validate, an address outside ``security.allowed_networks`` or a
camera list that cannot be read (damaged, or over ``cameras.max_import_rows`` rows) are 422 with
the field path (``loc``); an address registered under another id is 409; too many waiting imports
429; an upload over ``cameras.max_import_bytes`` 413.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from xueliang.api.deps import MAX_OFFSET, NodeDep, Staff, Technician
from xueliang.gateway.cameras.errors import CameraAddressError, ImportFileError, ImportQueueFull
from xueliang.gateway.cameras.export import all_cameras, to_csv
from xueliang.gateway.cameras.importer import parse_camera_file
from xueliang.gateway.cameras.jobs import ImportJob, JobState
from xueliang.gateway.cameras.models import CameraChanges, CameraSpec, ImportProgress
from xueliang.gateway.cameras.runtime import CameraRuntime
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel")


def get_cameras(node: NodeDep) -> CameraRuntime:
    if node.cameras is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="camera management is not running")
    return node.cameras


CamerasDep = Annotated[CameraRuntime, Depends(get_cameras)]


class CameraPublic(CameraRecord):
    """A camera as the API shows it: every registry field but the (encrypted) password."""

    password_enc: str = Field("", exclude=True, description="Never returned")
    has_password: bool = Field(False, description="A password is on record (it is never returned)")


def public(record: CameraRecord) -> CameraPublic:
    values = record.model_dump(exclude={"password_enc"})
    return CameraPublic.model_validate({**values, "has_password": bool(record.password_enc)})


class CameraPage(BaseModel):
    items: list[CameraPublic]
    total: int = Field(description="Cameras matching the filter, ignoring limit/offset")
    limit: int
    offset: int


class StatusSummary(BaseModel):
    total: int
    by_status: dict[CameraStatus, int]


class ImportJobPublic(BaseModel):
    id: str
    filename: str
    state: JobState
    created_at: datetime
    finished_at: datetime | None
    total: int
    done: int
    ok: int
    failed: int
    skipped: int
    by_status: dict[str, int]
    rate_per_s: float
    eta_s: float | None
    error: str
    unknown_columns: list[str]
    result_url: str


def job_public(job: ImportJob) -> ImportJobPublic:
    progress = job.progress or ImportProgress(total=0)  # not counted yet: all zero
    eta = progress.eta_s
    return ImportJobPublic(
        id=job.id,
        filename=job.filename,
        state=job.state,
        created_at=job.created_at,
        finished_at=job.finished_at,
        total=progress.total,
        done=progress.done,
        ok=progress.ok,
        failed=progress.failed,
        skipped=progress.skipped,
        by_status=dict(progress.by_status),
        rate_per_s=round(progress.rate, 2),
        eta_s=round(eta, 1) if eta is not None else None,
        error=job.error,
        unknown_columns=job.unknown_columns,
        result_url=f"/api/cameras/imports/{job.id}/result.csv",
    )


def unprocessable(loc: list[str | int], message: str, kind: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    return HTTPException(422, detail=[{"loc": loc, "msg": message, "type": kind, "input": None}])


def address_refused(exc: CameraAddressError) -> HTTPException:
    return unprocessable(["body", "host"], str(exc), "address_not_allowed")


# ---------------------------------------------------------------- reading (operators too)


@router.get("", summary="List, filter and search cameras")
async def list_cameras(
    *,
    cameras: CamerasDep,
    _: Staff,
    status_: Annotated[CameraStatus | None, Query(alias="status", description="Only this status")] = None,
    region: Annotated[str | None, Query(description="6-digit region code (行政区划代码)")] = None,
    township: Annotated[str | None, Query(description="Township / street name")] = None,
    grid: Annotated[str | None, Query(description="Grid code (网格编码)")] = None,
    category: Annotated[str | None, Query(description="road, square, station, school, ...")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Substring of name, host or address")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Cameras to skip (paging)")] = 0,
) -> CameraPage:
    query = CameraQuery(
        status=status_, region_code=region, township=township, grid_code=grid, category=category, search=q,
        limit=limit, offset=offset,
    )  # fmt: skip
    items = await cameras.service.list(query)
    total = await cameras.service.count(query)
    return CameraPage(items=[public(c) for c in items], total=total, limit=limit, offset=offset)


@router.get("/summary", summary="How many cameras are in each status")
async def summary(cameras: CamerasDep, _: Staff) -> StatusSummary:
    counts = await cameras.service.summary()
    return StatusSummary(total=sum(counts.values()), by_status=counts)


@router.get("/export.csv", summary="The registry as CSV (UTF-8 with BOM; passwords never included)")
async def export_csv(cameras: CamerasDep, _: Staff) -> Response:
    records = [c async for c in all_cameras(cameras.service.node.stores.cameras)]
    data = await asyncio.to_thread(to_csv, records)
    headers = {"Content-Disposition": 'attachment; filename="cameras.csv"'}
    return Response(data, media_type="text/csv; charset=utf-8", headers=headers)


# ---------------------------------------------------------------- bulk import (technicians)


@router.post("/imports", status_code=status.HTTP_202_ACCEPTED, summary="Import a camera list (CSV or XLSX body)")
async def start_import(
    request: Request,
    cameras: CamerasDep,
    principal: Technician,
    filename: Annotated[
        str | None, Query(max_length=200, description="e.g. cameras.xlsx; else from Content-Type")
    ] = None,
) -> ImportJobPublic:
    name = _upload_name(filename, request.headers.get("content-type", ""))
    data = await _read_limited(request, cameras.service.settings.max_import_bytes)
    try:
        limit = cameras.service.settings.max_import_rows
        parsed = await asyncio.to_thread(parse_camera_file, Path(name), data, max_rows=limit)
    except ImportFileError as exc:
        raise unprocessable(["body"], str(exc), "import_file") from exc
    try:
        job = cameras.imports.submit(name, parsed, principal.name)
    except ImportQueueFull as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=str(exc)) from exc
    return job_public(job)


def _upload_name(filename: str | None, content_type: str) -> str:
    if filename:
        name = PurePath(filename).name
        if PurePath(name).suffix.lower() not in (".csv", ".txt", ".xlsx", ".xlsm"):
            raise unprocessable(["query", "filename"], f"{name!r}: send a .csv or .xlsx file", "import_file")
        return name
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == XLSX_TYPE:
        return "upload.xlsx"
    if kind in CSV_TYPES:
        return "upload.csv"
    raise unprocessable(
        ["header", "content-type"],
        f"Content-Type {kind or '(none)'} is not a camera list: send text/csv or {XLSX_TYPE}, or ?filename=NAME.xlsx",
        "import_file",
    )


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                413,
                detail=f"camera list larger than {limit} bytes (cameras.max_import_bytes): split it",
            )
        chunks.append(chunk)
    if not size:
        raise unprocessable(["body"], "empty body: send the CSV or XLSX file as the request body", "import_file")
    return b"".join(chunks)


@router.get("/imports", summary="Import jobs on this node, newest first")
async def list_imports(cameras: CamerasDep, _: Technician) -> list[ImportJobPublic]:
    return [job_public(j) for j in cameras.imports.list()]


@router.get("/imports/{job_id}", summary="An import job's progress and counts")
async def get_import(job_id: str, cameras: CamerasDep, _: Technician) -> ImportJobPublic:
    return job_public(cameras.imports.get(job_id))


@router.get("/imports/{job_id}/result.csv", summary="An import's per-row result file")
async def import_result(job_id: str, cameras: CamerasDep, _: Technician) -> Response:
    job = cameras.imports.get(job_id)
    if job.state is not JobState.DONE:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"import job {job_id} is {job.state}: no result file yet")
    data = await asyncio.to_thread(job.result_path.read_bytes)
    headers = {"Content-Disposition": f'attachment; filename="{job.id}.result.csv"'}
    return Response(data, media_type="text/csv; charset=utf-8", headers=headers)


# ---------------------------------------------------------------- one camera


@router.get("/{camera_id}", summary="One camera")
async def get_camera(camera_id: str, cameras: CamerasDep, _: Staff) -> CameraPublic:
    return public(await cameras.service.get(camera_id))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add (or update) a camera and probe it")
async def add_camera(body: CameraSpec, cameras: CamerasDep, principal: Technician) -> CameraPublic:
    try:
        return public(await cameras.service.add(body, principal.name))
    except CameraAddressError as exc:
        raise address_refused(exc) from exc


@router.patch("/{camera_id}", summary="Change name, location, category, policy or credentials")
async def update_camera(
    camera_id: str, body: CameraChanges, cameras: CamerasDep, principal: Technician
) -> CameraPublic:
    try:
        return public(await cameras.service.update(camera_id, body, principal.name))
    except CameraAddressError as exc:
        raise address_refused(exc) from exc


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a camera")
async def delete_camera(camera_id: str, cameras: CamerasDep, principal: Technician) -> Response:
    await cameras.service.delete(camera_id, principal.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{camera_id}/reprobe", summary="Probe a camera again and store what it says now")
async def reprobe_camera(camera_id: str, cameras: CamerasDep, principal: Technician) -> CameraPublic:
    try:
        return public(await cameras.service.reprobe(camera_id, principal.name))
    except CameraAddressError as exc:
        raise address_refused(exc) from exc
