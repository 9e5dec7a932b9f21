"""``POST /api/cases/{code}/retry`` over real HTTP, in both deployments (SQLite; a real redis-server),
with the reference intake as a real process (down until a test starts it: connections refused).

A dead case is sent again once the intake is back; a case that is not dead, an unknown code, and a
case that went dead on a code collision (another node with the same node tag put ITS case into the
shared outbox under the same code) are refused, and the other node's item is left exactly as it was;
only operators may retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import RunningGateway, add_user, deployment, dev_settings, serving
from tests.events.conftest import SECRET, IntakeProcess, anomaly, camera, make_settings, wait_for
from xueliang.events.codes import format_code
from xueliang.events.models import CaseStatus
from xueliang.events.service import CaseService
from xueliang.events.settings import CodeSettings
from xueliang.gateway.models import CameraRecord, Location, Role

pytestmark = pytest.mark.timeout(90)

# ``anomaly()`` observes at 2025-03-01 10:00 Asia/Shanghai; ``camera()`` is in district 511902.
FIRST_CODE = format_code("511902", "20250301", "T01", 1)
SECOND_CODE = format_code("511902", "20250301", "T01", 2)
COLLISION = "案件编号冲突"


@pytest.fixture(params=["embedded", "scaleout"])
def overrides(request: pytest.FixtureRequest) -> dict[str, dict[str, object]]:
    """The deployment's settings overrides (node tag ``T01``) for ``case_gateway``."""
    return deployment(request)


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[IntakeProcess]:
    """The reference intake on a port of its own, NOT started: the gateway's connections are refused
    until the test calls ``start()``."""
    process = IntakeProcess(tmp_path / "intake.sqlite3")
    yield process
    process.stop()


@asynccontextmanager
async def case_gateway(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess, *, max_attempts: int
) -> AsyncIterator[RunningGateway]:
    """A gateway delivering to ``intake`` that gives an item up (dead) after ``max_attempts``.

    The intake is down (connections refused at once) or answers: the request bound is one no loaded
    CI machine overshoots. With 1.5 s, the first answer of an intake just started could come too late
    and, with ``max_attempts=1``, the retried case went dead again."""
    forwarder = {
        "intake_url": intake.url, "secret": SECRET, "connect_timeout_s": 2.0, "request_timeout_s": 10.0,
        "lease_s": 30.0, "backoff_base_s": 0.05, "backoff_cap_s": 0.2, "breaker_failures": 50,
        "breaker_reset_s": 0.2, "poll_interval_s": 0.05, "max_attempts": max_attempts,
    }  # fmt: skip
    events = {**overrides["events"], "forwarder": forwarder}
    async with serving(dev_settings(tmp_path / "gateway", **{**overrides, "events": events})) as gw:
        cases = gw.node.cases
        assert cases is not None, "the case side does not run on this node"
        await wait_for(lambda: _true(cases.role.leading), 30, "the node to lead the case side")
        yield gw


@asynccontextmanager
async def as_operator(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess, *, max_attempts: int
) -> AsyncIterator[tuple[RunningGateway, httpx.AsyncClient]]:
    """``case_gateway`` and a client logged in as an operator."""
    async with (
        case_gateway(tmp_path, overrides, intake, max_attempts=max_attempts) as gw,
        gw.client(await add_user(gw, "op-retry", Role.OPERATOR)) as client,
    ):
        yield gw, client


async def _true(value: bool) -> bool:
    return value


async def case_status(client: httpx.AsyncClient, code: str) -> str:
    response = await client.get(f"/api/cases/{code}")
    return str(response.json()["status"]) if response.status_code == 200 else f"HTTP {response.status_code}"


async def reaches(client: httpx.AsyncClient, code: str, status: CaseStatus) -> None:
    seen = [""]

    async def there() -> bool:
        seen[0] = await case_status(client, code)
        return seen[0] == status

    try:
        await wait_for(there, 30, f"case {code} to be {status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it stayed {seen[0]}") from None


async def raise_case(gw: RunningGateway, cam: int) -> None:
    """Camera ``cam`` registered, then one loitering observation of 400 s on it: a blue case, through
    the gateway's bus."""
    assert gw.node.cases is not None
    context = camera(cam)
    location = Location(**context.model_dump(include=set(Location.model_fields)))
    record = CameraRecord(id=context.id, name=context.name, host=f"127.9.0.{cam}", location=location)
    await gw.node.stores.cameras.upsert(record.model_copy(update={"category": context.place}))
    await gw.node.cases.publish(anomaly(cam, "loitering", 0, 400))


async def received(intake: IntakeProcess) -> int:
    return int((await intake.stats())["received"])


async def test_a_case_dead_while_the_intake_was_down_is_delivered_once_retried(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess
) -> None:
    async with as_operator(tmp_path, overrides, intake, max_attempts=1) as (gw, client):
        await raise_case(gw, 1)
        await reaches(client, FIRST_CODE, CaseStatus.DEAD)  # refused connection, attempts used up

        await asyncio.to_thread(intake.start)  # the cause fixed
        response = await client.post(f"/api/cases/{FIRST_CODE}/retry")
        assert response.status_code == 200, response.text
        assert response.json() == {"code": FIRST_CODE, "outbox": "pending"}
        await reaches(client, FIRST_CODE, CaseStatus.RECEIVED)
        assert await received(intake) == 1

        again = await client.post(f"/api/cases/{FIRST_CODE}/retry")  # delivered: never sent twice
        assert again.status_code == 409, again.text
        assert f"case {FIRST_CODE} is not dead" in again.json()["detail"]
        assert str((await gw.node.stores.outbox.get(FIRST_CODE)).status) == "delivered"
    assert await received(intake) == 1


async def test_retry_of_a_case_still_being_tried_is_refused_as_not_dead(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess
) -> None:
    async with as_operator(tmp_path, overrides, intake, max_attempts=1000) as (gw, client):
        await raise_case(gw, 1)
        await reaches(client, FIRST_CODE, CaseStatus.QUEUED)  # the intake is down: tried again and again
        response = await client.post(f"/api/cases/{FIRST_CODE}/retry")
        assert response.status_code == 409, response.text
        assert f"case {FIRST_CODE} is not dead" in response.json()["detail"]
        assert str((await gw.node.stores.outbox.get(FIRST_CODE)).status) in ("pending", "sending")


async def test_retry_of_an_unknown_case_is_404(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess
) -> None:
    async with as_operator(tmp_path, overrides, intake, max_attempts=1) as (gw, client):
        response = await client.post(f"/api/cases/{FIRST_CODE}/retry")
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == f"no case {FIRST_CODE}"
        assert sum((await gw.node.stores.outbox.counts()).values()) == 0  # nothing queued by the refusal


async def test_retry_of_a_case_dead_on_a_code_collision_is_refused_and_the_other_case_is_untouched(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess
) -> None:
    async with as_operator(tmp_path, overrides, intake, max_attempts=1) as (gw, client):
        outbox = gw.node.stores.outbox
        # Another node left with the same node tag, on the shared outbox, draws sequence 1 first.
        settings = make_settings(tmp_path / "node-b").model_copy(update={"codes": CodeSettings(node_tag="T01")})
        other_node = CaseService(settings, outbox)
        await other_node.start()
        try:
            [theirs] = await other_node.handle(anomaly(2, "loitering", 0, 400), camera(2))
        finally:
            await other_node.close()
        assert theirs.code == FIRST_CODE

        async def theirs_dead() -> bool:  # this gateway's forwarder tried it; the intake is down
            return str((await outbox.get(FIRST_CODE)).status) == "dead"

        await wait_for(theirs_dead, 30, f"the other node's {FIRST_CODE} to go dead")

        await raise_case(gw, 1)  # this node draws sequence 1 too: the same code, another incident
        await reaches(client, FIRST_CODE, CaseStatus.DEAD)
        mine = (await client.get(f"/api/cases/{FIRST_CODE}")).json()
        assert mine["incident_id"] != theirs.incident_id and COLLISION in mine["history"][-1]["note"]
        before = await outbox.get(FIRST_CODE)
        assert before.payload["case"]["incident_id"] == theirs.incident_id

        response = await client.post(f"/api/cases/{FIRST_CODE}/retry")
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert detail.startswith(COLLISION), detail  # Chinese first, then English
        assert theirs.incident_id in detail and "cam-002" in detail
        assert "cannot be re-sent under this code" in detail
        assert "set a unique events.codes.node_tag per node" in detail
        assert await outbox.get(FIRST_CODE) == before  # not re-queued: same status, attempts, next try

        # With the intake back, the forwarder delivers what is due: the next case, not theirs.
        await asyncio.to_thread(intake.start)
        await raise_case(gw, 3)
        await reaches(client, SECOND_CODE, CaseStatus.RECEIVED)
        assert await received(intake) == 1
        assert await outbox.get(FIRST_CODE) == before
        assert await case_status(client, FIRST_CODE) == CaseStatus.DEAD


async def test_only_operators_may_retry(
    tmp_path: Path, overrides: dict[str, dict[str, object]], intake: IntakeProcess
) -> None:
    async with as_operator(tmp_path, overrides, intake, max_attempts=1) as (gw, operator):
        technician = await add_user(gw, "tech-retry", Role.TECHNICIAN)
        await raise_case(gw, 1)
        await reaches(operator, FIRST_CODE, CaseStatus.DEAD)
        before = await gw.node.stores.outbox.get(FIRST_CODE)
        refused: dict[str, int] = {}
        for name, token in (("no token", None), ("technician", technician), ("bad token", "not-a-token")):
            async with gw.client(token) as client:
                refused[name] = (await client.post(f"/api/cases/{FIRST_CODE}/retry")).status_code
        assert refused == {"no token": 401, "technician": 403, "bad token": 401}
        assert await gw.node.stores.outbox.get(FIRST_CODE) == before  # nothing re-queued
        allowed = await operator.post(f"/api/cases/{FIRST_CODE}/retry")  # the same case, by an operator
        assert allowed.status_code == 200, allowed.text
