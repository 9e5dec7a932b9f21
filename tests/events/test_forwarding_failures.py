"""Forwarding against a misbehaving intake over real HTTP on loopback: nothing lost, nothing sent twice.

``ScriptedIntake`` is a raw HTTP/1.1 server whose every answer is scripted (trickled bytes, a 200
that is not a receipt, 409 without a body, Retry-After as an HTTP date, a redirect); the tests
that need the real reference intake use it as a process (``conftest.intake``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from xueliang.events import signing
from xueliang.events.forwarder import Forwarder
from xueliang.events.models import CaseStatus
from xueliang.events.service import CaseService
from xueliang.gateway.stores.base import Outbox, OutboxStatus
from xueliang.gateway.stores.redis.connection import RedisConnection
from xueliang.gateway.stores.redis.outbox import RedisOutbox
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import PATIENT, IntakeProcess, make_settings, wait_for
from .test_faults import make_cases


@dataclass
class Seen:
    key: str
    headers: dict[str, str]
    body: bytes
    head: bytes = b""
    reader: asyncio.StreamReader | None = field(default=None, repr=False)


Answer = Callable[[Seen, int, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class ScriptedIntake:
    """Records each request, answers it with ``answer(request, index, writer)``."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    max_active: int = 0
    port: int = 0
    _open: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Seen(headers.get("idempotency-key", ""), headers, body, head, reader)
                self.seen.append(request)
                self.active[request.key] = self.active.get(request.key, 0) + 1
                self.max_active = max(self.max_active, self.active[request.key])
                try:
                    await self.answer(request, len(self.seen) - 1, writer)
                finally:
                    self.active[request.key] -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._open.pop(task, None)
            writer.close()


@contextlib.asynccontextmanager
async def scripted(answer: Answer) -> AsyncIterator[ScriptedIntake]:
    intake = ScriptedIntake(answer)
    server = await asyncio.start_server(intake._handle, "127.0.0.1", 0)
    intake.port = server.sockets[0].getsockname()[1]
    try:
        yield intake
    finally:
        server.close()
        tasks = list(intake._open)
        for writer in intake._open.values():
            writer.transport.abort()  # a handler still writing or reading ends with ConnectionError
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await server.wait_closed()


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes = b"", **headers: str) -> None:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    head += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()


def receipt(key: str, *, duplicate: bool = False) -> bytes:
    return json.dumps({"code": key, "intake_id": "ZZ1", "status": "received", "duplicate": duplicate}).encode()


@contextlib.asynccontextmanager
async def forwarding(forwarder: Forwarder) -> AsyncIterator[Forwarder]:
    runner = asyncio.create_task(forwarder.run())
    try:
        yield forwarder
    finally:
        forwarder.stop()
        await runner


async def status_of(outbox: SqliteOutbox, key: str, *wanted: OutboxStatus) -> None:
    async def reached() -> bool:
        return (await outbox.get(key)).status in wanted

    await wait_for(reached, 20, f"outbox item {key} to be {'/'.join(wanted)}")


async def forward_one(
    tmp_path: Path, outbox: SqliteOutbox, url: str, key: str, until: OutboxStatus, **forwarder: Any
) -> Forwarder:
    """Put one item in the outbox and forward until it reaches ``until``; the forwarder is stopped."""
    await outbox.add(key, {"body": {"caseNo": key}})
    sender = Forwarder(make_settings(tmp_path, url, **forwarder).forwarder, outbox)
    async with forwarding(sender):
        await status_of(outbox, key, until)
    return sender


async def test_a_trickling_answer_is_cut_at_the_request_bound_never_sent_twice_at_once(
    tmp_path: Path, gateway_outbox: SqliteOutbox
) -> None:
    """Old code: httpx's read timeout bounds each read, not the request; an intake trickling one
    byte every 0.2 s kept the request alive past the 3 s lease, the item was claimed again and the
    same case was in flight twice at once."""

    earlier_gone_before_repeat: list[bool] = []

    async def trickle(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index > 0:  # a repeat (a second one too, if the loaded gateway also gave up on the first repeat)
            earlier = [seen.reader for seen in server.seen[:index]]
            earlier_gone_before_repeat.append(all(r is not None and r.at_eof() for r in earlier))
            await respond(writer, 201, receipt(request.key))
            return
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 30\r\n\r\n")
        assert request.reader is not None
        for _ in range(30):  # 6 s in all, a byte at a time, while the gateway listens
            await asyncio.sleep(0.2)
            if request.reader.at_eof():
                return
            writer.write(b" ")
            await writer.drain()

    async with scripted(trickle) as server:
        settings = make_settings(tmp_path, server.url, lease_s=3.0).forwarder
        await gateway_outbox.add("C-TRICKLE", {"body": {"caseNo": "C-TRICKLE"}})
        async with forwarding(Forwarder(settings, gateway_outbox)):
            await status_of(gateway_outbox, "C-TRICKLE", OutboxStatus.DELIVERED)
        repeats = len(server.seen) - 1
        assert repeats >= 1 and earlier_gone_before_repeat == [True] * repeats
    item = await gateway_outbox.get("C-TRICKLE")
    assert item.attempts == len(server.seen) and "timeout" in item.last_error


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_retry_after_is_honoured_in_both_forms(tmp_path: Path, gateway_outbox: SqliteOutbox, form: str) -> None:
    """Old code: ``Retry-After: <HTTP-date>`` (RFC 9110 allows both forms) was ignored and the case
    came back after the jitter (well under a second) instead of when the intake asked."""
    later = datetime.now(UTC) + timedelta(seconds=300)
    value = "300" if form == "seconds" else format_datetime(later, usegmt=True)

    async def busy(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 429, b'{"detail":"slow down"}', Retry_After=value)

    async with scripted(busy) as server:
        await forward_one(tmp_path, gateway_outbox, server.url, "C-429", OutboxStatus.PENDING, backoff_cap_s=900.0)
    item = await gateway_outbox.get("C-429")
    assert len(server.seen) == 1 and item.attempts == 1 and "HTTP 429" in item.last_error
    assert item.next_attempt_at >= later - timedelta(seconds=30)


async def test_a_2xx_that_is_not_a_receipt_is_retried_and_the_repeat_meets_the_idempotency_key(
    tmp_path: Path, gateway_outbox: SqliteOutbox
) -> None:
    """Old code: a 200 with an HTML page (a proxy, a wrong URL) counted as delivered with no receipt:
    the case was marked sent though nothing says the intake has it."""

    async def portal(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            await respond(writer, 200, b"<html>welcome</html>", Content_Type="text/html")
        else:
            await respond(writer, 409, receipt(request.key, duplicate=True))

    async with scripted(portal) as server:
        forwarder = await forward_one(tmp_path, gateway_outbox, server.url, "C-HTML", OutboxStatus.DELIVERED)
    item = await gateway_outbox.get("C-HTML")
    assert item.attempts == 2 and item.response["intake_id"] == "ZZ1"
    assert forwarder.stats.transient_failures == 1 and forwarder.stats.duplicates == 1


async def test_a_bare_409_is_a_duplicate(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    """Old code: a 409 without ``"duplicate": true`` in its body counted as a fresh delivery."""

    async def conflict(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 409, b"already received")

    async with scripted(conflict) as server:
        forwarder = await forward_one(tmp_path, gateway_outbox, server.url, "C-409", OutboxStatus.DELIVERED)
    assert forwarder.stats.duplicates == 1 and len(server.seen) == 1


@pytest.mark.parametrize("status", [400, 307])
async def test_a_refusal_or_a_redirect_is_dead_at_once_with_the_reason(
    tmp_path: Path, gateway_outbox: SqliteOutbox, status: int
) -> None:
    """Pins: 400 and a redirect (never followed: the signed case must not go to another host) are
    dead after one attempt with a readable reason."""

    async def elsewhere(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 500)

    async with scripted(elsewhere) as other:

        async def refuse(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
            if status == 307:
                await respond(writer, 307, Location=f"{other.url}/api/v1/cases")
            else:
                await respond(writer, 400, b'{"detail":"regionCode missing"}')

        async with scripted(refuse) as server:
            await forward_one(tmp_path, gateway_outbox, server.url, "C-BAD", OutboxStatus.DEAD)
        assert other.seen == [] and len(server.seen) == 1
    item = await gateway_outbox.get("C-BAD")
    assert item.attempts == 1 and f"HTTP {status}" in item.last_error
    assert status == 307 or "regionCode missing" in item.last_error


async def test_a_hanging_case_does_not_hold_up_the_others(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    """Pins: one case the intake never answers times out on its own; the others go meanwhile; the
    gateway never holds two requests of it open at once (``max_active`` counts the requests whose
    connection the gateway still holds: a hanging handler ends when the gateway hangs up, or a
    loaded machine's timed-out first request would still count when the repeat comes)."""
    release = asyncio.Event()

    async def one_hangs(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if request.key == "C-00":
            assert request.reader is not None
            released = asyncio.ensure_future(release.wait())
            hung_up = asyncio.ensure_future(request.reader.read(1))  # b"": the gateway closed it
            await asyncio.wait({released, hung_up}, return_when=asyncio.FIRST_COMPLETED)
            released.cancel()
            hung_up.cancel()
            if not release.is_set():
                return  # the gateway gave up on this request; the handler ends at the closed stream
        await respond(writer, 201, receipt(request.key))

    async with scripted(one_hangs) as server:
        for n in range(6):
            await gateway_outbox.add(f"C-{n:02d}", {"body": {}})
        forwarder = Forwarder(make_settings(tmp_path, server.url, concurrency=2).forwarder, gateway_outbox)
        async with forwarding(forwarder):
            for n in range(1, 6):
                await status_of(gateway_outbox, f"C-{n:02d}", OutboxStatus.DELIVERED)
            assert (await gateway_outbox.get("C-00")).status != OutboxStatus.DELIVERED
            release.set()
            await status_of(gateway_outbox, "C-00", OutboxStatus.DELIVERED)
    assert server.max_active == 1


async def all_delivered(outbox: Outbox, n: int) -> None:
    async def done() -> bool:
        return (await outbox.counts())[OutboxStatus.DELIVERED] == n

    await wait_for(done, 30, f"{n} outbox items delivered")


@pytest.mark.parametrize("fault", ["drop", "late"])
async def test_the_intake_stores_the_case_but_the_answer_is_lost(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox, fault: str
) -> None:
    """Pins, through a relay in front of the real intake: the first answer of each case is dropped
    with the connection, or comes after the gateway gave up; the retry is a duplicate, never a
    second case."""
    upstream = intake.port
    settings = make_settings(tmp_path, "http://127.0.0.1:1")
    bound = settings.forwarder.connect_timeout_s + settings.forwarder.request_timeout_s
    lost: set[str] = set()

    async def relay(request: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        reader, to_intake = await asyncio.open_connection("127.0.0.1", upstream)
        try:
            to_intake.write(request.head + request.body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            answer = head + await reader.readexactly(length)
        finally:
            to_intake.close()
        if request.key not in lost:
            lost.add(request.key)
            if fault == "drop":
                writer.transport.abort()
                return
            await asyncio.sleep(bound + 0.5)
        writer.write(answer)
        await writer.drain()

    async with scripted(relay) as proxy:
        settings.forwarder.intake_url = proxy.url
        service = CaseService(settings, gateway_outbox)
        await service.start()
        cases = await make_cases(service, 3)
        runner = asyncio.create_task(service.run())
        await all_delivered(gateway_outbox, 3)
        service.stop()
        await runner
    figures = await intake.stats()
    # Each case once at the intake; each case's delivery is the intake's "already have it". Counts of
    # repeats are at least one a case: a loaded machine may also give up on a slow repeat.
    assert figures["received"] == 3 and figures["duplicates_refused"] >= 3
    assert service.forwarder.stats.duplicates == 3 and service.forwarder.stats.transient_failures >= 3
    for case in cases:
        history = [e.status for e in (await service.store.get_case(case.code)).history]
        assert CaseStatus.SENT in history and CaseStatus.DEAD not in history
    await service.close()


@pytest.fixture(params=["sqlite", "redis"])
async def any_outbox(request: pytest.FixtureRequest, gateway_outbox: SqliteOutbox) -> AsyncIterator[Outbox]:
    if request.param == "sqlite":
        yield gateway_outbox
        return
    conn = RedisConnection(str(request.getfixturevalue("redis_url")), f"fwd-{time.monotonic_ns()}:")
    yield RedisOutbox(conn)
    await conn.close()


async def test_a_gateway_that_died_mid_delivery_delivers_once_after_restart(
    tmp_path: Path, intake: IntakeProcess, any_outbox: Outbox
) -> None:
    """Pins (SQLite and Redis outbox): the first gateway claimed every item and POSTed it, then died
    before recording anything (items left ``sending``); the restarted one waits for the lease,
    re-sends, and the intake keeps one case each."""
    settings = make_settings(tmp_path, intake.url, **PATIENT)
    first = CaseService(settings, any_outbox)
    await first.start()
    await make_cases(first, 3)
    claimed = await any_outbox.claim("dead-gateway", limit=10, lease_s=1.0)
    assert len(claimed) == 3
    async with httpx.AsyncClient(base_url=intake.url) as client:
        for item in claimed:
            await first.forwarder.send(client, item)
    await first.close()  # it died: nothing marked

    second = CaseService(settings, any_outbox)
    await second.start()
    runner = asyncio.create_task(second.run())
    await all_delivered(any_outbox, 3)
    second.stop()
    await runner
    await second.close()
    figures = await intake.stats()
    assert figures["received"] == 3 and figures["duplicates_refused"] == 3
    assert second.forwarder.stats.duplicates == 3


async def test_clock_skew_refusal_is_retried_not_dead(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old code: the intake's 401 (our clock 10 minutes ahead, outside its 300 s window) made every
    case dead at once, though nothing is wrong with the cases; now it is transient (the breaker
    opens) and the cases go once the clock is right."""
    skewed = type("SkewedClock", (), {"time": staticmethod(lambda: time.time() + 600)})
    monkeypatch.setattr(signing, "time", skewed)
    service = CaseService(make_settings(tmp_path, intake.url, **PATIENT), gateway_outbox)
    await service.start()
    await make_cases(service, 2)
    runner = asyncio.create_task(service.run())
    stats = service.forwarder.stats

    async def refused() -> bool:
        return stats.dead > 0 or service.forwarder.breaker.stats.opened >= 1

    await wait_for(refused, 20, "the intake's 401s to open the breaker")
    assert stats.dead == 0 and (await gateway_outbox.counts())[OutboxStatus.DEAD] == 0
    assert (await intake.stats())["bad_signatures"] >= 1
    monkeypatch.undo()  # the clock is set right
    await all_delivered(gateway_outbox, 2)
    service.stop()
    await runner
    await service.close()
    figures = await intake.stats()
    assert figures["received"] == 2 and figures["duplicates_refused"] == 0
