"""Patrol scheduler across wall-clock steps (NTP step, manual set, resume) and cameras that leave
and come back, driven by a fake wall clock and a fake monotonic clock, with the gateway's real
in-process job queue."""

from __future__ import annotations

import itertools
from collections import Counter

from tests.inference.logic_fixtures import FakeClock
from tests.inference.test_patrol_scheduler import Harness, cams
from xueliang.inference.patrol.models import PatrolTarget
from xueliang.inference.patrol.policy import next_slot, phase_of
from xueliang.inference.patrol.scheduler import PatrolScheduler
from xueliang.inference.patrol.settings import SchedulerSettings

HOUR = 3600.0


class SteppingHarness(Harness):
    """``Harness`` plus a monotonic clock that never steps while the wall clock may."""

    def __init__(self, targets: list[PatrolTarget], *, capacity: int = 100_000, **settings: object) -> None:
        super().__init__(targets, capacity=capacity, **settings)
        self.mono = FakeClock(1000.0)
        self.scheduler = PatrolScheduler(
            self.queue, self.targets, SchedulerSettings.model_validate(settings), clock=self.clock, monotonic=self.mono
        )
        self.per_tick: list[int] = []
        self.mono_visits: list[tuple[float, str]] = []  # (monotonic time, camera id)

    async def run(self, seconds: int, *, consume: bool = True) -> None:
        for _ in range(seconds):
            self.per_tick.append(await self.scheduler.tick())
            if consume:
                before = len(self.visits)
                await self.drain()
                self.mono_visits += [(self.mono.t, key) for _, key, _ in self.visits[before:]]
            self.clock.t += 1.0
            self.mono.t += 1.0

    def step(self, seconds: float) -> None:
        self.clock.t += seconds

    def longest_gap(self) -> float:
        """The longest real (monotonic) time between two visits of one camera."""
        times: dict[str, list[float]] = {}
        for at, key in self.mono_visits:
            times.setdefault(key, []).append(at)
        return max(b - a for t in times.values() for a, b in itertools.pairwise(t))


async def test_a_step_back_of_an_hour_does_not_stall_visits_nor_the_camera_list() -> None:
    # old code: no camera visited for the hour the clock repeats, the list not re-read either
    h = SteppingHarness(cams(200, priority=1), refresh_s=30)
    await h.run(120)
    h.step(-HOUR)
    h.targets.targets += cams(1, priority=1, prefix="late")
    before = len(h.visits)
    await h.run(150)
    after = Counter(key for _, key, _ in h.visits[before:])
    assert len(after) == 201  # every camera, the one listed after the step too
    assert h.longest_gap() <= 61  # 60 s interval measured in real time, across the step
    stats = h.scheduler.stats()
    assert stats.clock_steps == 1 and stats.pending == 0 and stats.lag_s == 0.0


async def test_a_step_forward_does_not_make_the_whole_city_due_at_once() -> None:
    # old code: all 3000 cameras queued in the tick after the step (the city's herd), then on grid
    h = SteppingHarness(cams(3000, priority=3))  # 300 s: 10 a second on average
    await h.run(10)
    h.step(HOUR)
    await h.run(300)
    assert max(h.per_tick) < 40
    assert h.longest_gap() <= 301
    visits = Counter(key for _, key in h.mono_visits if _ >= 1010)
    assert set(visits.values()) == {1} and len(visits) == 3000  # each once in the 300 s after the step


async def test_lag_stays_sane_when_the_clock_steps_while_visits_wait() -> None:
    # old code: the lag of visits waiting for a full queue jumps by the step (3600 s)
    h = SteppingHarness(cams(50, priority=1), capacity=5)
    await h.run(70, consume=False)
    waiting = h.scheduler.stats()
    assert waiting.pending > 0 and 0 < waiting.lag_s < 70
    h.step(HOUR)
    await h.run(1, consume=False)
    assert h.scheduler.stats().lag_s == waiting.lag_s + 1
    h.step(-2 * HOUR)
    await h.run(1, consume=False)
    assert h.scheduler.stats().lag_s == waiting.lag_s + 2
    await h.run(120)  # the queue drains: nothing lost, every camera visited
    assert len({key for _, key, _ in h.visits}) == 50
    assert h.scheduler.stats().clock_steps == 2


async def test_small_differences_between_the_clocks_are_no_step() -> None:
    # pins: NTP slewing (a few ms a tick) moves nothing; a step is at least CLOCK_STEP_S
    h = SteppingHarness(cams(100, priority=1))
    for _ in range(120):
        await h.run(1)
        h.step(0.004)
    assert h.scheduler.stats().clock_steps == 0
    assert len({key for _, key in h.mono_visits}) == 100


async def test_a_camera_that_leaves_and_comes_back_less_often_keeps_its_new_slot() -> None:
    # old code: its heap item from before it left (versions restarted at 0 on re-adding) was taken
    # for the new one, and it was visited at its old, 60 s slot instead of its new 900 s one
    camera = "cam-returning"
    h = SteppingHarness([PatrolTarget(camera_id=camera, priority=1)], refresh_s=1)
    await h.run(1)
    first_due = h.scheduler.next_due(camera)
    assert first_due is not None
    h.targets.targets = cams(1, prefix="other")
    await h.run(1)  # re-read: it leaves
    h.targets.targets = [PatrolTarget(camera_id=camera, priority=5)]
    readded_at = h.clock.t
    await h.run(1)  # re-read: it is back, at 900 s
    new_slot = next_slot(phase_of(camera), 900.0, readded_at, inclusive=True)
    await h.run(int(first_due - h.clock.t) + 5)
    early = [at for at, key, _ in h.visits if key == camera and at < new_slot]
    assert first_due < new_slot and not early
