"""An incident first graded to no case becomes one when it grows (or its time enters a graded window),
once, whatever the timing; and a restart forgets neither that nor an incident in its hold-down window.

Each test runs the real service on a real event store file and the gateway's SQLite outbox; a
restart is a second ``CaseService`` on the same files after the first one closed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from xueliang.events.errors import EventStoreError, InvalidTransition
from xueliang.events.models import Case, CaseStatus, Grade, IncidentState
from xueliang.events.service import CaseService
from xueliang.events.settings import EventsSettings, TableSettings
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import BASE, EVIDENCE, anomaly, camera, make_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"
NIGHT_S = 12 * 3600  # BASE is 10:00 in Asia/Shanghai; the night window starts at 22:00


async def _started(settings: EventsSettings, outbox: SqliteOutbox) -> CaseService:
    service = CaseService(settings, outbox)
    await service.start()
    return service


async def _all_cases(service: CaseService) -> list[Case]:
    return await service.store.cases(list(CaseStatus), newest_first=False)


async def test_grading_again_only_on_a_new_peak_and_one_case(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    """A crowd of 8 (no grade) stays an incident while it stays 8 (no re-grading per frame), is graded
    again at 9 (still none), becomes a blue case at 12, and stays that one case at 150."""
    service = await _started(make_settings(tmp_path), gateway_outbox)
    cases = [c for t in range(0, 60, 3) for c in await service.handle(anomaly(1, "crowd", t, 8), camera(1))]
    assert cases == [] and service.aggregator.stats.reviews == 0
    cases += [c for t in (60, 63, 66) for c in await service.handle(anomaly(1, "crowd", t, 9), camera(1))]
    assert cases == [] and service.aggregator.stats.reviews == 1
    cases += await service.handle(anomaly(1, "crowd", 70, 12, evidence=EVIDENCE), camera(1))
    [incident] = service.aggregator.live()
    assert [(c.grade, c.incident_id, c.value) for c in cases] == [(Grade.BLUE, incident.id, 12)]
    assert cases[0].evidence is not None  # the frame that made it a case
    assert cases[0].due_at == BASE + timedelta(seconds=70, hours=120)  # from when it earned the grade
    assert incident.case_code == cases[0].code and incident.grade == Grade.BLUE
    for t in (75, 80):
        assert await service.handle(anomaly(1, "crowd", t, 150), camera(1)) == []
    assert service.aggregator.stats.reviews == 2
    assert (await gateway_outbox.get(cases[0].code)).payload["case"]["incident_id"] == incident.id
    assert len(await _all_cases(service)) == 1
    await service.close()


async def test_incident_entering_a_graded_time_window_becomes_a_case(
    tmp_path: Path, gateway_outbox: SqliteOutbox
) -> None:
    """With intrusion graded at night only, an intrusion first seen at 21:58 gets no case, then an
    orange one on its first frame from 22:00 (the window edge), due 24 h from that frame."""
    table = tmp_path / "grading.yaml"
    day_row = "  - {rule: intrusion, value_min: 1, grade: blue}\n"
    text = (CONFIG / "grading.yaml").read_text("utf-8")
    assert day_row in text
    table.write_text(text.replace(day_row, ""), "utf-8")
    settings = make_settings(tmp_path).model_copy(update={"tables": TableSettings(grading=table)})
    service = await _started(settings, gateway_outbox)
    times = [NIGHT_S - 120 + 20 * i for i in range(9)]  # 21:58:00 .. 22:00:40 local, every 20 s
    out = [(t, await service.handle(anomaly(1, "intrusion", t, 1), camera(1))) for t in times]
    made = [(t, c) for t, cases in out for c in cases]
    assert [t for t, _ in made] == [NIGHT_S]
    case = made[0][1]
    assert case.grade == Grade.ORANGE and case.due_at == BASE + timedelta(seconds=NIGHT_S, hours=24)
    assert service.aggregator.stats.reviews == 1  # one window edge crossed, one re-grading
    await service.close()


async def test_concurrent_updates_make_one_case(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    """Two growing frames and an operator's escalation at once: the first opens the case, the others
    find it being opened (the second frame is not graded again; the escalation is refused)."""
    service = await _started(make_settings(tmp_path), gateway_outbox)
    for t in (0, 5, 10):
        assert await service.handle(anomaly(1, "crowd", t, 8), camera(1)) == []
    [incident] = service.aggregator.live()
    results = await asyncio.gather(
        service.handle(anomaly(1, "crowd", 15, 150, evidence=EVIDENCE), camera(1)),
        service.handle(anomaly(1, "crowd", 16, 160), camera(1)),
        service.escalate(incident.id, "张三", grade=Grade.BLUE),
        return_exceptions=True,
    )
    assert isinstance(results[2], InvalidTransition) and "being opened" in str(results[2])
    assert [[c.grade for c in r] for r in results[:2] if isinstance(r, list)] == [[Grade.RED], []]
    assert [c.incident_id for c in await _all_cases(service)] == [incident.id]
    assert incident.state == IncidentState.OPEN  # the refused escalation changed nothing
    await service.close()


async def test_restart_keeps_grading_an_incident_without_a_case(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    """After a restart the crowd of 8 is the same incident; at 150 it becomes a case; a crowd that
    had its case before the restart gets no second one."""
    first = await _started(make_settings(tmp_path), gateway_outbox)
    for t in (0, 5, 10):
        await first.handle(anomaly(1, "crowd", t, 8), camera(1))
        await first.handle(anomaly(2, "crowd", t, 40), camera(2))
    [quiet] = [i for i in first.aggregator.live() if i.camera_id == "cam-001"]
    [orange] = await _all_cases(first)
    await first.close()

    second = await _started(make_settings(tmp_path), gateway_outbox)
    assert await second.handle(anomaly(1, "crowd", 15, 8), camera(1)) == []  # graded again: still nothing
    [case] = await second.handle(anomaly(1, "crowd", 20, 150), camera(1))
    assert (case.incident_id, case.grade) == (quiet.id, Grade.RED)
    assert await second.handle(anomaly(2, "crowd", 15, 150), camera(2)) == []
    assert sorted(c.code for c in await _all_cases(second)) == sorted([orange.code, case.code])
    await second.close()


@pytest.mark.parametrize("acknowledged", [False, True])
async def test_flapping_across_a_restart_reopens_the_same_incident(
    tmp_path: Path, gateway_outbox: SqliteOutbox, acknowledged: bool
) -> None:
    """Failed before: the store gave back no closed incident, so after a restart a sighting within
    the hold-down window opened a new incident and a second case. Now it re-opens the same one in the
    state it had; past the window, a new incident (and case) as before."""
    first = await _started(make_settings(tmp_path), gateway_outbox)
    [case] = [c for t in (0, 5, 10) for c in await first.handle(anomaly(1, "intrusion", t, 1), camera(1))]
    [incident] = first.aggregator.live()
    if acknowledged:
        await first.acknowledge(incident.id, "张三")
    assert await first.sweep(BASE + timedelta(seconds=80)) == 1  # quiet 60 s: closed at 70 s
    await first.close()

    second = await _started(make_settings(tmp_path), gateway_outbox)
    for t in (200, 205):  # 130 s after closing: within the 300 s hold-down
        assert await second.handle(anomaly(1, "intrusion", t, 1), camera(1)) == []
    [back] = second.aggregator.live()
    assert (back.id, back.case_code, back.reopened) == (incident.id, case.code, 1)
    assert back.state == (IncidentState.ACKNOWLEDGED if acknowledged else IncidentState.OPEN)
    assert [c.code for c in await _all_cases(second)] == [case.code]
    assert await second.sweep(BASE + timedelta(seconds=270)) == 1  # closed again at 265 s
    await second.close()

    third = await _started(make_settings(tmp_path), gateway_outbox)
    later = [c for t in (600, 605) for c in await third.handle(anomaly(1, "intrusion", t, 1), camera(1))]
    assert [c.incident_id != incident.id for c in later] == [True]  # 335 s after closing: a new one
    await third.close()


async def test_store_returns_closed_incidents_only_near_the_newest_observation(
    tmp_path: Path, gateway_outbox: SqliteOutbox
) -> None:
    """The restart does not load every incident ever closed: one closed days before the newest
    observation stays on disk."""
    service = await _started(make_settings(tmp_path), gateway_outbox)
    for t in (0, 5):
        await service.handle(anomaly(2, "intrusion", t - 3 * 86400, 1), camera(2))
    await service.sweep(BASE - timedelta(days=2))
    for t in (0, 5):
        await service.handle(anomaly(1, "intrusion", t, 1), camera(1))
    await service.sweep(BASE + timedelta(seconds=100))
    await service.store.flush()
    restored = await service.store.live_incidents(closed_within_s=360)
    assert [(i.camera_id, i.state) for i in restored] == [("cam-001", IncidentState.CLOSED)]
    assert await service.store.live_incidents() == []  # without a window: live ones only, as before
    await service.close()


async def test_a_case_the_store_could_not_write_leaves_the_incident_without_one(
    tmp_path: Path, gateway_outbox: SqliteOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write fails once (a full disk): the incident must not point at a case that was never
    stored, or it would never get one; the next new peak opens it."""
    service = await _started(make_settings(tmp_path), gateway_outbox)
    real = service.store.create_case
    calls = 0

    async def failing_once(case: Case, incident: object) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise EventStoreError("disk full (test)")
        return await real(case, incident)  # type: ignore[arg-type]

    monkeypatch.setattr(service.store, "create_case", failing_once)
    for t in range(0, 20, 3):
        await service.handle(anomaly(1, "crowd", t, 8), camera(1))
    with pytest.raises(EventStoreError):
        await service.handle(anomaly(1, "crowd", 21, 12), camera(1))
    [incident] = service.aggregator.live()
    assert not incident.case_code
    cases = await service.handle(anomaly(1, "crowd", 24, 13), camera(1))
    assert [c.incident_id for c in cases] == [incident.id] and incident.case_code == cases[0].code
    await service.close()
