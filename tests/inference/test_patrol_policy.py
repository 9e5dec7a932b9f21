"""Patrol policy: intervals from priority, category windows, floor; phases; grid slots; settings."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from pydantic import ValidationError

from tests.inference.logic_fixtures import TZ
from xueliang.inference.patrol.models import PatrolTarget
from xueliang.inference.patrol.policy import PatrolPolicy, next_slot, phase_of
from xueliang.inference.patrol.settings import AnalyticsSettings, CategoryWindow, SchedulerSettings


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2024, 5, day, hour, minute, tzinfo=TZ).timestamp()  # 6 May 2024 is a Monday


POLICY = PatrolPolicy(SchedulerSettings())


def interval(target: PatrolTarget, when: float, policy: PatrolPolicy = POLICY) -> float:
    return policy.interval_s(target, policy.active_windows(when))


def test_priority_gives_the_base_interval() -> None:
    assert [interval(PatrolTarget(camera_id="c", priority=p), at(6, 10)) for p in range(1, 6)] == [
        60.0,
        180.0,
        300.0,
        600.0,
        900.0,
    ]


def test_category_windows_tighten_in_local_time_on_their_days() -> None:
    school = PatrolTarget(camera_id="s", priority=5, category="school")
    square = PatrolTarget(camera_id="q", priority=5, category="square")
    assert interval(school, at(6, 7, 30)) == 60.0  # Monday 07:30
    assert interval(school, at(6, 12, 0)) == 900.0
    assert interval(school, at(11, 7, 30)) == 900.0  # Saturday: no school run
    assert interval(square, at(11, 19, 0)) == 120.0  # every evening
    assert interval(square, at(6, 7, 30)) == 900.0
    fast = PatrolTarget(camera_id="f", priority=1, category="square")
    assert interval(fast, at(6, 19, 0)) == 60.0  # a window never loosens


def test_override_floor_and_minimum() -> None:
    policy = PatrolPolicy(SchedulerSettings(floor_s=1200.0, min_interval_s=15.0))
    assert interval(PatrolTarget(camera_id="a", interval_s=90.0), at(6, 10), policy) == 90.0
    assert interval(PatrolTarget(camera_id="b", interval_s=7200.0), at(6, 10), policy) == 1200.0
    assert interval(PatrolTarget(camera_id="c", interval_s=2.0), at(6, 10), policy) == 15.0


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    settings = SchedulerSettings(
        category_windows=[CategoryWindow(category="bar", start=time(22), end=time(2), days=(5,), interval_s=30)]
    )
    policy = PatrolPolicy(settings)
    bar = PatrolTarget(camera_id="b", priority=3, category="bar")
    assert interval(bar, at(10, 23), policy) == 30.0  # Friday 23:00
    assert interval(bar, at(11, 1), policy) == 30.0  # Saturday 01:00, Friday's night
    assert interval(bar, at(11, 23), policy) == 300.0  # Saturday night: not listed


def test_phases_are_stable_and_uniform() -> None:
    phases = [phase_of(f"cam-{i}") for i in range(10_000)]
    assert phase_of("cam-1") == phases[1]  # same on every call, node and run
    assert all(0.0 <= p < 1.0 for p in phases)
    tenths = [sum(1 for p in phases if k / 10 <= p < (k + 1) / 10) for k in range(10)]
    assert min(tenths) > 900 and max(tenths) < 1100


def test_next_slot_lies_on_the_grid() -> None:
    assert next_slot(0.25, 60.0, 1000.0) == 1035.0  # grid 15, 75, ..., 975, 1035
    assert next_slot(0.25, 60.0, 1035.0) == 1095.0
    assert next_slot(0.25, 60.0, 1035.0, inclusive=True) == 1035.0
    assert next_slot(0.0, 60.0, 1020.5, inclusive=True) == 1080.0


def test_settings_errors_say_what_to_fix() -> None:
    with pytest.raises(ValidationError, match=r"lacks priorities \[4, 5\]"):
        SchedulerSettings(priority_intervals_s={1: 60, 2: 120, 3: 300})
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        SchedulerSettings(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="school window 08:00:00-08:00:00 is empty"):
        CategoryWindow(category="school", start=time(8), end=time(8), interval_s=60)
    with pytest.raises(ValidationError, match="extra"):
        AnalyticsSettings.model_validate({"scheduler": {"tick": 1}})
    defaults = AnalyticsSettings()
    assert defaults.pipeline.workers == 8 and defaults.rules.crowd_min_count == 5
