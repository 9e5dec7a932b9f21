"""Zones: polygon validation says precisely what is wrong; geometry and active hours are right."""

from __future__ import annotations

from datetime import datetime, time

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from tests.inference.logic_fixtures import TZ, WALKWAY
from xueliang.inference.frames import Detection
from xueliang.inference.zones import (
    TimeWindow,
    Zone,
    ZoneKind,
    active_at,
    contains,
    foot_point,
    polygon_area,
)


def make(polygon: object, **kw: object) -> Zone:
    return Zone.model_validate({"id": "z1", "kind": "intrusion", "polygon": polygon, **kw})


def error_of(polygon: object) -> str:
    with pytest.raises(ValidationError) as info:
        make(polygon)
    return str(info.value)


def test_a_valid_zone_keeps_its_outline_and_defaults() -> None:
    z = make(WALKWAY, name="人行道 / walkway")
    assert z.polygon == WALKWAY
    assert z.kind is ZoneKind.INTRUSION
    assert z.active == () and z.min_count is None
    assert polygon_area(WALKWAY) != 0


def test_fewer_than_three_points_is_refused() -> None:
    message = error_of([(0.1, 0.1), (0.5, 0.5)])
    assert "polygon has 2 point(s)" in message and "at least 3" in message


def test_a_point_outside_the_picture_is_named_with_its_index_and_value() -> None:
    message = error_of([(0.1, 0.1), (0.9, 0.1), (1.25, 0.8), (0.1, 0.9)])
    assert "point 2 (1.25, 0.8) is outside the picture" in message
    assert "0..1" in message


def test_a_negative_coordinate_is_refused_too() -> None:
    assert "point 0 (-0.1, 0.5)" in error_of([(-0.1, 0.5), (0.5, 0.1), (0.5, 0.9)])


def test_a_bow_tie_names_the_two_crossing_edges_and_where_they_meet() -> None:
    # 0 -> 1 -> 2 -> 3 draws a bow tie: edge 0 (0->1) crosses edge 2 (2->3) at the centre
    message = error_of([(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])
    assert "crosses itself" in message
    assert "edge 0 (point 0 -> 1)" in message and "edge 2 (point 2 -> 3)" in message
    assert "(0.500, 0.500)" in message


def test_collinear_points_have_zero_area() -> None:
    message = error_of([(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)])
    assert "polygon has zero area (0 of the picture" in message


def test_a_sliver_too_thin_to_hold_anything_has_zero_area() -> None:
    assert "zero area" in error_of([(0.1, 0.1), (0.9, 0.1), (0.5, 0.100001)])


def test_collinear_edges_overlapping_are_a_crossing() -> None:
    message = error_of([(0.1, 0.2), (0.4, 0.2), (0.8, 0.2), (0.6, 0.2)])
    assert "crosses itself" in message


def test_a_spike_folding_back_touches_its_own_edge() -> None:
    message = error_of([(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.9, 0.5), (0.1, 0.9)])
    assert "edge 1 (point 1 -> 2) and edge 3 (point 3 -> 4) meet at (0.900, 0.500)" in message


def test_repeated_points_are_named() -> None:
    message = error_of([(0.1, 0.1), (0.5, 0.1), (0.5, 0.1), (0.3, 0.6)])
    assert "points 1 and 2 are the same (0.5, 0.1)" in message


def test_malformed_points_fail_in_pydantic_terms() -> None:
    with pytest.raises(ValidationError):
        make([(0.1, 0.1, 0.3), (0.5, 0.5), (0.2, 0.8)])


def test_contains_agrees_with_opencv() -> None:
    rng = np.random.default_rng(7)
    points = rng.random((2000, 2))
    ours = np.array([contains(WALKWAY, float(x), float(y)) for x, y in points])
    contour = (np.asarray(WALKWAY) * 10_000).astype(np.int32)
    theirs = np.array(
        [cv2.pointPolygonTest(contour, (float(x * 10_000), float(y * 10_000)), False) > 0 for x, y in points]
    )
    assert ours.shape == (2000,)
    assert 200 < ours.sum() < 1800  # both sides are exercised
    assert np.array_equal(ours, theirs)


def test_foot_point_is_the_box_bottom_centre_normalised() -> None:
    assert foot_point(Detection(100, 50, 140, 250, 0.9, 0, "person"), 768, 576) == (120 / 768, 250 / 576)
    assert foot_point(Detection(0, 0, 768, 576, 0.5, 2, "car"), 768, 576) == (0.5, 1.0)


def test_active_hours_wrap_past_midnight_on_their_weekdays() -> None:
    night = TimeWindow(start=time(22, 0), end=time(6, 0), days=(1, 2, 3, 4, 5))  # Mon..Fri nights
    z = make(WALKWAY, active=[night])
    monday_2300 = datetime(2024, 5, 6, 23, 0, tzinfo=TZ)
    tuesday_0500 = datetime(2024, 5, 7, 5, 0, tzinfo=TZ)
    tuesday_1200 = datetime(2024, 5, 7, 12, 0, tzinfo=TZ)
    sunday_0500 = datetime(2024, 5, 12, 5, 0, tzinfo=TZ)  # the night began on Saturday: not listed
    assert active_at(z, monday_2300) and active_at(z, tuesday_0500)
    assert not active_at(z, tuesday_1200) and not active_at(z, sunday_0500)
    assert active_at(make(WALKWAY), tuesday_1200)  # no windows: always


def test_time_window_errors_are_precise() -> None:
    with pytest.raises(ValidationError, match="empty"):
        TimeWindow(start=time(8, 0), end=time(8, 0))
    with pytest.raises(ValidationError, match=r"weekdays must be 1 \(Monday\) .. 7 \(Sunday\), got \[0, 8\]"):
        TimeWindow(start=time(8, 0), end=time(9, 0), days=(0, 8))
