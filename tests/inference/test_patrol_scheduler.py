"""Patrol scheduler with a fake clock and the gateway's real in-process bounded job queue."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from tests.inference.logic_fixtures import TZ, FakeClock
from xueliang.gateway.stores.sqlite.jobs import LocalJobQueue
from xueliang.inference.patrol.models import Credentials, PatrolJob, PatrolTarget
from xueliang.inference.patrol.policy import next_slot, phase_of
from xueliang.inference.patrol.scheduler import PatrolScheduler, SchedulerState, TargetsUnavailable
from xueliang.inference.patrol.settings import SchedulerSettings

INTERVALS = SchedulerSettings().priority_intervals_s  # 1: 60 s, 2: 180, 3: 300, 4: 600, 5: 900
MONDAY_1000 = datetime(2024, 5, 6, 10, 0, tzinfo=TZ).timestamp()


class Targets:
    """The gateway's camera list as the scheduler reads it; can be made to fail."""

    def __init__(self, targets: Sequence[PatrolTarget]) -> None:
        self.targets = list(targets)
        self.fail = False

    async def __call__(self) -> list[PatrolTarget]:
        if self.fail:
            raise TargetsUnavailable("registry unavailable (test)")
        return list(self.targets)


def cams(n: int, *, priority: int = 3, category: str = "", prefix: str = "cam") -> list[PatrolTarget]:
    return [
        PatrolTarget(
            camera_id=f"{prefix}-{i:05d}",
            priority=priority,
            category=category,
            snapshot_url=f"http://10.0.0.{i % 250}/snap",
        )
        for i in range(n)
    ]


def slots(camera_id: str, interval: float, first: float, last: float) -> int:
    """Grid slots of a camera within [first, last]: the visits a once-a-second tick makes."""
    count, at = 0, next_slot(phase_of(camera_id), interval, first, inclusive=True)
    while at <= last:
        count, at = count + 1, at + interval
    return count


class Harness:
    def __init__(
        self,
        targets: Sequence[PatrolTarget],
        *,
        start: float = MONDAY_1000,
        capacity: int = 100_000,
        **settings: object,
    ) -> None:
        self.clock = FakeClock(start)
        self.queue = LocalJobQueue(capacity=capacity, visibility_s=3600)
        self.targets = Targets(targets)
        self.scheduler = PatrolScheduler(
            self.queue, self.targets, SchedulerSettings.model_validate(settings), clock=self.clock
        )
        self.visits: list[tuple[float, str, dict[str, Any]]] = []

    async def run(self, seconds: int, *, consume: bool = True) -> None:
        """Tick once a second for ``seconds``; a consumer drains the queue after each tick."""
        for _ in range(seconds):
            await self.scheduler.tick()
            if consume:
                await self.drain()
            self.clock.t += 1.0

    async def drain(self) -> None:
        while (job := await self.queue.take("test", 0)) is not None:
            self.visits.append((self.clock.t, job.key, job.payload))
            await self.queue.ack(job)

    def by_camera(self) -> dict[str, list[float]]:
        times: dict[str, list[float]] = defaultdict(list)
        for at, key, _ in self.visits:
            times[key].append(at)
        return times


async def test_every_camera_is_visited_at_its_priority_interval() -> None:
    targets = [t for p in range(1, 6) for t in cams(40, priority=p, prefix=f"p{p}")]
    h = Harness(targets)
    await h.run(3600)
    times = h.by_camera()
    assert set(times) == {t.camera_id for t in targets}
    for target in targets:
        visits = times[target.camera_id]
        gaps = {round(b - a, 6) for a, b in itertools.pairwise(visits)}
        interval = INTERVALS[target.priority]
        assert gaps == {interval}, (target.camera_id, gaps)
        assert len(visits) == slots(target.camera_id, interval, MONDAY_1000, MONDAY_1000 + 3599)
        assert visits[0] - MONDAY_1000 <= interval  # the first visit within one interval of joining
    stats = h.scheduler.stats()
    assert stats.enqueued == len(h.visits) and stats.refused == 0 and stats.lag_s == 0.0


async def test_key_places_are_visited_more_often() -> None:
    h = Harness(cams(10, priority=1, prefix="key") + cams(10, priority=5, prefix="road"))
    await h.run(1800)
    count = Counter(key.split("-")[0] for _, key, _ in h.visits)
    assert count["key"] == 10 * 30 and count["road"] == 10 * 2


async def test_phases_are_spread_over_the_interval() -> None:
    """600 cameras every 300 s: about 2 a second. No second gets more than 2 % of them, none at
    the minute boundaries in particular; cameras that join later do not bunch either."""
    h = Harness(cams(600))
    await h.run(301)  # ticks at 0 .. 300 s: every slot of one 300 s interval is taken
    per_second = Counter(round(at) for at, _, _ in h.visits)
    assert sum(per_second.values()) == 600
    assert max(per_second.values()) <= 12
    assert max(per_second[round(MONDAY_1000) + m * 60] for m in range(5)) <= 12
    assert len(per_second) > 200  # most seconds carry some of the load
    h.targets.targets += cams(300, prefix="late")
    h.visits.clear()
    h.scheduler.set_targets(h.targets.targets)
    await h.run(301)
    late = Counter(round(at) for at, key, _ in h.visits if key.startswith("late"))
    assert sum(late.values()) == 300 and max(late.values()) <= 8


async def test_school_windows_tighten_the_interval_in_local_time() -> None:
    """Schools are visited every minute from 07:00 to 08:30 on weekdays, at their priority's
    interval otherwise; the window opening does not bring them all at once."""
    start = datetime(2024, 5, 6, 6, 40, tzinfo=TZ).timestamp()  # Monday 06:40 local
    schools = cams(50, priority=4, category="school", prefix="school")
    h = Harness(schools, start=start)
    await h.run(2 * 3600)
    opens = datetime(2024, 5, 6, 7, 0, tzinfo=TZ).timestamp()
    closes = datetime(2024, 5, 6, 8, 30, tzinfo=TZ).timestamp()
    for visits in h.by_camera().values():
        inside = [t for t in visits if opens <= t < closes]
        gaps = {round(b - a) for a, b in itertools.pairwise(inside)}
        assert gaps == {60}
        after = [t for t in visits if t >= closes]
        assert {round(b - a) for a, b in itertools.pairwise(after)} <= {600}
        assert len([t for t in visits if t < opens]) <= 2  # every 600 s before the window
    first_minute = Counter(round(at) for at, _, _ in h.visits if opens <= at <= opens + 60)
    assert sum(first_minute.values()) == 50 and max(first_minute.values()) <= 4


async def test_the_floor_caps_long_intervals() -> None:
    slow = PatrolTarget(camera_id="slow", interval_s=7200.0)
    h = Harness([slow], floor_s=600.0)
    await h.run(1800)
    visits = h.by_camera()["slow"]
    assert {round(b - a) for a, b in itertools.pairwise(visits)} == {600}


async def test_a_full_queue_counts_refusals_reports_lag_and_loses_nothing() -> None:
    targets = cams(100, priority=1)  # every 60 s
    h = Harness(targets, capacity=20)
    await h.run(90, consume=False)  # nobody takes jobs for a minute and a half
    stats = h.scheduler.stats()
    assert stats.enqueued == 20
    # 80 never queued, and the 20 queued ones came due again while the queue was full
    assert stats.refused > 0 and stats.pending == 100
    assert stats.lag_s > 30.0  # the oldest refused visit has waited that long
    assert stats.merged_slots > 0  # slots that came while a visit was pending are merged into it
    # workers come back: one job a tick is taken, then everything
    await h.drain()
    await h.run(10)
    stats = h.scheduler.stats()
    assert stats.pending == 0 and stats.lag_s == 0.0
    assert {key for _, key, _ in h.visits} == {t.camera_id for t in targets}
    # each refused visit went out once, with the due time it had
    first_payloads: dict[str, dict[str, Any]] = {}
    for _, key, payload in h.visits:
        first_payloads.setdefault(key, payload)
    assert all(p["due_at"] < MONDAY_1000 + 60 for p in first_payloads.values())


async def test_a_waiting_job_covers_the_next_slot_and_is_not_duplicated() -> None:
    h = Harness(cams(1, priority=1))
    await h.run(200, consume=False)
    stats = h.scheduler.stats()
    due = slots("cam-00000", 60.0, MONDAY_1000, MONDAY_1000 + 199)
    assert due >= 3
    assert stats.enqueued == 1 and stats.coalesced == due - 1 and stats.refused == 0
    assert (await h.queue.stats()).depth == 1


async def test_the_camera_list_is_followed_and_kept_when_unreadable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="xueliang.inference.patrol.scheduler")
    targets = cams(5, priority=1)
    h = Harness(targets, refresh_s=10.0)
    await h.run(60)
    assert len(h.by_camera()) == 5
    h.targets.targets = [
        targets[0],
        targets[1].model_copy(update={"enabled": False}),
        targets[2].model_copy(update={"watch": True}),  # watched cameras get a stream instead
        PatrolTarget(camera_id="new-1", priority=1),
    ]
    h.visits.clear()
    await h.run(120)
    assert set(h.by_camera()) == {targets[0].camera_id, "new-1"}
    h.targets.fail = True
    h.visits.clear()
    await h.run(120)
    assert set(h.by_camera()) == {targets[0].camera_id, "new-1"}  # still patrolled
    assert h.scheduler.stats().refresh_errors >= 10
    warned = [r for r in caplog.records if "camera list unavailable" in r.getMessage()]
    assert [r.levelname for r in warned].count("WARNING") == 1  # one warning per outage, not per reading
    h.targets.fail = False
    await h.run(20)
    assert "the camera list can be read again" in caplog.text


async def test_jobs_carry_what_the_worker_needs() -> None:
    target = PatrolTarget(
        camera_id="gate-1",
        priority=2,
        category="school",
        snapshot_url="http://10.1.1.1/onvif/snapshot",
        stream_url="rtsp://10.1.1.1/sub",
        credentials=Credentials(username="admin", password="s3cret"),
        profile="sub",
        classes=("person",),
        min_score=0.5,
    )
    h = Harness([target])
    await h.run(200)
    _, key, payload = h.visits[0]
    job = PatrolJob.model_validate(payload)
    assert key == "gate-1" and job.interval_s == 180.0 and job.priority == 2
    assert job.credentials.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(job)  # hidden from logs
    assert job.classes == ("person",) and job.snapshot_url.endswith("/snapshot")


async def test_run_and_stop_follow_the_state_machine() -> None:
    h = Harness(cams(3, priority=1), tick_s=0.01)
    scheduler = h.scheduler
    assert scheduler.state is SchedulerState.CREATED
    task = asyncio.create_task(scheduler.run())
    while scheduler.stats().ticks < 3:
        await asyncio.sleep(0.01)
    assert scheduler.state is SchedulerState.RUNNING
    scheduler.stop()
    await task
    assert scheduler.state is SchedulerState.STOPPED
    with pytest.raises(RuntimeError, match="cannot run from state stopped"):
        await scheduler.run()
