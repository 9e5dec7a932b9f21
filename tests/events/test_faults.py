"""The intake misbehaves (down, 500s, timeouts, slow, refusing a body): every case still arrives once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from xueliang.events.breaker import BreakerState, CircuitBreaker
from xueliang.events.models import Case, CaseStatus
from xueliang.events.service import CaseService
from xueliang.gateway.stores.base import OutboxStatus
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import PATIENT, IntakeProcess, anomaly, camera, make_settings, wait_for

N = 12


async def make_cases(service: CaseService, n: int = N) -> list[Case]:
    """A crowd of 40 on ``n`` cameras, seen 3 times over 10 s: one orange case each."""
    cases = []
    for cam in range(n):
        for at in (0, 5, 10):
            cases += await service.handle(anomaly(cam, "crowd", at, 40), camera(cam))
    assert len(cases) == n
    return cases


async def deliver_all(service: CaseService, intake: IntakeProcess, n: int = N, timeout: float = 60) -> None:
    async def arrived() -> bool:
        return (await intake.stats())["received"] == n

    await wait_for(arrived, timeout, f"{n} cases at the intake")


async def settle(outbox: SqliteOutbox, n: int = N) -> None:
    async def done() -> bool:
        return (await outbox.counts())[OutboxStatus.DELIVERED] == n

    await wait_for(done, 30, "every outbox item delivered")


async def test_intake_down_for_a_while_breaker_opens_then_half_opens(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox
) -> None:
    intake.stop()  # connections refused from now on
    service = CaseService(make_settings(tmp_path, intake.url, **PATIENT), gateway_outbox)
    await service.start()
    await make_cases(service)
    runner = asyncio.create_task(service.run())
    breaker = service.forwarder.breaker

    async def opened_and_probed() -> bool:
        return breaker.stats.opened >= 2 and breaker.stats.half_opened >= 1

    await wait_for(opened_and_probed, 30, "the breaker to open, half-open and open again")
    assert service.forwarder.stats.delivered == 0
    intake.start()
    await deliver_all(service, intake)
    await settle(gateway_outbox)
    assert breaker.state == BreakerState.CLOSED and breaker.stats.closed >= 1
    figures = await intake.stats()
    assert figures["received"] == N and figures["duplicates_refused"] == 0
    service.stop()
    await runner
    await service.close()


@pytest.mark.parametrize(
    ("chaos", "calm_after"),
    [
        ({"error_rate": 0.5, "error_after_commit": False}, False),
        ({"error_rate": 0.6, "error_after_commit": True}, False),
        ({"timeout": True}, True),
        ({"latency_ms": 300}, False),
        ({"error_rate": 1.0, "error_status": 429}, True),
    ],
    ids=["500-before-commit", "500-after-commit", "timeout", "slow", "429"],
)
async def test_every_case_arrives_once_despite(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox, chaos: dict[str, Any], calm_after: bool
) -> None:
    await intake.control(**chaos)
    bounds = {} if chaos.get("timeout") else PATIENT  # only the hanging intake needs the gateway to give up
    service = CaseService(make_settings(tmp_path, intake.url, breaker_failures=50, **bounds), gateway_outbox)
    await service.start()
    cases = await make_cases(service)
    runner = asyncio.create_task(service.run())
    if calm_after:

        async def failing() -> bool:
            return service.forwarder.stats.transient_failures >= 3

        await wait_for(failing, 30, "transient failures")
        assert (await intake.stats())["received"] == 0
        await intake.control()  # behave again
    await deliver_all(service, intake)
    await settle(gateway_outbox)
    figures = await intake.stats()
    assert figures["received"] == N
    if chaos.get("error_after_commit"):
        # the intake stored the case and answered 500: the retry met the idempotency key (409, same receipt)
        assert figures["duplicates_refused"] >= 1
        assert 1 <= service.forwarder.stats.duplicates <= figures["duplicates_refused"]
    service.stop()
    await runner
    for case in cases:
        stored = await service.store.get_case(case.code)
        assert stored.status not in (CaseStatus.NEW, CaseStatus.QUEUED, CaseStatus.DEAD)
    await service.close()


async def test_refused_body_is_dead_with_the_reason(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("fields:\n  caseNo: code\n  title: title_zh\n  grade: grade|upper\n", encoding="utf-8")
    settings = make_settings(tmp_path, intake.url, **PATIENT)
    settings.tables.intake_mapping = mapping
    service = CaseService(settings, gateway_outbox)
    await service.start()
    [case] = await make_cases(service, 1)
    runner = asyncio.create_task(service.run())

    async def dead() -> bool:
        return (await gateway_outbox.counts())[OutboxStatus.DEAD] == 1

    await wait_for(dead, 30, "the refused item to go dead")
    item = await gateway_outbox.get(case.code)
    assert item.attempts == 1 and "HTTP 422" in item.last_error
    assert (await service.store.get_case(case.code)).status == CaseStatus.DEAD
    service.stop()
    await runner
    await service.close()


def test_breaker_state_machine() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == BreakerState.CLOSED
    breaker.failure()
    assert breaker.state == BreakerState.OPEN and not breaker.allow()
    assert breaker.wait_s() == 10
    now[0] = 10.0
    assert breaker.allow() and breaker.state == BreakerState.HALF_OPEN
    assert not breaker.allow()  # one probe at a time
    breaker.failure()
    assert breaker.state == BreakerState.OPEN and breaker.stats.opened == 2
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == BreakerState.CLOSED
    assert (breaker.stats.half_opened, breaker.stats.closed, breaker.stats.refused) == (2, 1, 2)
