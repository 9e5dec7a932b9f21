"""The patrol scheduler: visits every camera at the interval its policy asks, by queuing
``PatrolJob``s into the bounded job queue.

Each tick (``tick_s``) it takes the cameras whose slot has come (a heap ordered by due time;
see ``policy`` for intervals and phases) plus those left over from earlier ticks, oldest first,
and ``put``s one job each, keyed by camera id. The queue refuses when full and coalesces a key
already waiting (``JobQueue`` semantics); ``put`` only says False, so the scheduler reads the
queue's counters to tell the two apart:

- coalesced: a job for that camera is still waiting, the visit is covered; next slot as usual;
- refused (queue full): the job is kept *pending* with its original due time and retried first on
  the next tick; no more puts this tick (the queue is full). Nothing is lost; meanwhile ``lag_s``
  (now minus the oldest pending due time) says how far behind the schedule is. Slots that pass
  while a camera is pending are merged into its one pending visit (counted).

The camera list comes from an async callable (``targets``), read every ``refresh_s``; it raises
``TargetsUnavailable`` when it cannot read (the gateway wraps its store errors), and the
scheduler keeps the list it had. One scheduler per deployment (a Redis lease in scale-out).
The clock is injectable (``clock``): tests drive ``tick()`` with a fake one.

Due times are wall-clock epoch seconds (the phase grid and the local-time windows need them), but
the wall clock can step (an NTP step, a manual set, a resume from suspend). Each tick compares how
far the wall clock moved with how far the monotonic clock (``monotonic``) moved; a difference of
``CLOCK_STEP_S`` or more is a step, and every due time (pending ones and the refresh time too)
moves by it (counted in ``clock_steps``). Without this a step back of an hour would stall every
visit for that hour (and the camera list refresh), and a step forward would make the whole city due
in one tick. By default ``monotonic`` is ``time.monotonic`` with the real wall clock, and the
injected clock itself with a fake one (which then never steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from xueliang.inference.errors import InferenceError
from xueliang.inference.patrol.models import PatrolJob, PatrolTarget
from xueliang.inference.patrol.policy import PatrolPolicy, next_slot, phase_of
from xueliang.inference.patrol.settings import SchedulerSettings

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TargetProvider = Callable[[], Awaitable[Sequence[PatrolTarget]]]
_YIELD_EVERY = 2000  # cameras applied between two yields to the event loop
# the wall clock and the monotonic clock disagree by this much between two reads: a step. NTP slews
# by at most 0.5 ms per second, far below; a smaller step moves a visit by less than a tick anyway
CLOCK_STEP_S = 1.0


class TargetsUnavailable(InferenceError):
    """The camera list could not be read; the scheduler keeps patrolling the one it had."""


class QueueCounters(Protocol):
    refused: int
    coalesced: int


class JobSink(Protocol):
    """What the scheduler needs of the gateway's ``JobQueue``."""

    async def put(self, key: str, payload: dict[str, Any]) -> bool: ...

    async def stats(self) -> QueueCounters: ...


class SchedulerState(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class SchedulerStats:
    state: SchedulerState
    cameras: int = 0  # cameras patrolled (enabled, not only watched)
    pending: int = 0  # due visits the queue refused, retried first next tick
    lag_s: float = 0.0  # now - oldest pending due time (0 when none)
    enqueued: int = 0
    refused: int = 0  # puts the queue refused (full)
    coalesced: int = 0  # puts covered by a job of the same camera already waiting
    merged_slots: int = 0  # slots that passed while the camera's visit was pending
    ticks: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    last_tick_s: float = 0.0  # time the last tick took
    clock_steps: int = 0  # wall clock steps followed (every due time moved by the step)


@dataclass(slots=True)
class _Entry:
    target: PatrolTarget
    phase: float
    interval_s: float
    next_due: float
    version: int = 0  # of its live heap item; from one counter for all cameras (a camera re-added is new)
    last_due: float | None = None  # due time of the last visit queued


class PatrolScheduler:
    def __init__(
        self,
        queue: JobSink,
        targets: TargetProvider,
        settings: SchedulerSettings | None = None,
        *,
        clock: Clock = time.time,
        monotonic: Clock | None = None,
    ) -> None:
        self._queue = queue
        self._targets = targets
        self._s = settings or SchedulerSettings()
        self._policy = PatrolPolicy(self._s)
        self._clock = clock
        self._monotonic = monotonic if monotonic is not None else (time.monotonic if clock is time.time else clock)
        self._last_read: tuple[float, float] | None = None  # (wall, monotonic) at the last read
        self._entries: dict[str, _Entry] = {}
        # refused visits (camera id -> due since), retried first: kept apart so that a tick never
        # walks the whole city's camera list to find them
        self._pending: dict[str, float] = {}
        self._heap: list[tuple[float, int, str, int]] = []  # (due, priority, camera id, version)
        self._versions = itertools.count(1)
        self._windows: frozenset[int] | None = None
        self._last_refresh: float | None = None
        self._list_failing = False  # the last camera-list reading failed (one warning per outage)
        self._state = SchedulerState.CREATED
        self._queue_full = False  # the last put was refused (logged once per episode)
        self._stop = asyncio.Event()
        self._stats = SchedulerStats(SchedulerState.CREATED)

    @property
    def state(self) -> SchedulerState:
        return self._state

    @property
    def policy(self) -> PatrolPolicy:
        return self._policy

    def next_due(self, camera_id: str) -> float | None:
        entry = self._entries.get(camera_id)
        if entry is None:
            return None
        return self._pending.get(camera_id, entry.next_due)

    def stats(self) -> SchedulerStats:
        st = self._stats
        st.state = self._state
        st.cameras = len(self._entries)
        st.pending = len(self._pending)
        st.lag_s = max(0.0, self._clock() - min(self._pending.values())) if self._pending else 0.0
        return dataclasses.replace(st)

    # -- camera list -------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the camera list again; on ``TargetsUnavailable`` keep the current one."""
        now = self._clock()
        self._last_refresh = now
        try:
            targets = await self._targets()
        except TargetsUnavailable as exc:
            self._stats.refresh_errors += 1
            # one warning per outage; the next readings that fail only at debug level
            level = logging.DEBUG if self._list_failing else logging.WARNING
            log.log(level, "patrol: camera list unavailable, keeping %d cameras: %s", len(self._entries), exc)
            self._list_failing = True
            return
        if self._list_failing:
            self._list_failing = False
            log.info("patrol: the camera list can be read again")
        self._stats.refreshes += 1
        for done, _ in enumerate(self._apply(targets, now), start=1):
            if done % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a city's camera list takes a while: let the loop breathe

    def set_targets(self, targets: Sequence[PatrolTarget], now: float | None = None) -> None:
        """Replace the camera list: new cameras join on their own phase, removed ones leave."""
        if now is None:
            now = self._clock()
            self._follow_clock(now)
        for _ in self._apply(targets, now):
            pass

    def _apply(self, targets: Sequence[PatrolTarget], now: float) -> Iterator[None]:
        """``set_targets`` one camera at a time (a generator, so ``refresh`` can yield)."""
        active = self._current_windows(now)
        wanted = {t.camera_id: t for t in targets if t.enabled and (self._s.patrol_watched or not t.watch)}
        for camera_id in [c for c in self._entries if c not in wanted]:
            del self._entries[camera_id]
            self._pending.pop(camera_id, None)
            log.info("patrol: camera %s leaves the patrol", camera_id)
        for camera_id, target in wanted.items():
            interval = self._policy.interval_s(target, active)
            entry = self._entries.get(camera_id)
            if entry is None:
                phase = phase_of(camera_id)
                entry = _Entry(target, phase, interval, next_slot(phase, interval, now, inclusive=True))
                self._entries[camera_id] = entry
                self._push(entry)
            else:
                entry.target = target
                self._set_interval(entry, interval, now)
            yield None

    def _current_windows(self, now: float) -> frozenset[int]:
        active = self._policy.active_windows(now)
        if active != self._windows:
            self._windows = active
            for entry in self._entries.values():
                self._set_interval(entry, self._policy.interval_s(entry.target, active), now)
        return active

    def _set_interval(self, entry: _Entry, interval: float, now: float) -> None:
        old = entry.interval_s
        if interval == old:
            return
        entry.interval_s = interval
        if entry.target.camera_id in self._pending:
            return  # the pending visit goes out first; the new grid applies after it
        if interval < old:
            # shorter: come earlier, on the new grid (spread: no herd when a window opens)
            sooner = next_slot(entry.phase, interval, now, inclusive=True)
            if sooner < entry.next_due:
                entry.next_due = sooner
                self._push(entry)
        elif entry.last_due is not None:
            # longer: back on the new grid, but not sooner than the old interval after the last visit
            entry.next_due = next_slot(entry.phase, interval, max(now, entry.last_due + old), inclusive=True)
            self._push(entry)

    def _push(self, entry: _Entry) -> None:
        entry.version = next(self._versions)
        heapq.heappush(self._heap, (entry.next_due, entry.target.priority, entry.target.camera_id, entry.version))
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._heap = [(e.next_due, e.target.priority, c, e.version) for c, e in self._entries.items()]
            heapq.heapify(self._heap)

    # -- ticks -------------------------------------------------------------------------------

    def _due(self, now: float) -> list[tuple[float, int, str]]:
        due = [(at, self._entries[c].target.priority, c) for c, at in self._pending.items()]
        while self._heap and self._heap[0][0] <= now:
            at, priority, camera_id, version = heapq.heappop(self._heap)
            entry = self._entries.get(camera_id)
            if entry is None or entry.version != version:
                continue  # stale heap entry
            if camera_id in self._pending:
                self._stats.merged_slots += 1
                entry.next_due = next_slot(entry.phase, entry.interval_s, now)
                self._push(entry)
                continue
            due.append((at, priority, camera_id))
        due.sort()
        return due

    async def tick(self) -> int:
        """One scheduling round; returns the number of jobs queued."""
        started = self._clock()
        now = started
        self._follow_clock(now)
        if self._last_refresh is None or now - self._last_refresh >= self._s.refresh_s:
            await self.refresh()
        self._current_windows(now)
        due = self._due(now)
        queued = 0
        baseline = _snapshot(await self._queue.stats()) if due else _Counters(0, 0)
        for index, (due_at, _priority, camera_id) in enumerate(due):
            entry = self._entries[camera_id]
            if index >= self._s.max_puts_per_tick:
                self._defer(entry, due_at, now)
                continue
            job = PatrolJob.for_target(entry.target, due_at=due_at, queued_at=now, interval_s=entry.interval_s)
            if await self._queue.put(camera_id, job.model_dump(mode="json")):
                queued += 1
                self._stats.enqueued += 1
                self._advance(entry, due_at, now)
                continue
            counters = _snapshot(await self._queue.stats())
            if counters.coalesced > baseline.coalesced:
                self._stats.coalesced += 1
                self._advance(entry, due_at, now)
                baseline = counters
                continue
            # refused: the queue is full; this visit and the rest of the round wait for the next tick
            self._stats.refused += 1
            for pending_at, _p, pending_id in due[index:]:
                self._defer(self._entries[pending_id], pending_at, now)
            if not self._queue_full:
                log.warning("patrol: job queue full, %d visit(s) wait for the next tick", len(due) - index)
            self._queue_full = True
            break
        else:
            if self._queue_full and due:
                log.info("patrol: job queue takes jobs again (%d queued this tick)", queued)
                self._queue_full = False
        self._stats.ticks += 1
        self._stats.last_tick_s = self._clock() - started
        return queued

    def _follow_clock(self, now: float) -> None:
        """Move every due time by the step when the wall clock stepped since the last read."""
        mono = self._monotonic()
        last, self._last_read = self._last_read, (now, mono)
        if last is None:
            return
        step = (now - last[0]) - (mono - last[1])
        if abs(step) < CLOCK_STEP_S:
            return
        self._stats.clock_steps += 1
        log.warning(
            "patrol: wall clock stepped by %+.3f s, moving %d cameras' visits with it", step, len(self._entries)
        )
        for entry in self._entries.values():
            entry.next_due += step
            if entry.last_due is not None:
                entry.last_due += step
        self._pending = {camera_id: due + step for camera_id, due in self._pending.items()}
        if self._last_refresh is not None:
            self._last_refresh += step
        self._heap = [(e.next_due, e.target.priority, c, e.version) for c, e in self._entries.items()]
        heapq.heapify(self._heap)

    def _defer(self, entry: _Entry, due_at: float, now: float) -> None:
        """Keep the visit pending (oldest due time); later slots meanwhile are merged into it."""
        if entry.target.camera_id not in self._pending:
            self._pending[entry.target.camera_id] = due_at
            entry.next_due = next_slot(entry.phase, entry.interval_s, now)
            self._push(entry)

    def _advance(self, entry: _Entry, due_at: float, now: float) -> None:
        self._pending.pop(entry.target.camera_id, None)
        entry.last_due = due_at
        entry.next_due = next_slot(entry.phase, entry.interval_s, now)
        self._push(entry)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick every ``tick_s`` until ``stop()``. Run it in the node's TaskGroup."""
        if self._state is not SchedulerState.CREATED:
            raise RuntimeError(f"patrol scheduler cannot run from state {self._state}")
        self._state = SchedulerState.RUNNING
        log.info("patrol: scheduler running, tick %.1f s", self._s.tick_s)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                await self.tick()
                delay = max(0.0, self._s.tick_s - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
        finally:
            self._state = SchedulerState.STOPPED
            log.info("patrol: scheduler stopped (%d jobs queued)", self._stats.enqueued)

    def stop(self) -> None:
        """Ask ``run`` to return after the current tick."""
        if self._state in (SchedulerState.CREATED, SchedulerState.RUNNING):
            self._state = SchedulerState.STOPPING if self._state is SchedulerState.RUNNING else SchedulerState.STOPPED
        self._stop.set()


@dataclass(frozen=True, slots=True)
class _Counters:
    refused: int
    coalesced: int


def _snapshot(stats: QueueCounters) -> _Counters:
    return _Counters(stats.refused, stats.coalesced)
