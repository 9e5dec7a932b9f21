"""CaseService: operator actions, and recovery of a case committed before its outbox item (nothing lost)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from xueliang.events.errors import IncidentNotFound, InvalidTransition
from xueliang.events.models import CaseStatus, Grade, IncidentState
from xueliang.events.service import CaseService
from xueliang.gateway.stores.base import OutboxStatus
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import anomaly, camera, make_settings


class CrashingOutbox:
    """The real outbox, except that ``add`` dies as a crash between the two commits would."""

    def __init__(self, real: SqliteOutbox) -> None:
        self.real = real

    async def add(self, key: str, payload: dict[str, Any]) -> bool:
        raise RuntimeError("process died here")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_case_committed_before_a_crash_is_enqueued_at_start(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    first = CaseService(make_settings(tmp_path), CrashingOutbox(gateway_outbox))
    await first.start()
    with pytest.raises(RuntimeError, match="process died here"):
        for at in (0, 5, 10):
            await first.handle(anomaly(1, "crowd", at, 40), camera(1))
    [case] = await first.store.cases([CaseStatus.NEW], newest_first=False)
    await first.close()
    assert (await gateway_outbox.counts())[OutboxStatus.PENDING] == 0

    second = CaseService(make_settings(tmp_path), gateway_outbox)
    await second.start()
    item = await gateway_outbox.get(case.code)
    assert item.status == OutboxStatus.PENDING and item.payload["body"]["caseNo"] == case.code
    assert (await second.store.get_case(case.code)).status == CaseStatus.QUEUED
    [incident] = second.aggregator.live()  # the incident came back from the store with its case
    assert incident.case_code == case.code
    await second.close()
    third = CaseService(make_settings(tmp_path), gateway_outbox)
    await third.start()  # nothing new to recover; the item is not added twice
    assert sum((await gateway_outbox.counts()).values()) == 1
    await third.close()


async def test_operator_acknowledge_dismiss_escalate(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    service = CaseService(make_settings(tmp_path), gateway_outbox)
    await service.start()
    # Loitering 100 s grades to nothing: an incident without a case.
    for at in (0, 1):
        assert await service.handle(anomaly(1, "loitering", at, 100, zone="gate"), camera(1)) == []
    [quiet] = service.aggregator.live()
    assert quiet.grade is None and not quiet.case_code
    acknowledged = await service.acknowledge(quiet.id, "张三")
    assert acknowledged.state == IncidentState.ACKNOWLEDGED and acknowledged.acknowledged_by == "张三"
    case = await service.escalate(quiet.id, "李四", grade=Grade.ORANGE)
    assert case.created_by == "李四" and case.grade == Grade.ORANGE and case.category_code == "0102"
    assert quiet.state == IncidentState.ESCALATED and quiet.case_code == case.code
    with pytest.raises(InvalidTransition, match="needs acknowledged or closed or open"):
        await service.escalate(quiet.id, "李四")
    assert (await gateway_outbox.get(case.code)).payload["body"]["grade"] == "orange"

    for at in (0, 1, 2):
        await service.handle(anomaly(2, "intrusion", at, 1), camera(2))
    other = next(i for i in service.aggregator.live() if i.camera_id == "cam-002")
    with pytest.raises(InvalidTransition, match="needs a reason"):
        await service.dismiss(other.id, "王五", "")
    dismissed = await service.dismiss(other.id, "王五", "误报")
    assert dismissed.state == IncidentState.DISMISSED
    with pytest.raises(IncidentNotFound):
        await service.acknowledge("no-such-incident", "王五")
    await service.close()


async def test_a_case_code_taken_by_another_nodes_case_goes_dead_not_silently_merged(
    tmp_path: Path, gateway_outbox: SqliteOutbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Two nodes left with the same node_tag share the gateway's outbox: both draw sequence 1.
    first = CaseService(make_settings(tmp_path / "node-a"), gateway_outbox)
    second = CaseService(make_settings(tmp_path / "node-b"), gateway_outbox)
    await first.start()
    await second.start()
    [mine] = [c for at in (0, 5, 10) for c in await first.handle(anomaly(1, "crowd", at, 40), camera(1))]
    with caplog.at_level(logging.ERROR, logger="xueliang.events.service"):
        [theirs] = [c for at in (0, 5, 10) for c in await second.handle(anomaly(2, "crowd", at, 40), camera(2))]
    assert theirs.code == mine.code and theirs.incident_id != mine.incident_id
    assert (await first.store.get_case(mine.code)).status == CaseStatus.QUEUED
    lost = await second.store.get_case(theirs.code)
    assert lost.status == CaseStatus.DEAD
    assert "set a unique events.codes.node_tag per node" in lost.history[-1].note
    assert mine.incident_id in lost.history[-1].note
    assert mine.incident_id in caplog.text and theirs.incident_id in caplog.text and "collision" in caplog.text
    item = await gateway_outbox.get(mine.code)
    assert item.payload["case"]["incident_id"] == mine.incident_id  # the first case is untouched
    await first.close()
    await second.close()
