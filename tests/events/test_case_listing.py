"""Listing and polling past the first page: ``GET /api/cases`` shows the newest cases first (and pages
with ``offset``), and status polling reaches every open case, also those created after hundreds of others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from xueliang.api.deps import get_case_work, get_principal
from xueliang.api.routes.cases import router as cases_router
from xueliang.events.forwarder import build_client
from xueliang.events.models import Case, CaseStatus
from xueliang.events.service import CaseService
from xueliang.gateway.security import Principal, Role
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import BASE, anomaly, camera, free_port, make_settings


def code_of(n: int, region: str = "511902") -> str:
    return f"{region}-20250301-T01-{n:06d}"


async def clone_cases(service: CaseService, template: Case, numbers: range, status: CaseStatus) -> list[str]:
    """Commit a copy of ``template`` per number: case n is created n seconds after BASE."""
    incident = await service.store.get_incident(template.incident_id)
    codes = []
    for n in numbers:
        copy = template.model_copy(
            update={"code": code_of(n), "created_at": BASE + timedelta(seconds=n), "status": status}
        )
        assert await service.store.create_case(copy, incident)
        codes.append(copy.code)
    return codes


@pytest.fixture
async def service(tmp_path: Path, gateway_outbox: SqliteOutbox) -> AsyncIterator[tuple[CaseService, Case]]:
    made = CaseService(make_settings(tmp_path), gateway_outbox)
    await made.start()
    cases = [case for at in (0, 5, 10) for case in await made.handle(anomaly(1, "crowd", at, 40), camera(1))]
    assert len(cases) == 1
    yield made, cases[0]
    await made.close()


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task, f"http://127.0.0.1:{port}"


async def test_the_list_route_shows_the_newest_cases_first_and_pages(service: tuple[CaseService, Case]) -> None:
    case_service, template = service
    await clone_cases(case_service, template, range(1, 151), CaseStatus.DISPATCHED)
    app = FastAPI()
    app.include_router(cases_router)
    app.dependency_overrides[get_case_work] = lambda: SimpleNamespace(service=case_service)
    app.dependency_overrides[get_principal] = lambda: Principal(name="张三", role=Role.OPERATOR)
    server, task, url = await serve(app)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            first = (await client.get("/api/cases", params={"status": "dispatched"})).json()
            second = (await client.get("/api/cases", params={"status": "dispatched", "offset": 100})).json()
    finally:
        server.should_exit = True
        await task
    assert [c["code"] for c in first] == [code_of(n) for n in range(150, 50, -1)]
    assert [c["code"] for c in second] == [code_of(n) for n in range(50, 0, -1)]
    oldest = await case_service.store.cases([CaseStatus.DISPATCHED], limit=3, newest_first=False)
    assert [c.code for c in oldest] == [code_of(1), code_of(2), code_of(3)]


async def test_polling_reaches_cases_created_after_hundreds_of_others(service: tuple[CaseService, Case]) -> None:
    case_service, template = service
    await clone_cases(case_service, template, range(1, 202), CaseStatus.SENT)
    polled: list[str] = []
    intake = FastAPI()

    @intake.get("/api/v1/cases/{code}")
    async def status(code: str) -> dict[str, object]:
        polled.append(code)
        at = (BASE + timedelta(hours=1)).isoformat()
        return {"code": code, "history": [{"status": "received", "at": at, "event_id": f"r-{code}"}]}

    server, task, url = await serve(intake)
    settings = make_settings(Path("unused"), url).forwarder
    client = build_client(settings)
    try:
        await case_service.status.poll_once(client, settings, limit=200)
        assert len(polled) == 200 and code_of(201) not in polled
        # A case that joins with a code before the round's position is reached after the wrap.
        late = template.model_copy(update={"code": code_of(7, "511900"), "status": CaseStatus.SENT})
        assert await case_service.store.create_case(late, await case_service.store.get_incident(template.incident_id))
        assert await case_service.status.poll_once(client, settings, limit=200) == 1
        assert polled[200:] == [code_of(201)]
        assert (await case_service.store.get_case(code_of(201))).status == CaseStatus.RECEIVED
        await case_service.status.poll_once(client, settings, limit=200)
        assert polled[201] == late.code
    finally:
        await client.aclose()
        server.should_exit = True
        await task
    assert set(polled) == {*(code_of(n) for n in range(1, 202)), late.code}
