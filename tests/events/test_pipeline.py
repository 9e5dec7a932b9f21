"""10,000 anomalies from 50 cameras become the right small number of incidents and cases, delivered once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from xueliang.events.models import CaseStatus, Grade
from xueliang.events.service import CaseService
from xueliang.gateway.stores.base import OutboxStatus
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox
from xueliang.inference.anomaly import Anomaly

from .conftest import BASE, EVIDENCE, IntakeProcess, anomaly, camera, make_settings, wait_for


def burst() -> list[Anomaly]:
    """200 anomalies per camera, 50 cameras, crafted so the outcome is known exactly:

    - cams 0-9: crowd of 40 on a road, every 1 s: 1 incident each, orange -> 10 cases;
    - cams 10-19: intrusion, 100 at 1 s, a 120 s gap (> quiet 60, < quiet + hold-down 360), 100 more:
      the SAME incident re-opens -> 10 incidents, 10 reopened, 10 cases;
    - cams 20-29: loitering 100 s (below the 300 s row): 10 incidents, no case;
    - cams 30-39: parking 600 s, 100 at 1 s, a 2,000 s gap (> quiet 300 + hold-down 900), 100 more:
      2 incidents each -> 20 incidents, 20 cases;
    - cams 40-49: crowd of 40 seen once every 200 s (quiet 120 s, min 3 observations): candidates that
      never get raised -> 0 incidents.
    """
    items = []
    for cam in range(50):
        for i in range(200):
            if cam < 10:
                items.append(anomaly(cam, "crowd", i, 40, zone="square-a", evidence=EVIDENCE))
            elif cam < 20:
                items.append(anomaly(cam, "intrusion", i + (120 if i >= 100 else 0), 1, zone="gate", evidence=EVIDENCE))
            elif cam < 30:
                items.append(anomaly(cam, "loitering", i, 100))
            elif cam < 40:
                items.append(anomaly(cam, "parking", i + (2000 if i >= 100 else 0), 600, zone="fire-lane"))
            else:
                items.append(anomaly(cam, "crowd", i * 200, 40))
    items.sort(key=lambda a: a.observed_at)
    return items


async def test_burst_becomes_few_cases_each_delivered_once(
    tmp_path: Path, intake: IntakeProcess, gateway_outbox: SqliteOutbox
) -> None:
    service = CaseService(make_settings(tmp_path, intake.url), gateway_outbox)
    await service.start()
    anomalies = burst()
    assert len(anomalies) == 10_000
    cameras = {cam: camera(cam) for cam in range(50)}
    created = []
    for item in anomalies:
        created += await service.handle(item, cameras[int(item.camera_id[-3:])])
    await service.sweep(BASE.replace(year=2026))  # everything long quiet
    stats = service.aggregator.stats
    assert stats.observed == 10_000
    assert stats.raised == 50
    assert stats.reopened == 10
    assert stats.closed == 60  # 50 incidents closed once at the end + 10 parking first incidents
    assert stats.candidates_dropped == 10 * 200
    assert len(created) == 40
    assert {c.grade for c in created if c.rule == "crowd"} == {Grade.ORANGE}
    assert {c.grade for c in created if c.rule in ("intrusion", "parking")} == {Grade.BLUE}
    assert len({c.code for c in created}) == 40
    intrusion = [c for c in created if c.rule == "intrusion"]
    assert all(c.observations == 3 for c in intrusion)  # min 2 observations AND min 2 s: raised at t=2 s
    assert all(c.evidence is not None for c in created if c.rule in ("crowd", "intrusion"))

    runner = asyncio.create_task(service.run())

    async def all_received() -> bool:
        return (await intake.stats())["received"] == 40

    await wait_for(all_received, 60, "40 cases at the intake")
    service.stop()
    await runner
    figures = await intake.stats()
    assert figures["received"] == 40
    assert figures["bad_signatures"] == 0 and figures["invalid"] == 0
    counts = await gateway_outbox.counts()
    assert counts[OutboxStatus.DELIVERED] == 40
    for case in created:
        stored = await service.store.get_case(case.code)
        assert stored.status in (CaseStatus.SENT, CaseStatus.RECEIVED, CaseStatus.DISPATCHED, CaseStatus.HANDLING)
        assert [e.status for e in stored.history][:2] == [CaseStatus.NEW, CaseStatus.QUEUED]
    await service.close()
