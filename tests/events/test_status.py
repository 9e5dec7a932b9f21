"""The status loop: signed callbacks from the real intake, refusals (wrong signature, replay, stale), polling,
overdue marks, and the public view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from xueliang.events.errors import CallbackRejected
from xueliang.events.forwarder import build_client
from xueliang.events.models import CaseStatus
from xueliang.events.service import CaseService
from xueliang.events.signing import signed_headers
from xueliang.events.status import StatusTracker, callback_body
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import CALLBACK_SECRET, IntakeProcess, anomaly, camera, free_port, make_settings, wait_for

PATH = "/api/v1/intake/callback"


class CallbackReceiver:
    """The gateway side of the callback, as the lead's API route will wire it: raw request -> tracker."""

    def __init__(self) -> None:
        self.tracker: StatusTracker | None = None
        self.seen: list[tuple[dict[str, str], bytes, int]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        app = FastAPI()
        app.post(PATH)(self.handle)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        assert self.tracker is not None
        try:
            await self.tracker.handle_callback(request.method, request.url.path, request.headers, body)
            code = 200
        except CallbackRejected as exc:
            code = exc.http_status
        self.seen.append((dict(request.headers), body, code))
        return Response(status_code=code)


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    made = CallbackReceiver()
    task = asyncio.create_task(made.server.serve())
    while not made.server.started:
        await asyncio.sleep(0.02)
    yield made
    made.server.should_exit = True
    await task


async def one_case(service: CaseService, cam: int = 0) -> str:
    cases = []
    for at in (0, 5, 10):
        cases += await service.handle(anomaly(cam, "crowd", at, 40), camera(cam))
    return str(cases[0].code)


async def test_intake_callbacks_close_the_loop_and_replays_are_refused(
    tmp_path: Path, receiver: CallbackReceiver, intake_factory: Any, gateway_outbox: SqliteOutbox
) -> None:
    intake: IntakeProcess = intake_factory(callback_url=receiver.url, step_s=0.2)
    service = CaseService(make_settings(tmp_path, intake.url), gateway_outbox)
    receiver.tracker = service.status
    await service.start()
    code = await one_case(service)
    runner = asyncio.create_task(service.run())

    async def closed() -> bool:
        return (await service.store.get_case(code)).status == CaseStatus.CLOSED

    await wait_for(closed, 30, "the case to be closed by the intake's callbacks")
    case = await service.store.get_case(code)
    statuses = [e.status for e in case.history]
    for step in (CaseStatus.NEW, CaseStatus.QUEUED, CaseStatus.SENT, CaseStatus.RECEIVED, CaseStatus.DISPATCHED,
                 CaseStatus.HANDLING, CaseStatus.CLOSED):  # fmt: skip
        assert step in statuses
    assert {e.source for e in case.history} >= {"gateway", "forwarder", "callback"}
    at = {e.status: e.at for e in case.history}
    # old code: SENT was stamped when the answer had come back, after the intake's own received_at
    assert at[CaseStatus.QUEUED] <= at[CaseStatus.SENT] <= at[CaseStatus.RECEIVED] <= at[CaseStatus.DISPATCHED]
    assert len([e for e in case.history if e.status == CaseStatus.CLOSED]) == 1

    # Replay a callback the intake really sent: refused.
    headers, body, _ = next(item for item in receiver.seen if item[2] == 200)
    async with httpx.AsyncClient() as client:
        replay = await client.post(receiver.url, content=body, headers=headers)
        assert replay.status_code == 401
        # A wrong secret: refused.
        forged = signed_headers("intake", "not-the-secret-at-all", "POST", PATH, body)
        assert (await client.post(receiver.url, content=body, headers=forged)).status_code == 401
    assert service.status.replays.replays == 1
    service.stop()
    await runner
    await service.close()


async def test_callback_refusals(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    service = CaseService(make_settings(tmp_path), gateway_outbox)
    await service.start()
    code = await one_case(service)
    tracker = service.status
    body = callback_body(code, CaseStatus.DISPATCHED, event_id="e1")
    good = signed_headers("intake", CALLBACK_SECRET, "POST", PATH, body)
    with pytest.raises(CallbackRejected, match="signature does not match") as bad:
        await tracker.handle_callback("POST", PATH, {**good, "X-Xueliang-Signature": "0" * 64}, body)
    assert bad.value.http_status == 401
    with pytest.raises(CallbackRejected, match="signature does not match"):
        await tracker.handle_callback("POST", "/other/path", good, body)  # signed for another path
    old = signed_headers("intake", CALLBACK_SECRET, "POST", PATH, body, now=time.time() - 600)
    with pytest.raises(CallbackRejected, match="outside the 300 s window"):
        await tracker.handle_callback("POST", PATH, old, body)
    with pytest.raises(CallbackRejected, match="unknown key id"):
        await tracker.handle_callback("POST", PATH, {**good, "X-Xueliang-Key-Id": "someone"}, body)
    result = await tracker.handle_callback("POST", PATH, good, body)
    assert result.changed and result.status == CaseStatus.DISPATCHED
    with pytest.raises(CallbackRejected, match="replayed"):
        await tracker.handle_callback("POST", PATH, good, body)
    # A late 'received' after 'dispatched' is history, not a regression.
    late = callback_body(code, CaseStatus.RECEIVED, event_id="e0")
    result = await tracker.handle_callback(
        "POST", PATH, signed_headers("intake", CALLBACK_SECRET, "POST", PATH, late), late
    )
    assert not result.changed and result.status == CaseStatus.DISPATCHED
    unknown = callback_body("511902-20990101-N01-000001", CaseStatus.CLOSED, event_id="e2")
    with pytest.raises(CallbackRejected) as missing:
        await tracker.handle_callback(
            "POST", PATH, signed_headers("intake", CALLBACK_SECRET, "POST", PATH, unknown), unknown
        )
    assert missing.value.http_status == 404
    await service.close()


async def test_polling_overdue_and_public_view(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox
) -> None:
    settings = make_settings(tmp_path, intake.url)
    service = CaseService(settings, gateway_outbox)
    await service.start()
    code = await one_case(service)
    runner = asyncio.create_task(service.run())

    async def sent() -> bool:
        return (await service.store.get_case(code)).status == CaseStatus.RECEIVED

    await wait_for(sent, 30, "delivery")
    client = build_client(settings.forwarder)

    async def polled_to_closed() -> bool:
        await service.status.poll_once(client, settings.forwarder)
        return (await service.store.get_case(code)).status == CaseStatus.CLOSED

    await wait_for(polled_to_closed, 30, "polling to see the case closed")
    await client.aclose()
    service.stop()
    await runner

    # A second case, left open, goes overdue once.
    other = await one_case(service, cam=1)
    case = await service.store.get_case(other)
    assert await service.status.check_overdue(case.due_at - timedelta(seconds=1)) == []
    flagged = await service.status.check_overdue(case.due_at + timedelta(seconds=1))
    assert [c.code for c in flagged] == [other]
    assert await service.status.check_overdue(case.due_at + timedelta(hours=1)) == []
    view = await service.status.public_view(other)
    assert view.overdue and view.status == CaseStatus.QUEUED
    text = view.model_dump_json()
    for private in ("cam-001", "人民路", "evidence", "lat", "address"):
        assert private not in text
    assert view.district == "巴州区" and view.township == "东城街道"
    closed_view = await service.status.public_view(code)
    assert [h.status for h in closed_view.history][-1] == CaseStatus.CLOSED and not closed_view.overdue
    await service.close()
