"""Detection rules on real frames of vtest.avi with the real detector (yolox_nano): each rule
fires on a crafted case and stays quiet on a normal one."""

from __future__ import annotations

from datetime import datetime, time

import cv2
import numpy as np

from tests.inference.logic_fixtures import (
    FPS,
    GRASS,
    PARKING,
    SEQUENCE,
    T0,
    TZ,
    WALKWAY,
    clip_frame,
    clip_image,
    detections,
    jpeg,
    shifted,
    zone,
)
from xueliang.inference.anomaly import Anomaly
from xueliang.inference.frames import Frame
from xueliang.inference.rules.engine import CameraRules
from xueliang.inference.rules.settings import RuleSettings
from xueliang.inference.zones import TimeWindow, ZoneKind, contains, foot_point

MONDAY_2230 = datetime(2024, 5, 6, 22, 30, tzinfo=TZ).timestamp()
NIGHT = TimeWindow(start=time(22, 0), end=time(6, 0))


def people_on_walkway(index: int) -> int:
    people = [d for d in detections(index) if d.label == "person" and d.score >= 0.4]
    return sum(contains(WALKWAY, *foot_point(d, 768, 576)) for d in people)


def test_the_walkway_holds_five_people_on_frame_100() -> None:
    assert people_on_walkway(100) == 5  # the scene the crowd and intrusion cases rely on


def test_crowd_fires_at_its_count_and_not_below() -> None:
    rules = CameraRules("cam-1")
    frame = clip_frame(100)
    crowd = zone(ZoneKind.CROWD, WALKWAY, min_count=5)
    [anomaly] = rules.anomalies(frame, detections(100), [crowd])
    assert anomaly.rule == "crowd" and anomaly.zone == crowd.id
    assert anomaly.value == 5.0 and anomaly.threshold == 5.0
    assert anomaly.detail["zone_name"] == "测试区 / test zone" and anomaly.detail["mode"] == "patrol"
    assert anomaly.evidence is not None and len(anomaly.evidence.boxes) == 5
    assert {b.label for b in anomaly.evidence.boxes} == {"person"}
    assert rules.anomalies(frame, detections(100), [zone(ZoneKind.CROWD, WALKWAY, min_count=6)]) == []
    assert rules.anomalies(frame, detections(100), [zone(ZoneKind.CROWD, GRASS, min_count=1)]) == []


def test_intrusion_fires_during_active_hours_only() -> None:
    rules = CameraRules("cam-1")
    night_zone = zone(ZoneKind.INTRUSION, WALKWAY, active=[NIGHT])
    at_night = clip_frame(100, t0=MONDAY_2230)
    by_day = clip_frame(100)  # Monday 14:00
    [anomaly] = rules.anomalies(at_night, detections(100), [night_zone])
    assert anomaly.rule == "intrusion" and anomaly.value == 5.0 and anomaly.threshold == 1.0
    assert anomaly.detail["labels"] == "person"
    assert rules.anomalies(by_day, detections(100), [night_zone]) == []


def test_intrusion_quiet_when_nobody_is_in_the_zone() -> None:
    rules = CameraRules("cam-1")
    assert rules.anomalies(clip_frame(100, t0=MONDAY_2230), detections(100), [zone(ZoneKind.INTRUSION, GRASS)]) == []


def test_evidence_boxes_are_the_people_inside_in_evidence_pixels() -> None:
    rules = CameraRules("cam-1")
    [anomaly] = rules.anomalies(clip_frame(100), detections(100), [zone(ZoneKind.INTRUSION, WALKWAY)])
    assert anomaly.evidence is not None
    image = cv2.imdecode(np.frombuffer(anomaly.evidence.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (576, 768, 3)
    for box in anomaly.evidence.boxes:
        assert 0 <= box.x1 < box.x2 <= 768 and 0 <= box.y1 < box.y2 <= 576
        assert box.track_id is None  # a patrol snapshot is not tracked


def test_evidence_boxes_are_scaled_to_the_cameras_own_jpeg() -> None:
    """A frame decoded at half scale keeps the camera's full JPEG: boxes are scaled up to it."""
    full = clip_image(100)
    half = np.ascontiguousarray(full[::2, ::2])
    frame = Frame("cam-1", half, T0, scale=0.5, jpeg=jpeg(full))
    scaled = tuple(
        type(d)(d.x1 / 2, d.y1 / 2, d.x2 / 2, d.y2 / 2, d.score, d.class_id, d.label) for d in detections(100)
    )
    [anomaly] = CameraRules("cam-1").anomalies(frame, scaled, [zone(ZoneKind.INTRUSION, WALKWAY)])
    assert anomaly.evidence is not None
    assert anomaly.evidence.jpeg == frame.jpeg
    assert (anomaly.evidence.width, anomaly.evidence.height) == (768, 576)
    originals = {(round(d.x1), round(d.y2)) for d in detections(100)}
    assert {(round(b.x1), round(b.y2)) for b in anomaly.evidence.boxes} <= originals


def test_parking_fires_once_the_vehicles_stayed_long_enough() -> None:
    """Patrol visits at frames 0, 300 and 600 (30 s apart in the clip): the car and the van
    stay put; with a 45 s limit the third visit fires, the first two do not."""
    rules = CameraRules("cam-1")
    no_parking = zone(ZoneKind.NO_PARKING, PARKING, dwell_s=45.0)
    assert rules.anomalies(clip_frame(0), detections(0), [no_parking]) == []
    assert rules.anomalies(clip_frame(300), detections(300), [no_parking]) == []
    [anomaly] = rules.anomalies(clip_frame(600), detections(600), [no_parking])
    assert anomaly.rule == "parking" and anomaly.threshold == 45.0
    assert anomaly.value == 60.0
    assert anomaly.evidence is not None
    labels = sorted(b.label for b in anomaly.evidence.boxes)
    assert "car" in labels and len(labels) >= 2  # the car and the van (seen as car and/or truck)
    assert all(b.y2 < 0.25 * 576 for b in anomaly.evidence.boxes)


def test_parking_starts_over_when_the_vehicle_moved() -> None:
    rules = CameraRules("cam-1")
    no_parking = zone(ZoneKind.NO_PARKING, PARKING, dwell_s=45.0)
    rules.anomalies(clip_frame(0), detections(0), [no_parking])
    rules.anomalies(clip_frame(300), detections(300), [no_parking])
    # the third visit sees the vehicles 60 px further left: they left and others came
    moved = tuple(type(d)(d.x1 - 60, d.y1, d.x2 - 60, d.y2, d.score, d.class_id, d.label) for d in detections(600))
    frame = clip_frame(600, image=shifted(clip_image(600), -60 / 768))
    assert rules.anomalies(frame, moved, [no_parking]) == []
    assert all(
        p.first_seen == frame.captured_at
        for p in rules.parking.candidates(no_parking.id)
        if p.last_seen == frame.captured_at
    )


def test_parking_quiet_where_no_vehicle_stands() -> None:
    rules = CameraRules("cam-1")
    walkway = zone(ZoneKind.NO_PARKING, WALKWAY, dwell_s=10.0)
    for index in (0, 300, 600):
        assert rules.anomalies(clip_frame(index), detections(index), [walkway]) == []


def test_loitering_fires_for_someone_staying_on_the_walkway_in_watch_mode() -> None:
    rules = CameraRules("cam-1", RuleSettings())
    loiter = zone(ZoneKind.LOITERING, WALKWAY, dwell_s=15.0)
    fired = []
    for index in SEQUENCE:
        fired += rules.anomalies(clip_frame(index), detections(index), [loiter], continuous=True)
    assert fired, "nobody stayed 15 s on the walkway?"
    first = fired[0]
    assert first.rule == "loitering" and first.threshold == 15.0 and first.value >= 15.0
    assert first.detail["mode"] == "watch"
    assert first.evidence is not None and first.evidence.boxes
    assert all(b.track_id is not None and b.label == "person" for b in first.evidence.boxes)
    # fires once someone has been followed 15 s: not before 15 s into the sequence
    assert first.observed_at.timestamp() >= T0 + 15.0


def test_loitering_quiet_where_people_only_pass_or_nobody_goes() -> None:
    rules = CameraRules("cam-1")
    grass = zone(ZoneKind.LOITERING, GRASS, dwell_s=5.0, id="grass")
    long_dwell = zone(ZoneKind.LOITERING, WALKWAY, dwell_s=60.0, id="walkway")
    for index in SEQUENCE:
        assert rules.anomalies(clip_frame(index), detections(index), [grass, long_dwell], continuous=True) == []


# a band 5 % of the picture wide across the walkway: a walker crosses it in about a second
BAND = ((0.40, 0.24), (0.45, 0.24), (0.45, 0.68), (0.40, 0.68))


def band_anomalies(dwell_s: float) -> tuple[list[Anomaly], float]:
    """Loitering anomalies of the band over the 24 s sequence, and the greatest age a person's track
    had while its foot point was in the band."""
    band = zone(ZoneKind.LOITERING, BAND, dwell_s=dwell_s, id="band")
    rules = CameraRules("cam-1")
    fired: list[Anomaly] = []
    oldest_in_band = 0.0
    for index in SEQUENCE:
        frame = clip_frame(index)
        fired += rules.anomalies(frame, detections(index), [band], continuous=True)
        now = frame.captured_at
        ages = [t.age_s(now) for t in rules.tracker.tracks if t.label == "person" and t.dwell_s(band.id, now) > 0]
        oldest_in_band = max([oldest_in_band, *ages])
    return fired, oldest_in_band


def test_loitering_quiet_where_walkers_only_cross_a_band_of_the_walkway() -> None:
    """8 s in the band: shorter than the footage, longer than a walker needs to cross it. People
    followed for more than 8 s do cross the band, so a rule that timed the track instead of its
    stay in the zone (or never noticed it leave) would fire here."""
    fired, oldest_in_band = band_anomalies(8.0)
    assert fired == []
    assert oldest_in_band >= 8.0 * 1.5  # not vacuous: a long-followed walker was in the band
    assert SEQUENCE[-1] / FPS >= 2 * 8.0  # and the footage is long enough to reach the dwell


def test_loitering_fires_in_the_same_band_with_a_one_second_dwell() -> None:
    """The control of the quiet case: a walker takes more than a second to cross the band."""
    fired, _ = band_anomalies(1.0)
    assert fired, "nobody took a second to cross the band?"
    assert {a.rule for a in fired} == {"loitering"} and {a.zone for a in fired} == {"band"}
    assert all(1.0 <= a.value < 8.0 for a in fired), [a.value for a in fired]


def test_loitering_needs_watch_mode() -> None:
    """One frame per patrol visit cannot be tracked: the rule is skipped and counted."""
    rules = CameraRules("cam-1")
    loiter = zone(ZoneKind.LOITERING, WALKWAY, dwell_s=1.0)
    for index in SEQUENCE[:10]:
        assert rules.anomalies(clip_frame(index), detections(index), [loiter]) == []
    assert rules.skipped_loitering == 10


def test_several_zones_fire_on_one_frame_sharing_one_evidence_picture() -> None:
    rules = CameraRules("cam-1")
    zones = [
        zone(ZoneKind.CROWD, WALKWAY, min_count=3),
        zone(ZoneKind.INTRUSION, WALKWAY, id="intrusion-2"),
    ]
    anomalies = rules.anomalies(clip_frame(100), detections(100), zones)
    assert sorted(a.rule for a in anomalies) == ["crowd", "intrusion"]
    assert anomalies[0].evidence is not None and anomalies[1].evidence is not None
    assert anomalies[0].evidence.jpeg is anomalies[1].evidence.jpeg


def test_zone_label_and_score_overrides() -> None:
    rules = CameraRules("cam-1")
    cars = zone(ZoneKind.INTRUSION, PARKING, labels=("car", "truck"))
    [anomaly] = rules.anomalies(clip_frame(100, t0=MONDAY_2230), detections(100), [cars])
    assert anomaly.detail["labels"] in ("car", "car,truck")
    picky = zone(ZoneKind.INTRUSION, WALKWAY, min_score=0.95)
    assert rules.anomalies(clip_frame(100), detections(100), [picky]) == []
