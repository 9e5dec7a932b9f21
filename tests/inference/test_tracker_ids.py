"""Tracker: vectorised IoU, two-stage association, stable ids on real footage, expiry, dwell."""

from __future__ import annotations

import numpy as np

from tests.inference.logic_fixtures import FPS, SEQUENCE, detections, zone
from xueliang.inference.frames import Detection
from xueliang.inference.rules.settings import TrackerSettings
from xueliang.inference.tracker import Tracker, greedy_match, iou_matrix
from xueliang.inference.zones import ZoneKind


def det(x1: float, y1: float, x2: float, y2: float, score: float = 0.9, label: str = "person") -> Detection:
    return Detection(x1, y1, x2, y2, score, 0, label)


def test_iou_matrix_matches_hand_computed_values() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=np.float64)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], dtype=np.float64)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert np.allclose(iou[0], [1.0, 50 / 150, 0.0])
    assert np.allclose(iou[1], [0.0, 0.0, 0.0])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_greedy_match_takes_the_best_pairs_once() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(greedy_match(iou, 0.3)) == [(0, 0)]  # row 1's only good column is taken
    assert greedy_match(iou, 0.95) == []


def test_a_low_score_detection_keeps_a_track_alive_without_starting_new_ones() -> None:
    tracker = Tracker(TrackerSettings(min_hits=1))
    first = tracker.update([det(100, 100, 140, 200)], now=0.0)
    # the person is half hidden: the detector scores it low; stage two still matches it
    second = tracker.update([det(102, 101, 142, 201, score=0.3)], now=0.1)
    assert [t.track_id for t in second] == [t.track_id for t in first]
    # a low-score detection far from every track starts nothing
    third = tracker.update([det(400, 100, 440, 200, score=0.3)], now=0.2)
    assert third == [] and len(tracker.tracks) == 1


def test_labels_never_match_across_classes() -> None:
    tracker = Tracker(TrackerSettings(min_hits=1))
    person = tracker.update([det(100, 100, 140, 200)], now=0.0)[0]
    car = tracker.update([det(100, 100, 140, 200, label="car")], now=0.1)[0]
    assert car.track_id != person.track_id


def test_tracks_expire_after_max_age() -> None:
    tracker = Tracker(TrackerSettings(min_hits=1, max_age_s=1.0))
    old = tracker.update([det(100, 100, 140, 200)], now=0.0)[0]
    assert tracker.update([], now=0.9) == [] and len(tracker.tracks) == 1
    new = tracker.update([det(100, 100, 140, 200)], now=2.5)[0]
    assert new.track_id != old.track_id and len(tracker.tracks) == 1


def test_one_frame_ghosts_are_not_reported_until_confirmed() -> None:
    tracker = Tracker(TrackerSettings(min_hits=2))
    assert tracker.update([det(100, 100, 140, 200)], now=0.0) == []
    assert len(tracker.update([det(101, 100, 141, 200)], now=0.1)) == 1


def test_ids_are_stable_on_real_footage() -> None:
    """vtest.avi at 10/3 fps for 24 s: the parked car keeps one id throughout, and people walking
    keep theirs for seconds: far fewer tracks than detections."""
    tracker = Tracker(TrackerSettings())
    car_ids: set[int] = set()
    person_boxes = 0
    person_ids: set[int] = set()
    lifetimes: dict[int, int] = {}
    for index in SEQUENCE:
        for track in tracker.update(detections(index), now=index / FPS):
            lifetimes[track.track_id] = lifetimes.get(track.track_id, 0) + 1
            d = track.detection
            if track.label == "car" and d.x1 > 725:  # the small car at the right edge
                car_ids.add(track.track_id)
            if track.label == "person":
                person_boxes += 1
                person_ids.add(track.track_id)
    assert len(car_ids) == 1
    assert lifetimes[car_ids.pop()] >= len(SEQUENCE) - 2
    assert person_boxes > 300
    assert len(person_ids) < person_boxes / 12  # each person id lives for many frames
    long_lived = [n for tid, n in lifetimes.items() if tid in person_ids and n >= 20]
    assert len(long_lived) >= 4  # several people followed for 6 s or more


def test_dwell_time_grows_while_inside_a_zone_and_resets_after_leaving() -> None:
    tracker = Tracker(TrackerSettings(min_hits=1, zone_grace_s=0.5))
    square = zone(ZoneKind.LOITERING, ((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)))
    size = (768, 576)
    inside = det(370, 117, 400, 317)  # feet at (0.50, 0.55)
    outside = det(370, 157, 400, 357)  # feet at (0.50, 0.62): one step out, the same person
    track = tracker.update([inside], 0.0, frame_size=size, zones=[square])[0]
    for t in (1.0, 2.0, 3.0):
        track = tracker.update([inside], t, frame_size=size, zones=[square])[0]
    assert track.dwell_s(square.id, 3.0) == 3.0
    same = tracker.update([outside], 3.3, frame_size=size, zones=[square])[0]
    assert same.track_id == track.track_id
    assert same.dwell_s(square.id, 3.3) == 3.3  # out for less than the grace period: still counted
    same = tracker.update([outside], 4.0, frame_size=size, zones=[square])[0]
    assert same.dwell_s(square.id, 4.0) == 0.0  # out for longer: the dwell is over
    back = tracker.update([inside], 4.5, frame_size=size, zones=[square])[0]
    assert back.track_id == track.track_id and back.dwell_s(square.id, 5.5) == 1.0
