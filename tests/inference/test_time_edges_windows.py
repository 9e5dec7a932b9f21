"""Zone hours and patrol category windows at their edges: the exact start and end instants, nights
past midnight, daylight-saving days (Europe/Berlin), times written the way YAML and JSON give
them, and dwell rules (loitering, no parking) when the wall clock steps back."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from xueliang.inference.frames import Detection, Frame
from xueliang.inference.patrol.models import PatrolTarget
from xueliang.inference.patrol.policy import PatrolPolicy
from xueliang.inference.patrol.settings import CategoryWindow, SchedulerSettings
from xueliang.inference.rules.engine import CameraRules
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.zones import TimeWindow, Zone, ZoneKind, active_at

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
SQUARE = ((0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9))


def zone_with(*windows: TimeWindow) -> Zone:
    return Zone(id="z", kind=ZoneKind.INTRUSION, polygon=SQUARE, active=windows)


def berlin_rules() -> CameraRules:
    return CameraRules("cam-berlin", RuleSettings(timezone="Europe/Berlin"))


def test_a_night_window_starts_at_its_first_instant_and_ends_just_before_its_end() -> None:
    # pins: start inclusive, end exclusive, to the microsecond, across midnight
    night = zone_with(TimeWindow(start=time(22, 0), end=time(6, 0), days=(1,)))  # Monday night
    monday = datetime(2024, 5, 6, tzinfo=SHANGHAI)
    assert not active_at(night, monday + timedelta(hours=22) - timedelta(microseconds=1))
    assert active_at(night, monday + timedelta(hours=22))
    assert active_at(night, monday + timedelta(days=1, hours=6) - timedelta(microseconds=1))
    assert not active_at(night, monday + timedelta(days=1, hours=6))
    assert not active_at(night, monday + timedelta(hours=5, minutes=59))  # Sunday's night: not listed
    until_midnight = zone_with(TimeWindow(start=time(18, 0), end=time(0, 0)))
    assert active_at(until_midnight, monday + timedelta(hours=23, minutes=59, seconds=59))
    assert not active_at(until_midnight, monday + timedelta(days=1))


def test_on_the_spring_forward_day_the_missing_hour_is_never_active() -> None:
    # pins: 31 March 2024, Berlin clocks jump from 02:00 CET to 03:00 CEST
    rules = berlin_rules()
    gap = zone_with(TimeWindow(start=time(2, 0), end=time(3, 0)))
    straddling = zone_with(TimeWindow(start=time(2, 30), end=time(3, 30)))
    last_cet = datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC).timestamp()  # 01:59:59 CET
    for t in range(int(last_cet), int(last_cet) + 3601, 60):
        assert not active_at(gap, rules.local_time(t))
    assert rules.local_time(last_cet + 1).hour == 3
    assert active_at(straddling, rules.local_time(last_cet + 1))  # 03:00 CEST is inside 02:30-03:30
    assert not active_at(straddling, rules.local_time(last_cet + 1800 + 1))  # 03:30 CEST


def test_on_the_fall_back_day_the_repeated_hour_is_active_both_times() -> None:
    # pins: 27 October 2024, Berlin clocks fall from 03:00 CEST back to 02:00 CET; 02:30 occurs twice
    rules = berlin_rules()
    half_past_two = zone_with(TimeWindow(start=time(2, 15), end=time(2, 45)))
    first = datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()  # 02:30 CEST
    second = first + 3600  # 02:30 CET
    assert rules.local_time(first).fold == 0 and rules.local_time(second).fold == 1
    assert active_at(half_past_two, rules.local_time(first)) and active_at(half_past_two, rules.local_time(second))
    assert not active_at(half_past_two, rules.local_time(first + 1800))  # 03:00 CEST = 02:00 CET


def test_patrol_windows_follow_the_configured_zone_across_daylight_saving() -> None:
    # pins: the policy's local time is the settings' zone, DST included, not the machine's or UTC
    settings = SchedulerSettings(
        timezone="Europe/Berlin",
        category_windows=[CategoryWindow(category="market", start=time(8), end=time(9), interval_s=60)],
    )
    policy, market = PatrolPolicy(settings), PatrolTarget(camera_id="m", priority=5, category="market")
    for day in (datetime(2024, 3, 30, 7, 30, tzinfo=UTC), datetime(2024, 3, 31, 6, 30, tzinfo=UTC)):
        at = day.timestamp()  # 08:30 local on the day before (CET) and on the day of the change (CEST)
        assert policy.interval_s(market, policy.active_windows(at)) == 60
        assert policy.interval_s(market, policy.active_windows(at + 3600)) == 900


def test_an_unquoted_yaml_time_is_refused_not_read_as_seconds_after_midnight() -> None:
    # old code: YAML reads 22:00 as the sexagesimal number 1320, pydantic took it as 00:22 UTC (with an
    # offset), and every frame of the camera then failed comparing it with local time (TypeError)
    loaded = yaml.safe_load("start: 22:00\nend: '06:00'")
    assert loaded["start"] == 1320
    with pytest.raises(ValidationError, match=r"time 1320 is a number: write it as a quoted 'HH:MM'"):
        TimeWindow.model_validate(loaded)
    with pytest.raises(ValidationError, match="is a number"):
        TimeWindow.model_validate({"start": 79200.0, "end": "06:00"})
    assert TimeWindow.model_validate(yaml.safe_load("start: '22:00'\nend: '06:00'")).start == time(22, 0)


def test_patrol_category_windows_refuse_unquoted_and_offset_times_too() -> None:
    # old code: the scheduler's own windows took 16:30 unquoted as 00:16:30 UTC; window_active then
    # raised TypeError on every scheduler tick
    loaded = yaml.safe_load("category: school\nstart: 16:30\nend: '18:00'\ninterval_s: 60")
    with pytest.raises(ValidationError, match=r"time 990 is a number: write it as a quoted 'HH:MM'"):
        CategoryWindow.model_validate(loaded)
    with pytest.raises(ValidationError, match="carries a UTC offset"):
        CategoryWindow(category="school", start="07:00+08:00", end="09:00", interval_s=60)  # type: ignore[arg-type]


def test_patrol_targets_refuse_a_non_finite_interval() -> None:
    with pytest.raises(ValidationError, match="finite number"):
        PatrolTarget(camera_id="c", priority=3, interval_s=float("inf"))


def test_a_time_with_a_utc_offset_is_refused() -> None:
    # old code: accepted, then active_at raised TypeError (offset-aware vs local naive time)
    for start in ("22:00+08:00", "22:00Z"):
        with pytest.raises(ValidationError, match="carries a UTC offset: give the local wall time"):
            TimeWindow.model_validate({"start": start, "end": "06:00"})
    with pytest.raises(ValidationError, match="carries a UTC offset"):
        TimeWindow(start=time(22, tzinfo=SHANGHAI), end=time(6))
    round_trip = TimeWindow(start=time(22, 0), end=time(6, 0)).model_dump(mode="json")  # as in a PatrolJob
    assert TimeWindow.model_validate(round_trip).start == time(22, 0)


def _standing_person_frames(rules: CameraRules, zone: Zone, times: list[float]) -> list[float]:
    """Feed frames of one person standing still in ``zone`` at ``times``; the loitering values."""
    person = Detection(300, 200, 340, 300, 0.9, 0, "person")
    image = np.zeros((400, 640, 3), dtype=np.uint8)
    return [
        hit.value
        for t in times
        for hit in rules.evaluate(Frame("cam-step", image, t), [person], [zone], continuous=True)
        if hit.rule == "loitering"
    ]


def test_loitering_dwell_goes_on_when_the_clock_steps_back() -> None:
    # old code: after a step back of an hour the dwell was negative, nobody loitered for an hour
    rules = CameraRules("cam-step", RuleSettings(loitering_dwell_s=30))
    zone = Zone(id="walk", kind=ZoneKind.LOITERING, polygon=SQUARE)
    t0 = datetime(2024, 5, 6, 14, 0, tzinfo=SHANGHAI).timestamp()
    before = [t0 + 0.5 * i for i in range(41)]  # 20 s in the zone
    after = [t0 + 20 - 3600 + 0.5 * i for i in range(1, 41)]  # the next 20 s, an hour earlier by the clock
    assert _standing_person_frames(rules, zone, before) == []
    values = _standing_person_frames(rules, zone, after)
    assert values and values[0] == 30.0 and values[-1] == 39.5  # the dwell counts on across the step
    assert rules.tracker.clock_steps_back == 1


def test_a_parked_car_keeps_its_stay_when_the_clock_steps_back_between_visits() -> None:
    # old code: after a step back of an hour its stay was negative for the hour
    rules = CameraRules("cam-step", RuleSettings(parking_dwell_s=300))
    zone = Zone(id="gate", kind=ZoneKind.NO_PARKING, polygon=SQUARE)
    car, image = Detection(200, 200, 360, 300, 0.9, 2, "car"), np.zeros((400, 640, 3), dtype=np.uint8)
    t0 = datetime(2024, 5, 6, 14, 0, tzinfo=SHANGHAI).timestamp()
    visits = [t0, t0 + 120, t0 + 240 - 3600, t0 + 360 - 3600, t0 + 480 - 3600]  # patrol every 2 min
    stays = [[hit.value for hit in rules.evaluate(Frame("cam-step", image, t), [car], [zone])] for t in visits]
    # the two minutes of the step are not counted (the visit counts as right after the one before)
    assert stays == [[], [], [], [], [360.0]]
